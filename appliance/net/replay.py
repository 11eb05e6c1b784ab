"""Which message ids of one peer session were already delivered.

A sliding window of ``size`` ids (a bitmap in one Python int) below the
highest id delivered: ids inside it are answered exactly (new or duplicate),
ids below it are refused as replays. Memory is ``size`` bits per peer and
class whatever the peer sends. The sender keeps its unacknowledged reliable
ids within the window, so a refusal never hits a message still in flight.
"""
from __future__ import annotations

from typing import Optional

from appliance.net.wire import ID_HALF_RANGE, U32


class ReplayWindow:
    __slots__ = ("size", "highest", "_reference", "_bits", "_mask")

    def __init__(self, size: int) -> None:
        self.size = size
        self.highest: Optional[int] = None
        self._reference: Optional[int] = None
        self._bits = 0
        self._mask = (1 << size) - 1

    def unwrap(self, wire_id: int) -> int:
        """The full id a 32-bit wire id stands for: the one nearest the ids seen so far."""
        reference = self._reference
        if reference is None:
            self._reference = wire_id
            return wire_id
        delta = (wire_id - reference) & U32
        if delta >= ID_HALF_RANGE:
            delta -= 1 << 32
        return reference + delta

    def delivered(self, message_id: int) -> bool:
        highest = self.highest
        if highest is None or message_id > highest:
            return False
        distance = highest - message_id
        return distance < self.size and (self._bits >> distance) & 1 == 1

    def too_old(self, message_id: int) -> bool:
        return self.highest is not None and message_id <= self.highest - self.size

    def mark(self, message_id: int) -> None:
        highest = self.highest
        if highest is None:
            self.highest = self._reference = message_id
            self._bits = 1
        elif message_id > highest:
            shift = message_id - highest
            self._bits = ((self._bits << shift) | 1) & self._mask if shift < self.size else 1
            self.highest = self._reference = message_id
        elif highest - message_id < self.size:
            self._bits |= 1 << (highest - message_id)

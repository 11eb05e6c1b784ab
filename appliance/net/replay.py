"""Which message ids of one peer session are finished: delivered, or dropped.

A sliding window of ``size`` ids (bitmaps in Python ints) below the highest
finished id: ids inside it are answered exactly (new, delivered or dropped),
ids below it are refused as replays. Memory is ``size`` bits per peer and
class whatever the peer sends. The sender keeps its unacknowledged reliable
ids within the window, so a refusal never hits a message still in flight.

A reliable message is *dropped* when its partial reassembly was discarded
after fragments of it had been acknowledged: it must then never be delivered
(its sender may believe those fragments held), so later fragments of it are
refused and the sender is told to report it failed.
"""
from __future__ import annotations

from typing import Optional, Tuple

from appliance.net.wire import ID_HALF_RANGE, U32

#: What ``ReplayWindow.check`` says of an id.
NEW, DELIVERED, DROPPED, TOO_OLD = range(4)


class ReplayWindow:
    __slots__ = ("size", "highest", "_reference", "_finished", "_dropped", "_mask")

    def __init__(self, size: int) -> None:
        self.size = size
        #: The highest finished id, None before the first.
        self.highest: Optional[int] = None
        self._reference: Optional[int] = None
        self._finished = 0
        self._dropped = 0
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

    def classify(self, wire_id: int) -> Tuple[int, int]:
        """The full id of a wire id and what ``check`` says of it, in one call: the receive
        path asks both of every DATA datagram."""
        message_id = self.unwrap(wire_id)
        return message_id, self.check(message_id)

    def check(self, message_id: int) -> int:
        """NEW, DELIVERED, DROPPED or TOO_OLD."""
        highest = self.highest
        if highest is None or message_id > highest:
            return NEW
        distance = highest - message_id
        if distance >= self.size:
            return TOO_OLD
        if not (self._finished >> distance) & 1:
            return NEW
        return DROPPED if (self._dropped >> distance) & 1 else DELIVERED

    def delivered(self, message_id: int) -> bool:
        return self.check(message_id) == DELIVERED

    def dropped(self, message_id: int) -> bool:
        return self.check(message_id) == DROPPED

    def too_old(self, message_id: int) -> bool:
        return self.check(message_id) == TOO_OLD

    def mark(self, message_id: int) -> None:
        """``message_id`` was delivered."""
        self._finish(message_id, False)

    def mark_dropped(self, message_id: int) -> None:
        """``message_id`` will never be delivered: its partial copy was discarded."""
        self._finish(message_id, True)

    def _finish(self, message_id: int, dropped: bool) -> None:
        highest = self.highest
        if highest is None:
            self.highest = self._reference = message_id
            self._finished = 1
            self._dropped = int(dropped)
        elif message_id > highest:
            shift = message_id - highest
            if shift < self.size:
                self._finished = ((self._finished << shift) | 1) & self._mask
                self._dropped = ((self._dropped << shift) | dropped) & self._mask
            else:
                self._finished, self._dropped = 1, int(dropped)
            self.highest = self._reference = message_id
        elif highest - message_id < self.size:
            bit = 1 << (highest - message_id)
            self._finished |= bit
            if dropped:
                self._dropped |= bit

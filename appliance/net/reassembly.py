"""Buffers of multi-fragment messages being received, bounded in number and bytes.

The first fragment to arrive (any index) opens a buffer: there is no
request/accept handshake that a lost datagram could deadlock. A buffer
reserves its message's full length plus a per-fragment overhead when it
opens, so the memory limit holds before the bytes arrive. When a limit is
hit, partial best-effort messages are evicted (oldest activity first; they
are never retransmitted, so waiting for them only blocks others); reliable
ones are never evicted, the new fragment is refused unacknowledged instead
and its sender retries.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Set, Tuple

from appliance.net.config import TransportConfig
from appliance.net.wire import U32, AckEntry

#: Bytes charged per fragment on top of the payload: a bytes object header
#: and a list slot. Keeps a peer that sends 1-byte fragments within budget.
FRAGMENT_OVERHEAD = 48

Key = Tuple[str, bool, int]


class Reassembly:
    """One message being received; it can say which fragments it holds, as ACK entries."""

    __slots__ = ("peer", "reliable", "message_id", "wire_id", "count", "length", "parts",
                 "received", "reserved", "last_active", "open", "_prefix", "_beyond")

    def __init__(self, peer: str, reliable: bool, message_id: int, count: int, length: int,
                 now: int) -> None:
        self.peer = peer
        self.reliable = reliable
        self.message_id = message_id
        self.wire_id = message_id & U32
        self.count = count
        self.length = length
        self.parts: List[Optional[bytes]] = [None] * count
        self.received = 0
        self.reserved = length + FRAGMENT_OVERHEAD * count
        self.last_active = now
        #: False once closed: completed, expired, evicted or its peer restarted.
        self.open = True
        #: Fragments [0, _prefix) are all held; _beyond holds the others held.
        self._prefix = 0
        self._beyond: Set[int] = set()

    @property
    def key(self) -> Key:
        return (self.peer, self.reliable, self.message_id)

    def payload(self) -> bytes:
        return b"".join(self.parts)  # type: ignore[arg-type]

    def hold(self, index: int, chunk: bytes) -> bool:
        """Keep one fragment; False if it was already held."""
        parts = self.parts
        if parts[index] is not None:
            return False
        parts[index] = chunk
        self.received += 1
        if index != self._prefix:
            self._beyond.add(index)
            return True
        prefix = index + 1
        while prefix < self.count and parts[prefix] is not None:
            self._beyond.discard(prefix)
            prefix += 1
        self._prefix = prefix
        return True

    def ack_entries(self, limit: int) -> List[AckEntry]:
        """Everything held so far (not just what is new), so one lost ACK costs nothing."""
        entries: List[AckEntry] = [(self.wire_id, 0, self._prefix)] if self._prefix else []
        if self._beyond:
            entries.extend(runs(self.wire_id, sorted(self._beyond)))
        return entries[:limit]


def runs(wire_id: int, indexes: Iterable[int]) -> Iterator[AckEntry]:
    """ACK entries for sorted fragment indexes: one per run of consecutive ones."""
    start = previous = -2
    for index in indexes:
        if index > previous + 1:
            if previous >= 0:
                yield (wire_id, start, previous - start + 1)
            start = index
        previous = index
    if previous >= 0:
        yield (wire_id, start, previous - start + 1)


class ReassemblyTable:
    """All open reassemblies of an endpoint, least recently active first."""

    def __init__(self, config: TransportConfig, on_drop: Callable[[Reassembly, str], None]) -> None:
        self._per_peer_limit = config.max_reassemblies
        self._memory_limit = config.reassembly_memory
        self._timeout = config.reassembly_timeout
        self._on_drop = on_drop
        self._buffers: OrderedDict[Key, Reassembly] = OrderedDict()
        self._by_peer: Dict[str, Dict[Key, Reassembly]] = {}
        self.memory = 0

    def __len__(self) -> int:
        return len(self._buffers)

    def of_peer(self, peer: str) -> Iterable[Reassembly]:
        return self._by_peer.get(peer, {}).values()

    def per_peer(self, peer: str) -> int:
        return len(self._by_peer.get(peer, ()))

    def find(self, peer: str, reliable: bool, message_id: int) -> Optional[Reassembly]:
        return self._buffers.get((peer, reliable, message_id))

    def open(self, peer: str, reliable: bool, message_id: int, count: int, length: int,
             now: int) -> Optional[Reassembly]:
        """A new buffer, or None when the limits leave no room for it."""
        buffer = Reassembly(peer, reliable, message_id, count, length, now)
        if buffer.reserved > self._memory_limit:
            return None
        while self.per_peer(peer) >= self._per_peer_limit:
            if not self._evict_best_effort(peer):
                return None
        while self.memory + buffer.reserved > self._memory_limit:
            if not self._evict_best_effort(None):
                return None
        self._buffers[buffer.key] = buffer
        self._by_peer.setdefault(peer, {})[buffer.key] = buffer
        self.memory += buffer.reserved
        return buffer

    def store(self, buffer: Reassembly, index: int, chunk: bytes, now: int) -> bool:
        """Keep one fragment and note the activity; False if it was already held."""
        buffer.last_active = now
        self._buffers.move_to_end(buffer.key)
        return buffer.hold(index, chunk)

    def close(self, buffer: Reassembly) -> None:
        """Free a buffer: its message completed, expired, or its peer restarted."""
        del self._buffers[buffer.key]
        buffer.open = False
        of_peer = self._by_peer[buffer.peer]
        del of_peer[buffer.key]
        if not of_peer:
            del self._by_peer[buffer.peer]
        self.memory -= buffer.reserved

    def deadline(self) -> Optional[int]:
        for buffer in self._buffers.values():
            return buffer.last_active + self._timeout
        return None

    def expire(self, now: int) -> None:
        limit = now - self._timeout
        while self._buffers:
            buffer = next(iter(self._buffers.values()))
            if buffer.last_active > limit:
                return
            self.close(buffer)
            self._on_drop(buffer, "reassembly_expired")

    def drop_peer(self, peer: str) -> None:
        for buffer in list(self.of_peer(peer)):
            self.close(buffer)

    def _evict_best_effort(self, peer: Optional[str]) -> bool:
        for buffer in self._buffers.values():
            if not buffer.reliable and (peer is None or buffer.peer == peer):
                self.close(buffer)
                self._on_drop(buffer, "reassembly_evicted")
                return True
        return False

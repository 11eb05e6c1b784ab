"""Buffers of multi-fragment messages being received, bounded so no peer can hold them hostage.

The first fragment to arrive (any index) opens a buffer: there is no
request/accept exchange per message that a lost datagram could deadlock. A
buffer reserves its message's full length plus a per-fragment overhead when
it opens, so the limits hold before the bytes arrive. The limits:

* per peer: ``max_reassemblies`` buffers and ``peer_reassembly_memory``
  bytes, so one peer cannot take the whole endpoint's memory;
* in total: ``reassembly_memory`` bytes. When a new buffer does not fit,
  best-effort buffers are evicted first (oldest activity first: they are
  never retransmitted, so waiting for them only blocks others); a buffer of a
  *member* (a peer the application named) may also evict reliable buffers of
  non-members, so strangers cannot lock members out. Otherwise the fragment
  is refused unacknowledged and its sender retries;
* in time: only a *new* fragment counts as activity (a duplicate never
  extends a buffer's life); best-effort buffers expire after
  ``reassembly_timeout``, reliable ones after ``reliable_reassembly_timeout``,
  which outlasts their sender's retries.

Every operation costs O(1) or O(log fragments) of the buffer at hand, never
a scan of other peers' buffers: each (reliable, member) class keeps its own
activity order, and a buffer keeps the runs of fragments it holds sorted as
they arrive, so an ACK lists them without sorting.
"""
from __future__ import annotations

from bisect import bisect_right
from collections import OrderedDict
from typing import Callable, Dict, Iterator, List, Optional, Tuple, Union

from appliance.net.config import TransportConfig
from appliance.net.wire import U32, fragment_geometry

#: Bytes charged per fragment on top of the payload: a bytes object header
#: and a list slot. Keeps a peer that sends 1-byte fragments within budget.
FRAGMENT_OVERHEAD = 48

Key = Tuple[str, bool, int]


class Reassembly:
    """One message being received, and the runs of fragments it holds."""

    __slots__ = ("peer", "reliable", "member", "message_id", "wire_id", "key", "count", "length",
                 "fragment", "last", "parts", "received", "reserved", "last_active", "acknowledged",
                 "_starts", "_ends")

    def __init__(self, peer: str, reliable: bool, member: bool, message_id: int, count: int,
                 length: int, now: int) -> None:
        self.peer = peer
        self.reliable = reliable
        self.member = member
        self.message_id = message_id
        self.wire_id = message_id & U32
        self.key: Key = (peer, reliable, message_id)
        self.count = count
        self.length = length
        #: The size of every fragment but the last, and of the last (the split is even).
        self.fragment = fragment_geometry(length, count)
        self.last = length - (count - 1) * self.fragment
        self.parts: List[Optional[bytes]] = [None] * count
        self.received = 0
        self.reserved = length + FRAGMENT_OVERHEAD * count
        self.last_active = now
        #: True once an ACK listed fragments of it: dropping it then must be said.
        self.acknowledged = False
        #: Runs of held fragments, sorted: [starts[i], ends[i]) for each i.
        self._starts: List[int] = []
        self._ends: List[int] = []

    def payload(self) -> bytes:
        return b"".join(self.parts)  # type: ignore[arg-type]

    def fits(self, index: int, count: int, length: int, size: int) -> bool:
        """Whether a fragment belongs here: the same geometry, and its size for its index."""
        return count == self.count and length == self.length and size == (
            self.fragment if index < count - 1 else self.last)

    def hold(self, index: int, chunk: bytes) -> bool:
        """Keep one fragment; False if it was already held (a duplicate costs O(1))."""
        parts = self.parts
        if parts[index] is not None:
            return False
        parts[index] = chunk
        self.received += 1
        starts, ends = self._starts, self._ends
        if ends and ends[-1] == index:  # the usual case, fragments in order: the last run grows
            ends[-1] = index + 1
            return True
        position = bisect_right(starts, index) - 1
        following = position + 1
        joins_next = following < len(starts) and starts[following] == index + 1
        if position >= 0 and ends[position] == index:
            if joins_next:
                ends[position] = ends[following]
                del starts[following], ends[following]
            else:
                ends[position] = index + 1
        elif joins_next:
            starts[following] = index
        else:
            starts.insert(following, index)
            ends.insert(following, index + 1)
        return True

    def runs(self) -> Iterator[Tuple[int, int, int]]:
        """ACK entries for everything held so far (not just what is new), in order."""
        wire_id = self.wire_id
        for start, end in zip(self._starts, self._ends):
            yield (wire_id, start, end - start)


class ReassemblyTable:
    """All open reassemblies of an endpoint, with their limits."""

    def __init__(self, config: TransportConfig, on_drop: Callable[[Reassembly, str], None]) -> None:
        self._per_peer_limit = config.max_reassemblies
        self._memory_limit = config.reassembly_memory
        self._peer_memory_limit = min(config.peer_reassembly_memory, config.reassembly_memory)
        self._timeouts = {False: config.reassembly_timeout, True: config.reliable_reassembly_timeout}
        self._on_drop = on_drop
        self._buffers: Dict[Key, Reassembly] = {}
        #: Activity order (least recent first) per (reliable, member) class.
        self._orders: Dict[Tuple[bool, bool], OrderedDict[Key, Reassembly]] = {
            (reliable, member): OrderedDict() for reliable in (False, True) for member in (False, True)}
        self._by_peer: Dict[str, Dict[Key, Reassembly]] = {}
        self._peer_memory: Dict[str, int] = {}
        self.memory = 0

    def __len__(self) -> int:
        return len(self._buffers)

    def of_peer(self, peer: str) -> List[Reassembly]:
        return list(self._by_peer.get(peer, {}).values())

    def per_peer(self, peer: str) -> int:
        return len(self._by_peer.get(peer, ()))

    def peer_memory(self, peer: str) -> int:
        return self._peer_memory.get(peer, 0)

    def find(self, peer: str, reliable: bool, message_id: int) -> Optional[Reassembly]:
        return self._buffers.get((peer, reliable, message_id))

    def open(self, peer: str, member: bool, reliable: bool, message_id: int, count: int,
             length: int, now: int) -> Union[Reassembly, str]:
        """A new buffer, or the name of the limit that leaves no room for it."""
        buffer = Reassembly(peer, reliable, member, message_id, count, length, now)
        reserved = buffer.reserved
        if reserved > self._peer_memory_limit:
            return "peer_reassembly_full"
        while (self.per_peer(peer) >= self._per_peer_limit
               or self.peer_memory(peer) + reserved > self._peer_memory_limit):
            if not self._evict_own_best_effort(peer):
                return "peer_reassembly_full"
        while self.memory + reserved > self._memory_limit:
            if not self._evict_for(member):
                return "reassembly_full"
        self._buffers[buffer.key] = buffer
        self._orders[reliable, member][buffer.key] = buffer
        self._by_peer.setdefault(peer, {})[buffer.key] = buffer
        self._peer_memory[peer] = self.peer_memory(peer) + reserved
        self.memory += reserved
        return buffer

    def store(self, buffer: Reassembly, index: int, chunk: bytes, now: int) -> bool:
        """Keep one fragment; only a new one is activity. False if it was already held."""
        if not buffer.hold(index, chunk):
            return False
        buffer.last_active = now
        self._orders[buffer.reliable, buffer.member].move_to_end(buffer.key)
        return True

    def close(self, buffer: Reassembly) -> None:
        """Free a buffer: its message completed, expired, was evicted, or its peer restarted."""
        key = buffer.key
        del self._buffers[key]
        del self._orders[buffer.reliable, buffer.member][key]
        of_peer = self._by_peer[buffer.peer]
        del of_peer[key]
        self._peer_memory[buffer.peer] -= buffer.reserved
        if not of_peer:
            del self._by_peer[buffer.peer]
            del self._peer_memory[buffer.peer]
        self.memory -= buffer.reserved

    def deadline(self) -> Optional[int]:
        deadline = None
        for (reliable, _), order in self._orders.items():
            for buffer in order.values():
                candidate = buffer.last_active + self._timeouts[reliable]
                if deadline is None or candidate < deadline:
                    deadline = candidate
                break
        return deadline

    def expire(self, now: int) -> None:
        for (reliable, _), order in self._orders.items():
            limit = now - self._timeouts[reliable]
            while order:
                buffer = next(iter(order.values()))
                if buffer.last_active > limit:
                    break
                self._drop(buffer, "reassembly_expired")

    def drop_peer(self, peer: str) -> None:
        """Forget a peer's buffers silently: it restarted, or is being evicted."""
        for buffer in self.of_peer(peer):
            self.close(buffer)

    def set_member(self, peer: str, member: bool) -> None:
        """The application changed whether ``peer`` is a member: re-file its buffers."""
        for buffer in self.of_peer(peer):
            if buffer.member != member:
                del self._orders[buffer.reliable, buffer.member][buffer.key]
                buffer.member = member
                self._orders[buffer.reliable, member][buffer.key] = buffer

    def _drop(self, buffer: Reassembly, reason: str) -> None:
        self.close(buffer)
        self._on_drop(buffer, reason)

    def _evict_own_best_effort(self, peer: str) -> bool:
        for buffer in self.of_peer(peer):  # at most max_reassemblies
            if not buffer.reliable:
                self._drop(buffer, "reassembly_evicted")
                return True
        return False

    def _evict_for(self, member: bool) -> bool:
        """Make room for a buffer of a member or a stranger; True if something was evicted."""
        victims = [(False, False)] + ([(False, True), (True, False)] if member else [])
        for victim in victims:
            order = self._orders[victim]
            if order:
                self._drop(next(iter(order.values())), "reassembly_evicted")
                return True
        return False

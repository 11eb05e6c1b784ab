"""The endpoint's table of peers: bounded, with room kept for the members.

A peer's state is created when the application sends to an address or when
a handshake from it completes (never for a datagram alone), and lives in
least-recently-active order. The application names the *members* (the
routing table's addresses): a stranger may hold at most ``max_peers`` minus
the number of members, so a member always finds room, and a member is never
evicted. A stranger is evicted, to make room, only when it is idle and has
been silent long enough that its sender cannot still be retransmitting to
this endpoint: forgetting the ids delivered from it is harmless then.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Iterable, Iterator, Optional, Set

from appliance.net.config import TransportConfig
from appliance.net.counters import TransportCounters
from appliance.net.peer import Peer

#: Builds the state of a new peer: (address, member, now) -> Peer.
PeerFactory = Callable[[str, bool, int], Peer]


class PeerTable:
    def __init__(self, config: TransportConfig, make: PeerFactory, idle: Callable[[Peer], bool],
                 on_membership: Callable[[str, bool], None], endpoint_wide: TransportCounters,
                 on_evict: Callable[[Peer], None]) -> None:
        self._limit = config.max_peers
        #: A peer silent this long cannot still be retransmitting to this endpoint.
        self._quiet = config.reliable_reassembly_timeout
        self._make = make
        self._idle = idle
        self._on_membership = on_membership
        #: Told of every evicted peer, so that nothing else keeps it.
        self._on_evict = on_evict
        #: Where evicted peers' counters go, so sums over all sections stay exact.
        self._endpoint_wide = endpoint_wide
        #: Peers by address, least recently active first.
        self._peers: OrderedDict[str, Peer] = OrderedDict()
        self.members: Set[str] = set()
        #: Peers held that are not members.
        self._strangers = 0

    def __len__(self) -> int:
        return len(self._peers)

    def __iter__(self) -> Iterator[Peer]:
        return iter(self._peers.values())

    def get(self, address: str) -> Optional[Peer]:
        return self._peers.get(address)

    def touch(self, peer: Peer, now: int) -> None:
        """The peer was active: it moves to the most recent end."""
        peer.last_active = now
        self._peers.move_to_end(peer.address)

    def set_members(self, addresses: Iterable[str]) -> None:
        members = set(addresses)
        if len(members) > self._limit:
            raise ValueError("%d members do not fit in max_peers %d" % (len(members), self._limit))
        self.members = members
        for peer in self._peers.values():
            member = peer.address in members
            if member != peer.member:
                peer.member = member
                self._strangers += -1 if member else 1
                self._on_membership(peer.address, member)

    def create(self, address: str, now: int) -> Optional[Peer]:
        """State for a new address, or None when the table has no room for it (counted)."""
        member = address in self.members
        if not self.has_room(member, now, evict=True):
            return None  # the caller counts its refusal (peers_full)
        peer = self._make(address, member, now)
        self._peers[address] = peer
        if not member:
            self._strangers += 1
        return peer

    def has_room(self, member: bool, now: int, evict: bool = False) -> bool:
        """A stranger finds room within max_peers - len(members) slots, or in place of a
        stranger idle and silent long enough; a member always does, in place of such a
        stranger if the table is full, else beyond max_peers (only after ``set_members``
        added members while strangers held their slots; those leave as they go idle)."""
        if len(self._peers) < self._limit if member else self._strangers < self._limit - len(self.members):
            return True
        victim = self._evictable(now)
        if victim is None:
            return member
        if evict:
            del self._peers[victim.address]
            self._strangers -= 1
            self._endpoint_wide.absorb(victim.counters)
            self._endpoint_wide.peers_evicted += 1
            self._on_evict(victim)
        return True

    def _evictable(self, now: int) -> Optional[Peer]:
        """The least recently active stranger, if it is idle and has been silent so long."""
        for peer in self._peers.values():
            if peer.member:
                continue
            if now - peer.last_active < self._quiet:
                return None  # activity order: every later peer was active more recently
            if self._idle(peer):
                return peer
        return None

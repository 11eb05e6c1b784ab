"""The transport endpoint: the whole protocol as a state machine without I/O.

Datagrams and the time go in (``receive_datagram``, ``handle_timer``,
``send``); datagrams to put on the wire, delivered messages, failures and
the next deadline come out. It never reads a clock, sleeps, or touches a
socket, so the socket shell on a device and the simulated link in CI drive
the very same code. Nothing it receives can make it raise: every refusal is
a counter, and every table it keeps has a configured bound.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

from appliance.net.config import TransportConfig
from appliance.net.counters import Counters
from appliance.net.errors import MessageTooLarge, TooManyInFlight, TooManyPeers
from appliance.net.events import Delivered, Event
from appliance.net.peer import Peer
from appliance.net.reassembly import Reassembly, ReassemblyTable
from appliance.net.replay import ReplayWindow
from appliance.net.wire import (
    ACK,
    ACK_ENTRY,
    ACK_HEADER,
    DATA,
    DATA_HEADER,
    FLAG_INCOMPLETE,
    FLAG_RELIABLE,
    Framer,
    fragment_geometry,
)

#: Key of the endpoint-wide section in ``Endpoint.stats()``.
ENDPOINT = "*"
#: ACK datagrams per peer per flush at most; state beyond is reported later.
MAX_ACK_PARTS = 4

_SESSION_LIMIT = 1 << 64


def _fragment_fits(index: int, count: int, length: int, size: int) -> bool:
    """Whether a fragment's index and size agree with its message's length and count."""
    if index >= count:
        return False
    if count == 1:
        return size == length
    fragment = fragment_geometry(length, count)
    last = length - (count - 1) * fragment
    if last <= 0:
        return False  # more fragments than the message has bytes for
    return size == (fragment if index < count - 1 else last)


class Endpoint:
    """One ensemble's side of the transport, talking to any number of peers.

    ``session`` identifies this boot (random, nonzero, below 2**64): peers
    that see it change know the endpoint restarted. With ``key`` (the cluster
    key, at least 16 bytes) every datagram is authenticated and anything
    unauthenticated is refused.
    """

    def __init__(self, config: TransportConfig, session: int, key: Optional[bytes] = None) -> None:
        if type(session) is not int or not 0 < session < _SESSION_LIMIT:
            raise ValueError("session must be an int in (0, 2**64), got %r" % (session,))
        self.config = config
        self.session = session
        self._framer = Framer(session, key)
        self._max_message = config.max_message_size
        self._max_ack_entries = self._framer.max_ack_entries(config.mtu)
        self._outbox: List[Tuple[bytes, str]] = []
        self._events: List[Event] = []
        self._counters = Counters()
        #: Peers by address, least recently active first.
        self._peers: OrderedDict[str, Peer] = OrderedDict()
        #: Peers with fragments in flight, i.e. with a retransmission deadline.
        self._busy: Dict[str, Peer] = {}
        #: Peers with acknowledgements waiting for the next datagrams_to_send().
        self._ack_due: Dict[str, Peer] = {}
        self._reassembly = ReassemblyTable(config, self._reassembly_dropped)

    @property
    def authenticated(self) -> bool:
        return self._framer.authenticated

    # -- sending ---------------------------------------------------------

    def send(self, peer: str, payload: bytes, reliable: bool, now: int) -> int:
        """Queue a message; its id is monotonic per peer, class and session.

        A reliable message beyond ``max_in_flight`` unacknowledged ones waits
        in a bounded queue and goes out as acknowledgements arrive. Raises
        MessageTooLarge, TooManyInFlight (reliable only: the queue is full too)
        or TooManyPeers, all ValueErrors.
        """
        if not isinstance(payload, bytes):
            payload = bytes(payload)
        if len(payload) > self._max_message:
            self._count(peer, "too_large")
            raise MessageTooLarge(
                "message of %d bytes to %s exceeds max_message_size %d"
                % (len(payload), peer, self._max_message)
            )
        state = self._peer(peer)
        if state is None:
            raise TooManyPeers("no room for peer %s: %d peers, all busy" % (peer, len(self._peers)))
        if reliable:
            refusal = state.outbound.refusal(len(payload))
            if refusal is not None:
                state.counters.in_flight_full += 1
                raise TooManyInFlight(refusal)
        message_id = state.outbound.send(payload, reliable, now)
        state.counters.sent += 1
        if reliable:
            self._track_busy(state)
        return message_id

    def can_send(self, peer: str) -> bool:
        """Whether a small reliable ``send`` to ``peer`` would be accepted now."""
        state = self._peers.get(peer)
        if state is None:
            return len(self._peers) < self.config.max_peers or any(
                self._idle(p) for p in self._peers.values())
        return state.outbound.refusal(0) is None

    def in_flight(self, peer: str) -> int:
        """Reliable messages to ``peer`` not yet acknowledged nor given up (waiting ones included)."""
        state = self._peers.get(peer)
        return len(state.outbound.messages) + len(state.outbound.waiting) if state is not None else 0

    # -- the shell's side ------------------------------------------------

    def datagrams_to_send(self) -> List[Tuple[bytes, str]]:
        """Everything to put on the wire now, acknowledgements first; drains."""
        datagrams = self._take_acks() if self._ack_due else []
        if self._outbox:
            datagrams.extend(self._outbox)
            del self._outbox[:]
        return datagrams

    def events(self) -> List[Event]:
        """Delivered and SendFailed events since the last call; drains."""
        if not self._events:
            return []
        events = list(self._events)
        del self._events[:]
        return events

    def get_timer(self) -> Optional[int]:
        """Absolute tick of the next deadline, None when nothing is pending."""
        deadline = self._reassembly.deadline()
        for peer in self._busy.values():
            candidate = peer.outbound.deadline()
            if candidate is not None and (deadline is None or candidate < deadline):
                deadline = candidate
        return deadline

    def handle_timer(self, now: int) -> None:
        """Retransmit what timed out, give up what ran out of retries, expire reassemblies."""
        self._reassembly.expire(now)
        for peer in list(self._busy.values()):
            peer.outbound.on_timer(now)
            self._track_busy(peer)

    def stats(self) -> Dict[str, Dict[str, int]]:
        """Counters per peer, plus the endpoint-wide section under ``ENDPOINT``."""
        result = {address: peer.stats() for address, peer in self._peers.items()}
        endpoint = self._counters.as_dict(endpoint_wide=True)
        endpoint["peers"] = len(self._peers)
        endpoint["reassemblies"] = len(self._reassembly)
        endpoint["reassembly_memory"] = self._reassembly.memory
        result[ENDPOINT] = endpoint
        return result

    # -- receiving -------------------------------------------------------

    def receive_datagram(self, datagram: bytes, peer: str, now: int) -> None:
        """Take one datagram from ``peer``; bad input is counted and dropped, never raised."""
        end = self._framer.open(datagram)
        if type(end) is str:
            self._count(peer, end)
        elif datagram[1] == DATA:
            self._on_data(datagram, end, peer, now)
        elif datagram[1] == ACK:
            self._on_ack(datagram, end, peer, now)
        else:
            self._count(peer, "bad_type")

    def _on_data(self, datagram: bytes, end: int, address: str, now: int) -> None:
        if end < DATA_HEADER.size:
            self._count(address, "truncated")
            return
        _, _, flags, _, session, wire_id, index, count, length, timestamp = (
            DATA_HEADER.unpack_from(datagram))
        if length > self._max_message:
            self._count(address, "too_large")
            return
        size = end - DATA_HEADER.size
        if not (index == 0 and size == length if count == 1 else _fragment_fits(index, count, length, size)):
            self._count(address, "bad_fragment")
            return
        peer = self._peer(address)
        if peer is None or (session != peer.session and not self._current_session(peer, session)):
            return
        peer.counters.datagrams_received += 1
        reliable = flags & FLAG_RELIABLE == FLAG_RELIABLE
        window = peer.windows[reliable]
        message_id = window.unwrap(wire_id)
        if window.delivered(message_id):
            peer.counters.duplicates += 1
            if reliable:  # its ACK may have been lost: acknowledge the whole message again
                self._acknowledge(peer, wire_id, count, True, timestamp)
            return
        if window.too_old(message_id):
            peer.counters.replayed += 1
            return
        chunk = datagram[DATA_HEADER.size : end]
        if count == 1:
            self._deliver(peer, window, message_id, chunk)
            if reliable:
                self._acknowledge(peer, wire_id, count, True, timestamp)
            return
        buffer = self._reassembly.find(address, reliable, message_id)
        if buffer is None:
            buffer = self._reassembly.open(address, reliable, message_id, count, length, now)
            if buffer is None:
                peer.counters.reassembly_full += 1
                return  # unacknowledged: the sender retries once buffers free up
        elif buffer.count != count or buffer.length != length:
            peer.counters.bad_fragment += 1
            return
        if not self._reassembly.store(buffer, index, chunk, now):
            peer.counters.duplicates += 1
        if buffer.received == count:
            self._reassembly.close(buffer)
            self._deliver(peer, window, message_id, buffer.payload())
            if reliable:
                self._acknowledge(peer, wire_id, count, True, timestamp)
        elif reliable:
            self._acknowledge(peer, wire_id, count, False, timestamp)

    def _on_ack(self, datagram: bytes, end: int, address: str, now: int) -> None:
        if end < ACK_HEADER.size:
            self._count(address, "truncated")
            return
        _, _, flags, _, session, acked_session, echo, entries = ACK_HEADER.unpack_from(datagram)
        if ACK_HEADER.size + entries * ACK_ENTRY.size != end:
            self._count(address, "truncated")
            return
        peer = self._peers.get(address)
        if peer is None:
            self._counters.unknown_peer += 1
            return
        if not self._current_session(peer, session):
            return
        peer.counters.datagrams_received += 1
        peer.counters.acks_received += 1
        if acked_session != self.session:
            peer.counters.stale_ack += 1
            return
        self._peers.move_to_end(address)
        peer.outbound.on_ack(ACK_ENTRY.iter_unpack(datagram[ACK_HEADER.size : end]), echo,
                             not flags & FLAG_INCOMPLETE, now)
        self._track_busy(peer)

    def _deliver(self, peer: Peer, window: ReplayWindow, message_id: int, payload: bytes) -> None:
        window.mark(message_id)
        peer.counters.delivered += 1
        peer.counters.bytes_delivered += len(payload)
        self._events.append(Delivered(peer.address, payload, message_id))

    def _acknowledge(self, peer: Peer, wire_id: int, count: int, whole: bool,
                     timestamp: int) -> None:
        peer.acknowledge(wire_id, count, whole, timestamp)
        self._ack_due[peer.address] = peer

    def _take_acks(self) -> List[Tuple[bytes, str]]:
        datagrams: List[Tuple[bytes, str]] = []
        limit = self._max_ack_entries
        for peer in self._ack_due.values():
            echo, entries = peer.take_ack(self._reassembly.of_peer(peer.address), limit)
            # One datagram normally; when the state needs more, the sender must not
            # infer losses from any single part, so all parts say they are incomplete.
            complete = len(entries) <= limit
            for start in range(0, min(len(entries), MAX_ACK_PARTS * limit), limit):
                part = entries[start : start + limit]
                datagram = self._framer.ack(peer.session, echo, part, complete)
                datagrams.append((datagram, peer.address))
                peer.counters.acks_sent += 1
                peer.counters.datagrams_sent += 1
        self._ack_due.clear()
        return datagrams

    # -- peers -----------------------------------------------------------

    def _peer(self, address: str) -> Optional[Peer]:
        """The peer's state, created if needed; None (counted) when the table is full."""
        peer = self._peers.get(address)
        if peer is not None:
            self._peers.move_to_end(address)
            return peer
        if len(self._peers) >= self.config.max_peers and not self._evict_idle_peer():
            self._counters.peers_full += 1
            return None
        peer = Peer(address, self.config, self._framer, self._outbox, self._events)
        self._peers[address] = peer
        return peer

    def _idle(self, peer: Peer) -> bool:
        return (not peer.outbound.messages and not peer.outbound.waiting and peer.address not in self._ack_due
                and not self._reassembly.per_peer(peer.address))

    def _evict_idle_peer(self) -> bool:
        for peer in self._peers.values():
            if self._idle(peer):
                del self._peers[peer.address]
                self._counters.peers_evicted += 1
                return True
        return False

    def _current_session(self, peer: Peer, session: int) -> bool:
        change = peer.session_change(session)
        if change is None:
            return True
        peer.counters.bump(change)
        if change == "stale_session":
            return False
        self._reassembly.drop_peer(peer.address)
        self._ack_due.pop(peer.address, None)
        return True

    def _track_busy(self, peer: Peer) -> None:
        if peer.outbound.busy:
            self._busy[peer.address] = peer
        else:
            self._busy.pop(peer.address, None)

    def _count(self, address: str, name: str) -> None:
        peer = self._peers.get(address)
        (peer.counters if peer is not None else self._counters).bump(name)

    def _reassembly_dropped(self, buffer: Reassembly, reason: str) -> None:
        self._count(buffer.peer, reason)

"""The transport endpoint: the whole protocol as a state machine without I/O.

Datagrams and the time go in (``receive_datagram``, ``handle_timer``,
``send``); datagrams to put on the wire, delivered messages, failures and
the next deadline come out. It never reads a clock, sleeps, or touches a
socket, so the socket shell on a device and the simulated link in CI drive
the very same code. Nothing it receives, and no length of silence, can make
it raise: every refusal is a counter, and every table it keeps has a bound.
"""
from __future__ import annotations

import heapq
import itertools
import os
from struct import Struct
from typing import Callable, Dict, Iterable, List, Optional, Tuple, Union

from appliance.net import wire
from appliance.net.auth import TAG_SIZE, Mac
from appliance.net.config import TransportConfig
from appliance.net.counters import TransportCounters
from appliance.net.errors import MessageTooLarge, TooManyInFlight, TooManyPeers
from appliance.net.events import Delivered, Event
from appliance.net.handshake import Credentials, Overtaken
from appliance.net.peer import Peer
from appliance.net.peers import PeerTable
from appliance.net.reassembly import Reassembly, ReassemblyTable
from appliance.net.replay import DELIVERED, DROPPED, NEW, ReplayWindow
from appliance.net.sender import OPEN, Outbound
from appliance.net.wire import (
    ACK,
    ACK_ENTRY,
    ACK_HEADER,
    CHALLENGE,
    CHALLENGE_HEADER,
    CONFIRM,
    CONFIRM_HEADER,
    CRC,
    DATA,
    DATA_HEADER,
    FLAG_AUTH,
    FLAG_INCOMPLETE,
    FLAG_RELIABLE,
    HELLO,
    HELLO_HEADER,
    MIN_SIZE,
    VERSION,
    crc_ok,
    fragment_geometry,
)

#: Key of the endpoint-wide section in ``Endpoint.stats()``.
ENDPOINT = "*"

_SESSION_LIMIT = 1 << 64

Refusal = Optional[str]

#: DATA datagrams of unknown channels kept in case their CONFIRM follows (Overtaken).
OVERTAKEN_LIMIT = 16

_DATA_SIZE = DATA_HEADER.size
_unpack_data = DATA_HEADER.unpack_from


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

    ``session`` identifies this boot (random, nonzero, below 2**64, new at
    every start): peers that see it change know the endpoint restarted. With
    ``key`` (the cluster key, at least 16 bytes) every datagram is
    authenticated and anything unauthenticated is refused. ``identity``
    names the endpoint beyond its address (the ensemble's name, say): it is
    bound, with the session, into every channel's key, and peers can read its
    digest with ``peer_identity``; the default, empty, binds by session alone.
    ``entropy`` supplies the unguessable values of handshakes (nonces, the
    cookie secret); ``os.urandom`` unless a simulator passes a seeded source
    to make runs reproducible byte for byte.
    """

    def __init__(self, config: TransportConfig, session: int, key: Optional[bytes] = None,
                 identity: bytes = b"", entropy: Optional[Callable[[int], bytes]] = None) -> None:
        if type(session) is not int or not 0 < session < _SESSION_LIMIT:
            raise ValueError("session must be an int in (0, 2**64), got %r" % (session,))
        if not isinstance(identity, bytes):
            raise TypeError("identity must be bytes, got %r" % (identity,))
        self.config = config
        self.session = session
        self._credentials = Credentials(session, identity, key, entropy or os.urandom,
                                        config.cookie_lifetime)
        self._transport_mac = self._credentials.mac
        self._max_message = config.max_message_size
        self._max_ack_entries = wire.max_ack_entries(config.mtu, self.authenticated)
        self._outbox: List[Tuple[bytes, str]] = []
        self._events: List[Event] = []
        #: The endpoint-wide section: datagrams from addresses that are not peers,
        #: and the counters of every peer evicted so far.
        self._counters = TransportCounters()
        #: Peers with fragments in flight or a handshake under way, i.e. with a deadline.
        self._busy: Dict[str, Peer] = {}
        #: The busy peers' deadlines as a heap of (deadline, version, address), kept as their
        #: sending state changes (``_track_busy``): a shell asks for the earliest after every
        #: call, and asking each of a thousand peers (a runtime manager at a join burst) is
        #: the cost of the whole join. An entry whose version is not its peer's is stale.
        self._deadlines: List[Tuple[int, int, str]] = []
        self._deadline_version: Dict[str, int] = {}
        self._versions = itertools.count(1)
        #: Peers with acknowledgements waiting for the next datagrams_to_send().
        self._ack_due: Dict[str, Peer] = {}
        self._reassembly = ReassemblyTable(config, self._reassembly_dropped)
        self._peers = PeerTable(config, self._make_peer, self._idle, self._reassembly.set_member,
                                self._counters, self._forget)
        self._overtaken = Overtaken(OVERTAKEN_LIMIT, config.rto_min)
        #: The latest time the caller told this endpoint.
        self._clock = 0

    @property
    def authenticated(self) -> bool:
        return self._transport_mac is not None

    def peer_identity(self, peer: str) -> Optional[bytes]:
        """The identity digest (``auth.identity_digest``) ``peer`` proved in its last handshake."""
        state = self._peers.get(peer)
        return state.identity if state is not None else None

    def set_members(self, addresses: Iterable[str]) -> None:
        """Name the addresses that are members (the routing table's): their state is never
        evicted to make room for another address, they always find room in the peer table,
        and their reassemblies may evict strangers' ones. Replaces the previous set; raises
        ValueError if more than ``max_peers``."""
        self._peers.set_members(addresses)

    # -- sending ---------------------------------------------------------

    def send(self, peer: str, payload: bytes, reliable: bool, now: int) -> int:
        """Queue a message; its id is monotonic per peer, class and session.

        The first message to a peer opens a channel first (one round trip).
        A reliable message beyond ``max_in_flight`` unacknowledged ones waits
        in a bounded queue and goes out as acknowledgements arrive. Raises
        MessageTooLarge, TooManyInFlight (reliable only: the queue is full too)
        or TooManyPeers, all ValueErrors.
        """
        self._clock = now
        if not isinstance(payload, bytes):
            payload = bytes(payload)
        if len(payload) > self._max_message:
            self._count(peer, "too_large")
            raise MessageTooLarge(
                "message of %d bytes to %s exceeds max_message_size %d"
                % (len(payload), peer, self._max_message)
            )
        state = self._sending_to(peer, now)
        if reliable:
            refusal = state.outbound.refusal(len(payload))
            if refusal is not None:
                state.counters.in_flight_full += 1
                raise TooManyInFlight(refusal)
        self._peers.touch(state, now)
        message_id = state.outbound.send(payload, reliable, now)
        state.counters.sent += 1
        self._track_busy(state)
        return message_id

    def connect(self, peer: str, now: int) -> None:
        """Open a channel to ``peer`` now (the handshake's round trip), unless one is open or
        opening, so the first message to it goes out at once. Raises TooManyPeers."""
        self._clock = now
        state = self._sending_to(peer, now)
        self._peers.touch(state, now)
        state.outbound.connect(now)
        self._track_busy(state)

    def connected(self, peer: str) -> bool:
        """Whether a channel to ``peer`` is open and confirmed: messages go out at once."""
        state = self._peers.get(peer)
        return state is not None and state.outbound.confirmed

    def can_send(self, peer: str) -> bool:
        """Whether a small reliable ``send`` to ``peer`` would be accepted now."""
        state = self._peers.get(peer)
        if state is None:
            return self._peers.has_room(peer in self._peers.members, self._clock)
        return state.outbound.refusal(0) is None

    def in_flight(self, peer: str) -> int:
        """Reliable messages to ``peer`` not yet acknowledged nor failed (waiting ones included)."""
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
        heap, versions = self._deadlines, self._deadline_version
        while heap and versions.get(heap[0][2]) != heap[0][1]:
            heapq.heappop(heap)
        if heap and (deadline is None or heap[0][0] < deadline):
            deadline = heap[0][0]
        return deadline

    def handle_timer(self, now: int) -> None:
        """Retransmit what timed out, give up what ran out of retries, expire reassemblies."""
        self._clock = now
        self._reassembly.expire(now)
        for peer in list(self._busy.values()):
            peer.outbound.on_timer(now)
            self._track_busy(peer)

    def stats(self) -> Dict[str, Dict[str, int]]:
        """Counters per peer, plus the endpoint-wide section under ``ENDPOINT`` (which also
        holds the counters of evicted peers, so sums over all sections are exact)."""
        result = {peer.address: peer.stats() for peer in self._peers}
        endpoint = self._counters.as_dict(endpoint_wide=True)
        endpoint["peers"] = len(self._peers)
        endpoint["members"] = len(self._peers.members)
        endpoint["reassemblies"] = len(self._reassembly)
        endpoint["reassembly_memory"] = self._reassembly.memory
        result[ENDPOINT] = endpoint
        return result

    # -- receiving -------------------------------------------------------

    def receive_datagram(self, datagram: bytes, peer: str, now: int) -> None:
        """Take one datagram from ``peer``; bad input is counted and dropped, never raised."""
        self._clock = now
        state = self._peers.get(peer)
        counters = state.counters if state is not None else self._counters
        counters.datagrams_received += 1
        refusal = self._receive(datagram, peer, state, now)
        if refusal is not None:
            counters.bump(refusal)

    def _receive(self, datagram: bytes, address: str, peer: Optional[Peer], now: int) -> Refusal:
        size = len(datagram)
        if size < MIN_SIZE:
            return "truncated"
        if datagram[0] != VERSION:
            return "bad_version"
        tagged = datagram[2] & FLAG_AUTH
        if self._transport_mac is None:
            if tagged:  # the sender holds a key this endpoint lacks: a configuration error to count
                return "bad_auth" if crc_ok(datagram, True) else "bad_crc"
            if not crc_ok(datagram, False):
                return "bad_crc"
            end = size - CRC.size
        else:  # the tag is checked first (it proves the datagram intact); the CRC only if needed
            if not tagged:
                return "bad_auth" if crc_ok(datagram, False) else "bad_crc"
            if size < MIN_SIZE + TAG_SIZE:
                return "truncated"
            end = size - CRC.size - TAG_SIZE
        kind = datagram[1]
        if kind == DATA:
            return self._on_data(datagram, end, address, peer, now)
        if kind == ACK:
            return self._on_ack(datagram, end, peer, now)
        if kind == HELLO:
            return self._on_hello(datagram, end, address, now)
        if kind == CHALLENGE:
            return self._on_challenge(datagram, end, peer, now)
        if kind == CONFIRM:
            return self._on_confirm(datagram, end, address, peer, now)
        return self._unverified("bad_type", datagram)

    def _unverified(self, refusal: str, datagram: bytes) -> str:
        """A refusal decided before any tag was checked. With a key the CRC was not checked
        either: a damaged datagram is counted as damaged, whatever else it looks like."""
        return "bad_crc" if self._transport_mac is not None and not crc_ok(datagram, True) else refusal

    @staticmethod
    def _forged(mac: Optional[Mac], datagram: bytes, end: int) -> Refusal:
        """None if the tag is ``mac``'s (always, without a key), else why it is not: a
        datagram with a wrong tag and a wrong CRC was damaged, not forged."""
        if mac is None or mac.verify(datagram, end):
            return None
        return "bad_auth" if crc_ok(datagram, True) else "bad_crc"

    def _on_data(self, datagram: bytes, end: int, address: str, peer: Optional[Peer],
                 now: int) -> Refusal:
        """DATA: the receive path of every fragment, so written for speed (measured): names
        hoisted, the common checks inline, one call per concern."""
        if end < _DATA_SIZE:
            return self._unverified("truncated", datagram)
        _, _, flags, _, token, wire_id, index, count, length, timestamp = _unpack_data(datagram)
        channel = peer.inbound if peer is not None else None
        if channel is None or token != channel.token:
            refusal = self._unverified("unknown_channel", datagram)
            if token and refusal == "unknown_channel":
                self._overtaken.keep(address, token, datagram, now)  # its CONFIRM may follow
                self._challenge(token, timestamp, address, peer, now)  # else: not held here
            return refusal
        mac = channel.mac
        if mac is not None and not mac.verify(datagram, end):
            return "bad_auth" if crc_ok(datagram, True) else "bad_crc"
        assert peer is not None
        if length > self._max_message:
            return "too_large"
        size = end - _DATA_SIZE
        reliable = flags & FLAG_RELIABLE == FLAG_RELIABLE
        window = peer.windows[reliable]
        message_id, known = window.classify(wire_id)
        reassembly = self._reassembly
        buffer = reassembly.find(address, reliable, message_id) if count > 1 and known == NEW else None
        if buffer is not None:  # the message's geometry is known: its fragments must match it
            if not buffer.fits(index, count, length, size):
                return "bad_fragment"
        elif not (index == 0 and size == length if count == 1 else _fragment_fits(index, count, length, size)):
            return "bad_fragment"
        self._peers.touch(peer, now)
        if known != NEW:
            if known == DELIVERED:
                peer.counters.duplicates += 1
                if reliable:  # its ACK may have been lost: acknowledge the whole message again
                    self._acknowledge_whole(peer, wire_id, count, timestamp)
                return None
            if known == DROPPED:
                if reliable:  # answered like any reliable DATA noted: its timestamp is echoed
                    peer.note_dropped(wire_id)
                    peer.echo(timestamp)
                    self._ack_due[address] = peer
                return "dropped_message"
            return "replayed"
        chunk = datagram[_DATA_SIZE:end]
        if count == 1:
            self._deliver(peer, window, message_id, chunk, reliable)
            if reliable:
                self._acknowledge_whole(peer, wire_id, count, timestamp)
            return None
        if buffer is None:
            opened = reassembly.open(address, peer.member, reliable, message_id, count, length, now)
            if type(opened) is str:
                return opened  # unacknowledged: the sender retries once buffers free up
            buffer = opened  # type: ignore[assignment]
        if not reassembly.store(buffer, index, chunk, now):
            peer.counters.duplicates += 1
        if buffer.received == count:
            reassembly.close(buffer)
            self._deliver(peer, window, message_id, buffer.payload(), reliable)
            if reliable:
                self._acknowledge_whole(peer, wire_id, count, timestamp)
        elif reliable:
            peer.echo(timestamp)
            self._ack_due[address] = peer
        return None

    def _on_ack(self, datagram: bytes, end: int, peer: Optional[Peer], now: int) -> Refusal:
        if end < ACK_HEADER.size:
            return self._unverified("truncated", datagram)
        _, _, flags, _, token, echo, entries = ACK_HEADER.unpack_from(datagram)
        if ACK_HEADER.size + entries * ACK_ENTRY.size != end:
            return self._unverified("truncated", datagram)
        channel = peer.outbound.channel if peer is not None else None
        if channel is None or token != channel.token:
            return self._unverified("unknown_channel", datagram)
        forged = self._forged(channel.mac, datagram, end)
        if forged is not None:
            return forged
        assert peer is not None
        if channel.confirmed_at is None:
            peer.outbound.on_confirmed(now)
        peer.counters.acks_received += 1
        self._peers.touch(peer, now)
        peer.outbound.on_ack(ACK_ENTRY.iter_unpack(datagram[ACK_HEADER.size : end]), echo,
                             not flags & FLAG_INCOMPLETE, now)
        self._track_busy(peer)
        return None

    def _handshake(self, datagram: bytes, end: int, header: Struct) -> Union[tuple, str]:
        """The fields of a handshake datagram of the right length and tag, or the refusal."""
        if end != header.size:
            return self._unverified("truncated", datagram)
        forged = self._forged(self._transport_mac, datagram, end)
        if forged is not None:
            return forged
        return header.unpack_from(datagram)

    def _on_hello(self, datagram: bytes, end: int, address: str, now: int) -> Refusal:
        fields = self._handshake(datagram, end, HELLO_HEADER)
        if type(fields) is str:
            return fields
        nonce = fields[4]
        if not nonce:
            return "bad_session"
        self._challenge(nonce, 0, address, self._peers.get(address), now)
        return None

    def _on_challenge(self, datagram: bytes, end: int, peer: Optional[Peer], now: int) -> Refusal:
        fields = self._handshake(datagram, end, CHALLENGE_HEADER)
        if type(fields) is str:
            return fields
        _, _, _, _, echo, timestamp, session, cookie, cookie_time, identity = fields
        if not (echo and session and cookie):
            return "bad_session"
        verdict = peer.outbound.on_challenge(echo, timestamp, session, now) if peer is not None else None
        if verdict is None:
            return "stale_handshake"  # answers nothing this endpoint asked (now)
        assert peer is not None
        if verdict != OPEN:
            return None
        if peer.retired(session):
            return "stale_session"
        if session != peer.session:
            self._restarted(peer, session)
        peer.identity = identity
        self._peers.touch(peer, now)
        peer.outbound.open(self._credentials.sending(echo, cookie, cookie_time, session, identity, now), now)
        self._track_busy(peer)
        return None

    def _on_confirm(self, datagram: bytes, end: int, address: str, peer: Optional[Peer],
                    now: int) -> Refusal:
        fields = self._handshake(datagram, end, CONFIRM_HEADER)
        if type(fields) is str:
            return fields
        _, _, _, _, cookie, cookie_time, nonce, session, responder, identity = fields
        if not (cookie and nonce and session) or responder != self.session:
            return "bad_session"
        issued_at = self._credentials.cookie_issued_at(cookie, cookie_time, nonce, address, now)
        if issued_at is None:
            return "bad_cookie"
        if peer is None:
            peer = self._peers.create(address, now)
            if peer is None:
                return "peers_full"
        elif peer.retired(session):
            return "stale_session"
        elif session == peer.session and peer.inbound is not None and peer.inbound.issued_at >= issued_at:
            if peer.inbound.token != cookie or peer.inbound.issued_at != issued_at:
                return "stale_handshake"  # the CONFIRM of an earlier channel: it changes nothing
            peer.counters.duplicates += 1  # a copy of this channel's: its acknowledgement was lost
            self._confirm_channel(peer)
            return None
        if session != peer.session:
            known = peer.session is not None
            self._restarted(peer, session)
            if known:  # what went out to the earlier boot went with it
                peer.outbound.peer_restarted(now)
        peer.identity = identity
        peer.inbound = self._credentials.receiving(nonce, cookie, cookie_time, issued_at, session, identity)
        peer.counters.channels_opened += 1
        self._peers.touch(peer, now)
        self._track_busy(peer)
        self._confirm_channel(peer)
        for early in self._overtaken.take(address, cookie, now):
            if self._receive(early, address, peer, now) is None:
                peer.counters.overtaken += 1
        return None

    def _confirm_channel(self, peer: Peer) -> None:
        """Acknowledge a CONFIRM: an empty ACK on the channel tells its initiator it is held."""
        channel = peer.inbound
        assert channel is not None
        self._outbox.append((wire.ack(channel.token, channel.mac, 0, [], False), peer.address))
        peer.counters.acks_sent += 1
        peer.counters.datagrams_sent += 1

    def _challenge(self, echo: int, timestamp: int, address: str, peer: Optional[Peer],
                   now: int) -> None:
        """Answer a HELLO, or DATA of a channel this endpoint does not hold, keeping no state."""
        self._outbox.append((self._credentials.challenge(echo, timestamp, address, now), address))
        counters = peer.counters if peer is not None else self._counters
        counters.challenges_sent += 1
        counters.datagrams_sent += 1

    def _restarted(self, peer: Peer, session: int) -> None:
        """A handshake proved ``session`` for ``peer``: anything from an earlier one is void."""
        peer.restart(session)
        self._reassembly.drop_peer(peer.address)
        self._ack_due.pop(peer.address, None)

    def _deliver(self, peer: Peer, window: ReplayWindow, message_id: int, payload: bytes,
                 reliable: bool) -> None:
        window.mark(message_id)
        peer.counters.delivered += 1
        peer.counters.bytes_delivered += len(payload)
        self._events.append(Delivered(peer.address, payload, message_id, reliable))

    def _acknowledge_whole(self, peer: Peer, wire_id: int, count: int, timestamp: int) -> None:
        peer.acknowledge_whole(wire_id, count, timestamp)
        self._ack_due[peer.address] = peer

    def _take_acks(self) -> List[Tuple[bytes, str]]:
        datagrams: List[Tuple[bytes, str]] = []
        limit = self._max_ack_entries
        for peer in self._ack_due.values():
            channel = peer.inbound
            if channel is None:
                continue  # the channel went with a restart: nothing left to answer on
            echo, parts, complete = peer.take_ack(self._reassembly.of_peer(peer.address), limit)
            for part in parts:
                datagrams.append((wire.ack(channel.token, channel.mac, echo, part, complete), peer.address))
            peer.counters.acks_sent += len(parts)
            peer.counters.datagrams_sent += len(parts)
        self._ack_due.clear()
        return datagrams

    # -- peers -----------------------------------------------------------

    def _sending_to(self, address: str, now: int) -> Peer:
        """The state of a peer the application sends to, created if need be."""
        peer = self._peers.get(address)
        if peer is None:
            peer = self._peers.create(address, now)
            if peer is None:
                self._counters.peers_full += 1
                raise TooManyPeers("no room for peer %s: %d peers, none idle" % (address, len(self._peers)))
        return peer

    def _make_peer(self, address: str, member: bool, now: int) -> Peer:
        counters = TransportCounters()
        credentials = self._credentials
        outbound = Outbound(address, self.config, self.authenticated, credentials.hello,
                            credentials.nonce, self._outbox, self._events, counters)
        return Peer(address, member, self.config, outbound, counters, now)

    def _forget(self, peer: Peer) -> None:
        """An evicted peer: idle, so only a stale entry of it could be left here."""
        address = peer.address
        self._busy.pop(address, None)
        self._ack_due.pop(address, None)
        self._deadline_version.pop(address, None)

    def _idle(self, peer: Peer) -> bool:
        return (peer.outbound.idle and peer.address not in self._ack_due
                and not self._reassembly.per_peer(peer.address))

    def _track_busy(self, peer: Peer) -> None:
        """Called after every change of a peer's sending state: whether it has a deadline, and which."""
        address = peer.address
        deadline = peer.outbound.deadline() if peer.outbound.busy else None
        if peer.outbound.busy:
            self._busy[address] = peer
        else:
            self._busy.pop(address, None)
        if deadline is None:
            self._deadline_version.pop(address, None)
            return
        version = next(self._versions)
        self._deadline_version[address] = version
        heapq.heappush(self._deadlines, (deadline, version, address))
        if len(self._deadlines) > 4 * len(self._deadline_version) + 64:  # stale entries: keep it bounded
            self._deadlines = [entry for entry in self._deadlines if self._deadline_version.get(entry[2]) == entry[1]]
            heapq.heapify(self._deadlines)

    def _count(self, address: str, name: str) -> None:
        peer = self._peers.get(address)
        (peer.counters if peer is not None else self._counters).bump(name)

    def _reassembly_dropped(self, buffer: Reassembly, reason: str) -> None:
        """A buffer expired or was evicted. If an ACK listed fragments of it, its sender
        may count them held: the message is marked dropped (never to be delivered) and
        the next ACK says so, so the sender reports it failed rather than acknowledged."""
        peer = self._peers.get(buffer.peer)
        if peer is None:
            self._counters.bump(reason)
            return
        peer.counters.bump(reason)
        if buffer.reliable and buffer.acknowledged:
            peer.windows[True].mark_dropped(buffer.message_id)
            peer.note_dropped(buffer.wire_id)
            self._ack_due[peer.address] = peer

"""The sending half of one peer: its channel, fragments in flight, loss recovery, give-up.

Messages go out on a channel (appliance.net.handshake); until one is open
they wait, and the sender dials: it sends HELLO, then CONFIRM, each
retransmitted on the schedule of a fragment until answered, and gives up the
same way.

Selective repeat over a per-peer window of fragments: every fragment is
acknowledged on its own, so only lost ones are sent again. Three things
resend a fragment, fastest first:

* loss detection on ACKs (RACK, RFC 8985): the peer echoes the send time of
  the newest DATA it received; a fragment sent more than the reorder window
  before that and still unacknowledged was lost;
* a probe (the tail-loss probe of RFC 8985 / QUIC's PTO): when nothing was
  acknowledged for about two round trips, resend the oldest fragment once,
  so the peer answers with an ACK of everything it holds;
* the retransmission timeout (RFC 6298): everything unacknowledged for a
  whole RTO, with exponential backoff and a retry limit per fragment.

A reliable message ends as acknowledged or as failed, never both, never
neither: it fails when its retries run out, when the receiver says it
dropped its partial copy, or when the receiver turns out to have restarted
after the message went out to it (the message may or may not have been
delivered to the incarnation that is gone; the application decides whether
to send it again).

Fragments in flight are kept in transmission order, which is also deadline
order: the oldest transmission (loss candidate, RTO) and the newest (probe)
are at the ends of one OrderedDict.
"""
from __future__ import annotations

from collections import OrderedDict, deque
from itertools import islice
from typing import Callable, Deque, Dict, Iterable, List, Optional, Tuple

from appliance.net import wire
from appliance.net.config import TransportConfig
from appliance.net.counters import TransportCounters
from appliance.net.events import Event, SendFailed
from appliance.net.handshake import SendingChannel
from appliance.net.rtt import MAX_PROBES, MIN_PROBE_TIMEOUT, RttEstimator
from appliance.net.wire import ID_HALF_RANGE, U32, AckEntry, fragment_geometry

Outbox = List[Tuple[bytes, str]]

#: Why a reliable message failed, as SendFailed.reason says it.
GAVE_UP = "fragment unacknowledged after %d retransmissions"
NO_ANSWER = "no answer to the handshake after %d retransmissions"
RESTARTED = "the peer restarted before acknowledging it"
DROPPED = "the peer dropped its partial copy"

#: What a CHALLENGE means (Outbound.on_challenge): open a channel with its cookie, or the
#: channel's CONFIRM went again.
OPEN = "open"
AGAIN = "again"


class OutgoingMessage:
    __slots__ = ("message_id", "wire_id", "view", "length", "count", "fragment_size", "acked",
                 "unacked", "next_index", "done")

    def __init__(self, message_id: int, payload: bytes, count: int) -> None:
        self.message_id = message_id
        self.wire_id = message_id & U32
        self.view = memoryview(payload)
        self.length = len(payload)
        self.count = count
        self.fragment_size = fragment_geometry(self.length, count)
        self.acked = bytearray(count)
        self.unacked = count
        self.next_index = 0
        self.done = False

    def chunk(self, index: int) -> memoryview:
        start = index * self.fragment_size
        return self.view[start : start + self.fragment_size]


class FragmentInFlight:
    """One fragment on the wire and unacknowledged; survives its retransmissions to count them."""

    __slots__ = ("message", "index", "key", "sent_at", "retries")

    def __init__(self, message: OutgoingMessage, index: int, now: int) -> None:
        self.message = message
        self.index = index
        self.key = (message.wire_id << 16) | index
        self.sent_at = now
        self.retries = 0


class Dialing:
    """A HELLO waiting for its CHALLENGE; ``retries`` says whether its round trip is a
    valid sample (only if never sent again)."""

    __slots__ = ("nonce", "sent_at", "retries")

    def __init__(self, nonce: int, now: int) -> None:
        self.nonce = nonce
        self.sent_at = now
        self.retries = 0


class Outbound:
    """What this endpoint sends to one peer: the channel, message ids, the reliable messages
    not yet acknowledged, the fragments in flight and the peer's round-trip estimate."""

    def __init__(self, peer: str, config: TransportConfig, authenticated: bool,
                 hello: Callable[[int], bytes], nonce: Callable[[], int], outbox: Outbox,
                 events: List[Event], counters: TransportCounters) -> None:
        self.peer = peer
        self.rtt = RttEstimator(config)
        #: The channel messages go out on; None until a handshake opened one.
        self.channel: Optional[SendingChannel] = None
        #: The handshake under way, if any.
        self.dialing: Optional[Dialing] = None
        #: Unacknowledged reliable messages on the wire, by wire id, oldest first.
        self.messages: Dict[int, OutgoingMessage] = {}
        #: Reliable messages accepted but waiting for room among ``messages`` or for a channel.
        self.waiting: Deque[OutgoingMessage] = deque()
        #: Best-effort messages waiting for a channel: (message id, payload).
        self.best_effort: Deque[Tuple[int, bytes]] = deque()
        self._waiting_bytes = 0
        self._best_effort_bytes = 0
        self._queue: Deque[OutgoingMessage] = deque()
        self._in_flight: OrderedDict[int, FragmentInFlight] = OrderedDict()
        self._next_reliable = 1
        self._next_best_effort = 1
        #: Send time of the newest DATA the peer is known to have received.
        self._latest_received = 0
        #: Probes since the last acknowledgement of new data.
        self._probes = 0
        #: HELLOs and CONFIRMs sent again since this handshake began: retry_limit bounds them.
        self._handshake_retries = 0
        self._hello = hello
        self._nonce = nonce
        self._outbox = outbox
        self._events = events
        self._counters = counters
        self._fragment_payload = config.fragment_payload(authenticated)
        self._window = config.window
        self._max_in_flight = config.max_in_flight
        self._max_queued = config.max_queued
        self._queue_memory = config.queue_memory
        self._replay_window = config.replay_window
        self._retry_limit = config.retry_limit
        self._reorder_window = config.reorder_window
        self._cookie_lifetime = config.cookie_lifetime

    @property
    def busy(self) -> bool:
        """Whether a deadline is pending: fragments in flight, or a handshake not yet done.

        A peer this endpoint never dialed (a stranger that opened a channel to it) has
        no handshake of its own under way, and no deadline."""
        return bool(self._in_flight) or self.dialing is not None or (self.channel is not None and not self.confirmed)

    @property
    def confirmed(self) -> bool:
        """A channel is open and the peer acknowledged it: best-effort messages may go."""
        channel = self.channel
        return channel is not None and channel.confirmed_at is not None

    @property
    def idle(self) -> bool:
        """Nothing accepted and not yet ended, nothing to send."""
        return not (self.messages or self.waiting or self.best_effort or self.dialing)

    def refusal(self, size: int) -> Optional[str]:
        """Why ``send`` must refuse another reliable message of ``size`` bytes, or None.

        The limits are those of messages waiting *behind* the ``max_in_flight``
        that may be on the wire: at most ``max_queued`` of them, holding at most
        ``queue_memory`` bytes (one may be larger). Messages that wait only for
        the channel to open, with room on the wire, do not count against them.
        """
        waiting = self.waiting
        free = max(0, self._max_in_flight - len(self.messages))
        if len(waiting) >= free + self._max_queued:
            return "%d reliable messages to %s already wait behind %d unacknowledged ones (max_queued)" % (
                len(waiting), self.peer, len(self.messages))
        if len(waiting) > free:
            behind = self._waiting_bytes - sum(message.length for message in islice(waiting, free))
            if behind + size > self._queue_memory:
                return "reliable messages waiting for %s would hold more than %d bytes (queue_memory)" % (
                    self.peer, self._queue_memory)
        return None

    def _may_start(self, message: OutgoingMessage) -> bool:
        """A channel, room among the messages on the wire, and the oldest of them still inside
        the receiver's replay window once this one is sent (so it is never refused as too old)."""
        if self.channel is None or len(self.messages) >= self._max_in_flight:
            return False
        for oldest in self.messages.values():
            return message.message_id - oldest.message_id < self._replay_window
        return True

    def _fragments(self, size: int) -> int:
        return max(1, -(-size // self._fragment_payload))

    def send(self, payload: bytes, reliable: bool, now: int) -> int:
        count = self._fragments(len(payload))
        if not reliable:
            message_id = self._next_best_effort
            self._next_best_effort += 1
            if self.channel is not None:
                self._send_best_effort(message_id, payload, count, now)
            elif (len(self.best_effort) < self._max_queued
                  and self._best_effort_bytes + len(payload) <= self._queue_memory):
                self.best_effort.append((message_id, payload))
                self._best_effort_bytes += len(payload)
                self._dial(now)
            else:
                self._counters.best_effort_dropped += 1
            return message_id
        message_id = self._next_reliable
        self._next_reliable += 1
        message = OutgoingMessage(message_id, payload, count)
        if self.waiting or not self._may_start(message):
            self.waiting.append(message)
            self._waiting_bytes += message.length
            self._counters.queued += 1
            self._dial(now)
            return message_id
        self._start(message, now)
        return message_id

    def _send_best_effort(self, message_id: int, payload: bytes, count: int, now: int) -> None:
        channel = self.channel
        assert channel is not None
        token, mac = channel.token, channel.mac
        wire_id = message_id & U32
        length = len(payload)
        if count == 1:  # the usual token: one datagram, nothing to keep
            self._outbox.append((wire.data(token, mac, False, wire_id, 0, 1, length, now, payload), self.peer))
            self._counters.datagrams_sent += 1
            return
        fragment = fragment_geometry(length, count)
        view = memoryview(payload)
        for index in range(count):
            chunk = view[index * fragment : (index + 1) * fragment]
            self._outbox.append((wire.data(token, mac, False, wire_id, index, count, length, now, chunk),
                                 self.peer))
        self._counters.datagrams_sent += count

    def _start(self, message: OutgoingMessage, now: int) -> None:
        self.messages[message.wire_id] = message
        self._queue.append(message)
        self._fill(now)

    def _start_waiting(self, now: int) -> None:
        """Put waiting messages on the wire as acknowledgements make room, in id order."""
        waiting = self.waiting
        while waiting and self._may_start(waiting[0]):
            message = waiting.popleft()
            self._waiting_bytes -= message.length
            self._start(message, now)

    # -- the channel -------------------------------------------------------

    def connect(self, now: int) -> None:
        """Open a channel ahead of the first message, so that one does not wait for it."""
        self._dial(now)

    def _dial(self, now: int) -> None:
        """Start a handshake unless a channel is open or one is under way."""
        if self.channel is None and self.dialing is None:
            self._handshake_retries = 0
            self.dialing = Dialing(self._nonce(), now)
            self._send_hello(now)

    def _send_confirm(self, channel: SendingChannel) -> None:
        self._outbox.append((channel.confirm, self.peer))
        self._counters.datagrams_sent += 1

    def _send_hello(self, now: int) -> None:
        assert self.dialing is not None
        self.dialing.sent_at = now
        self._outbox.append((self._hello(self.dialing.nonce), self.peer))
        self._counters.datagrams_sent += 1
        self._counters.hellos_sent += 1

    def on_challenge(self, echo: int, timestamp: int, session: int, now: int) -> Optional[str]:
        """What a CHALLENGE echoing ``echo`` (and ``timestamp``, of the DATA it answers)
        means for this side: OPEN a channel with its cookie, AGAIN (the CONFIRM was sent
        again), or None (stale, or a CONFIRM went again less than a round trip ago).

        It answers the HELLO under way, or DATA of the channel in use that the peer
        did not know. If the channel is not yet confirmed, that DATA most likely
        overtook its CONFIRM, or the CONFIRM was lost: the CONFIRM goes again
        (at most once a round trip) and the channel stays, so reordering cannot
        make the token churn. If the channel is confirmed, a challenge of DATA
        sent before the confirmation is such a late echo too; of DATA sent since,
        it means the peer lost the channel (or restarted): open a new one.
        """
        dialing, channel = self.dialing, self.channel
        if dialing is not None and echo == dialing.nonce:
            return OPEN
        if channel is None or echo != channel.token:
            return None
        if session != channel.peer_session:
            return OPEN
        confirmed_at = channel.confirmed_at
        if confirmed_at is None:
            if now - channel.opened_at >= self._cookie_lifetime // 2:
                return OPEN  # the cookie may expire before a copy arrives: take the fresh one
            if now - channel.confirm_sent_at < (self.rtt.srtt or 0):
                return None
            channel.confirm_sent_at = now
            self._send_confirm(channel)
            return AGAIN
        if not 0 < (timestamp - confirmed_at) & U32 < ID_HALF_RANGE:
            return None
        return OPEN

    def open(self, channel: SendingChannel, now: int) -> None:
        """A CHALLENGE gave a cookie: confirm ``channel`` and send on it from now on.

        If it replaces a channel to an earlier session of the peer, what was
        in flight on that one went with that incarnation, delivered or not:
        it fails. Otherwise the peer still holds what it received (it only
        never got, or lost track of, this channel's CONFIRM), so what is in
        flight goes again on the new channel and duplicates are recognised.
        """
        old = self.channel
        dialing = self.dialing
        if dialing is not None and dialing.retries == 0:
            self.rtt.sample(now - dialing.sent_at)  # an unambiguous round trip
        if old is not None and old.confirmed_at is not None:
            self._handshake_retries = 0  # the channel it replaces was held: a handshake of its own
        self.dialing = None
        if old is not None and old.peer_session != channel.peer_session:
            self._fail_in_flight(RESTARTED)
        self.channel = channel
        self._send_confirm(channel)
        self._counters.channels_opened += 1
        for transmission in list(self._in_flight.values()):
            if not transmission.message.done:  # a give-up ends the rest of its message
                self._retransmit(transmission, now)
        for message_id, payload in self.best_effort:
            self._send_best_effort(message_id, payload, self._fragments(len(payload)), now)
        self._clear_best_effort()
        self._start_waiting(now)
        self._fill(now)

    def on_confirmed(self, now: int) -> None:
        """The first ACK on the channel arrived: the peer holds it, the CONFIRM is done."""
        channel = self.channel
        assert channel is not None
        channel.confirmed_at = now

    def peer_restarted(self, now: int) -> None:
        """The peer restarted (a handshake it began proved it): the channel to its earlier
        session is gone with what was in flight on it; what waits dials the new one."""
        self.channel = None
        self._fail_in_flight(RESTARTED)
        if self.waiting or self.best_effort:
            self._dial(now)

    # -- acknowledgements and timers ---------------------------------------

    def deadline(self) -> Optional[int]:
        dialing, channel = self.dialing, self.channel
        if dialing is not None:
            return dialing.sent_at + self.rtt.rto
        deadline = None
        if channel is not None and channel.confirmed_at is None:
            deadline = channel.confirm_sent_at + self.rtt.rto
        in_flight = self._in_flight
        if in_flight:
            retransmit = next(iter(in_flight.values())).sent_at + self.rtt.rto
            probe = self._probe_timeout()
            if probe is not None:
                retransmit = min(retransmit, next(reversed(in_flight.values())).sent_at + probe)
            deadline = retransmit if deadline is None else min(deadline, retransmit)
        return deadline

    def on_ack(self, entries: Iterable[AckEntry], echo: int, complete: bool, now: int) -> None:
        """Take an ACK; ``complete`` says its entries are all the peer holds, which
        is what makes unacknowledged fragments older than the echo lost."""
        in_flight = self._in_flight
        newly_acked = 0
        for wire_id, first, run in entries:
            message = self.messages.get(wire_id)
            if message is None:
                continue  # already complete or ended: a late or repeated entry
            if run == 0:
                self._fail(message, DROPPED)
                continue
            acked = message.acked
            end = min(first + run, message.count)
            fresh = acked.count(0, first, end)
            if not fresh:
                continue
            base = wire_id << 16
            pop = in_flight.pop
            if fresh == end - first:  # the usual case: a run of fragments none of which was acked
                for key in range(base | first, base | end):
                    pop(key, None)
                acked[first:end] = b"\x01" * (end - first)
            else:
                for index in range(first, end):
                    if not acked[index]:
                        acked[index] = 1
                        pop(base | index, None)
            newly_acked += fresh
            message.unacked -= fresh
            if message.unacked == 0:
                message.done = True
                del self.messages[wire_id]
                self._counters.acked += 1
        if self.waiting:
            self._start_waiting(now)
        age = (now - echo) & U32
        # Echo 0 is none (an ACK with no DATA to answer: a CONFIRM's, a drop announced); else
        # beyond half the range, a timestamp from another era: neither is a round trip.
        if echo and age < ID_HALF_RANGE:
            if newly_acked:
                self.rtt.sample(age)
                self._probes = 0
            if complete:
                self._latest_received = max(self._latest_received, now - age)
                self._retransmit_lost(now)
        self._fill(now)

    def on_timer(self, now: int) -> None:
        dialing, channel = self.dialing, self.channel
        if dialing is not None:
            if dialing.sent_at + self.rtt.rto <= now:
                dialing.retries += 1
                self._handshake_retries += 1
                if self._handshake_retries > self._retry_limit:
                    self._abandon()
                else:
                    self._send_hello(now)
                    self.rtt.back_off()
            return
        if channel is not None and channel.confirmed_at is None and channel.confirm_sent_at + self.rtt.rto <= now:
            self._handshake_retries += 1
            if self._handshake_retries > self._retry_limit:
                self._abandon()
                return
            self.rtt.back_off()
            if now - channel.opened_at >= self._cookie_lifetime // 2:
                # Its cookie would expire before a copy arrived: start again, with a HELLO.
                # What is in flight waits for the next channel, which sends it again.
                self.channel = None
                self.dialing = Dialing(self._nonce(), now)
                self._send_hello(now)
                return
            channel.confirm_sent_at = now
            self._send_confirm(channel)
        in_flight = self._in_flight
        if not in_flight:
            return
        if next(iter(in_flight.values())).sent_at + self.rtt.rto <= now:
            self._retransmission_timeout(now)
        else:
            probe = self._probe_timeout()
            if probe is not None and next(reversed(in_flight.values())).sent_at + probe <= now:
                self._probes += 1
                self._counters.probes += 1
                self._retransmit(next(iter(in_flight.values())), now)
        self._fill(now)

    def _probe_timeout(self) -> Optional[int]:
        srtt = self.rtt.srtt
        if self._probes >= MAX_PROBES or srtt is None:
            return None
        return max(2 * srtt, MIN_PROBE_TIMEOUT) << self._probes

    def _retransmission_timeout(self, now: int) -> None:
        limit = now - self.rtt.rto
        expired = []
        for transmission in self._in_flight.values():
            if transmission.sent_at > limit:
                break
            expired.append(transmission)
        for transmission in expired:
            if not transmission.message.done:
                self._retransmit(transmission, now)
        self.rtt.back_off()
        self._probes = MAX_PROBES

    def _retransmit_lost(self, now: int) -> None:
        srtt = self.rtt.srtt or 0
        horizon = self._latest_received - max(self._reorder_window, srtt // 4)
        in_flight = self._in_flight
        while in_flight:
            transmission = next(iter(in_flight.values()))
            if transmission.sent_at >= horizon:
                return
            self._counters.fast_retransmits += 1
            self._retransmit(transmission, now)

    def _fill(self, now: int) -> None:
        """Send queued fragments while the window has room: the bulk sender's loop, so
        what each fragment needs is looked up once per call, not once per fragment."""
        queue = self._queue
        in_flight = self._in_flight
        window = self._window
        if not queue or len(in_flight) >= window:
            return
        channel = self.channel
        assert channel is not None
        token, mac, peer, outbox, frame = channel.token, channel.mac, self.peer, self._outbox, wire.data
        sent = 0
        while queue and len(in_flight) < window:
            message = queue[0]
            if not message.done:
                wire_id, count, length, acked = message.wire_id, message.count, message.length, message.acked
                view, size = message.view, message.fragment_size
                index = message.next_index
                while index < count and len(in_flight) < window:
                    if not acked[index]:
                        transmission = FragmentInFlight(message, index, now)
                        in_flight[transmission.key] = transmission
                        start = index * size
                        outbox.append((frame(token, mac, True, wire_id, index, count, length, now,
                                             view[start : start + size]), peer))
                        sent += 1
                    index += 1
                message.next_index = index
                if index < count:
                    break  # the window is full
            queue.popleft()
        self._counters.datagrams_sent += sent

    def _transmit(self, transmission: FragmentInFlight, now: int) -> None:
        """Send a fragment again; it moves to the newest end of the transmission order."""
        message, index, channel = transmission.message, transmission.index, self.channel
        assert channel is not None
        transmission.sent_at = now
        in_flight = self._in_flight
        del in_flight[transmission.key]
        in_flight[transmission.key] = transmission
        self._outbox.append((wire.data(channel.token, channel.mac, True, message.wire_id, index, message.count,
                                       message.length, now, message.chunk(index)), self.peer))
        self._counters.datagrams_sent += 1

    def _retransmit(self, transmission: FragmentInFlight, now: int) -> None:
        transmission.retries += 1
        if transmission.retries > self._retry_limit:
            self._give_up(transmission.message)
            return
        self._counters.retransmitted += 1
        self._transmit(transmission, now)

    def _give_up(self, message: OutgoingMessage) -> None:
        """The peer stopped answering: this message fails, and so does everything waiting
        behind it (each would only wait out its own retries against a silent peer)."""
        self._fail(message, GAVE_UP % self._retry_limit)
        self._fail_waiting(GAVE_UP % self._retry_limit)

    def _fail(self, message: OutgoingMessage, reason: str) -> None:
        message.done = True
        del self.messages[message.wire_id]
        for key in [k for k, t in self._in_flight.items() if t.message is message]:
            del self._in_flight[key]
        self._report_failed(message, reason)

    def _fail_in_flight(self, reason: str) -> None:
        for message in list(self.messages.values()):
            self._fail(message, reason)
        self._queue.clear()

    def _fail_waiting(self, reason: str) -> None:
        failed = list(self.waiting)
        self.waiting.clear()
        self._waiting_bytes = 0
        for message in failed:
            self._report_failed(message, reason)

    def _abandon(self) -> None:
        """The handshake went unanswered retry_limit times: the peer is not there. Everything
        accepted for it ends (the best-effort messages are counted dropped)."""
        reason = NO_ANSWER % self._retry_limit
        self.dialing = None
        self.channel = None
        self._fail_in_flight(reason)
        self._fail_waiting(reason)
        self._counters.best_effort_dropped += len(self.best_effort)
        self._clear_best_effort()

    def _clear_best_effort(self) -> None:
        self.best_effort.clear()
        self._best_effort_bytes = 0

    def _report_failed(self, message: OutgoingMessage, reason: str) -> None:
        self._counters.failed += 1
        self._events.append(SendFailed(self.peer, message.message_id, reason))

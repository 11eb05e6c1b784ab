"""The sending half of one peer: fragments in flight, loss recovery, give-up.

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

Fragments in flight are kept in transmission order, which is also deadline
order: the oldest transmission (loss candidate, RTO) and the newest (probe)
are at the ends of one OrderedDict.
"""
from __future__ import annotations

from collections import OrderedDict, deque
from typing import Deque, Dict, Iterable, List, Optional, Tuple

from appliance.net.config import TransportConfig
from appliance.net.counters import Counters
from appliance.net.events import Event, SendFailed
from appliance.net.rtt import GRANULARITY, RttEstimator
from appliance.net.wire import ID_HALF_RANGE, U32, AckEntry, Framer, fragment_geometry

Outbox = List[Tuple[bytes, str]]

#: Shortest probe timeout: scheduling noise on a busy device is not a loss.
MIN_PROBE_TIMEOUT = 2 * GRANULARITY
#: Probes sent (each after twice the previous wait) before only the RTO is left.
MAX_PROBES = 2


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


class Transmission:
    """One fragment in flight; survives its retransmissions to count them."""

    __slots__ = ("message", "index", "key", "sent_at", "retries")

    def __init__(self, message: OutgoingMessage, index: int) -> None:
        self.message = message
        self.index = index
        self.key = (message.wire_id << 16) | index
        self.sent_at = 0
        self.retries = 0


class Outbound:
    """What this endpoint sends to one peer: message ids, the reliable messages not yet
    acknowledged, the fragments in flight and the peer's round-trip estimate."""

    def __init__(self, peer: str, config: TransportConfig, framer: Framer, outbox: Outbox,
                 events: List[Event], counters: Counters) -> None:
        self.peer = peer
        self.rtt = RttEstimator(config)
        #: Unacknowledged reliable messages on the wire, by wire id, oldest first.
        self.messages: Dict[int, OutgoingMessage] = {}
        #: Reliable messages accepted but waiting for room among ``messages``.
        self.waiting: Deque[OutgoingMessage] = deque()
        self._waiting_bytes = 0
        self._queue: Deque[OutgoingMessage] = deque()
        self._in_flight: OrderedDict[int, Transmission] = OrderedDict()
        self._next_reliable = 1
        self._next_best_effort = 1
        #: Send time of the newest DATA the peer is known to have received.
        self._latest_received = 0
        #: Probes since the last acknowledgement of new data.
        self._probes = 0
        self._framer = framer
        self._outbox = outbox
        self._events = events
        self._counters = counters
        self._fragment_payload = config.fragment_payload(framer.authenticated)
        self._window = config.window
        self._max_in_flight = config.max_in_flight
        self._max_queued = config.max_queued
        self._queue_memory = config.queue_memory
        self._replay_window = config.replay_window
        self._retry_limit = config.retry_limit
        self._reorder_window = config.reorder_window

    @property
    def busy(self) -> bool:
        return bool(self._in_flight)

    def refusal(self, size: int) -> Optional[str]:
        """Why ``send`` must refuse another reliable message of ``size`` bytes, or None."""
        if len(self.waiting) >= self._max_queued:
            return "%d reliable messages to %s already wait behind %d unacknowledged ones (max_queued)" % (
                len(self.waiting), self.peer, len(self.messages))
        if self.waiting and self._waiting_bytes + size > self._queue_memory:
            return "reliable messages waiting for %s would hold more than %d bytes (queue_memory)" % (
                self.peer, self._queue_memory)
        return None

    def _may_start(self, message: OutgoingMessage) -> bool:
        """Room among the messages on the wire, and the oldest of them still inside the
        receiver's replay window once this one is sent (so it is never refused as too old)."""
        if len(self.messages) >= self._max_in_flight:
            return False
        for oldest in self.messages.values():
            return message.message_id - oldest.message_id < self._replay_window
        return True

    def send(self, payload: bytes, reliable: bool, now: int) -> int:
        count = max(1, -(-len(payload) // self._fragment_payload))
        if not reliable:
            message_id = self._next_best_effort
            self._next_best_effort += 1
            if count == 1:  # the usual token: one datagram, nothing to keep
                self._outbox.append((self._framer.data(False, message_id & U32, 0, 1, len(payload), now, payload),
                                     self.peer))
                self._counters.datagrams_sent += 1
                return message_id
            message = OutgoingMessage(message_id, payload, count)
            for index in range(count):
                datagram = self._framer.data(False, message.wire_id, index, count, message.length,
                                             now, message.chunk(index))
                self._outbox.append((datagram, self.peer))
            self._counters.datagrams_sent += count
            return message_id
        message_id = self._next_reliable
        self._next_reliable += 1
        message = OutgoingMessage(message_id, payload, count)
        if self.waiting or not self._may_start(message):
            self.waiting.append(message)
            self._waiting_bytes += message.length
            self._counters.queued += 1
            return message_id
        self._start(message, now)
        return message_id

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

    def deadline(self) -> Optional[int]:
        in_flight = self._in_flight
        if not in_flight:
            return None
        deadline = next(iter(in_flight.values())).sent_at + self.rtt.rto
        probe = self._probe_timeout()
        if probe is not None:
            deadline = min(deadline, next(reversed(in_flight.values())).sent_at + probe)
        return deadline

    def on_ack(self, entries: Iterable[AckEntry], echo: int, complete: bool, now: int) -> None:
        """Take an ACK; ``complete`` says its entries are all the peer holds, which
        is what makes unacknowledged fragments older than the echo lost."""
        in_flight = self._in_flight
        newly_acked = 0
        for wire_id, first, run in entries:
            message = self.messages.get(wire_id)
            if message is None:
                continue  # already complete or given up: a late or repeated entry
            acked = message.acked
            base = wire_id << 16
            for index in range(first, min(first + run, message.count)):
                if acked[index]:
                    continue
                acked[index] = 1
                newly_acked += 1
                message.unacked -= 1
                in_flight.pop(base | index, None)
            if message.unacked == 0:
                message.done = True
                del self.messages[wire_id]
                self._counters.acked += 1
        if self.waiting:
            self._start_waiting(now)
        age = (now - echo) & U32
        if age < ID_HALF_RANGE:  # else a timestamp from another era: ignore it
            if newly_acked:
                self.rtt.sample(age)
                self._probes = 0
            if complete:
                self._latest_received = max(self._latest_received, now - age)
                self._retransmit_lost(now)
        self._fill(now)

    def on_timer(self, now: int) -> None:
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
        """Send queued fragments while the window has room."""
        queue = self._queue
        in_flight = self._in_flight
        while queue and len(in_flight) < self._window:
            message = queue[0]
            index = message.next_index
            message.next_index = index + 1
            if message.next_index >= message.count or message.done:
                queue.popleft()
            if not message.done and not message.acked[index]:
                self._transmit(Transmission(message, index), now)

    def _transmit(self, transmission: Transmission, now: int) -> None:
        message = transmission.message
        transmission.sent_at = now
        in_flight = self._in_flight
        in_flight.pop(transmission.key, None)
        in_flight[transmission.key] = transmission
        datagram = self._framer.data(True, message.wire_id, transmission.index, message.count,
                                     message.length, now, message.chunk(transmission.index))
        self._outbox.append((datagram, self.peer))
        self._counters.datagrams_sent += 1

    def _retransmit(self, transmission: Transmission, now: int) -> None:
        transmission.retries += 1
        if transmission.retries > self._retry_limit:
            self._give_up(transmission.message)
            return
        self._counters.retransmitted += 1
        self._transmit(transmission, now)

    def _give_up(self, message: OutgoingMessage) -> None:
        """The peer stopped answering: this message fails, and so does everything waiting
        behind it (each would only wait out its own retries against a silent peer)."""
        message.done = True
        del self.messages[message.wire_id]
        for key in [k for k, t in self._in_flight.items() if t.message is message]:
            del self._in_flight[key]
        reason = "fragment unacknowledged after %d retransmissions" % self._retry_limit
        failed = [message] + list(self.waiting)
        self.waiting.clear()
        self._waiting_bytes = 0
        for each in failed:
            self._counters.failed += 1
            self._events.append(SendFailed(self.peer, each.message_id, reason))

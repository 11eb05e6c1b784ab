"""Transport configuration: every limit the endpoint enforces, in one frozen value.

All times are integer microseconds (ticks of the caller's monotonic clock).
The defaults suit a wired or Wi-Fi LAN of edge devices: datagrams that cross
any IPv6 path or VPN tunnel unfragmented, a retransmission floor well above a
LAN round trip but far below the 1 s that RFC 6298 sets for the Internet, and
a give-up time of 12 to 21 seconds for a peer that has vanished (``give_up_bounds``).
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Tuple

from appliance.net import wire
from appliance.net.rtt import MAX_PROBES, MIN_PROBE_TIMEOUT, backed_off

#: Largest UDP payload an IPv4 datagram can carry.
MAX_UDP_PAYLOAD = 65507


@dataclass(frozen=True)
class TransportConfig:
    #: Largest datagram (UDP payload) the endpoint emits. 1232 = the IPv6
    #: minimum link MTU (1280) minus the IPv6 and UDP headers, so no path
    #: fragments it; fragment payload is this minus the header and trailer.
    mtu: int = 1232
    #: Largest message ``send`` accepts and a receiver reassembles.
    max_message_size: int = 4 * 1024 * 1024
    #: Reliable fragments in flight (sent, not yet acknowledged) per peer.
    #: Keep ``window * ~2.3 KB`` below the receiver's socket buffer.
    window: int = 128
    #: Reliable messages on the wire and not yet acknowledged, per peer.
    max_in_flight: int = 32
    #: Reliable messages accepted by ``send`` that wait, per peer, for one of
    #: those ``max_in_flight`` to be acknowledged; beyond it ``send`` refuses.
    #: Control messages queue here rather than being lost in a burst.
    max_queued: int = 1024
    #: Bytes those waiting messages may hold, per peer.
    queue_memory: int = 16 * 1024 * 1024
    #: Peers the endpoint keeps state for; idle ones are evicted beyond this.
    max_peers: int = 256
    #: Multi-fragment messages being reassembled at once, per peer.
    max_reassemblies: int = 32
    #: Bytes reserved by all reassembly buffers together.
    reassembly_memory: int = 16 * 1024 * 1024
    #: Bytes the reassembly buffers of one peer may reserve (capped by
    #: ``reassembly_memory``), so no single peer can take all of it. The
    #: default fits the largest message even in 65535 one-byte fragments.
    peer_reassembly_memory: int = 8 * 1024 * 1024
    #: A best-effort reassembly that receives no new fragment for this long is
    #: dropped; a reliable one lives at least ``reliable_reassembly_timeout``.
    reassembly_timeout: int = 10_000_000
    #: Retransmission timeout before the first round-trip sample.
    rto_initial: int = 200_000
    #: Floor of the retransmission timeout (RFC 6298 says 1 s; a LAN needs far less).
    rto_min: int = 30_000
    #: Ceiling of the retransmission timeout, also after backoff.
    rto_max: int = 1_000_000
    #: Factor applied to the timeout after each expiry without a new sample.
    rto_backoff: float = 1.5
    #: Retransmissions of one fragment before its message is reported failed.
    retry_limit: int = 20
    #: A fragment counts as lost once the peer acknowledged DATA sent this
    #: much later (or a quarter round trip, if longer): tolerated reordering.
    reorder_window: int = 1000
    #: Message ids remembered per peer and class for duplicate and replay
    #: suppression; a reliable message waits in the queue rather than let
    #: the oldest unacknowledged id fall out of the receiver's window.
    replay_window: int = 1024
    #: Earlier boot sessions remembered per peer; their datagrams are refused.
    retired_sessions: int = 8

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if field.name == "rto_backoff":
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 1:
                    raise ValueError("rto_backoff must be a number >= 1, got %r" % (value,))
            elif type(value) is not int:
                raise TypeError("%s must be an int, got %r" % (field.name, value))
            elif value < 0 or (value == 0 and field.name not in ("reorder_window", "retired_sessions")):
                raise ValueError("%s must be positive, got %r" % (field.name, value))
        if not wire.MIN_DATAGRAM <= self.mtu <= MAX_UDP_PAYLOAD:
            raise ValueError(
                "mtu must be within [%d, %d], got %d" % (wire.MIN_DATAGRAM, MAX_UDP_PAYLOAD, self.mtu)
            )
        largest = wire.MAX_FRAGMENTS * self.fragment_payload(authenticated=True)
        if self.max_message_size > min(largest, wire.U32):
            raise ValueError(
                "max_message_size %d needs more than %d fragments of an mtu of %d; "
                "raise mtu or lower max_message_size (at most %d)"
                % (self.max_message_size, wire.MAX_FRAGMENTS, self.mtu, min(largest, wire.U32))
            )
        if not self.rto_min <= self.rto_initial <= self.rto_max:
            raise ValueError(
                "need rto_min <= rto_initial <= rto_max, got %d, %d, %d"
                % (self.rto_min, self.rto_initial, self.rto_max)
            )
        if self.max_in_flight * 2 > self.replay_window:
            raise ValueError(
                "replay_window (%d) must be at least twice max_in_flight (%d)"
                % (self.replay_window, self.max_in_flight)
            )
        if self.replay_window > wire.ID_HALF_RANGE:
            raise ValueError("replay_window must be below 2**31, got %d" % self.replay_window)
        if self.window > wire.MAX_FRAGMENTS:
            raise ValueError("window must be at most %d, got %d" % (wire.MAX_FRAGMENTS, self.window))

    def fragment_payload(self, authenticated: bool) -> int:
        """Payload bytes one DATA datagram carries under this mtu."""
        return self.mtu - wire.DATA_HEADER.size - wire.trailer_size(authenticated)

    def give_up_bounds(self) -> Tuple[int, int]:
        """Shortest and longest time (µs) from a fragment's first transmission to its
        message being reported failed, when the peer answers nothing.

        A fragment fails at what would be its ``retry_limit + 1``-th
        retransmission. Longest: every wait is a full ``rto_max``. Shortest:
        the peer was answering at the ``rto_min`` floor, so the first
        ``MAX_PROBES`` attempts are probes at their 2 ms minimum, doubling,
        and the rest follow the timeout backing off from ``rto_min``. The same
        schedule (from ``rto_initial``) applies to an unanswered handshake,
        which lies between the two.
        """
        attempts = self.retry_limit + 1
        probes = min(MAX_PROBES, attempts)
        shortest = sum(MIN_PROBE_TIMEOUT << p for p in range(probes))
        rto = self.rto_min
        for _ in range(attempts - probes):
            shortest += rto
            rto = backed_off(rto, self.rto_backoff, self.rto_max)
        return shortest, attempts * self.rto_max

    @property
    def reliable_reassembly_timeout(self) -> int:
        """How long a reliable reassembly waits for a new fragment before it is dropped.

        Longer than its sender can keep retransmitting (the longest give-up
        time, plus one ``rto_max`` for the last copy to arrive), so an outage
        its sender survives never costs the fragments already acknowledged.
        """
        return max(self.reassembly_timeout, self.give_up_bounds()[1] + self.rto_max)

    @property
    def cookie_lifetime(self) -> int:
        """How long a handshake cookie stays valid: a round trip with room to spare."""
        return 2 * self.rto_max

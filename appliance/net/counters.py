"""Counters kept per peer and for the endpoint as a whole.

One fixed set of names for both, so a dashboard or a log line at shutdown
reads the same schema everywhere; a counter that never moved reads 0.

Every datagram handed to the endpoint is counted once in
``datagrams_received`` of one section (its peer's, or the endpoint-wide one
when the address is not a peer), and, if refused, once more under exactly one
refusal cause in that same section. The endpoint-wide section also absorbs
the counters of every peer it evicts, so sums over all sections stay exact.
"""
from __future__ import annotations

from typing import Dict

COUNTER_NAMES = (
    # messages
    "sent",  # accepted by send(), reliable or not
    "acked",  # reliable messages fully acknowledged
    "failed",  # reliable messages given up (retry limit, peer restarted, receiver dropped it)
    "best_effort_dropped",  # best-effort messages never sent: no channel could be opened, or no room
    "delivered",  # messages handed to the application
    "bytes_delivered",
    # datagrams
    "datagrams_sent",
    "datagrams_received",  # every datagram handed in, refused or not
    "acks_sent",
    "acks_received",
    "retransmitted",  # fragments sent again, for whatever reason
    "fast_retransmits",  # ... because a later one was acknowledged
    "probes",  # ... because nothing was acknowledged for two round trips
    "duplicates",  # datagrams of messages already delivered or fragments already held
    "hellos_sent",  # handshake requests, retransmissions included
    "challenges_sent",  # answers to a HELLO or to DATA of a channel not (or no longer) known
    "channels_opened",  # handshakes completed, either direction
    "overtaken",  # DATA refused for an unknown channel, then received when its CONFIRM came
    # refused input, one cause per refused datagram
    "truncated",
    "bad_version",
    "bad_crc",
    "bad_auth",
    "bad_type",
    "bad_fragment",  # impossible fragment index, count or size
    "too_large",  # a message over max_message_size, received or refused by send()
    "bad_session",  # a handshake naming session or token 0, or not this endpoint's session
    "bad_cookie",  # a CONFIRM whose cookie this endpoint did not issue, or issued too long ago
    "unknown_channel",  # DATA or ACK under a token this endpoint does not hold for that address
    "stale_handshake",  # a CHALLENGE answering nothing this endpoint asked, or an older CONFIRM
    "stale_session",  # a handshake from a peer's earlier boot
    "replayed",  # message id older than the replay window
    "dropped_message",  # fragment of a reliable message this endpoint dropped (and said so)
    "reassembly_full",  # no room in the endpoint's reassembly memory
    "peer_reassembly_full",  # no room within the peer's own share of reassembly
    "peers_full",  # no room for a new peer
    # limits and events
    "queued",  # reliable messages that waited before going on the wire
    "in_flight_full",  # reliable messages refused: the waiting queue was full too
    "reassembly_evicted",
    "reassembly_expired",
    "restarts",  # the peer came back with a new session
)

#: Only in the endpoint-wide section.
ENDPOINT_COUNTER_NAMES = ("peers_evicted",)

#: The refusal causes: every refused datagram moves exactly one of these.
REFUSALS = COUNTER_NAMES[COUNTER_NAMES.index("truncated") : COUNTER_NAMES.index("peers_full") + 1]


class TransportCounters:
    __slots__ = COUNTER_NAMES + ENDPOINT_COUNTER_NAMES

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, 0)

    def bump(self, name: str, amount: int = 1) -> None:
        setattr(self, name, getattr(self, name) + amount)

    def absorb(self, other: TransportCounters) -> None:
        """Add another section's counters to these (an evicted peer's, into the endpoint's)."""
        for name in COUNTER_NAMES:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self, endpoint_wide: bool = False) -> Dict[str, int]:
        names = self.__slots__ if endpoint_wide else COUNTER_NAMES
        return {name: getattr(self, name) for name in names}

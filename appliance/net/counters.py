"""Counters kept per peer and for the endpoint as a whole.

One fixed set of names for both, so a dashboard or a log line at shutdown
reads the same schema everywhere; a counter that never moved reads 0.
"""
from __future__ import annotations

from typing import Dict

COUNTER_NAMES = (
    # messages
    "sent",  # accepted by send(), reliable or not
    "acked",  # reliable messages fully acknowledged
    "failed",  # reliable messages given up after the retry limit
    "delivered",  # messages handed to the application
    "bytes_delivered",
    # datagrams
    "datagrams_sent",
    "datagrams_received",
    "acks_sent",
    "acks_received",
    "retransmitted",  # fragments sent again, for whatever reason
    "fast_retransmits",  # ... because a later one was acknowledged
    "probes",  # ... because nothing was acknowledged for two round trips
    "duplicates",  # datagrams of messages already delivered or fragments already held
    # refused input
    "truncated",
    "bad_version",
    "bad_crc",
    "bad_auth",
    "bad_type",
    "bad_fragment",  # impossible fragment index, count or size
    "too_large",  # a message over max_message_size, received or refused by send()
    "replayed",  # message id older than the replay window
    "stale_session",  # datagram from a peer's earlier boot
    "stale_ack",  # ACK for another session of ours
    # limits
    "queued",  # reliable messages that waited for max_in_flight to make room
    "in_flight_full",  # reliable messages refused: the waiting queue was full too
    "reassembly_full",
    "reassembly_evicted",
    "reassembly_expired",
    "restarts",  # the peer came back with a new session
)

#: Only in the endpoint-wide section.
ENDPOINT_COUNTER_NAMES = ("peers_full", "peers_evicted", "unknown_peer")


class Counters:
    __slots__ = COUNTER_NAMES + ENDPOINT_COUNTER_NAMES

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, 0)

    def bump(self, name: str, amount: int = 1) -> None:
        setattr(self, name, getattr(self, name) + amount)

    def as_dict(self, endpoint_wide: bool = False) -> Dict[str, int]:
        names = self.__slots__ if endpoint_wide else COUNTER_NAMES
        return {name: getattr(self, name) for name in names}

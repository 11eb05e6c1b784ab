"""Retransmission timeout from measured round trips (RFC 6298, LAN-tuned bounds).

Samples come from timestamps the peer echoes in its ACKs, so a sample taken
while fragments are being retransmitted is still unambiguous: Karn's rule
(discard samples of retransmitted segments) is not needed.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from appliance.net.config import TransportConfig

#: Clock granularity G of RFC 6298: the socket shell waits in epoll, whose
#: timeout has millisecond resolution.
GRANULARITY = 1000
#: Shortest probe timeout: scheduling noise on a busy device is not a loss.
MIN_PROBE_TIMEOUT = 2 * GRANULARITY
#: Probes sent (each after twice the previous wait) before only the RTO is left.
MAX_PROBES = 2


def backed_off(rto: int, factor: float, ceiling: int) -> int:
    """The timeout after one more expiry: one multiplication, capped.

    A power of the factor computed from a count of expiries would overflow a
    float after some 1750 of them (a peer silent long enough), and the cap
    makes further growth moot anyway.
    """
    return min(ceiling, int(rto * factor))


class RttEstimator:
    __slots__ = ("srtt", "rttvar", "rto", "_base", "_min", "_max", "_factor")

    def __init__(self, config: TransportConfig) -> None:
        self.srtt: Optional[int] = None
        self.rttvar = 0
        self._min = config.rto_min
        self._max = config.rto_max
        self._factor = config.rto_backoff
        self._base = config.rto_initial
        self.rto = self._base

    def sample(self, rtt: int) -> None:
        """Fold in one round trip; it also ends any backoff (RFC 6298 section 5.7)."""
        if self.srtt is None:
            self.srtt = rtt
            self.rttvar = rtt // 2
        else:
            self.rttvar = (3 * self.rttvar + abs(self.srtt - rtt)) // 4
            self.srtt = (7 * self.srtt + rtt) // 8
        self._base = min(self._max, max(self._min, self.srtt + max(GRANULARITY, 4 * self.rttvar)))
        self.rto = self._base

    def back_off(self) -> None:
        """The timeout expired: wait longer before the next retransmission."""
        self.rto = backed_off(self.rto, self._factor, self._max)

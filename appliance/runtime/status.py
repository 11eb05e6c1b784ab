"""Reading status answers: the transport counters of many network managers, added up."""
from __future__ import annotations

from typing import Any, Dict, Iterable

#: Transport counters a summary adds up over every ensemble and peer.
TRANSPORT_TOTALS = ("sent", "delivered", "retransmitted", "failed", "duplicates", "queued",
                    "bad_crc", "bad_auth", "truncated", "replayed")


def transport_totals(network_statuses: Iterable[Dict[str, Any]]) -> Dict[str, int]:
    """Each counter of ``TRANSPORT_TOTALS`` summed over the network managers' status
    answers, every peer of each (and each endpoint's own section) included."""
    totals = dict.fromkeys(TRANSPORT_TOTALS, 0)
    for status in network_statuses:
        for counters in status.get("transport", {}).values():
            for name in TRANSPORT_TOTALS:
                totals[name] += counters.get(name, 0)
    return totals

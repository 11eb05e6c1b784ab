"""Reading status answers: counters of many processes, added up."""
from __future__ import annotations

from typing import Any, Dict, Iterable

from appliance.runtime.app import split_drops
from appliance.runtime.counters import Counters

#: Transport counters a summary adds up over every ensemble and peer.
TRANSPORT_TOTALS = ("sent", "delivered", "retransmitted", "failed", "duplicates", "queued",
                    "bad_crc", "bad_auth", "truncated", "replayed",
                    "best_effort_dropped", "reassembly_expired", "reassembly_evicted")


def transport_totals(network_statuses: Iterable[Dict[str, Any]]) -> Dict[str, int]:
    """Each counter of ``TRANSPORT_TOTALS`` summed over the network managers' status
    answers, every peer of each (and each endpoint's own section) included."""
    totals = dict.fromkeys(TRANSPORT_TOTALS, 0)
    for status in network_statuses:
        for counters in status.get("transport", {}).values():
            for name in TRANSPORT_TOTALS:
                totals[name] += counters.get(name, 0)
    return totals


def add_late_counts(summary: Dict[str, Any], statuses: Iterable[Dict[str, Any]]) -> None:
    """Add to an app's summary what its teardown reports cannot hold, from every process's
    status answer after the run: the network processes' own refusals (undecodable
    datagrams), the runtime manager's, processes of ensembles hosting no part of the app,
    and everything counted after a core reported (cores count afresh at teardown, so
    nothing is counted twice)."""
    counters = Counters.merged(status.get("counters", {}) for status in statuses)
    discarded, lost = split_drops(counters)
    for table, extra in ((summary["discarded"], discarded), (summary["lost"], lost)):
        for cause, n in extra.items():
            table[cause] = table.get(cause, 0) + n
    for name, n in counters.items():
        if name.startswith("refused."):
            cause = name[len("refused."):]
            summary["refused"][cause] = summary["refused"].get(cause, 0) + n

"""Reading status answers: counters of many processes, added up."""
from __future__ import annotations

from typing import Any, Collection, Dict, Iterable

from appliance.net.endpoint import ENDPOINT
from appliance.runtime.app import split_drops
from appliance.runtime.counters import Counters

#: Transport counters a summary adds up over every ensemble and peer.
TRANSPORT_TOTALS = ("sent", "delivered", "retransmitted", "failed", "duplicates", "queued",
                    "bad_crc", "bad_auth", "truncated", "replayed",
                    "best_effort_dropped", "reassembly_expired", "reassembly_evicted")


#: Strangers' sections a status answer carries (the most recently active); see ``answered_transport``.
STRANGER_SECTIONS = 16
#: The section that adds up the counters of the other strangers.
STRANGERS = "strangers"
#: A peer's fields that are not counters, left out of that sum.
_NOT_ADDED = ("rtt_us", "rto_us", "session")


def answered_transport(stats: Dict[str, Dict[str, int]], members: Collection[str]) -> Dict[str, Dict[str, int]]:
    """The transport's counters as a status answer carries them: the endpoint's own section,
    every member's, the ``STRANGER_SECTIONS`` most recently active strangers' (the command
    asking is one), and the other strangers' counters added up in one section, ``STRANGERS``,
    whose ``peers`` says how many. Completed handshakes from thousands of addresses fill a
    peer table (each holds a slot until it has been idle 22 s); an answer with a section for
    each would outgrow the queue it is relayed through, and the process would go missing
    from ``status``. Sums over the sections stay those of the whole table.

    ``stats`` is ``Endpoint.stats()``: peers least recently active first."""
    strangers = [address for address in stats if address != ENDPOINT and address not in members]
    folded = strangers[:max(0, len(strangers) - STRANGER_SECTIONS)]
    if not folded:
        return stats
    gone = set(folded)
    out = {address: counters for address, counters in stats.items() if address not in gone}
    total: Dict[str, int] = {"peers": len(folded)}
    for address in folded:
        for name, n in stats[address].items():
            if name not in _NOT_ADDED:
                total[name] = total.get(name, 0) + n
    out[STRANGERS] = total
    return out


def counted_since(before: Dict[str, Dict[str, Any]], after: Dict[str, Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """The status answers ``after`` (by process) less what each process had counted at
    ``before``: what a run counted on ensembles that were up before it, for its summary.

    A core's counters are taken off only when it has not counted afresh in between
    (the same ``counters_epoch``: a deploy or a teardown there clears them, and what
    they hold after it is the run's already). The transport's counters only grow while
    a process lives, summed over its sections (a peer's entry evicted adds what it
    counted to the endpoint's own, ``*``): each process's transport becomes that sum's
    growth, as one section, or its whole sum if it went down (the process started again).
    """
    out: Dict[str, Dict[str, Any]] = {}
    for process, status in after.items():
        earlier = before.get(process)
        if earlier is None:
            out[process] = status
            continue
        status = dict(status)
        if "counters" in status and status.get("counters_epoch") == earlier.get("counters_epoch"):
            status["counters"] = _less(status["counters"], earlier.get("counters", {}))
        if "transport" in status:
            status["transport"] = {"*": _less(transport_totals([status]), transport_totals([earlier]))}
        out[process] = status
    return out


def _less(counts: Dict[str, int], earlier: Dict[str, int]) -> Dict[str, int]:
    """``counts - earlier``, or ``counts`` whole if one of them went down (counting started again).
    A counter that did not grow is left out: the run counted none of it (a summary says "none")."""
    if any(counts.get(name, 0) < n for name, n in earlier.items()):
        return counts
    return {name: n - earlier.get(name, 0) for name, n in counts.items() if n != earlier.get(name, 0)}


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

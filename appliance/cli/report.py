"""What a finished run prints: the summary, the table per SQ, the errors.

Shared by ``appliance simulate`` and ``appliance rtm``: a run on simulated
ensembles and one on devices report the same way.
"""
from __future__ import annotations

import sys
from typing import Any, Dict, List, Optional, Tuple

Row = Tuple[str, str]


def causes(table: Dict[str, int]) -> str:
    return ", ".join("%s %d" % kv for kv in sorted(table.items())) or "none"


def ran_for(s: Dict[str, Any], duration: int) -> str:
    """``1 s``, or ``0.43 s of 1 s`` for a run that stopped before its window ended (an
    ensemble lost, a teardown asked for): the summary's first line says how long it ran."""
    if s["ran_for"] >= duration:
        return "%s s" % exact(duration, 6)
    return "%g s of %s s" % (round(s["ran_for"] / 1e6, 3), exact(duration, 6))


def exact(count: int, places: int) -> str:
    """A whole number of µs in seconds (``places=6``) or ms (3), every digit it has and
    no more: what a run was asked for, as the options say it (rounded to µs), not as
    ``%g`` would cut it."""
    return ("%.*f" % (places, count / 10 ** places)).rstrip("0").rstrip(".")


def print_summary(s: Dict[str, Any], out: Optional[str], transport: Dict[str, int], network: List[Row]) -> None:
    """The summary's lines (``network`` rows go before the transport's), then the SQ table."""
    rows = [
        ("outputs logged", "%d%s" % (s["outputs"], "  -> %s" % out if out else "")),
        ("stream samples", str(s["samples"])),
        ("SQ executions", str(s["executions"])),
    ]
    if s.get("unreported"):  # the counts below leave them out
        rows.insert(0, ("not counted", "%s (left before reporting what it counted)" % ", ".join(s["unreported"])))
    if s["deadlines"]:
        detail = ", ".join("%s %d/%d" % (sq, d["met"], d["met"] + d["missed"]) for sq, d in s["deadlines"].items())
        rows.append(("deadlines", "met %d, missed %d  (%s)" % (s["deadline_met"], s["deadline_missed"], detail)))
    rows.append(("discarded", causes(s["discarded"]) + ("  (by the firing rules' design)" if s["discarded"] else "")))
    rows.append(("lost", causes(s["lost"])))
    if s["refused"]:
        rows.append(("refused", causes(s["refused"])))
    rows.extend(network)
    line = "%d messages, %d retransmitted fragments, %d failed, %d bad CRC, %d duplicates" % (
        transport["sent"], transport["retransmitted"], transport["failed"], transport["bad_crc"],
        transport["duplicates"])
    # Best-effort messages (tokens between SQs) the transport lost itself, said when there are any.
    if transport["best_effort_dropped"]:
        line += ", %d best-effort never sent" % transport["best_effort_dropped"]
    incomplete = transport["reassembly_expired"] + transport["reassembly_evicted"]
    if incomplete:
        line += ", %d incomplete dropped" % incomplete
    rows.append(("transport", line))
    rows.append(("SQ errors", str(s["sq_errors"])))
    for label, value in rows:
        print("  %-16s %s" % (label, value))
    print_sq_table(s["sqs"])


def print_sq_table(sqs: Dict[str, Dict[str, Any]]) -> None:
    """Where each SQ ran and what it did: the mapping and the per-SQ counters in one table."""
    width = max([len("SQ")] + [len(name) for name in sqs])
    where = max([len("ran on")] + [len(sq["ensemble"]) for sq in sqs.values()])
    print()
    print(("  %-*s  %-*s  %10s  %6s  %-10s  %s" % (width, "SQ", where, "ran on", "executions", "errors",
                                                   "deadline", "discarded / lost")).rstrip())
    for name, sq in sqs.items():
        deadline = "%d/%d met" % (sq["deadline"]["met"], sq["deadline"]["met"] + sq["deadline"]["missed"]) \
            if "deadline" in sq else ""
        drops = "; ".join(part for part in (
            causes(sq["discarded"]) if sq["discarded"] else "",
            "lost " + causes(sq["lost"]) if sq["lost"] else "") if part)
        print(("  %-*s  %-*s  %10d  %6d  %-10s  %s" % (width, name, where, sq["ensemble"], sq["executions"],
                                                       sq["errors"], deadline, drops)).rstrip())


def print_errors(s: Dict[str, Any], debug: bool, command: str) -> None:
    """Each distinct SQ error once, with how often it happened; with --debug its
    traceback and the input that caused it."""
    errors, sqs = s["errors"], s["sqs"]
    for error in errors:
        sq = error["sq"]
        lines = [e for e in errors if e["sq"] == sq]
        # teardown() is no SQ of the summary: its reports are all there is to count
        total = sqs.get(sq, {}).get("errors", sum(e["reports"] for e in lines))
        if len(lines) > 1:
            count = "%d of the %d reports of its %d errors" % (error["reports"], sum(e["reports"] for e in lines),
                                                                total)
        else:
            count = "once" if total == 1 else "%d times" % total
        print("appliance %s: error: SQ '%s' on %s: %s  (%s)"
              % (command, sq, ", ".join(error["ensembles"]), error["error"], count), file=sys.stderr)
        if debug:
            if error["input"]:
                print("  its input: %s" % error["input"], file=sys.stderr)
            for line in error["traceback"].rstrip().splitlines():
                print("  " + line, file=sys.stderr)

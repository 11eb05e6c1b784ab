"""A deployed program as the runtime manager tracks it: options, phase, reports."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, NamedTuple, Optional, Set, Tuple

from appliance.mapping import DEFAULT_STRATEGY
from appliance.program.model import Graph
from appliance.runtime.counters import Counters
from appliance.runtime.watchdog import MAX_TIME_LIMIT

#: Errors kept per app with their tracebacks; more are only counted.
MAX_KEPT_ERRORS = 50

#: Tokens a firing rule discards by its design, which are not losses: the
#: samples of a fast stream that a timed join with a slower one leaves
#: unmatched, a value that arrives after Plan B already answered its sample,
#: and tokens still waiting for a partner when the run ends.
BY_DESIGN = frozenset(["unmatched", "deadline_late", "held_at_teardown"])


@dataclass(frozen=True)
class RunOptions:
    """How the runtime manager runs a graph. Times in ticks (µs).

    ``duration`` is how long the streams sample (``None``: until torn down);
    ``start_delay`` leaves the start messages time to reach every ensemble
    before the first sample; ``drain`` lets the last tokens land before the
    teardown.
    """

    strategy: str = DEFAULT_STRATEGY
    seed: int = 0
    duration: Optional[int] = None
    start_delay: int = 200_000
    drain: int = 500_000
    deploy_timeout: int = 30_000_000
    teardown_timeout: int = 10_000_000
    #: Largest clock offset of a hosting ensemble to the runtime manager before the deploy
    #: warns; None: a quarter of the app's smallest stream period.
    max_clock_offset: Optional[int] = None
    #: How long one firing of an SQ may run before it is stopped (and the SQ with it: watchdog.py).
    sq_time_limit: int = 10_000_000
    #: A client's token for its deployment request, echoed in the app's reports (and in a
    #: refusal) so the client tells the answer to its request from news of other apps.
    request: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.request, str):
            raise ValueError("run option request must be a string, got %r" % (self.request,))
        if not isinstance(self.strategy, str):
            raise ValueError("run option strategy must be a name, got %r" % (self.strategy,))
        if type(self.seed) is not int:
            raise ValueError("run option seed must be an int, got %r" % (self.seed,))
        if type(self.sq_time_limit) is not int or not 0 < self.sq_time_limit <= MAX_TIME_LIMIT:
            raise ValueError("run option sq_time_limit must be an int of µs from 1 to %d (1e8 s), got %r"
                             % (MAX_TIME_LIMIT, self.sq_time_limit))
        for name in ("start_delay", "drain", "deploy_timeout", "teardown_timeout"):
            value = getattr(self, name)
            if type(value) is not int or value < 0:
                raise ValueError("run option %s must be a non-negative int of µs, got %r" % (name, value))
        if self.duration is not None and (type(self.duration) is not int or self.duration <= 0):
            raise ValueError("run option duration must be a positive int of µs, got %r" % (self.duration,))
        if self.max_clock_offset is not None and (type(self.max_clock_offset) is not int
                                                  or self.max_clock_offset < 0):
            raise ValueError("run option max_clock_offset must be a non-negative int of µs, got %r"
                             % (self.max_clock_offset,))

    def to_wire(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_wire(cls, doc: Any) -> RunOptions:
        if not isinstance(doc, dict):
            raise TypeError("run options must be an object")
        return cls(**doc)


class OutputRecord(NamedTuple):
    """One logged output token; all times in integer µs of the root clock."""

    app: str
    sq: str
    port: int
    value: Any
    start: int
    stop: int
    clock: str
    ensemble: str
    logged_at: int


DEPLOYING, RUNNING, STOPPING, FINISHED, FAILED = "deploying", "running", "stopping", "finished", "failed"


@dataclass
class App:
    """One deployment of a graph, from mapping to teardown."""

    id: str
    graph: Optional[Graph]  # None when the graph did not validate or map
    options: RunOptions
    mapping: Dict[str, str]
    phase: str = DEPLOYING
    error: str = ""
    waiting: Set[Tuple[str, int]] = field(default_factory=set)
    deploy_errors: List[str] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)
    reports: List[Tuple[str, int, Dict[str, Any]]] = field(default_factory=list)
    sq_errors: List[Tuple[str, str, str, str, str]] = field(default_factory=list)
    sq_error_count: int = 0
    outputs: int = 0
    t0: Optional[int] = None
    #: The root tick its teardown began: the end of its window, or earlier if it failed or was stopped.
    stopped: Optional[int] = None

    @property
    def ensembles(self) -> List[str]:
        """Ensembles hosting part of the app, in first-mapped order (deterministic)."""
        seen: Dict[str, None] = {}
        for spec in self.graph.sqs if self.graph else ():
            seen.setdefault(self.mapping[spec.name], None)
        return list(seen)

    @property
    def ran_for(self) -> int:
        """How long its sources sampled, in µs: its duration, unless it stopped before."""
        if self.t0 is None:
            return 0
        end = self.stopped if self.stopped is not None else self.t0
        if self.options.duration is not None:
            end = min(end, self.t0 + self.options.duration)
        return max(0, end - self.t0)

    @property
    def done(self) -> bool:
        return self.phase in (FINISHED, FAILED)

    def report(self) -> Dict[str, Any]:
        """What a client is told when the app changes phase: the summary once it is done."""
        return {"app": self.id, "phase": self.phase, "error": self.error, "mapping": dict(self.mapping),
                "t0": self.t0, "warnings": list(self.warnings), "summary": self.summary() if self.done else None,
                "request": self.options.request}

    def summary(self) -> Dict[str, Any]:
        """What happened, for people: tokens, executions, deadlines, and per SQ where it ran,
        what it did, what it discarded by design and what it lost."""
        totals: List[Dict[str, int]] = []
        per_sq: Dict[str, List[Dict[str, int]]] = {}
        for _, _, report in self.reports:
            totals.append(report.get("counters", {}))
            for sq, counts in report.get("sqs", {}).items():
                per_sq.setdefault(sq, []).append(counts)
        order = [spec.name for spec in self.graph.sqs] if self.graph else []
        sqs = {sq: _sq_summary(self.mapping.get(sq, ""), Counters.merged(per_sq.get(sq, [])))
               for sq in order + sorted(set(per_sq) - set(order))}
        counters = Counters.merged(totals + [counts for parts in per_sq.values() for counts in parts])
        discarded, lost = split_drops(counters)
        deadlines = {sq: s["deadline"] for sq, s in sqs.items() if "deadline" in s}
        refused = {name[len("refused."):]: n for name, n in counters.items() if name.startswith("refused.")}
        return {
            "app": self.id,
            "graph": self.graph.name if self.graph else None,
            "phase": self.phase,
            "error": self.error,
            "warnings": list(self.warnings),
            "ran": self.t0 is not None,
            "ran_for": self.ran_for,
            "ensembles": self.ensembles,
            # Those whose teardown reports never came (they left during the run): their counts are missing.
            "unreported": sorted(set(self.ensembles) - {ensemble for ensemble, _, _ in self.reports}),
            "mapping": dict(self.mapping),
            "outputs": self.outputs,
            "samples": sum(s.get("samples", 0) for s in sqs.values()),
            "executions": counters.get("executions", 0),
            "deadlines": deadlines,
            "deadline_met": sum(d["met"] for d in deadlines.values()),
            "deadline_missed": sum(d["missed"] for d in deadlines.values()),
            "sq_errors": max(counters.get("sq_errors", 0), self.sq_error_count),
            "errors": distinct_errors(self.sq_errors),
            "out_of_order": counters.get("out_of_order", 0),
            "discarded": discarded,
            "lost": lost,
            "refused": refused,
            "sqs": sqs,
        }


def split_drops(counters: Dict[str, int]) -> Tuple[Dict[str, int], Dict[str, int]]:
    """``dropped.*`` counters split into (discarded by design, lost), by cause."""
    discarded: Dict[str, int] = {}
    lost: Dict[str, int] = {}
    for name, n in sorted(counters.items()):
        if name.startswith("dropped."):
            cause = name[len("dropped."):]
            (discarded if cause in BY_DESIGN else lost)[cause] = n
    return discarded, lost


def _sq_summary(ensemble: str, counts: Dict[str, int]) -> Dict[str, Any]:
    discarded, lost = split_drops(counts)
    summary: Dict[str, Any] = {"ensemble": ensemble, "executions": counts.get("executions", 0),
                               "errors": counts.get("errors", 0), "discarded": discarded, "lost": lost}
    if "samples" in counts:
        summary["samples"] = counts["samples"]
    if "met" in counts:
        summary["deadline"] = {"met": counts["met"], "missed": counts.get("missed", 0)}
    if counts.get("out_of_order"):
        summary["out_of_order"] = counts["out_of_order"]
    return summary


def distinct_errors(errors: List[Tuple[str, str, str, str, str]]) -> List[Dict[str, Any]]:
    """Each distinct (SQ, error line) once, with how many reports said it, where, and the
    first report's traceback and input."""
    seen: Dict[Tuple[str, str], Dict[str, Any]] = {}
    for ensemble, sq, line, text, inputs in errors:
        entry = seen.get((sq, line))
        if entry is None:
            entry = seen[(sq, line)] = {"sq": sq, "error": line, "reports": 0, "ensembles": [],
                                         "traceback": text, "input": inputs}
        entry["reports"] += 1
        if ensemble not in entry["ensembles"]:
            entry["ensembles"].append(ensemble)
    return list(seen.values())

"""A deployed program as the runtime manager tracks it: options, phase, reports."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, NamedTuple, Optional, Set, Tuple

from appliance.program.model import Graph
from appliance.runtime.counters import Counters

#: Errors kept per app with their tracebacks; more are only counted.
MAX_KEPT_ERRORS = 50


@dataclass(frozen=True)
class RunOptions:
    """How the runtime manager runs a graph. Times in ticks (µs).

    ``duration`` is how long the streams sample (``None``: until torn down);
    ``start_delay`` leaves the start messages time to reach every ensemble
    before the first sample; ``drain`` lets the last tokens land before the
    teardown.
    """

    strategy: str = "random"
    seed: int = 0
    duration: Optional[int] = None
    start_delay: int = 200_000
    drain: int = 500_000
    deploy_timeout: int = 30_000_000
    teardown_timeout: int = 10_000_000

    def __post_init__(self) -> None:
        if not isinstance(self.strategy, str):
            raise ValueError("run option strategy must be a name, got %r" % (self.strategy,))
        if type(self.seed) is not int:
            raise ValueError("run option seed must be an int, got %r" % (self.seed,))
        for name in ("start_delay", "drain", "deploy_timeout", "teardown_timeout"):
            value = getattr(self, name)
            if type(value) is not int or value < 0:
                raise ValueError("run option %s must be a non-negative int of µs, got %r" % (name, value))
        if self.duration is not None and (type(self.duration) is not int or self.duration <= 0):
            raise ValueError("run option duration must be a positive int of µs, got %r" % (self.duration,))

    def to_wire(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_wire(cls, doc: Any) -> RunOptions:
        if not isinstance(doc, dict):
            raise TypeError("run options must be an object")
        return cls(**doc)


class OutputRecord(NamedTuple):
    """One logged output token; all times in integer µs of the root clock."""

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
    reports: List[Tuple[str, int, Dict[str, Any]]] = field(default_factory=list)
    sq_errors: List[Tuple[str, str, str, str]] = field(default_factory=list)
    sq_error_count: int = 0
    outputs: int = 0
    t0: Optional[int] = None

    @property
    def ensembles(self) -> List[str]:
        """Ensembles hosting part of the app, in first-mapped order (deterministic)."""
        seen: Dict[str, None] = {}
        for spec in self.graph.sqs if self.graph else ():
            seen.setdefault(self.mapping[spec.name], None)
        return list(seen)

    @property
    def done(self) -> bool:
        return self.phase in (FINISHED, FAILED)

    def summary(self) -> Dict[str, Any]:
        """What happened, for people: tokens, executions, deadlines, drops by cause."""
        counters = Counters.merged(report.get("counters", {}) for _, _, report in self.reports)
        deadlines: Dict[str, Dict[str, int]] = {}
        samples = 0
        for _, _, report in self.reports:
            for sq, stats in report.get("sqs", {}).items():
                if "met" in stats:
                    deadlines[sq] = {"met": stats["met"], "missed": stats["missed"]}
                samples += stats.get("samples", 0)
        drops = {name[len("dropped."):]: n for name, n in counters.items() if name.startswith("dropped.")}
        refused = {name[len("refused."):]: n for name, n in counters.items() if name.startswith("refused.")}
        return {
            "app": self.id,
            "graph": self.graph.name if self.graph else None,
            "phase": self.phase,
            "error": self.error,
            "ensembles": self.ensembles,
            "outputs": self.outputs,
            "samples": samples,
            "executions": counters.get("executions", 0),
            "deadlines": deadlines,
            "deadline_met": sum(d["met"] for d in deadlines.values()),
            "deadline_missed": sum(d["missed"] for d in deadlines.values()),
            "sq_errors": max(counters.get("sq_errors", 0), self.sq_error_count),
            "out_of_order": counters.get("out_of_order", 0),
            "drops": drops,
            "refused": refused,
        }

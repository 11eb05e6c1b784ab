"""The built program: SQs, arcs and outputs, as a graph file holds them.

This is the contract between the authoring API (which builds it), the graph
file (which stores it as JSON) and the runtime manager (which maps and deploys
it). Every time is an integer number of root-clock ticks (µs).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

#: Firing rules (see docs/programming.md).
TIMED = "timed"  # tokens whose intervals overlap on all data ports fire together
IMMEDIATE = "immediate"  # any arriving token fires at once (merge)
STREAM = "stream"  # periodic source sampled on its clock
SEQUENTIAL = "sequential"  # timed, and executions released in time order
DEADLINE = "deadline"  # data must arrive by sample start + deadline, else Plan B
FIRING_RULES = (TIMED, IMMEDIATE, STREAM, SEQUENTIAL, DEADLINE)

#: Kinds of SQ: user functions, user stream sources, and runtime built-ins.
SQ_KINDS = ("sq", "stream", "builtin")

#: The largest cost an SQ may say it has: costs add up, and their sums stay numbers.
MAX_COST = 1_000_000

#: The most output ports an SQ may have: each is a list in every mapping, every firing's routing.
MAX_OUTPUTS = 1024

#: Store bounds an SQ gets unless it says otherwise.
DEFAULT_MAX_TOKENS = 128
DEFAULT_MAX_AGE = 5_000_000


@dataclass(frozen=True)
class StreamSpec:
    """A periodic source: samples at ticks ``t ≡ phase (mod period)``, each token
    valid over ``width`` ticks centred on ``t``; at most ``count`` samples."""

    period: int
    phase: int = 0
    width: int = 0
    count: Optional[int] = None


@dataclass
class SQSpec:
    name: str
    kind: str
    function: str
    inputs: List[str]
    outputs: int = 1
    firing: str = TIMED
    clock: str = "root"
    constants: Dict[str, Any] = field(default_factory=dict)
    sticky: List[str] = field(default_factory=list)
    stream: Optional[StreamSpec] = None
    deadline: Optional[int] = None
    state: bool = False
    tick: bool = False
    #: Queries (``appliance.components.query``): a component name, or an object.
    requires: List[Any] = field(default_factory=list)
    ensemble: Optional[str] = None
    #: What hosting it costs an ensemble, against the ensemble's capacity (the static mapper).
    cost: float = 1
    max_tokens: int = DEFAULT_MAX_TOKENS
    max_age: int = DEFAULT_MAX_AGE
    reorder: int = 0
    line: int = 0

    @property
    def trigger_port(self) -> int:
        """Index of the trigger port: SQs with no arc-fed data port fire on a trigger token
        (from the runtime manager at start, or a Plan-B arc)."""
        return len(self.inputs)


@dataclass(frozen=True)
class Arc:
    source: str
    output: int
    target: str
    input: int


@dataclass(frozen=True)
class ProgramSource:
    """The program file the SQ functions come from, shipped whole so ensembles can
    load it (module-level imports and helpers work inside SQs)."""

    module: str
    filename: str
    source: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.source.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class LatencyBound:
    """At most ``limit`` ticks of network latency along ``path``, SQs each joined to the
    next by an arc: the sum of the one-way link latencies between the ensembles that
    host consecutive SQs (nothing between SQs on one ensemble)."""

    path: Tuple[str, ...]
    limit: int
    line: int = 0


@dataclass
class Graph:
    name: str
    program: ProgramSource
    sqs: List[SQSpec]
    arcs: List[Arc]
    outputs: List[Tuple[str, int]]
    #: Constraints on more than one SQ (``max_latency``), checked by the mapper.
    bounds: List[LatencyBound] = field(default_factory=list)

    def sq(self, name: str) -> SQSpec:
        for spec in self.sqs:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def arcs_into(self, name: str) -> List[Arc]:
        return [arc for arc in self.arcs if arc.target == name]

    def sources(self) -> List[SQSpec]:
        """SQs no arc feeds: the runtime manager starts them (streams arm, others fire once)."""
        fed = {arc.target for arc in self.arcs}
        return [spec for spec in self.sqs if spec.name not in fed]

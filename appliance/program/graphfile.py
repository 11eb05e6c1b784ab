"""Graph files: a built program as versioned JSON, validated on load.

A graph file is plain data (never a pickle): SQs with their firing rules,
arcs, outputs and the program source the SQ functions come from. Loading
checks every field and every cross-reference, and a bad file is refused with
an error that names the SQ and the field.
"""
from __future__ import annotations

import json
import re
from typing import Any, Dict, List, Optional, Tuple

from appliance.components.query import QueryError, normalize
from appliance.program.builtins import BUILTINS
from appliance.program.checks import check_functions
from appliance.program.errors import GraphFileError
from appliance.program.jsonfile import load_json
from appliance.program.model import (
    DEADLINE,
    FIRING_RULES,
    MAX_COST,
    MAX_OUTPUTS,
    SQ_KINDS,
    STREAM,
    Arc,
    Graph,
    LatencyBound,
    ProgramSource,
    SQSpec,
    StreamSpec,
)
from appliance.program.names import NAME_RULE, is_name

FORMAT = "appliance-graph"
#: The version written. Version 1 files (``requires`` names only, no ``cost`` and no
#: ``constraints``) still load: every one of them is a version 2 file too.
VERSION = 2
READS = (1, 2)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,127}\Z")


def to_document(graph: Graph) -> Dict[str, Any]:
    """The JSON-ready form of a graph."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "name": graph.name,
        "program": {
            "module": graph.program.module,
            "filename": graph.program.filename,
            "sha256": graph.program.sha256,
            "source": graph.program.source,
        },
        "sqs": [sq_to_document(spec) for spec in graph.sqs],
        "arcs": [
            {"source": a.source, "output": a.output, "target": a.target, "input": a.input}
            for a in graph.arcs
        ],
        "outputs": [{"sq": sq, "port": port} for sq, port in graph.outputs],
        "constraints": [{"max_latency": b.limit, "path": list(b.path), "line": b.line} for b in graph.bounds],
    }


def sq_to_document(spec: SQSpec) -> Dict[str, Any]:
    stream = None
    if spec.stream is not None:
        s = spec.stream
        stream = {"period": s.period, "phase": s.phase, "width": s.width, "count": s.count}
    return {
        "name": spec.name,
        "kind": spec.kind,
        "function": spec.function,
        "inputs": list(spec.inputs),
        "outputs": spec.outputs,
        "firing": spec.firing,
        "clock": spec.clock,
        "constants": dict(spec.constants),
        "sticky": list(spec.sticky),
        "stream": stream,
        "deadline": spec.deadline,
        "state": spec.state,
        "tick": spec.tick,
        "requires": list(spec.requires),
        "ensemble": spec.ensemble,
        "cost": spec.cost,
        "max_tokens": spec.max_tokens,
        "max_age": spec.max_age,
        "reorder": spec.reorder,
        "line": spec.line,
    }


def dumps(graph: Graph) -> str:
    return json.dumps(to_document(graph), indent=1, sort_keys=False) + "\n"


def save(graph: Graph, path: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(dumps(graph))


def load(path: str) -> Graph:
    """Read and validate a graph file; :class:`GraphFileError` names what is wrong."""
    return from_document(load_json(path, lambda why: GraphFileError(why, source=path)), source=path)


class _Fields:
    """Typed field access on one JSON object, with errors that say where."""

    def __init__(self, obj: Any, source: str, sq: Optional[str] = None, prefix: str = ""):
        self.source, self.sq, self.prefix = source, sq, prefix
        if not isinstance(obj, dict):
            raise self.error("must be a JSON object, got %s" % type(obj).__name__, prefix.rstrip(".") or None)
        self.obj = obj

    def error(self, message: str, name: Optional[str]) -> GraphFileError:
        return GraphFileError(message, source=self.source, sq=self.sq, field=name)

    def get(self, name: str, kinds: Tuple[type, ...], default: Any = ..., check=None) -> Any:
        path = self.prefix + name
        if name not in self.obj:
            if default is ...:
                raise self.error("is missing", path)
            return default
        value = self.obj[name]
        if isinstance(value, bool) and bool not in kinds:
            raise self.error("must be %s, got a boolean" % _kinds(kinds), path)
        if not isinstance(value, kinds):
            raise self.error("must be %s, got %s" % (_kinds(kinds), type(value).__name__), path)
        if check is not None:
            problem = check(value)
            if problem:
                raise self.error(problem, path)
        return value


def _kinds(kinds: Tuple[type, ...]) -> str:
    names = {int: "an integer", str: "a string", list: "a list", dict: "an object",
             bool: "a boolean", type(None): "null", float: "a number"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _positive(value: int) -> Optional[str]:
    return None if value > 0 else "must be positive, got %d" % value


def _non_negative(value: int) -> Optional[str]:
    return None if value >= 0 else "must not be negative, got %d" % value


def name_problem(value: str) -> Optional[str]:
    """Why ``value`` cannot name an SQ or a graph (None if it can): names travel in graph
    files, messages and outputs, so they are ASCII, whatever Python accepts."""
    return None if _NAME.match(value) else "%r is not a valid name (ASCII letters, digits, '_', '.' and '-', " \
        "128 at most, not starting with a digit)" % value


def _strings(value: List[Any]) -> Optional[str]:
    if not all(isinstance(v, str) for v in value):
        return "must be a list of strings"
    if len(set(value)) != len(value):
        return "has duplicates"
    return None


def from_document(document: Any, source: str = "graph") -> Graph:
    top = _Fields(document, source)
    fmt = top.get("format", (str,))
    if fmt != FORMAT:
        raise top.error("is %r, expected %r" % (fmt, FORMAT), "format")
    version = top.get("version", (int,))
    if version not in READS:
        raise top.error("is %d; this appliance reads versions %s" % (version, ", ".join(map(str, READS))),
                        "version")
    name = top.get("name", (str,), check=name_problem)
    prog = _Fields(top.get("program", (dict,)), source, prefix="program.")
    program = ProgramSource(prog.get("module", (str,)), prog.get("filename", (str,)), prog.get("source", (str,)))
    sha = prog.get("sha256", (str,), default=None)
    if sha is not None and sha != program.sha256:
        raise prog.error("does not match the program source (edited by hand?)", "program.sha256")

    sqs: List[SQSpec] = []
    seen: Dict[str, SQSpec] = {}
    for index, item in enumerate(top.get("sqs", (list,))):
        spec = sq_from_document(item, source, index)
        if spec.name in seen:
            raise GraphFileError("is defined twice", source=source, sq=spec.name, field="name")
        seen[spec.name] = spec
        sqs.append(spec)
    if not sqs:
        raise top.error("is empty: a graph needs at least one SQ", "sqs")

    arcs = [_arc_from_document(item, source, index, seen) for index, item in enumerate(top.get("arcs", (list,)))]
    outputs: List[Tuple[str, int]] = []
    for index, item in enumerate(top.get("outputs", (list,))):
        f = _Fields(item, source, prefix="outputs[%d]." % index)
        sq = f.get("sq", (str,))
        if sq not in seen:
            raise f.error("names unknown SQ %r" % sq, "outputs[%d].sq" % index)
        port = f.get("port", (int,), check=_non_negative)
        if port >= seen[sq].outputs:
            raise GraphFileError("output port %d does not exist (it has %d)" % (port, seen[sq].outputs),
                                 source=source, sq=sq, field="outputs[%d].port" % index)
        if (sq, port) in outputs:
            raise GraphFileError("is listed as a graph output twice", source=source, sq=sq, field="outputs")
        outputs.append((sq, port))
    bounds = [_bound_from_document(item, source, index, arcs)
              for index, item in enumerate(top.get("constraints", (list,), default=[]))]
    graph = Graph(name, program, sqs, arcs, outputs, bounds)
    check_wiring(graph, source)
    check_functions(graph, source)
    return graph


def sq_from_document(item: Any, source: str, index: int = 0) -> SQSpec:
    name = _Fields(item, source, prefix="sqs[%d]." % index).get("name", (str,), check=name_problem)
    f = _Fields(item, source, sq=name)
    kind = f.get("kind", (str,), check=lambda v: None if v in SQ_KINDS else "must be one of %s" % ", ".join(SQ_KINDS))
    function = f.get("function", (str,), check=lambda v: None if v.isidentifier() else "%r is not a function name" % v)
    if kind == "builtin" and function not in BUILTINS:
        raise f.error("unknown built-in %r" % function, "function")
    inputs = f.get("inputs", (list,), check=_strings)
    firing = f.get("firing", (str,), check=lambda v: None if v in FIRING_RULES else
                   "must be one of %s" % ", ".join(FIRING_RULES))
    if (kind == "stream") != (firing == STREAM):
        raise f.error("a stream SQ fires by the stream rule, and only a stream does", "firing")
    constants = f.get("constants", (dict,), default={})
    for key in constants:
        if key not in inputs:
            raise f.error("names %r, which is not an input" % key, "constants")
    sticky = f.get("sticky", (list,), default=[], check=_strings)
    for key in sticky:
        if key not in inputs or key in constants:
            raise f.error("names %r, which is not an arc-fed input" % key, "sticky")
    stream = None
    stream_doc = f.get("stream", (dict, type(None)), default=None)
    if kind == "stream":
        if stream_doc is None:
            raise f.error("is missing: a stream SQ needs period, phase and width", "stream")
        s = _Fields(stream_doc, source, sq=name, prefix="stream.")
        period = s.get("period", (int,), check=_positive)
        phase = s.get("phase", (int,), default=0,
                      check=lambda v: None if 0 <= v < period else "must be in [0, period), got %d" % v)
        stream = StreamSpec(period, phase, s.get("width", (int,), check=_positive),
                            s.get("count", (int, type(None)), default=None,
                                  check=lambda v: None if v is None or v > 0 else "must be positive"))
    elif stream_doc is not None:
        raise f.error("is set on an SQ that is not a stream", "stream")
    deadline = f.get("deadline", (int, type(None)), default=None,
                     check=lambda v: None if v is None or v > 0 else "must be positive")
    if (firing == DEADLINE) != (deadline is not None):
        raise f.error("a deadline SQ needs a deadline, and only it has one", "deadline")
    if firing == DEADLINE and len(inputs) != 2:
        raise f.error("a deadline SQ has two inputs (value, met)", "inputs")
    tick = f.get("tick", (bool,), default=False)
    if tick and kind != "stream":
        raise f.error("only a stream SQ is passed its sample tick", "tick")
    return SQSpec(
        name=name,
        kind=kind,
        function=function,
        inputs=inputs,
        outputs=f.get("outputs", (int,), default=1,
                      check=lambda v: None if 0 < v <= MAX_OUTPUTS
                      else "must be from 1 to %d, got %d" % (MAX_OUTPUTS, v)),
        firing=firing,
        clock=f.get("clock", (str,), default="root",
                    check=lambda v: None if v == "root" else "unknown clock %r (programs run on 'root')" % v),
        constants=constants,
        sticky=sticky,
        stream=stream,
        deadline=deadline,
        state=f.get("state", (bool,), default=False),
        tick=tick,
        requires=_requires(f),
        ensemble=f.get("ensemble", (str, type(None)), default=None,
                       check=lambda v: None if v is None or is_name(v) else "%r is not an ensemble name (%s)"
                       % (v, NAME_RULE)),
        cost=f.get("cost", (int, float), default=1,
                   check=lambda v: None if 0 < v <= MAX_COST else "must be positive, at most %d" % MAX_COST),
        max_tokens=f.get("max_tokens", (int,), check=_positive),
        max_age=f.get("max_age", (int,), check=_positive),
        reorder=f.get("reorder", (int,), default=0, check=_non_negative),
        line=f.get("line", (int,), default=0, check=_non_negative),
    )


def _requires(f: _Fields) -> List[Any]:
    queries = f.get("requires", (list,), default=[])
    try:
        return [q if isinstance(q, str) and q else normalize(q, "requires[%d]" % i) for i, q in enumerate(queries)]
    except QueryError as exc:
        raise f.error(str(exc), "requires") from None


def path_problem(path: List[str], arcs: List[Arc]) -> Optional[str]:
    """Why ``path`` is not a path of SQs joined by arcs, or None."""
    if len(path) < 2:
        return "a path names at least two SQs"
    joined = {(a.source, a.target) for a in arcs}
    for first, second in zip(path, path[1:]):
        if (first, second) not in joined:
            return "no arc joins SQ %r to SQ %r" % (first, second)
    return None


def _bound_from_document(item: Any, source: str, index: int, arcs: List[Arc]) -> LatencyBound:
    prefix = "constraints[%d]." % index
    f = _Fields(item, source, prefix=prefix)
    limit = f.get("max_latency", (int,), check=_positive)
    path = f.get("path", (list,), check=lambda v: _strings(v) or path_problem(v, arcs))
    return LatencyBound(tuple(path), limit, f.get("line", (int,), default=0, check=_non_negative))


def _arc_from_document(item: Any, source: str, index: int, sqs: Dict[str, SQSpec]) -> Arc:
    prefix = "arcs[%d]." % index
    f = _Fields(item, source, prefix=prefix)
    src = f.get("source", (str,))
    dst = f.get("target", (str,))
    for end, name in (("source", src), ("target", dst)):
        if name not in sqs:
            raise f.error("names unknown SQ %r" % name, prefix + end)
    output = f.get("output", (int,), check=_non_negative)
    if output >= sqs[src].outputs:
        raise GraphFileError("has no output %d (it has %d)" % (output, sqs[src].outputs),
                             source=source, sq=src, field=prefix + "output")
    target = sqs[dst]
    port = f.get("input", (int,), check=_non_negative)
    if port > target.trigger_port:
        raise GraphFileError("has no input %d (it has %d and a trigger)" % (port, len(target.inputs)),
                             source=source, sq=dst, field=prefix + "input")
    if port < len(target.inputs) and target.inputs[port] in target.constants:
        raise GraphFileError("input %r is a constant and cannot also be fed by an arc" % target.inputs[port],
                             source=source, sq=dst, field=prefix + "input")
    return Arc(src, output, dst, port)


def check_wiring(graph: Graph, source: str = "graph") -> None:
    """Cross-SQ rules: every data input is fed, streams are sources, no cycles."""
    fed: Dict[str, set] = {spec.name: set() for spec in graph.sqs}
    for arc in graph.arcs:
        fed[arc.target].add(arc.input)
    for spec in graph.sqs:
        ports = fed[spec.name]
        if spec.kind == "stream" and ports:
            raise GraphFileError("a stream samples on its clock and takes no arcs", source=source,
                                 sq=spec.name, field="arcs")
        if spec.kind == "stream" and any(name not in spec.constants for name in spec.inputs):
            missing = [name for name in spec.inputs if name not in spec.constants]
            raise GraphFileError("input %r of a stream must be a constant" % missing[0], source=source,
                                 sq=spec.name, field="constants")
        data_ports = ports - {spec.trigger_port}
        if spec.trigger_port in ports and data_ports:
            raise GraphFileError("an SQ fed by data arcs takes no trigger arc", source=source,
                                 sq=spec.name, field="arcs")
        if data_ports:
            for index, name in enumerate(spec.inputs):
                if index not in data_ports and name not in spec.constants:
                    raise GraphFileError("input %r is neither fed by an arc nor a constant" % name,
                                         source=source, sq=spec.name, field="inputs")
        elif spec.kind != "stream" and any(name not in spec.constants for name in spec.inputs):
            missing = [name for name in spec.inputs if name not in spec.constants]
            raise GraphFileError("input %r is neither fed by an arc nor a constant" % missing[0],
                                 source=source, sq=spec.name, field="inputs")
    cycle = _find_cycle(graph)
    if cycle:
        raise GraphFileError(
            "arcs form a cycle (%s); a program is acyclic: carry values from one sample "
            "to the next in SQ state instead" % " -> ".join(cycle),
            source=source, sq=cycle[0], field="arcs")


def _find_cycle(graph: Graph) -> List[str]:
    succ: Dict[str, List[str]] = {spec.name: [] for spec in graph.sqs}
    for arc in graph.arcs:
        succ[arc.source].append(arc.target)
    colour: Dict[str, int] = {}
    for root in succ:
        if root in colour:
            continue
        stack: List[Tuple[str, int]] = [(root, 0)]
        path: List[str] = []
        while stack:
            node, i = stack.pop()
            if i == 0:
                colour[node] = 1
                path.append(node)
            if i < len(succ[node]):
                stack.append((node, i + 1))
                nxt = succ[node][i]
                if colour.get(nxt) == 1:
                    return path[path.index(nxt):] + [nxt]
                if nxt not in colour:
                    stack.append((nxt, 0))
            else:
                colour[node] = 2
                path.pop()
    return []

"""A built graph as people read it: Graphviz dot text, or a plain listing.

Both renderings say the same things (SQs with their firing rules, arcs with
their ports, the outputs the runtime manager logs and, given a mapping, where
each SQ runs), so the listing can be read in a terminal and the dot text
turned into a picture (``dot -Tsvg``) without the appliance depending on
Graphviz.
"""
from __future__ import annotations

from typing import Dict, List, Optional

from appliance.components.query import describe, normalize
from appliance.program.model import Arc, Graph, SQSpec

Mapping = Optional[Dict[str, str]]


def _ms(ticks: int) -> str:
    """Ticks (µs) as milliseconds, exactly: every tick count has at most three decimals."""
    whole, micros = divmod(ticks, 1000)
    return ("%d.%03d" % (whole, micros)).rstrip("0").rstrip(".") + " ms"


def port_name(spec: SQSpec, index: int) -> str:
    """The name of input ``index`` of ``spec``; the port after the inputs is the trigger port."""
    return "trigger" if index == spec.trigger_port else spec.inputs[index]


def firing_rule(graph: Graph, spec: SQSpec) -> str:
    """The rule that fires ``spec``, with the numbers that govern it.

    A non-stream SQ that no data arc feeds fires on a trigger token whatever its
    ``firing`` field says (docs/programming.md, "Firing rules"), so it reads as
    ``trigger``."""
    if spec.stream is not None:
        stream = spec.stream
        rule = "stream every %s, phase %s, width %s" % (_ms(stream.period), _ms(stream.phase), _ms(stream.width))
        if stream.count is not None:
            rule += ", count %d" % stream.count
    elif spec.deadline is not None:
        rule = "deadline %s" % _ms(spec.deadline)
    elif all(arc.input == spec.trigger_port for arc in graph.arcs_into(spec.name)):
        rule = "trigger" if graph.arcs_into(spec.name) else "trigger at start"
    else:
        rule = spec.firing
    if spec.sticky:
        rule += ", sticky %s" % ", ".join(spec.sticky)
    return rule


def _constraints(spec: SQSpec) -> List[str]:
    """What limits where ``spec`` may run: shown beside the mapping so a placement can be explained."""
    out = []
    if spec.ensemble is not None:
        out.append("pinned to %s" % spec.ensemble)
    if spec.requires:
        out.append("requires %s" % "; ".join(describe(normalize(q)) for q in spec.requires))
    return out


def _logged_ports(graph: Graph, name: str) -> List[int]:
    return [port for sq, port in graph.outputs if sq == name]


def crossing_arcs(graph: Graph, mapping: Dict[str, str]) -> List[Arc]:
    """The arcs whose tokens travel over the network under ``mapping``."""
    return [arc for arc in graph.arcs if mapping[arc.source] != mapping[arc.target]]


def _arc_label(graph: Graph, arc: Arc) -> str:
    return "%d -> %s" % (arc.output, port_name(graph.sq(arc.target), arc.input))


def to_text(graph: Graph, mapping: Mapping = None) -> str:
    """A listing: one SQ per line (kind, function, rule, where it runs), then the
    arcs, the logged outputs and, with a mapping, how many arcs cross ensembles."""
    lines = ["graph %s: %d SQs, %d arcs, %d outputs"
             % (graph.name, len(graph.sqs), len(graph.arcs), len(graph.outputs)), "SQs:"]
    rows = []
    for spec in graph.sqs:
        where = ["on %s" % mapping[spec.name]] if mapping else []
        rows.append([spec.name, "%s %s" % (spec.kind, spec.function), firing_rule(graph, spec),
                     "  ".join(where + ["(%s)" % c for c in _constraints(spec)])])
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        lines.append(("  %-*s  %-*s  %-*s  %s" % (widths[0], row[0], widths[1], row[1], widths[2], row[2],
                                                   row[3])).rstrip())
    lines.append("arcs:")
    for arc in graph.arcs:
        line = "  %s:%d -> %s:%s" % (arc.source, arc.output, arc.target, port_name(graph.sq(arc.target), arc.input))
        if mapping and mapping[arc.source] != mapping[arc.target]:
            line += "  (%s -> %s)" % (mapping[arc.source], mapping[arc.target])
        lines.append(line)
    lines.append("outputs:")
    lines.extend("  %s:%d" % output for output in graph.outputs)
    if mapping:
        lines.append("cross-ensemble arcs: %d of %d" % (len(crossing_arcs(graph, mapping)), len(graph.arcs)))
    return "\n".join(lines) + "\n"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def quote(text: str) -> str:
    """A dot double-quoted string: any name is a valid ID this way (``.`` and ``-`` included)."""
    return '"%s"' % _escape(text)


def _node(graph: Graph, spec: SQSpec) -> str:
    label = [spec.name, "%s %s" % (spec.kind, spec.function), firing_rule(graph, spec)] + _constraints(spec)
    logged = _logged_ports(graph, spec.name)
    attributes = ""
    if logged:
        label.append("logged: output %s" % ", ".join(str(port) for port in logged))
        attributes = ", peripheries=2"
    # Each line is escaped on its own, then joined by dot's newline escape.
    text = "\\n".join(_escape(line) for line in label)
    return "%s [label=\"%s\"%s];" % (quote(spec.name), text, attributes)


def to_dot(graph: Graph, mapping: Mapping = None) -> str:
    """Graphviz dot text: a box per SQ (double border for logged outputs), an
    edge per arc labelled ``output -> input``, and with a mapping one
    ``cluster_<ensemble>`` per ensemble that hosts SQs, arcs between ensembles dashed."""
    lines = ["digraph %s {" % quote(graph.name), "  rankdir=LR;", "  fontname=\"Helvetica\";",
             "  node [shape=box, fontname=\"Helvetica\"];", "  edge [fontname=\"Helvetica\", fontsize=10];"]
    if mapping:
        ensembles: Dict[str, List[SQSpec]] = {}
        for spec in graph.sqs:
            ensembles.setdefault(mapping[spec.name], []).append(spec)
        for ensemble, specs in ensembles.items():
            lines.append("  subgraph %s {" % quote("cluster_" + ensemble))
            lines.append("    label=%s;" % quote(ensemble))
            lines.extend("    " + _node(graph, spec) for spec in specs)
            lines.append("  }")
    else:
        lines.extend("  " + _node(graph, spec) for spec in graph.sqs)
    for arc in graph.arcs:
        style = ", style=dashed" if mapping and mapping[arc.source] != mapping[arc.target] else ""
        lines.append("  %s -> %s [label=%s%s];" % (quote(arc.source), quote(arc.target),
                                                   quote(_arc_label(graph, arc)), style))
    lines.append("}")
    return "\n".join(lines) + "\n"

"""``appliance graph``: the listing and the dot text say what the program is and
where simulate would run it."""
import json
import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest

from appliance.cli import graph as graph_command
from appliance.cli import main
from appliance.cli.simulate import load_graph
from appliance.mapping import DEFAULT_STRATEGY
from appliance.runtime.app import RunOptions
from appliance.sim.harness import simulate
from appliance.system import load_system

from ..sim.conftest import EXAMPLES, example_path

FUSION = example_path("camera_fusion.py")
FUSION_SYSTEM = example_path("camera_fusion.system.json")
DIAMOND = example_path("diamond.py")

DIAMOND_TEXT = """\
graph main: 4 SQs, 4 arcs, 1 outputs
SQs:
  counter  stream counter  stream every 10 ms, phase 0 ms, width 10 ms
  double   sq double       timed
  square   sq square       timed
  pair     sq pair         timed
arcs:
  counter:0 -> double:n
  counter:0 -> square:n
  double:0 -> pair:doubled
  square:0 -> pair:squared
outputs:
  pair:0
"""

STICKY = """
from appliance import graph, sq, stream

@stream(period_ms=0.5, phase_ms=0.25, width_ms=0.1, count=5)
def s(tick):
    return tick

@sq(ensemble="gw")
def config():
    return 3

@sq
def scale(x, k):
    return x * k

@graph
def main():
    return scale(s(), config())
"""


# -- a checker for the subset of the dot language the command writes ---------------------------

_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[A-Za-z_][A-Za-z0-9_]*|-?[0-9]+(?:\.[0-9]+)?|->|[{}\[\];=,]')
_PUNCTUATION = ("->", "{", "}", "[", "]", ";", "=", ",")


def _tokens(text):
    """(kind, value) pairs: kind "id" for bare and quoted IDs (unescaped), else the punctuation."""
    out, pos = [], 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos == len(text):
            return out
        match = _TOKEN.match(text, pos)
        assert match, "dot syntax error at %r" % text[pos:pos + 40]
        word = match.group()
        if word.startswith('"'):
            out.append(("id", re.sub(r'\\(["\\])', r"\1", word[1:-1])))
        elif word in _PUNCTUATION:
            out.append((word, word))
        else:
            out.append(("id", word))
        pos = match.end()


class Dot:
    """The statements of a digraph: its nodes (with their cluster), edges, and clusters' labels."""

    def __init__(self, text):
        self.tokens = _tokens(text)
        self.nodes, self.edges, self.clusters = {}, [], {}
        self.expect("id", "digraph")
        self.name = self.expect("id")
        self.expect("{")
        self.body(None)
        self.expect("}")
        assert not self.tokens, "text after the graph: %r" % self.tokens[:3]

    def expect(self, kind, value=None):
        assert self.tokens, "dot text ends early"
        got_kind, got = self.tokens.pop(0)
        assert got_kind == kind and (value is None or got == value), "expected %s, got %r" % (value or kind, got)
        return got

    def peek(self):
        return self.tokens[0][0] if self.tokens else None

    def attributes(self):
        attrs = {}
        if self.peek() == "[":
            self.expect("[")
            while self.peek() != "]":
                key = self.expect("id")
                self.expect("=")
                attrs[key] = self.expect("id")
                if self.peek() in (",", ";"):
                    self.tokens.pop(0)
            self.expect("]")
        return attrs

    def body(self, cluster):
        while self.peek() != "}":
            first = self.expect("id")
            if first == "subgraph":
                name = self.expect("id")
                self.expect("{")
                self.body(name)
                self.expect("}")
                continue
            if first in ("node", "edge"):
                self.attributes()
            elif self.peek() == "=":
                self.expect("=")
                value = self.expect("id")
                if cluster is not None and first == "label":
                    self.clusters[cluster] = value
            elif self.peek() == "->":
                self.expect("->")
                self.edges.append((first, self.expect("id"), self.attributes()))
            else:
                assert first not in self.nodes, "node %r declared twice" % first
                self.nodes[first] = dict(self.attributes(), cluster=cluster)
            self.expect(";")

    def mapping(self):
        """``{node: ensemble}`` read from the clusters."""
        return {name: self.clusters[node["cluster"]] for name, node in self.nodes.items()}


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def simulated_mapping(target, system, strategy=DEFAULT_STRATEGY, seed=0):
    """What a real simulation reports as its mapping."""
    result = simulate(load_graph(target), load_system(system), RunOptions(strategy=strategy, seed=seed,
                                                                          duration=20_000))
    assert result.summary["phase"] == "finished", result.summary["error"]
    return result.mapping


def appliance_executable():
    path = os.path.join(os.path.dirname(sys.executable), "appliance")
    if not os.path.exists(path):
        pytest.fail("%s is not installed: ./install.sh --dev installs it" % path)
    return path


def run_help_examples(module, tmp_path):
    """Run every ``appliance ...`` line of ``module.EXAMPLES`` in-process, from a
    directory laid out like the repository root (the examples say they run there)."""
    os.symlink(os.path.abspath(EXAMPLES), str(tmp_path / "examples"))
    commands = [line.strip() for line in module.EXAMPLES.splitlines() if line.startswith("  appliance ")]
    assert commands
    here = os.getcwd()
    os.chdir(str(tmp_path))
    try:
        for command in commands:
            argv = shlex.split(command.split(" > ")[0].split("#")[0])[1:]
            assert main(argv) == 0, command
    finally:
        os.chdir(here)


# -- the listing ---------------------------------------------------------------------------------

def test_the_listing_shows_sqs_rules_arcs_and_outputs(capsys):
    code, out, err = run_cli(capsys, "graph", DIAMOND)
    assert code == 0 and err == ""
    assert out == DIAMOND_TEXT


def test_the_listing_says_where_each_sq_runs_as_simulate_maps_it(capsys):
    mapping = simulated_mapping(FUSION, FUSION_SYSTEM, seed=7)
    code, out, _ = run_cli(capsys, "graph", FUSION, "--system", FUSION_SYSTEM, "--seed", "7")
    assert code == 0
    lines = out.splitlines()
    for name, ensemble in mapping.items():
        [line] = [line for line in lines if line.startswith("  %s " % name)]
        assert " on %s" % ensemble in line
    assert "(requires gpu)" in [line for line in lines if line.startswith("  fuse ")][0]
    crossing = [a for a in load_graph(FUSION).arcs if mapping[a.source] != mapping[a.target]]
    assert 0 < len(crossing) < 7
    assert lines[-1] == "cross-ensemble arcs: %d of 7" % len(crossing)
    assert "  deadline_fuse:1 -> no_detection:trigger" in out  # the Plan B's trigger port


def test_rules_name_stream_timing_triggers_and_sticky_inputs(capsys, write_program):
    code, out, _ = run_cli(capsys, "graph", write_program(STICKY))
    assert code == 0
    assert "stream every 0.5 ms, phase 0.25 ms, width 0.1 ms, count 5" in out
    assert re.search(r"^  config +sq config +trigger at start +\(pinned to gw\)$", out, re.M)
    assert re.search(r"^  scale +sq scale +timed, sticky k$", out, re.M)


# -- the dot text --------------------------------------------------------------------------------

def test_dot_names_every_sq_and_arc_with_ports_and_marks_outputs(capsys):
    code, out, _ = run_cli(capsys, "graph", FUSION, "--format", "dot")
    assert code == 0
    dot, graph = Dot(out), load_graph(FUSION)
    assert dot.name == "main" and not dot.clusters
    assert set(dot.nodes) == {spec.name for spec in graph.sqs}
    assert sorted(dot.edges, key=repr) == sorted(
        [(a.source, a.target, {"label": "%d -> %s" % (a.output, "trigger" if a.input == graph.sq(a.target).trigger_port
                                                      else graph.sq(a.target).inputs[a.input])})
         for a in graph.arcs], key=repr)
    assert [name for name, node in dot.nodes.items() if node.get("peripheries") == "2"] == ["fuse_or_no_detection"]
    assert "deadline 20 ms" in dot.nodes["deadline_fuse"]["label"]
    assert "requires camera_left" in dot.nodes["left_camera"]["label"]


@pytest.mark.parametrize("strategy, seed", [("static", 0), ("random", 0), ("random", 7), ("trivial", 3)])
def test_dot_clusters_are_the_mapping_simulate_reports(capsys, strategy, seed):
    mapping = simulated_mapping(FUSION, FUSION_SYSTEM, strategy, seed)
    code, out, _ = run_cli(capsys, "graph", FUSION, "--system", FUSION_SYSTEM, "--format", "dot",
                           "--mapping", strategy, "--seed", str(seed))
    assert code == 0
    dot = Dot(out)
    assert dot.mapping() == mapping
    assert set(dot.clusters) == {"cluster_" + e for e in mapping.values()}
    dashed = {(a, b) for a, b, attrs in dot.edges if attrs.get("style") == "dashed"}
    assert dashed == {(a.source, a.target) for a in load_graph(FUSION).arcs if mapping[a.source] != mapping[a.target]}


def test_one_ensemble_shares_the_sqs_with_the_runtime_managers(capsys, tmp_path):
    system = tmp_path / "one.json"
    system.write_text(json.dumps({"ensembles": [{"name": "solo", "components": ["camera_left", "camera_right",
                                                                                "gpu"]}]}))
    code, out, _ = run_cli(capsys, "graph", FUSION, "--system", str(system), "--format", "dot")
    assert code == 0
    # The SQs that need solo's components go there; the runtime manager's ensemble, a
    # candidate like any other, takes the rest (each counts capacity 1).
    on_solo = {"left_camera", "right_camera", "fuse"}
    assert Dot(out).mapping() == simulated_mapping(FUSION, str(system)) == {
        s.name: "solo" if s.name in on_solo else "runtime-manager" for s in load_graph(FUSION).sqs}


def _dotted_graph_file(tmp_path):
    """The diamond as a graph file whose SQ names need quoting in dot (``.`` and ``-``)."""
    main(["build", DIAMOND, "-o", str(tmp_path / "g.json")])
    doc = json.loads((tmp_path / "g.json").read_text())
    names = {"double": "x.double-1", "square": "y.square-2"}
    for spec in doc["sqs"]:
        spec["name"] = names.get(spec["name"], spec["name"])
    for arc in doc["arcs"]:
        arc["source"], arc["target"] = (names.get(arc["source"], arc["source"]),
                                        names.get(arc["target"], arc["target"]))
    (tmp_path / "g.json").write_text(json.dumps(doc))
    (tmp_path / "system.json").write_text(json.dumps({"ensembles": [{"name": n} for n in ("edge.pi-1", "gw-2")]}))
    return str(tmp_path / "g.json"), str(tmp_path / "system.json")


def test_names_with_dots_and_dashes_are_quoted(capsys, tmp_path):
    graph_path, system = _dotted_graph_file(tmp_path)
    capsys.readouterr()
    code, out, _ = run_cli(capsys, "graph", graph_path, "--system", system, "--format", "dot")
    assert code == 0
    assert '"x.double-1" -> "pair"' in out and 'subgraph "cluster_edge.pi-1"' in out
    assert Dot(out).mapping() == simulated_mapping(graph_path, system)


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz (dot) is not installed: apt-get install graphviz")
def test_graphviz_reads_the_dot_text_as_written(capsys, tmp_path):
    graph_path, system = _dotted_graph_file(tmp_path)
    capsys.readouterr()
    code, out, _ = run_cli(capsys, "graph", graph_path, "--system", system, "--format", "dot")
    assert code == 0
    done = subprocess.run(["dot", "-Tjson"], input=out, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    layout = json.loads(done.stdout)
    objects = layout["objects"]
    nodes = {i: o["name"] for i, o in enumerate(objects) if "nodes" not in o}
    placed = {nodes[i]: o["label"] for o in objects if o["name"].startswith("cluster_") for i in o["nodes"]}
    assert placed == simulated_mapping(graph_path, system)
    assert len(layout["edges"]) == 4


# -- errors, help, the installed command ---------------------------------------------------------

def test_a_mapping_that_is_impossible_is_one_line_and_exit_2(capsys, tmp_path):
    system = tmp_path / "no_gpu.json"
    system.write_text(json.dumps({"ensembles": [{"name": "pi", "components": ["camera_left", "camera_right"]}]}))
    code, out, err = run_cli(capsys, "graph", FUSION, "--system", str(system))
    assert code == 2 and out == ""
    assert err == ("appliance graph: error: SQ 'fuse' requires gpu; no ensemble can host it: "
                   "pi, runtime-manager: no component matches gpu\n")


def test_mapping_options_without_a_system_are_a_usage_error(capsys):
    code, _, err = run_cli(capsys, "graph", DIAMOND, "--seed", "3")
    assert code == 2 and "give --system" in err and len(err.splitlines()) == 1


def test_an_ensemble_named_like_the_runtime_manager_is_refused(capsys, tmp_path):
    system = tmp_path / "system.json"
    system.write_text('{"ensembles": [{"name": "runtime-manager"}, {"name": "pi"}]}')
    code, _, err = run_cli(capsys, "graph", DIAMOND, "--system", str(system))
    assert code == 2 and "is the runtime manager's" in err


def test_a_program_that_does_not_load_is_one_line(capsys, tmp_path):
    code, _, err = run_cli(capsys, "graph", str(tmp_path / "missing.py"))
    assert code == 2 and err.startswith("appliance graph: error: ") and "no such program file" in err


def test_a_directory_given_as_the_program_is_named_so(capsys, tmp_path):
    code, _, err = run_cli(capsys, "graph", str(tmp_path))
    assert code == 2 and err.strip() == "appliance graph: error: %s: a directory, not a program file" % tmp_path


def test_the_help_examples_run_from_the_repository_root(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "graph", "--help")
    assert code == 0 and "examples:" in out
    run_help_examples(graph_command, tmp_path)
    assert "subgraph" in capsys.readouterr().out


def test_the_installed_command_writes_dot_to_stdout():
    done = subprocess.run([appliance_executable(), "graph", FUSION, "--system", FUSION_SYSTEM, "--seed", "7",
                           "--format", "dot"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == ""
    assert Dot(done.stdout).mapping() == simulated_mapping(FUSION, FUSION_SYSTEM, seed=7)

import copy
import json

import pytest

from appliance.program import GraphFileError, graphfile

PROGRAM = """
from appliance import sq, stream, graph, finish_by

@stream(period_ms=10, width_ms=2)
def src(tick, gain=2):
    return gain * tick

@sq
def double(x):
    return 2 * x

@sq
def pair(a, b):
    return [a, b]

@sq
def zero():
    return 0

@graph
def main():
    s = src()
    return pair(double(s), s), finish_by(double(s), deadline_ms=5, otherwise=zero)
"""


@pytest.fixture
def document(build):
    return graphfile.to_document(build(PROGRAM))


def test_a_graph_survives_the_file_unchanged(build, tmp_path):
    graph = build(PROGRAM)
    path = str(tmp_path / "g.json")
    graphfile.save(graph, path)
    again = graphfile.load(path)
    assert graphfile.to_document(again) == graphfile.to_document(graph)
    with open(path) as handle:
        assert json.load(handle)["format"] == "appliance-graph"


def _sq(doc, name):
    return next(s for s in doc["sqs"] if s["name"] == name)


def _refused(doc, match):
    with pytest.raises(GraphFileError) as info:
        graphfile.from_document(doc, source="g.json")
    assert info.match(match)
    return info.value


@pytest.mark.parametrize("mutate, sq, field, match", [
    (lambda d: _sq(d, "double").update(firing="sometimes"), "double", "firing", "must be one of"),
    (lambda d: _sq(d, "src")["stream"].update(period=0), "src", "stream.period", "positive"),
    (lambda d: _sq(d, "src")["stream"].update(phase=10_000), "src", "stream.phase", r"\[0, period\)"),
    (lambda d: _sq(d, "src").update(stream=None), "src", "stream", "is missing"),
    (lambda d: _sq(d, "pair").update(inputs="ab"), "pair", "inputs", "must be a list"),
    (lambda d: _sq(d, "pair").update(outputs=True), "pair", "outputs", "got a boolean"),
    (lambda d: _sq(d, "pair").update(constants={"zz": 1}), "pair", "constants", "not an input"),
    (lambda d: _sq(d, "pair").update(clock="wall"), "pair", "clock", "unknown clock"),
    (lambda d: _sq(d, "double").pop("max_tokens"), "double", "max_tokens", "is missing"),
    (lambda d: _sq(d, "deadline_double_2").update(deadline=None), "deadline_double_2", "deadline",
     "needs a deadline"),
    (lambda d: _sq(d, "zero").update(kind="builtin"), "zero", "function", "unknown built-in"),
])
def test_a_bad_field_is_refused_with_the_sq_and_the_field_named(document, mutate, sq, field, match):
    doc = copy.deepcopy(document)
    mutate(doc)
    err = _refused(doc, match)
    assert (err.sq, err.field) == (sq, field)
    assert str(err).startswith("g.json: SQ '%s': field '%s': " % (sq, field))


def test_arcs_must_name_existing_sqs_and_ports(document):
    doc = copy.deepcopy(document)
    doc["arcs"][0]["target"] = "nowhere"
    assert _refused(doc, "unknown SQ 'nowhere'").field == "arcs[0].target"
    doc = copy.deepcopy(document)
    doc["arcs"][0]["output"] = 3
    assert _refused(doc, "has no output 3").sq == doc["arcs"][0]["source"]


def test_an_input_nothing_feeds_is_refused(document):
    doc = copy.deepcopy(document)
    doc["arcs"] = [a for a in doc["arcs"] if not (a["target"] == "pair" and a["input"] == 1)]
    assert _refused(doc, "input 'b' is neither fed").sq == "pair"


def test_a_cycle_is_refused(document):
    doc = copy.deepcopy(document)
    doc["arcs"].append({"source": "pair", "output": 0, "target": "double", "input": 0})
    doc["arcs"] = [a for a in doc["arcs"] if not (a["target"] == "double" and a["source"] == "src")]
    assert _refused(doc, "cycle").field == "arcs"


def test_an_edited_program_source_is_noticed(document):
    doc = copy.deepcopy(document)
    doc["program"]["source"] += "\nimport os\n"
    assert _refused(doc, "does not match").field == "program.sha256"


def test_a_newer_version_is_refused(document):
    doc = copy.deepcopy(document)
    doc["version"] = 2
    assert _refused(doc, "reads version 1").field == "version"


def test_unreadable_files_are_refused(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(GraphFileError, match="not JSON"):
        graphfile.load(str(path))
    with pytest.raises(GraphFileError, match="cannot read"):
        graphfile.load(str(tmp_path / "missing.json"))


def test_a_stream_input_must_be_a_constant(document):
    doc = copy.deepcopy(document)
    del _sq(doc, "src")["constants"]["gain"]
    err = _refused(doc, "input 'gain' of a stream must be a constant")
    assert (err.sq, err.field) == ("src", "constants")

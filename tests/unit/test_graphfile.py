import copy
import json

import pytest

from appliance.program import GraphFileError, graphfile
from appliance.system import SystemFileError, load_system

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
    (lambda d: _sq(d, "pair").update(outputs=10 ** 9), "pair", "outputs", "must be from 1 to 1024"),
    (lambda d: _sq(d, "pair").update(ensemble=""), "pair", "ensemble", "'' is not an ensemble name"),
    (lambda d: _sq(d, "pair").update(ensemble="a b"), "pair", "ensemble", "not starting with '.' or '-'"),
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
    doc["version"] = 3
    assert _refused(doc, "reads versions 1, 2").field == "version"


def test_a_version_1_file_still_loads(document):
    """Version 1 had names only in requires, and no cost or constraints."""
    doc = copy.deepcopy(document)
    doc["version"] = 1
    doc.pop("constraints")
    for sq in doc["sqs"]:
        sq.pop("cost")
    doc["sqs"][0]["requires"] = ["camera"]
    graph = graphfile.from_document(doc)
    assert graph.sqs[0].requires == ["camera"] and all(s.cost == 1 for s in graph.sqs)
    assert graph.bounds == []


def test_queries_costs_and_latency_bounds_round_trip(document):
    doc = copy.deepcopy(document)
    doc["sqs"][0]["requires"] = ["camera", {"kind": "gpu", "memory_gb": {"at_least": 4}}]
    doc["sqs"][0]["cost"] = 2.5
    arc = doc["arcs"][0]
    doc["constraints"] = [{"max_latency": 5000, "path": [arc["source"], arc["target"]]}]
    graph = graphfile.from_document(doc)
    again = graphfile.from_document(json.loads(graphfile.dumps(graph)))
    assert again.sqs[0].requires == ["camera", {"kind": "gpu", "memory_gb": {"at_least": 4}}]
    assert again.sqs[0].cost == 2.5
    assert [(b.path, b.limit) for b in again.bounds] == [((arc["source"], arc["target"]), 5000)]


@pytest.mark.parametrize("query, match", [
    ({"memory_gb": {"more_than": 4}}, "at_least"),
    ({"any": []}, "non-empty list"),
    ({"kind": 3}, "compared with a string"),
    (7, "a query is a component name"),
])
def test_a_bad_query_names_the_sq_and_field(document, query, match):
    doc = copy.deepcopy(document)
    doc["sqs"][0]["requires"] = [query]
    error = _refused(doc, match)
    assert error.field == "requires" and error.sq == doc["sqs"][0]["name"]


def test_a_latency_bound_off_the_arcs_is_refused(document):
    doc = copy.deepcopy(document)
    names = [sq["name"] for sq in doc["sqs"]]
    doc["constraints"] = [{"max_latency": 5000, "path": [names[-1], names[0]]}]
    assert _refused(doc, "no arc joins").field == "constraints[0].path"


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


def test_json_nested_beyond_reason_is_refused_not_a_crash(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(GraphFileError, match="nested too deeply"):
        graphfile.load(str(path))


def test_a_key_given_twice_in_a_graph_or_system_file_is_refused_naming_it(tmp_path):
    system = tmp_path / "s.json"  # json would keep the second list: a run on one ensemble, silently
    system.write_text('{"ensembles": [{"name": "a"}, {"name": "b"}], "ensembles": [{"name": "c"}]}')
    with pytest.raises(SystemFileError, match="s.json: key 'ensembles' is given twice"):
        load_system(str(system))
    graph = tmp_path / "g.json"
    graph.write_text('{"name": "a", "name": "b"}')
    with pytest.raises(GraphFileError, match="g.json.*key 'name' is given twice"):
        graphfile.load(str(graph))


def test_a_string_that_is_not_unicode_text_in_a_graph_or_system_file_is_refused_naming_the_file(tmp_path):
    graph = tmp_path / "g.json"
    graph.write_text('{"name": "a", "sqs": [{"constants": {"k": ["ok", "\\udcff"]}}]}')
    with pytest.raises(GraphFileError, match="g.json.*a string in it is not Unicode text: it holds a lone surrogate"):
        graphfile.load(str(graph))
    system = tmp_path / "s.json"
    system.write_text('{"ensembles": [{"name": "a", "\\ud800": 1}]}')
    with pytest.raises(SystemFileError, match="s.json: a string in it is not Unicode text"):
        load_system(str(system))


def test_a_system_file_ensemble_named_as_the_runtime_manager_is_refused_naming_the_file(tmp_path):
    system = tmp_path / "s.json"
    system.write_text('{"ensembles": [{"name": "a"}, {"name": "runtime-manager"}]}')
    with pytest.raises(SystemFileError, match="s.json: ensemble name 'runtime-manager' is the runtime manager's"):
        load_system(str(system))


def test_a_name_ending_in_a_newline_is_not_a_name(document):
    doc = copy.deepcopy(document)
    doc["name"] = "main\n"
    assert _refused(doc, "is not a valid name").field == "name"

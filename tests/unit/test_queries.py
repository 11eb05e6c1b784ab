"""Components, the queries that match them, and system files that describe them."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.components import (
    Component,
    QueryError,
    all_of,
    any_of,
    at_least,
    at_most,
    between,
    component_from_wire,
    describe,
    matches,
    normalize,
    one_of,
    unmet,
    where,
)
from appliance.system import SystemFileError, system_from_document
from appliance.system.description import MAX_ENSEMBLES

THERMAL = Component("thermal_camera", "camera", {"resolution": 640, "rate_hz": 9, "model": "lepton"})
GPU = Component("gpu0", "gpu", {"memory_gb": 8, "cuda": True})


def _match(query, component):
    return matches(normalize(query), component)


def test_names_kinds_and_attribute_conditions():
    assert _match("thermal_camera", THERMAL) and not _match("gpu0", THERMAL)
    assert _match(where(kind="camera", resolution=at_least(320)), THERMAL)
    assert not _match(where(kind="camera", resolution=at_least(1024)), THERMAL)
    assert _match(where(rate_hz=between(5, 9)), THERMAL) and not _match(where(rate_hz=between(10, 30)), THERMAL)
    assert _match(where(rate_hz=at_most(9)), THERMAL)
    assert _match(where(model=one_of("lepton", "boson")), THERMAL) and not _match(where(model="boson"), THERMAL)
    assert not _match(where(kind="camera", fps=at_least(1)), THERMAL)  # an attribute it lacks never matches


def test_any_and_all_combine_queries():
    assert _match(any_of(where(kind="gpu"), where(kind="camera")), THERMAL)
    assert not _match(all_of(where(kind="camera"), where(model="boson")), THERMAL)
    assert _match(all_of(where(kind="gpu"), any_of(where(memory_gb=at_least(16)), where(cuda=True))), GPU)


def test_true_is_not_one_and_strings_are_not_numbers():
    assert not _match(where(memory_gb=True), GPU)
    assert not _match(where(cuda=1), GPU)
    assert not _match(where(model=at_least(1)), THERMAL)


def test_unmet_lists_the_queries_no_component_matches():
    queries = [normalize(q) for q in ("gpu0", where(kind="camera"), where(kind="radio"))]
    assert unmet(queries, [THERMAL, GPU]) == [{"kind": "radio"}]


def test_describe_reads_like_the_query():
    assert describe(normalize("camera_left")) == "camera_left"
    assert describe(normalize(where(kind="gpu", memory_gb=at_least(4)))) == "kind=gpu, memory_gb>=4"
    assert describe(normalize(any_of("a", where(rate=between(1, 2))))) == "(a or rate in [1, 2])"


@pytest.mark.parametrize("query, message", [
    ({}, "non-empty object"),
    ({"any": "gpu"}, "non-empty list"),
    ({"any": ["a"], "kind": "gpu"}, "stands alone"),
    ({"rate": {"between": [3, 1]}}, "low <= high"),
    ({"rate": {"at_least": "fast"}}, "takes a number"),
    ({"rate": [1, 2]}, "a value or one of"),
    ({"name": 3}, "compared with a string"),
])
def test_bad_queries_say_what_is_wrong(query, message):
    with pytest.raises(QueryError, match=message):
        normalize(query, "sqs[0].requires")


@given(st.integers(-1000, 1000), st.integers(-1000, 1000), st.integers(-1000, 1000))
def test_between_is_at_least_and_at_most(value, low, high):
    low, high = min(low, high), max(low, high)
    component = Component("s", "sensor", {"v": value})
    both = _match(where(v=at_least(low)), component) and _match(where(v=at_most(high)), component)
    assert _match(where(v=between(low, high)), component) == both == (low <= value <= high)


@pytest.mark.parametrize("item, message", [
    ({"name": "x", "kind": "laser"}, "unknown kind 'laser'"),
    ({"name": "bad name"}, "is not valid"),
    ({"name": "cam\n"}, "is not valid"),
    ({"name": "x", "attributes": {"unit\n": "C"}}, "is not an identifier"),
    ({"name": "x", "attributes": {"rate": [1]}}, "must be a (finite) number"),
    ({"name": "x", "attributes": {"rate": float("inf")}}, "must be a (finite) number"),
    ({"name": "x", "colour": "red"}, "unknown key 'colour'"),
    ({"name": "x", "driver": 3}, "'driver' must be a string"),
])
def test_bad_components_name_the_entry(item, message):
    with pytest.raises(Exception, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        component_from_wire(item, "system.json: ensembles[0]")
    assert "system.json: ensembles[0]" in str(info.value)


def test_attributes_under_both_names_are_refused():
    with pytest.raises(Exception, match="'fields' is the older name of 'attributes'; give one of them"):
        component_from_wire({"name": "c", "attributes": {"a": 1}, "fields": {"a": 2}}, "f")


def test_capacities_stay_numbers():
    doc = _system()
    doc["ensembles"][2]["resources"]["capacity"] = 1e308
    with pytest.raises(SystemFileError, match="capacity must be a positive number up to 1000000"):
        system_from_document(doc, "s.json")
    doc = _system()
    doc["ensembles"][1]["components"][0]["attributes"]["cores"] = 1e308
    assert system_from_document(doc, "s.json")[1].capacity == 1_000_000


def test_older_component_fields_still_read_as_attributes():
    component = component_from_wire({"name": "c", "kind": "sensor", "fields": {"unit": "C"}}, "f")
    assert component.attributes == {"unit": "C"}


def _system(**extra):
    doc = {"ensembles": [
        {"name": "pi", "components": [{"name": "valve", "kind": "actuator"}]},
        {"name": "jetson", "components": [{"name": "cpu", "kind": "compute", "attributes": {"cores": 6}},
                                          {"name": "gpu0", "kind": "gpu"}]},
        {"name": "gw", "resources": {"capacity": 2.5}},
    ]}
    doc.update(extra)
    return doc


def test_links_and_capacity_come_from_the_system_file():
    pi, jetson, gw = system_from_document(_system(links=[
        {"between": ["pi", "jetson"], "latency_ms": 1.5, "cost": 3}]), "s.json")
    assert pi.links == {"jetson": {"latency": 1500, "cost": 3}} and jetson.links == {"pi": {"latency": 1500, "cost": 3}}
    assert gw.links == {}
    assert (pi.capacity, jetson.capacity, gw.capacity) == (1, 6, 2.5)
    assert [c.kind for c in jetson.components] == ["compute", "gpu"]


@pytest.mark.parametrize("change, message", [
    ({"links": [{"between": ["pi", "nowhere"]}]}, "links[0]: 'between' must name two different ensembles"),
    ({"links": [{"between": ["pi", "pi"]}]}, "links[0]: 'between' must name two different ensembles"),
    ({"links": [{"between": ["pi", "gw"], "latency_ms": -1}]}, "links[0]: 'latency_ms' must be a finite non-negative "
                                                               "number, got -1"),
    ({"links": [{"between": ["pi", "gw"], "cost": "low"}]}, "links[0]: 'cost' must be a finite non-negative number, "
                                                            "got 'low'"),
    ({"links": [{"between": ["pi", "gw"], "bandwidth": 5}]}, "links[0]: 'bandwidth' is not a key of a link "
                                                             "(between, latency_ms, cost)"),
    ({"links": [{"between": ["pi", "gw"]}, {"between": ["gw", "pi"]}]}, "links[1]: the link between gw and pi"),
    ({"links": {}}, "'links' must be a list"),
    ({"links": [{"between": [["pi"], "gw"]}]}, "links[0]: 'between' must name two different ensembles"),
    ({"links": [{"between": ["pi", "gw"], "latency_ms": 1e308}]}, "links[0]: 'latency_ms' must be a finite "
                                                                  "non-negative number, got 1e+308"),
    ({"link": [{"between": ["pi", "gw"], "cost": 2}]}, "unknown key 'link' (a system file holds ensembles and links)"),
])
def test_bad_links_name_the_entry(change, message):
    with pytest.raises(SystemFileError) as info:
        system_from_document(_system(**change), "s.json")
    assert str(info.value).startswith("s.json: ") and message in str(info.value)


def test_a_system_file_with_more_ensembles_than_a_runtime_manager_takes_names_the_file():
    doc = {"ensembles": [{"name": "e%d" % i} for i in range(MAX_ENSEMBLES + 1)]}
    with pytest.raises(SystemFileError) as info:
        system_from_document(doc, "big.json")
    assert str(info.value) == "big.json: %d ensembles: a runtime manager takes at most %d" % (
        MAX_ENSEMBLES + 1, MAX_ENSEMBLES)


def test_a_component_named_twice_names_it():
    doc = _system()
    doc["ensembles"][0]["components"].append({"name": "valve", "kind": "actuator"})
    with pytest.raises(SystemFileError, match=r"s.json: ensembles\[0\].*names component 'valve' twice"):
        system_from_document(doc, "s.json")


def test_a_bad_capacity_is_refused():
    doc = _system()
    doc["ensembles"][2]["resources"]["capacity"] = 0
    with pytest.raises(SystemFileError, match="resources.capacity must be a positive number"):
        system_from_document(doc, "s.json")


def test_queries_nested_beyond_reason_are_refused():
    query = "gpu0"
    for _ in range(17):
        query = {"any": [query]}
    with pytest.raises(QueryError, match="nest more than 16 deep"):
        normalize(query, "sqs[0].requires")
    assert _match(query["any"][0], GPU)  # 16 deep is fine


def test_a_system_file_nested_beyond_reason_is_refused(tmp_path):
    from appliance.system import load_system

    path = tmp_path / "deep.json"
    path.write_text('{"ensembles": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(SystemFileError, match="deep.json: JSON nested too deeply"):
        load_system(str(path))


def test_an_ensemble_name_ending_in_a_newline_is_refused():
    with pytest.raises(SystemFileError, match="is not a valid ensemble name"):
        system_from_document({"ensembles": [{"name": "pi\n"}]}, "s.json")

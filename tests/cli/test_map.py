"""``appliance map``: the mapping, the arcs that cross ensembles, the load; as text or JSON;
the same mapping simulate and graph use; one line and exit 2 for bad input."""
import json

import pytest

from appliance.cli import map as map_command

from .test_graph import FUSION, FUSION_SYSTEM, Dot, run_cli, run_help_examples, simulated_mapping

FUSION_TEXT = """\
static mapping of main onto 4 ensembles:
  left_camera           left-pi
  right_camera          right-pi
  fuse                  jetson
  deadline_fuse         jetson
  no_detection          jetson
  fuse_or_no_detection  jetson
cross-ensemble arcs: 3 of 7
load (SQ costs / capacity):
  jetson           4 / 4
  left-pi          1 / 1
  right-pi         1 / 1
  runtime-manager  0 / 1
"""


def test_the_text_says_where_each_sq_runs_what_crosses_and_the_load(capsys):
    code, out, err = run_cli(capsys, "map", FUSION, "--system", FUSION_SYSTEM)
    assert (code, out, err) == (0, FUSION_TEXT, "")


def test_json_is_one_object_with_the_mapping_the_crossing_arcs_and_the_load(capsys):
    code, out, _ = run_cli(capsys, "map", FUSION, "--system", FUSION_SYSTEM, "--json")
    assert code == 0 and len(out.splitlines()) == 1
    doc = json.loads(out)
    assert set(doc) == {"mapping", "cross_arcs", "load"}
    assert doc["mapping"] == simulated_mapping(FUSION, FUSION_SYSTEM)  # what a simulation runs
    assert doc["cross_arcs"] == 3
    assert doc["load"] == {"jetson": {"cost": 4, "capacity": 4}, "left-pi": {"cost": 1, "capacity": 1},
                           "right-pi": {"cost": 1, "capacity": 1}, "runtime-manager": {"cost": 0, "capacity": 1}}


@pytest.mark.parametrize("strategy, seed", [("static", 0), ("random", 3), ("random", 8), ("trivial", 0)])
def test_map_graph_and_simulate_place_the_sqs_alike(capsys, strategy, seed):
    code, out, _ = run_cli(capsys, "map", FUSION, "--system", FUSION_SYSTEM, "--strategy", strategy,
                           "--seed", str(seed), "--json")
    assert code == 0
    mapping = json.loads(out)["mapping"]
    code, dot, _ = run_cli(capsys, "graph", FUSION, "--system", FUSION_SYSTEM, "--mapping", strategy,
                           "--seed", str(seed), "--format", "dot")
    assert code == 0 and Dot(dot).mapping() == mapping == simulated_mapping(FUSION, FUSION_SYSTEM, strategy, seed)


def test_a_graph_file_maps_like_its_program(capsys, tmp_path):
    path = str(tmp_path / "fusion.json")
    run_cli(capsys, "build", FUSION, "-o", path)
    code, out, _ = run_cli(capsys, "map", path, "--system", FUSION_SYSTEM)
    assert code == 0 and out == FUSION_TEXT


def test_an_impossible_mapping_is_one_line_and_exit_2(capsys, tmp_path):
    system = tmp_path / "no_gpu.json"
    system.write_text(json.dumps({"ensembles": [{"name": "pi", "components": ["camera_left", "camera_right"]}]}))
    code, out, err = run_cli(capsys, "map", FUSION, "--system", str(system))
    assert (code, out) == (2, "")
    assert err == ("appliance map: error: SQ 'fuse' requires gpu; no ensemble can host it: "
                   "pi, runtime-manager: no component matches gpu\n")


@pytest.mark.parametrize("argv, message", [
    (["missing.py", "--system", FUSION_SYSTEM], "no such program file"),
    ([FUSION, "--system", "missing.json"], "missing.json: cannot read: No such file or directory"),
    ([FUSION], "the following arguments are required: --system"),
    ([FUSION, "--system", FUSION_SYSTEM, "--strategy", "best"], "argument --strategy/--mapping: invalid choice"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path, argv, message):
    code, out, err = run_cli(capsys, "map", *argv)
    assert (code, out) == (2, "") and len(err.splitlines()) == 1
    assert err.startswith("appliance map: error: ") and message in err


def test_a_bad_system_file_names_the_file_and_the_entry(capsys, tmp_path):
    system = tmp_path / "bad.json"
    system.write_text('{"ensembles": [{"name": "a"}], "links": [{"between": ["a", "b"], "latency_ms": 1}]}')
    code, _, err = run_cli(capsys, "map", FUSION, "--system", str(system))
    assert code == 2 and err.startswith("appliance map: error: %s: links[0]: 'between'" % system)


def test_the_help_examples_run_from_the_repository_root(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "map", "--help")
    assert code == 0 and "examples (from the repository root):" in out
    capsys.readouterr()
    run_help_examples(map_command, tmp_path)
    out = capsys.readouterr().out
    assert out.count("cross-ensemble arcs:") == 2 and out.count('"cross_arcs"') == 1


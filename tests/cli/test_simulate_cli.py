"""What a new user meets at the command line: bad values, failed runs, the summary,
errors, the graph file, the demo."""
import argparse
import json
import os
import re
import shlex
import subprocess
import sys

import pytest

from appliance.cli import main, parser
from appliance.program.loader import load_program
from appliance.runtime.app import RunOptions
from appliance.sim.harness import simulate
from appliance.system import load_system

from ..sim.conftest import example_path
from .test_cli import GOOD, run_cli

RAISES = GOOD.replace("return 2 * x", "return 2 / (x % 2)")


@pytest.mark.parametrize("argv, names", [
    (["--duration", "inf"], "argument --duration"),
    (["--duration", "1e30"], "argument --duration"),
    (["--duration", "nan"], "argument --duration"),
    (["--latency-ms", "inf"], "argument --latency-ms"),
    (["--jitter-ms", "inf"], "argument --jitter-ms"),
    (["--jitter-ms", "-1"], "argument --jitter-ms"),
    (["--loss", "nan"], "argument --loss"),
    (["--ensembles", "0"], "argument --ensembles"),
    (["--ensembles", "100000"], "argument --ensembles"),
    (["--out", "/nonexistent/dir/o.jsonl"], "--out /nonexistent/dir/o.jsonl: cannot write"),
    (["--summary-json", "/nonexistent/s.json"], "--summary-json /nonexistent/s.json: cannot write"),
    (["--out", "/dev/full"], "--out /dev/full: cannot write: No space left on device"),  # fails writing, not opening
    (["--summary-json", "/dev/full"], "--summary-json /dev/full: cannot write: No space left on device"),
    (["--out", ""], "argument --out: is empty"),  # was: no --out
    (["--system", ""], "argument --system: is empty"),  # was: three numbered ensembles
    (["--summary-json", ""], "argument --summary-json: is empty"),
    (["--out", "o\udcff.jsonl"], "argument --out: is not UTF-8 text (o\ufffd.jsonl): rename the file"),
])
def test_a_bad_number_or_path_is_one_line_naming_it_and_exit_2(capsys, write_program, argv, names):
    code, out, err = run_cli(capsys, "simulate", write_program(GOOD), *argv)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and names in err and "Traceback" not in err


def test_the_summary_says_which_links_have_their_own_latency(capsys, write_program, tmp_path):
    system = tmp_path / "s.json"
    # (c's own entry names a link to an ensemble the file does not have: the simulation has no such link)
    system.write_text(json.dumps({"ensembles": [{"name": "a"}, {"name": "b"}, {"name": "c", "links": {"zz": {
        "latency": 9000}}}], "links": [{"between": ["a", "b"], "latency_ms": 4}, {"between": ["b", "c"]}]}))
    code, out, _ = run_cli(capsys, "simulate", write_program(GOOD), "--system", str(system), "--duration", "0.1")
    assert code == 0
    assert out.splitlines()[0].endswith("(seed 0, latency 1 ms (1 link of the system file: its own), jitter 0 ms, "
                                        "loss 0)")


@pytest.mark.parametrize("flags, first_line", [
    (["--duration", "0.0004", "--latency-ms", "0.0004", "--jitter-ms", "1.0006"],
     "for 0.0004 s (seed 0, latency 0 ms, jitter 1.001 ms, loss 0)"),
    (["--duration", "0.000001"], "for 0.000001 s (seed 0, latency 1 ms, jitter 0 ms, loss 0)"),
    (["--duration", "1.2345678"], "for 1.234568 s (seed 0, latency 1 ms, jitter 0 ms, loss 0)"),
])
def test_the_summary_says_the_times_as_the_run_took_them_rounded_to_us(capsys, write_program, flags, first_line):
    code, out, _ = run_cli(capsys, "simulate", write_program(GOOD), *flags)
    assert code == 0 and out.splitlines()[0].endswith(first_line)


def test_an_output_path_that_is_a_directory_is_refused(capsys, write_program, tmp_path):
    code, _, err = run_cli(capsys, "simulate", write_program(GOOD), "--out", str(tmp_path))
    assert code == 2 and err.strip() == "appliance simulate: error: --out %s: is a directory; give a file name" \
        % tmp_path
    code, _, err = run_cli(capsys, "build", write_program(GOOD), "-o", "/nonexistent/x.json")
    assert code == 2 and err.strip() == "appliance build: error: -o /nonexistent/x.json: cannot write: " \
        "No such file or directory"


@pytest.mark.parametrize("path", ["/dev/full", "/proc/version"])  # opens, then fails writing (as root: both)
def test_a_graph_file_that_cannot_be_written_is_one_line(capsys, write_program, path):
    if not os.path.exists(path):
        pytest.skip("%s: not on this system" % path)
    code, out, err = run_cli(capsys, "build", write_program(GOOD), "-o", path)
    assert (code, out) == (2, "") and len(err.splitlines()) == 1
    assert err.startswith("appliance build: error: -o %s: cannot write: " % path)


def test_build_names_the_graph_file_after_the_program(capsys, write_program, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first, second = write_program(GOOD, name="first"), write_program(GOOD, name="second")
    assert run_cli(capsys, "build", first)[0] == 0 and run_cli(capsys, "build", second + ":main")[0] == 0
    assert sorted(os.listdir(tmp_path)) == ["first.json", "first.py", "second.main.json", "second.py"]


def test_debug_is_accepted_after_the_command(write_program):
    with pytest.raises(Exception, match="called outside"):
        main(["build", write_program("from appliance import sq\n@sq\ndef f(x):\n    return x\nf(1)\n"), "--debug"])


def test_the_summary_shows_where_each_sq_ran_and_what_it_did(capsys):
    code, out, _ = run_cli(capsys, "simulate", example_path("two_sinusoids.py"), "--seed", "1")
    assert code == 0
    header = out.index("\n\n  SQ ") + 2
    table = out[header:].splitlines()
    assert table[0].split() == ["SQ", "ran", "on", "executions", "errors", "deadline", "discarded", "/", "lost"]
    rows = {line.split()[0]: line.split() for line in table[1:]}
    assert set(rows) == {"slow", "fast", "add", "smooth"}
    assert rows["add"][2] == "50" and rows["smooth"][2] == "200"  # executions
    assert {row[1] for row in rows.values()} <= {"ensemble-1", "ensemble-2", "ensemble-3",
                                                 "runtime-manager"}  # where it ran
    assert "unmatched" in " ".join(rows["add"])  # the fast samples without a slow partner
    summary = out[:header]
    assert "lost             none" in summary and "(by the firing rules' design)" in summary


def test_summary_json_holds_the_summary_the_options_and_the_graphs_sha256(capsys, tmp_path):
    path = tmp_path / "s.json"
    code, _, _ = run_cli(capsys, "simulate", example_path("diamond.py"), "--seed", "4", "--loss", "0.1",
                         "--summary-json", str(path))
    doc = json.loads(path.read_text())
    assert code == 0 and doc["options"]["seed"] == 4 and doc["options"]["loss"] == 0.1
    [commands] = [a for a in parser()._actions if isinstance(a, argparse._SubParsersAction)]
    flags = {a.dest for a in commands.choices["simulate"]._actions if a.option_strings}
    assert set(doc["options"]) == flags - {"help", "out", "summary_json", "debug"}  # every one the run depends on
    assert doc["options"]["ensembles"] == 3  # defaulted, and said
    assert sorted(doc["summary"]["ensembles"]) == ["ensemble-1", "ensemble-2", "ensemble-3", "runtime-manager"]
    assert len(doc["graph_sha256"]) == 64 and doc["summary"]["phase"] == "finished"
    assert set(doc["summary"]["sqs"]) == {"counter", "double", "square", "pair"}
    assert doc["summary"]["mapping"] == {sq: v["ensemble"] for sq, v in doc["summary"]["sqs"].items()}
    assert doc["network"]["lost"] > 0 and doc["timeline"]["t0"] > doc["timeline"]["joined"]


def test_each_distinct_error_is_shown_once_with_its_count_and_debug_shows_traceback_and_input(
        capsys, write_program):
    path = write_program(RAISES)
    code, out, err = run_cli(capsys, "simulate", path, "--duration", "0.2", "--ensembles", "2")
    lines = [line for line in err.splitlines() if "error: SQ 'double'" in line]
    assert code == 2 and len(lines) == 1 and "ZeroDivisionError" in lines[0] and "(10 times)" in lines[0]
    assert "Traceback" not in err
    code, _, err = run_cli(capsys, "simulate", path, "--duration", "0.2", "--ensembles", "2", "--debug")
    assert "its input: (" in err and "Traceback (most recent call last)" in err and "2 / (x % 2)" in err


@pytest.mark.parametrize("returned, said", [
    ("x", "returned a value of type int, not 2 values"),
    ("(x,) * 100000", "returned a tuple of 100000 values, not 2"),  # was: all of them, as text
    ("[x]", "returned a list of 1 value, not 2"),
])
def test_returning_the_wrong_number_of_outputs_says_what_came_back_in_a_few_words(capsys, write_program,
                                                                                   returned, said):
    program = GOOD.replace("@sq\ndef double(x):\n    return 2 * x", "@sq(outputs=2)\ndef double(x):\n    return "
                           + returned).replace("return double(n())", "a, b = double(n())\n    return a")
    code, _, err = run_cli(capsys, "simulate", write_program(program), "--duration", "0.1", "--ensembles", "1")
    [line] = [line for line in err.splitlines() if "SQ 'double'" in line]
    assert code == 2 and "SQ double has outputs=2 but %s" % said in line and len(line) < 300, line


@pytest.mark.parametrize("program, expected", [
    ("""
from appliance import graph, stream

@stream(period_ms=10, ensemble="gateway")
def n():
    return 1

@graph
def main():
    return n()
""", "pinned to ensemble 'gateway', which has not joined"),
    ("""
from appliance import graph, stream

@stream(period_ms=10, requires=["thermal_camera"])
def n():
    return 1

@graph
def main():
    return n()
""", "appliance simulate: error: SQ 'n' requires thermal_camera; no ensemble can host it: "
        "ensemble-1, runtime-manager: no component matches thermal_camera\n"),
    ("""
from appliance import graph, stream

@stream(period_ms=10)
def n():
    import no_such_module_anywhere
    return 1

import sys
if "appliance_deployed" in __name__:
    import no_such_module_anywhere

@graph
def main():
    return n()
""", "deployment failed: ensemble-1: program does not load here: ModuleNotFoundError"),
])
def test_a_run_that_never_ran_prints_its_error_and_no_summary(capsys, write_program, program, expected):
    code, out, err = run_cli(capsys, "simulate", write_program(program), "--ensembles", "1")
    assert code == 2 and out == "" and expected in err
    assert len(err.strip().splitlines()) == 1


def test_a_graph_whose_sq_names_a_function_its_source_lacks_is_refused_at_load(capsys, write_program, tmp_path):
    graph_path = tmp_path / "g.json"
    assert run_cli(capsys, "build", write_program(GOOD), "-o", str(graph_path))[0] == 0
    doc = json.loads(graph_path.read_text())
    doc["sqs"][1]["function"] = "triple"
    graph_path.write_text(json.dumps(doc))
    code, out, err = run_cli(capsys, "simulate", str(graph_path))
    assert code == 2 and out == ""
    assert err.strip() == ("appliance simulate: error: %s: SQ 'double': field 'function': names function "
                           "'triple', which the program prog1.py does not define" % graph_path)


def test_a_deadline_that_can_never_be_met_is_a_warning_at_build(capsys, write_program):
    code, _, err = run_cli(capsys, "build", write_program("""
from appliance import finish_by, graph, sq, stream

@stream(period_ms=50, width_ms=10)
def camera():
    return 1

@sq
def detect(frame):
    return frame

@sq
def nothing():
    return None

@graph
def main():
    return finish_by(detect(camera()), deadline_ms=2, otherwise=nothing)
"""), "-o", os.devnull)
    assert code == 0
    assert "warning: SQ 'deadline_detect': its deadline of 2 ms can never be met" in err
    assert "begins 5 ms before the sample is taken" in err


def test_the_demos_suggested_command_runs_as_printed_from_anywhere(tmp_path):
    appliance = os.path.join(os.path.dirname(sys.executable), "appliance")
    done = subprocess.run([appliance, "demo", "--simulated"], capture_output=True, text=True, cwd=str(tmp_path),
                          timeout=120)
    assert done.returncode == 0, done.stderr
    [suggestion] = [line for line in done.stdout.splitlines() if line.startswith("Try: ")]
    tried = subprocess.run(shlex.split(suggestion[len("Try: "):]) + ["--duration", "0.2"], capture_output=True,
                           text=True, cwd=str(tmp_path), timeout=120)
    assert tried.returncode == 0, tried.stderr
    assert "outputs logged" in tried.stdout


@pytest.mark.parametrize("seed", [1, 4])
def test_the_simulated_demo_maps_at_random_with_its_seed_as_the_docs_say(capsys, seed):
    code, out, _ = run_cli(capsys, "demo", "--simulated", "--seed", str(seed))
    [line] = [line for line in out.splitlines() if line.startswith("Mapping: ")]
    graph = load_program(example_path("camera_fusion.py"))
    result = simulate(graph, load_system(example_path("camera_fusion.system.json")),
                      RunOptions(strategy="random", seed=seed, duration=100_000))
    assert code == 0 and line == "Mapping: %s." % ", ".join("%s on %s" % (sq.name, result.mapping[sq.name])
                                                            for sq in graph.sqs)


def test_the_clock_offset_that_warns_at_deploy_is_a_flag(capsys):
    argv = ("simulate", example_path("two_sinusoids.py"), "--ensembles", "3", "--clock-skew-ms", "3", "--seed", "2",
            "--duration", "0.2")
    _, _, default = run_cli(capsys, *argv)
    _, _, tight = run_cli(capsys, *argv, "--max-clock-offset-ms", "0.1")
    _, _, loose = run_cli(capsys, *argv, "--max-clock-offset-ms", "100")
    assert "more than 1.250 ms (a quarter of the smallest stream period)" in default
    # What a measurement can say: the uncertainty, half a round trip of 1 ms links at least.
    assert all(float(half) >= 1.0 for half in re.findall(r"\(measured ±([0-9.]+) ms: half its round trip\)",
                                                          default)) and "measured ±" in default
    assert tight.count("more than 0.100 ms (max_clock_offset)") > default.count("warning")
    assert "warning" not in loose
    code, _, err = run_cli(capsys, *argv, "--max-clock-offset-ms", "-1")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "argument --max-clock-offset-ms" in err


def test_a_program_whose_file_name_is_not_utf8_is_refused_naming_it(capsys, write_program, tmp_path):
    """Its bytes reach Python as a lone surrogate, which its deployment could not carry (was: a traceback)."""
    good = write_program(GOOD)
    odd = os.fsdecode(os.fsencode(str(tmp_path)) + b"/d\xff.py")
    os.rename(good, odd)
    code, out, err = run_cli(capsys, "simulate", odd, "--duration", "0.1")
    assert code == 2 and out == "" and "Traceback" not in err
    assert err.startswith("appliance simulate: error: argument PROGRAM: is not UTF-8 text (")


@pytest.mark.parametrize("flags, message", [
    (["--latency-ms", "600"], "argument --latency-ms: must be a number of milliseconds from 0 to 500"),
    (["--latency-ms", "400", "--jitter-ms", "200"], "latency 400 ms plus jitter 200 ms is more than 500 ms"),
])
def test_a_network_slower_than_the_transport_carries_is_refused(capsys, flags, message):
    """Was: taken up to 60 s; from 850 ms the joins measured the clocks 500 ms off, messages
    failed, and a run logged nothing and exited 0; from 1 s the ensembles never joined."""
    code, _, err = run_cli(capsys, "simulate", example_path("diamond.py"), *flags)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("system", [
    {"ensembles": [{"name": "pi-1"}, {"name": "pi-2"}], "links": [{"between": ["pi-2", "pi-1"], "latency_ms": 450}]},
    {"ensembles": [{"name": "pi-1"}, {"name": "pi-2", "links": {"pi-1": {"latency": 450_000}}}]},  # one way only
], ids=["between", "one way"])
def test_a_system_file_link_slower_than_the_transport_carries_is_refused(capsys, tmp_path, system):
    """Was: a 1 s link ran, and the tokens still on it at the end were counted nowhere."""
    path = tmp_path / "slow.json"
    path.write_text(json.dumps(system))
    assert run_cli(capsys, "simulate", example_path("diamond.py"), "--system", str(path), "--duration", "0.1")[0] == 0
    code, _, err = run_cli(capsys, "simulate", example_path("diamond.py"), "--system", str(path), "--jitter-ms", "51")
    assert code == 2 and err.strip() == (
        "appliance simulate: error: link pi-1-pi-2: latency 450 ms plus jitter 51 ms is more than the 500 ms one way "
        "a simulated link carries (a round trip up to the transport's rto_max, 1 s)")


def test_the_python_api_refuses_a_network_slower_than_the_transport_carries():
    from appliance.net.impairment import Impairment
    from appliance.sim.harness import SimulationError, numbered_ensembles

    graph = load_program(example_path("diamond.py"))
    with pytest.raises(SimulationError, match="latency 500 ms plus jitter 0.001 ms is more than 500 ms one way"):
        simulate(graph, numbered_ensembles(2), RunOptions(duration=100_000), Impairment(latency=500_000, jitter=1))

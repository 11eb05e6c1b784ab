"""An SQ firing that does not end is stopped at the app's time limit: the simulation goes on,
the SQ's error says where it was, and the SQ is not called again."""
import json

import pytest

from appliance.cli import main
from appliance.runtime.app import RunOptions

STUCK = """
import time
from appliance import graph, sq, stream

@stream(period_ms=10, count=5)
def sample(tick):
    return 1

@sq(state=True)
def stuck(x, state):
    state["n"] = state.get("n", 0) + 1
    if state["n"] == 2:
        {body}
    return state["n"]

@sq
def other(x):
    return x + 1

@graph
def main():
    s = sample()
    return stuck(s), other(s)
"""

BODIES = {
    "a loop": "while True:\n            pass",
    "a wait": "time.sleep(3600)",
    "a loop that catches Exception": "while True:\n            try:\n                time.sleep(1)\n"
                                      "            except Exception:\n                pass",
}


@pytest.mark.parametrize("body", list(BODIES.values()), ids=list(BODIES))
def test_a_firing_that_does_not_end_is_stopped_and_its_sq_with_it(write_program, tmp_path, capsys, body):
    path = write_program(STUCK.replace("{body}", body))
    stuck_at = STUCK.replace("{body}", body).splitlines().index("        " + body.splitlines()[0]) + 1
    out = tmp_path / "o.jsonl"
    code = main(["simulate", path, "--ensembles", "2", "--duration", "0.1", "--sq-time-limit", "0.2",
                 "--out", str(out), "--summary-json", str(tmp_path / "s.json")])
    err = capsys.readouterr().err
    assert code == 2
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["value"] for r in records if r["sq"] == "other") == [2] * 5  # the others went on
    assert [r["value"] for r in records if r["sq"] == "stuck"] == [1]  # its first firing; none after the second
    summary = json.loads((tmp_path / "s.json").read_text())["summary"]
    assert summary["sqs"]["stuck"]["lost"] == {"over_time_limit": 3} and summary["sq_errors"] == 1
    [error] = summary["errors"]
    assert error["sq"] == "stuck" and error["error"].startswith(
        "TimeLimitExceeded: ran for more than 0.2 s (the app's sq_time_limit) and was stopped; "
        "it is not called again in this app (")
    where = error["error"].rsplit("(", 1)[1]  # the line it was stopped at, in the body
    assert where in ["%s:%d)" % (path.rsplit("/", 1)[-1], line)
                     for line in range(stuck_at, stuck_at + len(body.splitlines()))], error
    assert "SQ 'stuck' on " in err and "  (once)\n" in err


def test_a_time_limit_that_is_no_time_is_refused_naming_the_flag(write_program, capsys):
    path = write_program(STUCK.replace("{body}", "pass"))
    assert main(["simulate", path, "--sq-time-limit", "0"]) == 2
    assert "argument --sq-time-limit: must be a number of seconds from 0.000001" in capsys.readouterr().err
    for limit in (0, 10 ** 14 + 1):
        with pytest.raises(ValueError, match=r"run option sq_time_limit must be an int of µs from 1 to "
                                             r"100000000000000 \(1e8 s\), got %d" % limit):
            RunOptions(sq_time_limit=limit)


def test_a_teardown_that_does_not_end_is_stopped_and_the_run_ends(write_program, tmp_path, capsys):
    source = STUCK.replace("{body}", "pass") + "\n\ndef teardown():\n    while True:\n        pass\n"
    path = write_program(source)
    summary_file = tmp_path / "s.json"
    code = main(["simulate", path, "--ensembles", "1", "--duration", "0.1", "--sq-time-limit", "0.2",
                 "--summary-json", str(summary_file)])
    assert code == 2
    summary = json.loads(summary_file.read_text())["summary"]
    assert summary["phase"] == "finished" and summary["outputs"] == 10  # the run itself was whole
    stopped = [e for e in summary["errors"] if e["sq"] == "teardown()"]
    assert stopped and all(e["error"].startswith("TimeLimitExceeded: ran for more than 0.2 s (the app's "
                                                 "sq_time_limit) and was stopped") for e in stopped)
    assert "SQ 'teardown()' on " in capsys.readouterr().err

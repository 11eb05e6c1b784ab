"""Every benchmark still runs and prints its figures as JSON lines.

A benchmark is not a test and asserts nothing of speed; this only keeps them from
rotting when the code they drive changes (bench/cores.py once stopped at its first
message when a deploy message grew a field). Each runs at its smallest size.
"""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SMALLEST = [
    ("cores.py", ["--executions", "2000"]),
    ("ipc.py", ["--quick"]),
    ("mapping.py", ["--quick"]),
    ("sim.py", ["--ensembles", "2", "--chains", "2", "--length", "2", "--duration", "1"]),
    ("udp.py", ["--quick"]),
    ("loopback.py", ["--duration", "0.5", "--rates", "200"]),
]


@pytest.mark.timeout(240)
@pytest.mark.parametrize("script, args", SMALLEST, ids=[script for script, _ in SMALLEST])
def test_a_benchmark_prints_its_figures_as_json_lines(script, args):
    done = subprocess.run([sys.executable, os.path.join("bench", script), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=220)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines, "no figures: " + done.stderr[-3000:]
    for line in lines:
        figure = json.loads(line)
        assert figure["bench"] == script[:-3], line
        assert isinstance(figure["metric"], str) and isinstance(figure["unit"], str), line
        assert isinstance(figure["value"], (int, float)) and not isinstance(figure["value"], bool), line


def test_every_benchmark_is_run_above():
    assert sorted(name for name in os.listdir(os.path.join(ROOT, "bench")) if name.endswith(".py")) == \
        sorted(script for script, _ in SMALLEST)

"""The relay's recipe for trying a deployment under loss on one machine (its ``--help``
and docs/devices.md) runs as written: the ensemble joins through the relay at the
address it advertised, the app runs, and the relay did lose datagrams on the way."""
import json
import os
import shlex
import subprocess
import sys

import pytest

from ..sim.conftest import example_path


def relay_recipe():
    """The example command lines of the relay's ``--help``, continuations joined."""
    out = subprocess.run([sys.executable, "-m", "appliance.net.relay", "--help"], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    block = out.split("\nexamples:\n", 1)[1].split("\n\n", 1)[0].replace("\\\n", " ")
    return [shlex.split(line) for line in block.splitlines() if line.strip() and not line.strip().startswith("(")]


@pytest.mark.timeout(120)
def test_the_relay_recipe_runs_a_deployment_through_loss(commands, tmp_path):
    os.symlink(os.path.dirname(example_path("diamond.py")), str(tmp_path / "examples"))
    relay_line, ensemble_line, rtm_line = relay_recipe()
    assert relay_line[:3] == ["python", "-m", "appliance.net.relay"] and ensemble_line[:2] == ["appliance", "ensemble"]
    assert rtm_line[:2] == ["appliance", "rtm"]
    relay = commands(*relay_line[3:], module="appliance.net.relay", cwd=str(tmp_path))
    relay.stderr_line_containing("relay 127.0.0.1:9225 -> 127.0.0.1:8225")
    ensemble = commands(*ensemble_line[1:], cwd=str(tmp_path))
    code, out, err = commands(*rtm_line[1:], cwd=str(tmp_path)).finish()
    assert code == 0, (out, err)
    advertised = ensemble_line[ensemble_line.index("--advertise") + 1]
    assert "joined: e1 from %s," % advertised in out
    assert int(out.split("outputs logged")[1].split()[0]) > 0
    assert ensemble.stop()[0] == 0
    code, counters, _ = relay.stop()
    counters = json.loads(counters.strip().splitlines()[-1])
    assert code == 0 and counters["forwarded"] > 0 and counters["lost"] > 0

"""``appliance demo``: the camera-fusion example end to end, explained."""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
from importlib import metadata

from appliance.cli.errors import UsageError
from appliance.net.impairment import Impairment
from appliance.program.loader import load_program
from appliance.runtime.app import RunOptions
from appliance.runtime.outputs import JsonLinesWriter
from appliance.sim.harness import simulate
from appliance.system import load_system

INTRO = """\
appliance demo: two cameras, one GPU, a deadline and a Plan B.

Three simulated devices join a simulated runtime manager: two Raspberry Pis
with one camera each and a Jetson with a GPU (examples/camera_fusion.system.json).
The program (examples/camera_fusion.py) samples both cameras every 50 ms;
a timed join pairs the two frames taken at the same instant and `fuse`, which
requires a GPU, runs on the Jetson. Each fused result must arrive within 20 ms
of the start of its frame's time interval; the network here has 4 ms latency
and up to 12 ms jitter, so some are late, and for those `no_detection` answers
instead (Plan B).
"""


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="run an example end to end and explain it",
                       description="Simulate the camera-fusion example on three ensembles and explain the "
                       "output.", epilog="example:\n  appliance demo --seed 3\n",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, default=1, help="seed for the simulated network (default 1)")
    p.set_defaults(run=run)


#: Where pip puts the examples, relative to its installation prefix (setup.cfg's data_files).
_INSTALLED = "share/appliance/examples/camera_fusion.py"


def examples_dir() -> str:
    """The examples of a checkout, or those installed with the package (``share/appliance/examples``
    under whatever prefix pip used: a venv, ``--user``, the system)."""
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    checkout = os.path.join(here, "examples")
    if os.path.isfile(os.path.join(checkout, "camera_fusion.py")):
        return checkout
    try:
        installed = [f for f in metadata.files("appliance") or () if f.as_posix().endswith(_INSTALLED)]
    except metadata.PackageNotFoundError:
        installed = []
    if installed:
        return os.path.dirname(str(installed[0].locate()))
    raise UsageError("cannot find the examples: they are neither next to the package nor installed with it "
                     "(reinstall: pip install appliance)")


def command_name() -> str:
    """How the user ran this command, so a suggested command works as printed from where they are:
    the script's path as the interpreter got it (absolute when found on PATH, else as typed)."""
    argv0 = sys.argv[0] if sys.argv else ""
    if os.path.basename(argv0) == "appliance":
        return shlex.quote(argv0)
    return "%s -m appliance" % shlex.quote(sys.executable)


def run(args: argparse.Namespace) -> int:
    examples = examples_dir()
    graph = load_program(os.path.join(examples, "camera_fusion.py"))
    system = load_system(os.path.join(examples, "camera_fusion.system.json"))
    print(INTRO)
    out_path = os.path.join(tempfile.gettempdir(), "appliance-demo-outputs.jsonl")
    with open(out_path, "w", encoding="utf-8") as out:
        result = simulate(graph, system, RunOptions(seed=args.seed, duration=2_000_000),
                          Impairment(latency=4_000, jitter=12_000), sink=JsonLinesWriter(out))
    s = result.summary
    placed = ", ".join("%s on %s" % (sq.name, result.mapping[sq.name]) for sq in graph.sqs)
    print("Mapping: %s.\n" % placed)
    print("In 2 s of simulated time the runtime manager logged %d outputs: %d fused positions met the "
          "deadline and %d samples were answered by Plan B." % (result.outputs, s["deadline_met"],
                                                                s["deadline_missed"]))
    print("The first outputs (times are µs on the root clock; start/stop is the sample's interval):")
    with open(out_path, encoding="utf-8") as lines:
        for line in list(lines)[:4]:
            record = json.loads(line)
            print("  %-28s value=%-36s [%d, %d) logged at %d"
                  % (record["sq"], json.dumps(record["value"]), record["start"], record["stop"], record["logged_at"]))
    print("\nAll %d outputs are in %s (one JSON object per line)." % (result.outputs, out_path))
    print("Try: %s simulate %s --system %s --jitter-ms 30 --loss 0.05" % (
        command_name(), shlex.quote(os.path.join(examples, "camera_fusion.py")),
        shlex.quote(os.path.join(examples, "camera_fusion.system.json"))))
    return 0

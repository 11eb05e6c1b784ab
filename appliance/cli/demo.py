"""``appliance demo``: an example end to end, explained: on real processes here, or simulated."""
from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import tempfile
from importlib import metadata
from typing import List

from appliance.cli import values
from appliance.cli.errors import UsageError
from appliance.cli.rtm import run_program
from appliance.device.run import settings_from
from appliance.net.impairment import Impairment
from appliance.program.loader import load_program
from appliance.runtime.app import OutputRecord, RunOptions
from appliance.runtime.outputs import JsonLinesWriter, jsonable
from appliance.sim.harness import simulate
from appliance.system import load_system

DEVICES_INTRO = """\
appliance demo: a program on three real process trees on this machine.

A runtime manager and two ensembles, `left` and `right`, start here as the
devices of a cluster would: each is an ensemble of OS processes (input tokens,
execute, network manager, and the runtime manager's own) on shared-memory
queues, and they talk over UDP on loopback. The ensembles join, the runtime
manager maps examples/diamond.py onto them, deploys it and runs it for %g s:
every 10 ms a counter samples, one SQ doubles it, another squares it, and a
timed join pairs the two results of the same sample. Each output is printed
as the runtime manager logs it (times in ms from the first sample; latency
from the sample's tick to the log).
"""

SIMULATED_INTRO = """\
appliance demo --simulated: two cameras, one GPU, a deadline and a Plan B.

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
                       description="Run the diamond example on a runtime manager and two ensembles started "
                       "here as real process trees on loopback; or, with --simulated, simulate the "
                       "camera-fusion example on three ensembles.",
                       epilog="examples:\n  appliance demo\n  appliance demo --simulated --seed 3\n",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--simulated", action="store_true", help="simulate the camera-fusion example instead")
    p.add_argument("--seed", type=int, default=1, help="seed of the mapping (and of the simulated network)")
    p.add_argument("--duration", type=values.seconds, default=None, metavar="SECONDS",
                   help="how long the streams sample (default 0.5 on the devices, 2 simulated)")
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
    if args.duration is None:
        args.duration = 2.0 if args.simulated else 0.5
    return run_simulated(args) if args.simulated else run_devices(args)


def run_devices(args: argparse.Namespace) -> int:
    graph = load_program(os.path.join(examples_dir(), "diamond.py"))
    print(DEVICES_INTRO % args.duration)
    settings, sock = settings_from({"name": "runtime-manager", "listen": "127.0.0.1:0"}, None,
                                   hosts_runtime_manager=True,
                                   log_level=logging.DEBUG if args.debug else logging.ERROR)
    ensembles: List[subprocess.Popen] = []
    first: List[int] = []
    with tempfile.TemporaryFile() as logs:

        def start_ensembles(address: str) -> None:
            for name in ("left", "right"):
                ensembles.append(subprocess.Popen(
                    [sys.executable, "-m", "appliance", "ensemble", "--name", name, "--rtm", address,
                     "--listen", "127.0.0.1:0"], stdout=subprocess.DEVNULL, stderr=logs))

        def show(record: OutputRecord) -> None:
            tick = (record.start + record.stop) // 2
            if not first:
                first.append(tick)
            print("  %8.1f ms  %s = %-32s from %-5s  latency %.2f ms"
                  % ((tick - first[0]) / 1000, record.sq, json.dumps(jsonable(record.value)), record.ensemble,
                     (record.logged_at - tick) / 1000), flush=True)

        options = RunOptions(strategy="random", seed=args.seed, duration=int(round(args.duration * 1e6)))
        try:
            code = run_program(settings, sock, graph, options, 2, 60.0, show, None, args.debug, "demo",
                               joining=start_ensembles)
        finally:
            stop_all(ensembles)
        failed = [e for e in ensembles if e.returncode not in (0, -signal.SIGTERM)]
        if failed:
            logs.seek(0)
            sys.stderr.write(logs.read().decode("utf-8", "replace"))
    print("\nAll three process trees have stopped. Try: %s demo --simulated" % command_name())
    return code or (1 if failed else 0)


def stop_all(processes: List[subprocess.Popen]) -> None:
    """SIGTERM each (each stops its own processes in order and removes its queues), then wait."""
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_simulated(args: argparse.Namespace) -> int:
    examples = examples_dir()
    graph = load_program(os.path.join(examples, "camera_fusion.py"))
    system = load_system(os.path.join(examples, "camera_fusion.system.json"))
    print(SIMULATED_INTRO)
    out_path = os.path.join(tempfile.gettempdir(), "appliance-demo-outputs.jsonl")
    with open(out_path, "w", encoding="utf-8") as out:
        result = simulate(graph, system, RunOptions(strategy="random", seed=args.seed,
                                                    duration=int(round(args.duration * 1e6))),
                          Impairment(latency=4_000, jitter=12_000), sink=JsonLinesWriter(out))
    s = result.summary
    placed = ", ".join("%s on %s" % (sq.name, result.mapping[sq.name]) for sq in graph.sqs)
    print("Mapping: %s.\n" % placed)
    print("In %g s of simulated time the runtime manager logged %d outputs: %d fused positions met the "
          "deadline and %d samples were answered by Plan B." % (args.duration, result.outputs, s["deadline_met"],
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

"""Simulated SQ executions per wall-clock second, and the memory peak.

A generated program of CHAINS chains, each a stream and LENGTH - 1 SQs, chain
i pinned to ensemble i mod ENSEMBLES. Half-way along, each chain passes a
timed join; with --cross-every K, every K-th chain's join also takes the next
chain's token, from another ensemble (the others join their own token), and
--logged N chain ends are graph outputs the runtime manager logs (the other
chain ends are sinks). The default: every chain crosses, so every sample of
every chain sends a token between ensembles, and 10 chain ends are logged.
Each message between ensembles runs the real codec and transport endpoint on
both sides, which is what a simulated datagram costs; ``datagrams_per_execution``
says how much of that the run had, and ``share_of_cores_alone`` compares the
result with the bare process cores timed in the same run (this machine's speed
now). Prints JSON lines:

    .venv/bin/python bench/sim.py                    # 100 ensembles, 1000 SQs, 6 s simulated
    .venv/bin/python bench/sim.py --logged 100       # every chain end logged: output-heavy
    .venv/bin/python bench/sim.py --cross-every 10   # one chain in ten crosses ensembles
    .venv/bin/python bench/sim.py --quick            # a smaller, faster run
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time

from cores import seconds_per_execution  # bench/cores.py, beside this file

from appliance.net.impairment import Impairment
from appliance.program.loader import load_program
from appliance.runtime.app import RunOptions
from appliance.sim.harness import numbered_ensembles, simulate

PROGRAM_HEAD = '''
from appliance import graph, sq, stream
'''

PER_ENSEMBLE = '''

@stream(period_ms={period_ms}, ensemble="ensemble-{n}")
def source_{n}(tick):
    return tick // 1000


@sq(ensemble="ensemble-{n}")
def step_{n}(x):
    return x + 1


@sq(ensemble="ensemble-{n}")
def join_{n}(a, b):
    return a + b
'''

PROGRAM_GRAPH = '''

FUNCTIONS = [{functions}]


@graph
def main():
    mids = []
    for i in range({chains}):
        source, step, _ = FUNCTIONS[i % len(FUNCTIONS)]
        x = source()
        for _ in range({half}):
            x = step(x)
        mids.append(x)
    outputs = []
    for i, mid in enumerate(mids):
        _, step, join = FUNCTIONS[i % len(FUNCTIONS)]
        x = join(mid, mids[(i + 1) % len(mids)] if i % {cross_every} == 0 else mid)
        for _ in range({rest}):
            x = step(x)
        outputs.append(x)
    return tuple(outputs[:{logged}])
'''


def emit(metric: str, value: float, unit: str, **extra) -> None:
    print(json.dumps(dict({"bench": "sim", "metric": metric, "value": value, "unit": unit}, **extra)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ensembles", type=int, default=100)
    parser.add_argument("--chains", type=int, default=100)
    parser.add_argument("--length", type=int, default=10, help="SQs per chain, the stream included")
    parser.add_argument("--period-ms", type=int, default=10)
    parser.add_argument("--duration", type=float, default=6.0, help="simulated seconds")
    parser.add_argument("--cross-every", type=int, default=1, metavar="K",
                        help="every K-th chain joins a token from another ensemble (default: every chain)")
    parser.add_argument("--logged", type=int, default=10, metavar="N",
                        help="chain ends logged as graph outputs (default: 10)")
    parser.add_argument("--quick", action="store_true", help="10 ensembles, 100 SQs")
    args = parser.parse_args()
    if args.quick:
        args.ensembles, args.chains = 10, 10
    half = (args.length - 2) // 2
    rest = args.length - 2 - half
    # SQ functions are top-level names of the program file: one trio per ensemble, each pinned there.
    numbers = range(1, args.ensembles + 1)
    source = PROGRAM_HEAD + "".join(PER_ENSEMBLE.format(period_ms=args.period_ms, n=n) for n in numbers)
    source += PROGRAM_GRAPH.format(functions=", ".join("(source_%d, step_%d, join_%d)" % (n, n, n) for n in numbers),
                                   chains=args.chains, half=half, rest=rest, cross_every=args.cross_every,
                                   logged=min(args.logged, args.chains))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench_program.py")
        with open(path, "w") as handle:
            handle.write(source)
        graph = load_program(path)
    sqs = len(graph.sqs)
    options = RunOptions(seed=1, duration=int(args.duration * 1e6))
    marks = []  # (simulated µs into the run window, wall s, cpu s): while the streams sample

    def progress(done: int, total: int) -> None:
        marks.append((done, time.perf_counter(), time.process_time()))

    started = time.perf_counter()
    result = simulate(graph, numbered_ensembles(args.ensembles), options, Impairment(latency=500, jitter=100),
                      progress=progress)
    wall = time.perf_counter() - started
    executions = result.summary["executions"]
    # Steady state: the progress marks while the streams sample, the last one (the end) left out.
    running = marks[:-1]
    span_sim = running[-1][0] - running[0][0]
    done = executions * span_sim / options.duration
    shape = {"ensembles": args.ensembles, "sqs": sqs, "simulated_s": args.duration,
             "cross_every": args.cross_every, "logged": len(graph.outputs)}
    emit("executions", executions, "count", **shape)
    per_second = done / (running[-1][1] - running[0][1])
    # This machine's speed now, measured in the same run: the cores alone, one SQ, no shell.
    cores_alone = 1 / min(seconds_per_execution(100_000) for _ in range(3))
    emit("executions_per_wall_second", round(per_second), "1/s", goal=100000, **shape)
    emit("share_of_cores_alone", round(per_second / cores_alone, 3), "1", baseline=round(cores_alone), **shape)
    emit("executions_per_cpu_second", round(done / (running[-1][2] - running[0][2])), "1/s", **shape)
    emit("executions_per_wall_second_with_setup", round(executions / wall), "1/s", **shape)
    emit("wall_time_with_setup", round(wall, 3), "s", **shape)
    # Setup: building the system, joining every ensemble and deploying, until the window opens.
    emit("setup_wall_time", round(marks[0][1] - started, 3), "s", **shape)
    emit("datagrams", result.link["sent"], "count", **shape)
    emit("datagrams_per_execution", round(result.link["sent"] / executions, 3), "1", **shape)
    emit("max_rss", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, "MiB", **shape)
    if result.summary["phase"] != "finished":
        print("run did not finish: %s" % result.summary["error"], file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()

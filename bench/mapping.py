"""How long the mappers take on a large system, and how many arcs cross it.

A generated system of ENSEMBLES ensembles: one in ten has a camera (of
resolution 640 or 1280), one in twenty a GPU (4, 8 or 16 GB) and 6 cores, the
rest 2 or 4 cores; each is linked to its neighbours in name order (1 ms, cost
0.5), and each camera to the ensemble five after it (2 ms, cost 1). A
generated graph of CHAINS chains of LENGTH SQs: each chain starts at a camera
stream (any camera; one chain in four wants 1280 px), runs through a detector
that needs a GPU of at least 8 GB (cost 2), plain steps (one pinned in every
hundred chains) and a sink; every tenth chain also feeds the next one's
detector, and one chain in fifty bounds the latency from its camera to its
detector (5 ms). The default is 10,000 SQs on 1,000 ensembles. Prints JSON
lines: the time each mapper takes (the best of --repeat runs; the goal for
static: under 2 s), and the cross-ensemble arcs and the highest load /
capacity of static and random in the same run.

    .venv/bin/python bench/mapping.py                 # 1000 ensembles, 10,000 SQs
    .venv/bin/python bench/mapping.py --quick         # 100 ensembles, 1,000 SQs
"""
from __future__ import annotations

import argparse
import json
import random
import time
from typing import List, Tuple

from appliance.components import Component
from appliance.mapping import map_graph
from appliance.mapping.measure import cross_arcs, loads
from appliance.program.model import STREAM, Arc, Graph, LatencyBound, ProgramSource, SQSpec, StreamSpec
from appliance.system import EnsembleDescription

CAMERA = {"kind": "camera"}
SHARP_CAMERA = {"kind": "camera", "resolution": {"at_least": 1280}}
BIG_GPU = {"kind": "gpu", "memory_gb": {"at_least": 8}}


def system(count: int) -> List[EnsembleDescription]:
    ensembles = []
    for i in range(count):
        name = "e%04d" % i
        cores = 2 if i % 3 else 4
        components = [Component("cpu", "compute", {"cores": cores})]
        if i % 10 == 0:
            components.append(Component("camera", "camera", {"resolution": 1280 if i % 20 == 0 else 640}))
        if i % 20 == 5:
            components = [Component("cpu", "compute", {"cores": 6}),
                          Component("gpu", "gpu", {"memory_gb": (4, 8, 16)[i // 20 % 3]})]
        links = {"e%04d" % ((i + d) % count): {"latency": 1000, "cost": 0.5} for d in (-1, 1)}
        if i % 10 in (0, 5):  # a camera and the GPU after it, both ways
            links["e%04d" % ((i + 5 if i % 10 == 0 else i - 5) % count)] = {"latency": 2000, "cost": 1}
        ensembles.append(EnsembleDescription(name, "", components, {}, links))
    return ensembles


def graph(chains: int, length: int, ensembles: int) -> Graph:
    sqs: List[SQSpec] = []
    arcs: List[Arc] = []
    bounds: List[LatencyBound] = []
    detectors: List[str] = []
    for c in range(chains):
        names = ["c%d_%d" % (c, k) for k in range(length)]
        for k, name in enumerate(names):
            spec = SQSpec(name, "sq", "step", ["x"] if k else [])
            if k == 0:
                spec.kind, spec.firing, spec.stream = "stream", STREAM, StreamSpec(10_000)
                spec.requires = [SHARP_CAMERA if c % 4 == 0 else CAMERA]
            elif k == 1:
                spec.requires, spec.cost = [BIG_GPU], 2
                detectors.append(name)
            elif k == 2 and c % 100 == 0:
                spec.ensemble = "e%04d" % (c * 7 % ensembles)
            sqs.append(spec)
            if k:
                arcs.append(Arc(names[k - 1], 0, name, 0))
        if c % 50 == 0:
            bounds.append(LatencyBound((names[0], names[1]), 5_000))
    for c in range(0, chains - 1, 10):
        detector = sqs[(c + 1) * length + 1]
        detector.inputs.append("other")
        arcs.append(Arc("c%d_%d" % (c, length - 1), 0, detector.name, 1))
    return Graph("bench", ProgramSource("bench", "bench.py", ""), sqs, arcs, [], bounds)


def timed(g: Graph, ensembles: List[EnsembleDescription], strategy: str, repeat: int) -> Tuple[float, dict]:
    best, mapping = float("inf"), {}
    for _ in range(repeat):
        started = time.perf_counter()
        mapping = map_graph(g, ensembles, strategy, random.Random(1))
        best = min(best, time.perf_counter() - started)
    return best, mapping


def emit(metric: str, value: float, unit: str, **extra) -> None:
    print(json.dumps(dict({"bench": "mapping", "metric": metric, "value": value, "unit": unit}, **extra)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ensembles", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=1000)
    parser.add_argument("--length", type=int, default=10, help="SQs per chain, the stream included (at least 3)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each mapper; the best time counts")
    parser.add_argument("--quick", action="store_true", help="100 ensembles, 1,000 SQs")
    args = parser.parse_args()
    if args.quick:
        args.ensembles, args.chains = 100, 100
    ensembles = system(args.ensembles)
    g = graph(args.chains, max(3, args.length), args.ensembles)
    shape = {"ensembles": len(ensembles), "sqs": len(g.sqs), "arcs": len(g.arcs), "bounds": len(g.bounds)}
    results = {}
    for strategy in ("static", "random", "trivial"):
        seconds, mapping = timed(g, ensembles, strategy, args.repeat)
        results[strategy] = mapping
        emit("map_time", round(seconds, 3), "s", strategy=strategy, **dict(shape, **(
            {"goal": 2.0} if strategy == "static" else {})))
    for strategy in ("static", "random"):
        load = loads(g, results[strategy], ensembles).values()
        emit("cross_arcs", cross_arcs(g, results[strategy]), "count", strategy=strategy, **shape)
        emit("max_fill", round(max(doc["cost"] / doc["capacity"] for doc in load), 3), "1", strategy=strategy,
             **shape)


if __name__ == "__main__":
    main()

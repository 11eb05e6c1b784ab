#!/usr/bin/env python3
"""The device shell end to end on loopback, as JSON lines.

Three real process trees on this machine, started as a user starts them: a
runtime manager (``appliance rtm``) and two ensembles, A and B
(``appliance ensemble``). The program is a periodic source pinned to A, one
SQ on A and one on B, whose output the runtime manager logs:

    source (stream, A) -> near (A) -> far (B) -> logged by the runtime manager

so one sample crosses every queue of A, the network between A and B, every
queue of B, the network again and the runtime manager's network manager and
runtime-manager process. It runs at 200 Hz and at 1 kHz. For each rate, every
figure is one line {"bench": "loopback", "metric", "value", "unit", "rate_hz",
...}:

- ``delivered``: outputs logged over samples the stream took (``expected``:
  the samples its window holds; a sample the stream had to skip counts as lost
  in the run's summary, ``lost_causes``).
- ``latency_p50``, ``latency_p99``, ``latency_max``: from the sample's time
  (the centre of the output record's interval: the sample tick on the root
  clock, which is the wall clock in µs) to the runtime manager's log
  (``logged_at``), in ms. Both ends read the same wall clock of this machine.
- ``uss``: the summed unique set size of every process of the three trees
  (psutil, read at the end of the run), and ``ensemble_uss`` of A's three
  processes (its supervisor not counted).
- ``cpu``: per process, user+system CPU over the run (psutil ``cpu_times``,
  from the app's start to its stop, which includes the start delay and the
  drain) as a percentage of one core over the sampling window; with the
  process's USS and, from ``appliance status``, its queue's drops and high
  water mark.
- ``hop_floor_p50`` (and ``_p99``): the floor under ``latency`` on this
  machine, measured in the same run before the program: a sample passes from
  process to process 11 times on this path (every firing goes input tokens,
  execute, network manager; two of the passes are UDP datagrams), so 11 bare
  processes pass one 8-byte message along a chain of the project's queues at
  the same rate, each blocked in ``get`` until it comes: no cores, no codec,
  no transport, nothing but the wake-ups.

The goals are the issue's (no output lost at 1 kHz; at 200 Hz p50 under 0.5 ms
and p99 under 5 ms; one ensemble's three processes under 90 MB USS); the
baseline is the original TickTalk runtime on the same path on this kind of
machine. This is not a test: it asserts nothing, it reports.

    .venv/bin/python bench/loopback.py              # 200 Hz and 1 kHz, 10 s each, about 30 s
    .venv/bin/python bench/loopback.py --duration 2 # shorter
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List

import psutil

from appliance.cli.status import gather
from appliance.ipc.shmqueue import ShmQueue

PROGRAM = '''
from appliance import graph, sq, stream


@stream(period_ms={period_ms}, ensemble="A")
def source(tick):
    return tick


@sq(ensemble="A")
def near(x):
    return x + 1


@sq(ensemble="B")
def far(x):
    return x - 1


@graph
def main():
    return far(near(source()))
'''

#: The original TickTalk runtime on the same path (source, local SQ, remote SQ, log) on this kind of machine.
BASELINE = {"latency_p50": 55.6, "latency_p99": 316.0, "lost": 14.6}
#: Longest any wait for a command may take before the run is reported as failed (a bound, not a pace).
WAIT = 120.0
#: Times a sample passes from one process to another between its tick and the manager's log.
HOPS = 11


def emit(metric: str, value: Any, unit: str, **extra: Any) -> None:
    line = {"bench": "loopback", "metric": metric, "value": value, "unit": unit}
    line.update(extra)
    print(json.dumps(line), flush=True)


class Command:
    """A started ``appliance`` command whose stdout lines can be awaited."""

    def __init__(self, *argv: str) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "appliance", *argv], stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, bufsize=1)
        self.lines: List[str] = []

    def line_starting(self, prefix: str) -> str:
        for line in self.lines:
            if line.startswith(prefix):
                return line
        while True:  # a blocking read: the command prints a line per phase, and exits at the end
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError("the command ended (%s) before printing %r; stderr: %s"
                                   % (self.process.wait(), prefix, self.process.stderr.read()))
            self.lines.append(line.rstrip("\n"))
            if line.startswith(prefix):
                return line

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        self.process.communicate(timeout=WAIT)


def run_once(rate_hz: int, duration: float, workdir: str) -> Dict[str, Any]:
    """One run of the program at ``rate_hz``: what the figures are made of."""
    program = os.path.join(workdir, "loopback_%d.py" % rate_hz)
    with open(program, "w") as handle:
        handle.write(PROGRAM.format(period_ms=1000 / rate_hz))
    out = os.path.join(workdir, "outputs_%d.jsonl" % rate_hz)
    rtm = Command("rtm", "--graph", program, "--listen", "127.0.0.1:0", "--expect", "2", "--duration",
                  str(duration), "--out", out)
    members: List[Command] = []
    try:
        address = rtm.line_starting("runtime manager ").split(" at ")[1].strip()
        members = [Command("ensemble", "--name", name, "--rtm", address, "--listen", "127.0.0.1:0")
                   for name in ("A", "B")]
        rtm.line_starting("app main-1: running")
        # Each tree: its supervisor (the command), its processes, and multiprocessing's resource tracker.
        roots = {"runtime-manager": rtm.process.pid, "A": members[0].process.pid, "B": members[1].process.pid}
        names: Dict[int, str] = {}
        processes: List[psutil.Process] = []
        for ensemble, pid in roots.items():
            root = psutil.Process(pid)
            names[pid] = "%s/supervisor" % ensemble
            for child in root.children(recursive=True):
                tracker = any("resource_tracker" in part for part in child.cmdline())
                names[child.pid] = "%s/%s" % (ensemble, "resource_tracker" if tracker else "?")
            processes += [root] + root.children(recursive=True)
        before = cpu_seconds(processes)
        rtm.line_starting("app main-1: stopping")
        after = cpu_seconds(processes)
        answers = gather(address, None)
        uss = {}
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):  # a short-lived helper that is gone
                uss[process.pid] = process.memory_full_info().uss
        rtm.line_starting("app main-1: finished")
        rest = rtm.process.stdout.read()  # the summary, printed before it exits
    finally:
        for command in [rtm] + members:
            command.stop()
    for process, status in answers.items():
        names[status["device"]["pid"]] = process if "/" in process else "runtime-manager/%s" % process
    with open(out) as lines:
        records = [json.loads(line) for line in lines]
    queues = {status["device"]["pid"]: status["device"]["queue"] for status in answers.values()}
    return {"records": records, "summary": summary_rows(rest), "names": names, "uss": uss, "queues": queues,
            "cpu": {pid: after[pid] - before[pid] for pid in before if pid in after and pid in uss}}


def _pass_on(inbox: ShmQueue, outbox: ShmQueue) -> None:
    """One link of the floor's chain: wait for a message, hand it on; an empty one ends it."""
    while True:
        data = inbox.get()
        outbox.put(data, control=True)
        if not data:
            return


def hop_floor(rate_hz: int, samples: int) -> List[float]:
    """Milliseconds for one message through HOPS processes, one sample per period of ``rate_hz``."""
    ensemble = "bench-floor-%d" % os.getpid()
    queues = [ShmQueue.create(ensemble, "hop%d" % i) for i in range(HOPS + 1)]
    links = []
    try:
        for inbox, outbox in zip(queues, queues[1:]):
            pid = os.fork()
            if pid == 0:  # a bare child: nothing of the parent's but the two queues it uses
                try:
                    _pass_on(inbox, outbox)
                finally:
                    os._exit(0)
            links.append(pid)
        took = []
        for _ in range(samples):
            time.sleep(1 / rate_hz)  # pacing: every link falls asleep, as between a stream's samples
            started = time.perf_counter_ns()
            queues[0].put(b"x", control=True)
            queues[-1].get()
            took.append((time.perf_counter_ns() - started) / 1e6)
        queues[0].put(b"", control=True)
        queues[-1].get()
    finally:
        for pid in links:
            os.waitpid(pid, 0)
        for queue in queues:
            queue.close()
    return took[samples // 10:]  # the first tenth warms up


def report_floor(rate_hz: int, samples: int) -> None:
    took = hop_floor(rate_hz, samples)
    for metric, fraction in (("hop_floor_p50", 0.5), ("hop_floor_p99", 0.99)):
        value = percentile(took, fraction)
        emit(metric, round(value, 3), "ms", hops=HOPS, per_hop_us=round(1000 * value / HOPS, 1), rate_hz=rate_hz)


def summary_rows(text: str) -> Dict[str, str]:
    """The rows of the summary ``appliance rtm`` prints at the end (``  label   value``)."""
    rows = {}
    for line in text.splitlines():
        label, _, value = line.strip().partition("  ")
        if line.startswith("  ") and value:
            rows[label] = value.strip()
    return rows


def cpu_seconds(processes: List[psutil.Process]) -> Dict[int, float]:
    seconds = {}
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            seconds[process.pid] = times.user + times.system
    return seconds


def percentile(values: List[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def report(rate_hz: int, duration: float, run: Dict[str, Any]) -> None:
    shape = {"rate_hz": rate_hz, "duration_s": duration}
    records: List[Dict[str, Any]] = run["records"]
    summary = run["summary"]
    samples = int(summary["stream samples"])
    expected = int(round(duration * rate_hz))
    delivered = len(records)
    lost = 100.0 * (1 - delivered / samples) if samples else 100.0
    at_1khz = {"goal": 1.0, "met": delivered == samples == expected} if rate_hz == 1000 else {}
    emit("delivered", round(delivered / samples, 5) if samples else 0.0, "1", outputs=delivered, samples=samples,
         expected=expected, lost_percent=round(lost, 3), baseline_lost_percent=BASELINE["lost"],
         lost_causes=summary["lost"], **at_1khz, **shape)
    latencies = [(r["logged_at"] - (r["start"] + r["stop"]) // 2) / 1000 for r in records] or [float("nan")]
    goals = {"latency_p50": 0.5, "latency_p99": 5.0} if rate_hz == 200 else {}
    for metric, fraction in (("latency_p50", 0.5), ("latency_p99", 0.99)):
        value = round(percentile(latencies, fraction), 3)
        extra: Dict[str, Any] = {"baseline": BASELINE[metric]}
        if metric in goals:
            extra.update(goal=goals[metric], met=value < goals[metric])
        emit(metric, value, "ms", **extra, **shape)
    emit("latency_max", round(max(latencies), 3), "ms", **shape)
    emit("latency_mean", round(statistics.mean(latencies), 3), "ms", **shape)
    names, uss, queues = run["names"], run["uss"], run["queues"]
    emit("uss", round(sum(uss.values()) / 2**20, 1), "MiB", processes=len(uss), **shape)
    ensemble = sum(v for pid, v in uss.items() if names[pid] in ("A/input_tokens", "A/execute", "A/network"))
    emit("ensemble_uss", round(ensemble / 2**20, 1), "MiB", ensemble="A", processes=3, goal_mb=90,
         met=ensemble < 90e6, **shape)
    for pid, seconds in sorted(run["cpu"].items(), key=lambda item: names[item[0]]):
        queue = {"queue_dropped": queues[pid]["dropped"], "queue_high_water": queues[pid]["high_water"]} \
            if pid in queues else {}
        emit("cpu", round(100 * seconds / duration, 1), "%", process=names[pid], cpu_s=round(seconds, 3),
             uss_mib=round(uss[pid] / 2**20, 1), **queue, **shape)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds the source samples at each rate")
    parser.add_argument("--rates", default="200,1000", help="sample rates in Hz, comma-separated")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        for rate in (int(r) for r in args.rates.split(",")):
            report_floor(rate, min(2000, max(200, int(rate * args.duration / 5))))
            report(rate, args.duration, run_once(rate, args.duration, workdir))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Benchmarks of the shared-memory queue (appliance.ipc.shmqueue), as JSON lines.

Every figure is one line {"bench": "ipc", "metric", "value", "unit", ...}, for
our queue ("queue": "shm") and for multiprocessing.Queue ("queue": "mp")
measured in the same run, followed by the ratio to that baseline as a line of
its own. Producer and consumer are separate processes. This is not a test: it
asserts nothing, it reports.

- throughput: one producer puts N messages of 64 B or 64 KiB, the consumer
  takes them all; messages/s over the consumer's run. Modes: "put/get" (one
  message per call on both sides, as multiprocessing.Queue does), "put/get_many"
  (the consumer drains what is there, as the device shell's loop does),
  "put_many/get_many" (batches of 64 on both sides). Our messages are sent as
  control messages: never dropped, the producer waits when the queue is full,
  as it does on a bounded multiprocessing.Queue (maxsize 1024).
- latency: one-way, from just before put in the producer to just after get
  returns in the consumer, on CLOCK_MONOTONIC (time.monotonic_ns, one clock
  for every process on Linux). One message at a time with a blocked consumer:
  the consumer acknowledges each on a second queue, and the producer waits for
  the acknowledgement and then a pause (PACE) before the next, so the consumer
  is asleep in get when the message comes; the pause is the benchmark's pacing,
  the queue itself never sleeps. For our queue only the samples where the
  producer rang the doorbell count ("blocked" says how many). "wake_p50" is
  the floor under any doorbell on this machine: the same exchange over a bare
  eventfd or pipe, with a blocking read(2) and no queue at all.

    .venv/bin/python bench/ipc.py            # full run, about half a minute
    .venv/bin/python bench/ipc.py --quick    # a few seconds, smaller samples
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import struct
import sys
import time
from typing import Callable, Dict, List, Tuple

from appliance.ipc.shmqueue import EVENTFD, PIPE, ShmQueue
from appliance.ipc.shmqueue.doorbell import default_kind

STAMP = struct.Struct("=Q")
SIZES = {"64B": 64, "64KiB": 64 * 1024}
BATCH = 64
PACE = 0.0002  # s between one-way samples
CONTEXT = multiprocessing.get_context("fork")
ENSEMBLE = "bench-%d" % os.getpid()


def emit(metric: str, value: float, unit: str, **extra: object) -> None:
    line = {"bench": "ipc", "metric": metric, "value": round(value, 3), "unit": unit}
    line.update(extra)
    print(json.dumps(line), flush=True)


def new_queue(name: str, doorbell: str = "") -> ShmQueue:
    return ShmQueue.create(ENSEMBLE, name, control_bytes=8 << 20, data_bytes=1 << 20, control_timeout=60,
                           doorbell=doorbell or default_kind())


# -- throughput ----------------------------------------------------------------

def _shm_producer(q: ShmQueue, count: int, size: int, batch: bool) -> None:
    message = b"x" * size
    if batch:
        chunk = [message] * BATCH
        for _ in range(count // BATCH):
            q.put_many(chunk, control=True)
    else:
        for _ in range(count):
            q.put(message, control=True)


def _mp_producer(q: multiprocessing.Queue, count: int, size: int) -> None:
    message = b"x" * size
    for _ in range(count):
        q.put(message)


def _timed(start_producer: Callable[[], multiprocessing.Process], consume: Callable[[], int], count: int) -> float:
    """Messages/s from the consumer's first message to its last."""
    producer = start_producer()
    got = consume()  # the first message starts the clock
    started = time.perf_counter()
    while got < count:
        got += consume()
    elapsed = time.perf_counter() - started
    producer.join()
    return (count - 1) / elapsed


def shm_throughput(size: int, count: int, mode: str) -> float:
    count -= count % BATCH
    with new_queue("tput") as q:
        batched_put = mode.startswith("put_many")
        if mode.endswith("get_many"):
            def consume() -> int:
                return len(q.get_many(BATCH * 4, timeout=None))
        else:
            def consume() -> int:
                q.get()
                return 1

        def start() -> multiprocessing.Process:
            process = CONTEXT.Process(target=_shm_producer, args=(q, count, size, batched_put))
            process.start()
            return process

        return _timed(start, consume, count)


def mp_throughput(size: int, count: int) -> float:
    q = CONTEXT.Queue(maxsize=1024)

    def consume() -> int:
        q.get()
        return 1

    def start() -> multiprocessing.Process:
        process = CONTEXT.Process(target=_mp_producer, args=(q, count, size))
        process.start()
        return process

    return _timed(start, consume, count)


# -- latency -------------------------------------------------------------------

def _shm_consumer(q: ShmQueue, acks: ShmQueue, count: int, report) -> None:
    samples = []
    for _ in range(count):
        rung = q.stats().doorbells
        data = q.get()
        arrived = time.monotonic_ns()
        samples.append((arrived - STAMP.unpack_from(data)[0], q.stats().doorbells > rung))
        acks.put(b"", control=True)
    report.put(samples)


def _mp_consumer(q: multiprocessing.Queue, acks: multiprocessing.Queue, count: int, report) -> None:
    samples = []
    for _ in range(count):
        data = q.get()
        arrived = time.monotonic_ns()
        samples.append((arrived - STAMP.unpack_from(data)[0], True))
        acks.put(b"")
    report.put(samples)


def _ping(put: Callable[[bytearray], None], wait_ack: Callable[[], object], size: int, count: int) -> None:
    message = bytearray(size)
    for _ in range(count):
        time.sleep(PACE)  # pacing: let the consumer fall asleep
        STAMP.pack_into(message, 0, time.monotonic_ns())
        put(message)
        wait_ack()


def _bare_consumer(bell: Tuple[int, int], ack: Tuple[int, int], count: int, report) -> None:
    samples = []
    for _ in range(count):
        sent = STAMP.unpack(os.read(bell[0], 8))[0]  # an eventfd reads its counter: the stamp written
        samples.append((time.monotonic_ns() - sent, True))
        os.write(ack[1], STAMP.pack(1))
    report.put(samples)


def wake_floor(kind: str, count: int) -> List[float]:
    """One-way µs over a bare eventfd or pipe: blocking write(2) to read(2), nothing else."""
    pair = (lambda: (os.eventfd(0),) * 2) if kind == EVENTFD else os.pipe
    bell, ack = pair(), pair()
    report = CONTEXT.SimpleQueue()
    consumer = CONTEXT.Process(target=_bare_consumer, args=(bell, ack, count, report))
    consumer.start()
    for _ in range(count):
        time.sleep(PACE)
        os.write(bell[1], STAMP.pack(time.monotonic_ns()))
        os.read(ack[0], 8)
    samples = report.get()[count // 10:]
    consumer.join()
    for fd in set(bell + ack):
        os.close(fd)
    return [ns / 1000 for ns, _ in samples]


def latency(kind: str, size: int, count: int, doorbell: str = "") -> Tuple[List[float], int]:
    """One-way latencies in µs of the samples taken with the consumer blocked, and how many there were."""
    report = CONTEXT.SimpleQueue()
    if kind == "shm":
        q, acks = new_queue("lat", doorbell), new_queue("ack", doorbell)
        consumer = CONTEXT.Process(target=_shm_consumer, args=(q, acks, count, report))
        consumer.start()
        _ping(lambda m: q.put(m, control=True), acks.get, size, count)
    else:
        q, acks = CONTEXT.Queue(), CONTEXT.Queue()
        consumer = CONTEXT.Process(target=_mp_consumer, args=(q, acks, count, report))
        consumer.start()
        _ping(q.put, acks.get, size, count)
    samples = report.get()[count // 10:]  # the first tenth warms up
    consumer.join()
    if kind == "shm":
        q.close()
        acks.close()
    blocked = [ns / 1000 for ns, was_blocked in samples if was_blocked]
    return blocked, len(blocked)


def percentile(values: List[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


# -- the run ---------------------------------------------------------------------

def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller samples: a few seconds")
    args = parser.parse_args(argv)
    scale = 0.1 if args.quick else 1.0
    counts = {"64B": int(200_000 * scale), "64KiB": int(10_000 * scale)}
    pings = int(3_000 * scale)

    for label, size in SIZES.items():
        baseline = mp_throughput(size, counts[label])
        emit("throughput", baseline, "msg/s", queue="mp", mode="put/get", payload=label)
        for mode in ("put/get", "put/get_many", "put_many/get_many"):
            ours = shm_throughput(size, counts[label], mode)
            emit("throughput", ours, "msg/s", queue="shm", mode=mode, payload=label)
            emit("throughput_ratio", ours / baseline, "x", mode=mode, payload=label, baseline="mp put/get")

    doorbells = [default_kind()] + ([PIPE] if default_kind() == EVENTFD else [])
    for doorbell in doorbells:
        emit("wake_p50", percentile(wake_floor(doorbell, pings), 50), "us", queue="bare " + doorbell, payload="8B")
    for label, size in SIZES.items():
        base, _ = latency("mp", size, pings)
        emit("latency_p50", percentile(base, 50), "us", queue="mp", payload=label)
        emit("latency_p99", percentile(base, 99), "us", queue="mp", payload=label)
        results: Dict[str, float] = {}
        for doorbell in doorbells if label == "64B" else doorbells[:1]:
            ours, blocked = latency("shm", size, pings, doorbell)
            results[doorbell] = percentile(ours, 50)
            emit("latency_p50", results[doorbell], "us", queue="shm", doorbell=doorbell, payload=label,
                 blocked=blocked)
            emit("latency_p99", percentile(ours, 99), "us", queue="shm", doorbell=doorbell, payload=label,
                 blocked=blocked)
        emit("latency_p50_ratio", percentile(base, 50) / results[doorbells[0]], "x", payload=label,
             doorbell=doorbells[0], baseline="mp", note="baseline p50 / ours: above 1 is faster")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

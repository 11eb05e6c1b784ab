#!/usr/bin/env python3
"""Benchmarks of the reliable UDP transport (appliance.net), as JSON lines.

Every figure is one line {"bench": "udp", "metric", "value", "unit", ...};
where there is a baseline, the line also carries it and the ratio, both
measured in the same run. Sender and receiver run in separate processes
(and the lossy relay in a third), as on two devices; all traffic is on
loopback. Goodput is timed once the channel is open (its handshake is a
one-time cost per pair of endpoints, reported as channel_open_us), with the
window the receiver's socket buffer holds (bulk_config). This is not a test:
it asserts nothing, it reports.

    .venv/bin/python bench/udp.py            # full run, under a minute
    .venv/bin/python bench/udp.py --quick    # a few seconds, smaller samples
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import multiprocessing
import os
import socket
import statistics
import sys
import time
from typing import Callable, Dict, List, Optional

from appliance.net import Delivered, Endpoint, TransportConfig
from appliance.net.impairment import Impairment
from appliance.net.relay import LossyRelay
from appliance.net.udp import UdpShell, now_us, run_until

MESSAGE = 1_000_000
CHUNK = 1200
KEY = b"benchmark cluster key, 32 bytes!"
CONFIG = TransportConfig()
DEADLINE = 120_000_000  # µs; a run that needs longer is reported as failed
#: Bytes of socket buffer one full-size datagram takes in the kernel (its truesize on Linux).
DATAGRAM_TRUESIZE = 2304
#: Largest window bulk_config chooses: beyond it more buffer bought no goodput here.
MAX_WINDOW = 256


def emit(metric: str, value: float, unit: str, **extra: object) -> None:
    line = {"bench": "udp", "metric": metric, "value": round(value, 3), "unit": unit}
    line.update(extra)
    print(json.dumps(line), flush=True)


def _session() -> int:
    return int.from_bytes(os.urandom(8), "little") | 1


# -- raw UDP baselines -------------------------------------------------------

def _raw_receiver(conn, messages: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind(("127.0.0.1", 0))
    conn.send(sock.getsockname())
    sock.settimeout(0.5)  # a burst that overflowed the buffer ends by timeout, not deadlock
    total = 0
    for _ in range(messages):
        got = 0
        sender = None
        while got < MESSAGE:
            try:
                datagram, sender = sock.recvfrom(65536)
            except socket.timeout:
                break
            got += len(datagram)
        total += got
        if sender is not None:
            sock.sendto(b"k", sender)
    conn.send(total)


def raw_goodput(messages: int) -> float:
    """Lock-step per 1 MB message: sendto in 1200-byte datagrams, one reply per message."""
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.Process(target=_raw_receiver, args=(child, messages))
    process.start()
    address = parent.recv()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(2.0)
    view = memoryview(os.urandom(MESSAGE))
    started = time.perf_counter()
    for _ in range(messages):
        for offset in range(0, MESSAGE, CHUNK):
            sock.sendto(view[offset : offset + CHUNK], address)
        with contextlib.suppress(socket.timeout):  # the receiver reports what it got
            sock.recvfrom(16)
    elapsed = time.perf_counter() - started
    received = parent.recv()
    process.join()
    sock.close()
    return received / elapsed / 1e6


def _raw_echo(conn) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    conn.send(sock.getsockname())
    latencies = []
    while True:
        datagram, sender = sock.recvfrom(64)
        arrived = now_us()
        if datagram == b"stop":
            break
        latencies.append(arrived - int(datagram))
        sock.sendto(b"k", sender)
    conn.send(latencies)


def raw_latency(samples: int) -> List[int]:
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.Process(target=_raw_echo, args=(child,))
    process.start()
    address = parent.recv()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(samples):
        sock.sendto(b"%d" % now_us(), address)
        sock.recvfrom(16)
    sock.sendto(b"stop", address)
    latencies = parent.recv()
    process.join()
    sock.close()
    return latencies


# -- the transport -----------------------------------------------------------

def _collect(shell: UdpShell, sink: List[Delivered]) -> Callable[[], None]:
    def take() -> None:
        sink.extend(e for e in shell.events() if isinstance(e, Delivered))
    return take


def _transport_receiver(conn, messages: int, key: Optional[bytes]) -> None:
    """Receives ``messages`` messages and reports how many bytes arrived."""
    shell = UdpShell(Endpoint(CONFIG, _session(), key), "127.0.0.1:0")
    conn.send((shell.address, shell.receive_buffer))
    delivered: List[Delivered] = []
    take = _collect(shell, delivered)

    def all_arrived() -> bool:
        take()
        return len(delivered) >= messages

    run_until([shell], all_arrived, now_us() + DEADLINE)
    # Linger so the ACKs of the last messages, or their repeats, reach the sender.
    run_until([shell], lambda: conn.poll(), now_us() + 5_000_000)
    conn.send(sum(len(d.payload) for d in delivered))
    shell.close()


def _relay(conn, target: str, impairment: Impairment, seed: int) -> None:
    relay = LossyRelay(target, "127.0.0.1:0", impairment, seed)
    conn.send(relay.address)
    relay.serve()


def bulk_config(receive_buffer: int) -> TransportConfig:
    """The sender's transport for bulk transfer: a window of as many fragments as the
    receiver's socket buffer holds, as ``TransportConfig.window`` prescribes (the default
    suits the 416 KiB a stock kernel grants; this machine may grant more)."""
    return TransportConfig(window=max(CONFIG.window, min(MAX_WINDOW, receive_buffer // DATAGRAM_TRUESIZE)))


def transport_goodput(messages: int, key: Optional[bytes],
                      impairment: Optional[Impairment] = None, seed: int = 1) -> Dict[str, float]:
    """1 MB reliable messages, kept up to max_in_flight outstanding, timed from the first
    until all are acknowledged (each acknowledged one was delivered, exactly once). The
    channel is opened first: its one-time handshake is not goodput, as iperf times a TCP
    transfer once the connection is set up (channel_open measures it)."""
    parent, child = multiprocessing.Pipe()
    receiver = multiprocessing.Process(target=_transport_receiver, args=(child, messages, key))
    receiver.start()
    target, receive_buffer = parent.recv()
    relay = None
    if impairment is not None:
        relay_parent, relay_child = multiprocessing.Pipe()
        relay = multiprocessing.Process(target=_relay, args=(relay_child, target, impairment, seed))
        relay.start()
        target = relay_parent.recv()
    config = bulk_config(receive_buffer)
    shell = UdpShell(Endpoint(config, _session(), key), "127.0.0.1:0")
    shell.endpoint.connect(target, now_us())
    opened = run_until([shell], lambda: shell.endpoint.connected(target), now_us() + DEADLINE)
    payload = os.urandom(MESSAGE)
    sent = 0

    def finished() -> bool:
        nonlocal sent
        while sent < messages and shell.endpoint.in_flight(target) < config.max_in_flight:
            shell.send(target, payload, True)
            sent += 1
        return sent == messages and shell.endpoint.in_flight(target) == 0

    opened_at = now_us()
    done = opened and run_until([shell], finished, opened_at + DEADLINE)
    elapsed = (now_us() - opened_at) / 1e6
    parent.send("stop")
    received = parent.recv()
    receiver.join()
    if relay is not None:
        relay.terminate()
        relay.join()
    stats = shell.stats()[target]
    shell.close()
    complete = done and stats["failed"] == 0 and received == messages * MESSAGE
    return {
        "goodput": messages * MESSAGE / elapsed / 1e6 if complete else 0.0,
        "retransmitted": stats["retransmitted"],
        "datagrams": stats["datagrams_sent"],
        "window": config.window,
    }


def _transport_echo(conn, key: Optional[bytes]) -> None:
    """Records one-way latency of each message (its payload is the send tick), then replies."""
    shell = UdpShell(Endpoint(CONFIG, _session(), key), "127.0.0.1:0")
    conn.send(shell.address)
    latencies: List[int] = []
    stopping: List[str] = []

    def answer() -> bool:
        for event in shell.events():
            if not isinstance(event, Delivered):
                continue
            arrived = now_us()
            if event.payload == b"stop":
                stopping.append(event.peer)
            else:
                latencies.append(arrived - int(event.payload))
                shell.send(event.peer, b"k", True)
        return bool(stopping)

    run_until([shell], answer, now_us() + DEADLINE)
    run_until([shell], lambda: shell.endpoint.in_flight(stopping[0]) == 0, now_us() + 1_000_000)
    conn.send(latencies)
    shell.close()


def transport_latency(samples: int, key: Optional[bytes]) -> List[int]:
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.Process(target=_transport_echo, args=(child, key))
    process.start()
    target = parent.recv()
    shell = UdpShell(Endpoint(CONFIG, _session(), key), "127.0.0.1:0")
    replies: List[Delivered] = []
    take = _collect(shell, replies)
    for index in range(samples):
        shell.send(target, b"%d" % now_us(), True)
        run_until([shell], lambda i=index: (take(), len(replies) > i)[1], now_us() + 5_000_000)
    shell.send(target, b"stop", True)
    run_until([shell], lambda: shell.endpoint.in_flight(target) == 0, now_us() + 5_000_000)
    latencies = parent.recv()
    process.join()
    shell.close()
    return latencies


def channel_open(samples: int, key: Optional[bytes]) -> List[int]:
    """µs from a fresh endpoint's HELLO to the acknowledgement of its CONFIRM: the one-time
    cost of the first message to a new peer (two shells in this process, on loopback)."""
    times = []
    for _ in range(samples):
        a = UdpShell(Endpoint(CONFIG, _session(), key), "127.0.0.1:0")
        b = UdpShell(Endpoint(CONFIG, _session(), key), "127.0.0.1:0")
        started = now_us()
        a.endpoint.connect(b.address, started)
        if run_until([a, b], lambda a=a, b=b: a.endpoint.connected(b.address), started + 5_000_000):
            times.append(now_us() - started)
        a.close()
        b.close()
    return times


def datagrams_per_message(messages: int, key: Optional[bytes]) -> float:
    """Small reliable messages one at a time; every datagram either side sends, per message."""
    a = UdpShell(Endpoint(CONFIG, _session(), key), "127.0.0.1:0")
    b = UdpShell(Endpoint(CONFIG, _session(), key), "127.0.0.1:0")
    delivered: List[Delivered] = []
    take = _collect(b, delivered)
    for index in range(messages):
        a.send(b.address, b"token %d" % index, True)
        run_until([a, b], lambda i=index: (take(), len(delivered) > i
                                          and a.endpoint.in_flight(b.address) == 0)[1],
                  now_us() + 5_000_000)
    total = (a.stats()[b.address]["datagrams_sent"] + b.stats()[a.address]["datagrams_sent"])
    a.close()
    b.close()
    return total / messages


def percentile(values: List[int], fraction: float) -> float:
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))])


def median_of(runs: List[float]) -> float:
    return statistics.median(runs)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Metrics: raw_udp_goodput, reliable_goodput "
                                            "(authenticated and not), channel_open_us, "
                                            "lossy_goodput at 0/5/20 % "
                                            "loss, one_way_latency p50/p99 (with raw UDP), "
                                            "datagrams_per_small_message. Goodputs are the "
                                            "median of the runs listed in each line.")
    parser.add_argument("--quick", action="store_true", help="small samples, a few seconds")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # the unauthenticated-run warning is expected here
    repeats = 1 if args.quick else 3
    messages = 10 if args.quick else 60
    lossy_messages = 8 if args.quick else 30
    samples = 500 if args.quick else 5000

    # Interleaved, so a noisy moment on the machine hits every figure alike.
    goodputs: Dict[str, List[float]] = {"raw": [], "keyed": [], "plain": []}
    window = CONFIG.window
    for _ in range(repeats):
        goodputs["raw"].append(raw_goodput(messages))
        for label, key in (("keyed", KEY), ("plain", None)):
            result = transport_goodput(messages, key)
            goodputs[label].append(result["goodput"])
            window = int(result["window"])
    raw = median_of(goodputs["raw"])
    emit("raw_udp_goodput", raw, "MB/s", runs=[round(r, 1) for r in goodputs["raw"]],
         note="sendto/recvfrom, 1200-byte datagrams, lock-step per MB: the baseline")
    for name, label in (("reliable_goodput", "keyed"), ("reliable_goodput_unauthenticated", "plain")):
        value = median_of(goodputs[label])
        emit(name, value, "MB/s", baseline=round(raw, 3), ratio=round(value / raw, 3),
             goal=">= 0.30 of raw", runs=[round(r, 1) for r in goodputs[label]],
             messages=messages, message_bytes=MESSAGE, window=window)
    opening = channel_open(samples // 25, KEY)
    emit("channel_open_us", percentile(opening, 0.5), "us", p99=percentile(opening, 0.99),
         samples=len(opening), note="HELLO to the CONFIRM's acknowledgement, authenticated: "
         "once per pair of endpoints, the extra round trip of a first message")

    lossy: Dict[float, List[Dict[str, float]]] = {0.0: [], 0.05: [], 0.20: []}
    for _ in range(repeats):
        for loss in lossy:
            lossy[loss].append(transport_goodput(lossy_messages, KEY, Impairment(loss=loss), seed=7))
    lossless = median_of([r["goodput"] for r in lossy[0.0]])
    for loss, results in lossy.items():
        value = median_of([r["goodput"] for r in results])
        extra: Dict[str, object] = {"note": "through the relay, no impairment: the baseline"}
        if loss:
            extra = {"baseline": round(lossless, 3), "ratio": round(value / lossless, 3)}
            if loss == 0.20:
                extra["goal"] = ">= 0.40 of lossless"
        emit("lossy_goodput_%d%%" % round(loss * 100), value, "MB/s", loss=loss,
             runs=[round(r["goodput"], 1) for r in results],
             retransmitted=[int(r["retransmitted"]) for r in results],
             datagrams=[int(r["datagrams"]) for r in results], authenticated=True,
             window=int(results[0]["window"]), **extra)

    raw_latencies = raw_latency(samples)
    latencies = transport_latency(samples, KEY)
    for label, fraction in (("p50", 0.50), ("p99", 0.99)):
        ours = percentile(latencies, fraction)
        base = percentile(raw_latencies, fraction)
        extra = {"goal": "< 200 us"} if label == "p50" else {}
        emit("one_way_latency_%s" % label, ours, "us", baseline=base, ratio=round(ours / base, 3),
             samples=samples, note="small reliable message, authenticated, vs raw UDP", **extra)

    emit("datagrams_per_small_message", datagrams_per_message(samples // 5, KEY), "datagrams",
         goal="2", note="reliable, one at a time, both directions counted")
    return 0


if __name__ == "__main__":
    sys.exit(main())

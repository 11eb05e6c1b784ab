"""The queue across real OS processes: fork and spawn children, both doorbells, a selector, a killed lock holder."""
from __future__ import annotations

import contextlib
import fcntl
import multiprocessing
import os
import selectors
import signal
import socket
import subprocess
import sys
import textwrap
from collections import defaultdict

import pytest

from appliance.ipc.shmqueue import EVENTFD, PIPE, remove_orphans

from . import workers
from .workers import BOUND, STAMP

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
METHODS = ["fork", "spawn"]
DOORBELLS = [pytest.param(EVENTFD, marks=pytest.mark.skipif(not hasattr(os, "eventfd"), reason="no os.eventfd")),
             PIPE]


def start(method: str, target, *args) -> multiprocessing.Process:
    process = multiprocessing.get_context(method).Process(target=target, args=args, daemon=True)
    process.start()
    return process


def finish(process: multiprocessing.Process) -> None:
    process.join(BOUND)
    assert process.exitcode == 0, "child exited with %s" % process.exitcode


@pytest.mark.parametrize("method", METHODS)
def test_several_producer_processes_each_deliver_every_message_once_in_order(make_queue, method):
    q = make_queue(data_bytes=8 << 20)  # room for everything: nothing may be dropped here
    producers, count = 3, 1500
    children = [start(method, workers.produce, q, p, count) for p in range(producers)]
    seen = defaultdict(list)
    while sum(map(len, seen.values())) < producers * count:
        batch = q.get_many(64, timeout=BOUND)
        assert batch, "the producers stopped early"
        for message in batch:
            producer, index = STAMP.unpack_from(message)
            assert message == workers.payload(producer, index)
            seen[producer].append(index)
    for child in children:
        finish(child)
    assert {p: seen[p] for p in range(producers)} == {p: list(range(count)) for p in range(producers)}
    stats = q.stats()
    assert (stats.put, stats.got, stats.dropped, stats.depth) == (producers * count,) * 2 + (0, 0)


@pytest.mark.parametrize("doorbell", DOORBELLS)
@pytest.mark.parametrize("method", METHODS)
def test_a_blocked_get_is_woken_by_a_put_from_another_process(make_queue, method, doorbell):
    q = make_queue(doorbell=doorbell)
    go = multiprocessing.get_context(method).Event()
    child = start(method, workers.put_when_told, q, go, b"wake up")
    assert q.arm()  # from here on the child's put must ring, whether get has blocked yet or not
    go.set()
    assert q.get(timeout=BOUND) == b"wake up"
    finish(child)
    assert q.stats().doorbells == 1


@pytest.mark.parametrize("doorbell", DOORBELLS)
def test_one_selector_waits_on_the_queue_and_a_socket(make_queue, doorbell):
    q = make_queue(doorbell=doorbell)
    go = multiprocessing.get_context("fork").Event()
    child = start("fork", workers.put_when_told, q, go, b"from the execute process")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer, selectors.DefaultSelector() as selector:
        udp.bind(("127.0.0.1", 0))
        selector.register(q.fileno(), selectors.EVENT_READ, "queue")
        selector.register(udp, selectors.EVENT_READ, "udp")
        assert q.arm()
        go.set()
        assert [key.data for key, _ in selector.select(BOUND)] == ["queue"]
        assert q.get_many() == [b"from the execute process"]
        finish(child)
        assert q.arm()
        peer.sendto(b"datagram", udp.getsockname())
        assert [key.data for key, _ in selector.select(BOUND)] == ["udp"]
        assert q.get_many() == []
        assert udp.recv(100) == b"datagram"


@pytest.mark.parametrize("method", METHODS)
def test_a_control_put_waits_for_room_then_proceeds_or_fails_naming_the_queue(make_queue, ensemble, method):
    q = make_queue("execute", control_bytes=1024)
    for i in range(8):
        q.put(bytes([i]) * 100, control=True)
    context = multiprocessing.get_context(method)
    waiting, report = context.Event(), context.SimpleQueue()
    child = start(method, workers.wait_for_room, q, waiting, report)
    assert report.get().startswith("queue '%s/execute': control message of 8 bytes waited 0.1 s" % ensemble)
    assert waiting.wait(BOUND)  # the child now blocks on its doorbell
    assert q.get(0)[0] == 0
    assert report.get() == "put"
    finish(child)
    assert q.get_many()[-1] == b"waited"
    stats = q.stats()
    assert (stats.waits, stats.timeouts, stats.dropped) == (2, 1, 0)


@pytest.mark.parametrize("method", METHODS)
def test_a_producer_killed_while_holding_the_lock_does_not_hang_the_queue(make_queue, method):
    q = make_queue()
    context = multiprocessing.get_context(method)
    holding, never = context.Event(), context.Event()
    child = start(method, workers.hold_the_lock, q, holding, never)
    assert holding.wait(BOUND)
    with pytest.raises(BlockingIOError):  # the child's lock excludes us (a forked child has its own)
        fcntl.flock(q._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.kill(child.pid, signal.SIGKILL)
    child.join(BOUND)
    assert child.exitcode == -signal.SIGKILL
    q.put(b"after")  # the kernel released the dead child's lock; its scribbles were never published
    assert q.get(timeout=BOUND) == b"after"
    assert q.stats().depth == 0



def test_a_forked_child_is_not_hung_by_its_parent_dying_with_the_lock(ensemble):
    """The child's lock and mapping are its own: nothing of it keeps the dead parent's lock alive."""
    parent = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import multiprocessing, os, sys
        from appliance.ipc.shmqueue import ShmQueue
        q = ShmQueue.create(sys.argv[1], "q")
        def child():
            q.put(b"after the parent died", control=True)
            print("put", flush=True)
        q._lock()
        c = multiprocessing.get_context("fork").Process(target=child)
        c.start()
        print(c.pid, flush=True)
        c.join()
    """), ensemble], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    child = int(parent.stdout.readline())
    try:
        parent.kill()  # SIGKILL, holding the lock; its child blocks in put until the kernel drops it
        parent.wait(BOUND)
        assert parent.stdout.readline() == "put\n"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
        remove_orphans(ensemble)

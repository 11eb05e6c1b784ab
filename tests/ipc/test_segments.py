"""Segments: names, every exit path of their creator, attaching children, cleanup after kill -9."""
from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from appliance.ipc.shmqueue import ShmQueue, parse_segment_name, remove_orphans, segment_name

from . import workers
from .conftest import segments_of
from .workers import BOUND

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def python(code: str, *args: str, **options) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **options)


def test_names_carry_ensemble_pid_and_queue_and_parse_back():
    name = segment_name("runtime-manager", "network", pid=4242)
    assert name == "appliance-4242-runtime-manager-network"
    assert parse_segment_name(name) == (4242, "runtime-manager", "network")
    assert parse_segment_name("psm_abcdef") is None
    assert segment_name("e1", "execute").startswith("appliance-%d-" % os.getpid())


@pytest.mark.parametrize("ensemble, queue", [("", "q"), ("a/b", "q"), ("e" * 65, "q"), ("e", "in-put"), ("e", "")])
def test_names_that_would_not_parse_back_are_refused(ensemble, queue):
    with pytest.raises(ValueError):
        segment_name(ensemble, queue)


EXITS = {
    "close": """
        q = ShmQueue.create(E, "q")
        q.close()
    """,
    "exception in a with block": """
        with ShmQueue.create(E, "q"):
            raise RuntimeError("boom")
    """,
    "exception, never closed": """
        q = ShmQueue.create(E, "q")
        raise RuntimeError("boom")
    """,
    "SIGTERM while blocked in get": """
        import signal
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the supervisor's handler
        with ShmQueue.create(E, "q") as q:
            print(q.segment, flush=True)
            q.get(timeout=60)
    """,
}


@pytest.mark.parametrize("how", sorted(EXITS))
def test_the_creator_unlinks_its_segments_on_every_exit_path(ensemble, how):
    child = python("import sys\nfrom appliance.ipc.shmqueue import ShmQueue\nE = sys.argv[1]\n"
                   + textwrap.dedent(EXITS[how]), ensemble)
    if how.startswith("SIGTERM"):
        segment = child.stdout.readline().strip()
        assert segments_of(ensemble) == [segment]
        child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=BOUND)
    assert child.returncode == {"close": 0, "SIGTERM while blocked in get": 143}.get(how, 1), err
    assert segments_of(ensemble) == []
    assert "leaked" not in err  # nothing was left for the resource tracker to clean


@pytest.mark.parametrize("how", ["fork", "spawn", "fork+exec"])
def test_a_child_that_attaches_and_exits_does_not_unlink_the_segment(make_queue, how):
    q = make_queue()
    if how == "fork+exec":
        handle = q.handle()
        child = subprocess.run([sys.executable, "-m", "tests.ipc.workers", handle.encode()], cwd=ROOT,
                               pass_fds=handle.fds, capture_output=True, text=True, timeout=BOUND)
        assert child.returncode == 0, child.stderr
    else:
        process = multiprocessing.get_context(how).Process(target=workers.attach_put_and_exit, args=(q,))
        process.start()
        process.join(BOUND)
        assert process.exitcode == 0
    assert q.segment in os.listdir("/dev/shm")
    assert q.get(timeout=BOUND) == b"child was here"
    q.put(b"still works")
    assert q.get(0) == b"still works"


def test_after_kill_9_of_the_creator_tree_cleanup_removes_exactly_its_segments(ensemble):
    survivor = ShmQueue.create(ensemble, "rtm")  # ours: our pid is alive, it must stay
    try:
        child = python("""
            import os, signal, sys
            from appliance.ipc.shmqueue import ShmQueue
            queues = [ShmQueue.create(sys.argv[1], name) for name in ("input", "execute", "network")]
            print(" ".join(q.segment for q in queues), flush=True)
            os.killpg(0, signal.SIGKILL)  # the whole tree, its resource tracker too
        """, ensemble, start_new_session=True)
        out, _ = child.communicate(timeout=BOUND)
        assert child.returncode == -signal.SIGKILL
        dead = sorted(out.split())
        assert len(dead) == 3 and all(parse_segment_name(name).pid == child.pid for name in dead)
        assert segments_of(ensemble) == sorted(dead + [survivor.segment])  # nobody cleaned up
        assert remove_orphans("someone-else") == []
        assert remove_orphans(ensemble) == dead
        assert segments_of(ensemble) == [survivor.segment]
        assert remove_orphans(ensemble) == []
    finally:
        survivor.close()


def test_a_dead_creators_segment_is_an_orphan_even_when_its_pid_runs_again(ensemble):
    """pids are handed out again (a service restarted in a container often gets its
    predecessor's): the segment's creator start time tells the new process from the dead one."""
    child = python("""
        import os, signal, sys
        from appliance.ipc.shmqueue import ShmQueue
        queue = ShmQueue.create(sys.argv[1], "execute")
        print(queue.segment, flush=True)
        os.killpg(0, signal.SIGKILL)  # the whole tree, its resource tracker too
    """, ensemble, start_new_session=True)
    out, _ = child.communicate(timeout=BOUND)
    left = out.strip()
    # The dead child's segment as if its pid were now this (live) process's.
    reused = segment_name(ensemble, "execute")
    os.rename(os.path.join("/dev/shm", left), os.path.join("/dev/shm", reused))
    assert remove_orphans(ensemble) == [reused]
    with ShmQueue.create(ensemble, "execute") as fresh:  # the name is free again; ours is kept
        assert remove_orphans(ensemble) == [] and segments_of(ensemble) == [fresh.segment]


def test_what_only_looks_like_a_segment_neither_stops_the_cleanup_nor_is_removed_wrongly(ensemble):
    huge = "appliance-%d-%s-q" % (10 ** 20, ensemble)  # a pid no kernel hands out: nobody runs it
    directory = "appliance-%d-%s-d" % (4_000_000, ensemble)
    open(os.path.join("/dev/shm", huge), "wb").close()
    os.mkdir(os.path.join("/dev/shm", directory))
    try:
        assert remove_orphans(ensemble) == [huge]
        assert os.path.isdir(os.path.join("/dev/shm", directory))
    finally:
        os.rmdir(os.path.join("/dev/shm", directory))

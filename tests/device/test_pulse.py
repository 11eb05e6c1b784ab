"""The supervisor's check that the execute process still runs Python (appliance/device/pulse.py).

Real child processes hold the interpreter in one C call, or sit in a firing the watchdog's
signal cannot reach; the Pulse (with a short grace, so the tests are short) must kill
them and say where they were, and must leave alone a long call within the limits."""
import json
import multiprocessing
import os
import signal
import time

import pytest

from appliance.device.pulse import Heart, Pulse, where_stuck
from appliance.runtime.watchdog import RUNNING, Watchdog, Watched

from ..sim.test_watchdog import STUCK
from .conftest import WAIT

SPAWN = multiprocessing.get_context("spawn")  # as the supervisor starts its children


def hold_the_interpreter(ends, longest, terms):
    """A process whose watchdog beats (no firing runs), then one call into C: no Python step
    for its length, so no beat either."""
    heart = Heart(ends)
    RUNNING.longest = longest
    with Watchdog(heart.beat):
        heart.beat(-1.0, 0.0, longest)  # the first beat, before the call: the thread's may come later
        sum(range(terms))


def ignore_the_watchdog(ends, limit):
    """A firing the watchdog's signal cannot stop (it is blocked), in a loop of waits."""
    heart = Heart(ends)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2})
    with Watchdog(heart.beat):
        RUNNING.exe = Watched(limit)
        while True:
            time.sleep(0.01)


def dumped_then_hold(ends, ready, go):
    """Ready for SIGUSR1 (its frames), a wait for the go, then one call into C."""
    heart = Heart(ends)
    with Watchdog(heart.beat):
        heart.beat(-1.0, 0.0, 0.0)
        ready.send_bytes(b"r")
        go.recv_bytes()
        sum(range(10 ** 15))


def _run(target, *args, grace=0.5, meanwhile=lambda pid: None):
    pulse = Pulse(grace=grace, confirm=0.2)
    child = SPAWN.Process(target=target, args=(pulse.ends(), *args), daemon=True)
    child.start()
    pulse.watch(child.pid)
    meanwhile(child.pid)
    child.join(WAIT)
    try:
        assert child.exitcode is not None, "the child still runs"
        return child.exitcode, pulse.verdict
    finally:
        if child.is_alive():
            child.kill()
        pulse.close()


def test_a_process_that_runs_no_python_is_killed_and_the_verdict_says_where():
    code, verdict = _run(hold_the_interpreter, 0.1, 10 ** 15)
    assert code == -signal.SIGKILL
    assert verdict.startswith("ran no Python for ")
    assert verdict.endswith(", at test_pulse.py:%d in hold_the_interpreter(): killed"
                            % (hold_the_interpreter.__code__.co_firstlineno + 7))


def test_a_firing_its_watchdog_cannot_stop_is_killed_past_its_limit():
    code, verdict = _run(ignore_the_watchdog, 0.1)
    assert code == -signal.SIGKILL
    assert verdict.startswith("ran one firing for ")
    assert ", past its time limit of 0.1 s, and could not stop it" in verdict
    assert verdict.endswith("in ignore_the_watchdog(): killed")


def test_frames_asked_for_by_others_neither_block_the_process_nor_stand_for_where_it_is_stuck():
    """Was: each SIGUSR1 from elsewhere left its frames in the pipe, nobody read them: after
    some dozens the next one blocked the main thread inside its handler for good (while the
    watchdog beat on), and the verdict named where the process was at the first of them."""
    ready_r, ready_w = SPAWN.Pipe(duplex=False)
    go_r, go_w = SPAWN.Pipe(duplex=False)

    def others_ask_then_go(pid):
        ready_r.recv_bytes()
        for _ in range(300):
            os.kill(pid, signal.SIGUSR1)
        go_w.send_bytes(b"g")

    try:
        code, verdict = _run(dumped_then_hold, ready_w, go_r, meanwhile=others_ask_then_go)
    finally:
        for end in (ready_r, ready_w, go_r, go_w):
            end.close()
    assert code == -signal.SIGKILL
    assert verdict.endswith(", at test_pulse.py:%d in dumped_then_hold(): killed"
                            % (dumped_then_hold.__code__.co_firstlineno + 7)), verdict


def test_a_long_call_within_the_longest_limit_is_not_killed():
    # 1.25 * 20 s + 0.5 s of silence are allowed: the call (a fraction of a second) ends well within.
    code, verdict = _run(hold_the_interpreter, 20.0, 2 * 10 ** 7)
    assert (code, verdict) == (0, None)


def test_where_names_the_program_line_of_the_main_thread_first():
    dump = ("Thread 0x00007f01 (most recent call first):\n"
            '  File "/usr/lib/python3.11/threading.py", line 324 in wait\n'
            '  File "/usr/lib/python3.11/threading.py", line 1002 in _bootstrap\n'
            "\n"
            "Current thread 0x00007f02 (most recent call first):\n"
            '  File "/srv/drivers/camera.py", line 88 in grab\n'
            '  File "stuck.py (deployed 1a2b3c4d)", line 12 in stuck\n'
            '  File "/opt/appliance/runtime/execute.py", line 212 in _execute\n'
            '  File "<string>", line 1 in <module>\n')
    assert where_stuck(dump) == "stuck.py:12 in stuck()"
    assert where_stuck(dump.replace(" (deployed 1a2b3c4d)", "")) == "camera.py:88 in grab()"
    assert where_stuck("") == ""


STUCK_IN_C = STUCK.replace("{body}", "sum(range(10 ** 15))")


@pytest.mark.timeout(120)
def test_an_sq_stuck_in_one_c_call_on_a_device_ends_its_ensemble_naming_the_line(commands, tmp_path):
    """Was: the watchdog could not run, the run never ended, the execute process was lost for good."""
    program = tmp_path / "stuck.py"
    program.write_text(STUCK_IN_C)
    line = STUCK_IN_C.splitlines().index("        sum(range(10 ** 15))") + 1
    rtm = commands("rtm", "--graph", str(program), "--listen", "127.0.0.1:0", "--expect", "0", "--duration", "30",
                   "--sq-time-limit", "0.2", "--out", str(tmp_path / "out.jsonl"))
    code, stdout, stderr = rtm.finish(seconds=90)
    assert code == 1, stdout + stderr
    assert "appliance rtm: error: process runtime-manager/execute (pid " in stderr
    assert ("the time limit cannot stop it), at stuck.py:%d in stuck(): killed" % line in stderr
            or "past its time limit of 0.2 s, and could not stop it (one call into compiled code that does not "
               "return), at stuck.py:%d in stuck(): killed" % line in stderr), stderr
    records = [json.loads(r) for r in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["value"] for r in records if r["sq"] == "stuck"] == [1]  # its first firing, before it was stuck

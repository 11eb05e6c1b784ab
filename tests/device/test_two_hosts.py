r"""Two hosts (issue E, section 6): a runtime manager and two ensembles, each in a network
namespace of its own, joined by veth pairs to a router namespace where the project's lossy
relay is the only way across; every graph output still arrives, with the right values.

Topology (namespaces, links and addresses this test makes, named after its pid, and
deletes on every path; the router does not forward IP and the others have no route to
each other's links, so nothing crosses but what the relay forwards)::

    left    10.90.1.2 --veth-- 10.90.1.1 \
    right   10.90.2.2 --veth-- 10.90.2.1 -- router: relay 10.90.9.1:9225 -> 10.90.0.2:9225, 10 % loss,
    manager 10.90.0.2 --veth-- 10.90.0.1 /          upstream sockets on 10.90.0.1, one per client

How the addresses work out. The relay forwards to one target, the manager, and gives each
client an upstream socket of its own (bound to ``--source``, on the client's port if free):
the manager sees each ensemble at that upstream address and answers it there, and the
relay hands the answer on from its listening address. The checks that matter:

- the manager admits a join only from the address it declares, so each ensemble
  advertises its upstream address on the relay (and listens on its own);
- an ensemble admits control only from the runtime manager's address, which the join's
  answer sets to the manager's advertised one, so the manager advertises the relay's
  listening address, 10.90.9.1:9225, the one address of the router both ensembles reach
  (a route each); it listens on the wildcard, which the relay targets at 10.90.0.2;
- the ``rtm`` command's own control client talks to the advertised address and must be
  local to the manager, so the manager's namespace holds 10.90.9.1 as well (on ``lo``).

An upstream port exists only once the ensemble's address has sent the relay a datagram,
so the test first sends probes from each ensemble's address to a stand-in for the
manager, which reads the upstream address off them (the relay keeps a client's upstream
socket for its lifetime), then starts the manager and the ensembles.

What the relay cannot carry is ensemble-to-ensemble traffic: a datagram sent to an
ensemble's upstream address reaches that ensemble from the relay's listening address,
the manager's. So the program keeps each of its two diamonds on one ensemble (pinned
with ``ensemble=``); what crosses hosts through the loss is the join, the clock probes,
the deployment, the start, the teardown and every graph output, all reliable.
"""
import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time

import psutil
import pytest

from appliance.ipc.shmqueue import remove_orphans
from appliance.ipc.shmqueue.segment import SHM_DIR, parse_segment_name

#: Longest any one wait may take before it is a failure (a bound, not a pace).
WAIT = 30.0
RUN = "%d" % os.getpid()
LEFT, RIGHT = "left-" + RUN, "right-" + RUN
#: namespace role -> (its address, the router's on its link)
LINKS = {"m": ("10.90.0.2", "10.90.0.1"), "e1": ("10.90.1.2", "10.90.1.1"), "e2": ("10.90.2.2", "10.90.2.1")}
#: The relay listens here; the manager advertises it.
FRONT = "10.90.9.1"
PORT = 9225  # the relay's, the manager's, and each ensemble's
LOSS, SEED = 0.1, 7
DURATION, PERIOD = 1.0, 10_000  # seconds; µs

#: One diamond per host: the same SQ functions, placed at each call site.
PROGRAM = f'''
from appliance import graph, placement, sq, stream


@stream(period_ms=10)
def counter(tick):
    return tick // 10_000


@sq
def double(n):
    return 2 * n


@sq
def square(n):
    return n * n


@sq
def pair(doubled, squared):
    return [doubled, squared]


def diamond(ensemble):
    with placement(ensemble=ensemble):
        n = counter()
        return pair(double(n), square(n))


@graph
def main():
    return diamond("{LEFT}"), diamond("{RIGHT}")
'''

#: Stands in for the manager at its address: prints the source of the first datagram
#: carrying each expected payload (the relay's upstream address for that client).
STAND_IN = r'''
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
expected = set(sys.argv[2:])
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
    sock.bind((host, int(port)))
    sock.settimeout(%r)
    print("bound", flush=True)
    while expected:
        data, source = sock.recvfrom(256)
        name = data.decode()
        if name in expected:
            expected.discard(name)
            print("probe %%s from %%s:%%d" %% (name, source[0], source[1]), flush=True)
''' % WAIT

#: Sends the relay a few probes from the address an ensemble will listen on (so the relay
#: gives that address its upstream socket); several, as the relay drops some.
PROBE = r'''
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
relay_host, relay_port = sys.argv[2].rsplit(":", 1)
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
    sock.bind((host, int(port)))
    for _ in range(8):
        sock.sendto(sys.argv[3].encode(), (relay_host, int(relay_port)))
'''


def run(*argv, check=True):
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=WAIT)
    if check and done.returncode != 0:
        raise AssertionError("%s failed (%d): %s" % (" ".join(argv), done.returncode, done.stderr.strip()))
    return done


class Namespaces:
    """Network namespaces made for this test (unique names), deleted with all they hold."""

    def __init__(self):
        self.names = {}

    def add(self, role):
        name = "appliance-%s-%s" % (RUN, role)
        done = run("ip", "netns", "add", name, check=False)
        if done.returncode != 0:
            raise OSError(done.stderr.strip() or "ip netns add %s: exit status %d" % (name, done.returncode))
        self.names[role] = name
        run("ip", "-n", name, "link", "set", "lo", "up")
        return name

    def pids(self, role):
        """The processes in the namespace (any left would keep it alive)."""
        return [int(pid) for pid in run("ip", "netns", "pids", self.names[role]).stdout.split()]

    def delete(self):
        for role in self.names:  # anything still in them is ours (every command here was started in one)
            end([psutil.Process(pid) for pid in self.pids(role) if psutil.pid_exists(pid)])
        failures = []
        for name in self.names.values():  # deleting a namespace deletes its veth ends, and their peers
            done = run("ip", "netns", "del", name, check=False)
            if done.returncode != 0:
                failures.append("%s: %s" % (name, done.stderr.strip()))
        left = set(self.names.values()) & set(run("ip", "netns", "list").stdout.split())
        self.names.clear()
        assert not failures and not left, (failures, left)


@pytest.fixture
def namespaces():
    """The router, manager and two ensemble namespaces and their veth pairs; skips where the
    machine will not let this test make them."""
    if os.geteuid() != 0:
        pytest.skip("creating network namespaces needs root (this test runs as uid %d)" % os.geteuid())
    if shutil.which("ip") is None:
        pytest.skip("no `ip` command (iproute2) to create network namespaces with")
    made = Namespaces()
    try:
        try:
            router = made.add("r")
        except OSError as exc:
            pytest.skip("cannot create a network namespace (ip netns add): %s" % exc)
        run("ip", "-n", router, "addr", "add", FRONT + "/32", "dev", "lo")  # where the relay listens
        for role, (address, gateway) in LINKS.items():
            name = made.add(role)
            run("ip", "-n", router, "link", "add", "to-" + role, "type", "veth", "peer", "name", "veth0",
                "netns", name)
            run("ip", "-n", router, "addr", "add", gateway + "/24", "dev", "to-" + role)
            run("ip", "-n", name, "addr", "add", address + "/24", "dev", "veth0")
            run("ip", "-n", router, "link", "set", "to-" + role, "up")
            run("ip", "-n", name, "link", "set", "veth0", "up")
            if role == "m":  # the manager's advertised address is local to it, too (its command's client)
                run("ip", "-n", name, "addr", "add", FRONT + "/32", "dev", "lo")
            else:  # the ensembles reach the relay through the router
                run("ip", "-n", name, "route", "add", FRONT + "/32", "via", gateway)
        yield made
    finally:
        made.delete()


class Started:
    """A command run in a namespace; its stdout and stderr lines, read as they come."""

    def __init__(self, namespace, argv):
        self.argv = argv
        self.process = subprocess.Popen(["ip", "netns", "exec", namespace, *argv], stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE)
        self.lines = {"stdout": [], "stderr": []}
        self._partial = {"stdout": b"", "stderr": b""}
        self._open = {self.process.stdout.fileno(): "stdout", self.process.stderr.fileno(): "stderr"}
        self.tree = []  # the process and its descendants, as last seen

    def _read(self, timeout):
        """Read what is there (waiting up to ``timeout``); False once both streams ended."""
        if not self._open:
            return False
        for fd in select.select(list(self._open), [], [], max(0.0, timeout))[0]:
            stream = self._open[fd]
            chunk = os.read(fd, 65536)
            if not chunk:
                del self._open[fd]
                chunk = b"\n" if self._partial[stream] else b""
            *whole, self._partial[stream] = (self._partial[stream] + chunk).split(b"\n")
            self.lines[stream].extend(line.decode(errors="replace") for line in whole)
        return True

    def line_starting(self, prefix, stream="stdout", seconds=WAIT):
        """The first line of ``stream`` starting with ``prefix``, waiting for it."""
        deadline = time.monotonic() + seconds
        while True:
            for line in self.lines[stream]:
                if line.startswith(prefix):
                    return line
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._read(remaining):
                raise AssertionError("%s: no %s line starting %r in %g s (exit status %s); it printed %s" % (
                    " ".join(self.argv), stream, prefix, seconds, self.process.poll(), self.lines))

    def see_tree(self):
        """The process and its descendants (kept, to check on them once it has exited)."""
        try:
            root = psutil.Process(self.process.pid)
            self.tree = [root] + root.children(recursive=True)
        except psutil.NoSuchProcess:
            pass
        return [p.pid for p in self.tree]

    def finish(self, seconds=WAIT):
        """Wait for it to exit and its streams to end; its exit status."""
        deadline = time.monotonic() + seconds
        while self._read(deadline - time.monotonic()):
            if time.monotonic() >= deadline:
                raise AssertionError("%s did not finish in %g s; it printed %s" % (" ".join(self.argv), seconds,
                                                                                   self.lines))
        return self.process.wait(max(0.1, deadline - time.monotonic()))

    def stop(self, seconds=WAIT):
        """SIGTERM (to the process, which stops its own children), then wait; its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.finish(seconds)

    def text(self, stream="stdout"):
        return "\n".join(self.lines[stream])

    def kill(self):
        """Stop what is left of its tree: SIGTERM to the process (which stops its children in
        order), then SIGTERM and, past a bound, SIGKILL to any descendant still running."""
        self.see_tree()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        end([p for p in self.tree if p.is_running()])
        self.process.stdout.close()
        self.process.stderr.close()


def end(processes):
    """SIGTERM to each, SIGKILL to whichever outlives a bound, and wait for them."""
    for signal_to_send in (signal.SIGTERM, signal.SIGKILL):
        for proc in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.send_signal(signal_to_send)
        processes = psutil.wait_procs(processes, timeout=5)[1]
        if not processes:
            return


@pytest.fixture
def started():
    """``started(namespace, *argv)`` runs a command in a namespace; whatever is left of every
    one is stopped at the end, on every path."""
    commands = []

    def start(namespace, *argv):
        command = Started(namespace, argv)
        commands.append(command)
        return command

    yield start
    for command in reversed(commands):
        command.see_tree()
        command.kill()
    remove_orphans()  # what a killed supervisor left


def appliance(*argv):
    return (sys.executable, "-m", "appliance", *argv)


def segments_of(pids, names):
    """Our segments in /dev/shm: made by one of ``pids`` or for one of ``names``."""
    found = []
    for name in os.listdir(SHM_DIR):
        parsed = parse_segment_name(name)
        if parsed is not None and (parsed.pid in pids or parsed.ensemble in names):
            found.append(name)
    return sorted(found)


@pytest.mark.timeout(120)
def test_two_ensembles_behind_a_lossy_relay_deliver_every_graph_output(namespaces, started, tmp_path):
    ns = namespaces.names
    keys = tmp_path / "keys"
    keys.mkdir()
    run(*appliance("keygen", str(keys)))
    program = tmp_path / "two_diamonds.py"
    program.write_text(PROGRAM)
    out = tmp_path / "outputs.jsonl"
    manager = "%s:%d" % (LINKS["m"][0], PORT)
    front = "%s:%d" % (FRONT, PORT)

    relay = started(ns["r"], sys.executable, "-m", "appliance.net.relay", "--listen", front, "--target", manager,
                    "--source", LINKS["m"][1], "--loss", str(LOSS), "--seed", str(SEED))
    relay.line_starting("relay %s -> %s " % (front, manager), "stderr")

    # The relay's upstream address for each ensemble, read off probes by a stand-in manager.
    stand_in = started(ns["m"], sys.executable, "-c", STAND_IN, manager, LEFT, RIGHT)
    stand_in.line_starting("bound")
    upstream = {}
    for role, name in (("e1", LEFT), ("e2", RIGHT)):
        probe = started(ns[role], sys.executable, "-c", PROBE, "%s:%d" % (LINKS[role][0], PORT), front, name)
        assert probe.finish() == 0, probe.text("stderr")
        upstream[name] = stand_in.line_starting("probe %s from " % name).split(" from ")[1]
        assert upstream[name].startswith(LINKS["m"][1] + ":"), upstream
    assert stand_in.finish() == 0, stand_in.text("stderr")
    assert len(set(upstream.values())) == 2, upstream

    rtm = started(ns["m"], *appliance(
        "rtm", "--graph", str(program), "--listen", "0.0.0.0:%d" % PORT, "--advertise", front, "--expect", "2",
        "--duration", str(DURATION), "--out", str(out), "--seed", "3", "--join-timeout", str(WAIT),
        "--cluster-key", str(keys / "cluster.key"), "--manager-key", str(keys / "manager.key")))
    assert rtm.line_starting("runtime manager ") == "runtime manager runtime-manager at %s" % front
    members = {}
    for role, name in (("e1", LEFT), ("e2", RIGHT)):
        members[name] = started(ns[role], *appliance(
            "ensemble", "--name", name, "--rtm", front, "--listen", "%s:%d" % (LINKS[role][0], PORT),
            "--advertise", upstream[name],
            "--cluster-key", str(keys / "cluster.key"), "--manager-public-key", str(keys / "manager.pub")))
    for name in (LEFT, RIGHT):
        rtm.line_starting("joined: %s from %s," % (name, upstream[name]))
        members[name].line_starting("ensemble %s at %s, joining the runtime manager at %s" % (
            name, upstream[name], front))
    # Their process trees: a supervisor, the three processes of an ensemble (four for the manager), and
    # whatever multiprocessing adds; all gone at the end.
    assert len(rtm.see_tree()) >= 5 and all(len(m.see_tree()) >= 4 for m in members.values())
    trees = rtm.tree + [p for m in members.values() for p in m.tree]

    code = rtm.finish(WAIT + 2 * DURATION)
    stdout = rtm.text()
    assert code == 0, stdout + "\n" + rtm.text("stderr")
    assert "ran main on 2 ensemble(s)" in stdout, stdout
    [transport] = [line for line in stdout.splitlines() if line.startswith("  transport ")]
    for member in members.values():
        assert member.stop() == 0, member.text("stderr")
    assert relay.stop() == 0, relay.text("stderr")
    counters = json.loads(relay.lines["stdout"][-1])

    # Nothing left running in any namespace, nothing left in /dev/shm.
    assert psutil.wait_procs(trees, timeout=5)[1] == [], "processes outlived their commands"
    assert {role: namespaces.pids(role) for role in ns} == {role: [] for role in ns}
    assert segments_of({p.pid for p in trees}, {LEFT, RIGHT}) == []

    # The relay was in the path and dropped some of it, and the transport made up for it.
    assert counters["lost"] > 0 and counters["forwarded"] > counters["lost"], counters
    assert counters["clients_full"] == 0 and counters["send_errors"] == 0, counters
    sent, retransmitted, failed = (int(transport.split()[i]) for i in (1, 3, 6))
    assert sent > 0 and retransmitted > 0 and failed == 0, transport

    # Every graph output, once each, with its value: per diamond one pair a sample.
    records = [json.loads(line) for line in out.read_text().splitlines()]
    expected = int(round(DURATION * 1e6 / PERIOD))
    for name, sq in ((LEFT, "pair"), (RIGHT, "pair_2")):
        mine = [r for r in records if r["sq"] == sq]
        assert len(mine) == expected, (sq, len(mine), stdout)
        assert {r["ensemble"] for r in mine} == {name}
        samples = sorted((r["start"] + r["stop"]) // 2 // PERIOD for r in mine)
        assert samples == list(range(samples[0], samples[0] + expected)), samples  # none missing, none twice
        for r in mine:
            n = (r["start"] + r["stop"]) // 2 // PERIOD
            assert r["value"] == [2 * n, n * n] and r["stop"] - r["start"] == PERIOD, r
    assert len(records) == 2 * expected

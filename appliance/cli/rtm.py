"""``appliance rtm``: run the runtime-manager ensemble on this device, and a program on the cluster."""
from __future__ import annotations

import argparse
import logging
import socket
import sys
from typing import Any, Callable, Dict, Optional, Set, Tuple

from appliance.cli import report, values
from appliance.cli.deploy import deployment
from appliance.cli.ensemble import add_device_options
from appliance.cli.errors import UsageError
from appliance.cli.runflags import add_run_flags, run_options
from appliance.cli.simulate import load_to_run
from appliance.device.client import MAX_REQUEST_BYTES, ControlClient, request_id
from appliance.device.run import Running, local_address, settings_from
from appliance.device.supervisor import ChildDied, DeviceSettings
from appliance.ipc import ClientMsg, ExecuteMsg, Message, NetMsg, Recipient, RuntimeMsg, SyncMsg
from appliance.program.model import Graph
from appliance.runtime.app import OutputRecord, RunOptions
from appliance.runtime.outputs import JsonLinesWriter
from appliance.runtime.status import add_late_counts, counted_since, transport_totals

EXAMPLES = """examples (from the repository root):
  appliance rtm --graph examples/diamond.py --listen 127.0.0.1:8225 --expect 2 --duration 2 --out outputs.jsonl
  appliance rtm --wait --listen 0.0.0.0:8225 --advertise 10.0.0.1:8225 --cluster-key keys/cluster.key \\
      --manager-key keys/manager.key

With --graph it waits for --expect ensembles to join (showing each, with its
clock offset), maps, deploys, runs for --duration seconds, writes the outputs,
prints the summary and exits (0: finished without SQ errors or lost outputs).
With --wait it serves until stopped, taking deployments from `appliance deploy`.
"""

#: The flags of a run of --graph (with --wait, each deployment brings its own).
GRAPH_ONLY = ("expect", "join_timeout", "duration", "seed", "mapping", "max_clock_offset_ms", "sq_time_limit")

#: The name of the runtime manager's ensemble when neither --name nor the configuration file gives one.
DEFAULT_NAME = "runtime-manager"

#: How long, once the app's summary is in, the outputs it counted may take to arrive: the
#: transport delivers messages as they complete, so a large output can come after the
#: (small) summary. Only a lost output makes the command wait this long.
OUTPUT_SECONDS = 10.0


def add_parser(sub) -> None:
    p = sub.add_parser("rtm", help="run the runtime manager (and a program) on this device",
                       description="Run the runtime-manager ensemble: ensembles join it, it maps a graph onto "
                       "them, deploys, starts, logs the outputs and tears down.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_device_options(p)
    p.add_argument("--manager-key", dest="manager_key", metavar="FILE", type=values.file_name,
                   help="the manager's private key (appliance keygen): it signs what changes an ensemble")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--graph", metavar="PROGRAM", type=values.file_name,
                      help="PROGRAM.py[:graph_name] or GRAPH.json to run")
    what.add_argument("--wait", action="store_true", help="run no program: take deployments until stopped")
    p.add_argument("--expect", type=values.counted("ensembles", 0, 4096), default=1, metavar="N",
                   help="ensembles to wait for before deploying (default 1)")
    p.add_argument("--join-timeout", type=values.seconds, default=60.0, metavar="SECONDS",
                   help="how long to wait for them (default 60)")
    p.add_argument("--duration", type=values.seconds, default=10.0, metavar="SECONDS",
                   help="how long the streams sample (default 10)")
    add_run_flags(p)
    p.add_argument("--out", metavar="OUTPUTS.jsonl", type=values.file_name,
                   help="write every output record here as a JSON line")
    # Unset until run() knows whether --graph came: with --wait they would be ignored, so they are refused.
    p.set_defaults(run=run, name=None, graph_defaults={dest: p.get_default(dest) for dest in GRAPH_ONLY},
                   **dict.fromkeys(GRAPH_ONLY))


def run(args: argparse.Namespace) -> int:
    if args.graph is None and not args.wait:
        raise UsageError("give --graph PROGRAM to run, or --wait to take deployments later")
    given = ["--" + dest.replace("_", "-") for dest in GRAPH_ONLY if getattr(args, dest) is not None]
    if args.wait and given:
        raise UsageError("%s: only with --graph (each deployment brings its own: appliance deploy)" % ", ".join(given))
    for dest, default in args.graph_defaults.items():
        if getattr(args, dest) is None:
            setattr(args, dest, default)
    graph = load_to_run(args.graph, "rtm") if args.graph is not None else None
    options = run_options(args, int(round(args.duration * 1e6)))
    if graph is not None:
        deployment(graph, options, args.graph)  # too large to deploy: said before anything starts
    flags = {key: getattr(args, key) for key in ("name", "listen", "advertise", "cluster_key", "manager_key")}
    settings, sock = settings_from(flags, args.config, hosts_runtime_manager=True,
                                   log_level=logging.DEBUG if args.debug else logging.WARNING,
                                   default_name=DEFAULT_NAME)
    out = values.output_or_nowhere(args.out, "--out")
    with out:
        return run_program(settings, sock, graph, options, args.expect, args.join_timeout, JsonLinesWriter(out),
                           args.out, args.debug, "rtm", flush=out.flush)


def run_program(settings: DeviceSettings, sock: socket.socket, graph: Optional[Graph], options: RunOptions,
                expect: int, join_timeout: float, sink: Callable[[OutputRecord], None], out: Optional[str],
                debug: bool, command: str, joining: Callable[[str], None] = lambda address: None,
                flush: Callable[[], None] = lambda: None) -> int:
    """Run the runtime manager's tree; with a graph, wait for ``expect`` ensembles (``joining``
    is called with the address they join at, once it listens), run it and report; without
    one, serve until stopped. ``flush`` is called once an app's outputs are all in ``sink``
    (a file someone tails sees them then, not when the command ends). The exit status of
    the command."""
    running = Running(settings, sock)  # from here SIGTERM and SIGINT stop it in order: before its first line
    print("runtime manager %s at %s" % (settings.name, settings.advertise), flush=True)
    # To the socket it is bound to, not the advertised address: that one may be a NAT's, not this host's.
    with running, ControlClient(local_address(sock), settings.cluster_key, peer="runtime manager") as client:
        status = _run_program(settings, running, client, graph, options, expect, join_timeout, sink, out, debug,
                              command, joining, flush)
    return running.exit_status(status)


def _run_program(settings: DeviceSettings, running: Running, client: ControlClient, graph: Optional[Graph],
                 options: RunOptions, expect: int, join_timeout: float, sink: Callable[[OutputRecord], None],
                 out: Optional[str], debug: bool, command: str, joining: Callable[[str], None],
                 flush: Callable[[], None]) -> int:
    session = Session(client, running, sink, settings.name, command, flush, debug)
    client.send(Message(NetMsg.SUBSCRIBE, None, Recipient.NETWORK))
    joining(settings.advertise)
    try:
        if graph is None:
            return session.serve()
        if not session.wait_for_members(expect, join_timeout):
            return session.stopped("%d of %d ensembles joined in %g s" % (len(session.members), expect,
                                                                          join_timeout), command)
        before = session.cluster_status()  # the ensembles may have served before: the summary is this run's
        ran_on = len(session.members)  # those that joined; one may leave during the run
        client.send(deployment(graph, options, graph.program.filename))
        summary = session.wait_for_app()
        if summary is None:
            return session.stopped("the run did not finish", command)
        missing = session.wait_for_outputs(summary, OUTPUT_SECONDS)
    except ChildDied as exc:
        print("appliance %s: error: %s" % (command, exc), file=sys.stderr)
        return 1
    s = summary
    if missing:  # logged by the manager, never here (nor in --out): lost on the way
        s["lost"] = dict(s["lost"], outputs_not_received=missing)
    statuses = counted_since(before, session.cluster_status())
    add_late_counts(s, statuses.values())
    if s["ran"]:
        # The ensembles that joined, as simulate counts those of the system: not the
        # manager's own, and not only those the mapping gave SQs.
        print("ran %s on %d ensemble(s) for %s" % (graph.name, ran_on, report.ran_for(s, options.duration)))
        report.print_summary(s, out, transport_totals(status for process, status in statuses.items()
                                                      if process.endswith("network")), [])
    report.print_errors(s, debug, command)
    if s["phase"] != "finished":
        print("appliance %s: error: %s" % (command, s["error"]), file=sys.stderr)
    lost = _lost_outputs(s)
    if lost:
        print("appliance %s: error: %s" % (command, lost), file=sys.stderr)
    return 2 if s["sq_errors"] or s["phase"] != "finished" or lost else 0


def _lost_outputs(s: Dict[str, Any]) -> str:
    """Why outputs are missing, if they are: a message too large for a local queue (a value
    of megabytes, dropped on every run: the program's doing, so an error like an SQ's),
    or outputs the manager logged that never reached this command. "" when none is."""
    why = []
    too_large = s["lost"].get("too_large_for_queue", 0)
    if too_large:
        why.append("%d message(s) larger than a local queue carries (%d bytes) were dropped: outputs or tokens "
                   "were lost" % (too_large, MAX_REQUEST_BYTES))
    missing = s["lost"].get("outputs_not_received", 0)
    if missing:
        why.append("%d of the %d outputs logged never reached this command" % (missing, s["outputs"]))
    return "; ".join(why)


class Session:
    """What the rtm command hears from its runtime manager, and says of it."""

    def __init__(self, client: ControlClient, running: Running, sink: Callable[[OutputRecord], None],
                 name: str, command: str, flush: Callable[[], None] = lambda: None, debug: bool = False) -> None:
        self.client = client
        self.command = command
        self.running = running
        self.sink = sink
        self.flush = flush
        self.name = name
        #: The ensembles that joined (the runtime manager's own not counted).
        self.members: Dict[str, Any] = {}
        self.summary: Optional[Dict[str, Any]] = None
        self.interrupted = ""
        self._warned: Set[str] = set()  # apps whose deploy warnings were printed
        self._said: Dict[str, Tuple[str, Optional[str]]] = {}  # app -> the phase and error last printed
        self.received: Dict[str, int] = {}  # app -> its output records taken into the sink
        self._ended: Set[str] = set()  # apps whose summary came: a late output of theirs is flushed at once
        self.serving = False  # --wait: apps come from deploy commands
        self.debug = debug

    def _hear(self) -> None:
        for message in self.client.take(ClientMsg.MEMBER, ClientMsg.MEMBER_LEFT):  # in order: left, then back
            if message.msg_type is ClientMsg.MEMBER_LEFT:
                name, why = message.payload
                if self.members.pop(name, None) is not None:
                    print("left: %s (%s)" % (name, why), flush=True)
                continue
            name, address, offset, delay = message.payload
            if name != self.name:  # a member's clock comes once per join: a known one joined anew
                again = " again" if name in self.members else ""
                self.members[name] = (address, offset, delay)
                print("joined%s: %s from %s, clock %+.3f ms off (round trip %.3f ms)"
                      % (again, name, address, offset / 1000, delay / 1000), flush=True)
        late = False
        for message in self.client.take(ClientMsg.OUTPUT):
            record = OutputRecord(*message.payload)
            self.sink(record)
            self.received[record.app] = self.received.get(record.app, 0) + 1
            late = late or record.app in self._ended
        if late:
            self.flush()
        for message in self.client.take(ClientMsg.APP):
            app = message.payload
            if "refused" in app:  # the answer to another client's request; the app is as it was
                continue
            ended = app["summary"] is not None and app["app"] not in self._ended
            if ended:
                self._ended.add(app["app"])
                self.flush()  # its outputs so far, to whoever tails the file, before its end is said
            said = (app["phase"], app["error"])
            if self._said.get(app["app"]) != said:  # the same report heard again is no news
                self._said[app["app"]] = said
                print("app %s: %s%s" % (app["app"], app["phase"], " (%s)" % app["error"] if app["error"] else ""),
                      flush=True)
            if app["app"] not in self._warned:  # the deploy's warnings, once, as it starts
                self._warned.add(app["app"])
                for warning in app["warnings"]:
                    print("appliance %s: warning: %s" % (self.command, warning), file=sys.stderr, flush=True)
            if app["summary"] is not None:
                self.summary = app["summary"]
            if ended and self.serving:  # a run of --graph says them with its summary
                report.print_errors(app["summary"], self.debug, self.command)

    def _until(self, done: Any, seconds: Optional[float]) -> bool:
        def heard() -> bool:
            self._hear()
            return done()

        while True:
            if self.client.wait(heard, seconds, interrupt=self.running.interrupts()):
                return True
            why = self.running.why()  # raises ChildDied for a dead process
            if why is not None:
                self.interrupted = why
                return False
            if seconds is not None:
                return False

    def wait_for_members(self, expect: int, seconds: float) -> bool:
        return self._until(lambda: len(self.members) >= expect, seconds)

    def wait_for_app(self) -> Optional[Dict[str, Any]]:
        self._until(lambda: self.summary is not None, None)
        return self.summary

    def wait_for_outputs(self, summary: Dict[str, Any], seconds: float) -> int:
        """Wait (up to ``seconds``) for the outputs the summary counts that are still on
        their way; how many never came."""
        def arrived() -> int:
            return self.received.get(summary["app"], 0)

        self._until(lambda: arrived() >= summary["outputs"], seconds)
        self.flush()
        return max(0, summary["outputs"] - arrived())

    def serve(self) -> int:
        """Serve deployments until stopped, saying each app's SQ errors as it ends."""
        self.serving = True
        self._until(lambda: False, None)
        return 0

    def stopped(self, what: str, command: str) -> int:
        reason = "stopped by %s" % self.interrupted if self.interrupted else what
        print("appliance %s: error: %s" % (command, reason), file=sys.stderr)
        return 130 if self.interrupted else 2

    def cluster_status(self) -> Dict[str, Dict[str, Any]]:
        """Every process's status answer over the cluster, asked now."""
        request = request_id()
        expected = ["input_tokens", "execute", "network", "runtime_manager"] + [
            "%s/%s" % (member, process) for member in self.members for process in ("input_tokens", "execute",
                                                                                      "network")]
        return self.client.status(
            [Message(RuntimeMsg.CLUSTER_STATUS, request, Recipient.RUNTIME_MANAGER),
             Message(SyncMsg.STATUS, request, Recipient.INPUT_TOKENS),
             Message(ExecuteMsg.STATUS, request, Recipient.EXECUTE),
             Message(NetMsg.STATUS, request, Recipient.NETWORK)],
            lambda got: all(process in got for process in expected), 3.0)


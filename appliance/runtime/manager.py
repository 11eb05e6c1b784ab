"""The runtime-manager process core: the management plane.

Ensembles join it; it keeps everyone's routing table current, maps a graph,
deploys each ensemble's share (sync, execute and forward parts), waits until
every process of every ensemble has acknowledged, then starts the sources,
logs the outputs and tears the app down at the end. Every step is a message
and a timer, so the simulated and the device shells drive the same object.
"""
from __future__ import annotations

import random
from collections import OrderedDict
from typing import Any, Callable, Dict, List, Optional

from appliance.ipc import (
    ExecuteMsg,
    Message,
    NetMsg,
    Output,
    Recipient,
    RuntimeMsg,
    SyncMsg,
)
from appliance.mapping import forward_parts, map_graph
from appliance.program import graphfile
from appliance.program.errors import ProgramError
from appliance.runtime.app import (
    DEPLOYING,
    FAILED,
    FINISHED,
    MAX_KEPT_ERRORS,
    RUNNING,
    STOPPING,
    App,
    OutputRecord,
    RunOptions,
)
from appliance.runtime.code import program_to_wire
from appliance.runtime.core import Core
from appliance.runtime.network import RUNTIME_MANAGER
from appliance.system import EnsembleDescription
from appliance.system.description import SystemFileError
from appliance.timing import FOREVER, Interval

#: Ensembles one runtime manager accepts; more joins are refused with a reason.
MAX_ENSEMBLES = 4096
#: Deployments remembered (the newest); older ones are forgotten.
MAX_APPS = 16
#: How long the runtime manager gathers joins before telling every member their routes.
ROUTE_BATCH_DELAY = 10_000

_PROCESSES = (Recipient.INPUT_TOKENS, Recipient.EXECUTE, Recipient.NETWORK)

Sink = Callable[[OutputRecord], None]


def _to(ensemble: str, *messages: Message) -> Message:
    return Message(NetMsg.FORWARD, (ensemble, list(messages)), Recipient.NETWORK)


class RuntimeManagerCore(Core):
    """Runs on the runtime-manager ensemble, beside its three ordinary processes.

    The runtime-manager ensemble is named after it (``runtime-manager``) and
    joins itself like any other, so it may host SQs when it is alone.

    ``sink`` receives every output record (the shell writes them to a file);
    ``apps`` keeps each deployment, so the shell can watch the phase and read
    the summary.
    """

    recipient = Recipient.RUNTIME_MANAGER

    def __init__(self, address: str, sink: Sink, name: str = RUNTIME_MANAGER) -> None:
        super().__init__(name)
        self.address = address
        self.sink = sink
        self.members: OrderedDict[str, EnsembleDescription] = OrderedDict()
        self._new_routes: Dict[str, str] = {}
        self.apps: List[App] = []
        self._deployments = 0
        self.on(RuntimeMsg.JOIN, self._join)
        self.on(RuntimeMsg.INSTANTIATE_AND_MAP, self._instantiate_and_map)
        self.on(RuntimeMsg.SQS_READY, self._ready)
        self.on(RuntimeMsg.TEARDOWN, self._teardown_request)
        self.on(RuntimeMsg.SQS_REMOVED, self._removed)
        self.on(RuntimeMsg.LOG_OUTPUT, self._log_output)
        self.on(RuntimeMsg.SQ_ERROR, self._sq_error)
        self.on(RuntimeMsg.DELIVERY_FAILED, self._delivery_failed)
        self.on(RuntimeMsg.END, lambda payload, now: [])

    @property
    def app(self) -> Optional[App]:
        """The newest deployment, if any."""
        return self.apps[-1] if self.apps else None

    # -- joining ------------------------------------------------------------------

    def _join(self, doc: Any, now: int) -> List[Output]:
        address = doc.get("address") if isinstance(doc, dict) else None
        try:
            description = EnsembleDescription.from_wire(doc, "join")
        except SystemFileError as exc:
            return self._refuse(address, str(exc))
        name = description.name
        known = self.members.get(name)
        if name == self.ensemble and description.address != self.address:
            return self._refuse(description.address, "the name %r is the runtime manager's" % name)
        if known is not None and known.address != description.address:
            return self._refuse(description.address, "ensemble name %r is taken by %s" % (name, known.address))
        if known is None and len(self.members) >= MAX_ENSEMBLES:
            return self._refuse(description.address, "this runtime manager has %d ensembles already" % MAX_ENSEMBLES)
        self.members[name] = description
        self.log.info("ensemble %s joined from %s with components [%s]", name, description.address,
                      ", ".join(description.component_names()))
        if name != self.ensemble:
            if not self._new_routes:
                # Joins come in bursts at start-up: tell the others about all of them at once.
                self.timers.schedule(now + ROUTE_BATCH_DELAY, self._propagate_routes)
            self._new_routes[name] = description.address
        return [
            Message(NetMsg.ADD_ROUTES, {name: description.address}, Recipient.NETWORK),
            Message(NetMsg.FORWARD_TO_ADDRESS, (description.address, [
                Message(NetMsg.JOIN_RESULT, (True, "", self._routes()), Recipient.NETWORK)]), Recipient.NETWORK),
        ]

    def _propagate_routes(self, _key: Any, now: int) -> List[Output]:
        """Send the routes of recent joiners to every other member, one message each."""
        new, self._new_routes = self._new_routes, {}
        out: List[Output] = []
        for other in self.members:
            routes = {name: address for name, address in new.items() if name != other}
            if other != self.ensemble and routes:
                out.append(_to(other, Message(NetMsg.ADD_ROUTES, routes, Recipient.NETWORK)))
        return out

    def _refuse(self, address: Any, reason: str) -> List[Output]:
        self.counters.incr("refused.join")
        self.log.warning("refused a join: %s", reason)
        if not isinstance(address, str) or not address:
            return []
        reply = Message(NetMsg.JOIN_RESULT, (False, reason, {}), Recipient.NETWORK)
        return [Message(NetMsg.FORWARD_TO_ADDRESS, (address, [reply]), Recipient.NETWORK)]

    def _routes(self) -> Dict[str, str]:
        routes = {name: d.address for name, d in self.members.items()}
        routes[self.ensemble] = self.address
        return routes

    # -- deploying ------------------------------------------------------------------

    def _instantiate_and_map(self, payload: Any, now: int) -> List[Output]:
        graph_doc, options_doc = payload
        options = RunOptions.from_wire(options_doc)
        if self.app is not None and not self.app.done:
            self.log.error("refused to deploy: app %s is still %s; tear it down first", self.app.id, self.app.phase)
            self.counters.incr("refused.app_running")
            return []
        try:
            graph = graphfile.from_document(graph_doc, source="graph")
            hosts = [d for name, d in self.members.items() if name != self.ensemble]
            if not hosts and self.ensemble in self.members:
                hosts = [self.members[self.ensemble]]
            mapping = map_graph(graph, hosts, options.strategy, random.Random(options.seed))
        except ProgramError as exc:
            self._remember(App("app-%d" % (self._deployments + 1), None, options, {}, phase=FAILED, error=str(exc)))
            self.log.warning("cannot deploy: %s", exc)
            return []
        app = App("%s-%d" % (graph.name, self._deployments + 1), graph, options, mapping)
        self._remember(app)
        out = self._deploy(app)
        self.timers.schedule(now + options.deploy_timeout, self._deploy_timed_out, app)
        return out

    def _remember(self, app: App) -> None:
        self._deployments += 1
        self.apps.append(app)
        del self.apps[:-MAX_APPS]

    def _deploy(self, app: App) -> List[Output]:
        graph = app.graph
        fed: Dict[str, List[int]] = {spec.name: [] for spec in graph.sqs}
        for arc in graph.arcs:
            fed[arc.target].append(arc.input)
        forwards = forward_parts(graph, app.mapping)
        program = program_to_wire(graph.program)
        out: List[Output] = []
        for ensemble in app.ensembles:
            specs = [s for s in graph.sqs if app.mapping[s.name] == ensemble]
            docs = [graphfile.sq_to_document(s) for s in specs]
            needed = {self.ensemble}
            for spec in specs:
                for row in forwards[spec.name]["destinations"]:
                    needed.update(dest[0] for dest in row)
            routes = {name: address for name, address in self._routes().items() if name in needed}
            out.append(_to(
                ensemble,
                Message(SyncMsg.INSTANTIATE_SQS,
                        (app.id, [{"sq": d, "fed": sorted(fed[d["name"]])} for d in docs]), Recipient.INPUT_TOKENS),
                Message(ExecuteMsg.INSTANTIATE_SQS, (app.id, program, docs), Recipient.EXECUTE),
                Message(NetMsg.INSTANTIATE_SQS, (app.id, [forwards[s.name] for s in specs], routes), Recipient.NETWORK),
            ))
            app.waiting.update((ensemble, p.value) for p in _PROCESSES)
        self.log.info("deploying %s on %s", app.id, ", ".join(app.ensembles))
        return out

    def _ready(self, payload: Any, now: int) -> List[Output]:
        app_id, ensemble, process, errors = payload
        app = self._find(app_id)
        if app is None or app.phase != DEPLOYING:
            self.counters.incr("late_acknowledgements")
            return []
        app.waiting.discard((ensemble, process))
        app.deploy_errors.extend(str(e) for e in errors)
        if app.waiting:
            return []
        if app.deploy_errors:
            return self._fail(app, "deployment failed: " + "; ".join(app.deploy_errors), now)
        return self._start(app, now)

    def _start(self, app: App, now: int) -> List[Output]:
        app.phase = RUNNING
        app.t0 = t0 = now + app.options.start_delay
        stop = t0 + app.options.duration if app.options.duration is not None else FOREVER
        window = Interval(t0, stop)
        by_ensemble: Dict[str, list] = {}
        for spec in app.graph.sources():
            by_ensemble.setdefault(app.mapping[spec.name], []).append((spec.name, window))
        out: List[Output] = [
            _to(ensemble, Message(SyncMsg.START_SQS, (app.id, starts), Recipient.INPUT_TOKENS))
            for ensemble, starts in by_ensemble.items()
        ]
        if app.options.duration is not None:
            self.timers.schedule(stop + app.options.drain, self._end_of_run, app)
        self.log.info("%s running from t=%d µs", app.id, t0)
        return out

    def _deploy_timed_out(self, app: App, now: int) -> List[Output]:
        if app.phase != DEPLOYING:
            return []
        missing = sorted({ensemble for ensemble, _ in app.waiting})
        return self._fail(app, "deployment timed out waiting for %s" % ", ".join(missing), now)

    # -- running ----------------------------------------------------------------------

    def _log_output(self, record: Any, now: int) -> List[Output]:
        sq, port, value, start, stop, clock, ensemble = record
        app = self.app
        if app is None or app.phase not in (RUNNING, STOPPING):
            self.counters.drop("output_after_run")
            return []
        app.outputs += 1
        self.sink(OutputRecord(sq, port, value, start, stop, clock, ensemble, now))
        return []

    def _sq_error(self, payload: Any, now: int) -> List[Output]:
        app_id, ensemble, sq, line, text = payload
        app = self._find(app_id)
        if app is None:
            return []
        app.sq_error_count += 1
        if len(app.sq_errors) < MAX_KEPT_ERRORS:
            app.sq_errors.append((ensemble, sq, line, text))
        self.log.warning("SQ %s on %s: %s", sq, ensemble, line)
        return []

    def _delivery_failed(self, payload: Any, now: int) -> List[Output]:
        """The transport gave up on an ensemble: a deployment or teardown waiting
        for it ends now, with the reason, instead of at its timeout."""
        names, reason = payload
        app = self.app
        if app is None or app.done:
            return []
        lost = sorted(set(names) & set(app.ensembles))
        if not lost:
            return []
        note = "could not deliver to %s: %s" % (", ".join(lost), reason)
        if app.phase == DEPLOYING:
            return self._fail(app, note, now)
        if app.phase == STOPPING:
            app.waiting = {(e, p) for e, p in app.waiting if e not in lost}
            app.error = "%s; %s" % (app.error, note) if app.error else note
            if not app.waiting:
                self._finish(app)
        return []

    # -- tearing down ----------------------------------------------------------------

    def _teardown_request(self, app_id: Any, now: int) -> List[Output]:
        app = self.app if app_id is None else self._find(app_id)
        if app is None or app.done or app.phase == STOPPING:
            return []
        return self._teardown(app, now)

    def _end_of_run(self, app: App, now: int) -> List[Output]:
        return self._teardown(app, now) if app.phase == RUNNING else []

    def _fail(self, app: App, error: str, now: int) -> List[Output]:
        app.error = error
        self.log.warning("%s: %s", app.id, error)
        return self._teardown(app, now)

    def _teardown(self, app: App, now: int) -> List[Output]:
        app.phase = STOPPING
        app.waiting = {(ensemble, p.value) for ensemble in app.ensembles for p in _PROCESSES}
        self.timers.schedule(now + app.options.teardown_timeout, self._teardown_timed_out, app)
        return [
            _to(ensemble,
                Message(SyncMsg.REMOVE_SQS, app.id, Recipient.INPUT_TOKENS),
                Message(ExecuteMsg.REMOVE_SQS, app.id, Recipient.EXECUTE),
                Message(NetMsg.REMOVE_SQS, app.id, Recipient.NETWORK))
            for ensemble in app.ensembles
        ]

    def _removed(self, payload: Any, now: int) -> List[Output]:
        app_id, ensemble, process, report = payload
        app = self._find(app_id)
        if app is None or app.phase != STOPPING or (ensemble, process) not in app.waiting:
            self.counters.incr("late_acknowledgements")
            return []
        app.waiting.discard((ensemble, process))
        if isinstance(report, dict):
            app.reports.append((ensemble, process, report))
        if not app.waiting:
            self._finish(app)
        return []

    def _teardown_timed_out(self, app: App, now: int) -> List[Output]:
        if app.phase == STOPPING:
            missing = sorted({ensemble for ensemble, _ in app.waiting})
            note = "no teardown report from %s" % ", ".join(missing)
            app.error = "%s; %s" % (app.error, note) if app.error else note
            self._finish(app)
        return []

    def _finish(self, app: App) -> None:
        app.phase = FAILED if app.error else FINISHED
        self.log.info("%s %s", app.id, app.phase)

    def _find(self, app_id: Any) -> Optional[App]:
        for app in reversed(self.apps):
            if app.id == app_id:
                return app
        return None

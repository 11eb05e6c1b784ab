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
from typing import Any, Dict, List, Optional, Tuple

from appliance.ipc import (
    ClientMsg,
    ExecuteMsg,
    Message,
    NetMsg,
    Output,
    Recipient,
    RuntimeMsg,
    SyncMsg,
)
from appliance.mapping import assign_mapping, map_graph
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
from appliance.runtime.core import Core, status_reply
from appliance.runtime.network import HEARTBEAT_INTERVAL, RUNTIME_MANAGER
from appliance.system import EnsembleDescription
from appliance.system.description import MAX_ENSEMBLES, SystemFileError
from appliance.timing import FOREVER, Interval

#: Deployments remembered (the newest); older ones are forgotten.
MAX_APPS = 16
#: Cluster status requests whose members' answers are still relayed (the newest).
MAX_RELAYS = 64
#: Join refusals remembered as said (the newest): an ensemble asking again, refused
#: for the same reason, is counted but not logged again.
MAX_REFUSALS_SAID = 64
#: Every HEARTBEAT_INTERVAL the runtime manager looks for silent members; one that sent
#: no heartbeat through this many looks (15 to 20 s) has gone and is dropped.
SILENT_LOOKS = 4

_PROCESSES = (Recipient.INPUT_TOKENS, Recipient.EXECUTE, Recipient.NETWORK)


def _to(ensemble: str, *messages: Message) -> Message:
    return Message(NetMsg.FORWARD, (ensemble, list(messages)), Recipient.NETWORK)


class RuntimeManagerCore(Core):
    """Runs on the runtime-manager ensemble, beside its three ordinary processes.

    The runtime-manager ensemble is named after it (``runtime-manager``) and
    joins itself like any other, so it hosts SQs like any other.

    What a client (the command that runs it, the simulated harness) needs
    comes out as ``ClientMsg`` messages: each output record, each member that
    joins, each change of an app's phase (with its summary when it is done),
    and the answer to ``STATUS``.
    """

    recipient = Recipient.RUNTIME_MANAGER

    def __init__(self, address: str, name: str = RUNTIME_MANAGER, max_members: int = MAX_ENSEMBLES) -> None:
        super().__init__(name)
        self.address = address
        self.max_members = max_members
        self.members: OrderedDict[str, EnsembleDescription] = OrderedDict()
        #: Each member's clock offset to this one's (its clock minus this one's) and the
        #: round trip it was measured over, as the member reported it after joining.
        self.clocks: Dict[str, Tuple[int, int]] = {}
        #: Per member (this ensemble's own not among them): looks since its last heartbeat,
        #: and the nonce of the join it was accepted with (its heartbeats and LEAVE carry it).
        self._silent: Dict[str, int] = {}
        self._nonces: Dict[str, str] = {}
        #: The nonces of the joins it accepted (the newest): a REJOIN says whether it numbered
        #: the apps of the join it answers, so the ensemble knows whether to forget them.
        self._accepted: OrderedDict[str, None] = OrderedDict()
        self._refusals_said: OrderedDict[Tuple[str, str], None] = OrderedDict()
        self.local_timers.schedule_in(HEARTBEAT_INTERVAL, self._look_for_silent_members)
        #: Status requests relayed to the members: relay id -> the client's request id.
        self._relays: OrderedDict[Any, Any] = OrderedDict()
        self._relay_count = 0
        self.apps: List[App] = []
        self._deployments = 0
        self.on(RuntimeMsg.JOIN, self._join)
        self.on(RuntimeMsg.HEARTBEAT, self._heartbeat)
        self.on(RuntimeMsg.LEAVE, self._leave)
        self.on(RuntimeMsg.CLOCK_PROBE, self._clock_probe)
        self.on(RuntimeMsg.MEMBER_CLOCK, self._member_clock)
        self.on(RuntimeMsg.CLUSTER_STATUS, self._cluster_status)
        self.on(RuntimeMsg.MEMBER_STATUS, self._member_status)
        self.on(RuntimeMsg.SUBSCRIBED, self._subscribed)
        self.on(RuntimeMsg.INSTANTIATE_AND_MAP, self._instantiate_and_map)
        self.on(RuntimeMsg.SQS_READY, self._ready)
        self.on(RuntimeMsg.TEARDOWN, self._teardown_request)
        self.on(RuntimeMsg.SQS_REMOVED, self._removed)
        self.on(RuntimeMsg.LOG_OUTPUT, self._log_output)
        self.on(RuntimeMsg.SQ_ERROR, self._sq_error)
        self.on(RuntimeMsg.DELIVERY_FAILED, self._delivery_failed)
        self.on(RuntimeMsg.END, self._stopping)

    @property
    def app(self) -> Optional[App]:
        """The newest deployment, if any."""
        return self.apps[-1] if self.apps else None

    # -- joining ------------------------------------------------------------------

    def _join(self, doc: Any, now: int) -> List[Output]:
        address = doc.get("address") if isinstance(doc, dict) else None
        nonce = doc.get("nonce", "") if isinstance(doc, dict) else ""
        if not isinstance(nonce, str):
            nonce = ""
        try:
            description = EnsembleDescription.from_wire(doc, "join")
        except SystemFileError as exc:
            return self._refuse(address, str(exc), nonce)
        name = description.name
        known = self.members.get(name)
        if name == self.ensemble and description.address != self.address:
            return self._refuse(description.address, "the name %r is the runtime manager's" % name, nonce)
        if known is not None and known.address != description.address:
            return self._refuse(description.address, "ensemble name %r is taken by %s" % (name, known.address),
                                nonce)
        if known is None and len(self.members) >= self.max_members:
            return self._refuse(description.address, "this runtime manager takes at most %d ensembles"
                                % self.max_members, nonce)
        self.members[name] = description
        self.log.info("ensemble %s joined from %s with components [%s]", name, description.address,
                      ", ".join(description.component_names()))
        out: List[Output] = []
        if name != self.ensemble:
            self._silent[name] = 0
            if known is not None and nonce != self._nonces.get(name):
                # A new join, not this one asked again: it restarted, or lost this runtime
                # manager, and its part of an app is gone.
                out.extend(self._ensembles_lost([name], "ensemble %s joined again (it restarted, or lost the "
                                                "runtime manager)" % name, now, running_app_fails=True))
            self._nonces[name] = nonce
            self._accepted[nonce] = None
            while len(self._accepted) > 2 * self.max_members:
                self._accepted.popitem(last=False)
        # The joiner learns the runtime manager's route only: the routes to other members
        # travel with the deployment that needs them (a member tells nobody about the
        # others, so a join costs the same with 3 members or 3,000).
        routes = {self.ensemble: self.address, name: description.address}
        if name == self.ensemble:  # its own clock: no offset to measure
            self.clocks[name] = (0, 0)
            out.append(Message(ClientMsg.MEMBER, (name, description.address, 0, 0), Recipient.CLIENT))
        return out + [
            Message(NetMsg.ADD_ROUTES, {name: description.address}, Recipient.NETWORK),
            Message(NetMsg.FORWARD_TO_ADDRESS, (description.address, [
                Message(NetMsg.JOIN_RESULT, (True, "", routes, nonce), Recipient.NETWORK)]), Recipient.NETWORK),
        ]

    def _heartbeat(self, payload: Any, now: int) -> List[Output]:
        """A member is alive. One this runtime manager does not know (it dropped it as
        silent, or the sender's name is another's) is told to join again."""
        name, address, nonce = payload
        member = self.members.get(name)
        if member is not None and member.address == address and name in self._silent:
            if nonce == self._nonces[name]:
                self._silent[name] = 0
            else:  # from before its current join (delayed, or from its previous start)
                self.counters.incr("stale_heartbeats")
            return []
        self.counters.incr("heartbeats_from_non_members")
        if not isinstance(address, str):
            return []
        known = isinstance(nonce, str) and nonce in self._accepted
        rejoin = Message(NetMsg.REJOIN, (name, nonce, "it has no member %s at %s" % (name, address), known),
                         Recipient.NETWORK)
        return [Message(NetMsg.FORWARD_TO_ADDRESS, (address, [rejoin]), Recipient.NETWORK)]

    def _stopping(self, _payload: Any, now: int) -> List[Output]:
        """This runtime manager stops: each member hears so now, as a REJOIN for its current
        join, and removes its part of the app and asks to join again at once, rather than run
        it on until its transport gives up on this manager (12 to 26 s)."""
        return [_to(name, Message(NetMsg.REJOIN, (name, nonce, "it stopped", False), Recipient.NETWORK))
                for name, nonce in self._nonces.items() if name in self.members]

    def _leave(self, payload: Any, now: int) -> List[Output]:
        name, address, nonce = payload
        member = self.members.get(name)
        if member is None or member.address != address or name not in self._nonces or nonce != self._nonces[name]:
            self.counters.incr("refused.leave")
            return []
        return self._member_lost(name, "it stopped", now)

    def _look_for_silent_members(self, _key: Any, now: int) -> List[Output]:
        self.local_timers.schedule_in(HEARTBEAT_INTERVAL, self._look_for_silent_members)
        out: List[Output] = []
        for name in list(self._silent):
            self._silent[name] += 1
            if self._silent[name] >= SILENT_LOOKS:
                out.extend(self._member_lost(name, "no heartbeat for %d s" % (
                    (SILENT_LOOKS - 1) * HEARTBEAT_INTERVAL // 1_000_000), now))
        return out

    def _member_lost(self, name: str, why: str, now: int) -> List[Output]:
        """A member is gone: its name is free, its route dropped, and an app it had a
        part in fails (its part's outputs will never come)."""
        self.members.pop(name, None)
        self.clocks.pop(name, None)
        self._silent.pop(name, None)
        self._nonces.pop(name, None)
        self.counters.incr("members_left")
        self.log.warning("ensemble %s left: %s", name, why)
        return [Message(ClientMsg.MEMBER_LEFT, (name, why), Recipient.CLIENT),
                Message(NetMsg.REMOVE_ROUTES, [name], Recipient.NETWORK)] + self._ensembles_lost(
            [name], "ensemble %s left: %s" % (name, why), now, running_app_fails=True)

    def _clock_probe(self, payload: Any, now: int) -> List[Output]:
        name, t1 = payload
        if name not in self.members:
            self.counters.incr("refused.clock_probe_from_stranger")
            return []
        return [_to(name, Message(NetMsg.CLOCK_REPLY, (t1, now), Recipient.NETWORK))]

    def _member_clock(self, payload: Any, now: int) -> List[Output]:
        """A member measured its clock against this one: it has joined, fully."""
        name, offset, delay = payload
        member = self.members.get(name)
        if member is None or type(offset) is not int or type(delay) is not int:
            self.counters.incr("refused.clock_report")
            return []
        self.clocks[name] = (offset, delay)
        self.log.info("ensemble %s: clock %+.3f ms off the runtime manager's (round trip %.3f ms)",
                      name, offset / 1000, delay / 1000)
        return [Message(ClientMsg.MEMBER, (name, member.address, offset, delay), Recipient.CLIENT)]

    def _cluster_status(self, request: Any, now: int) -> List[Output]:
        """This process's status, and a status request to every member's three processes,
        whose answers come back as MEMBER_STATUS and go to the client as ``member/process``."""
        self._relay_count += 1
        relay = ("relay", self._relay_count)
        self._relays[relay] = request
        while len(self._relays) > MAX_RELAYS:
            self._relays.popitem(last=False)
        out: List[Output] = [status_reply(request, self.process, self.status(now))]
        for name in self.members:
            if name != self.ensemble:
                out.append(_to(name, Message(SyncMsg.STATUS, relay, Recipient.INPUT_TOKENS),
                               Message(ExecuteMsg.STATUS, relay, Recipient.EXECUTE),
                               Message(NetMsg.STATUS, relay, Recipient.NETWORK)))
        return out

    def _member_status(self, payload: Any, now: int) -> List[Output]:
        relay, ensemble, process, status = payload
        request = self._relays.get(relay) if isinstance(relay, tuple) else None
        if request is None or ensemble not in self.members:
            self.counters.incr("late_status")
            return []
        return [status_reply(request, "%s/%s" % (ensemble, process), status)]

    def _subscribed(self, address: Any, now: int) -> List[Output]:
        """A client at ``address`` subscribed: the members and the newest app, as they are
        now, for it alone (the others heard them as they came: to them it would be news)."""
        if type(address) is not str:
            raise TypeError("SUBSCRIBED names the client's address, got %r" % (address,))
        told: List[Message] = [Message(ClientMsg.MEMBER, (name, self.members[name].address) + clock, Recipient.CLIENT)
                               for name, clock in self.clocks.items() if name in self.members]
        if self.app is not None:
            told.append(self._app_report(self.app))
        return [Message(NetMsg.FORWARD_TO_ADDRESS, (address, told), Recipient.NETWORK)] if told else []

    def _refuse(self, address: Any, reason: str, nonce: str) -> List[Output]:
        self.counters.incr("refused.join")
        said = (str(address), reason)
        if said not in self._refusals_said:
            self.log.warning("refused a join: %s", reason)
            self._refusals_said[said] = None
            if len(self._refusals_said) > MAX_REFUSALS_SAID:
                self._refusals_said.popitem(last=False)
        if not isinstance(address, str) or not address:
            return []
        reply = Message(NetMsg.JOIN_RESULT, (False, reason, {}, nonce), Recipient.NETWORK)
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
            reason = "app %s is still %s; tear it down first" % (self.app.id, self.app.phase)
            self.log.error("refused to deploy: %s", reason)
            self.counters.incr("refused.app_running")
            # The running app's report as it is, telling the requesting client (by its token) why not.
            return [Message(ClientMsg.APP, dict(self.app.report(), refused=reason, request=options.request),
                            Recipient.CLIENT)]
        name = "app"  # until the graph document gives its name
        try:
            graph = graphfile.from_document(graph_doc, source="graph")
            name = graph.name
            mapping = map_graph(graph, self.hosts(), options.strategy, random.Random(options.seed))
        except ProgramError as exc:
            failed = App("%s-%d" % (name, self._deployments + 1), None, options, {}, phase=FAILED, error=str(exc))
            self._remember(failed)
            self.log.warning("cannot deploy: %s", exc)
            return [self._app_report(failed)]
        app = App("%s-%d" % (name, self._deployments + 1), graph, options, mapping)
        app.warnings.extend(self._clock_warnings(app))
        for warning in app.warnings:  # the app's reports carry them to the commands, which print them
            self.log.info("%s: %s", app.id, warning)
        self._remember(app)
        out = [self._app_report(app)] + self._deploy(app)
        self.local_timers.schedule_in(options.deploy_timeout, self._deploy_timed_out, app)
        return out

    def _clock_warnings(self, app: App) -> List[str]:
        """Ensembles whose clocks are too far from this one's for the app's streams to line up."""
        bound = app.options.max_clock_offset
        periods = [spec.stream.period for spec in app.graph.sqs if spec.stream is not None] if app.graph else []
        if bound is None:
            if not periods:
                return []
            bound = min(periods) // 4
        warnings = []
        for ensemble in app.ensembles:
            clock = self.clocks.get(ensemble)
            if clock is not None and abs(clock[0]) > bound:
                # Measured, not known: the true offset lies within half the round trip of it
                # (NTP's bound), which on one host is all a measured offset can be.
                warnings.append("ensemble %s's clock is %+.3f ms off the runtime manager's, more than %.3f ms (%s): "
                                "its samples will not line up with the others' (measured ±%.3f ms: half its round "
                                "trip)" % (
                                    ensemble, clock[0] / 1000, bound / 1000,
                                    "max_clock_offset" if app.options.max_clock_offset is not None
                                    else "a quarter of the smallest stream period", clock[1] / 2000))
        return warnings

    def hosts(self) -> List[EnsembleDescription]:
        """The ensembles a graph is mapped onto: every member that has joined, this one's own
        included. Joined means its clock is measured: a member that cannot answer the runtime
        manager (it refuses its signed control, say) never gets there, and is given no part."""
        return [d for name, d in self.members.items() if name in self.clocks]

    def _remember(self, app: App) -> None:
        self._deployments += 1
        self.apps.append(app)
        del self.apps[:-MAX_APPS]

    def _app_report(self, app: App) -> Message:
        return Message(ClientMsg.APP, app.report(), Recipient.CLIENT)

    def _deploy(self, app: App) -> List[Output]:
        graph = app.graph
        fed: Dict[str, List[int]] = {spec.name: [] for spec in graph.sqs}
        for arc in graph.arcs:
            fed[arc.target].append(arc.input)
        forwards = assign_mapping(graph, app.mapping)
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
                Message(ExecuteMsg.INSTANTIATE_SQS, (app.id, program, docs, app.options.sq_time_limit),
                        Recipient.EXECUTE),
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
        out: List[Output] = [self._app_report(app)] + [
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
        app_id, sq, port, value, start, stop, clock, ensemble = record
        app = self.app
        if app is None or app_id != app.id or app.phase not in (RUNNING, STOPPING):
            self.counters.drop("output_after_run")
            return []
        app.outputs += 1
        record = OutputRecord(app_id, sq, port, value, start, stop, clock, ensemble, now)
        return [Message(ClientMsg.OUTPUT, record, Recipient.CLIENT)]

    def _sq_error(self, payload: Any, now: int) -> List[Output]:
        app_id, ensemble, sq, line, text, inputs = payload
        app = self._find(app_id)
        if app is None:
            return []
        app.sq_error_count += 1
        if len(app.sq_errors) < MAX_KEPT_ERRORS:
            app.sq_errors.append((str(ensemble), str(sq), str(line), str(text), str(inputs)))
        self.log.info("SQ %s on %s: %s", sq, ensemble, line)  # the command reporting the app says it
        return []

    def _delivery_failed(self, payload: Any, now: int) -> List[Output]:
        """The transport gave up on an ensemble: a deployment or teardown waiting
        for it ends now, with the reason, instead of at its timeout."""
        names, reason = payload
        app = self.app
        lost = sorted(set(names) & set(app.ensembles)) if app is not None else []
        if not lost:
            return []
        return self._ensembles_lost(lost, "could not deliver to %s: %s" % (", ".join(lost), reason), now,
                                    running_app_fails=False)

    def _ensembles_lost(self, names: List[str], note: str, now: int, running_app_fails: bool) -> List[Output]:
        """Ensembles of the newest app that will not answer: a deployment fails at once, a
        teardown stops waiting for them, and a running app fails if ``running_app_fails``."""
        app = self.app
        if app is None or app.done:
            return []
        lost = set(names) & set(app.ensembles)
        if app.phase == STOPPING:  # one whose teardown reports are all in has nothing left to lose
            lost &= {ensemble for ensemble, _ in app.waiting}
        if not lost:
            return []
        if app.phase == STOPPING:
            app.error = "%s; %s" % (app.error, note) if app.error else note
            out: List[Output] = []
        elif app.phase == DEPLOYING or running_app_fails:
            out = self._fail(app, note, now)
        else:
            return []
        app.waiting = {(e, p) for e, p in app.waiting if e not in lost}
        if not app.waiting:
            out.extend(self._finish(app))
        return out

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
        """Tell the app's ensembles to remove it, and wait for their reports; not one
        that left (no route goes there: each message would be counted lost, ``no_route``)."""
        app.phase = STOPPING
        app.stopped = now
        present = [ensemble for ensemble in app.ensembles if ensemble in self.members]
        app.waiting = {(ensemble, p.value) for ensemble in present for p in _PROCESSES}
        self.local_timers.schedule_in(app.options.teardown_timeout, self._teardown_timed_out, app)
        return [self._app_report(app)] + [
            _to(ensemble,
                Message(SyncMsg.REMOVE_SQS, app.id, Recipient.INPUT_TOKENS),
                Message(ExecuteMsg.REMOVE_SQS, app.id, Recipient.EXECUTE),
                Message(NetMsg.REMOVE_SQS, app.id, Recipient.NETWORK))
            for ensemble in present
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
            return self._finish(app)
        return []

    def _teardown_timed_out(self, app: App, now: int) -> List[Output]:
        if app.phase == STOPPING:
            missing = sorted({ensemble for ensemble, _ in app.waiting})
            note = "no teardown report from %s" % ", ".join(missing)
            app.error = "%s; %s" % (app.error, note) if app.error else note
            return self._finish(app)
        return []

    def _finish(self, app: App) -> List[Output]:
        app.phase = FAILED if app.error else FINISHED
        self.log.info("%s %s", app.id, app.phase)
        return [self._app_report(app)]

    def status(self, now: int) -> Dict[str, Any]:
        status = super().status(now)
        status["members"] = [{"name": d.name, "address": d.address, "components": [c.to_wire() for c in d.components],
                              "clock_offset": self.clocks.get(d.name, (None, None))[0],
                              "clock_delay": self.clocks.get(d.name, (None, None))[1]}
                             for d in self.members.values()]
        status["apps"] = [{"app": app.id, "phase": app.phase, "error": app.error} for app in self.apps]
        app = self.app
        if app is not None:
            status["app"] = dict(app.report(), outputs=app.outputs, summary=app.summary())
        return status

    def _find(self, app_id: Any) -> Optional[App]:
        for app in reversed(self.apps):
            if app.id == app_id:
                return app
        return None

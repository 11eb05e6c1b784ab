"""Running a program end to end in simulation: what ``appliance simulate`` does.

The harness is every simulated ensemble's client: it learns what happens
from the messages the ensembles send on their local control channel (joins
answered, the app's phases and summary, status replies), as a command on a
device does, never by reading their cores.
"""
from __future__ import annotations

import gc
import logging
import random
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Dict, List, Optional

from appliance.components.drivers import DriverError, check_drivers
from appliance.ipc import ClientMsg, Message
from appliance.mapping import MappingError, map_graph
from appliance.net import TransportConfig
from appliance.net.impairment import Impairment
from appliance.program.errors import ProgramError
from appliance.program.model import Graph
from appliance.runtime.app import RUNNING, OutputRecord, RunOptions
from appliance.runtime.network import RUNTIME_MANAGER
from appliance.runtime.status import add_late_counts, transport_totals
from appliance.runtime.watchdog import Watchdog
from appliance.sim.drivers import ComponentWrite
from appliance.sim.ensemble import SimClock, SimEnsemble, SimRuntimeManager, SimWorld
from appliance.sim.link import derived_rng
from appliance.system import EnsembleDescription
from appliance.system.description import MAX_ENSEMBLES

log = logging.getLogger("appliance.sim")

#: Simulated time allowed for every ensemble to join before the run is abandoned.
JOIN_TIMEOUT = 30_000_000
#: Transport peers an ensemble may hold beyond the system's ensembles (the runtime
#: manager, and room for strangers without evicting anyone).
SPARE_PEERS = 16
#: How fast or slow an unsynchronised ensemble's clock runs, at most (a crystal's tolerance).
MAX_DRIFT_PPM = 100


def skewed_clock(seed: int, name: str, skew: int) -> SimClock:
    """An ensemble's clock, off the runtime manager's by up to ``skew`` µs either way and
    drifting up to MAX_DRIFT_PPM (both drawn from the seed and the name): unsynchronised."""
    if skew <= 0:
        return SimClock()
    rng = derived_rng(seed, "clock", name)
    return SimClock(rng.randint(-skew, skew), rng.randint(-MAX_DRIFT_PPM, MAX_DRIFT_PPM))


class SimulationError(ProgramError):
    """The simulated system could not run the program (join refused, placement impossible)."""


@dataclass
class SimulationResult:
    summary: Dict[str, Any]
    outputs: int
    link: Dict[str, int]
    mapping: Dict[str, str]
    transport: Dict[str, int] = field(default_factory=dict)
    #: Per ensemble, per process: its answer to STATUS after the run.
    ensembles: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    #: Distinct SQ errors (``summary["errors"]``).
    errors: List[Dict[str, Any]] = field(default_factory=list)
    #: Simulated ticks: every ensemble joined, the window opened (t0), the run ended.
    timeline: Dict[str, Optional[int]] = field(default_factory=dict)
    #: Per ensemble, its clock's offset to the runtime manager's as measured at join, and
    #: the round trip of that measurement (µs).
    clocks: Dict[str, Any] = field(default_factory=dict)
    #: Every write to a component, in the order they happened (``ComponentWrite``).
    writes: List[ComponentWrite] = field(default_factory=list)


def numbered_ensembles(count: int) -> List[EnsembleDescription]:
    """``count`` ensembles without components: ensemble-1 ... ensemble-N."""
    return [EnsembleDescription("ensemble-%d" % (i + 1)) for i in range(count)]


def transport_for(ensembles: int) -> TransportConfig:
    """A transport whose peer table holds every ensemble of the system, plus spares."""
    default = TransportConfig()
    return replace(default, max_peers=max(default.max_peers, ensembles + 1 + SPARE_PEERS))


#: The longest one-way delay (latency plus jitter, µs) of a simulated link: a round trip up to
#: the transport's rto_max. Beyond it every message is sent again before its acknowledgement can
#: come back, and from round trips of about 1.7 s messages fail and joins never complete.
MAX_ONE_WAY_DELAY = TransportConfig().rto_max // 2
_WHY_DELAY = "a round trip up to the transport's rto_max, %g s" % (TransportConfig().rto_max / 1e6)


def check_network_delays(ensembles: List[EnsembleDescription], impairment: Impairment) -> None:
    """Refuse, before anything runs, a simulated network slower than the transport carries:
    ``impairment``'s latency plus jitter, or a link of ``ensembles`` (either way) plus jitter."""
    if impairment.latency + impairment.jitter > MAX_ONE_WAY_DELAY:
        raise SimulationError("latency %g ms plus jitter %g ms is more than %g ms one way (%s)"
                              % (impairment.latency / 1000, impairment.jitter / 1000, MAX_ONE_WAY_DELAY / 1000,
                                 _WHY_DELAY))
    names = {description.name for description in ensembles}
    for description in ensembles:
        for other, link in sorted(description.links.items()):
            latency = link.get("latency", 0)
            if other in names and latency + impairment.jitter > MAX_ONE_WAY_DELAY:
                raise SimulationError("link %s-%s: latency %g ms plus jitter %g ms is more than the %g ms one way a "
                                      "simulated link carries (%s)"
                                      % (min(description.name, other), max(description.name, other), latency / 1000,
                                         impairment.jitter / 1000, MAX_ONE_WAY_DELAY / 1000, _WHY_DELAY))


def simulated_mapping(graph: Graph, ensembles: List[EnsembleDescription], strategy: str,
                      seed: int) -> Dict[str, str]:
    """Where a simulation of ``graph`` on ``ensembles`` places each SQ (what the simulated
    runtime manager will compute: its own ensemble, ``runtime-manager``, is a candidate
    like the others), refusing before anything runs a system that cannot run it: too many
    ensembles, the runtime manager's name taken, SQs no ensemble can host."""
    if len(ensembles) > MAX_ENSEMBLES:
        raise SimulationError("%d ensembles: a runtime manager takes at most %d" % (len(ensembles), MAX_ENSEMBLES))
    for description in ensembles:
        if description.name == RUNTIME_MANAGER:
            raise SimulationError("ensemble name %r is the runtime manager's; rename that ensemble" % RUNTIME_MANAGER)
        try:
            check_drivers(description.components, "ensemble '%s'" % description.name)
        except DriverError as exc:
            raise SimulationError(str(exc)) from None
    try:
        return map_graph(graph, list(ensembles) + [EnsembleDescription(RUNTIME_MANAGER)], strategy,
                         random.Random(seed))
    except MappingError as exc:
        raise SimulationError(str(exc)) from None


class _Client:
    """The harness, as the client of every simulated ensemble."""

    def __init__(self, world: SimWorld, members: List[str], progress: Optional[Callable[[int, int], None]],
                 duration: int) -> None:
        self.world = world
        self.members = frozenset(members)
        self.answers: Dict[str, Any] = {}
        self.clocks: Dict[str, Any] = {}
        self.all_answered = world.env.event()
        self.done = world.env.event()
        self.report: Optional[Dict[str, Any]] = None
        self.frozen = False
        self._progress = progress
        self._duration = duration

    def __call__(self, ensemble: SimEnsemble, message: Message) -> None:
        kind = message.msg_type
        if kind is ClientMsg.JOINED and ensemble.name in self.members and not message.payload[0]:
            self._answered(ensemble.name, message.payload)  # refused
        elif kind is ClientMsg.MEMBER and message.payload[0] in self.members:
            # Joined, clock measured: the runtime manager knows all it needs of it.
            name, _, offset, delay = message.payload
            self.clocks[name] = (offset, delay)
            self._answered(name, (True, ""))
        elif kind is ClientMsg.APP:
            self.report = report = message.payload
            if report["phase"] == RUNNING:
                self._running(report["t0"])
            if report["summary"] is not None and not self.done.triggered:
                self.done.succeed()

    def _answered(self, name: str, answer: Any) -> None:
        self.answers[name] = answer
        if len(self.answers) == len(self.members) and not self.all_answered.triggered:
            self.all_answered.succeed()

    def _running(self, t0: int) -> None:
        # The deployed programs and every ensemble's state live as long as the run:
        # out of the collector's reach, its sweeps during the run stay short.
        gc.freeze()
        self.frozen = True
        if self._progress is not None:
            self.world.env.process(_report_progress(self.world, self._progress, t0, self._duration))


def _link_latencies(world: SimWorld, members: List[SimEnsemble], impairment: Impairment) -> None:
    """A link the system file gives a latency takes it, both ways, in place of the default
    latency (its jitter, loss and the rest stay): what the mapper counted on for latency
    bounds is what the simulated network does."""
    by_name = {member.name: member for member in members}
    for member in members:
        for other, link in member.links.items():
            if "latency" in link and other in by_name:
                world.network.set_impairment(member.address, by_name[other].address,
                                             replace(impairment, latency=int(link["latency"])))


def simulate(graph: Graph, ensembles: List[EnsembleDescription], options: RunOptions,
             impairment: Impairment = Impairment(), sink: Callable[[OutputRecord], None] = lambda r: None,
             progress: Optional[Callable[[int, int], None]] = None, clock_skew: int = 0,
             sysfs_root: Optional[str] = None) -> SimulationResult:
    """Join ``ensembles`` to a simulated runtime manager, run ``graph`` for
    ``options.duration`` µs of simulated time, tear down, and report.

    ``clock_skew`` (µs) leaves each ensemble's clock unsynchronised (``skewed_clock``);
    the runtime manager's is the reference. ``sysfs_root`` is the tree ``sysfs:``
    drivers read (``<root>/sys/...``); without it they are simulated (``sim/drivers.py``).

    ``progress(done, total)`` is called about a hundred times while the
    streams sample: µs of the run window done, and its length. The same
    ``options.seed`` gives the same outputs, byte for byte.
    """
    if options.duration is None:
        raise SimulationError("a simulation needs a duration")
    check_network_delays(ensembles, impairment)
    simulated_mapping(graph, ensembles, options.strategy, options.seed)
    world = SimWorld(seed=options.seed, impairment=impairment, transport=transport_for(len(ensembles)),
                     sysfs_root=sysfs_root)
    client = _Client(world, [d.name for d in ensembles], progress, options.duration)
    rtm = SimRuntimeManager(world, sink=sink, client=client)
    members = [SimEnsemble(world, d.name, d.components, client=client,
                           clock=skewed_clock(options.seed, d.name, clock_skew)) for d in ensembles]
    for member, described in zip(members, ensembles):
        member.resources, member.links = dict(described.resources), dict(described.links)
    _link_latencies(world, members, impairment)
    for member in members:
        member.connect_to_ticktalk_network(rtm.address)
    world.env.run(until=world.env.any_of([client.all_answered, world.env.timeout(JOIN_TIMEOUT)]))
    refused = ["%s: %s" % (name, reason) for name, (accepted, reason) in client.answers.items() if not accepted]
    waiting = [m.name for m in members if m.name not in client.answers]
    if refused or waiting:
        raise SimulationError("ensembles could not join: %s" % "; ".join(
            refused + ["%s: no answer from the runtime manager" % name for name in waiting]))
    joined_at = world.now

    rtm.instantiate_and_map_graph(graph, options)
    limit = (world.now + options.deploy_timeout + options.start_delay + options.duration + options.drain
             + options.teardown_timeout)
    try:
        with Watchdog():  # an SQ that never returns would stop simulated time with it
            world.env.run(until=world.env.any_of([client.done, world.env.timeout(limit - world.now)]))
    finally:
        if client.frozen:
            gc.unfreeze()
    report = client.report
    if report is None:
        raise SimulationError("the runtime manager did not take the graph")
    if report["summary"] is None:
        raise SimulationError("the run did not finish by t=%d µs (phase: %s)" % (limit, report["phase"]))
    if progress is not None and report["t0"] is not None:
        progress(options.duration, options.duration)
    every: List[SimEnsemble] = [rtm] + members
    statuses = {ensemble.name: ensemble.status() for ensemble in every}
    summary = report["summary"]
    add_late_counts(summary, [status for processes in statuses.values() for status in processes.values()])
    return SimulationResult(
        summary=summary,
        outputs=summary["outputs"],
        link=dict(world.network.counters),
        mapping=dict(report["mapping"]),
        transport=_transport_totals(statuses),
        ensembles=statuses,
        errors=list(summary["errors"]),
        timeline={"joined": joined_at, "t0": report["t0"], "end": world.now},
        clocks=dict(client.clocks),
        writes=list(world.writes),
    )


def _transport_totals(statuses: Dict[str, Dict[str, Any]]) -> Dict[str, int]:
    """Summed over every ensemble and peer; each ensemble's own line goes to the log
    (``--debug`` shows it), as a device logs its transport counters at shutdown."""
    for name, processes in statuses.items():
        own = transport_totals([processes["network"]])
        log.info("%s transport: %s", name, ", ".join("%s %d" % kv for kv in own.items()))
    return transport_totals(processes["network"] for processes in statuses.values())


def _report_progress(world: SimWorld, progress: Callable[[int, int], None], t0: int, duration: int):
    step = max(1, duration // 100)
    if world.now < t0:
        yield world.env.timeout(t0 - world.now)
    while world.now < t0 + duration:
        progress(world.now - t0, duration)
        yield world.env.timeout(step)

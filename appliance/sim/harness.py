"""Running a program end to end in simulation: what ``appliance simulate`` does."""
from __future__ import annotations

import gc
import logging
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Dict, List, Optional

from appliance.net.impairment import Impairment
from appliance.program.errors import ProgramError
from appliance.program.model import Graph
from appliance.runtime.app import RUNNING, OutputRecord, RunOptions
from appliance.runtime.network import RUNTIME_MANAGER
from appliance.sim.ensemble import SimEnsemble, SimRuntimeManager, SimWorld
from appliance.system import EnsembleDescription

log = logging.getLogger("appliance.sim")

#: Simulated time allowed for every ensemble to join before the run is abandoned.
JOIN_TIMEOUT = 30_000_000


class SimulationError(ProgramError):
    """The simulated system could not run the program (join refused, deploy failed)."""


@dataclass
class SimulationResult:
    summary: Dict[str, Any]
    outputs: int
    link: Dict[str, int]
    mapping: Dict[str, str]
    transport: Dict[str, int] = field(default_factory=dict)
    ensembles: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    errors: List[Any] = field(default_factory=list)


def numbered_ensembles(count: int) -> List[EnsembleDescription]:
    """``count`` ensembles without components: ensemble-1 ... ensemble-N."""
    return [EnsembleDescription("ensemble-%d" % (i + 1)) for i in range(count)]


def simulate(graph: Graph, ensembles: List[EnsembleDescription], options: RunOptions,
             impairment: Impairment = Impairment(), sink: Callable[[OutputRecord], None] = lambda r: None,
             progress: Optional[Callable[[int, int], None]] = None) -> SimulationResult:
    """Join ``ensembles`` to a simulated runtime manager, run ``graph`` for
    ``options.duration`` µs of simulated time, tear down, and report.

    ``progress(simulated_now, planned_end)`` is called about a hundred times
    along the way. The same ``options.seed`` gives the same outputs, byte for byte.
    """
    if options.duration is None:
        raise SimulationError("a simulation needs a duration")
    for description in ensembles:
        if description.name == RUNTIME_MANAGER:
            raise SimulationError("ensemble name %r is the runtime manager's; rename that ensemble" % RUNTIME_MANAGER)
    world = SimWorld(seed=options.seed, impairment=impairment)
    rtm = SimRuntimeManager(world, sink=sink)
    members = [SimEnsemble(world, d.name, d.components) for d in ensembles]
    for member in members:
        member.connect_to_ticktalk_network(rtm.address)

    joined = world.env.event()

    def check_joined() -> None:
        if not joined.triggered and all(m.joined is not None for m in members):
            joined.succeed()

    for member in members:
        member.watch(check_joined)
    check_joined()
    world.env.run(until=world.env.any_of([joined, world.env.timeout(JOIN_TIMEOUT)]))
    refused = ["%s: %s" % (m.name, m.join_error) for m in members if m.joined is False]
    waiting = [m.name for m in members if m.joined is None]
    if refused or waiting:
        raise SimulationError("ensembles could not join: %s" % "; ".join(
            refused + ["%s: no answer from the runtime manager" % name for name in waiting]))

    finished = world.env.event()
    frozen = []

    def check_finished() -> None:
        app = rtm.app
        if app is not None and app.phase == RUNNING and not frozen:
            # The deployed programs and every ensemble's state live as long as the run:
            # out of the collector's reach, its sweeps during the run stay short.
            gc.freeze()
            frozen.append(True)
        if app is not None and app.done and not finished.triggered:
            finished.succeed()

    rtm.watch(check_finished)
    options = replace(options, strategy=options.strategy if len(members) > 1 else "trivial")
    rtm.instantiate_and_map_graph(graph, options)
    start = world.now
    planned = start + options.start_delay + options.duration + options.drain
    limit = planned + options.deploy_timeout + options.teardown_timeout
    if progress is not None:
        world.env.process(_report_progress(world, progress, start, planned))
    try:
        world.env.run(until=world.env.any_of([finished, world.env.timeout(limit - world.now)]))
    finally:
        if frozen:
            gc.unfreeze()
    app = rtm.app
    if app is None:
        raise SimulationError("the runtime manager did not take the graph")
    if not app.done:
        raise SimulationError("the run did not finish by t=%d µs (phase: %s)" % (limit, app.phase))
    if progress is not None:
        progress(planned, planned)
    every = [rtm] + members
    summary = app.summary()
    # Add what the teardown reports cannot hold: the shells' own counts (undecodable
    # datagrams, unsendable values), the runtime manager's, and everything counted
    # after a core reported (cores start counting afresh at teardown).
    for ensemble in every:
        for name, n in ensemble.stats()["counters"].items():
            kind, _, cause = name.partition(".")
            if kind in ("dropped", "refused"):
                table = summary["drops" if kind == "dropped" else "refused"]
                table[cause] = table.get(cause, 0) + n
    return SimulationResult(
        summary=summary,
        outputs=app.outputs,
        link=dict(world.network.counters),
        mapping=dict(app.mapping),
        transport=_transport_totals(every),
        ensembles={e.name: e.stats() for e in every},
        errors=list(app.sq_errors),
    )


#: Transport counters the summary adds up over every ensemble and peer.
TRANSPORT_TOTALS = ("sent", "delivered", "retransmitted", "failed", "duplicates", "queued",
                    "bad_crc", "bad_auth", "truncated", "replayed")


def _transport_totals(ensembles: List[SimEnsemble]) -> Dict[str, int]:
    """Summed over every ensemble and peer; each ensemble's own line goes to the log
    (``--debug`` shows it), as a device logs its transport counters at shutdown."""
    totals = dict.fromkeys(TRANSPORT_TOTALS, 0)
    for ensemble in ensembles:
        own = dict.fromkeys(TRANSPORT_TOTALS, 0)
        for counters in ensemble.endpoint.stats().values():
            for name in TRANSPORT_TOTALS:
                own[name] += counters.get(name, 0)
        log.info("%s transport: %s", ensemble.name, ", ".join("%s %d" % kv for kv in own.items()))
        for name, n in own.items():
            totals[name] += n
    return totals


def _report_progress(world: SimWorld, progress: Callable[[int, int], None], start: int, planned: int):
    step = max(1, (planned - start) // 100)
    while world.now < planned:
        progress(world.now, planned)
        yield world.env.timeout(step)

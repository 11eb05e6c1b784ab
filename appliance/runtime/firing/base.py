"""What every firing rule shares: the SQ's ports, constants and counters."""
from __future__ import annotations

from typing import Dict, Iterable, List, Optional, Tuple

from appliance.ipc import ExecutionContext
from appliance.program.model import SQSpec
from appliance.program.token import EMPTY, Token
from appliance.runtime.counters import Counters
from appliance.runtime.timers import Timers
from appliance.timing import Interval


class Rule:
    """The synchronization half of one SQ: decides when it fires and on what.

    ``arc_ports`` are the data inputs fed by arcs; the remaining inputs are
    constants whose values are baked into ``template``. An SQ without arc-fed
    inputs fires on its trigger port (start tokens, Plan-B arcs).
    """

    def __init__(self, spec: SQSpec, fed: Iterable[int], timers: Timers, counters: Counters) -> None:
        self.spec = spec
        self.name = spec.name
        self.clock = spec.clock
        n = len(spec.inputs)
        self.arc_ports: List[int] = sorted(p for p in set(fed) if p < n)
        self.sticky = frozenset(i for i, name in enumerate(spec.inputs) if name in spec.sticky)
        self.template: List[object] = [spec.constants.get(name, EMPTY) for name in spec.inputs]
        self.timers = timers
        self.counters = counters
        self.stopped = False
        # The ports tokens may arrive on: the arc-fed inputs, or else the trigger.
        self.ports = frozenset(self.arc_ports) if self.arc_ports else frozenset([spec.trigger_port])

    def context(self, interval: Interval, chosen: Dict[int, Token], tick: Optional[int] = None) -> ExecutionContext:
        values = list(self.template)
        for port, token in chosen.items():
            if port < len(values):
                values[port] = token.value
        return ExecutionContext(self.name, interval, tuple(values), tick)

    def on_token(self, token: Token, now: int) -> List[ExecutionContext]:
        raise NotImplementedError

    def on_start(self, window: Interval, now: int) -> List[ExecutionContext]:
        """The runtime manager starts the SQ: only SQs without arc inputs get this."""
        return []

    def stop(self) -> Tuple[int, Dict[str, int]]:
        """Stop firing; return (tokens still held, rule statistics)."""
        self.stopped = True
        return 0, {}


class TriggerRule(Rule):
    """An SQ with no arc-fed inputs: fires once per trigger (start token or Plan-B arc)."""

    def on_token(self, token: Token, now: int) -> List[ExecutionContext]:
        return [self.context(token.interval, {})]

    def on_start(self, window: Interval, now: int) -> List[ExecutionContext]:
        if window.start <= now:
            return [self.context(window, {})]
        self.timers.schedule(window.start, self._fire_at_start, window)  # with the first samples, not before
        return []

    def _fire_at_start(self, window: Interval, now: int) -> List[ExecutionContext]:
        return [] if self.stopped else [self.context(window, {})]


class ImmediateRule(Rule):
    """Merge: every token fires at once; the other inputs are EMPTY."""

    def on_token(self, token: Token, now: int) -> List[ExecutionContext]:
        return [self.context(token.interval, {token.tag.port: token})]

"""Firing rules: when an SQ fires, and on which tokens."""
from __future__ import annotations

from typing import Iterable

from appliance.program.model import DEADLINE, IMMEDIATE, SEQUENTIAL, STREAM, SQSpec
from appliance.runtime.counters import Counters
from appliance.runtime.firing.base import ImmediateRule, Rule, TriggerRule
from appliance.runtime.firing.deadline import DeadlineRule
from appliance.runtime.firing.stream import StreamRule
from appliance.runtime.firing.timed import SequentialRule, TimedRule
from appliance.runtime.timers import Timers


def make_rule(spec: SQSpec, fed: Iterable[int], timers: Timers, counters: Counters) -> Rule:
    """The rule object for one SQ, given which of its inputs arcs feed."""
    fed = list(fed)
    if spec.firing == STREAM:
        return StreamRule(spec, fed, timers, counters)
    if spec.firing == DEADLINE:
        return DeadlineRule(spec, fed, timers, counters)
    if not any(p < len(spec.inputs) for p in fed):
        return TriggerRule(spec, fed, timers, counters)
    if spec.firing == IMMEDIATE:
        return ImmediateRule(spec, fed, timers, counters)
    if spec.firing == SEQUENTIAL:
        return SequentialRule(spec, fed, timers, counters)
    return TimedRule(spec, fed, timers, counters)


__all__ = ["Rule", "make_rule"]

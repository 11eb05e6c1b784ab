"""Time in the TickTalk model: clocks and half-open tick intervals.

Every time in the runtime is an integer number of ticks. The root clock ticks
in microseconds; derived clocks tick every ``period`` parent ticks from an
``epoch``. Floats never enter: the original runtime lost whole streams to
float rounding of simulated time.
"""
from appliance.timing.clock import ROOT, ROOT_NAME, TICKS_PER_SECOND, Clock, ClockSet, ms_to_ticks
from appliance.timing.interval import FOREVER, NEVER, Interval

__all__ = [
    "Clock",
    "ClockSet",
    "FOREVER",
    "Interval",
    "NEVER",
    "ROOT",
    "ROOT_NAME",
    "TICKS_PER_SECOND",
    "ms_to_ticks",
]

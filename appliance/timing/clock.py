"""Clocks: the root clock (microseconds) and clocks derived from it."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional

from appliance.timing.interval import FOREVER, NEVER, Interval

ROOT_NAME = "root"
TICKS_PER_SECOND = 1_000_000


def ms_to_ticks(ms: float, what: str = "time") -> int:
    """Milliseconds as written in a program to root ticks, refusing sub-tick values.

    ``period_ms=0.5`` is fine (500 ticks); ``period_ms=0.0005`` is not a whole
    tick and is refused rather than rounded, so a program never samples at a
    rate other than the one it says.
    """
    if isinstance(ms, bool) or not isinstance(ms, (int, float)):
        raise TypeError("%s must be a number of milliseconds, got %r" % (what, ms))
    ticks = ms * 1000
    if not math.isfinite(ticks):
        raise ValueError("%s must be a finite number of milliseconds, got %r" % (what, ms))
    rounded = int(round(ticks))
    if abs(ticks - rounded) > 1e-6:
        raise ValueError("%s=%r ms is not a whole number of microseconds" % (what, ms))
    return rounded


@dataclass(frozen=True)
class Clock:
    """A clock that ticks once every ``period`` ticks of ``parent``, with tick 0 at
    parent tick ``epoch``. The root clock has no parent."""

    name: str
    period: int = 1
    epoch: int = 0
    parent: Optional[str] = None

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ValueError("a clock needs a name")
        if type(self.period) is not int or self.period < 1:
            raise ValueError("clock %r: period must be a positive int, got %r" % (self.name, self.period))
        if type(self.epoch) is not int:
            raise ValueError("clock %r: epoch must be an int, got %r" % (self.name, self.epoch))
        if (self.parent is None) != (self.name == ROOT_NAME):
            raise ValueError("clock %r: only the root clock has no parent" % self.name)

    def to_dict(self) -> dict:
        return {"name": self.name, "period": self.period, "epoch": self.epoch, "parent": self.parent}


ROOT = Clock(ROOT_NAME)


class ClockSet:
    """The clocks a program uses, resolved by name (the only identity that crosses a wire)."""

    def __init__(self, clocks: Iterable[Clock] = ()) -> None:
        self._clocks: Dict[str, Clock] = {ROOT_NAME: ROOT}
        for clock in clocks:
            self.add(clock)

    def add(self, clock: Clock) -> None:
        known = self._clocks.get(clock.name)
        if known is not None:
            if known != clock:
                raise ValueError("clock %r is already defined differently" % clock.name)
            return
        if clock.parent not in self._clocks:
            raise ValueError("clock %r: parent clock %r is not defined" % (clock.name, clock.parent))
        self._clocks[clock.name] = clock

    def __contains__(self, name: object) -> bool:
        return name in self._clocks

    def __iter__(self):
        return iter(self._clocks.values())

    def get(self, name: str) -> Clock:
        try:
            return self._clocks[name]
        except KeyError:
            raise KeyError("unknown clock %r" % name) from None

    def path_to_root(self, name: str) -> List[str]:
        path = [name]
        while name != ROOT_NAME:
            name = self.get(name).parent  # type: ignore[assignment]
            path.append(name)
        return path

    def common_ancestor(self, a: str, b: str) -> str:
        ancestors = set(self.path_to_root(a))
        for name in self.path_to_root(b):
            if name in ancestors:
                return name
        return ROOT_NAME  # unreachable: every path ends at the root

    def to_ancestor(self, interval: Interval, ancestor: str) -> Interval:
        """Express ``interval`` on an ancestor clock; exact, since each step multiplies."""
        start, stop, name = interval.start, interval.stop, interval.clock
        while name != ancestor:
            clock = self.get(name)
            if clock.parent is None:
                raise ValueError("clock %r is not an ancestor of %r" % (ancestor, interval.clock))
            start = _scale(start, clock)
            stop = _scale(stop, clock)
            name = clock.parent
        return Interval(start, stop, ancestor)

    def intersection(self, a: Interval, b: Interval) -> Optional[Interval]:
        """Intersection on the common ancestor clock of ``a`` and ``b``."""
        if a.clock != b.clock:
            common = self.common_ancestor(a.clock, b.clock)
            a = self.to_ancestor(a, common)
            b = self.to_ancestor(b, common)
        return a.intersection(b)


def _scale(tick: int, clock: Clock) -> int:
    if tick <= NEVER or tick >= FOREVER:
        return tick  # the ends of "always" stay the ends of "always"
    return tick * clock.period + clock.epoch

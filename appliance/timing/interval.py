"""Half-open intervals ``[start, stop)`` of integer ticks on one named clock."""
from __future__ import annotations

from typing import Optional

#: Bounds of the "always" interval that constants and start tokens carry.
#: Far beyond any real time (2**62 µs is ~146,000 years) yet still a
#: 64-bit integer on every wire format.
NEVER = -(2**62)
FOREVER = 2**62


def _check_tick(value: object, what: str) -> int:
    if type(value) is not int:
        raise TypeError("interval %s must be an int tick, got %r" % (what, value))
    return value


class Interval:
    """A time interval ``[start, stop)``; ``start < stop``, both integer ticks.

    Intervals compare and intersect only on the same clock; converting to a
    common clock is the job of :class:`appliance.timing.ClockSet`.
    """

    __slots__ = ("start", "stop", "clock")

    def __init__(self, start: int, stop: int, clock: str = "root") -> None:
        if type(start) is not int or type(stop) is not int:  # inline: every token's interval passes here
            _check_tick(start, "start")
            _check_tick(stop, "stop")
        if not start < stop:
            raise ValueError("empty interval [%d, %d): start must be before stop" % (start, stop))
        self.start = start
        self.stop = stop
        self.clock = clock

    @classmethod
    def always(cls, clock: str = "root") -> Interval:
        return cls(NEVER, FOREVER, clock)

    @classmethod
    def around(cls, tick: int, width: int, clock: str = "root") -> Interval:
        """The interval of ``width`` ticks centred on ``tick`` (``width >= 1``).

        The width is kept exact: ``[tick - width // 2, tick - width // 2 + width)``.
        """
        start = tick - width // 2
        return cls(start, start + width, clock)

    @property
    def width(self) -> int:
        return self.stop - self.start

    @property
    def is_always(self) -> bool:
        return self.start <= NEVER and self.stop >= FOREVER

    def overlaps(self, other: Interval) -> bool:
        self._same_clock(other)
        return self.start < other.stop and other.start < self.stop

    def intersection(self, other: Interval) -> Optional[Interval]:
        """The common part of two intervals, or ``None`` when they only touch or are apart."""
        self._same_clock(other)
        start = self.start if self.start > other.start else other.start
        stop = self.stop if self.stop < other.stop else other.stop
        if start < stop:
            return Interval(start, stop, self.clock)
        return None

    def contains(self, tick: int) -> bool:
        return self.start <= tick < self.stop

    def _same_clock(self, other: Interval) -> None:
        if self.clock != other.clock:
            raise ValueError(
                "intervals on clocks %r and %r: convert to a common clock first"
                % (self.clock, other.clock)
            )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Interval):
            return NotImplemented
        return (self.start, self.stop, self.clock) == (other.start, other.stop, other.clock)

    def __hash__(self) -> int:
        return hash((self.start, self.stop, self.clock))

    def __repr__(self) -> str:
        def show(t: int) -> str:
            return "-inf" if t <= NEVER else "+inf" if t >= FOREVER else str(t)

        return "Interval[%s, %s)@%s" % (show(self.start), show(self.stop), self.clock)

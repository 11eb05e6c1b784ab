"""Bounded per-port token stores.

A port keeps tokens that have not matched yet. It is bounded in count and in
age, and what it throws away is counted by cause, never silently lost: the
original runtime's unbounded interval trees grew forever when a join's other
input stalled.
"""
from __future__ import annotations

from bisect import bisect_left
from typing import Iterator, List

from appliance.program.token import Token
from appliance.runtime.counters import Counters
from appliance.timing import Interval


class PortStore:
    """Tokens of one input port, ordered by interval start."""

    __slots__ = ("_starts", "_tokens", "max_tokens", "max_age", "counters", "_seq")

    def __init__(self, max_tokens: int, max_age: int, counters: Counters) -> None:
        self._starts: List[tuple] = []  # (start, seq): seq keeps equal starts in arrival order
        self._tokens: List[Token] = []
        self.max_tokens = max_tokens
        self.max_age = max_age
        self.counters = counters
        self._seq = 0

    def __len__(self) -> int:
        return len(self._tokens)

    def __iter__(self) -> Iterator[Token]:
        return iter(self._tokens)

    def add(self, token: Token, now: int) -> None:
        self.expire(now)
        if len(self._tokens) >= self.max_tokens:
            # The oldest sample is the least likely to still find a partner.
            del self._starts[0]
            del self._tokens[0]
            self.counters.drop("store_full")
        self._seq += 1
        key = (token.interval.start, self._seq)
        index = bisect_left(self._starts, key)
        self._starts.insert(index, key)
        self._tokens.insert(index, token)

    def expire(self, now: int) -> None:
        """Drop tokens whose validity ended more than ``max_age`` ticks ago."""
        cutoff = now - self.max_age
        starts = self._starts
        if not starts or starts[0][0] >= cutoff:
            return
        tokens = self._tokens
        i = 0
        while i < len(starts) and starts[i][0] < cutoff:
            if tokens[i].interval.stop <= cutoff:
                del starts[i]
                del tokens[i]
                self.counters.drop("expired")
            else:
                i += 1

    def overlapping(self, interval: Interval) -> List[Token]:
        """Stored tokens whose intervals overlap ``interval`` (touching is not overlapping)."""
        end = bisect_left(self._starts, (interval.stop,))
        start = interval.start
        return [t for t in self._tokens[:end] if t.interval.stop > start]

    def drop_before(self, tick: int) -> None:
        """Drop tokens that ended by ``tick``: the SQ fired past them, they can no longer
        fire in time order."""
        starts, tokens = self._starts, self._tokens
        i = 0
        while i < len(starts) and starts[i][0] < tick:
            if tokens[i].interval.stop <= tick:
                del starts[i]
                del tokens[i]
                self.counters.drop("unmatched")
            else:
                i += 1

    def remove(self, token: Token) -> None:
        for i, stored in enumerate(self._tokens):
            if stored is token:
                del self._starts[i]
                del self._tokens[i]
                return

    def replace_all(self, token: Token) -> None:
        """Sticky ports keep only the newest token."""
        self._seq += 1
        self._starts[:] = [(token.interval.start, self._seq)]
        self._tokens[:] = [token]

    def clear(self) -> int:
        n = len(self._tokens)
        self._starts.clear()
        self._tokens.clear()
        return n



"""Named event counters: what each process did, dropped or refused, and why."""
from __future__ import annotations

from typing import Dict, Iterable


class Counters:
    """A bag of named integer counters. Drops are counted under ``dropped.<cause>``
    so a summary can list every way a token was lost."""

    __slots__ = ("values", "epoch")

    def __init__(self) -> None:
        self.values: Dict[str, int] = {}
        #: How many times it was cleared: two looks at the same epoch may be subtracted.
        self.epoch = 0

    def clear(self) -> None:
        """Count afresh, in place (whoever holds the bag counts on into it)."""
        self.values = {}
        self.epoch += 1

    def incr(self, name: str, n: int = 1) -> None:
        self.values[name] = self.values.get(name, 0) + n

    def drop(self, cause: str, n: int = 1) -> None:
        self.incr("dropped." + cause, n)

    def get(self, name: str) -> int:
        return self.values.get(name, 0)

    def as_dict(self) -> Dict[str, int]:
        return dict(self.values)

    @staticmethod
    def merged(parts: Iterable[Dict[str, int]]) -> Dict[str, int]:
        total: Dict[str, int] = {}
        for part in parts:
            for name, n in part.items():
                total[name] = total.get(name, 0) + n
        return dict(sorted(total.items()))

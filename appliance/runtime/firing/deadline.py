"""The deadline rule behind ``finish_by``: the value must arrive by its sample's
start + deadline, or Plan B answers for that sample."""
from __future__ import annotations

from collections import deque
from typing import Deque, Dict, List, Tuple

from appliance.ipc import ExecutionContext
from appliance.program.token import EMPTY, Token
from appliance.runtime.firing.base import Rule
from appliance.timing import Interval

VALUE, SAMPLE = 0, 1


class DeadlineRule(Rule):
    """Input 0 is the value, input 1 the stream sample that arms the deadline.

    A sample arms a timer at ``sample.start + deadline``. The value whose
    interval overlaps an armed sample passes through (met). When the timer
    fires first, the execution carries ``met=False`` and the built-in turns it
    into a Plan-B trigger with the sample's interval (missed); a value that
    shows up later for that sample is dropped as ``deadline_late``. A value
    that beats its sample's token here is met if it arrived by the deadline.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.deadline = self.spec.deadline or 0
        self.armed: List[Tuple[Interval, int]] = []  # (sample interval, due tick), arrival order
        self.early: List[Tuple[Token, int]] = []  # (value, arrival tick): values ahead of their sample
        self.missed_recently: Deque[Interval] = deque(maxlen=self.spec.max_tokens)
        self.met = 0
        self.missed = 0

    def on_token(self, token: Token, now: int) -> List[ExecutionContext]:
        if token.tag.port == SAMPLE:
            return self._on_sample(token.interval, now)
        return self._on_value(token, now)

    def _on_sample(self, sample: Interval, now: int) -> List[ExecutionContext]:
        due = sample.start + self.deadline
        for i, (value, arrived) in enumerate(self.early):
            if value.interval.overlaps(sample):
                del self.early[i]  # the value came before its sample's token
                return self._pass(value, sample) if arrived <= due else self._miss(sample)
        if now > due:
            return self._miss(sample)
        if len(self.armed) >= self.spec.max_tokens:
            self.counters.drop("deadline_armed_full")
            return self._miss(self.armed.pop(0)[0]) + self._arm(sample, due)
        return self._arm(sample, due)

    def _arm(self, sample: Interval, due: int) -> List[ExecutionContext]:
        self.armed.append((sample, due))
        self.timers.schedule(due, self._on_due, sample)
        return []

    def _on_value(self, token: Token, now: int) -> List[ExecutionContext]:
        for i, (sample, _due) in enumerate(self.armed):
            if sample.overlaps(token.interval):
                del self.armed[i]
                return self._pass(token, sample)
        for sample in self.missed_recently:
            if sample.overlaps(token.interval):
                self.counters.drop("deadline_late")
                return []
        self._keep_early(token, now)
        return []

    def _keep_early(self, token: Token, now: int) -> None:
        """Bounded like a port store: by count (oldest out) and by age."""
        cutoff = now - self.spec.max_age
        kept = [(t, a) for t, a in self.early if t.interval.stop > cutoff]
        if len(kept) < len(self.early):
            self.counters.drop("expired", len(self.early) - len(kept))
        if len(kept) >= self.spec.max_tokens:
            kept.pop(0)
            self.counters.drop("store_full")
        kept.append((token, now))
        self.early = kept

    def _pass(self, token: Token, sample: Interval) -> List[ExecutionContext]:
        self.met += 1
        common = token.interval.intersection(sample) or token.interval
        return [ExecutionContext(self.name, common, (token.value, True))]

    def _miss(self, sample: Interval) -> List[ExecutionContext]:
        self.missed += 1
        self.missed_recently.append(sample)
        return [ExecutionContext(self.name, sample, (EMPTY, False))]

    def _on_due(self, sample: Interval, now: int) -> List[ExecutionContext]:
        if self.stopped:
            return []
        for i, (armed, _due) in enumerate(self.armed):
            if armed is sample:
                del self.armed[i]
                return self._miss(sample)
        return []  # met in the meantime

    def stop(self) -> Tuple[int, Dict[str, int]]:
        self.stopped = True
        held = len(self.early) + len(self.armed)
        self.early.clear()
        self.armed.clear()
        return held, {"met": self.met, "missed": self.missed}

"""The timed rule (tokens whose intervals overlap on every input fire together)
and its sequential variant (executions released in time order)."""
from __future__ import annotations

import heapq
from typing import Dict, Iterable, List, Optional, Tuple

from appliance.ipc import ExecutionContext
from appliance.program.model import SQSpec
from appliance.program.token import Token
from appliance.runtime.counters import Counters
from appliance.runtime.firing.base import Rule
from appliance.runtime.firing.store import PortStore
from appliance.runtime.timers import Timers
from appliance.timing import Interval


class TimedRule(Rule):
    """Fires when every arc-fed input holds a token and their intervals share a
    common part; the execution's interval is that intersection.

    When several combinations match, the widest intersection wins (ties: the
    earliest). Matched tokens are consumed, except on sticky inputs (a
    non-stream value feeding a stream SQ), which keep their newest token; a
    sticky value that arrives after samples waited for it fires every one of
    them, earliest first.
    Tokens that ended before a firing can no longer fire in time order: they
    are dropped and counted as ``unmatched`` (a 5 ms stream joined with a
    20 ms stream leaves three of every four samples unmatched).
    """

    def __init__(self, spec: SQSpec, fed: Iterable[int], timers: Timers, counters: Counters) -> None:
        super().__init__(spec, fed, timers, counters)
        self.stores: Dict[int, PortStore] = {
            port: PortStore(spec.max_tokens, spec.max_age, counters) for port in self.arc_ports
        }
        self.single = len(self.arc_ports) == 1  # fires on every token, no matching to do
        self.only_input = self.single and len(self.template) == 1  # its values are just the token's

    def on_token(self, token: Token, now: int) -> List[ExecutionContext]:
        if self.only_input:
            return [ExecutionContext(self.name, token.interval, (token.value,))]
        port = token.tag.port
        if self.single:
            values = list(self.template)
            values[port] = token.value
            return [ExecutionContext(self.name, token.interval, tuple(values))]
        if port in self.sticky:
            self.stores[port].replace_all(token)
            return self._fire_waiting(token, port, now)
        match = self._match(token, port, now)
        if match is None:
            self.stores[port].add(token, now)
            return []
        return [self._consume(match, port)]

    def _fire_waiting(self, token: Token, port: int, now: int) -> List[ExecutionContext]:
        """A sticky value arrived: every sample that waited for it fires now, earliest
        first (a value computed once joins every sample, also those that came before it)."""
        contexts = []
        while True:
            match = self._match(token, port, now, earliest=True)
            if match is None:
                return contexts
            contexts.append(self._consume(match, port))
            if all(p in self.sticky for p in match[1]):
                return contexts  # nothing was consumed: the same match would fire again

    def _consume(self, match: Tuple[Interval, Dict[int, Token]], port: int) -> ExecutionContext:
        """Take a match's tokens off their stores (sticky ones stay) and build its execution."""
        interval, chosen = match
        for p, t in chosen.items():
            if p not in self.sticky:
                store = self.stores[p]
                if p != port:
                    store.remove(t)
                store.drop_before(interval.start)
        return self.context(interval, chosen)

    def _match(self, token: Token, port: int, now: int,
               earliest: bool = False) -> Optional[Tuple[Interval, Dict[int, Token]]]:
        """The best combination of ``token`` with one stored token per other port: the
        widest intersection (ties: the earliest), or with ``earliest`` the earliest one."""
        candidates: List[Tuple[Interval, Dict[int, Token]]] = [(token.interval, {port: token})]
        for other in self.arc_ports:
            if other == port:
                continue
            store = self.stores[other]
            store.expire(now)
            grown = []
            for interval, chosen in candidates:
                for stored in store.overlapping(interval):
                    common = interval.intersection(stored.interval)
                    if common is not None:
                        grown.append((common, {**chosen, other: stored}))
            if not grown:
                return None
            candidates = grown
        best = candidates[0]
        for candidate in candidates[1:]:
            iv, bi = candidate[0], best[0]
            if earliest:
                better = iv.start < bi.start or (iv.start == bi.start and iv.width > bi.width)
            else:
                better = iv.width > bi.width or (iv.width == bi.width and iv.start < bi.start)
            if better:
                best = candidate
        return best

    def stop(self) -> Tuple[int, Dict[str, int]]:
        self.stopped = True
        return sum(store.clear() for store in self.stores.values()), {}


class SequentialRule(TimedRule):
    """Timed matching, and executions in time order, none skipped.

    A stateful SQ on a stream (a moving average, a filter) must see samples in
    order. Matched executions wait ``reorder`` ticks for earlier samples that
    are still on their way, then go out earliest first. A sample that arrives
    after a later one already went out still executes, and is counted as
    ``out_of_order``: it is never dropped (the original runtime skipped it).
    """

    def __init__(self, spec: SQSpec, fed: Iterable[int], timers: Timers, counters: Counters) -> None:
        super().__init__(spec, fed, timers, counters)
        self.last_start: Optional[int] = None
        self._held: List[Tuple[int, int, int, ExecutionContext]] = []
        self._seq = 0

    def on_token(self, token: Token, now: int) -> List[ExecutionContext]:
        return self._release(super().on_token(token, now), now)

    def _release(self, contexts: List[ExecutionContext], now: int) -> List[ExecutionContext]:
        if self.spec.reorder == 0:
            return [self._in_order(ctx) for ctx in contexts]
        released = []
        for ctx in contexts:
            if len(self._held) >= self.spec.max_tokens:
                # Bounded like a store: the earliest goes out now instead of waiting its turn.
                self.counters.incr("reorder_overflow")
                released.append(self._in_order(heapq.heappop(self._held)[3]))
            self._seq += 1
            due = now + self.spec.reorder
            heapq.heappush(self._held, (ctx.interval.start, self._seq, due, ctx))
            self.timers.schedule(due, self._on_due)
        return released

    def _on_due(self, _key: object, now: int) -> List[ExecutionContext]:
        out = []
        held = self._held
        while held and held[0][2] <= now and not self.stopped:
            out.append(self._in_order(heapq.heappop(held)[3]))
        return out

    def _in_order(self, ctx: ExecutionContext) -> ExecutionContext:
        start = ctx.interval.start
        if self.last_start is not None and start < self.last_start:
            self.counters.incr("out_of_order")
        else:
            self.last_start = start
        return ctx

    def stop(self) -> Tuple[int, Dict[str, int]]:
        held, stats = super().stop()
        held += len(self._held)
        self._held.clear()
        return held, stats

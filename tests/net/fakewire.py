"""An in-memory link with a fake clock, for driving endpoints step by step in tests."""
from __future__ import annotations

import heapq
from typing import Callable, Dict, List, Optional, Tuple

from appliance.net import Delivered, Endpoint, SendFailed, TransportConfig

#: Decides the fate of one datagram: True drops it.
DropRule = Callable[[str, str, bytes], bool]


class Wire:
    """Endpoints by name, joined by a link of fixed latency; time is a plain integer.

    ``run`` advances the fake clock from event to event (arrivals and the
    endpoints' own deadlines) until nothing is pending or a limit is hit,
    so tests check behaviour without ever waiting.
    """

    def __init__(self, latency: int = 100, drop: Optional[DropRule] = None) -> None:
        self.now = 0
        self.latency = latency
        self.drop = drop
        self.endpoints: Dict[str, Endpoint] = {}
        self.delivered: Dict[str, List[Delivered]] = {}
        self.failed: Dict[str, List[SendFailed]] = {}
        self.carried: List[Tuple[str, str, bytes]] = []
        self._transit: List[Tuple[int, int, str, str, bytes]] = []
        self._order = 0

    def add(self, name: str, endpoint: Endpoint) -> Endpoint:
        self.endpoints[name] = endpoint
        self.delivered[name] = []
        self.failed[name] = []
        return endpoint

    def send(self, source: str, destination: str, payload: bytes, reliable: bool = True) -> int:
        message_id = self.endpoints[source].send(destination, payload, reliable, self.now)
        self.flush(source)
        return message_id

    def inject(self, destination: str, source: str, datagram: bytes) -> None:
        """Hand a datagram to an endpoint right now, as if it came from ``source``."""
        self.endpoints[destination].receive_datagram(datagram, source, self.now)
        self.flush(destination)

    def flush(self, name: str) -> None:
        endpoint = self.endpoints[name]
        for datagram, destination in endpoint.datagrams_to_send():
            self.carried.append((name, destination, datagram))
            if self.drop is not None and self.drop(name, destination, datagram):
                continue
            self._order += 1
            heapq.heappush(
                self._transit, (self.now + self.latency, self._order, destination, name, datagram))
        for event in endpoint.events():
            (self.delivered if isinstance(event, Delivered) else self.failed)[name].append(event)

    def next_time(self) -> Optional[int]:
        times = [t for t in (e.get_timer() for e in self.endpoints.values()) if t is not None]
        if self._transit:
            times.append(self._transit[0][0])
        return min(times) if times else None

    def run(self, until: Optional[int] = None, max_steps: int = 1_000_000) -> int:
        """Process events until idle (or ``until``); returns the fake time reached."""
        for _ in range(max_steps):
            when = self.next_time()
            if when is None or (until is not None and when > until):
                if until is not None:
                    self.now = max(self.now, until)
                return self.now
            self.now = max(self.now, when)
            while self._transit and self._transit[0][0] <= self.now:
                _, _, destination, source, datagram = heapq.heappop(self._transit)
                if destination in self.endpoints:
                    self.inject(destination, source, datagram)
            for name, endpoint in self.endpoints.items():
                deadline = endpoint.get_timer()
                if deadline is not None and deadline <= self.now:
                    endpoint.handle_timer(self.now)
                    self.flush(name)
        raise AssertionError("wire did not settle in %d steps" % max_steps)


def small_config(**overrides) -> TransportConfig:
    """Small datagrams (68-byte fragments), so a few hundred bytes span several."""
    options = dict(mtu=100, max_message_size=65536)
    options.update(overrides)
    return TransportConfig(**options)


def pair(config: TransportConfig, key: Optional[bytes] = None, **wire_options) -> Wire:
    wire = Wire(**wire_options)
    wire.add("a", Endpoint(config, session=0xA1, key=key))
    wire.add("b", Endpoint(config, session=0xB2, key=key))
    return wire

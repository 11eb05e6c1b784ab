"""An in-memory link with a fake clock, for driving endpoints step by step in tests."""
from __future__ import annotations

import heapq
import random
from typing import Callable, Dict, List, Optional, Tuple

from appliance.net import Delivered, Endpoint, SendFailed, TransportConfig, wire

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

    def connect(self, source: str, destination: str) -> None:
        """Open the channel ``source`` -> ``destination`` and forget the handshake's datagrams,
        so a test can count what its messages cost."""
        self.endpoints[source].connect(destination, self.now)
        self.flush(source)
        self.run()
        del self.carried[:]

    def reboot(self, name: str, session: int, key: Optional[bytes] = None) -> Endpoint:
        """Replace an endpoint by a new boot of it (all its state lost, a new session)."""
        old = self.endpoints[name]
        self.endpoints[name] = Endpoint(old.config, session=session, key=key, entropy=seeded(session))
        return self.endpoints[name]

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


def seeded(seed: int) -> Callable[[int], bytes]:
    """A reproducible entropy source, so handshakes (and datagrams) are the same every run."""
    rng = random.Random(seed)
    return lambda size: rng.getrandbits(8 * size).to_bytes(size, "little")


def pair(config: TransportConfig, key: Optional[bytes] = None, **wire_options) -> Wire:
    link = Wire(**wire_options)
    link.add("a", Endpoint(config, session=0xA1, key=key, entropy=seeded(0xA1)))
    link.add("b", Endpoint(config, session=0xB2, key=key, entropy=seeded(0xB2)))
    return link


def channel_data(sender: Endpoint, peer: str, reliable: bool, message_id: int, index: int,
                 count: int, length: int, chunk: bytes, timestamp: int = 0) -> bytes:
    """A DATA datagram on ``sender``'s open channel to ``peer``, built by hand (any geometry)."""
    channel = sender._peers.get(peer).outbound.channel
    assert channel is not None, "open the channel first (Wire.connect)"
    return wire.data(channel.token, channel.mac, reliable, message_id, index, count, length,
                     timestamp, chunk)

"""A simulated datagram network: seeded impairments between named addresses, in simpy time.

It carries bytes, exactly what a UDP socket would, so the transport endpoint
and the wire codec run here unchanged. Each directed link draws from its own
random stream derived from (seed, source, destination) with hashlib, so adding
a link never changes what another link does and a seed replays exactly.
"""
from __future__ import annotations

import hashlib
import random
from typing import Callable, Dict, Optional, Tuple

import simpy

from appliance.net.impairment import IMPAIRMENT_COUNTERS, Impairment, fates

Deliver = Callable[[bytes, str], None]


def derived_rng(seed: int, *names: str) -> random.Random:
    """An independent, reproducible random stream for one named part of a simulation."""
    digest = hashlib.sha256(("%d|" % seed + "|".join(names)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


class SimNetwork:
    """Datagrams between attached addresses, delayed and impaired per directed link."""

    def __init__(self, env: simpy.Environment, seed: int = 0, impairment: Impairment = Impairment()):
        self.env = env
        self.seed = seed
        self.default_impairment = impairment
        #: sent, delivered, undeliverable (no one attached) and the impairment counters.
        self.counters: Dict[str, int] = dict.fromkeys(("sent", "delivered", "undeliverable") + IMPAIRMENT_COUNTERS, 0)
        self._receivers: Dict[str, Deliver] = {}
        self._impairments: Dict[Tuple[str, str], Impairment] = {}
        self._rngs: Dict[Tuple[str, str], random.Random] = {}

    def attach(self, address: str, deliver: Deliver) -> None:
        """Make ``address`` reachable; ``deliver(datagram, source)`` is called on arrival."""
        if address in self._receivers:
            raise ValueError("address %r is already attached" % address)
        self._receivers[address] = deliver

    def detach(self, address: str) -> None:
        """Take an address off the network (a device powering down); later datagrams are lost."""
        self._receivers.pop(address, None)

    def set_impairment(self, source: str, destination: str, impairment: Impairment) -> None:
        """Give one direction of one link its own impairment (the others keep the default)."""
        self._impairments[(source, destination)] = impairment

    def send(self, source: str, destination: str, datagram: bytes) -> None:
        """Hand a datagram to the network; it arrives (or not) after the link's delay."""
        self.counters["sent"] += 1
        key = (source, destination)
        rng = self._rngs.get(key)
        if rng is None:
            rng = self._rngs[key] = derived_rng(self.seed, "link", source, destination)
        impairment = self._impairments.get(key, self.default_impairment)
        for delay, data in fates(impairment, rng, datagram, self.counters):
            self.env.timeout(delay, (destination, data, source)).callbacks.append(self._arrive)

    def _arrive(self, event: simpy.Event) -> None:
        destination, data, source = event.value
        deliver: Optional[Deliver] = self._receivers.get(destination)
        if deliver is None:
            self.counters["undeliverable"] += 1
            return
        self.counters["delivered"] += 1
        deliver(data, source)

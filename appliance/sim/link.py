"""A simulated datagram network: seeded latency, jitter, loss, duplication,
reordering and corruption between named addresses, in simpy time.

It carries bytes, exactly what a UDP socket would, so the transport endpoint
and the wire codec run here unchanged. Each directed link draws from its own
random stream derived from (seed, source, destination) with hashlib, so adding
a link never changes what another link does and a seed replays exactly.
"""
from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

import simpy

Deliver = Callable[[bytes, str], None]


@dataclass(frozen=True)
class LinkProfile:
    """Impairments of one direction of a link. Times in ticks (µs), rates in [0, 1]."""

    latency: int = 0
    jitter: int = 0
    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    corrupt: float = 0.0

    def __post_init__(self) -> None:
        for name in ("latency", "jitter"):
            value = getattr(self, name)
            if type(value) is not int or value < 0:
                raise ValueError("link %s must be a non-negative int of µs, got %r" % (name, value))
        for name in ("loss", "duplicate", "reorder", "corrupt"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError("link %s must be a probability in [0, 1], got %r" % (name, value))


class LinkCounters:
    __slots__ = ("sent", "delivered", "lost", "duplicated", "reordered", "corrupted", "undeliverable")

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, 0)

    def as_dict(self) -> Dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


def derived_rng(seed: int, *names: str) -> random.Random:
    """An independent, reproducible random stream for one named part of a simulation."""
    digest = hashlib.sha256(("%d|" % seed + "|".join(names)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


class SimNetwork:
    """Datagrams between attached addresses, delayed and impaired per directed link."""

    def __init__(self, env: simpy.Environment, seed: int = 0, profile: LinkProfile = LinkProfile()):
        self.env = env
        self.seed = seed
        self.default_profile = profile
        self.counters = LinkCounters()
        self._receivers: Dict[str, Deliver] = {}
        self._profiles: Dict[Tuple[str, str], LinkProfile] = {}
        self._rngs: Dict[Tuple[str, str], random.Random] = {}

    def attach(self, address: str, deliver: Deliver) -> None:
        """Make ``address`` reachable; ``deliver(datagram, source)`` is called on arrival."""
        if address in self._receivers:
            raise ValueError("address %r is already attached" % address)
        self._receivers[address] = deliver

    def detach(self, address: str) -> None:
        """Take an address off the network (a device powering down); later datagrams are lost."""
        self._receivers.pop(address, None)

    def set_profile(self, source: str, destination: str, profile: LinkProfile) -> None:
        self._profiles[(source, destination)] = profile

    def profile(self, source: str, destination: str) -> LinkProfile:
        return self._profiles.get((source, destination), self.default_profile)

    def send(self, source: str, destination: str, datagram: bytes) -> None:
        """Hand a datagram to the network; it arrives (or not) after the link's delay."""
        counters = self.counters
        counters.sent += 1
        key = (source, destination)
        rng = self._rngs.get(key)
        if rng is None:
            rng = self._rngs[key] = derived_rng(self.seed, "link", source, destination)
        profile = self._profiles.get(key, self.default_profile)
        if profile.loss and rng.random() < profile.loss:
            counters.lost += 1
            return
        copies = 1
        if profile.duplicate and rng.random() < profile.duplicate:
            counters.duplicated += 1
            copies = 2
        for _ in range(copies):
            data = datagram
            if profile.corrupt and data and rng.random() < profile.corrupt:
                counters.corrupted += 1
                data = _flip_one_bit(data, rng)
            delay = profile.latency
            if profile.jitter:
                delay += rng.randrange(profile.jitter + 1)
            if profile.reorder and rng.random() < profile.reorder:
                counters.reordered += 1
                delay += rng.randrange(1, 2 * profile.latency + profile.jitter + 2)
            self._schedule(delay, destination, data, source)

    def _schedule(self, delay: int, destination: str, data: bytes, source: str) -> None:
        event = self.env.timeout(delay)
        event.callbacks.append(lambda _event: self._arrive(destination, data, source))

    def _arrive(self, destination: str, data: bytes, source: str) -> None:
        deliver: Optional[Deliver] = self._receivers.get(destination)
        if deliver is None:
            self.counters.undeliverable += 1
            return
        self.counters.delivered += 1
        deliver(data, source)


def _flip_one_bit(data: bytes, rng: random.Random) -> bytes:
    position = rng.randrange(len(data) * 8)
    mutable = bytearray(data)
    mutable[position // 8] ^= 1 << (position % 8)
    return bytes(mutable)

"""What an imperfect network does to a datagram: seeded loss, duplication,
reordering, corruption and delay.

One model for the two places that impair traffic on purpose: the simulated
link of the harness and the lossy UDP relay used on loopback and in the
field. The same impairment and the same random stream give the same fates.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Dict, List, Tuple

#: Counters ``fates`` moves, by name.
IMPAIRMENT_COUNTERS = ("lost", "duplicated", "reordered", "corrupted")


@dataclass(frozen=True)
class Impairment:
    """One direction of a link. Times are integer µs, rates probabilities in [0, 1].

    A datagram is lost with ``loss``; otherwise it arrives once, or twice with
    ``duplicate``, each copy after ``latency`` plus up to ``jitter``; with
    ``reorder`` a copy is held back ``reorder_delay`` longer, so later ones
    overtake it; with ``corrupt`` a copy has one bit flipped.
    """

    latency: int = 0
    jitter: int = 0
    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    corrupt: float = 0.0
    reorder_delay: int = 1000

    def __post_init__(self) -> None:
        for name in ("latency", "jitter", "reorder_delay"):
            value = getattr(self, name)
            if type(value) is not int or value < 0:
                raise ValueError("%s must be a non-negative int of µs, got %r" % (name, value))
        for name in ("loss", "duplicate", "reorder", "corrupt"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ValueError("%s must be a probability in [0, 1], got %r" % (name, value))


def fates(impairment: Impairment, rng: random.Random, datagram: bytes,
          counters: Dict[str, int]) -> List[Tuple[int, bytes]]:
    """The copies of ``datagram`` that arrive, as (delay in µs, bytes); none when it is lost."""
    if impairment.loss and rng.random() < impairment.loss:
        counters["lost"] += 1
        return []
    copies = 1
    if impairment.duplicate and rng.random() < impairment.duplicate:
        counters["duplicated"] += 1
        copies = 2
    arrivals = []
    for _ in range(copies):
        data = datagram
        if impairment.corrupt and data and rng.random() < impairment.corrupt:
            counters["corrupted"] += 1
            data = _flip_one_bit(data, rng)
        delay = impairment.latency
        if impairment.jitter:
            delay += int(rng.random() * (impairment.jitter + 1))  # uniform in [0, jitter]; randrange costs 5x
        if impairment.reorder and rng.random() < impairment.reorder:
            counters["reordered"] += 1
            delay += impairment.reorder_delay
        arrivals.append((delay, data))
    return arrivals


def _flip_one_bit(data: bytes, rng: random.Random) -> bytes:
    position = rng.randrange(len(data) * 8)
    mutable = bytearray(data)
    mutable[position // 8] ^= 1 << (position % 8)
    return bytes(mutable)

"""A device's two clocks (docs/architecture.md, "Two clocks").

The root clock is the synchronised wall clock, because the runtime manager's
start message carries its absolute ticks and every device must read the same
tick at the same instant (boards run NTP, chrony or PTP). The local clock is
monotonic: waits only this device measures run on it, immune to steps of the
wall clock.
"""
from __future__ import annotations

import time
from typing import Tuple


def root_now() -> int:
    """The root clock: wall-clock µs since the epoch."""
    return time.time_ns() // 1000


def local_now() -> int:
    """The local clock: monotonic µs."""
    return time.monotonic_ns() // 1000


def both() -> Tuple[int, int]:
    """``(root, local)``, read together."""
    return time.time_ns() // 1000, time.monotonic_ns() // 1000

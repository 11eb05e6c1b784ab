"""What every driver module shares: its error, and what a driver is told."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from appliance.program.errors import ProgramError


class DriverError(ProgramError):
    """A driver spec that does not resolve, or a handle that cannot be opened; says why."""


@dataclass(frozen=True)
class DriverEnv:
    """What a ``python:`` driver's function is told besides its component.

    ``now()`` is the ensemble's root clock (integer µs; on a device the wall clock,
    in simulation the simulated ensemble's clock), so a simulated sensor can be a
    function of time. ``seed`` is the simulation's seed (None on a device).
    """

    ensemble: str
    clock: Callable[[], int]
    simulated: bool = False
    seed: Optional[int] = None
    sysfs_root: str = "/"

    def now(self) -> int:
        return self.clock()

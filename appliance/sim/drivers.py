"""Components in simulation: simulated sensors and actuators, and every write recorded.

A simulated ensemble opens a component's handle as a device would, except:

- a sensor or camera without a driver, or with a ``sysfs:`` driver when the
  simulation has no sysfs tree, reads a :class:`SimulatedSensor`: a function of
  the ensemble's root-clock time, drawn from the world's seed;
- an actuator without one (or with ``sysfs:`` and no tree) is a
  :class:`SimulatedActuator`, which keeps what was written;
- ``python:`` drivers are called as on a device, told ``simulated=True``, the
  seed and the simulated clock;
- every successful write, whatever the driver, is recorded as a
  :class:`ComponentWrite` (``SimEnsemble.writes``, ``SimulationResult.writes``).
"""
from __future__ import annotations

import hashlib
import math
from typing import Any, Callable, List, NamedTuple, Optional

from appliance.components.drivers import DriverEnv, DriverError, open_driver
from appliance.components.model import Component
from appliance.ipc.codec import private_copy

#: Kinds read as a simulated sensor when nothing else drives them.
SENSOR_KINDS = ("sensor", "camera")
#: Period of a simulated sensor's wave (s) unless its ``period_s`` attribute says otherwise.
SENSOR_PERIOD_S = 10


class ComponentWrite(NamedTuple):
    """One write to a component in simulation: where, what, and when (the ensemble's root clock, µs)."""

    ensemble: str
    component: str
    value: Any
    at: int


def _unit(*parts: Any) -> float:
    """A number in [0, 1) drawn from ``parts`` alone (sha256)."""
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64


class SimulatedSensor:
    """``value_at(t)``: a wave between the component's ``min`` and ``max`` attributes
    (0 and 1 without them) with a period of ``period_s`` (10 s without it), at a phase
    drawn from the seed, plus up to a tenth of the range of noise drawn from the seed
    and ``t``: the same seed, ensemble, component and time give the same reading, in
    whatever order the reads come."""

    def __init__(self, component: Component, env: DriverEnv) -> None:
        attributes = component.attributes
        low, high = attributes.get("min", 0.0), attributes.get("max", 1.0)
        period = attributes.get("period_s", SENSOR_PERIOD_S)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high, period)) \
                or low > high or period <= 0:
            raise DriverError("a simulated sensor's min and max are numbers, min <= max, and its period_s a "
                              "positive number; %r has min %r, max %r, period_s %r"
                              % (component.name, low, high, period))
        self.low, self.span = float(low), float(high) - float(low)
        self.period = period * 1e6
        self.key = (env.seed, "sensor", env.ensemble, component.name)
        self.phase = _unit(*self.key)
        self.env = env

    def value_at(self, t: int) -> float:
        wave = math.sin(2 * math.pi * (t / self.period + self.phase))
        return self.low + self.span * (0.5 + 0.4 * wave + 0.1 * (_unit(*self.key, t) - 0.5))

    def read(self) -> float:
        return self.value_at(self.env.now())


class SimulatedActuator:
    """Takes writes; a read gives the last value written (None before the first)."""

    def __init__(self) -> None:
        self.value: Any = None

    def write(self, value: Any) -> None:
        self.value = value

    def read(self) -> Any:
        return self.value


class _Recorded:
    """A handle whose successful writes are recorded; reads and close pass through."""

    def __init__(self, inner: Any, record: Callable[[Any], None]) -> None:
        for name in ("read", "close"):
            if callable(getattr(inner, name, None)):
                setattr(self, name, getattr(inner, name))
        if callable(getattr(inner, "write", None)):
            write = inner.write

            def recorded(value: Any) -> None:
                write(value)
                record(value)

            self.write = recorded


class SimulatedDrivers:
    """A simulated ensemble's opener (see the module docstring)."""

    def __init__(self, ensemble: str, clock: Callable[[], int], seed: int, sysfs_root: Optional[str],
                 writes: List[ComponentWrite]) -> None:
        self.env = DriverEnv(ensemble, clock, simulated=True, seed=seed, sysfs_root=sysfs_root or "/")
        self.has_tree = sysfs_root is not None
        self.writes = writes

    def __call__(self, component: Component) -> Any:
        driver = component.driver
        if driver is not None and (self.has_tree or not driver.startswith("sysfs:")):
            handle = open_driver(component, self.env)
        elif component.kind in SENSOR_KINDS:
            handle = SimulatedSensor(component, self.env)
        elif component.kind == "actuator":
            handle = SimulatedActuator()
        else:
            why = "has no driver" if driver is None else "reads %s and this simulation has no sysfs tree" % driver
            raise DriverError("component %r (%s) %s, and simulation simulates only sensors, cameras and actuators"
                              % (component.name, component.kind or "no kind", why))
        return _Recorded(handle, lambda value: self._record(component.name, value))

    def _record(self, name: str, value: Any) -> None:
        try:
            value = private_copy((value,))[0]  # what was written then, not what the SQ makes of it later
        except Exception:  # a value the codec cannot copy (a python: driver may take anything)
            value = repr(value)
        self.writes.append(ComponentWrite(self.env.ensemble, name, value, self.env.now()))

"""Drivers: how an SQ's ``components.read``/``write`` reach a component's hardware.

A component's ``driver`` is a string, ``SCHEME:REST``:

- ``python:module:function``: ``function(component, env)`` (a :class:`DriverEnv`)
  returns the handle, once per deployment;
- ``sysfs:relative/path``: a file under ``<sysfs root>/sys`` (``drivers.sysfs``);
- ``bridge:...``: the firmware bridge, which is not there yet: refused.

A handle has ``read()`` and/or ``write(value)``, and ``close()`` if it holds
something. :func:`check_driver` resolves a spec without opening anything
(when a system or configuration file is loaded); :class:`Drivers` opens
handles on a device.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence, Tuple

from appliance.components.drivers import python, sysfs
from appliance.components.drivers.base import DriverEnv, DriverError
from appliance.components.model import Component

__all__ = ["SCHEMES", "DriverEnv", "DriverError", "Drivers", "check_driver", "check_drivers", "open_driver", "split"]

SCHEMES = ("python", "sysfs", "bridge")
FORMS = "python:module:function, sysfs:relative/path or bridge:..."
BRIDGE_LATER = "bridge: drivers need the firmware bridge, which this version does not have yet"


def split(spec: str) -> Tuple[str, str]:
    """``(scheme, rest)`` of a driver spec; DriverError for an unknown scheme."""
    scheme, colon, rest = spec.partition(":")
    if not colon:
        raise DriverError("%r is not a driver (a driver is %s)" % (spec, FORMS))
    if scheme not in SCHEMES:
        raise DriverError("unknown scheme %r (a driver is %s)" % (scheme + ":", FORMS))
    return scheme, rest


def check_driver(spec: str, search: Sequence[str] = ()) -> None:
    """Resolve ``spec`` without opening it: a ``python:`` function imports (``search``:
    directories tried before ``sys.path``), a ``sysfs:`` path stays inside the tree."""
    scheme, rest = split(spec)
    if scheme == "python":
        python.resolve(rest, search)
    elif scheme == "sysfs":
        sysfs.checked_path(rest)
    else:
        raise DriverError(BRIDGE_LATER)


def check_drivers(components: Iterable[Component], where: str, search: Sequence[str] = ()) -> None:
    """DriverError ``WHERE: component 'x': driver 'spec': why`` for the first spec that does not resolve."""
    for component in components:
        if component.driver is not None:
            try:
                check_driver(component.driver, search)
            except DriverError as exc:
                raise DriverError("%s: component %r: driver %r: %s" % (where, component.name, component.driver,
                                                                        exc)) from None


def open_driver(component: Component, env: DriverEnv, search: Sequence[str] = ()) -> Any:
    """The handle of the component's driver (DriverError when it has none or it does not open)."""
    if component.driver is None:
        raise DriverError("component %r has no driver (give it one: python:module:function or sysfs:path)"
                          % component.name)
    scheme, rest = split(component.driver)
    if scheme == "python":
        return python.open_handle(rest, component, env, search)
    if scheme == "sysfs":
        return sysfs.open_handle(rest, component, env.sysfs_root)
    raise DriverError(BRIDGE_LATER)


class Drivers:
    """A device's opener: each component's own driver, on the device's root clock.

    Picklable (the supervisor hands it to the execute process it spawns) when
    ``clock`` is a module-level function.
    """

    def __init__(self, ensemble: str, clock: Callable[[], int], sysfs_root: str = "/",
                 search: Sequence[str] = ()) -> None:
        self.env = DriverEnv(ensemble, clock, sysfs_root=sysfs_root)
        self.search = tuple(search)

    def __call__(self, component: Component) -> Any:
        return open_driver(component, self.env, self.search)

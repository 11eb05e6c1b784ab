"""What SQ code calls: ``components.read(name)`` and ``components.write(name, value)``.

The execute core of each ensemble hands its SQs the components it has by
setting one module-level reference before every SQ call (``CURRENT.attached``):
one attribute store, so SQs that use no component pay nothing measurable.
Behind it, an :class:`Attached` holds one deployment's open driver handles:
each is opened at its first use and closed when the app is removed.
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

from appliance.components.drivers.base import DriverError
from appliance.components.model import Component
from appliance.program.errors import exception_text, stops_the_process

#: ``opener(component) -> handle``: the shell's drivers (a device's, or the simulator's).
Opener = Callable[[Component], Any]


class AccessError(Exception):
    """A read or write an SQ asked for that could not be done; names the component and the ensemble.

    Driver code is caught as SQ code is, ``SystemExit`` included: a driver that calls
    ``sys.exit()`` fails the read, the write or its close, not the ensemble."""


class Attached:
    """One ensemble's components as its SQs reach them during one deployment."""

    __slots__ = ("ensemble", "components", "opener", "handles")

    def __init__(self, ensemble: str, components: Iterable[Component] = (), opener: Optional[Opener] = None) -> None:
        self.ensemble = ensemble
        self.components: Dict[str, Component] = {c.name: c for c in components}
        self.opener = opener
        #: Open handles by component name, in the order they were opened.
        self.handles: Dict[str, Any] = {}

    def _where(self, verb: str, name: Any) -> str:
        return "components.%s(%r) on %s" % (verb, name, self.ensemble)

    def _handle(self, verb: str, name: Any) -> Any:
        component = self.components.get(name) if isinstance(name, str) else None
        handle = self.handles.get(name) if component is not None else None
        if handle is not None:
            return handle
        if component is None:
            here = ", ".join(self.components) or "none"
            raise AccessError("%s: no component %r on this ensemble (it has: %s)" % (self._where(verb, name), name,
                                                                                      here))
        if self.opener is None:
            raise AccessError("%s: this ensemble opens no drivers" % self._where(verb, name))
        try:
            handle = self.opener(component)
        except (Exception, SystemExit) as exc:
            raise AccessError("%s: %s" % (self._where(verb, name), _reason(exc))) from exc
        self.handles[name] = handle
        return handle

    def read(self, name: str) -> Any:
        method = getattr(self._handle("read", name), "read", None)
        if method is None:
            raise AccessError("%s: component %r cannot be read (its driver has no read())"
                              % (self._where("read", name), name))
        try:
            return method()
        except (Exception, SystemExit) as exc:
            raise AccessError("%s: its driver %s failed: %s" % (
                self._where("read", name), self.components[name].driver or "(simulated)", _reason(exc))) from exc

    def write(self, name: str, value: Any) -> None:
        method = getattr(self._handle("write", name), "write", None)
        if method is None:
            raise AccessError("%s: component %r is read-only (its driver has no write())"
                              % (self._where("write", name), name))
        try:
            method(value)
        except (Exception, SystemExit) as exc:
            raise AccessError("%s: its driver %s failed: %s" % (
                self._where("write", name), self.components[name].driver or "(simulated)", _reason(exc))) from exc

    def close(self) -> List[str]:
        """Close every open handle (those that have ``close()``); what failed, one line each."""
        failed = []
        for name, handle in self.handles.items():
            close = getattr(handle, "close", None)
            if close is None:
                continue
            try:
                close()
            except BaseException as exc:  # teardown goes on, whatever the driver raises
                if stops_the_process(exc):
                    raise
                failed.append("component %r on %s: its driver's close() failed: %s" % (name, self.ensemble,
                                                                                      _reason(exc)))
        self.handles.clear()
        return failed


def _reason(exc: BaseException) -> str:
    text = exception_text(exc)
    return text if isinstance(exc, (AccessError, DriverError)) else "%s: %s" % (type(exc).__name__, text)


class _Current:
    """The components of the ensemble whose SQ runs now (set by its execute core)."""

    __slots__ = ("attached",)

    def __init__(self) -> None:
        self.attached: Optional[Attached] = None


#: Set by the execute core before every SQ call, the program's load and its teardown().
CURRENT = _Current()


def read(name: str) -> Any:
    """The value of component ``name`` of the ensemble this SQ runs on, read by its driver."""
    attached = CURRENT.attached
    if attached is None:
        raise AccessError("components.read(%r) outside an SQ: only SQs deployed on an ensemble reach its "
                          "components" % (name,))
    return attached.read(name)


def has(name: str) -> bool:
    """Whether the ensemble this SQ runs on has a component ``name`` (a ``teardown()``
    runs on every ensemble hosting part of the app, with or without it)."""
    attached = CURRENT.attached
    return attached is not None and name in attached.components


def write(name: str, value: Any) -> None:
    """Write ``value`` to component ``name`` of the ensemble this SQ runs on, through its driver."""
    attached = CURRENT.attached
    if attached is None:
        raise AccessError("components.write(%r) outside an SQ: only SQs deployed on an ensemble reach its "
                          "components" % (name,))
    attached.write(name, value)


class _Fixed:
    """A stand-in handle for a unit test: reads give a value (or call it), writes are kept."""

    def __init__(self, name: str, value: Any, writes: List[Tuple[str, Any]]) -> None:
        self.name, self.value, self.writes = name, value, writes

    def read(self) -> Any:
        return self.value() if callable(self.value) else self.value

    def write(self, value: Any) -> None:
        self.writes.append((self.name, value))


@contextlib.contextmanager
def attached(values: Dict[str, Any], ensemble: str = "test") -> Iterator[List[Tuple[str, Any]]]:
    """Components for an SQ's plain ``.function`` in a unit test, where no ensemble is:
    inside the block ``read(name)`` gives ``values[name]`` (called each time if it is
    callable), and each ``write(name, value)`` is appended, as ``(name, value)``, to the
    list the block gets. A name not in ``values`` is the same ``AccessError`` as on an
    ensemble without it."""
    writes: List[Tuple[str, Any]] = []
    table = Attached(ensemble, [Component(name) for name in values],
                     lambda component: _Fixed(component.name, values[component.name], writes))
    outer, CURRENT.attached = CURRENT.attached, table
    try:
        yield writes
    finally:
        CURRENT.attached = outer

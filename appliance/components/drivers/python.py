"""``python:module:function``: a Python function the configuration names opens the handle.

``function(component, env)`` is called once per deployment, at the component's
first use, with the :class:`~appliance.components.Component` and a
:class:`~appliance.components.drivers.base.DriverEnv`; it returns the handle:
an object with ``read()`` and/or ``write(value)``, and ``close()`` if it holds
something (a file, a bus, a socket).
"""
from __future__ import annotations

import importlib
import re
import sys
from typing import Any, Callable, Sequence, Tuple

from appliance.components.drivers.base import DriverEnv, DriverError
from appliance.components.model import Component

_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\Z")
_FUNCTION = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")


def _parts(rest: str) -> Tuple[str, str]:
    module, colon, function = rest.partition(":")
    if not colon or not _MODULE.match(module) or not _FUNCTION.match(function):
        raise DriverError("a python driver is python:module:function (a dotted module, a function name), "
                          "got python:%s" % rest)
    return module, function


def resolve(rest: str, search: Sequence[str] = ()) -> Callable[..., Any]:
    """The function ``module:function`` names; ``search`` directories are tried before ``sys.path``."""
    module_name, function_name = _parts(rest)
    added = [d for d in search if d not in sys.path]
    sys.path[:0] = added
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # an import runs the module: anything may go wrong in it
        raise DriverError("module %r does not import: %s: %s" % (module_name, type(exc).__name__, exc)) from None
    finally:
        for directory in added:
            sys.path.remove(directory)
    function = getattr(module, function_name, None)
    if function is None:
        raise DriverError("module %r has no function %r" % (module_name, function_name))
    if not callable(function):
        raise DriverError("%s.%s is a %s, not a function" % (module_name, function_name, type(function).__name__))
    return function


def open_handle(rest: str, component: Component, env: DriverEnv, search: Sequence[str] = ()) -> Any:
    """Call the driver's function; its handle must have ``read`` or ``write``."""
    handle = resolve(rest, search)(component, env)
    if not (callable(getattr(handle, "read", None)) or callable(getattr(handle, "write", None))):
        raise DriverError("python:%s returned %r, which has neither read() nor write()" % (rest, handle))
    return handle

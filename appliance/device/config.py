"""An ensemble's configuration: one JSON file with the command's flags as keys.

``appliance ensemble --config FILE`` and ``appliance rtm --config FILE`` read
it (the device install places it under ``/etc/appliance``); a flag given on
the command line wins over the file. Unknown keys are refused, so a typo is
an error naming the key, not a setting silently ignored. ``components`` lists
the ensemble's components as system files do (validated by the same code, and
each driver resolved now); ``sysfs_root`` is where ``sysfs:`` drivers find
``sys/`` (default ``/``).
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional

from appliance.components.drivers import DriverError, check_drivers
from appliance.components.model import Component, ComponentError, component_from_wire
from appliance.net.address import BadAddress, parse_address, resolve_address
from appliance.program.errors import ProgramError
from appliance.system.description import load_json

#: Keys a configuration file may hold, and their JSON types.
KEYS: Dict[str, type] = {
    "name": str,
    "rtm": str,
    "listen": str,
    "advertise": str,
    "cluster_key": str,
    "manager_public_key": str,
    "manager_key": str,
    "components": list,
    "sysfs_root": str,
}

#: Where an ensemble listens when neither the file nor a flag says.
DEFAULT_LISTEN = "0.0.0.0:8225"


class ConfigError(ProgramError):
    """A configuration file or value that cannot be used; names the file and the key."""


def load_config(path: str) -> Dict[str, Any]:
    """The settings a configuration file holds, checked for names and types."""
    doc = load_json(path, ConfigError)
    if not isinstance(doc, dict):
        raise ConfigError("%s: must be a JSON object of settings" % path)
    for key, value in doc.items():
        kind = KEYS.get(key)
        if kind is None:
            raise ConfigError("%s: unknown key %r (known: %s)" % (path, key, ", ".join(sorted(KEYS))))
        if not isinstance(value, kind):
            raise ConfigError("%s: key %r must be a %s, got %r" % (path, key, kind.__name__, value))
    if "components" in doc:
        doc["components"] = components_from_config(path, doc["components"])
    if "sysfs_root" in doc:
        # Relative to the file, like the driver modules next to it (a service's working directory is /).
        root = os.path.join(os.path.dirname(os.path.abspath(path)), doc["sysfs_root"])
        if not os.path.isdir(root):
            raise ConfigError("%s: key 'sysfs_root': %r is not a directory" % (path, doc["sysfs_root"]))
        doc["sysfs_root"] = os.path.normpath(root)
    return doc


def components_from_config(path: str, items: List[Any]) -> List[Component]:
    """The ``components`` of a configuration file: each as in a system file, names
    unique, every driver resolved (``python:`` modules next to the file first)."""
    components: List[Component] = []
    for index, item in enumerate(items):
        where = "%s: components[%d]" % (path, index)
        try:
            component = component_from_wire(item, where)
            check_drivers([component], where, [os.path.dirname(os.path.abspath(path))])
        except (ComponentError, DriverError) as exc:
            raise ConfigError(str(exc)) from None
        if any(c.name == component.name for c in components):
            raise ConfigError("%s: component %r is listed twice" % (where, component.name))
        components.append(component)
    return components


def merged(path: Optional[str], flags: Dict[str, Any]) -> Dict[str, Any]:
    """The file's settings, overridden by the flags that were given (not None)."""
    settings = load_config(path) if path else {}
    settings.update({key: value for key, value in flags.items() if value is not None})
    return settings


def checked_address(value: str, what: str) -> str:
    """``host:port`` in its canonical spelling (host names resolved once, now)."""
    try:
        return resolve_address(value)
    except BadAddress as exc:
        raise ConfigError("%s: %s" % (what, exc)) from None


def is_wildcard(address: str) -> bool:
    host, _ = parse_address(address)
    return host in ("0.0.0.0", "::")

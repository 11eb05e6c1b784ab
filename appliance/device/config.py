"""An ensemble's configuration: one JSON file with the command's flags as keys.

``appliance ensemble --config FILE`` and ``appliance rtm --config FILE`` read
it (the device install places it under ``/etc/appliance``); a flag given on
the command line wins over the file. Unknown keys are refused, so a typo is
an error naming the key, not a setting silently ignored.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

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
    return doc


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

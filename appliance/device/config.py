"""An ensemble's configuration: one JSON file with the command's flags as keys.

``appliance ensemble --config FILE`` and ``appliance rtm --config FILE`` read
it (the device install places it under ``/etc/appliance``); a flag given on
the command line wins over the file. Unknown keys are refused, so a typo is
an error naming the key, not a setting silently ignored. ``components`` lists
the ensemble's components as system files do (validated by the same code, and
each driver resolved now); ``sysfs_root`` is where ``sysfs:`` drivers find
``sys/`` (default ``/``).

``merged`` checks what the settings must be to work at all, before any
socket or process exists, and every refusal is one line naming where the
value came from: the flag (``--rtm: ...``) or the file and key
(``/etc/appliance/e.json: key 'rtm': ...``). So: a key given twice in the
file (JSON would keep the last, silently); an address that does not parse
or resolve; port 0 anywhere but the listen address (it means "any free
port" to bind, and reaches nothing); a wildcard host where the others must
reach this device; an address of the other IP family than the one UDP
socket the ensemble has; a key file that does not load.
"""
from __future__ import annotations

import os
import socket
from typing import Any, Dict, Iterable, List, Optional

from appliance.components.drivers import DriverError, check_drivers
from appliance.components.model import Component, ComponentError, component_from_wire
from appliance.keys import KeyFileError, load_cluster_key, load_manager_private_key, load_manager_public_key
from appliance.net.address import BadAddress, is_ipv6, parse_address, resolve_address
from appliance.program.errors import ProgramError
from appliance.program.jsonfile import load_json

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

#: The keys that name key files, and what loads (so checks) each.
KEY_FILES = {"cluster_key": load_cluster_key, "manager_key": load_manager_private_key,
             "manager_public_key": load_manager_public_key}


class ConfigError(ProgramError):
    """A configuration file or value that cannot be used; names the file and the key."""


def load_config(path: str, refused: Iterable[str] = ()) -> Dict[str, Any]:
    """The settings a configuration file holds, checked for names and types.
    ``refused``: keys the command refuses, left out of the list an unknown key is told."""
    doc = _read_json(path)
    if not isinstance(doc, dict):
        raise ConfigError("%s: must be a JSON object of settings" % path)
    for key, value in doc.items():
        kind = KEYS.get(key)
        if kind is None:
            raise ConfigError("%s: unknown key %r (known: %s)"
                              % (path, key, ", ".join(sorted(set(KEYS) - set(refused)))))
        if not isinstance(value, kind):
            raise ConfigError("%s: key %r must be a %s, got %r" % (path, key, kind.__name__, value))
        if value == "":  # an empty file name or address would otherwise read as "not given"
            raise ConfigError("%s: key %r is empty" % (path, key))
    if "components" in doc:
        doc["components"] = components_from_config(path, doc["components"])
    here = os.path.dirname(os.path.abspath(path))
    for key in KEY_FILES:  # relative to the file, as sysfs_root is: a service's working directory is /
        if key in doc:
            doc[key] = os.path.normpath(os.path.join(here, doc[key]))
    if "sysfs_root" in doc:
        # Relative to the file, like the driver modules next to it.
        root = os.path.join(here, doc["sysfs_root"])
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


def _read_json(path: str) -> Any:
    return load_json(path, lambda why: ConfigError("%s: %s" % (path, why)))


def merged(path: Optional[str], flags: Dict[str, Any], foreign: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """The file's settings, overridden by the flags that were given (not None), checked.
    A key of ``foreign`` in the file is refused first, with its text.

    Addresses come back canonical (host names resolved, to the listen socket's
    family where a name has both) and every key file has loaded once, so a
    setting that cannot work is refused here, naming its flag or file and key.
    """
    settings = load_config(path, foreign or ()) if path is not None else {}
    for key, refusal in (foreign or {}).items():
        if settings.get(key):
            raise ConfigError(refusal)
    given = {key: value for key, value in flags.items() if value is not None}
    for key, value in given.items():
        if value == "":
            raise ConfigError("%s: is empty" % _flag(key))
    settings.update(given)

    def where(key: str) -> str:
        return _flag(key) if key in given or key not in settings else "%s: key %r" % (path, key)

    listen = checked_address(settings.get("listen", DEFAULT_LISTEN), where("listen"), listen=True)
    if "listen" in settings:
        settings["listen"] = listen
    host = parse_address(listen)[0]
    family = socket.AF_UNSPEC if host == "::" else socket.AF_INET6 if is_ipv6(host) else socket.AF_INET
    for key in ("advertise", "rtm"):
        if key in settings:
            given_as = settings[key]
            settings[key] = checked_address(given_as, where(key), listen=False, prefer=family)
            _check_family(_shown(given_as, settings[key]), settings[key], where(key),
                          _shown(settings.get("listen", DEFAULT_LISTEN), listen), listen,
                          where("listen") + ("" if "listen" in settings else " (the default)"))
    for key, load in KEY_FILES.items():
        if settings.get(key):
            try:
                load(settings[key])
            except KeyFileError as exc:
                raise ConfigError("%s: %s" % (where(key), exc)) from None
    return settings


def checked_address(value: str, what: str, listen: Optional[bool] = None,
                    prefer: int = socket.AF_UNSPEC) -> str:
    """``host:port`` in its canonical spelling (host names resolved once, now).

    A ``listen`` address may have port 0 (bind any free port) and a wildcard
    host; an address to reach may not: nothing answers there. ``listen=None``
    means "if ``what`` is ``--listen``", for callers that name only the flag.
    ``prefer`` is the family a host name with both resolves to.
    """
    if listen is None:
        listen = what == "--listen"
    try:
        address = resolve_address(value, prefer)
    except BadAddress as exc:
        raise ConfigError("%s: %s" % (what, exc)) from None
    if not listen:
        host, port = parse_address(address)
        if port == 0:
            raise ConfigError("%s: port 0 in %r reaches nothing: give the port it listens on (port 0 means "
                              "'any free port' only to --listen)" % (what, value))
        if host in ("0.0.0.0", "::"):
            raise ConfigError("%s: %r is a wildcard (every interface of this host), not an address the "
                              "others can reach: give one of its addresses" % (what, value))
    return address


def cluster_key_flag(path: Optional[str]) -> Optional[bytes]:
    """The key ``--cluster-key`` names, if given; a file that does not load is that flag's error."""
    if path is None:
        return None
    try:
        return load_cluster_key(path)
    except KeyFileError as exc:
        raise ConfigError("--cluster-key: %s" % exc) from None


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def _shown(given: str, canonical: str) -> str:
    """An address as given, with what it resolved to when that differs (a name, another spelling)."""
    return given if given == canonical else "%s (%s)" % (given, canonical)


def _check_family(shown: str, address: str, what: str, listen_shown: str, listen: str, listen_what: str) -> None:
    """An ensemble has one UDP socket: a dual-stack ``[::]`` one reaches both families, any other one only its own."""
    listen_host, address_host = parse_address(listen)[0], parse_address(address)[0]
    if listen_host == "::" or is_ipv6(listen_host) == is_ipv6(address_host):
        return
    raise ConfigError("%s: %s is %s but %s: %s is %s, and the ensemble's one UDP socket is of one family "
                      "(listen on [::]:PORT for both)" % (what, shown, _family(address_host), listen_what,
                                                          listen_shown, _family(listen_host)))


def _family(host: str) -> str:
    return "IPv6" if is_ipv6(host) else "IPv4"


def is_wildcard(address: str) -> bool:
    host, _ = parse_address(address)
    return host in ("0.0.0.0", "::")

"""Starting an ensemble on this device from its settings, and watching it.

What the ``ensemble``, ``rtm`` and ``demo`` commands share: the settings
checked from flags and the configuration file, the UDP socket bound by the
supervisor, the process tree, and the wait for a signal or a dead child.
"""
from __future__ import annotations

import logging
import os
import socket
import sys
from typing import Any, Dict, List, Optional, Tuple

from appliance.device.config import DEFAULT_LISTEN, ConfigError, is_wildcard, merged
from appliance.device.hardware import with_compute
from appliance.device.supervisor import ChildDied, DeviceSettings, EnsembleTree, Signals, wait_readable
from appliance.keys import load_cluster_key
from appliance.net.address import format_address, is_loopback
from appliance.net.udp import bound_socket
from appliance.program.names import NAME_RULE, is_name

log = logging.getLogger("appliance.device")

#: Configuration keys only the other kind of ensemble uses (a file shared by both is refused).
_ENSEMBLE_ONLY = ("rtm", "manager_public_key")
_MANAGER_ONLY = ("manager_key",)


def bind(listen: str) -> socket.socket:
    """The ensemble's UDP socket, bound by the supervisor so a bad address fails before any child."""
    try:
        return bound_socket(listen)
    except OSError as exc:
        raise ConfigError("--listen %s: cannot bind: %s" % (listen, exc.strerror)) from None


def local_address(sock: socket.socket) -> str:
    """Where a command on this host reaches the ensemble bound to ``sock``: the address it is
    bound to, or loopback for a wildcard (a client from loopback is admitted)."""
    host, port = sock.getsockname()[:2]
    if is_wildcard(format_address(host, port)):
        host = "::1" if ":" in host else "127.0.0.1"
    return format_address(host, port)


def settings_from(flags: Dict[str, Any], config: Optional[str], hosts_runtime_manager: bool,
                  log_level: int, default_name: Optional[str] = None) -> Tuple[DeviceSettings, socket.socket]:
    """Checked settings (flags over the file), and the bound socket.

    ``default_name`` is the name when neither the flags nor the file give one (the
    runtime manager's ``runtime-manager``): applied after the merge, so it never hides
    the file's "name"."""
    # No flag of this command sets the other kind's keys: one given came from the file, and is
    # refused as such before anything in it is checked (a key file it names need not exist).
    whose = "an ensemble's, not the runtime manager's" if hosts_runtime_manager else \
        "the runtime manager's, not an ensemble's"
    foreign = {key: "%s: key %r is %s: this command does not use it" % (config, key, whose)
               for key in (_ENSEMBLE_ONLY if hosts_runtime_manager else _MANAGER_ONLY)}
    values = merged(config, flags, foreign)  # checked: addresses canonical and fit to use, key files load
    name = values.get("name") or default_name
    if not name:
        raise ConfigError('give the ensemble a name (--name, or "name" in the configuration file)')
    if not is_name(name):
        where = "--name" if flags.get("name") is not None else "%s: key 'name'" % config
        raise ConfigError("%s: ensemble name %r is not valid (%s)" % (where, name, NAME_RULE))
    listen = values.get("listen") or DEFAULT_LISTEN
    if not hosts_runtime_manager and not values.get("rtm"):
        raise ConfigError("give the runtime manager's address (--rtm HOST:PORT, or 'rtm' in the configuration file)")
    if is_wildcard(listen) and not values.get("advertise"):
        where = "--listen %s" % listen if flags.get("listen") is not None else \
            "%s: key 'listen', %s," % (config, listen) if "listen" in values else "--listen %s (the default)" % listen
        raise ConfigError("%s is a wildcard: give --advertise HOST:PORT (or 'advertise' in the configuration file), "
                          "the address the others reach this ensemble at (joins are checked against it)" % where)
    key = load_cluster_key(values["cluster_key"]) if values.get("cluster_key") else None
    sock = bind(listen)
    try:
        bound = format_address(*sock.getsockname()[:2])
        advertise = values.get("advertise") or bound
        if key is None and not is_loopback(advertise):
            raise ConfigError("without --cluster-key anyone who can send this ensemble a datagram could make it "
                              "run code: off loopback, give --cluster-key FILE (appliance keygen writes one)")
        rtm = advertise if hosts_runtime_manager else values["rtm"]
    except BaseException:
        sock.close()
        raise
    settings = DeviceSettings(
        name=name, advertise=advertise, rtm=rtm, hosts_runtime_manager=hosts_runtime_manager, cluster_key=key,
        manager_key_file=values.get("manager_key") if hosts_runtime_manager else None,
        manager_public_key_file=None if hosts_runtime_manager else values.get("manager_public_key"),
        log_level=log_level, components=tuple(with_compute(values.get("components", []))),
        sysfs_root=values.get("sysfs_root", "/"),
        driver_path=(os.path.dirname(os.path.abspath(config)),) if config else ())
    return settings, sock


class Running:
    """An ensemble's tree started, with SIGTERM and SIGINT turned into a readable descriptor.

    ``interrupts()`` are what a command waits on beside its own work; ``why()``
    says what happened when one is readable. Leaving the ``with`` stops the tree
    in order, on every path.
    """

    def __init__(self, settings: DeviceSettings, sock: socket.socket) -> None:
        self.tree = EnsembleTree(settings, sock)
        self.signals = Signals()
        #: The processes the shutdown had to kill: the command then exits 1.
        self.forced: List[str] = []

    def __enter__(self) -> Running:
        try:
            self.tree.start()
        except BaseException:
            self.signals.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.forced = self.tree.stop()
        finally:
            self.signals.close()

    def exit_status(self, status: int) -> int:
        """The command's exit status, ``status`` unless the shutdown had to force a process
        (1, each named on stderr: it did not finish what it held)."""
        if not self.forced:
            return status
        print("appliance: ensemble %s: %s did not stop in time and %s killed" % (
            self.tree.settings.name, ", ".join(self.forced), "was" if len(self.forced) == 1 else "were"),
            file=sys.stderr)
        return status or 1

    def interrupts(self) -> List[Any]:
        return [self.signals.fileno()] + self.tree.sentinels()

    def why(self) -> Optional[str]:
        """None while all is well; else what stopped it (raises ChildDied for a dead child)."""
        self.tree.check()
        if self.signals.received is not None:
            self.signals.drain()
            return "signal %d" % self.signals.received
        return None

    def serve(self) -> int:
        """Until a signal (exit status 0) or a child's death (1, named on stderr)."""
        try:
            while True:
                wait_readable(self.interrupts(), None)
                if self.why() is not None:
                    return 0
        except ChildDied as exc:
            print("appliance: ensemble %s: %s; stopping it" % (self.tree.settings.name, exc), file=sys.stderr)
            return 1

"""An ensemble's process tree: the supervisor creates the queues and the socket,
starts the processes, watches them, and shuts them down in order.

The supervisor is the long-lived parent: it creates every shared-memory
segment (and unlinks each on every way out) and binds the UDP socket (so a
bad address is its error, before any child starts), then starts the
input-token, execute and network-manager processes, and the runtime manager's
when this ensemble hosts it. A child that dies is reported with its name and
exit status, and the whole ensemble stops and exits non-zero, so that systemd
restarts it whole; so is an execute process stuck in a call its watchdog
cannot stop, which the supervisor kills (``pulse.py``). SIGTERM and SIGINT
stop it in order: an ``END`` to every process, which finishes what it holds and exits; a child that does not exit
in time is killed; then the segments are unlinked. The children ignore both
signals (a service manager or a terminal signals the whole process group, and
a child dead of it would be a crash), so the supervisor alone decides how they stop.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import multiprocessing
import os
import selectors
import signal
import socket
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

from appliance.components.drivers import Drivers
from appliance.components.model import Component
from appliance.device.clock import root_now
from appliance.device.lifecycle import stop_signals_held
from appliance.device.network_process import run_network
from appliance.device.process import run_core
from appliance.device.pulse import Pulse
from appliance.device.wiring import PROCESS_NAMES
from appliance.ipc import ExecuteMsg, Message, NetMsg, Recipient, RuntimeMsg, SyncMsg
from appliance.ipc.codec import encode_messages
from appliance.ipc.shmqueue import QueueError, ShmQueue, remove_orphans
from appliance.runtime.execute import ExecuteCore
from appliance.runtime.manager import RuntimeManagerCore
from appliance.runtime.sync import InputTokenCore

log = logging.getLogger("appliance.device")

#: The whole of a shutdown, from the signal to the last process gone: ``stop`` keeps within it.
SHUTDOWN_SECONDS = 5.0
#: Within it: putting the ENDs (a queue full for this long belongs to a process that is stuck),
ASK_SECONDS = 1.0
#: then finishing what they hold, from the start of the shutdown, before they are killed (SIGKILL:
#: they ignore SIGTERM), which leaves the rest of SHUTDOWN_SECONDS for the kernel to end them.
FINISH_SECONDS = 4.0
_END = {Recipient.INPUT_TOKENS: SyncMsg.END, Recipient.EXECUTE: ExecuteMsg.END, Recipient.NETWORK: NetMsg.END,
        Recipient.RUNTIME_MANAGER: RuntimeMsg.END}


@dataclass(frozen=True)
class DeviceSettings:
    """What an ensemble's processes need to know, checked by the command that starts it."""

    name: str
    advertise: str  # the address the others reach it at (joins are checked against it)
    rtm: str  # the runtime manager's address (this ensemble's own when it hosts it)
    hosts_runtime_manager: bool = False
    cluster_key: Optional[bytes] = None
    manager_key_file: Optional[str] = None  # on the runtime manager's ensemble: it signs control
    manager_public_key_file: Optional[str] = None  # elsewhere: control it did not sign is refused
    max_members: int = 4096
    log_level: int = logging.WARNING
    #: Its components (told the runtime manager at the join; the execute process opens their drivers).
    components: Tuple[Component, ...] = ()
    #: Where ``sysfs:`` drivers find ``sys/``.
    sysfs_root: str = "/"
    #: Directories searched for ``python:`` driver modules before ``sys.path`` (the configuration's).
    driver_path: Tuple[str, ...] = ()


class ChildDied(Exception):
    """A process of the ensemble exited on its own; the message names it and how."""


class EnsembleTree:
    """The processes of one ensemble on this device, as their supervisor runs them."""

    def __init__(self, settings: DeviceSettings, sock: socket.socket) -> None:
        self.settings = settings
        self.socket = sock
        self.queues: Dict[Recipient, ShmQueue] = {}
        self.children: Dict[Recipient, Any] = {}
        #: The execute process's beats, heard while it runs.
        self.pulse: Optional[Pulse] = None

    def start(self) -> None:
        """Remove what a killed earlier run of this ensemble left, create the queues, start the
        processes (with SIGINT and SIGTERM held, so that none dies of one before it ignores it)."""
        settings = self.settings
        removed = remove_orphans(settings.name)
        if removed:  # said on stderr, not logged: a command logs only errors unless --debug
            print("appliance: ensemble %s: removed %d shared-memory segment(s) a killed earlier run left"
                  % (settings.name, len(removed)), file=sys.stderr, flush=True)
        recipients = [Recipient.INPUT_TOKENS, Recipient.EXECUTE, Recipient.NETWORK]
        if settings.hosts_runtime_manager:
            recipients.append(Recipient.RUNTIME_MANAGER)
        try:
            for recipient in recipients:
                self.queues[recipient] = ShmQueue.create(settings.name, PROCESS_NAMES[recipient])
            self.pulse = Pulse()
            context = multiprocessing.get_context("spawn")  # fork+exec: the child inherits the mask
            with stop_signals_held():
                for recipient in recipients:
                    target, args = self._main_of(recipient)
                    child = context.Process(target=target, args=args, name="%s/%s" % (settings.name,
                                                                                     PROCESS_NAMES[recipient]))
                    child.start()
                    self.children[recipient] = child
                    if recipient is Recipient.EXECUTE:
                        self.pulse.watch(child.pid)
                    log.debug("%s: started %s (pid %d)", settings.name, child.name, child.pid)
        except BaseException:
            self.stop()
            raise
        log.info("%s: started %s", settings.name, ", ".join(c.name for c in self.children.values()))

    def _main_of(self, recipient: Recipient) -> Any:
        settings, parent = self.settings, os.getpid()
        name = "%s/%s" % (settings.name, PROCESS_NAMES[recipient])
        if recipient is Recipient.NETWORK:
            return run_network, (name, settings, self.socket, self.queues, parent)
        make: Callable[[], Any]
        if recipient is Recipient.INPUT_TOKENS:
            make = functools.partial(InputTokenCore, settings.name)
        elif recipient is Recipient.EXECUTE:
            make = functools.partial(ExecuteCore, settings.name, settings.components,
                                     Drivers(settings.name, root_now, settings.sysfs_root, settings.driver_path))
        else:
            make = functools.partial(RuntimeManagerCore, settings.advertise, name=settings.name,
                                     max_members=settings.max_members)
        pulse = self.pulse.ends() if recipient is Recipient.EXECUTE and self.pulse is not None else None
        return run_core, (name, make, self.queues, settings.log_level, parent, pulse)

    def sentinels(self) -> List[int]:
        return [child.sentinel for child in self.children.values()]

    def check(self) -> None:
        """Raise ChildDied if a process of the ensemble has exited."""
        for recipient, child in self.children.items():
            if child.exitcode is not None:
                how = ("killed by signal %d" % -child.exitcode) if child.exitcode < 0 else \
                    "exit status %d" % child.exitcode
                stuck = self.pulse.verdict if recipient is Recipient.EXECUTE and self.pulse is not None else None
                raise ChildDied("process %s (pid %d) %s" % (child.name, child.pid, stuck or "died: " + how))

    def post(self, messages: List[Message]) -> None:
        """Put messages on the queues of the processes they name (as a process would)."""
        for message in messages:
            self.queues[message.recipient].put(encode_messages([message]), control=True)

    def stop(self) -> List[str]:
        """END to every process, wait, kill what is left, unlink the queues: all within
        SHUTDOWN_SECONDS. Returns the names of the processes that had to be killed (none
        when every one finished what it held).

        A child that has not exited after FINISH_SECONDS gets SIGKILL at once: it ignores
        SIGTERM (``lifecycle.child_started``), and a stopped one (SIGSTOP, a debugger)
        could not act on it anyway."""
        started = time.monotonic()
        if self.pulse is not None:  # a teardown that hangs is this shutdown's to end
            self.pulse.close()
        ends = started + ASK_SECONDS  # a queue that cannot take an END in time: its process is stuck
        # The runtime manager first: what it tells its members as it stops goes out through the
        # network process, which must not have had its END before those messages.
        manager = self.children.get(Recipient.RUNTIME_MANAGER)
        if manager is not None:
            self._ask_to_stop(Recipient.RUNTIME_MANAGER, ends)
            _join_all([manager], ends)
        for recipient in self.children:
            if recipient is not Recipient.RUNTIME_MANAGER:
                self._ask_to_stop(recipient, ends)
        _join_all(self.children.values(), started + FINISH_SECONDS)
        forced = [child for child in self.children.values() if child.is_alive()]
        for child in forced:
            log.error("%s: %s did not stop within %.0f s; killing it", self.settings.name, child.name,
                      FINISH_SECONDS)
            child.kill()
        _join_all(forced, started + SHUTDOWN_SECONDS)
        for queue in self.queues.values():
            queue.close()
        self.queues.clear()
        self.socket.close()
        return [child.name for child in forced]

    def _ask_to_stop(self, recipient: Recipient, ends: float) -> None:
        child = self.children[recipient]
        if child.is_alive():
            try:
                self.queues[recipient].put(encode_messages([Message(_END[recipient], None, recipient)]),
                                           control=True, timeout=max(0.001, ends - time.monotonic()))
            except QueueError as exc:
                log.warning("%s: could not ask %s to stop: %s", self.settings.name, child.name, exc)


class Signals:
    """SIGTERM and SIGINT as a readable file descriptor, for the supervisor's selector."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self.received: Optional[int] = None
        self._previous = {number: signal.signal(number, self._note) for number in (signal.SIGTERM, signal.SIGINT)}
        self._wakeup = signal.set_wakeup_fd(self._write)

    def _note(self, number: int, _frame: Any) -> None:
        self.received = number

    def fileno(self) -> int:
        return self._read

    def drain(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self._read, 64)

    def close(self) -> None:
        signal.set_wakeup_fd(self._wakeup)
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        os.close(self._read)
        os.close(self._write)


def _join_all(children: Any, deadline: float) -> None:
    """Wait for the children to exit, until ``deadline`` on the monotonic clock at most."""
    for child in children:
        child.join(max(0.0, deadline - time.monotonic()))


def wait_readable(fds: List[Any], timeout: Optional[float]) -> List[Any]:
    """The objects (file descriptors or objects with ``fileno``) readable within ``timeout`` s."""
    with selectors.DefaultSelector() as selector:
        for fd in fds:
            selector.register(fd, selectors.EVENT_READ)
        return [key.fileobj for key, _ in selector.select(timeout)]

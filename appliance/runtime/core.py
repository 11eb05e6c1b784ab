"""What the process cores share: dispatch by message type, refusal of bad input, status."""
from __future__ import annotations

import logging
from collections import deque
from typing import Any, Callable, Deque, Dict, List, Optional

from appliance.ipc import TYPES_FOR, ClientMsg, Message, MessageType, Output, Recipient
from appliance.program.errors import ProgramError
from appliance.runtime import reports
from appliance.runtime.counters import Counters
from appliance.runtime.timers import LocalTimers, Timers

#: What a handler may raise on a payload that is not what its type promises.
MALFORMED = (TypeError, ValueError, KeyError, IndexError, AttributeError, ProgramError)


class Core:
    """A process core: ``handle(message, now)`` in, messages out; timers on request.

    A message of a type this process does not handle, or whose payload is
    malformed, is counted and logged with what was wrong; the core keeps
    serving. Every core answers its process's ``STATUS`` request (from the
    local control channel) with ``status()``.
    """

    recipient: Recipient

    def __init__(self, ensemble: str) -> None:
        self.ensemble = ensemble
        self.counters = Counters()
        #: Timers on the root clock (sample ticks, deadlines, the run window).
        self.timers = Timers()
        #: Timers on the local monotonic clock (waits measured only here).
        self.local_timers = LocalTimers()
        self.log = logging.getLogger("appliance.%s" % type(self).__name__)
        self._handlers: Dict[MessageType, Callable[[Any, int], List[Output]]] = {}
        self.on(TYPES_FOR[self.recipient].STATUS, self._status)
        #: What the process around the core adds to its status (a device's pid, memory and
        #: queue; the network manager's transport counters); its ``counters`` are merged.
        self.shell_status: Callable[[], Dict[str, Any]] = lambda: {}

    def on(self, msg_type: MessageType, handler: Callable[[Any, int], List[Output]]) -> None:
        self._handlers[msg_type] = handler

    def handle(self, message: Message, now: int) -> List[Output]:
        handler = self._handlers.get(message.msg_type)
        if handler is None or message.recipient is not self.recipient:
            self.counters.incr("refused.wrong_type")
            self.log.warning("%s: refused %s for %s: not handled here",
                             self.ensemble, message.msg_type, message.recipient)
            return []
        try:
            return handler(message.payload, now)
        except MALFORMED as exc:
            self.counters.incr("refused.malformed")
            self.log.warning("%s: refused malformed %s: %s", self.ensemble, message.msg_type.name, exc)
            return []

    def next_deadline(self) -> int:
        """The earliest tick a timer of this core is due (``IDLE`` when none is)."""
        return self.timers.due

    def on_timer(self, now: int) -> List[Output]:
        return self.timers.run_due(now)

    def next_local_deadline(self, local: int) -> int:
        """The earliest tick of the local clock a local timer is due (``IDLE`` when none is)."""
        return self.local_timers.next_due(local)

    def on_local_timer(self, now: int, local: int) -> List[Output]:
        return self.local_timers.run_due(local, now)

    @property
    def process(self) -> str:
        """The process's name in status replies: ``input_tokens``, ``execute``, ``network``, ..."""
        return self.recipient.name.lower()

    def status(self, now: int) -> Dict[str, Any]:
        """What this process reports to a ``STATUS`` request; cores add their own state."""
        status = {"ensemble": self.ensemble, "counters": self.counters.as_dict(),
                  "counters_epoch": self.counters.epoch, "timers": len(self.timers) + len(self.local_timers)}
        status.update(self.shell_status())
        return status

    def _status(self, request: Any, now: int) -> List[Output]:
        return [status_reply(request, self.process, self.status(now))]


def status_reply(request: Any, process: str, status: Dict[str, Any]) -> Message:
    return Message(ClientMsg.STATUS, (request, process, status), Recipient.CLIENT)


#: Apps a process remembers having removed, so that a deploy of one of them that
#: arrives late (reliable messages complete out of order) is refused.
RETIRED_APPS = 16


class AppCore(Core):
    """A core that hosts one app's part (deployed by the runtime manager) at a time.

    Every control message names its app and acts on that app only: a late
    removal of an earlier app leaves the current one alone, and a late deploy
    of an app already removed here is refused. A deploy of a new app while an
    older one is still here replaces it (the runtime manager deploys only
    once it is done with the old one, so the old one's teardown was lost).
    """

    def __init__(self, ensemble: str) -> None:
        super().__init__(ensemble)
        self.app: Optional[str] = None
        self.retired: Deque[str] = deque(maxlen=RETIRED_APPS)

    def refuse_deploy(self, app: Any) -> Optional[str]:
        """Why a deploy of ``app`` is refused here, or None; replaces an older app."""
        if not isinstance(app, str):
            raise TypeError("an app id is a string, got %r" % (app,))
        if app in self.retired:
            return "%s: app %s was already removed here" % (self.ensemble, app)
        return None

    def install(self, app: str) -> None:
        """``app`` is deployed here now: what is counted from here on is its."""
        if self.app is not None and self.app != app:
            self.log.warning("%s: app %s replaces app %s, which was never removed", self.ensemble, app, self.app)
            self.remove_app()
        if self.app != app:
            self.counters.clear()
        self.app = app

    def _remove(self, app: Any, now: int) -> List[Output]:
        if app != self.app:
            if isinstance(app, str) and app not in self.retired:
                self.retired.append(app)
            report: Dict[str, Any] = {"counters": {}, "sqs": {}}
        else:
            report = self.remove_app()
        return [reports.removed(app, self.ensemble, self.recipient, report)]

    def _forget(self, _payload: Any, now: int) -> List[Output]:
        """A new join: the apps removed here were a runtime manager's that may be gone, and a
        restarted one numbers its apps afresh (``main-1`` again), so they are forgotten."""
        self.retired.clear()
        return []

    def remove_app(self) -> Dict[str, Any]:
        """Drop the current app's part; return its teardown report. Cores extend it."""
        sqs = self.sq_report()  # first: a core may fold per-SQ counts into its totals
        report = {"counters": self.counters.as_dict(), "sqs": sqs}
        if self.app is not None:
            self.retired.append(self.app)
        self.app = None
        self.counters.clear()
        return report

    def sq_report(self) -> Dict[str, Dict[str, int]]:
        """Per-SQ counters for the teardown report; cores say what they count."""
        return {}

    def status(self, now: int) -> Dict[str, Any]:
        status = super().status(now)
        status["app"] = self.app
        return status

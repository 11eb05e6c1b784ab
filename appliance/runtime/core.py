"""What the process cores share: dispatch by message type, refusal of bad input."""
from __future__ import annotations

import logging
from typing import Callable, Dict, List, Optional

from appliance.ipc import Message, MessageType, Output, Recipient
from appliance.program.errors import ProgramError
from appliance.runtime.counters import Counters
from appliance.runtime.timers import Timers

#: What a handler may raise on a payload that is not what its type promises.
MALFORMED = (TypeError, ValueError, KeyError, IndexError, AttributeError, ProgramError)


class Core:
    """A process core: ``handle(message, now)`` in, messages out; timers on request.

    A message of a type this process does not handle, or whose payload is
    malformed, is counted and logged with what was wrong; the core keeps
    serving.
    """

    recipient: Recipient

    def __init__(self, ensemble: str) -> None:
        self.ensemble = ensemble
        self.counters = Counters()
        self.timers = Timers()
        self.log = logging.getLogger("appliance.%s" % type(self).__name__)
        self._handlers: Dict[MessageType, Callable[[object, int], List[Output]]] = {}

    def on(self, msg_type: MessageType, handler: Callable[[object, int], List[Output]]) -> None:
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
            return self.malformed(message, exc)

    def handlers(self) -> Dict[MessageType, Callable[[object, int], List[Output]]]:
        """Each message type's handler, called with ``(payload, now)``.

        For a shell that runs several cores in one loop and dispatches by type
        itself (the simulated one: it saves a call per message). It must do
        what ``handle`` does around the call: refuse a message whose recipient
        is not this core's (``handle`` counts it), and turn a MALFORMED
        exception into ``malformed(message, exc)``.
        """
        return dict(self._handlers)

    def malformed(self, message: Message, exc: Exception) -> List[Output]:
        """Count and log a message whose payload is not what its type promises."""
        self.counters.incr("refused.malformed")
        self.log.warning("%s: refused malformed %s: %s", self.ensemble, message.msg_type.name, exc)
        return []

    def next_timer(self) -> Optional[int]:
        return self.timers.next_due()

    def on_timer(self, now: int) -> List[Output]:
        return self.timers.run_due(now)

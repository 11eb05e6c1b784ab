"""Messages every core sends to the runtime manager, through its network manager."""
from __future__ import annotations

from typing import Dict, List

from appliance.ipc import Message, NetMsg, Recipient, RuntimeMsg

#: Error reports (with tracebacks) sent to the runtime manager per SQ; later errors are only counted.
MAX_ERROR_REPORTS = 5


def to_runtime_manager(*messages: Message) -> Message:
    """Wrap messages for the runtime manager; the network manager knows where it is."""
    return Message(NetMsg.REPORT, list(messages), Recipient.NETWORK)


def ready(app: str, ensemble: str, process: Recipient, errors: List[str]) -> Message:
    return to_runtime_manager(
        Message(RuntimeMsg.SQS_READY, (app, ensemble, process.value, errors), Recipient.RUNTIME_MANAGER))


def removed(app: str, ensemble: str, process: Recipient, report: Dict[str, object]) -> Message:
    return to_runtime_manager(
        Message(RuntimeMsg.SQS_REMOVED, (app, ensemble, process.value, report), Recipient.RUNTIME_MANAGER))

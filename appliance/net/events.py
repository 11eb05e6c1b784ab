"""What the endpoint reports to its shell: messages delivered, sends given up."""
from __future__ import annotations

from typing import NamedTuple, Union


class Delivered(NamedTuple):
    """A whole message arrived from ``peer``; reported once per message id, class and peer
    session. Reliable and best-effort messages are numbered independently, so
    ``(message_id, reliable)`` is what names the message."""

    peer: str
    payload: bytes
    message_id: int
    reliable: bool


class SendFailed(NamedTuple):
    """A reliable message was given up; its state is freed and it is never retried again.

    It may or may not have been delivered (its acknowledgement may be what
    was lost); ``reason`` says why it ended."""

    peer: str
    message_id: int
    reason: str


Event = Union[Delivered, SendFailed]

"""What the endpoint reports to its shell: messages delivered, sends given up."""
from __future__ import annotations

from typing import NamedTuple, Union


class Delivered(NamedTuple):
    """A whole message arrived from ``peer``; reported once per message id and peer session."""

    peer: str
    payload: bytes
    message_id: int


class SendFailed(NamedTuple):
    """A reliable message was given up; its state is freed and it is never retried again."""

    peer: str
    message_id: int
    reason: str


Event = Union[Delivered, SendFailed]

"""Why ``Endpoint.send`` refuses a message. Each is a ValueError and is also counted."""
from __future__ import annotations


class SendRefused(ValueError):
    """Base of the refusals; catch this to handle back-pressure in one place."""


class MessageTooLarge(SendRefused):
    """The payload exceeds ``TransportConfig.max_message_size``."""


class TooManyInFlight(SendRefused):
    """The peer has ``max_in_flight`` unacknowledged reliable messages and ``max_queued``
    more waiting behind them: it has stopped keeping up; retry later."""


class TooManyPeers(SendRefused):
    """The peer table is full of peers with work in progress; none could be evicted."""

"""Messages between processes and ensembles, and their safe wire encoding."""
from appliance.ipc.message import (
    ExecuteMsg,
    ExecutionContext,
    Layer,
    Message,
    MessageType,
    NetMsg,
    Output,
    Recipient,
    RuntimeMsg,
    SyncMsg,
    Transmission,
)

__all__ = [
    "ExecutionContext",
    "ExecuteMsg",
    "Layer",
    "Message",
    "MessageType",
    "NetMsg",
    "Output",
    "Recipient",
    "RuntimeMsg",
    "SyncMsg",
    "Transmission",
]

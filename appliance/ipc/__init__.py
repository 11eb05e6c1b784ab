"""Messages between processes and ensembles, and their safe wire encoding."""
from appliance.ipc.message import (
    TYPES_FOR,
    ClientMsg,
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
    "ClientMsg",
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
    "TYPES_FOR",
    "Transmission",
]

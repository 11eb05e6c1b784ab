"""Reliable UDP transport between ensembles: a sans-I/O endpoint and its shells.

``Endpoint`` is the protocol (docs/protocol.md); ``appliance.net.udp`` drives
it with a real socket, ``appliance.sim.link`` with a simulated network, and
``appliance.net.relay`` is a lossy UDP proxy for testing a deployment.
``identity_digest(name)`` is what ``Endpoint.peer_identity`` reports for a
peer that gave ``identity=name``.
"""
from __future__ import annotations

from appliance.net.auth import identity_digest
from appliance.net.config import TransportConfig
from appliance.net.endpoint import ENDPOINT, Endpoint
from appliance.net.errors import MessageTooLarge, SendRefused, TooManyInFlight, TooManyPeers
from appliance.net.events import Delivered, Event, SendFailed

__all__ = [
    "ENDPOINT",
    "Delivered",
    "Endpoint",
    "Event",
    "MessageTooLarge",
    "SendFailed",
    "SendRefused",
    "TooManyInFlight",
    "TooManyPeers",
    "TransportConfig",
    "identity_digest",
]

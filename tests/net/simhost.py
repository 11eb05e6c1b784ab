"""An endpoint attached to appliance.sim.link, its timers driven by simpy timeouts."""
from __future__ import annotations

from typing import List, Optional

import simpy

from appliance.net import Delivered, Endpoint, SendFailed
from appliance.sim.link import SimNetwork


class SimHost:
    def __init__(self, env: simpy.Environment, network: SimNetwork, address: str,
                 endpoint: Endpoint) -> None:
        self.env = env
        self.network = network
        self.address = address
        self.endpoint = endpoint
        self.delivered: List[Delivered] = []
        self.failed: List[SendFailed] = []
        self._armed: Optional[int] = None
        network.attach(address, self._arrive)

    def send(self, destination: str, payload: bytes, reliable: bool = True) -> int:
        message_id = self.endpoint.send(destination, payload, reliable, self.env.now)
        self._pump()
        return message_id

    def _arrive(self, datagram: bytes, source: str) -> None:
        self.endpoint.receive_datagram(datagram, source, self.env.now)
        self._pump()

    def _pump(self) -> None:
        for datagram, destination in self.endpoint.datagrams_to_send():
            self.network.send(self.address, destination, datagram)
        for event in self.endpoint.events():
            (self.delivered if isinstance(event, Delivered) else self.failed).append(event)
        self._arm()

    def _arm(self) -> None:
        """Keep one simpy timeout at the endpoint's earliest deadline; stale ones do nothing."""
        deadline = self.endpoint.get_timer()
        if deadline is None or (self._armed is not None and self._armed <= deadline):
            return
        self._armed = deadline
        timeout = self.env.timeout(max(0, deadline - self.env.now))
        timeout.callbacks.append(lambda _event: self._fire(deadline))

    def _fire(self, deadline: int) -> None:
        if self._armed != deadline:
            return
        self._armed = None
        self.endpoint.handle_timer(self.env.now)
        self._pump()

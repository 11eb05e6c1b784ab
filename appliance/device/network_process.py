"""The network manager's OS process: one selector over its queue and its UDP socket.

It drives a ``NetworkManager`` (core, transport endpoint, codec: everything that
decides anything) and does only I/O: datagrams from the socket in, datagrams
out, messages from its queue in, messages for the other processes out, and
one wait until the earlier of the two clocks' deadlines. Reports for clients
(``Recipient.CLIENT``) go to the network manager, which sends them to the
clients on this host that asked.
"""
from __future__ import annotations

import functools
import logging
import os
import selectors
import socket
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

from appliance.device import clock
from appliance.device.lifecycle import child_started
from appliance.device.process import wait_seconds
from appliance.device.wiring import Outboxes, count_queue_drops, decode_batch, device_status
from appliance.ipc import Layer, Message, NetMsg, Recipient, RuntimeMsg
from appliance.ipc.shmqueue import ShmQueue
from appliance.ipc.shmqueue.doorbell import FD_SETSIZE
from appliance.keys import load_manager_private_key, load_manager_public_key
from appliance.net import Endpoint, TransportConfig
from appliance.net.udp import UdpShell
from appliance.runtime.network import NetworkCore
from appliance.runtime.network_manager import NetworkManager
from appliance.runtime.signing import ControlSigner, ControlVerifier
from appliance.system import EnsembleDescription

if TYPE_CHECKING:
    from appliance.device.supervisor import DeviceSettings

log = logging.getLogger("appliance.device")

#: Transport peers beyond the members a runtime manager takes (clients, strangers).
SPARE_PEERS = 16


class _Feed:
    """The network manager as the socket shell sees a transport: it takes datagrams and
    hands out datagrams; what they produce for the other processes collects in ``out``."""

    def __init__(self, network: NetworkManager) -> None:
        self.network = network
        self.authenticated = network.endpoint.authenticated
        self.out: List[Message] = []

    def receive_datagram(self, datagram: bytes, source: str, local: int) -> None:
        self.out.extend(self.network.receive_datagram(datagram, source, clock.root_now(), local))

    def datagrams_to_send(self) -> List[Tuple[bytes, str]]:
        return self.network.datagrams_to_send()

    def get_timer(self) -> Optional[int]:
        return None  # the loop below waits for the network manager's deadlines itself

    def events(self) -> list:
        return []

    def stats(self) -> Dict[str, Dict[str, int]]:
        return self.network.endpoint.stats()


def build_network_manager(settings: DeviceSettings, inbox: ShmQueue) -> NetworkManager:
    """The network manager of this ensemble, with its keys; a fresh transport session per start."""
    core = NetworkCore(settings.name, settings.advertise, hosts_runtime_manager=settings.hosts_runtime_manager)
    config = TransportConfig(max_peers=max(TransportConfig().max_peers, settings.max_members + SPARE_PEERS))
    session = int.from_bytes(os.urandom(8), "big") or 1
    endpoint = Endpoint(config, session=session, key=settings.cluster_key, identity=settings.name.encode())
    signer = verifier = None
    if settings.hosts_runtime_manager and settings.manager_key_file:
        signer = ControlSigner(load_manager_private_key(settings.manager_key_file),
                               int.from_bytes(os.urandom(8), "big"))
    if not settings.hosts_runtime_manager and settings.manager_public_key_file:
        verifier = ControlVerifier(load_manager_public_key(settings.manager_public_key_file), os.urandom(16))
    return NetworkManager(core, endpoint, signer=signer, verifier=verifier,
                          shell_status=functools.partial(device_status, inbox))


def run_network(name: str, settings: DeviceSettings, sock: socket.socket, queues: Dict[Recipient, ShmQueue],
                parent: int) -> None:
    """The main function of the network manager's process."""
    child_started(name, settings.log_level, parent)
    inbox = queues[Recipient.NETWORK]
    network = build_network_manager(settings, inbox)
    feed = _Feed(network)
    udp = UdpShell(feed, sock=sock)  # type: ignore[arg-type]  # the socket shell drives the feed
    network.transport_stats = udp.stats
    outboxes = Outboxes(queues, network.counters)
    # select(2), not epoll: its timeout is in µs, epoll's in whole ms (rounded up), which would
    # make every wait for a timer up to a millisecond late. poll where select cannot watch them.
    low = max(inbox.fileno(), sock.fileno()) < FD_SETSIZE
    selector = selectors.SelectSelector() if low else selectors.PollSelector()
    selector.register(inbox.fileno(), selectors.EVENT_READ, inbox)
    udp.register(selector, udp)
    now, local = clock.both()
    description = EnsembleDescription(settings.name, settings.advertise, list(settings.components)).to_wire()
    if settings.hosts_runtime_manager:  # it joins itself, so it hosts SQs like the others
        out = [Message(RuntimeMsg.JOIN, description, Recipient.RUNTIME_MANAGER)]
    else:
        out = network.handle(Message(NetMsg.JOIN_NETWORK, (settings.rtm, description), Recipient.NETWORK),
                             now, local)
    dropped = 0
    running = True
    while running:
        now, local = clock.both()
        if network.next_local_deadline(local) <= local:
            out.extend(network.on_local_timer(now, local))
        if network.next_deadline() <= now:
            out.extend(network.on_timer(now, local))
        # The other processes' messages first: a datagram on loopback runs its receiver's whole
        # receive path inside sendto, and what is sent after a handled datagram is most often
        # only its acknowledgement, while the message it carried waits for the put.
        outboxes.send(out)
        out = []
        udp.flush()
        wait = wait_seconds(network.next_deadline(), network.next_local_deadline(local), now, local)
        ready = [key.data for key, _ in selector.select(wait)] if inbox.arm() else [inbox]
        now, local = clock.both()
        for source in ready:
            if source is inbox:
                batch = inbox.get_many()
                dropped = count_queue_drops(inbox, dropped, network.core.counters)
                for data in batch:
                    for message in decode_batch(data, network.counters):
                        if message.msg_type.layer is Layer.SYSTEM:  # END: the core says goodbye, then out
                            running = False
                            out.extend(network.handle(message, now, local))
                        elif message.recipient is Recipient.CLIENT:
                            unheard = network.to_client(message, now, local)
                            if unheard:  # no client asked to hear them: nothing was lost
                                network.counters.incr("reports_unheard", len(unheard))
                        else:
                            out.extend(network.handle(message, now, local))
            else:
                udp.receive()
                out.extend(feed.out)
                del feed.out[:]
    udp.flush()
    outboxes.send(out)
    udp.close()
    for queue in queues.values():
        queue.close()

"""The network-manager process whole: its core, the transport endpoint and the codec.

I/O-free like its parts. A shell (the simulated ensemble, or the device's
network process) feeds it local messages, datagrams and the time, and drains
the datagrams to send and the messages for the ensemble's other processes and
its local client. Everything that decides anything between the core and the
wire lives here, so the two shells cannot drift apart: decoding what the
transport delivers (and refusing what does not decode), turning the
transport's give-ups and the codec's refusals into the core's reports,
routing the core's outputs to itself, to the transport or out, merging the
core's deadlines with the transport's, and the policy that says when SQ code
may come from the network.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from appliance.ipc import Message, NetMsg, Output, Recipient, Transmission
from appliance.ipc.codec import CodecError, decode_messages, encode_messages
from appliance.net import Delivered, Endpoint
from appliance.net.address import BadAddress, is_loopback, parse_address
from appliance.net.sender import RESTARTED
from appliance.runtime.core import MALFORMED
from appliance.runtime.network import NetworkCore
from appliance.runtime.signing import ControlSigner, ControlVerifier, changes_an_ensemble
from appliance.runtime.status import answered_transport

log = logging.getLogger("appliance.network")

# Hot-path constants: an enum member lookup costs ~0.1 µs, a global ~0.01 µs.
_NETWORK, _CLIENT, _SIGNED = Recipient.NETWORK, Recipient.CLIENT, NetMsg.SIGNED


def _host(address: str) -> str:
    try:
        return parse_address(address)[0]
    except BadAddress:
        return ""


#: What a refusal of signed control most likely means, for the operator reading the log.
_WHY_REFUSED = {"bad_signature": " (not signed by the manager key whose public key this ensemble has: the "
                                 "manager_public_key given here is another keygen's?)"}


class NetworkManager:
    """The network-manager process: ``NetworkCore`` + ``Endpoint`` + the safe codec.

    SQ code (the deploy message's execute part) is admitted from the network
    only when its source is proven: the transport authenticates every datagram
    (a cluster key), the network is closed (``closed_network``: the
    simulator's, which only this process's ensembles reach), or the source is
    this host's loopback. A UDP source address elsewhere, which anyone can
    forge, never admits code.
    """

    recipient = Recipient.NETWORK

    def __init__(self, core: NetworkCore, endpoint: Endpoint, closed_network: bool = False,
                 signer: Optional[ControlSigner] = None, verifier: Optional[ControlVerifier] = None,
                 shell_status: Callable[[], Dict[str, Any]] = dict) -> None:
        self.core = core
        self.endpoint = endpoint
        self.closed_network = closed_network
        #: On the runtime manager's ensemble, with the manager's private key: signs control it sends.
        self.signer = signer
        #: With the manager's public key: opens signed control, and nothing else is admitted.
        self.verifier = verifier
        core.boot = "%x" % endpoint.session
        if verifier is not None:
            core.requires_signature = True
            core.next_nonce = verifier.next_nonce
        #: Where the process counts what it refused itself (undecodable datagrams, messages for no
        #: process): the core's, so that they count afresh together at each deploy and teardown.
        self.counters = core.counters
        core.admits_code = self.admits_code
        core.admits_client = self.admits_client
        core.shell_status = self._shell_status
        core.routes_changed = self._members
        self._members(set(core.routes.values()) - {core.address})
        self._device_status = shell_status
        #: The transport's counters for ``status``: the socket shell's (the endpoint's and its
        #: socket's) on a device, where it replaces this.
        self.transport_stats: Callable[[], Dict[str, Dict[str, int]]] = endpoint.stats
        # The transport's next deadline, cached: asking the endpoint scans its busy peers,
        # and a shell asks after every message. Only a call into the endpoint changes it.
        self._transport_due: Optional[int] = None
        self._transport_changed = True

    def _members(self, addresses: Set[str]) -> None:
        """The routing table's addresses are members: the transport never evicts their state."""
        self._member_addresses = addresses
        try:
            self.endpoint.set_members(addresses)
        except ValueError as exc:  # more routes than peers: the peer table was sized too small
            log.error("%s: the transport cannot keep every member: %s", self.core.ensemble, exc)

    def admits_code(self, source: str) -> bool:
        return self.endpoint.authenticated or self.closed_network or is_loopback(source)

    def admits_client(self, source: str) -> bool:
        """A client of the local control channel is a command on this host: its source is
        loopback, or this ensemble's own address (the simulator's closed network has no
        clients: its harness is in-process)."""
        if self.closed_network:
            return False
        return is_loopback(source) or _host(source) == _host(self.core.address)

    # -- what the shell feeds in ----------------------------------------------------
    #
    # ``now`` is the ensemble's root clock (what the core sees; on devices the
    # synchronised wall clock), ``local`` its local monotonic clock (what the transport
    # and local waits run on). Shells read both at once and pass both.

    def handle(self, message: Message, now: int, local: int) -> List[Message]:
        """A message for this process from the ensemble's other processes or its client."""
        return self._route(self.core.handle(message, now), now, local)

    def to_client(self, message: Message, now: int, local: int) -> List[Message]:
        """A report another process made for the client: to the clients over the network
        that want it, or back (returned) for a client in this process."""
        return self._route([message], now, local)

    def receive_datagram(self, datagram: bytes, source: str, now: int, local: int) -> List[Message]:
        self._transport_changed = True
        self.endpoint.receive_datagram(datagram, source, local)
        return self._take_events(now, local)

    def on_timer(self, now: int, local: int) -> List[Message]:
        """Run the core's root-clock timers that are due."""
        return self._route(self.core.on_timer(now), now, local)

    def on_local_timer(self, now: int, local: int) -> List[Message]:
        """Run what is due on the local clock: the transport's retransmissions and
        give-ups, then the core's local waits (join retries)."""
        out: List[Message] = []
        due = self._transport_deadline()
        if due is not None and due <= local:
            self._transport_changed = True
            self.endpoint.handle_timer(local)
            out = self._take_events(now, local)
        if self.core.next_local_deadline(local) <= local:
            out.extend(self._route(self.core.on_local_timer(now, local), now, local))
        return out

    def refuse(self, message: Message) -> None:
        """A message for a process this ensemble does not run (posted by a client)."""
        self.counters.incr("refused.no_such_process")
        log.warning("%s: refused %s: no %s process here", self.core.ensemble, message.msg_type,
                    message.recipient.name.lower())

    # -- what the shell drains ------------------------------------------------------

    def next_deadline(self) -> int:
        """The earliest root-clock tick a core timer is due (``IDLE`` when none is)."""
        return self.core.timers.due

    def next_local_deadline(self, local: int) -> int:
        """The earliest local-clock tick the transport or a local wait is due (``IDLE``: none)."""
        due = self.core.next_local_deadline(local)
        transport = self._transport_deadline()
        return transport if transport is not None and transport < due else due

    def _transport_deadline(self) -> Optional[int]:
        if self._transport_changed:
            self._transport_due = self.endpoint.get_timer()
            self._transport_changed = False
        return self._transport_due

    def datagrams_to_send(self) -> List[Tuple[bytes, str]]:
        return self.endpoint.datagrams_to_send()

    def _shell_status(self) -> Dict[str, Any]:
        return dict(self._device_status(), transport=answered_transport(self.transport_stats(), self._member_addresses))

    # -- inside ---------------------------------------------------------------------

    def _route(self, outputs: List[Output], now: int, local: int) -> List[Message]:
        """Messages for this process are handled at once, transmissions go to the
        transport, the rest is for the shell to hand to the other processes."""
        if len(outputs) == 1:  # the commonest: one token for a local SQ; nothing to route
            out = outputs[0]
            if out.__class__ is not Transmission and out.recipient is not _NETWORK and out.recipient is not _CLIENT:
                return outputs  # type: ignore[return-value]
        messages: List[Message] = []
        i = 0
        while i < len(outputs):
            out = outputs[i]
            i += 1
            if out.__class__ is Transmission:
                more = self._transmit(out, now, local)
            elif out.recipient is _NETWORK:
                more = self.core.handle(out, now)
            elif out.recipient is _CLIENT:
                routed = self.core.to_client(out)
                if routed is None:
                    messages.append(out)
                    continue
                more = routed
            else:
                messages.append(out)
                continue
            if more:
                outputs = outputs[i:] + more
                i = 0
        return messages

    def _transmit(self, transmission: Transmission, now: int, local: int) -> List[Output]:
        self._transport_changed = True
        messages = transmission.messages
        try:
            data = encode_messages(messages)
            if self.signer is not None and transmission.target and changes_an_ensemble(messages):
                data = encode_messages([self.signer.seal(transmission.address, transmission.target, data)])
            self.endpoint.send(transmission.address, data, transmission.reliable, local)
        except Exception as exc:  # whatever the codec or the transport refuses: reported, never raised
            return self.core.unsendable(transmission, "%s: %s" % (type(exc).__name__, exc))
        return []

    def _take_events(self, now: int, local: int) -> List[Message]:
        out: List[Message] = []
        for event in self.endpoint.events():
            if event.__class__ is Delivered:
                try:
                    messages = decode_messages(event.payload)
                except CodecError as exc:
                    self.counters.incr("refused.undecodable")
                    log.warning("%s: undecodable message from %s: %s", self.core.ensemble, event.peer, exc)
                    continue
                outputs = self._deliver(messages, event.peer, now)
                if outputs is None:
                    continue
            else:  # SendFailed
                outputs = self.core.transmission_failed(event.peer, event.reason, event.reason == RESTARTED)
            out.extend(self._route(outputs, now, local))
        return out

    def _deliver(self, messages: List[Message], source: str, now: int) -> Optional[List[Output]]:
        signed = False
        if messages and messages[0].msg_type is _SIGNED:
            if self.verifier is None:
                self.counters.incr("refused.signed_without_key")  # no manager key here to check it
                log.warning("%s: refused signed control from %s: no manager public key is configured",
                            self.core.ensemble, source)
                return None
            core = self.core
            opened, refusal = self.verifier.open(messages[0].payload, (core.ensemble, core.address),
                                                 core.join_nonce)
            if opened is None:
                self.counters.incr("refused." + refusal)
                log.warning("%s: refused signed control from %s: %s%s", core.ensemble, source, refusal,
                            _WHY_REFUSED.get(refusal, ""))
                return None
            messages, signed = opened, True
        try:
            return self.core.deliver(messages, source, now, signed)
        except MALFORMED as exc:  # a decodable message whose fields are not what its type says
            self.counters.incr("refused.malformed")
            log.warning("%s: refused a malformed transmission from %s: %s", self.core.ensemble, source, exc)
            return []

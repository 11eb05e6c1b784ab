"""A command's end of an ensemble's local control channel.

The channel is the ensemble's own transport, on this host: the client is a
transport endpoint on a loopback port, which the ensemble admits as a client
because the address is loopback (``NetworkManager.admits_client``). Requests
are ordinary messages (``STATUS``, ``SUBSCRIBE``, ``INSTANTIATE_AND_MAP``,
``TEARDOWN``); what comes back are ``ClientMsg`` messages. With a cluster key
the client needs it too, like any peer.
"""
from __future__ import annotations

import os
import selectors
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

from appliance.ipc import ClientMsg, Message, NetMsg, Recipient
from appliance.ipc.codec import CodecError, decode_messages, encode_messages
from appliance.ipc.shmqueue.layout import HEADER
from appliance.ipc.shmqueue.queue import DEFAULT_CONTROL_BYTES
from appliance.net import Delivered, Endpoint, SendFailed, TransportConfig
from appliance.net.address import canonical_address, is_ipv6, parse_address
from appliance.net.udp import UdpShell, now_us
from appliance.program.errors import ProgramError

#: The largest request (one encoded message) an ensemble takes from its client. The network
#: process hands a request on to its process's queue as one control record, at most the
#: ring's capacity less the record's header; a larger one is dropped there, with nothing
#: said to the client, which would wait for an answer forever (the transport's own bound,
#: 4 MiB, is the looser).
MAX_REQUEST_BYTES = min(DEFAULT_CONTROL_BYTES - HEADER, TransportConfig().max_message_size)


#: How long a closing client waits for the ensemble to take its UNSUBSCRIBE (on this host:
#: well under a millisecond when the ensemble runs).
UNSUBSCRIBE_SECONDS = 0.5


class ClientError(ProgramError):
    """The ensemble did not answer, or answered that it could not."""


class RequestTooLarge(ClientError):
    """A request larger than the ensemble can take (``MAX_REQUEST_BYTES``), refused before
    it is sent: sent, it would be dropped unanswered."""

    def __init__(self, message: Message, size: int) -> None:
        super().__init__("a %s request of %d bytes is larger than an ensemble takes (%d bytes at most)"
                         % (message.msg_type.name, size, MAX_REQUEST_BYTES))
        self.size = size
        self.limit = MAX_REQUEST_BYTES


def check_request(message: Message) -> None:
    """Raise RequestTooLarge if ``message`` is larger than an ensemble takes, so a command
    can say so before it starts anything (or waits for an answer that cannot come)."""
    size = len(encode_messages([message]))
    if size > MAX_REQUEST_BYTES:
        raise RequestTooLarge(message, size)


class ControlClient:
    """Talks to the ensemble at ``address`` (its transport address; on this host).

    ``peer`` is what errors call it: "ensemble", or "runtime manager" for a command
    that talks to one (``deploy``, ``rtm``), so the user reads what they started."""

    def __init__(self, address: str, cluster_key: Optional[bytes] = None, peer: str = "ensemble") -> None:
        self.peer = peer
        self.target = canonical_address(address)
        host, _ = parse_address(self.target)
        endpoint = Endpoint(TransportConfig(), session=int.from_bytes(os.urandom(8), "big") or 1, key=cluster_key)
        # From the ensemble's own host address (loopback, or the address it listens on):
        # what it admits as a client on this host.
        try:
            self.udp = UdpShell(endpoint, bind=("[%s]:0" if is_ipv6(host) else "%s:0") % host)
        except OSError as exc:  # EADDRNOTAVAIL: not an address of this host
            raise ClientError("%s is not an address of this host (%s): a command talks to the %s on its own "
                              "host" % (self.target, exc.strerror, peer)) from None
        self.reports: List[Message] = []
        self.failure = ""
        self.subscribed = False

    def send(self, *messages: Message) -> None:
        """Send ``messages`` (one transmission when they fit in one). A message the ensemble
        could not take raises RequestTooLarge before anything is sent. A ``SUBSCRIBE`` among
        them is undone as the client closes."""
        self.subscribed = self.subscribed or any(m.msg_type is NetMsg.SUBSCRIBE for m in messages)
        payload = encode_messages(list(messages))
        if len(payload) <= MAX_REQUEST_BYTES:  # each message then fits too
            self.udp.send(self.target, payload, True)
        else:
            for message in messages:
                check_request(message)
            for message in messages:
                self.udp.send(self.target, encode_messages([message]), True)
        self.udp.flush()

    def wait(self, done: Callable[[], bool], seconds: Optional[float], interrupt: Sequence[Any] = ()) -> bool:
        """Serve the channel until ``done()`` (True), ``seconds`` pass (False; None: no
        limit) or one of ``interrupt`` (file descriptors: signals, child processes) is
        readable (False: the caller looks why). Reports collect in ``reports``. A request
        the transport gave up on raises ClientError."""
        deadline = None if seconds is None else now_us() + int(seconds * 1e6)
        with selectors.DefaultSelector() as selector:
            self.udp.register(selector)
            for fd in interrupt:
                selector.register(fd, selectors.EVENT_READ, None)
            try:
                while True:
                    self.udp.service()
                    self._collect()
                    if self.failure:
                        raise ClientError("no answer from the %s at %s: %s" % (self.peer, self.target, self.failure))
                    if done():
                        return True
                    self.udp.flush()  # done() may have sent
                    wait = self.udp.timeout()
                    if deadline is not None:
                        remaining = max(0.0, (deadline - now_us()) / 1e6)
                        if remaining == 0:
                            return False
                        wait = remaining if wait is None else min(wait, remaining)
                    for key, mask in selector.select(wait):
                        if key.data is None:
                            return False
                        self.udp.service(readable=bool(mask & selectors.EVENT_READ))
            finally:
                self.udp.unregister()

    def status(self, requests: List[Message], expected: Callable[[Dict[str, dict]], bool],
               seconds: float) -> Dict[str, dict]:
        """Send STATUS requests (one request id) and gather the answers by process name."""
        request = requests[0].payload
        self.send(*requests)
        answers: Dict[str, dict] = {}

        def complete() -> bool:
            for report in self.take(ClientMsg.STATUS):
                if report.payload[0] == request:
                    answers[report.payload[1]] = report.payload[2]
            return expected(answers)

        self.wait(complete, seconds)
        return answers

    def take(self, *kinds: ClientMsg) -> List[Message]:
        """The reports of these kinds received so far, in the order they came (removed from ``reports``)."""
        taken = [m for m in self.reports if m.msg_type in kinds]
        self.reports = [m for m in self.reports if m.msg_type not in kinds]
        return taken

    def _collect(self) -> None:
        for event in self.udp.events():
            if isinstance(event, Delivered):
                try:
                    self.reports.extend(m for m in decode_messages(event.payload) if isinstance(m.msg_type, ClientMsg))
                except CodecError:
                    continue
            elif isinstance(event, SendFailed):
                self.failure = event.reason

    def close(self) -> None:
        """Unsubscribe, if this client subscribed, and wait (briefly) for the ensemble to
        have it: a client that ends without saying so keeps a place among the ensemble's
        clients, and is sent every report, until its transport gives up on it."""
        try:
            if self.subscribed and not self.failure:
                self.send(Message(NetMsg.UNSUBSCRIBE, None, Recipient.NETWORK))
                self.wait(lambda: self.udp.endpoint.in_flight(self.target) == 0, UNSUBSCRIBE_SECONDS)
        except (ClientError, OSError):
            pass  # the ensemble is gone or never answered: nothing to undo there
        finally:
            self.udp.close()

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def request_id() -> int:
    """A status request id no other client on this host is likely to use at the same time."""
    return int.from_bytes(os.urandom(6), "big") ^ int(time.monotonic() * 1e6)

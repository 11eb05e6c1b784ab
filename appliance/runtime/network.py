"""The network manager core: forwards output tokens along arcs, routes what
arrives from other ensembles, and is the ensemble's link to the runtime manager."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Set, Tuple

from appliance.ipc import (
    ExecuteMsg,
    Layer,
    Message,
    NetMsg,
    Output,
    Recipient,
    RuntimeMsg,
    SyncMsg,
    Transmission,
)
from appliance.program.token import EMPTY, Tag, Token
from appliance.runtime import reports
from appliance.runtime.core import Core
from appliance.runtime.counters import Counters
from appliance.runtime.reports import MAX_ERROR_REPORTS
from appliance.timing import Interval

RUNTIME_MANAGER = "runtime-manager"

Destination = Tuple[str, str, int]  # (ensemble, SQ, input port)

#: What the runtime manager accepts from other ensembles: joins (from anyone)
#: and the reports of its members. Deploying and tearing down are for the
#: runtime manager's own host (its command line), never for the network.
_TO_MANAGER_FROM_NETWORK = frozenset([
    RuntimeMsg.JOIN, RuntimeMsg.LOG_OUTPUT, RuntimeMsg.SQS_READY, RuntimeMsg.SQS_REMOVED, RuntimeMsg.SQ_ERROR,
])

#: What another ensemble may ask of this one's processes. Everything else (an
#: END, an execution context, a forward request) is refused at the door.
_FROM_NETWORK = frozenset([
    SyncMsg.INPUT_TOKEN, SyncMsg.INSTANTIATE_SQS, SyncMsg.START_SQS, SyncMsg.REMOVE_SQS,
    ExecuteMsg.INSTANTIATE_SQS, ExecuteMsg.REMOVE_SQS,
    NetMsg.INSTANTIATE_SQS, NetMsg.REMOVE_SQS, NetMsg.ADD_ROUTES, NetMsg.JOIN_RESULT,
])


# Hot-path constants: an enum member lookup costs ~0.1 µs, a global ~0.01 µs.
_INPUT_TOKEN, _INPUT_TOKENS = SyncMsg.INPUT_TOKEN, Recipient.INPUT_TOKENS
_LOG_OUTPUT, _RUNTIME_MANAGER = RuntimeMsg.LOG_OUTPUT, Recipient.RUNTIME_MANAGER
_NETWORK, _DATA = Recipient.NETWORK, Layer.DATA
#: The one message whose payload becomes code on this ensemble (appliance/runtime/code.py).
_CODE = ExecuteMsg.INSTANTIATE_SQS


class ForwardTable:
    """The forward part of one SQ: where each output port's tokens go.

    Tags are built once here, not per token: per port, the tags of local
    destinations, the (ensemble, tag) pairs of remote ones, and whether the
    port is a graph output the runtime manager logs.
    """

    __slots__ = ("ports", "only_tag")

    def __init__(self, destinations: List[List[Destination]], logged: Set[int], here: str) -> None:
        self.ports: List[Tuple[List[Tag], List[Tuple[str, Tag]], bool]] = []
        for port, row in enumerate(destinations):
            local = [Tag(0, sq, p) for ensemble, sq, p in row if ensemble == here]
            remote = [(ensemble, Tag(0, sq, p)) for ensemble, sq, p in row if ensemble != here]
            self.ports.append((local, remote, port in logged))
        #: The commonest arc, one output to one SQ on this ensemble: its tag (else None).
        self.only_tag: Optional[Tag] = None
        if len(self.ports) == 1 and len(self.ports[0][0]) == 1 and not self.ports[0][1] and not self.ports[0][2]:
            self.only_tag = self.ports[0][0][0]


def forward_table_from_wire(doc: Any, here: str) -> Tuple[str, ForwardTable]:
    name = doc["sq"]
    if not isinstance(name, str):
        raise TypeError("forward part: 'sq' must be a string")
    destinations: List[List[Destination]] = []
    for port in doc["destinations"]:
        row = []
        for ensemble, sq, input_port in port:
            if not (isinstance(ensemble, str) and isinstance(sq, str) and type(input_port) is int):
                raise TypeError("forward part of %s: a destination is [ensemble, sq, port]" % name)
            row.append((ensemble, sq, input_port))
        destinations.append(row)
    logged = set(doc["logged"])
    if not all(type(p) is int and 0 <= p < len(destinations) for p in logged):
        raise ValueError("forward part of %s: logged ports out of range" % name)
    return name, ForwardTable(destinations, logged, here)


def _routes_from_wire(routes: Any) -> Dict[str, str]:
    if not isinstance(routes, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in routes.items()):
        raise TypeError("routes must map ensemble names to address strings")
    return routes


class NetworkCore(Core):
    """Tags and duplicates output tokens to every downstream arc, keeps the
    routing table, and admits only what other ensembles may send.

    Control messages that change this ensemble (deploy, start, remove,
    routes) are accepted only from the runtime manager's address. The deploy
    message that carries SQ code (the execute process's part) is accepted from
    the network only when the shell says ``code_from_network``: its transport
    authenticates every datagram (a cluster key), or nothing outside it can
    reach its network (the simulator). A source address alone never admits
    code.
    """

    recipient = Recipient.NETWORK

    def __init__(self, ensemble: str, address: str, hosts_runtime_manager: bool = False,
                 runtime_manager: str = RUNTIME_MANAGER, code_from_network: bool = False) -> None:
        super().__init__(ensemble)
        self.code_from_network = code_from_network
        self.address = address
        self.hosts_runtime_manager = hosts_runtime_manager
        self.runtime_manager = runtime_manager
        self.routes: Dict[str, str] = {}
        self._addresses: Set[str] = set()  # the routes' addresses: known senders
        self._update_routes({runtime_manager: address} if hosts_runtime_manager else {})
        self.forward: Dict[str, ForwardTable] = {}
        self._unsendable_reports: Dict[str, int] = {}
        self.app: Any = None
        self.joined: Optional[bool] = True if hosts_runtime_manager else None
        self.join_error = ""
        for msg_type, handler in (
            (NetMsg.SEND_TOKENS, self._send_tokens),
            (NetMsg.INSTANTIATE_SQS, self._instantiate),
            (NetMsg.REMOVE_SQS, self._remove),
            (NetMsg.ADD_ROUTES, self._add_routes),
            (NetMsg.JOIN_NETWORK, self._join_network),
            (NetMsg.JOIN_RESULT, self._join_result),
            (NetMsg.FORWARD, self._forward),
            (NetMsg.REPORT, self._report),
            (NetMsg.FORWARD_TO_ADDRESS, self._forward_to_address),
            (NetMsg.END, lambda payload, now: []),
        ):
            self.on(msg_type, handler)

    # -- tokens out -----------------------------------------------------------------

    def _send_tokens(self, payload: Any, now: int) -> List[Output]:
        sq, interval, outputs = payload
        table = self.forward.get(sq)
        if table is None:
            self.counters.drop("no_forward_table")
            return []
        tag = table.only_tag
        if tag is not None:
            value = outputs[0]
            return [] if value is EMPTY else [Message(_INPUT_TOKEN, Token(value, interval, tag), _INPUT_TOKENS)]
        out: List[Output] = []
        remote: Dict[str, List[Message]] = {}
        records: List[Message] = []
        for port, (local, far, logged) in enumerate(table.ports):
            value = outputs[port]
            if value is not EMPTY:
                for tag in local:
                    out.append(Message(_INPUT_TOKEN, Token(value, interval, tag), _INPUT_TOKENS))
                for ensemble, tag in far:
                    message = Message(_INPUT_TOKEN, Token(value, interval, tag), _INPUT_TOKENS)
                    batch = remote.get(ensemble)
                    if batch is None:
                        remote[ensemble] = [message]
                    else:
                        batch.append(message)
                if logged:
                    record = Message(_LOG_OUTPUT, _output_record(sq, port, value, interval, self.ensemble),
                                     _RUNTIME_MANAGER)
                    (out if self.hosts_runtime_manager else records).append(record)
        if remote:
            out.extend(self._transmit(remote, reliable=False, origin=sq))
        if records:  # graph outputs are what the user reads: they travel reliably
            out.extend(self._transmit({self.runtime_manager: records}, reliable=True, origin=sq))
        return out

    def _transmit(self, by_ensemble: Dict[str, List[Message]], reliable: bool, origin: str = "") -> List[Output]:
        out: List[Output] = []
        for ensemble, messages in by_ensemble.items():
            address = self.routes.get(ensemble)
            if address is None:
                self.counters.drop("no_route", len(messages))
                self.log.warning("%s: no route to ensemble %r; %d message(s) dropped",
                                 self.ensemble, ensemble, len(messages))
                continue
            out.append(Transmission(address, messages, reliable, origin))
        return out

    # -- control --------------------------------------------------------------------

    def _forward(self, payload: Any, now: int) -> List[Output]:
        ensemble, messages = payload
        if ensemble == self.ensemble:
            out: List[Output] = []
            for message in messages:
                out.extend(self._route_local(message, now))
            return out
        reliable = any(m.msg_type.layer is not Layer.DATA for m in messages)
        return self._transmit({ensemble: list(messages)}, reliable)

    def _forward_to_address(self, payload: Any, now: int) -> List[Output]:
        address, messages = payload
        if address == self.address:
            out: List[Output] = []
            for message in messages:
                out.extend(self._route_local(message, now))
            return out
        return [Transmission(address, list(messages), True)]

    def _report(self, messages: Any, now: int) -> List[Output]:
        if self.hosts_runtime_manager:
            return list(messages)
        return self._transmit({self.runtime_manager: list(messages)}, reliable=True)

    def _add_routes(self, routes: Any, now: int) -> List[Output]:
        self._update_routes(_routes_from_wire(routes))
        return []

    def _update_routes(self, routes: Dict[str, str]) -> None:
        self.routes.update(routes)
        self.routes[self.ensemble] = self.address
        self._addresses = set(self.routes.values())

    def _join_network(self, payload: Any, now: int) -> List[Output]:
        rtm_address, description = payload
        self._update_routes({self.runtime_manager: rtm_address})
        self.joined = None
        join = Message(RuntimeMsg.JOIN, description, Recipient.RUNTIME_MANAGER)
        return [Transmission(rtm_address, [join], True)]

    def _join_result(self, payload: Any, now: int) -> List[Output]:
        accepted, reason, routes = payload
        self.joined = bool(accepted)
        self.join_error = "" if accepted else str(reason)
        if accepted:
            self._add_routes(routes, now)
        else:
            self.log.error("%s: the runtime manager refused to let it join: %s", self.ensemble, reason)
        return []

    def _instantiate(self, payload: Any, now: int) -> List[Output]:
        app, parts, routes = payload
        errors: List[str] = []
        tables: Dict[str, ForwardTable] = {}
        try:
            self._update_routes(_routes_from_wire(routes))
            for part in parts:
                name, table = forward_table_from_wire(part, self.ensemble)
                tables[name] = table
        except (TypeError, ValueError, KeyError) as exc:
            errors.append("%s: %s" % (self.ensemble, exc))
        if not errors:
            self.app = app
            self.forward.update(tables)
        return [reports.ready(app, self.ensemble, self.recipient, errors)]

    def _remove(self, app: Any, now: int) -> List[Output]:
        report = {"counters": self.counters.as_dict()}
        self.forward.clear()
        self._unsendable_reports.clear()
        self.app = None
        self.counters = Counters()
        return [reports.removed(app, self.ensemble, self.recipient, report)]

    # -- messages in ----------------------------------------------------------------

    def deliver(self, messages: List[Message], source: str, now: int) -> List[Output]:
        """Messages another ensemble sent here; each is checked, then routed to its process."""
        out: List[Output] = []
        from_rtm = source == self.routes.get(self.runtime_manager)
        known = from_rtm or source in self._addresses
        for message in messages:
            kind = message.msg_type
            if message.recipient is _RUNTIME_MANAGER:
                if not self.hosts_runtime_manager:
                    self.counters.incr("refused.not_runtime_manager")
                elif kind not in _TO_MANAGER_FROM_NETWORK:
                    self.counters.incr("refused.not_from_network")
                    self.log.warning("%s: refused %s from %s: not accepted from the network",
                                     self.ensemble, kind.name, source)
                elif kind is RuntimeMsg.JOIN:
                    out.extend(self._admit_join(message, source))
                elif not known:
                    self.counters.incr("refused.unknown_sender")
                else:
                    out.append(message)
                continue
            if kind not in _FROM_NETWORK:
                self.counters.incr("refused.not_from_network")
                self.log.warning("%s: refused %s from %s: not accepted from the network",
                                 self.ensemble, kind.name, source)
                continue
            if kind.layer is not _DATA and not from_rtm:
                self.counters.incr("refused.control_not_from_runtime_manager")
                self.log.warning("%s: refused %s from %s: only the runtime manager may send it",
                                 self.ensemble, kind.name, source)
                continue
            if kind is _CODE and not self.code_from_network:
                self.counters.incr("refused.code_unauthenticated")
                self.log.error("%s: refused SQ code from %s: the transport does not authenticate it "
                               "(set a cluster key)", self.ensemble, source)
                continue
            out.extend(self._route_local(message, now))
        return out

    def _admit_join(self, join: Message, source: str) -> List[Output]:
        """A join must come from the address it declares: replies go there, and
        nobody can have the runtime manager talk to a third party."""
        declared = join.payload.get("address") if isinstance(join.payload, dict) else None
        if declared == source:
            return [join]
        self.counters.incr("refused.join_address")
        reason = "the join declares address %r but comes from %s" % (declared, source)
        self.log.warning("%s: refused a join: %s", self.ensemble, reason)
        return [Transmission(source, [Message(NetMsg.JOIN_RESULT, (False, reason, {}), Recipient.NETWORK)], True)]

    def _route_local(self, message: Message, now: int) -> List[Output]:
        if message.recipient is _NETWORK:
            return self.handle(message, now)
        if message.recipient is _RUNTIME_MANAGER and not self.hosts_runtime_manager:
            self.counters.incr("refused.not_runtime_manager")
            return []
        return [message]

    def transmission_failed(self, address: str, reason: str) -> List[Output]:
        """The transport gave up on a reliable transmission: count it and say so."""
        self.counters.drop("send_failed")
        return self._undeliverable(address, reason)

    def _undeliverable(self, address: str, reason: str) -> List[Output]:
        """Log it, and tell the runtime manager when it is here: it fails a deployment
        at once instead of waiting for its timeout."""
        names = [name for name, addr in self.routes.items() if addr == address] or [address]
        self.log.error("%s: could not deliver to %s: %s", self.ensemble, ", ".join(names), reason)
        if not self.hosts_runtime_manager:
            return []
        return [Message(RuntimeMsg.DELIVERY_FAILED, (names, reason), Recipient.RUNTIME_MANAGER)]

    def unsendable(self, transmission: Transmission, reason: str) -> List[Output]:
        """A transmission the codec or the transport refused outright. Tokens whose
        value cannot cross the network are the producing SQ's error, reported as such."""
        self.counters.drop("unsendable", len(transmission.messages))
        if not transmission.origin:
            return self._undeliverable(transmission.address, reason)
        self.counters.incr("sq_errors")
        reported = self._unsendable_reports.get(transmission.origin, 0)
        self._unsendable_reports[transmission.origin] = reported + 1
        if reported >= MAX_ERROR_REPORTS:
            return []
        line = "its output cannot be sent to another ensemble: %s" % reason
        return [reports.to_runtime_manager(Message(RuntimeMsg.SQ_ERROR, (self.app, self.ensemble, transmission.origin,
                                                                 line, line), Recipient.RUNTIME_MANAGER))]


def _output_record(sq: str, port: int, value: Any, interval: Interval, ensemble: str) -> list:
    return [sq, port, value, interval.start, interval.stop, interval.clock, ensemble]

"""The network manager core: forwards output tokens along arcs, routes what
arrives from other ensembles, and is the ensemble's link to the runtime manager."""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from appliance.ipc import (
    ClientMsg,
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
from appliance.runtime.core import AppCore
from appliance.runtime.reports import MAX_ERROR_REPORTS
from appliance.system.description import RUNTIME_MANAGER
from appliance.timing import Interval

Destination = Tuple[str, str, int]  # (ensemble, SQ, input port)

#: What the runtime manager accepts from other ensembles: joins (from anyone)
#: and the reports of its members. Deploying and tearing down are for the
#: runtime manager's own host (its command line), never for the network.
_TO_MANAGER_FROM_NETWORK = frozenset([
    RuntimeMsg.JOIN, RuntimeMsg.HEARTBEAT, RuntimeMsg.LEAVE, RuntimeMsg.LOG_OUTPUT, RuntimeMsg.SQS_READY,
    RuntimeMsg.SQS_REMOVED, RuntimeMsg.SQ_ERROR,
    RuntimeMsg.CLOCK_PROBE, RuntimeMsg.MEMBER_CLOCK, RuntimeMsg.MEMBER_STATUS,
])

#: What another ensemble may ask of this one's processes. Everything else (an
#: END, an execution context, a forward request) is refused at the door.
_FROM_NETWORK = frozenset([
    SyncMsg.INPUT_TOKEN, SyncMsg.INSTANTIATE_SQS, SyncMsg.START_SQS, SyncMsg.REMOVE_SQS,
    ExecuteMsg.INSTANTIATE_SQS, ExecuteMsg.REMOVE_SQS,
    NetMsg.INSTANTIATE_SQS, NetMsg.REMOVE_SQS, NetMsg.ADD_ROUTES, NetMsg.JOIN_RESULT, NetMsg.CLOCK_REPLY,
    NetMsg.REJOIN, SyncMsg.STATUS, ExecuteMsg.STATUS, NetMsg.STATUS,  # relayed by the runtime manager: answered to it
])

#: What a client of the local control channel (a command on this host: ``appliance status``,
#: ``deploy``, ``rtm``) may ask: every process's status, to hear the ensemble's reports, and
#: (of the runtime manager) to deploy and tear down. Never admitted from elsewhere.
_FROM_CLIENT = frozenset([
    SyncMsg.STATUS, ExecuteMsg.STATUS, NetMsg.STATUS, RuntimeMsg.STATUS, RuntimeMsg.CLUSTER_STATUS,
    NetMsg.SUBSCRIBE, NetMsg.UNSUBSCRIBE, RuntimeMsg.INSTANTIATE_AND_MAP, RuntimeMsg.TEARDOWN,
])
_STATUS_REQUESTS = frozenset([SyncMsg.STATUS, ExecuteMsg.STATUS, NetMsg.STATUS, RuntimeMsg.STATUS,
                              RuntimeMsg.CLUSTER_STATUS])
#: Clients subscribed to the reports at once (the newest kept), and status requests whose
#: answers are still awaited (the newest kept). A client leaves the table when it
#: unsubscribes (a command does as it ends) or the transport gives up on it, so only as
#: many clients as run at once hold a place: far fewer than this.
MAX_CLIENTS = 64
MAX_PENDING_STATUS = 256
#: Where a status answer goes when the runtime manager relayed the request.
_TO_RUNTIME_MANAGER = ""

#: First wait for the runtime manager's answer to a join (local clock); each retry
#: waits twice as long, up to JOIN_RETRY_MAX.
JOIN_RETRY = 1_000_000
JOIN_RETRY_MAX = 30_000_000
#: How often a joined ensemble tells the runtime manager it is alive (local clock). The
#: heartbeat travels reliably: the transport giving up on it (12-21 s), or finding the
#: runtime manager restarted, is how an ensemble learns it lost its manager.
HEARTBEAT_INTERVAL = 5_000_000
#: How long after a join a give-up on the runtime manager is taken for one of what was sent
#: before it (a join asked again, a heartbeat to the manager it lost), not for a new loss: the
#: transport's longest give-up (21 s) and a margin. A loss then is found by a later heartbeat.
EARLIER_GIVE_UPS = 25_000_000
#: Addresses (and ensembles without a route) said to be unreachable, remembered so each
#: is said once until heard from again (the newest kept).
MAX_UNREACHABLE_LOGGED = 256
#: Round trips to the runtime manager after a join to measure the clock offset; the
#: one with the shortest round trip is kept (as NTP does).
CLOCK_PROBES = 4


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


class NetworkCore(AppCore):
    """Tags and duplicates output tokens to every downstream arc, keeps the
    routing table, and admits only what other ensembles may send.

    Control messages that change this ensemble (deploy, start, remove,
    routes) are accepted only from the runtime manager's address. The deploy
    message that carries SQ code (the execute process's part) is accepted from
    the network only when ``admits_code(source)`` says so: the policy of
    ``NetworkManager``, which knows the transport. Alone (in unit tests) the
    core admits code from nowhere.
    """

    recipient = Recipient.NETWORK

    def __init__(self, ensemble: str, address: str, hosts_runtime_manager: bool = False,
                 runtime_manager: str = RUNTIME_MANAGER) -> None:
        super().__init__(ensemble)
        self.admits_code: Callable[[str], bool] = lambda source: False
        #: Whether control from the runtime manager must come signed (a manager key is
        #: configured: then a signature, not the transport, admits it, code included).
        self.requires_signature = False
        #: This start of the ensemble (``NetworkManager`` sets its transport session): joins are
        #: numbered within it, so the runtime manager tells a join asked again from a new one.
        self.boot = ""
        self._joins = 0
        #: Where a new join's nonce comes from (the verifier of signed control, when there is one:
        #: then it is also unguessable). Heartbeats, LEAVE and REJOIN carry it: each names its join.
        self.next_nonce: Callable[[], str] = self._numbered_nonce
        self.join_nonce = ""
        #: Whether a source is a client of the local control channel (this host's commands);
        #: ``NetworkManager`` says. Alone, the core has no such clients.
        self.admits_client: Callable[[str], bool] = lambda source: False
        #: Client addresses that hear the ensemble's reports, oldest first.
        self.clients: OrderedDict[str, None] = OrderedDict()
        #: Status request id -> the client address to answer (or the runtime manager).
        self._pending_status: OrderedDict[Any, str] = OrderedDict()
        #: What the process around the core adds to its status (transport counters, ...).
        self.shell_status: Callable[[], Dict[str, Any]] = lambda: {}
        self.address = address
        self.hosts_runtime_manager = hosts_runtime_manager
        self.runtime_manager = runtime_manager
        self.routes: Dict[str, str] = {}
        self._addresses: Set[str] = set()  # the routes' addresses: known senders
        #: Addresses (and ensembles without a route) said to be unreachable: said once, until heard from.
        self._unreachable: OrderedDict[str, None] = OrderedDict()
        #: Told the routes' addresses whenever they change (the transport keeps members' state).
        self.routes_changed: Callable[[Set[str]], None] = lambda addresses: None
        #: (the runtime manager's address as this ensemble reaches it, the description it joins with)
        self._join: Optional[Tuple[str, Any]] = None
        self._update_routes({runtime_manager: address} if hosts_runtime_manager else {})
        self.forward: Dict[str, ForwardTable] = {}
        self._unsendable: Dict[str, int] = {}  # per producing SQ
        self.joined: Optional[bool] = True if hosts_runtime_manager else None
        self.join_error = ""
        self._join_attempts = 0
        self._join_wait = JOIN_RETRY
        self._join_refusal = ""  # the last refusal logged: the same one again is not
        self._advertised_said: Optional[Tuple[str, str]] = None  # (advertised, reached) said, not said again
        self._join_said: Set[bool] = set()  # this join's "no answer" said: for silence (False), refusals (True)
        self._refused_before_join = 0  # answers refused as signed by another key, when this join began
        self._heartbeats = 0  # numbers the current join's heartbeat chain (an older chain stops)
        #: Whether the next accepted join forgets the apps removed here: not after a REJOIN from
        #: the manager that accepted the join it answers (it numbered them, and goes on numbering).
        self._forget_at_join = True
        self._just_joined = False  # within EARLIER_GIVE_UPS of the current join
        #: This ensemble's clock offset to the runtime manager's (ours minus theirs) and the
        #: round trip it was measured over, once measured.
        self.clock: Optional[Tuple[int, int]] = (0, 0) if hosts_runtime_manager else None
        self._probes: List[Tuple[int, int]] = []  # (delay, offset) samples
        self._probe_sent: Optional[int] = None
        for msg_type, handler in (
            (NetMsg.SEND_TOKENS, self._send_tokens),
            (NetMsg.INSTANTIATE_SQS, self._instantiate),
            (NetMsg.REMOVE_SQS, self._remove),
            (NetMsg.ADD_ROUTES, self._add_routes),
            (NetMsg.JOIN_NETWORK, self._join_network),
            (NetMsg.JOIN_RESULT, self._join_result),
            (NetMsg.CLOCK_REPLY, self._clock_reply),
            (NetMsg.REJOIN, self._rejoin),
            (NetMsg.REMOVE_ROUTES, self._remove_routes),
            (NetMsg.FORWARD, self._forward),
            (NetMsg.REPORT, self._report),
            (NetMsg.FORWARD_TO_ADDRESS, self._forward_to_address),
            (NetMsg.END, self._end),
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
                    record = Message(_LOG_OUTPUT, _output_record(self.app, sq, port, value, interval, self.ensemble),
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
                if self._first_time_unreachable(ensemble):
                    self.log.warning("%s: no route to ensemble %r; its messages are dropped (counted no_route)",
                                     self.ensemble, ensemble)
                continue
            out.append(Transmission(address, messages, reliable, origin, ensemble))
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
        return [Transmission(address, list(messages), True, target=address)]

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
        if self._join is not None:  # the runtime manager is where this ensemble reaches it, whatever it says
            self.routes[self.runtime_manager] = self._join[0]
        if self._unreachable:  # a route new or changed: whether it works is news again
            for name in routes:
                self._unreachable.pop(name, None)
        addresses = set(self.routes.values())
        if addresses != self._addresses:
            self._addresses = addresses
            self.routes_changed(addresses - {self.address})

    def _join_network(self, payload: Any, now: int) -> List[Output]:
        rtm_address, description = payload
        self._join = (rtm_address, description)
        self._update_routes({})
        return self._start_joining()

    def _start_joining(self) -> List[Output]:
        """A new join: a fresh nonce, the first wait, the first ask."""
        self.joined = None
        self.join_nonce = self.next_nonce()
        self._join_attempts = 0
        self._join_wait = JOIN_RETRY
        self._join_refusal = ""
        self._join_said = set()
        self._refused_before_join = self.counters.get("refused.bad_signature")
        return self._send_join()

    def _numbered_nonce(self) -> str:
        self._joins += 1
        return "%s-%d" % (self.boot, self._joins)

    def _send_join(self) -> List[Output]:
        """Ask to join, and wait (on the local clock) for the answer before asking again."""
        assert self._join is not None
        rtm_address, description = self._join
        self._join_attempts += 1
        self.local_timers.schedule_in(self._join_wait, self._join_unanswered, self._join_attempts)
        if self.join_nonce:
            description = dict(description, nonce=self.join_nonce)
        join = Message(RuntimeMsg.JOIN, description, Recipient.RUNTIME_MANAGER)
        return [Transmission(rtm_address, [join], True, target=self.runtime_manager)]

    def _join_unanswered(self, attempt: int, now: int) -> List[Output]:
        """No answer yet (the runtime manager is not up, or away), or a refusal, which
        need not last (a name taken by a member that has since gone): ask again, waiting
        longer each time. Said once, not once per try."""
        if self.joined or attempt != self._join_attempts or self._join is None:
            return []
        # Said once for silence (at the first try), and once more if answers came but were refused
        # as signed by another manager key: that misconfiguration then has its words.
        refused = self.counters.get("refused.bad_signature") > self._refused_before_join
        if self.joined is None and (attempt == 1 or refused) and refused not in self._join_said:
            self._join_said.add(refused)
            why = "its answers are refused: they are not signed by the manager key whose public key this ensemble " \
                "has" if refused else "is it up, at that address, with the same cluster key?"
            self.log.warning("%s: no answer from the runtime manager at %s yet (%s); asking again, every %d s at most",
                             self.ensemble, self._join[0], why, JOIN_RETRY_MAX // 1_000_000)
        self.counters.incr("join_retries")
        self._join_wait = min(2 * self._join_wait, JOIN_RETRY_MAX)
        return self._send_join()

    def _join_result(self, payload: Any, now: int) -> List[Output]:
        accepted, reason, routes, nonce = payload
        if nonce != self.join_nonce:  # the answer to an earlier join (signed, it was refused already)
            self.counters.incr("refused.stale_join_result")
            return []
        joined_before = self.joined is True
        self.joined = bool(accepted)
        self.join_error = "" if accepted else str(reason)
        out: List[Output] = [Message(ClientMsg.JOINED, (self.joined, self.join_error), Recipient.CLIENT)]
        if accepted:
            self._learn_runtime_manager(_routes_from_wire(routes))
            self._add_routes(routes, now)
            if self._join_attempts > 1 and not joined_before:  # (a retry's answer may come too: said once)
                self.log.warning("%s: joined the runtime manager after %d attempts", self.ensemble,
                                 self._join_attempts)
            if not joined_before and not self.hosts_runtime_manager:
                if self._forget_at_join:  # perhaps a new manager: what was removed here may be numbered afresh
                    self.retired.clear()
                    out.append(Message(SyncMsg.FORGET_APPS, None, Recipient.INPUT_TOKENS))
                    out.append(Message(ExecuteMsg.FORGET_APPS, None, Recipient.EXECUTE))
                self._forget_at_join = True
                self._probes = []
                out.extend(self._probe_clock(now))
                self._heartbeats += 1
                self.local_timers.schedule_in(HEARTBEAT_INTERVAL, self._beat, self._heartbeats)
                self._just_joined = True
                self.local_timers.schedule_in(EARLIER_GIVE_UPS, self._settled, self._heartbeats)
        elif self.join_error != self._join_refusal:
            self._join_refusal = self.join_error
            self.log.error("%s: the runtime manager refused to let it join: %s; asking again, every %d s at most",
                           self.ensemble, reason, JOIN_RETRY_MAX // 1_000_000)
        return out

    def _settled(self, chain: int, now: int) -> List[Output]:
        if chain == self._heartbeats:  # still the join it was scheduled at
            self._just_joined = False
        return []

    def _beat(self, chain: int, now: int) -> List[Output]:
        """Tell the runtime manager this ensemble is alive: it drops a silent member."""
        if chain != self._heartbeats or self.joined is not True:
            return []
        self.local_timers.schedule_in(HEARTBEAT_INTERVAL, self._beat, chain)
        beat = Message(RuntimeMsg.HEARTBEAT, (self.ensemble, self.address, self.join_nonce),
                       Recipient.RUNTIME_MANAGER)
        return self._transmit({self.runtime_manager: [beat]}, reliable=True)

    def _rejoin(self, payload: Any, now: int) -> List[Output]:
        name, nonce, reason, same_manager = payload
        if name != self.ensemble or nonce != self.join_nonce:  # for another ensemble, or an earlier join
            self.counters.incr("refused.stale_rejoin")
            return []
        if self.joined is True:  # the manager that accepted this join numbered the apps removed here
            self._forget_at_join = same_manager is not True  # and goes on: a late deploy of one stays refused
        return self._lose_manager(str(reason))

    def _lose_manager(self, why: str) -> List[Output]:
        """The runtime manager restarted, stopped answering or forgot this ensemble: the
        app it deployed here is over there (failed, or forgotten), so it is removed here
        too, and the ensemble joins again, with the same backoff as at its start."""
        if self.hosts_runtime_manager or self._join is None or self.joined is not True:
            return []
        self.log.warning("%s: lost the runtime manager at %s (%s); joining again", self.ensemble, self._join[0], why)
        out: List[Output] = []
        app = self.app
        if app is not None:
            self.log.warning("%s: app %s is removed here: its runtime manager is gone", self.ensemble, app)
            out.append(Message(SyncMsg.REMOVE_SQS, app, Recipient.INPUT_TOKENS))
            out.append(Message(ExecuteMsg.REMOVE_SQS, app, Recipient.EXECUTE))
            self.remove_app()  # its report has no runtime manager to go to
        self.counters.incr("manager_lost")
        return out + self._start_joining()

    def _end(self, _payload: Any, now: int) -> List[Output]:
        """This ensemble is stopping: its runtime manager hears so now, not after a silence."""
        if self.hosts_runtime_manager or self.joined is not True:
            return []
        leave = Message(RuntimeMsg.LEAVE, (self.ensemble, self.address, self.join_nonce), Recipient.RUNTIME_MANAGER)
        return self._transmit({self.runtime_manager: [leave]}, reliable=True)

    def _remove_routes(self, names: Any, now: int) -> List[Output]:
        """Members the runtime manager dropped: their addresses stop being members here too."""
        for name in names:
            if name != self.ensemble and name != self.runtime_manager:
                self.routes.pop(name, None)
        self._update_routes({})
        return []

    def _learn_runtime_manager(self, routes: Dict[str, str]) -> None:
        """The answer names the runtime manager (its ensemble's name) and the address it
        advertises; behind a relay or NAT that is not where this ensemble reaches it, and
        the address it was given stays the route (said once, in case it is a mistake)."""
        if self._join is None:
            return
        others = [name for name in routes if name != self.ensemble]
        if len(others) != 1:
            return
        name, advertised = others[0], routes[others[0]]
        if name != self.runtime_manager:
            self.routes.pop(self.runtime_manager, None)
            self.runtime_manager = name
        if advertised != self._join[0] and (advertised, self._join[0]) != self._advertised_said:
            self._advertised_said = (advertised, self._join[0])
            self.log.warning("%s: the runtime manager %s advertises %s but this ensemble reaches it at %s; "
                             "it keeps sending to %s", self.ensemble, name, advertised, self._join[0], self._join[0])

    def _probe_clock(self, now: int) -> List[Output]:
        self._probe_sent = now
        probe = Message(RuntimeMsg.CLOCK_PROBE, (self.ensemble, now), Recipient.RUNTIME_MANAGER)
        return self._transmit({self.runtime_manager: [probe]}, reliable=True)

    def _clock_reply(self, payload: Any, now: int) -> List[Output]:
        """NTP's arithmetic on one round trip: sent at ``t1`` on our clock, answered at
        ``t2`` on the runtime manager's, back at ``now``: ours is ``(t1 + now) / 2 - t2``
        ahead of theirs, give or take half the round trip."""
        t1, t2 = payload
        if type(t1) is not int or type(t2) is not int or t1 != self._probe_sent:
            self.counters.incr("refused.stray_clock_reply")
            return []
        self._probe_sent = None
        self._probes.append((now - t1, (t1 + now) // 2 - t2))
        if len(self._probes) < CLOCK_PROBES:
            return self._probe_clock(now)
        delay, offset = min(self._probes)
        self.clock = (offset, delay)
        return [reports.to_runtime_manager(
            Message(RuntimeMsg.MEMBER_CLOCK, (self.ensemble, offset, delay), Recipient.RUNTIME_MANAGER))]

    def _instantiate(self, payload: Any, now: int) -> List[Output]:
        app, parts, routes = payload
        refusal = self.refuse_deploy(app)
        if refusal:
            return [reports.ready(app, self.ensemble, self.recipient, [refusal])]
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
            self.install(app)
            self.forward.update(tables)
        return [reports.ready(app, self.ensemble, self.recipient, errors)]

    def sq_report(self) -> Dict[str, Dict[str, int]]:
        sqs = {sq: {"errors": n, "dropped.unsendable": n} for sq, n in self._unsendable.items()}
        self.forward.clear()
        self._unsendable.clear()
        return sqs

    def status(self, now: int) -> Dict[str, Any]:
        status = super().status(now)
        status.update(routes=dict(self.routes), joined=self.joined, join_error=self.join_error,
                      runtime_manager=self.runtime_manager, sqs=sorted(self.forward),
                      clock_offset=self.clock[0] if self.clock else None,
                      clock_delay=self.clock[1] if self.clock else None, clients=list(self.clients))
        return status

    # -- the local control channel -------------------------------------------------

    def to_client(self, message: Message) -> Optional[List[Output]]:
        """A report for the client (``Recipient.CLIENT``): a status answer goes to whoever
        asked (a client on this host, or the runtime manager that relayed the request),
        anything else to every subscribed client. None when no client over the network
        wants it: it is for a client in this process (the simulated harness)."""
        if message.msg_type is ClientMsg.STATUS:
            request, process, status = message.payload
            reply_to = self._pending_status.get(_key(request))
            if reply_to == _TO_RUNTIME_MANAGER:
                return self._report([Message(RuntimeMsg.MEMBER_STATUS, (request, self.ensemble, process, status),
                                             Recipient.RUNTIME_MANAGER)], 0)
            if reply_to is not None:
                return [Transmission(reply_to, [message], True, target=reply_to)]
            return None
        if self.clients:
            return [Transmission(address, [message], True, target=address) for address in self.clients]
        return None

    def _client_request(self, message: Message, source: str, now: int) -> List[Output]:
        kind = message.msg_type
        if kind is NetMsg.SUBSCRIBE:  # the runtime manager tells the new client how things stand
            if len(self.clients) >= MAX_CLIENTS and source not in self.clients:
                self.counters.incr("clients_evicted")
            self._remember(self.clients, source, None, MAX_CLIENTS)
            if self.hosts_runtime_manager:
                return [Message(RuntimeMsg.SUBSCRIBED, source, Recipient.RUNTIME_MANAGER)]
            return []
        if kind is NetMsg.UNSUBSCRIBE:
            self.clients.pop(source, None)
            return []
        if kind in _STATUS_REQUESTS:
            self._remember(self._pending_status, _key(message.payload), source, MAX_PENDING_STATUS)
        if message.recipient is _RUNTIME_MANAGER and not self.hosts_runtime_manager:
            self.counters.incr("refused.not_runtime_manager")
            return []
        return self._route_local(message, now)

    @staticmethod
    def _remember(table: OrderedDict[Any, Any], key: Any, value: Any, limit: int) -> None:
        table.pop(key, None)
        table[key] = value
        while len(table) > limit:
            table.popitem(last=False)

    # -- messages in ----------------------------------------------------------------

    def deliver(self, messages: List[Message], source: str, now: int, signed: bool = False) -> List[Output]:
        """Messages another ensemble sent here; each is checked, then routed to its process.
        ``signed``: they came in a control transmission the runtime manager signed."""
        out: List[Output] = []
        from_rtm = source == self.routes.get(self.runtime_manager)
        known = from_rtm or source in self._addresses
        if self._unreachable:  # heard from: if it becomes unreachable again, that is news
            self._unreachable.pop(source, None)
        for message in messages:
            kind = message.msg_type
            if kind in _FROM_CLIENT and not from_rtm:
                if self.admits_client(source):
                    out.extend(self._client_request(message, source, now))
                else:
                    self.counters.incr("refused.client_not_local")
                    self.log.warning("%s: refused %s from %s: only a client on this host may ask it",
                                     self.ensemble, kind.name, source)
                continue
            if message.recipient is _RUNTIME_MANAGER:
                if not self.hosts_runtime_manager:
                    self.counters.incr("refused.not_runtime_manager")
                elif kind not in _TO_MANAGER_FROM_NETWORK:
                    self.counters.incr("refused.not_from_network")
                    self.log.warning("%s: refused %s from %s: not accepted from the network",
                                     self.ensemble, kind.name, source)
                elif kind is RuntimeMsg.JOIN:
                    out.extend(self._admit_join(message, source))
                elif kind is RuntimeMsg.HEARTBEAT or kind is RuntimeMsg.LEAVE:
                    if _declared_address(message.payload) == source:
                        out.append(message)
                    else:  # a member speaks for itself only
                        self.counters.incr("refused.member_address")
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
            if kind.layer is not _DATA and self.requires_signature and not signed:
                self.counters.incr("refused.unsigned_control")
                self.log.warning("%s: refused %s from %s: not signed by the runtime manager's key",
                                 self.ensemble, kind.name, source)
                continue
            if kind in _STATUS_REQUESTS:  # relayed by the runtime manager: the answer goes back to it
                self._remember(self._pending_status, _key(message.payload), _TO_RUNTIME_MANAGER,
                               MAX_PENDING_STATUS)
            if kind is _CODE and not (signed or self.admits_code(source)):
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
        nonce = join.payload.get("nonce", "") if isinstance(join.payload, dict) else ""
        answer = Message(NetMsg.JOIN_RESULT, (False, reason, {}, nonce), Recipient.NETWORK)
        return [Transmission(source, [answer], True, target=source)]

    def _route_local(self, message: Message, now: int) -> List[Output]:
        if message.recipient is _NETWORK:
            return self.handle(message, now)
        if message.recipient is _RUNTIME_MANAGER and not self.hosts_runtime_manager:
            self.counters.incr("refused.not_runtime_manager")
            return []
        return [message]

    def transmission_failed(self, address: str, reason: str, restarted: bool = False) -> List[Output]:
        """The transport gave up on a reliable transmission: count it and say so. Given
        up on the runtime manager, this ensemble lost it (the heartbeat makes sure it
        finds out): it joins again."""
        if self._client_gone(address):
            return []
        self.counters.drop("send_failed")
        if self._join is not None and address == self._join[0] and self.joined is True:
            if self._just_joined and not restarted:  # what was sent before this join, given up late
                # (a restart fails what was outstanding at once, and is news whenever it comes)
                self.counters.incr("earlier_give_ups")
                return []
            return self._lose_manager(reason)  # which says so: the give-up is not said twice
        return self._undeliverable(address, reason)

    def _client_gone(self, address: str) -> bool:
        """Whether ``address`` is a client of the local control channel, which the transport
        gave up on: a command that ended without unsubscribing (killed), or before its status
        answer came. It is forgotten (``clients_gone``); nothing was lost that anyone awaits."""
        if address not in self.clients and address not in self._pending_status.values():
            return False
        self.clients.pop(address, None)
        for request in [r for r, to in self._pending_status.items() if to == address]:
            del self._pending_status[request]
        self.counters.incr("clients_gone")
        return True

    def _undeliverable(self, address: str, reason: str) -> List[Output]:
        """Log it (once per address until it is heard from again; while joining, the
        join's own warning says it), and tell the runtime manager when it is here: it
        fails a deployment at once instead of waiting for its timeout."""
        names = [name for name, addr in self.routes.items() if addr == address] or [address]
        joining = self._join is not None and address == self._join[0] and self.joined is not True
        if not joining and self._first_time_unreachable(address):
            self.log.error("%s: could not deliver to %s: %s (said once, until it is heard from again)",
                           self.ensemble, ", ".join(names), reason)
        if not self.hosts_runtime_manager:
            return []
        return [Message(RuntimeMsg.DELIVERY_FAILED, (names, reason), Recipient.RUNTIME_MANAGER)]

    def _first_time_unreachable(self, where: str) -> bool:
        """Whether ``where`` (an address, or an ensemble without a route) is newly unreachable."""
        if where in self._unreachable:
            return False
        self._remember(self._unreachable, where, None, MAX_UNREACHABLE_LOGGED)
        return True

    def unsendable(self, transmission: Transmission, reason: str) -> List[Output]:
        """A transmission the codec or the transport refused outright. Tokens whose
        value cannot cross the network are the producing SQ's error, reported as such.
        (One to a client is not its end: a client slow to take a burst is still there, and
        one that is gone is found by the transport's give-up.)"""
        self.counters.drop("unsendable", len(transmission.messages))
        if not transmission.origin:
            return self._undeliverable(transmission.address, reason)
        self.counters.incr("sq_errors")
        reported = self._unsendable.get(transmission.origin, 0)
        self._unsendable[transmission.origin] = reported + 1
        if reported >= MAX_ERROR_REPORTS:
            return []
        line = "unsendable: its output cannot be sent to another ensemble: %s" % reason
        return [reports.to_runtime_manager(Message(
            RuntimeMsg.SQ_ERROR, (self.app, self.ensemble, transmission.origin, line, "", ""),
            Recipient.RUNTIME_MANAGER))]


def _declared_address(payload: Any) -> Any:
    """The address a member's ``(name, address, nonce)`` report says it sends from."""
    return payload[1] if isinstance(payload, tuple) and len(payload) == 3 else None


def _key(request: Any) -> Any:
    """A status request id as a dict key (ids are the client's, any codec value)."""
    try:
        hash(request)
    except TypeError:
        return repr(request)
    return request


def _output_record(app: Any, sq: str, port: int, value: Any, interval: Interval, ensemble: str) -> list:
    return [app, sq, port, value, interval.start, interval.stop, interval.clock, ensemble]

"""The simulated shell: an ensemble's processes on simulated time.

Each simulated ensemble runs what a device runs: the input-token and execute
cores and the network manager (core, transport endpoint and codec; the
runtime-manager core too on the runtime manager), the datagrams crossing
:class:`appliance.sim.link.SimNetwork` as bytes. Time is the integer
``env.now`` in µs; processing takes no simulated time, so an ensemble is not
a simpy process but a pump run from simpy callbacks: when a datagram
arrives, when one of its timers is due, and when something is posted to it.

The shell only feeds, drains and waits, like the device shell: messages go
to the process they name, datagrams to the network, ``ClientMsg`` messages to
the client (the harness, or whoever drives the ensemble by hand), and one
simpy timeout waits for the earliest deadline.
"""
from __future__ import annotations

import itertools
from collections import deque
from typing import Any, Callable, Deque, Dict, Iterable, List, Optional, Set, Tuple, Union

import simpy
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance.components import Component
from appliance.components.inventory import Inventory
from appliance.ipc import ClientMsg, ExecuteMsg, Message, NetMsg, Recipient, RuntimeMsg, SyncMsg
from appliance.net import Endpoint, TransportConfig
from appliance.net.impairment import Impairment
from appliance.program import graphfile
from appliance.program.model import Graph
from appliance.runtime.app import OutputRecord, RunOptions
from appliance.runtime.core import Core
from appliance.runtime.execute import ExecuteCore
from appliance.runtime.manager import RuntimeManagerCore
from appliance.runtime.network import RUNTIME_MANAGER, NetworkCore
from appliance.runtime.network_manager import NetworkManager
from appliance.runtime.signing import ControlSigner, ControlVerifier
from appliance.runtime.sync import InputTokenCore
from appliance.runtime.timers import IDLE
from appliance.sim.drivers import ComponentWrite, SimulatedDrivers
from appliance.sim.link import SimNetwork, derived_rng
from appliance.system import EnsembleDescription

#: ``client(ensemble, message)``: what an ensemble tells whoever drives it.
Client = Callable[["SimEnsemble", Message], None]

_CLIENT, _NETWORK, _JOINED = Recipient.CLIENT, Recipient.NETWORK, ClientMsg.JOINED
#: Each process's STATUS request type.
STATUS_REQUESTS = {Recipient.INPUT_TOKENS: SyncMsg.STATUS, Recipient.EXECUTE: ExecuteMsg.STATUS,
                   Recipient.NETWORK: NetMsg.STATUS, Recipient.RUNTIME_MANAGER: RuntimeMsg.STATUS}


class SimWorld:
    """One simulation: the simpy environment, the network, and its seed."""

    def __init__(self, seed: int = 0, impairment: Impairment = Impairment(),
                 transport: TransportConfig = TransportConfig(), key: Optional[bytes] = None,
                 manager_key: Optional[Ed25519PrivateKey] = None, sysfs_root: Optional[str] = None) -> None:
        self.env = simpy.Environment()
        self.seed = seed
        self.network = SimNetwork(self.env, seed, impairment)
        self.transport = transport
        #: The cluster key: the transport authenticates every datagram with it.
        self.key = key
        #: The runtime manager's private key: it signs its control messages, and every
        #: other ensemble holds the public half and refuses control it did not sign.
        self.manager_key = manager_key
        #: The fake tree ``sysfs:`` drivers read (``<root>/sys/...``); None: they are simulated.
        self.sysfs_root = sysfs_root
        #: Every write to a component of any ensemble, in the order they happened.
        self.writes: List[ComponentWrite] = []

    @property
    def now(self) -> int:
        return int(self.env.now)

    def run(self, until: int) -> None:
        if until > self.env.now:
            self.env.run(until=until)


def sim_address(name: str) -> str:
    return "sim:" + name


class SimClock:
    """An ensemble's root clock in simulation: the simulator's time (which is every
    ensemble's local monotonic clock), off by ``offset`` µs and running ``drift_ppm``
    parts per million fast (or slow, when negative). A device's clock, unsynchronised."""

    __slots__ = ("offset", "drift_ppm")

    def __init__(self, offset: int = 0, drift_ppm: int = 0) -> None:
        if not -1_000_000 < drift_ppm < 1_000_000:
            raise ValueError("a clock drifts by less than 1,000,000 ppm, got %r" % (drift_ppm,))
        self.offset = offset
        self.drift_ppm = drift_ppm

    def root(self, t: int) -> int:
        return t + self.offset + t * self.drift_ppm // 1_000_000

    def sim_time(self, tick: int) -> int:
        """The earliest simulator time at which this clock reads ``tick`` or later."""
        if tick >= IDLE:
            return IDLE
        t = (tick - self.offset) * 1_000_000 // (1_000_000 + self.drift_ppm)
        while self.root(t) < tick:
            t += 1
        while self.root(t - 1) >= tick:
            t -= 1
        return t


def boot_session(seed: int, name: str, boot: int) -> int:
    """The transport session of one boot of a simulated ensemble: new at every start,
    reproducible from the seed, never 0."""
    return derived_rng(seed, "session", name, str(boot)).getrandbits(64) or 1


class SimEnsemble:
    """A device in the simulation (the seeds' ``TTEnsemble``, simulated).

    ``client`` hears every ``ClientMsg`` the ensemble emits. ``boot`` counts
    the starts of this ensemble: each start is a new transport session, so a
    restarted ensemble is a new peer to the others.
    """

    def __init__(self, world: SimWorld, name: str, components: Iterable[Component] = (),
                 client: Optional[Client] = None, boot: int = 0, clock: Optional[SimClock] = None,
                 sysfs_root: Optional[str] = None) -> None:
        self.world = world
        self.env = world.env
        self.name = name
        self.clock = clock or SimClock()
        self.address = sim_address(name)
        self.inventory = Inventory(components)
        #: What its join tells beside the components: resources (capacity) and links.
        self.resources: Dict[str, Any] = {}
        self.links: Dict[str, Dict[str, float]] = {}
        self.client = client
        entropy = derived_rng(world.seed, "entropy", name, str(boot))
        endpoint = Endpoint(world.transport, session=boot_session(world.seed, name, boot), key=world.key,
                            identity=name.encode(), entropy=lambda n: entropy.getrandbits(8 * n).to_bytes(n, "big"))
        # SimNetwork carries datagrams only between ensembles of this process: it is closed.
        self.network = NetworkManager(NetworkCore(name, self.address, **self._network_options()), endpoint,
                                      closed_network=True, **self._signing(world, boot))
        #: The process cores beside the network manager, by the recipient they serve.
        self.cores: Dict[Recipient, Core] = {
            Recipient.INPUT_TOKENS: InputTokenCore(name),
            Recipient.EXECUTE: ExecuteCore(name, self.inventory, SimulatedDrivers(
                name, self._root_now, world.seed, sysfs_root or world.sysfs_root, world.writes)),
        }
        #: The join's outcome as the ensemble reported it: True, False (see join_error), None while waiting.
        self.joined: Optional[bool] = None
        self.join_error = ""
        self._status_requests = itertools.count(1)
        #: STATUS requests of ``status()`` still waiting: request id -> (replies so far, event).
        self._status_waits: Dict[int, Tuple[Dict[str, Any], simpy.Event]] = {}
        self._queue: Deque[Message] = deque()
        self._pumping = False
        self._pump_scheduled = False
        #: Ticks of the simpy timeouts armed and not yet fired: one at or before every
        #: deadline of this ensemble, so a timer made moot never needs re-arming.
        self._armed: Set[int] = set()
        world.network.attach(self.address, self._on_datagram)

    def _network_options(self) -> Dict[str, Any]:
        return {}

    def _signing(self, world: SimWorld, boot: int) -> Dict[str, Any]:
        if world.manager_key is None:
            return {}
        secret = derived_rng(world.seed, "nonce", self.name, str(boot)).getrandbits(128).to_bytes(16, "big")
        return {"verifier": ControlVerifier(world.manager_key.public_key(), secret)}

    # -- the seeds' ensemble API ------------------------------------------------------

    def add_components(self, *components: Component) -> None:
        """Add components: one already here is ignored, a different one of a present
        component's name replaces it."""
        self.inventory.add(*components)

    def remove_component(self, component: Union[Component, str]) -> None:
        self.inventory.remove(component)

    def find_component(self, query: Any) -> Optional[Component]:
        """The first component the query matches (a name, or a query such as
        ``where(kind="camera")``), or None."""
        return self.inventory.find(query)

    @property
    def components(self) -> List[Component]:
        return list(self.inventory)

    @property
    def writes(self) -> List[ComponentWrite]:
        """What this ensemble's SQs (and the program's ``teardown()``) wrote to its components."""
        return [w for w in self.world.writes if w.ensemble == self.name]

    def _root_now(self) -> int:
        return self.clock.root(int(self.env.now))

    def description(self) -> EnsembleDescription:
        return EnsembleDescription(self.name, self.address, self.components, self.resources, self.links)

    def connect_to_ticktalk_network(self, runtime_manager_address: str,
                                    runtime_manager_name: str = RUNTIME_MANAGER) -> None:
        """Ask the runtime manager to let this ensemble join; the answer arrives as ``ClientMsg.JOINED``."""
        self.network.core.runtime_manager = runtime_manager_name
        self.post(Message(NetMsg.JOIN_NETWORK, (runtime_manager_address, self.description().to_wire()),
                          Recipient.NETWORK))

    def enter_steady_state(self, timeout: Optional[int] = None) -> None:
        """Run the simulation (every ensemble in it) for ``timeout`` µs, or until nothing is left to do."""
        if timeout is None:
            self.env.run()
        else:
            self.world.run(self.world.now + timeout)

    def post(self, message: Message) -> None:
        """Put a message on this ensemble's local control channel, as a command on the device would."""
        self._queue.append(message)
        self._poke()

    def status(self) -> Dict[str, Dict[str, Any]]:
        """Every process's answer to ``STATUS``, by process name. Call it from outside the
        simulation: it runs the world until the answers are in (no simulated time passes)."""
        request = next(self._status_requests)
        replies: Dict[str, Any] = {}
        answered = self.env.event()
        self._status_waits[request] = (replies, answered)
        for recipient in list(self.cores) + [Recipient.NETWORK]:
            self.post(Message(STATUS_REQUESTS[recipient], request, recipient))
        self.env.run(until=answered)
        return replies

    # -- the shell ----------------------------------------------------------------------

    def _to_client(self, message: Message) -> None:
        kind = message.msg_type
        if kind is ClientMsg.STATUS and message.payload[0] in self._status_waits:
            request, process, status = message.payload
            replies, answered = self._status_waits[request]
            replies[process] = status
            if len(replies) == len(self.cores) + 1:
                del self._status_waits[request]
                answered.succeed()
            return
        if kind is _JOINED:
            self.joined, self.join_error = message.payload
        self.observe(message)
        if self.client is not None:
            self.client(self, message)

    def observe(self, message: Message) -> None:
        """What the seed-style API keeps of a client message (the runtime manager keeps more)."""

    def _poke(self) -> None:
        """Pump soon (at this instant, from simpy): the caller may be outside the simulation."""
        if not self._pumping and not self._pump_scheduled:
            self._pump_scheduled = True
            self.env.timeout(0).callbacks.append(self._scheduled_pump)

    def _scheduled_pump(self, _event: simpy.Event) -> None:
        self._pump_scheduled = False
        self._pump()

    def _on_datagram(self, datagram: bytes, source: str) -> None:
        local = self.env.now
        self._queue.extend(self.network.receive_datagram(datagram, source, self.clock.root(local), local))
        self._pump()

    def _pump(self) -> None:
        """Everything due at this instant: timers, then every queued message and whatever
        it produces, until the ensemble is idle; then the datagrams, and one timeout. (A
        timer that handling makes due at this same instant fires from that timeout.)"""
        self._pumping = True  # what a client posts meanwhile, this pump takes (see _poke)
        local = self.env.now
        now = self.clock.root(local)
        queue = self._queue
        cores = self.cores
        network = self.network
        try:
            if network.next_local_deadline(local) <= local:
                queue.extend(network.on_local_timer(now, local))
            if network.next_deadline() <= now:
                queue.extend(network.on_timer(now, local))
            for core in cores.values():
                if core.next_deadline() <= now:
                    queue.extend(core.on_timer(now))
                if core.next_local_deadline(local) <= local:
                    queue.extend(core.on_local_timer(now, local))
            while queue:
                message = queue.popleft()
                recipient = message.recipient
                if recipient is _NETWORK:
                    queue.extend(network.handle(message, now, local))
                    continue
                core = cores.get(recipient)
                if core is not None:
                    queue.extend(core.handle(message, now))
                elif recipient is _CLIENT:  # unless the network manager owes it to another ensemble
                    for report in network.to_client(message, now, local):
                        self._to_client(report)
                else:
                    network.refuse(message)
        finally:
            self._pumping = False
        send = self.world.network.send
        for datagram, peer in network.datagrams_to_send():
            send(self.address, peer, datagram)
        self._arm_timer(local)

    def _next_wake(self) -> int:
        """The simulator time of the earliest deadline on either clock (``IDLE``: none)."""
        local = self.env.now
        due = self.network.next_local_deadline(local)
        root = self.network.next_deadline()
        for core in self.cores.values():
            candidate = core.next_local_deadline(local)
            if candidate < due:
                due = candidate
            candidate = core.next_deadline()
            if candidate < root:
                root = candidate
        if root < IDLE:
            at = self.clock.sim_time(root)
            if at < due:
                due = at
        return due

    def _arm_timer(self, now: int) -> None:
        """A simpy timeout for the earliest deadline, unless one already armed fires at or before it."""
        at = self._next_wake()
        armed = self._armed
        if at == IDLE or (armed and min(armed) <= at):
            return
        at = max(at, now)
        armed.add(at)
        self.env.timeout(at - now, at).callbacks.append(self._timer_fired)

    def _timer_fired(self, event: simpy.Event) -> None:
        self._armed.discard(event.value)
        now = self.env.now
        # A timer armed for a retransmission the ACK made moot is not worth a pump.
        if self._next_wake() <= now:
            self._pump()
        else:
            self._arm_timer(now)


class AppView:
    """The newest app as the runtime manager last reported it (``ClientMsg.APP``)."""

    def __init__(self, report: Dict[str, Any]) -> None:
        self.id: str = report["app"]
        self.phase: str = report["phase"]
        self.error: str = report["error"]
        self.mapping: Dict[str, str] = report["mapping"]
        self.t0: Optional[int] = report["t0"]
        #: The summary (``App.summary()``), once the app is finished or failed.
        self.summary: Optional[Dict[str, Any]] = report["summary"]

    @property
    def done(self) -> bool:
        return self.summary is not None


class SimRuntimeManager(SimEnsemble):
    """The runtime-manager ensemble (the seeds' ``TTRuntimeManager``, simulated).

    It joins itself at once, so it hosts SQs like the ensembles that join it.
    ``sink`` receives each logged output record.
    """

    def __init__(self, world: SimWorld, components: Iterable[Component] = (),
                 sink: Callable[[OutputRecord], None] = lambda record: None,
                 name: str = RUNTIME_MANAGER, client: Optional[Client] = None, boot: int = 0,
                 max_members: Optional[int] = None) -> None:
        super().__init__(world, name, components, client=client, boot=boot)
        self.sink = sink
        limit = world.transport.max_peers - 1 if max_members is None else max_members
        self.cores[Recipient.RUNTIME_MANAGER] = RuntimeManagerCore(self.address, name=name, max_members=limit)
        #: Members in join order, as the runtime manager reported them.
        self.members: List[str] = []
        #: The newest app, as the runtime manager last reported it.
        self.app: Optional[AppView] = None
        self.post(Message(RuntimeMsg.JOIN, self.description().to_wire(), Recipient.RUNTIME_MANAGER))

    def _network_options(self) -> Dict[str, Any]:
        return {"hosts_runtime_manager": True}

    def _signing(self, world: SimWorld, boot: int) -> Dict[str, Any]:
        if world.manager_key is None:
            return {}
        return {"signer": ControlSigner(world.manager_key, boot_session(world.seed, "manager:" + self.name, boot))}

    def observe(self, message: Message) -> None:
        kind = message.msg_type
        if kind is ClientMsg.OUTPUT:
            self.sink(message.payload)
        elif kind is ClientMsg.MEMBER:
            if message.payload[0] not in self.members:
                self.members.append(message.payload[0])
        elif kind is ClientMsg.APP:
            self.app = AppView(message.payload)

    def instantiate_and_map_graph(self, graph: Graph, options: RunOptions = RunOptions()) -> None:
        """Map the graph onto the joined ensembles, deploy it, and start it once all acknowledge."""
        self.send_to_runtime(Message(RuntimeMsg.INSTANTIATE_AND_MAP,
                                     (graphfile.to_document(graph), options.to_wire()), Recipient.RUNTIME_MANAGER))

    def teardown(self, app_id: Optional[str] = None) -> None:
        self.send_to_runtime(Message(RuntimeMsg.TEARDOWN, app_id, Recipient.RUNTIME_MANAGER))

    def send_to_runtime(self, message: Message) -> None:
        self.post(message)

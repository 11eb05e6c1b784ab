"""The simulated shell: an ensemble's process cores on simulated time.

Each simulated ensemble runs the same cores a device runs: the input-token,
execute and network-manager cores (and the runtime-manager core on the
runtime manager), plus a transport endpoint whose datagrams cross
:class:`appliance.sim.link.SimNetwork` as bytes. Time is the integer
``env.now`` in µs; processing takes no simulated time, so an ensemble is not
a simpy process but a pump run from simpy callbacks: when a datagram
arrives, when one of its timers is due, and when something is posted to it.
"""
from __future__ import annotations

import logging
from collections import deque
from typing import Any, Callable, Deque, Dict, Iterable, List, Optional, Set

import simpy

from appliance.ipc import Message, NetMsg, Output, Recipient, RuntimeMsg, Transmission
from appliance.ipc.codec import CodecError, decode_messages, encode_messages
from appliance.net import Delivered, Endpoint, SendFailed, TransportConfig
from appliance.net.impairment import Impairment
from appliance.program import graphfile
from appliance.program.model import Graph
from appliance.runtime.app import App, OutputRecord, RunOptions
from appliance.runtime.core import MALFORMED, Core
from appliance.runtime.counters import Counters
from appliance.runtime.execute import ExecuteCore
from appliance.runtime.manager import RuntimeManagerCore
from appliance.runtime.network import RUNTIME_MANAGER, NetworkCore
from appliance.runtime.sync import InputTokenCore
from appliance.runtime.timers import IDLE
from appliance.sim.link import SimNetwork, derived_rng
from appliance.system import Component, EnsembleDescription

log = logging.getLogger("appliance.sim")


class SimWorld:
    """One simulation: the simpy environment, the network, and its seed."""

    def __init__(self, seed: int = 0, impairment: Impairment = Impairment(),
                 transport: TransportConfig = TransportConfig(), key: Optional[bytes] = None) -> None:
        self.env = simpy.Environment()
        self.seed = seed
        self.network = SimNetwork(self.env, seed, impairment)
        self.transport = transport
        self.key = key

    @property
    def now(self) -> int:
        return int(self.env.now)

    def run(self, until: int) -> None:
        if until > self.env.now:
            self.env.run(until=until)


def sim_address(name: str) -> str:
    return "sim:" + name


class SimEnsemble:
    """A device in the simulation (the seeds' ``TTEnsemble``, simulated)."""

    def __init__(self, world: SimWorld, name: str, components: Iterable[Component] = ()) -> None:
        self.world = world
        self.env = world.env
        self.name = name
        self.address = sim_address(name)
        self.components: List[Component] = []
        self.add_components(*components)
        self.counters = Counters()
        session = derived_rng(world.seed, "session", name).getrandbits(64) or 1  # nonzero, as a device's
        self.endpoint = Endpoint(world.transport, session=session, key=world.key)
        self.cores: Dict[Recipient, Core] = {}
        self.network = NetworkCore(name, self.address, **self._network_options())
        self.cores[Recipient.INPUT_TOKENS] = InputTokenCore(name)
        self.cores[Recipient.EXECUTE] = ExecuteCore(name)
        self.cores[Recipient.NETWORK] = self.network
        self._index_cores()
        self._queue: Deque[Message] = deque()
        self._pumping = False
        self._pump_scheduled = False
        #: Ticks of the simpy timeouts armed and not yet fired: one at or before every
        #: deadline of this ensemble, so a timer made moot never needs re-arming.
        self._armed: Set[int] = set()
        self._transport_due: Optional[int] = None
        self._watchers: List[Callable[[], None]] = []
        world.network.attach(self.address, self._on_datagram)

    def _network_options(self) -> Dict[str, Any]:
        # SimNetwork carries datagrams only between ensembles of this process: no one
        # outside can put a forged deploy on it, so SQ code is admitted from it.
        return {"code_from_network": True}

    def _index_cores(self) -> None:
        """What the pump looks up per message: the handler of its type, and the core's timers."""
        self._by_type = {msg_type: (recipient, handler, core)
                          for recipient, core in self.cores.items() for msg_type, handler in core.handlers().items()}
        self._timed = [(core.timers, core.on_timer) for core in self.cores.values()]

    # -- the seeds' ensemble API ------------------------------------------------------

    def add_components(self, *components: Component) -> None:
        """Add components; one with the name of a present component replaces it."""
        for component in components:
            self.components = [c for c in self.components if c.name != component.name] + [component]

    def remove_component(self, component: Component) -> None:
        self.components = [c for c in self.components if c.name != component.name]

    def find_component(self, name: str) -> Optional[Component]:
        for component in self.components:
            if component.name == name:
                return component
        return None

    def description(self) -> EnsembleDescription:
        return EnsembleDescription(self.name, self.address, list(self.components))

    def connect_to_ticktalk_network(self, runtime_manager_address: str,
                                    runtime_manager_name: str = RUNTIME_MANAGER) -> None:
        """Ask the runtime manager to let this ensemble join; the answer arrives as a message."""
        self.network.runtime_manager = runtime_manager_name
        self.post(Message(NetMsg.JOIN_NETWORK, (runtime_manager_address, self.description().to_wire()),
                          Recipient.NETWORK))

    @property
    def joined(self) -> Optional[bool]:
        """True once accepted, False if refused (see ``join_error``), None while waiting."""
        return self.network.joined

    @property
    def join_error(self) -> str:
        return self.network.join_error

    def enter_steady_state(self, timeout: Optional[int] = None) -> None:
        """Run the simulation (every ensemble in it) for ``timeout`` µs, or until nothing is left to do."""
        if timeout is None:
            self.env.run()
        else:
            self.world.run(self.world.now + timeout)

    def post(self, message: Message) -> None:
        """Put a message on this ensemble's queue, as its own processes would."""
        self._queue.append(message)
        self._poke()

    def watch(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` after each burst of processing (harnesses watch state this way)."""
        self._watchers.append(callback)

    def stats(self) -> Dict[str, Any]:
        counters = Counters.merged([self.counters.as_dict()] + [c.counters.as_dict() for c in self.cores.values()])
        return {"counters": counters, "transport": self.endpoint.stats()}

    # -- the shell ----------------------------------------------------------------------

    def _poke(self) -> None:
        """Pump soon (at this instant, from simpy): the caller may be outside the simulation."""
        if not self._pumping and not self._pump_scheduled:
            self._pump_scheduled = True
            self.env.timeout(0).callbacks.append(self._scheduled_pump)

    def _scheduled_pump(self, _event: simpy.Event) -> None:
        self._pump_scheduled = False
        self._pump()

    def _on_datagram(self, datagram: bytes, source: str) -> None:
        self.endpoint.receive_datagram(datagram, source, self.env.now)
        self._take_events()
        if self._queue:
            self._pump()
        else:  # an acknowledgement: nothing for the cores, only the transport's own answer and timer
            self._flush_transport(self.env.now)

    def _take_events(self) -> None:
        now = self.world.now
        for event in self.endpoint.events():
            if event.__class__ is Delivered:
                try:
                    messages = decode_messages(event.payload)
                except CodecError as exc:
                    self.counters.incr("refused.undecodable")
                    log.warning("%s: undecodable message from %s: %s", self.name, event.peer, exc)
                    continue
                self._queue.extend(self.network.deliver(messages, event.peer, now))
            elif event.__class__ is SendFailed:
                self._queue.extend(self.network.transmission_failed(event.peer, event.reason))

    def _pump(self) -> None:
        """Everything due at this instant: transport timers, core timers, then every
        queued message and whatever it produces, until the ensemble is idle."""
        self._pumping = True  # what a sink posts meanwhile, this pump takes (see _poke)
        try:
            self._pump_now(self.env.now)
        finally:
            self._pumping = False
        for watcher in self._watchers:
            watcher()

    def _pump_now(self, now: int) -> None:
        queue = self._queue
        by_type = self._by_type
        timed = self._timed
        endpoint = self.endpoint
        if self._transport_due is not None and self._transport_due <= now:
            endpoint.handle_timer(now)
            self._take_events()
        while True:
            for timers, on_timer in timed:
                if timers.due <= now:
                    self._dispatch(on_timer(now), now)
            if not queue:
                break
            while queue:
                message = queue.popleft()
                entry = by_type.get(message.msg_type)
                if entry is None or entry[0] is not message.recipient:
                    outputs = self._refuse(message, now)
                else:
                    try:
                        outputs = entry[1](message.payload, now)
                    except MALFORMED as exc:
                        outputs = entry[2].malformed(message, exc)
                for out in outputs:
                    if out.__class__ is Transmission:
                        self._transmit(out, now)
                    else:
                        queue.append(out)
        self._flush_transport(now)

    def _refuse(self, message: Message, now: int) -> List[Output]:
        """A message no core here takes as addressed: its recipient's core counts it."""
        core = self.cores.get(message.recipient)
        if core is None:
            self.counters.incr("refused.no_such_process")
            return []
        return core.handle(message, now)

    def _flush_transport(self, now: int) -> None:
        send = self.world.network.send
        for datagram, peer in self.endpoint.datagrams_to_send():
            send(self.address, peer, datagram)
        self._transport_due = self.endpoint.get_timer()
        self._arm_timer(now)

    def _dispatch(self, outputs: List[Output], now: int) -> None:
        for out in outputs:
            if out.__class__ is Transmission:
                self._transmit(out, now)
            else:
                self._queue.append(out)

    def _transmit(self, out: Transmission, now: int) -> None:
        try:
            self.endpoint.send(out.address, encode_messages(out.messages), out.reliable, now)
        except (ValueError, TypeError) as exc:
            self._queue.extend(self.network.unsendable(out, str(exc)))

    def _arm_timer(self, now: int) -> None:
        """A simpy timeout for the earliest of this ensemble's timers (cores and transport),
        unless one already armed fires at or before it."""
        at = self._cores_due()
        if self._transport_due is not None and self._transport_due < at:
            at = self._transport_due
        armed = self._armed
        if at == IDLE or (armed and min(armed) <= at):
            return
        at = max(at, now)
        armed.add(at)
        self.env.timeout(at - now, at).callbacks.append(self._timer_fired)

    def _cores_due(self) -> int:
        """The earliest tick a core's timers are due (IDLE if none is scheduled)."""
        due = IDLE
        for timers, _ in self._timed:
            if timers.due < due:
                due = timers.due
        return due

    def _timer_fired(self, event: simpy.Event) -> None:
        self._armed.discard(event.value)
        now = self.env.now
        # A timer armed for a retransmission the ACK made moot is not worth a pump.
        if (self._transport_due is not None and self._transport_due <= now) or self._cores_due() <= now:
            self._pump()
        else:
            self._arm_timer(now)


class SimRuntimeManager(SimEnsemble):
    """The runtime-manager ensemble (the seeds' ``TTRuntimeManager``, simulated).

    It joins itself at once, so it can host SQs when no other ensemble joins.
    """

    def __init__(self, world: SimWorld, components: Iterable[Component] = (),
                 sink: Callable[[OutputRecord], None] = lambda record: None,
                 name: str = RUNTIME_MANAGER) -> None:
        super().__init__(world, name, components)
        self.manager = RuntimeManagerCore(self.address, sink, name=name)
        self.cores[Recipient.RUNTIME_MANAGER] = self.manager
        self._index_cores()
        self.post(Message(RuntimeMsg.JOIN, self.description().to_wire(), Recipient.RUNTIME_MANAGER))

    def _network_options(self) -> Dict[str, Any]:
        return dict(super()._network_options(), hosts_runtime_manager=True)

    @property
    def members(self) -> List[str]:
        return list(self.manager.members)

    @property
    def app(self) -> Optional[App]:
        return self.manager.app

    def instantiate_and_map_graph(self, graph: Graph, options: RunOptions = RunOptions()) -> None:
        """Map the graph onto the joined ensembles, deploy it, and start it once all acknowledge."""
        self.send_to_runtime(Message(RuntimeMsg.INSTANTIATE_AND_MAP,
                                     (graphfile.to_document(graph), options.to_wire()), Recipient.RUNTIME_MANAGER))

    def teardown(self, app_id: Optional[str] = None) -> None:
        self.send_to_runtime(Message(RuntimeMsg.TEARDOWN, app_id, Recipient.RUNTIME_MANAGER))

    def send_to_runtime(self, message: Message) -> None:
        self.post(message)

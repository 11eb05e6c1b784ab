"""Messages between the processes of an ensemble, and between ensembles.

Every message is ``Message(msg_type, payload, recipient)``. The type enums are
per process, and their values carry the layer: below 100
the data layer (tokens), 100-199 the control layer (deploy, routes, join,
teardown: these are never dropped and travel reliably), 200 and above the
system layer (process life cycle).

The enums are plain ``Enum``, not ``IntEnum``: ``ExecuteMsg.EXECUTION_CONTEXT``
and ``SyncMsg.INPUT_TOKEN`` are both 0, and must never compare equal.
"""
from __future__ import annotations

import enum
from typing import Any, List, NamedTuple, Union


class Layer(enum.Enum):
    DATA = "data"
    CONTROL = "control"
    SYSTEM = "system"


class _LayeredType(enum.Enum):
    # Identity hashing in C: Enum's own __hash__ is Python code, and every
    # message passes through a dict keyed by its type.
    __hash__ = object.__hash__

    def __init__(self, value: int) -> None:
        # An attribute, not a property: the network manager asks it of every arriving message.
        self.layer = Layer.DATA if value < 100 else Layer.CONTROL if value < 200 else Layer.SYSTEM


class Recipient(enum.Enum):
    """The process of an ensemble a message is for."""

    __hash__ = object.__hash__

    INPUT_TOKENS = 1
    EXECUTE = 2
    NETWORK = 3
    RUNTIME_MANAGER = 10
    #: Whoever talks to the ensemble on its local control channel: a command
    #: (``appliance status``, ``appliance rtm``) on a device, the harness in
    #: simulation. Never an ensemble across the network.
    CLIENT = 20


class SyncMsg(_LayeredType):
    """For the input-token process (synchronization: firing rules)."""

    INPUT_TOKEN = 0  # Token
    INSTANTIATE_SQS = 100  # (app, [SyncPart wire dict])
    START_SQS = 101  # (app, [(sq, window Interval)]): arm streams, fire trigger-only SQs
    REMOVE_SQS = 102  # app: stop its streams, drop its SQs, report counters
    FORGET_APPS = 103  # None: a new join; app ids removed here may be another manager's now (local only)
    STATUS = 130  # request id, from the local control channel: answered with ClientMsg.STATUS
    END = 200


class ExecuteMsg(_LayeredType):
    """For the execute process (runs SQ functions)."""

    EXECUTION_CONTEXT = 0  # ExecutionContext
    INSTANTIATE_SQS = 100  # (app, program wire dict, [ExecutePart wire dict], sq_time_limit µs)
    REMOVE_SQS = 102  # app
    FORGET_APPS = 103  # None, as SyncMsg's
    STATUS = 130  # request id
    END = 200


class NetMsg(_LayeredType):
    """For the network manager (forwarding, routing, the ensemble's link to the RTM)."""

    SEND_TOKENS = 0  # (sq, interval, outputs tuple) from the execute process
    INSTANTIATE_SQS = 100  # (app, [ForwardPart wire dict], {ensemble: address})
    REMOVE_SQS = 102  # app
    ADD_ROUTES = 110  # {ensemble: address}
    JOIN_NETWORK = 111  # (rtm address, EnsembleDescription wire dict): ask to join
    JOIN_RESULT = 112  # (accepted, reason, {ensemble: address}) from the RTM
    CLOCK_REPLY = 113  # (t1, t2): the probe's send time echoed, the RTM's clock when it answered
    REJOIN = 114  # (name, join nonce, reason, it accepted that join): the RTM has no such member: join again
    REMOVE_ROUTES = 115  # [ensemble names]: members gone (local only, from the RTM core)
    FORWARD = 120  # (ensemble name, [Message]): deliver to that ensemble's processes
    REPORT = 121  # [Message] for the runtime manager, wherever it is
    FORWARD_TO_ADDRESS = 122  # (address, [Message]): reply to an ensemble not yet routed (join)
    STATUS = 130  # request id
    SUBSCRIBE = 131  # None: the client that sends it hears this ensemble's ClientMsg reports
    UNSUBSCRIBE = 132  # None: it no longer does (a command sends it as it ends)
    SIGNED = 140  # (body, signature): control from the runtime manager, signed (runtime/signing.py)
    END = 200


class RuntimeMsg(_LayeredType):
    """For the runtime-manager process (management plane)."""

    LOG_OUTPUT = 1  # OutputRecord wire list
    INSTANTIATE_AND_MAP = 100  # (Graph wire dict, RunOptions wire dict)
    JOIN = 103  # EnsembleDescription wire dict
    CLOCK_PROBE = 104  # (ensemble, t1): its clock now; answered with NetMsg.CLOCK_REPLY
    TEARDOWN = 105  # app or None: stop it now
    SQS_READY = 107  # (app, ensemble, process name, [error strings])
    SQS_REMOVED = 108  # (app, ensemble, process name, {counter: n})
    SQ_ERROR = 115  # (app, ensemble, sq, one-line error, traceback text)
    DELIVERY_FAILED = 116  # ([ensemble names], reason): the transport gave up (local, never from the network)
    MEMBER_CLOCK = 117  # (ensemble, offset, delay): its clock's offset to the RTM's, and the probe's round trip
    MEMBER_STATUS = 118  # (request id, ensemble, process, status): a member's answer to a relayed STATUS
    HEARTBEAT = 119  # (ensemble, address, join nonce): a member is alive (every 5 s, local clock)
    LEAVE = 120  # (ensemble, address, join nonce): a member is stopping
    STATUS = 130  # request id
    CLUSTER_STATUS = 131  # request id: STATUS, and every member's processes' too (as "member/process")
    SUBSCRIBED = 132  # address: a client there subscribed; tell it the members and the app as they are
    END = 200


class ClientMsg(_LayeredType):
    """For the local client: what a running ensemble tells the command or harness attached to it.

    Everything a command needs from a running ensemble arrives this way, so a
    command on a device and the simulated harness learn the same things the
    same way, and neither reads a core's objects.
    """

    OUTPUT = 1  # OutputRecord wire list: one logged graph output (runtime manager only)
    JOINED = 130  # (accepted, reason): the runtime manager's answer to this ensemble's join
    MEMBER = 131  # (name, address, clock offset, probe delay): an ensemble joined (runtime manager only)
    APP = 132  # app report dict: a deployment changed phase (runtime manager only)
    STATUS = 133  # (request id, process name, status dict): the answer to a STATUS request
    MEMBER_LEFT = 134  # (name, reason): a member left, or fell silent (runtime manager only)


MessageType = Union[SyncMsg, ExecuteMsg, NetMsg, RuntimeMsg, ClientMsg]

#: Which type enum each recipient accepts; anything else is refused at the door.
TYPES_FOR: dict = {
    Recipient.INPUT_TOKENS: SyncMsg,
    Recipient.EXECUTE: ExecuteMsg,
    Recipient.NETWORK: NetMsg,
    Recipient.RUNTIME_MANAGER: RuntimeMsg,
    Recipient.CLIENT: ClientMsg,
}


class Message(NamedTuple):
    msg_type: MessageType
    payload: Any
    recipient: Recipient

    @property
    def layer(self) -> Layer:
        return self.msg_type.layer


class Transmission(NamedTuple):
    """Messages leaving the ensemble for another one; the shell hands them to the transport.

    ``reliable`` is true for control-layer messages and for graph outputs on
    their way to the runtime manager: those are retransmitted until
    acknowledged, then reported failed, never silently lost. Tokens between
    SQs go best effort.
    """

    address: str
    messages: List[Message]
    reliable: bool
    origin: str = ""  # the SQ whose outputs these are, for error reports
    #: The ensemble it is for (its address when its name is not known yet: a join's answer);
    #: what a signed control transmission is bound to.
    target: str = ""


Output = Union[Message, Transmission]


class ExecutionContext(NamedTuple):
    """What the input-token process hands the execute process: one firing of one SQ.

    ``values`` holds one value per function argument fed by a port; ``interval``
    is the overlap of the matched tokens, which every output inherits; ``tick``
    is the sample time for stream SQs, ``None`` otherwise.
    """

    sq: str
    interval: Any  # appliance.timing.Interval
    values: tuple
    tick: Any = None

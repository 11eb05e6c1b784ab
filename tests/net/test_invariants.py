"""The transport's two invariants, as hypothesis properties on the fake-clock wire.

1. Every reliable message ends, at its sender, as delivered exactly once or
   as SendFailed (then delivered at most once), whatever the outage pattern,
   the loss, or a reboot of the receiver.
2. No datagram that was not sent by the peer it claims to be, to this
   receiver, in this session, is ever delivered: neither a replay (from any
   address, to any endpoint, after any reboot) with a cluster key, nor a
   blind forgery without one.

Derandomized: the same cases every run.
"""
from __future__ import annotations

import random
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.net import Delivered, Endpoint, TransportConfig
from appliance.net import wire as layout

from .fakewire import Wire, seeded

SETTINGS = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
CONFIG = TransportConfig(mtu=100, max_message_size=4000, window=8, max_in_flight=4, replay_window=16,
                         rto_max=400_000, retry_limit=10)
KEY = b"invariant tests cluster key, 32B"

# -- 1. delivered exactly once, or failed --------------------------------------------------

outage = st.tuples(st.integers(0, 30_000_000), st.integers(0, 12_000_000))


@st.composite
def link_histories(draw):
    return {
        "messages": draw(st.lists(st.integers(0, 3000), min_size=1, max_size=4)),
        "gaps": draw(st.lists(st.integers(0, 3_000_000), min_size=4, max_size=4)),
        "down": {direction: draw(st.lists(outage, max_size=3)) for direction in ("ab", "ba")},
        "loss": draw(st.sampled_from([0.0, 0.0, 0.1, 0.3])),
        "reboot_at": draw(st.one_of(st.none(), st.integers(0, 30_000_000))),
        "key": draw(st.sampled_from([None, KEY])),
        "seed": draw(st.integers(0, 2**16)),
    }


@SETTINGS
@given(link_histories())
def test_every_reliable_message_ends_delivered_once_or_failed(history):
    rng = random.Random(history["seed"])
    key = history["key"]
    wire = Wire(latency=300)
    wire.add("a", Endpoint(CONFIG, session=0xA1, key=key, entropy=seeded(1)))
    wire.add("b", Endpoint(CONFIG, session=0xB2, key=key, entropy=seeded(2)))

    def down(source, destination, datagram):
        for start, length in history["down"][source + destination]:
            if start <= wire.now < start + length:
                return True
        return rng.random() < history["loss"]

    wire.drop = down
    sent = {}
    reboot_at = history["reboot_at"]
    for size, gap in zip(history["messages"], history["gaps"]):
        if reboot_at is not None and wire.now + gap >= reboot_at:
            wire.run(until=reboot_at)
            wire.reboot("b", session=0xB3, key=key)
            reboot_at = None
        wire.run(until=wire.now + gap)
        payload = bytes([len(sent)]) * size + b"#%d" % len(sent)
        sent[wire.send("a", "b", payload)] = payload
    wire.run()
    a = wire.endpoints["a"]
    assert a.in_flight("b") == 0 and a.get_timer() is None  # every message ended
    failed = Counter(f.message_id for f in wire.failed["a"])
    delivered = Counter(e.payload for e in wire.delivered["b"])
    assert all(times == 1 for times in failed.values())
    stats = a.stats()["b"]
    assert stats["acked"] + stats["failed"] == len(sent)
    for message_id, payload in sent.items():
        if message_id in failed:
            assert delivered[payload] <= 1
        else:
            assert delivered[payload] == 1, (message_id, history)


# -- 2. nothing delivered that its claimed peer did not send, to this receiver, now --------

NAMES = ("a", "b", "c")


class Audited(Wire):
    """Checks every delivery against what was really sent, and by whom, at the moment
    it is reported."""

    def __init__(self) -> None:
        super().__init__(latency=200)
        self.boot = {}  # name -> (boot number, session)
        self.origin = {}  # payload -> (sender, its session then, destination)
        self.seen = Counter()  # (receiver, payload) deliveries, across all its boots
        self.problems = []

    def start(self, name: str, key) -> None:
        boot = self.boot.get(name, (0, 0))[0] + 1
        session = (ord(name) << 8) + boot
        self.boot[name] = (boot, session)
        if name in self.endpoints:
            self.reboot(name, session=session, key=key)
        else:
            self.add(name, Endpoint(CONFIG, session=session, key=key, entropy=seeded(session)))

    def send_from(self, sender: str, destination: str, reliable: bool, size: int) -> None:
        payload = b"%s>%s boot %d #%d " % (sender.encode(), destination.encode(), self.boot[sender][0],
                                          len(self.origin)) + bytes(size)
        self.origin[payload] = (sender, self.boot[sender][1], destination)
        self.send(sender, destination, payload, reliable)

    def flush(self, name: str) -> None:
        endpoint = self.endpoints[name]
        for event in list(endpoint._events):
            if isinstance(event, Delivered):
                self.audit(name, endpoint, event)
        super().flush(name)

    def audit(self, receiver: str, endpoint: Endpoint, event: Delivered) -> None:
        origin = self.origin.get(event.payload)
        if origin is None:
            self.problems.append("%s delivered something no one sent" % receiver)
            return
        sender, session, destination = origin
        if event.peer != sender or destination != receiver:
            self.problems.append("%s delivered %s's message to %s as from %s"
                                 % (receiver, sender, destination, event.peer))
        elif endpoint.stats()[event.peer]["session"] != session:
            self.problems.append("%s delivered a message of another session of %s" % (receiver, sender))
        self.seen[receiver, event.payload] += 1
        if self.seen[receiver, event.payload] > 1:
            self.problems.append("%s delivered one message twice" % receiver)


def adversary_operations(key):
    honest = [
        st.tuples(st.just("send"), st.sampled_from(NAMES), st.sampled_from(NAMES), st.booleans(),
                  st.integers(0, 300)),
        st.tuples(st.just("run"), st.integers(0, 3_000_000)),
        st.tuples(st.just("reboot"), st.sampled_from(NAMES)),
        st.tuples(st.just("duplicate"), st.integers(0, 10**6)),  # the network repeats one
    ]
    if key is not None:  # sees everything, replays anything from anywhere to anyone
        attacks = [st.tuples(st.just("replay"), st.integers(0, 10**6), st.sampled_from(NAMES),
                             st.sampled_from(NAMES + ("x:1", "x:2")))]
    else:  # blind: sees nothing, guesses
        attacks = [st.tuples(st.just("forge"), st.sampled_from(NAMES), st.sampled_from(NAMES),
                             st.integers(0, 2**64 - 1), st.integers(0, 4))]
    return st.lists(st.one_of(*honest, *attacks, *attacks), max_size=50)


def forged(kind: int, guess: int) -> bytes:
    """A datagram made of guesses: the values a blind forger cannot know."""
    rng = random.Random(guess)
    value = lambda: rng.getrandbits(64) | 1  # noqa: E731
    return [
        lambda: layout.data(value(), None, True, rng.randrange(1, 5), 0, 1, 3, 0, b"bad"),
        lambda: layout.ack(value(), None, 0, [(rng.randrange(1, 5), 0, 1)], True),
        lambda: layout.hello(value(), None),
        lambda: layout.challenge(value(), 0, value(), value(), 0, bytes(16), None),
        lambda: layout.confirm(value(), 0, value(), value(), value(), bytes(16), None),
    ][kind]()


def impersonation(key, ops):
    wire = Audited()
    for name in NAMES:
        wire.start(name, key)
    for sender in NAMES:  # traffic between every pair first, so there is plenty to replay
        for destination in NAMES:
            if sender != destination:
                wire.send_from(sender, destination, True, 150)
    wire.run(until=wire.now + 100_000)
    for op in ops:
        if op[0] == "send":
            _, sender, destination, reliable, size = op
            if sender != destination:
                wire.send_from(sender, destination, reliable, size)
        elif op[0] == "run":
            wire.run(until=wire.now + op[1])
        elif op[0] == "reboot":
            wire.start(op[1], key)
        elif op[0] == "duplicate" and wire.carried:
            source, destination, datagram = wire.carried[op[1] % len(wire.carried)]
            if destination in wire.endpoints:
                wire.inject(destination, source, datagram)
        elif op[0] == "replay" and wire.carried:
            _, index, destination, claimed = op
            wire.inject(destination, claimed, wire.carried[index % len(wire.carried)][2])
        elif op[0] == "forge":
            _, destination, claimed, guess, kind = op
            if destination != claimed:
                wire.inject(destination, claimed, forged(kind, guess))
    wire.run()
    assert wire.problems == []
    return wire


@SETTINGS
@given(adversary_operations(KEY))
def test_with_a_key_no_replay_is_ever_delivered(ops):
    impersonation(KEY, ops)


@SETTINGS
@given(adversary_operations(None))
def test_without_a_key_no_blind_forgery_is_ever_delivered(ops):
    impersonation(None, ops)

"""Random, forged and mutated datagrams: the endpoint counts, drops, stays bounded, serves on.

Crafted datagrams carry a correct CRC (and the unauthenticated target) so
they get past the trailer into the parsers; with a key, they must all die
at authentication. Hypothesis is derandomized: the same cases every run.
"""
from __future__ import annotations

import contextlib
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.net import ENDPOINT, Endpoint, TransportConfig
from appliance.net.counters import COUNTER_NAMES, ENDPOINT_COUNTER_NAMES
from appliance.net.crc import crc32c
from appliance.net.wire import (
    ACK,
    ACK_ENTRY,
    ACK_HEADER,
    DATA,
    DATA_HEADER,
    VERSION,
    fragment_geometry,
)

from .fakewire import Wire

CONFIG = TransportConfig(mtu=100, max_message_size=2000, max_peers=4, max_reassemblies=2,
                         reassembly_memory=4096, replay_window=16, max_in_flight=4,
                         retired_sessions=2, reassembly_timeout=50_000, retry_limit=3)
TARGET_SESSION = 0x7A
KEY = b"fuzzing cluster key of 32 bytes."
PEERS = ["p%d" % i for i in range(6)]
SETTINGS = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
COUNTED = set(COUNTER_NAMES) | set(ENDPOINT_COUNTER_NAMES)


def with_crc(body: bytes) -> bytes:
    return body + struct.pack("<I", crc32c(body))


u8 = st.integers(0, 0xFF)
u16 = st.one_of(st.integers(0, 40), st.just(0xFFFF))
u32 = st.one_of(st.integers(0, 40), st.just(0xFFFFFFFF), st.integers(0, 0xFFFFFFFF))
sessions = st.sampled_from([1, 2, 3, 0xFFFFFFFFFFFFFFFF])


@st.composite
def forged_data(draw):
    """DATA with a valid CRC: half of them with a consistent fragment geometry."""
    kind = draw(st.sampled_from([DATA, DATA, DATA, ACK, 3, 0xFF]))
    if draw(st.booleans()):
        count = draw(st.integers(1, 5))
        length = draw(st.integers(count if count > 1 else 0, 400))
        index = draw(st.integers(0, count - 1))
        size = fragment_geometry(length, count) if count > 1 else length
        if index == count - 1:
            size = length - (count - 1) * size
        fields = (draw(st.integers(1, 6)), index, count, length, draw(u32))
        payload = bytes(max(0, size))
    else:
        fields = (draw(u32), draw(u16), draw(u16), draw(st.integers(0, 3000)), draw(u32))
        payload = draw(st.binary(max_size=80))
    header = DATA_HEADER.pack(VERSION, kind, draw(u8), draw(u8), draw(sessions), *fields)
    return with_crc(header + payload)


@st.composite
def forged_ack(draw):
    entries = draw(st.lists(st.tuples(st.one_of(st.integers(1, 6), u32), u16, u16), max_size=8))
    declared = draw(st.one_of(st.just(len(entries)), u16))
    header = ACK_HEADER.pack(VERSION, ACK, draw(u8), 0, draw(sessions),
                             draw(st.sampled_from([TARGET_SESSION, 5])), draw(u32), declared)
    return with_crc(header + b"".join(ACK_ENTRY.pack(*entry) for entry in entries))


@st.composite
def mutated(draw, genuine: bool):
    """A datagram of a real endpoint, then truncated, bit-flipped or extended
    (or, if ``genuine``, possibly left alone)."""
    sender = Endpoint(CONFIG, session=draw(sessions), key=draw(st.sampled_from([None, KEY])))
    size = draw(st.integers(0, 400))
    sender.send("target", bytes(size), draw(st.booleans()), 0)
    datagrams = [d for d, _ in sender.datagrams_to_send()]
    datagram = bytearray(datagrams[draw(st.integers(0, len(datagrams) - 1))])
    how = draw(st.sampled_from(["truncate", "flip", "extend"] + (["none"] if genuine else [])))
    if how == "truncate":
        del datagram[draw(st.integers(0, len(datagram) - 1)):]
    elif how == "flip":
        datagram[draw(st.integers(0, len(datagram) - 1))] ^= draw(st.integers(1, 255))
    elif how == "extend":
        datagram += draw(st.binary(min_size=1, max_size=20))
    if draw(st.booleans()) and len(datagram) >= 4:
        datagram = bytearray(with_crc(bytes(datagram[:-4])))
    return bytes(datagram)


def genuine_datagrams():
    """Real traffic of two boots of one peer (several messages, retransmissions included)."""
    pool = []
    for session in (1, 2):
        sender = Endpoint(CONFIG, session=session)
        for size, reliable in ((0, True), (50, False), (300, True), (300, False), (1500, True)):
            sender.send("target", bytes(size), reliable, 0)
        sender.handle_timer(10 ** 6)
        pool.extend(d for d, _ in sender.datagrams_to_send())
    return pool


GENUINE = genuine_datagrams()


def operations(genuine: bool):
    datagrams = st.one_of(st.binary(max_size=150), forged_data(), forged_ack(), mutated(genuine),
                          *([st.sampled_from(GENUINE)] * 3 if genuine else []))
    return st.lists(
        st.one_of(
            st.tuples(st.just("datagram"), datagrams, st.sampled_from(PEERS),
                      st.integers(0, 20_000)),
            st.tuples(st.just("send"), st.integers(0, 900), st.sampled_from(PEERS), st.booleans()),
            st.tuples(st.just("timer"), st.integers(0, 200_000)),
        ),
        max_size=40,
    )


def counted(stats, peer):
    total = sum(v for k, v in stats[ENDPOINT].items() if k in COUNTED)
    return total + sum(v for k, v in stats.get(peer, {}).items() if k in COUNTED)


def check_bounds(endpoint):
    stats = endpoint.stats()
    table = endpoint._reassembly
    assert stats[ENDPOINT]["peers"] <= CONFIG.max_peers
    assert table.memory <= CONFIG.reassembly_memory
    assert table.memory == sum(b.reserved for b in table._buffers.values())
    for peer in endpoint._peers.values():
        assert table.per_peer(peer.address) <= CONFIG.max_reassemblies
        assert len(peer.outbound.messages) <= CONFIG.max_in_flight
        for window in peer.windows:
            assert window._bits < 1 << CONFIG.replay_window


def drive(key, ops):
    target = Endpoint(CONFIG, session=TARGET_SESSION, key=key)
    now = 0
    for op in ops:
        if op[0] == "datagram":
            _, datagram, peer, step = op
            now += step
            before = counted(target.stats(), peer)
            target.receive_datagram(datagram, peer, now)
            assert counted(target.stats(), peer) > before, "a datagram left no trace"
        elif op[0] == "send":
            _, size, peer, reliable = op
            with contextlib.suppress(ValueError):  # refusals are counted, part of the contract
                target.send(peer, bytes(size), reliable, now)
        else:
            now += op[1]
            target.handle_timer(now)
        target.datagrams_to_send()
        target.events()
        timer = target.get_timer()
        assert timer is None or isinstance(timer, int)
        check_bounds(target)
    return target, now


def still_serves(target, now):
    """Once the junk has timed out, a new peer gets a reliable message through."""
    for _ in range(1000):
        deadline = target.get_timer()
        if deadline is None:
            break
        now = max(now, deadline)
        target.handle_timer(now)
        target.datagrams_to_send()
        target.events()
    assert target.get_timer() is None
    wire = Wire()
    wire.now = now
    wire.add("target", target)
    wire.add("fresh", Endpoint(CONFIG, session=0xF5, key=target_key(target)))
    wire.send("fresh", "target", b"still here" * 50)
    wire.run()
    assert [e.payload for e in wire.delivered["target"]][-1] == b"still here" * 50


def target_key(target):
    return KEY if target.authenticated else None


@SETTINGS
@given(operations(genuine=True))
def test_unauthenticated_endpoint_survives_anything(ops):
    still_serves(*drive(None, ops))


@SETTINGS
@given(operations(genuine=False))
def test_authenticated_endpoint_refuses_all_forgeries(ops):
    target, now = drive(KEY, ops)
    for peer_stats in target.stats().values():
        assert peer_stats["delivered"] == 0
    still_serves(target, now)

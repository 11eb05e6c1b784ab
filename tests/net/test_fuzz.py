"""Random, forged and mutated datagrams: the endpoint counts, drops, stays bounded, serves on.

Crafted datagrams carry a correct CRC (and the unauthenticated target) so
they get past the trailer into the parsers; with a key, they must all die
at authentication. Genuine traffic (handshakes included) recorded from real
senders is replayed too, from its own address or another. Hypothesis is
derandomized: the same cases every run.
"""
from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.net import ENDPOINT, Endpoint, TransportConfig
from appliance.net.counters import REFUSALS
from appliance.net.crc import crc32c
from appliance.net.wire import (
    ACK,
    ACK_ENTRY,
    ACK_HEADER,
    CHALLENGE,
    CHALLENGE_HEADER,
    CONFIRM,
    CONFIRM_HEADER,
    DATA,
    DATA_HEADER,
    HELLO,
    HELLO_HEADER,
    VERSION,
    fragment_geometry,
)

from .fakewire import Wire, seeded

CONFIG = TransportConfig(mtu=100, max_message_size=2000, max_peers=4, max_reassemblies=2,
                         reassembly_memory=4096, peer_reassembly_memory=3000, replay_window=16,
                         max_in_flight=4, retired_sessions=2, reassembly_timeout=50_000, retry_limit=3)
TARGET_SESSION = 0x7A
TARGET_ENTROPY = 0x7A7A
KEY = b"fuzzing cluster key of 32 bytes."
PEERS = ["p%d" % i for i in range(6)]
SETTINGS = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def with_crc(body: bytes) -> bytes:
    return body + struct.pack("<I", crc32c(body))


def target(key):
    return Endpoint(CONFIG, session=TARGET_SESSION, key=key, entropy=seeded(TARGET_ENTROPY))


u8 = st.integers(0, 0xFF)
u16 = st.one_of(st.integers(0, 40), st.just(0xFFFF))
u32 = st.one_of(st.integers(0, 40), st.just(0xFFFFFFFF), st.integers(0, 0xFFFFFFFF))
u64 = st.one_of(st.sampled_from([0, 1, 2, 3, TARGET_SESSION, 0xFFFFFFFFFFFFFFFF]),
                st.integers(0, 0xFFFFFFFFFFFFFFFF))


@st.composite
def forged_data(draw):
    """DATA with a valid CRC: half of them with a consistent fragment geometry."""
    kind = draw(st.sampled_from([DATA, DATA, DATA, ACK, 6, 0xFF]))
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
    header = DATA_HEADER.pack(VERSION, kind, draw(u8), draw(u8), draw(u64), *fields)
    return with_crc(header + payload)


@st.composite
def forged_ack(draw):
    entries = draw(st.lists(st.tuples(st.one_of(st.integers(1, 6), u32), u16, u16), max_size=8))
    declared = draw(st.one_of(st.just(len(entries)), u16))
    header = ACK_HEADER.pack(VERSION, ACK, draw(u8), 0, draw(u64), draw(u32), declared)
    return with_crc(header + b"".join(ACK_ENTRY.pack(*entry) for entry in entries))


@st.composite
def forged_handshake(draw):
    kind = draw(st.sampled_from([HELLO, CHALLENGE, CONFIRM]))
    flags = draw(st.one_of(st.just(0), u8))
    if kind == HELLO:
        body = HELLO_HEADER.pack(VERSION, HELLO, flags, 0, draw(u64))
    elif kind == CHALLENGE:
        body = CHALLENGE_HEADER.pack(VERSION, CHALLENGE, flags, 0, draw(u64), draw(u32), draw(u64),
                                     draw(u64), draw(u32), bytes(16))
    else:
        body = CONFIRM_HEADER.pack(VERSION, CONFIRM, flags, 0, draw(u64), draw(u32), draw(u64),
                                   draw(u64), draw(st.sampled_from([TARGET_SESSION, draw(u64)])), bytes(16))
    if draw(st.booleans()):
        body = body[: draw(st.integers(0, len(body)))] + draw(st.binary(max_size=8))
    return with_crc(body)


def genuine_traffic(key):
    """Real traffic to the target from two boots of one peer (handshakes, several messages,
    retransmissions), as (datagram, the address it came from)."""
    pool = []
    for session in (1, 2):
        link = Wire()
        link.add("target", target(key))
        link.add("p0", Endpoint(CONFIG, session=session, key=key, entropy=seeded(session)))
        for size, reliable in ((0, True), (50, False), (300, True), (300, False), (1500, True)):
            link.send("p0", "target", bytes(size), reliable)
        link.run(until=10_000)
        link.send("target", "p0", b"and back")
        link.run(until=20_000)
        pool.extend((datagram, source) for source, destination, datagram in link.carried
                    if destination == "target")
    return pool


GENUINE = {None: genuine_traffic(None), KEY: genuine_traffic(KEY)}


@st.composite
def mutated(draw, key):
    """A genuine datagram, then truncated, bit-flipped or extended."""
    datagram = bytearray(draw(st.sampled_from(GENUINE[key]))[0])
    how = draw(st.sampled_from(["truncate", "flip", "extend"]))
    if how == "truncate":
        del datagram[draw(st.integers(0, len(datagram) - 1)):]
    elif how == "flip":
        datagram[draw(st.integers(0, len(datagram) - 1))] ^= draw(st.integers(1, 255))
    else:
        datagram += draw(st.binary(min_size=1, max_size=20))
    if draw(st.booleans()) and len(datagram) >= 4:
        datagram = bytearray(with_crc(bytes(datagram[:-4])))
    return bytes(datagram)


@st.composite
def replayed(draw, key):
    """A genuine datagram, from the address that sent it or from another."""
    datagram, source = draw(st.sampled_from(GENUINE[key]))
    return datagram, draw(st.sampled_from([source, source] + PEERS))


def operations(key, genuine: bool):
    junk = st.one_of(st.binary(max_size=150), forged_data(), forged_ack(), forged_handshake(),
                     mutated(key))
    datagram_ops = st.tuples(st.just("datagram"), st.tuples(junk, st.sampled_from(PEERS)),
                             st.integers(0, 20_000))
    choices = [datagram_ops]
    if genuine:
        choices += [st.tuples(st.just("datagram"), replayed(key), st.integers(0, 20_000))] * 3
    return st.lists(
        st.one_of(
            *choices,
            st.tuples(st.just("send"), st.integers(0, 900), st.sampled_from(PEERS), st.booleans()),
            st.tuples(st.just("timer"), st.integers(0, 200_000)),
        ),
        max_size=40,
    )


def totals(stats):
    received = sum(section["datagrams_received"] for section in stats.values())
    refused = sum(section[name] for section in stats.values() for name in REFUSALS)
    return received, refused


def check_bounds(endpoint):
    stats = endpoint.stats()
    table = endpoint._reassembly
    assert stats[ENDPOINT]["peers"] <= CONFIG.max_peers
    assert table.memory <= CONFIG.reassembly_memory
    assert table.memory == sum(b.reserved for b in table._buffers.values())
    for peer in endpoint._peers:
        assert table.per_peer(peer.address) <= CONFIG.max_reassemblies
        assert table.peer_memory(peer.address) <= CONFIG.peer_reassembly_memory
        assert len(peer.outbound.messages) <= CONFIG.max_in_flight
        for window in peer.windows:
            assert window._finished < 1 << CONFIG.replay_window


def drive(key, ops):
    endpoint = target(key)
    now = 0
    for op in ops:
        if op[0] == "datagram":
            _, (datagram, peer), step = op
            now += step
            received, refused = totals(endpoint.stats())
            endpoint.receive_datagram(datagram, peer, now)
            after = totals(endpoint.stats())
            assert after[0] == received + 1, "a datagram left no trace"
            assert after[1] - refused in (0, 1), "a datagram refused for two reasons"
        elif op[0] == "send":
            _, size, peer, reliable = op
            with contextlib.suppress(ValueError):  # refusals are counted, part of the contract
                endpoint.send(peer, bytes(size), reliable, now)
        else:
            now += op[1]
            endpoint.handle_timer(now)
        endpoint.datagrams_to_send()
        endpoint.events()
        timer = endpoint.get_timer()
        assert timer is None or isinstance(timer, int)
        check_bounds(endpoint)
    return endpoint, now


def still_serves(endpoint, now):
    """Once the junk has timed out, a new peer gets a reliable message through."""
    for _ in range(1000):
        deadline = endpoint.get_timer()
        if deadline is None:
            break
        now = max(now, deadline)
        endpoint.handle_timer(now)
        endpoint.datagrams_to_send()
        endpoint.events()
    assert endpoint.get_timer() is None
    now += CONFIG.reliable_reassembly_timeout  # every peer it holds has fallen quiet
    link = Wire()
    link.now = now
    link.add("target", endpoint)
    link.add("fresh", Endpoint(CONFIG, session=0xF5, key=KEY if endpoint.authenticated else None))
    link.send("fresh", "target", b"still here" * 50)
    link.run()
    assert [e.payload for e in link.delivered["target"]][-1] == b"still here" * 50


@SETTINGS
@given(operations(None, genuine=True))
def test_unauthenticated_endpoint_survives_anything(ops):
    still_serves(*drive(None, ops))


@SETTINGS
@given(operations(KEY, genuine=True))
def test_authenticated_endpoint_survives_anything(ops):
    still_serves(*drive(KEY, ops))


@SETTINGS
@given(operations(KEY, genuine=False))
def test_authenticated_endpoint_refuses_all_forgeries(ops):
    endpoint, now = drive(KEY, ops)
    for peer_stats in endpoint.stats().values():
        assert peer_stats["delivered"] == 0
    still_serves(endpoint, now)


@SETTINGS
@given(st.one_of(forged_data(), forged_handshake(), forged_ack()), st.sampled_from([None, KEY]))
def test_an_address_it_holds_no_channel_from_gets_at_most_one_answer_less_than_twice_as_long(datagram, key):
    endpoint = target(key)  # protocol.md 6.2 and 15.1: no amplifier for spoofed requests
    endpoint.receive_datagram(datagram, "spoofed", 1000)
    answers = [sent for sent, peer in endpoint.datagrams_to_send() if peer == "spoofed"]
    assert len(answers) <= 1 and all(len(answer) < 2 * len(datagram) for answer in answers), \
        (len(datagram), [len(answer) for answer in answers])


@pytest.mark.parametrize("key", [None, KEY])
def test_the_first_datagrams_of_a_real_peer_draw_one_challenge_each_less_than_twice_as_long(key):
    peer = Endpoint(CONFIG, session=0xF5, key=key)
    peer.send("target", b"", True, 0)  # the smallest reliable message, and a best-effort one
    peer.send("target", b"", False, 0)
    sent = [datagram for datagram, _ in peer.datagrams_to_send()]
    assert sent
    for datagram in sent:
        endpoint = target(key)
        endpoint.receive_datagram(datagram, "spoofed", 1000)
        [answer] = [answer for answer, to in endpoint.datagrams_to_send() if to == "spoofed"]
        assert answer[1] == CHALLENGE and len(answer) < 2 * len(datagram)

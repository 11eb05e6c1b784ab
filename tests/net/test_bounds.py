"""Bounded state that cannot be held hostage (issue D item 8).

A stranger cannot take a member's room, in the peer table or in reassembly
memory; no peer takes more than its share; a duplicate never keeps a buffer
alive; and what one datagram costs does not grow with what is held.
"""
from __future__ import annotations

import sys

from appliance.net import ENDPOINT, Endpoint, TransportConfig

from .fakewire import Wire, channel_data, pair, small_config


def test_one_peer_cannot_take_all_the_reassembly_memory():
    config = small_config(reassembly_memory=4000, peer_reassembly_memory=2000)
    wire = pair(config)
    wire.add("c", Endpoint(config, session=0xC3))
    wire.connect("a", "b")
    wire.connect("c", "b")
    a, b, c = (wire.endpoints[name] for name in "abc")
    for message_id in range(1, 20):  # every one opens a buffer of 200 + 4 * 48 bytes
        wire.inject("b", "a", channel_data(a, "b", True, message_id, 0, 4, 200, b"h" * 50))
    assert b._reassembly.peer_memory("a") <= 2000
    wire.inject("b", "c", channel_data(c, "b", True, 1, 0, 4, 200, b"o" * 50))
    stats = b.stats()
    assert stats["a"]["peer_reassembly_full"] == 14 and stats["c"]["peer_reassembly_full"] == 0
    assert stats["c"]["reassembly_full"] == 0 and stats[ENDPOINT]["reassemblies"] == 6


def test_a_duplicate_fragment_never_extends_a_buffers_life():
    """A keep-alive duplicate every 9 s used to hold a buffer (and its memory) forever."""
    config = small_config()
    for reliable, timeout in ((False, config.reassembly_timeout), (True, config.reliable_reassembly_timeout)):
        wire = pair(config)
        wire.connect("a", "b")
        first = channel_data(wire.endpoints["a"], "b", reliable, 1, 0, 5, 300, b"r" * 60)
        wire.inject("b", "a", first)
        opened = wire.now
        while wire.now < opened + timeout - 9_000_000:
            wire.run(until=wire.now + 9_000_000)
            wire.inject("b", "a", first)
        wire.run(until=opened + timeout)
        stats = wire.endpoints["b"].stats()
        assert stats[ENDPOINT]["reassemblies"] == 0 and stats["a"]["reassembly_expired"] == 1
        assert stats["a"]["duplicates"] >= 1


def test_a_member_is_never_evicted_and_always_finds_room():
    """One captured fragment replayed from 256 addresses used to fill max_peers and evict a
    genuine member. Replays make no peers now; and even strangers that complete handshakes
    from addresses of their own cannot take a member's place."""
    config = TransportConfig(max_peers=4)
    wire = Wire()
    b = wire.add("b", Endpoint(config, session=2))
    wire.add("m", Endpoint(config, session=3))
    b.set_members(["m", "n"])
    wire.send("m", "b", b"member")
    wire.run()
    for index in range(10):  # strangers come, while the member stays quiet
        name = "s%d" % index
        wire.add(name, Endpoint(config, session=100 + index))
        wire.send(name, "b", b"stranger")
        wire.run()
        wire.now += config.reliable_reassembly_timeout
    stats = b.stats()
    assert "m" in stats and stats[ENDPOINT]["peers"] <= config.max_peers
    strangers = [name for name in stats if name.startswith("s")]
    assert len(strangers) == config.max_peers - 2  # n's slot stays free for n
    wire.add("n", Endpoint(config, session=4))
    wire.send("n", "b", b"the other member")
    wire.send("m", "b", b"member again")
    wire.run()
    assert sorted(e.payload for e in wire.delivered["b"] if e.peer in ("m", "n")) == [
        b"member", b"member again", b"the other member"]


def test_strangers_cannot_lock_members_out_of_reassembly_memory():
    config = small_config(reassembly_memory=2400, peer_reassembly_memory=1200)
    wire = pair(config)
    wire.add("m", Endpoint(config, session=0xC5))
    wire.add("c", Endpoint(config, session=0xC6))
    b = wire.endpoints["b"]
    b.set_members(["m"])
    for name in ("a", "c", "m"):
        wire.connect(name, "b")
    for name in ("a", "c"):  # two strangers hold all of the memory with partial messages
        sender = wire.endpoints[name]
        for message_id in (1, 2):
            wire.inject("b", name, channel_data(sender, "b", True, message_id, 0, 4, 400, b"h" * 100))
    assert b._reassembly.memory == 4 * (400 + 4 * 48)
    wire.send("m", "b", b"m" * 600)
    wire.run()
    assert [e.payload for e in wire.delivered["b"] if e.peer == "m"] == [b"m" * 600]
    stats = b.stats()
    assert stats["a"]["reassembly_evicted"] + stats["c"]["reassembly_evicted"] >= 1
    assert stats["m"]["reassembly_full"] == 0


def line_events(work) -> int:
    """A deterministic measure of work: Python lines executed (never a wall-clock time)."""
    count = [0]

    def tracer(frame, event, arg):
        count[0] += event == "line"
        return tracer

    sys.settrace(tracer)
    try:
        work()
    finally:
        sys.settrace(None)
    return count[0]


def sparse_holder(fragments: int, buffers: int):
    """b holds ``buffers`` reliable messages of a, each of ``fragments`` one-byte
    fragments with every other one missing, and c has a channel to b too."""
    config = TransportConfig(peer_reassembly_memory=16 * 1024 * 1024)
    wire = pair(config)
    wire.add("c", Endpoint(config, session=0xC3))
    wire.connect("a", "b")
    wire.connect("c", "b")
    a, b = wire.endpoints["a"], wire.endpoints["b"]
    for message_id in range(1, buffers + 1):
        for index in range(0, fragments, 2):
            b.receive_datagram(channel_data(a, "b", True, message_id, index, fragments, fragments, b"h"), "a", 0)
    b.datagrams_to_send()
    return wire


def cost_of_one_duplicate(fragments: int, sender: str) -> int:
    wire = sparse_holder(fragments, buffers=2)
    b = wire.endpoints["b"]
    if sender == "a":  # a duplicate of one of the sparse messages themselves
        duplicate = channel_data(wire.endpoints["a"], "b", True, 1, 0, fragments, fragments, b"h")
    else:  # another peer's duplicate, while a's buffers are held
        c = wire.endpoints["c"]
        b.receive_datagram(channel_data(c, "b", True, 1, 0, 4, 40, b"c" * 10), "c", 0)
        duplicate = channel_data(c, "b", True, 1, 0, 4, 40, b"c" * 10)

    def once():
        b.receive_datagram(duplicate, sender, 1)
        b.datagrams_to_send()

    return line_events(once)


def test_what_a_duplicate_costs_does_not_grow_with_what_is_held():
    """With sparse 65,535-fragment buffers held, each duplicate used to cost O(fragments):
    the ACK it provokes sorted and listed every run. Now ACKs list runs kept in order and
    stop at what their datagrams carry, and nothing scans other peers' buffers."""
    for sender in ("a", "c"):
        small, large = cost_of_one_duplicate(4000, sender), cost_of_one_duplicate(32000, sender)
        assert large <= small * 1.1, (sender, small, large)

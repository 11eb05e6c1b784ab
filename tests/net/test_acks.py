"""ACKs state everything the receiver holds, and say so only when they do (issue D item 3)."""
from __future__ import annotations

import pytest

from appliance.net import wire as layout
from appliance.net.peer import MAX_ACK_PARTS
from appliance.net.wire import ACK, ACK_ENTRY, ACK_HEADER, DATA, FLAG_INCOMPLETE

from .fakewire import channel_data, pair, small_config


def sparse_transfer(fragments: int):
    """Every odd fragment of one message is lost once, so the receiver holds a comb of runs.
    Returns the config, the wire and the ACK datagrams of each of the receiver's flushes."""
    config = small_config()
    lost = set()

    def drop_odd_once(source, destination, datagram):
        if datagram[1] == DATA:
            index = int.from_bytes(datagram[16:18], "little")
            if index % 2 and index not in lost:
                lost.add(index)
                return True
        return False

    wire = pair(config)
    wire.connect("a", "b")
    b = wire.endpoints["b"]
    flushes = []
    take = b.datagrams_to_send

    def recorded():
        datagrams = take()
        flushes.append([d for d, _ in datagrams if d[1] == ACK])
        return datagrams

    b.datagrams_to_send = recorded
    wire.drop = drop_odd_once
    payload = bytes(config.fragment_payload(False) * fragments)
    wire.send("a", "b", payload)
    wire.run()
    assert [e.payload for e in wire.delivered["b"]] == [payload]
    return config, wire, [acks for acks in flushes if acks]


def entries_of(datagram):
    count = ACK_HEADER.unpack_from(datagram)[6]
    return list(ACK_ENTRY.iter_unpack(datagram[ACK_HEADER.size : ACK_HEADER.size + 8 * count]))


def test_at_a_small_mtu_an_ack_cut_to_fit_is_incomplete_and_held_fragments_are_not_resent():
    """At mtu 100 the runs of a sparse reassembly need several datagrams. Each part is marked
    INCOMPLETE (it used to claim completeness, so the sender took every fragment it left out
    for lost and resent fragments the receiver held)."""
    config, wire, flushes = sparse_transfer(40)
    limit = layout.max_ack_entries(config.mtu, False)
    assert any(len(acks) > 1 for acks in flushes)
    for acks in flushes:
        if len(acks) > 1:
            assert all(ack[2] & FLAG_INCOMPLETE for ack in acks)
        assert all(len(entries_of(ack)) <= limit for ack in acks)
    assert wire.endpoints["b"].stats()["a"]["duplicates"] == 0
    assert wire.endpoints["a"].stats()["b"]["retransmitted"] == 20  # exactly the lost ones


def test_one_flush_sends_at_most_the_parts_allowed_however_much_is_held():
    _, _, flushes = sparse_transfer(120)  # 60 runs: more than four parts carry at mtu 100
    assert max(len(acks) for acks in flushes) == MAX_ACK_PARTS
    for acks in flushes:
        if len(acks) == MAX_ACK_PARTS:
            assert all(ack[2] & FLAG_INCOMPLETE for ack in acks)


@pytest.mark.parametrize("provoked_by", ["a fragment of the dropped message", "the drop itself"])
def test_an_ack_with_no_data_to_echo_is_no_round_trip_sample(provoked_by):
    """Found by a review of protocol.md: an ACK sent when the receiver had noted no DATA to
    echo (one answering a fragment of a message it dropped, or the one announcing the drop)
    echoed 0, and its sender took the age of tick 0, the whole clock, for a round trip: such
    an ACK that acknowledged fragments whose first ACK was lost pushed SRTT to seconds."""
    config = small_config()
    wire = pair(config)
    wire.connect("a", "b")
    a = wire.endpoints["a"]
    doomed = [channel_data(a, "b", True, 900, index, 4, 200, b"x" * 50, timestamp=wire.now) for index in (0, 1)]
    wire.inject("b", "a", doomed[0])  # held and acknowledged: b will drop it when it expires
    expiry = wire.now + config.reliable_reassembly_timeout
    if provoked_by == "the drop itself":
        wire.run(until=expiry - 5_000)  # the next message is in progress when the drop is announced
    else:
        wire.run(until=expiry + 1)
    acks_pass = {"from": expiry if provoked_by == "the drop itself" else None}

    def first_fragment_only_and_no_acks(source, destination, datagram):
        if source == "b":  # b's ACKs of the first fragment are lost...
            return acks_pass["from"] is None or wire.now < acks_pass["from"]
        return datagram[1] == DATA and int.from_bytes(datagram[16:18], "little") > 0

    wire.drop = first_fragment_only_and_no_acks
    wire.send("a", "b", b"m" * 200)  # three fragments: b holds the first
    wire.run(until=wire.now + 1_000)
    if provoked_by == "a fragment of the dropped message":
        acks_pass["from"] = wire.now  # ...but the one answering the dropped message's fragment
        wire.inject("b", "a", channel_data(a, "b", True, 900, 1, 4, 200, b"x" * 50, timestamp=wire.now))
    else:
        wire.run(until=expiry + 1_000)
    assert a.stats()["b"]["acked"] == 0 and a.stats()["b"]["in_flight"] == 1
    wire.run(until=wire.now + 1_000)
    assert 0 < a.stats()["b"]["rtt_us"] < 10 * wire.latency * 2

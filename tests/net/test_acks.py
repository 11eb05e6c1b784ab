"""ACKs state everything the receiver holds, and say so only when they do (issue D item 3)."""
from __future__ import annotations

from appliance.net import wire as layout
from appliance.net.peer import MAX_ACK_PARTS
from appliance.net.wire import ACK, ACK_ENTRY, ACK_HEADER, DATA, FLAG_INCOMPLETE

from .fakewire import pair, small_config


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

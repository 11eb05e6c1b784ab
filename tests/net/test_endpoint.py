"""The endpoint's protocol behaviour, driven through an in-memory link with a fake clock."""
from __future__ import annotations

import pytest

from appliance.net import (
    ENDPOINT,
    Endpoint,
    MessageTooLarge,
    SendRefused,
    TooManyInFlight,
    TooManyPeers,
    TransportConfig,
    identity_digest,
)
from appliance.net.wire import ACK, CHALLENGE, CONFIRM, DATA, HELLO

from .fakewire import Wire, pair, small_config

KEY = b"cluster key for the tests, 32 B!"


def kinds(wire):
    return [(source, datagram[1]) for source, _, datagram in wire.carried]


def payloads(wire, name):
    return [event.payload for event in wire.delivered[name]]


@pytest.mark.parametrize("key", [None, KEY])
def test_the_first_message_to_a_peer_waits_one_round_trip_for_the_channel(config, key):
    wire = pair(config, key, latency=100)
    message_id = wire.send("a", "b", b"hello")
    wire.run()
    assert payloads(wire, "b") == [b"hello"] and message_id == 1
    # The DATA goes with the CONFIRM; the first ACK is the CONFIRM's (an empty one).
    assert kinds(wire) == [("a", HELLO), ("b", CHALLENGE), ("a", CONFIRM), ("a", DATA), ("b", ACK), ("b", ACK)]
    assert wire.delivered["b"][0].reliable
    stats = wire.endpoints["a"].stats()["b"]
    assert (stats["hellos_sent"], stats["channels_opened"], stats["acked"]) == (1, 1, 1)
    assert wire.endpoints["b"].stats()["a"]["channels_opened"] == 1
    assert stats["rtt_us"] == 200  # the handshake's round trip is a sample


@pytest.mark.parametrize("key", [None, KEY])
def test_small_reliable_message_costs_one_data_and_one_ack(config, key):
    wire = pair(config, key)
    wire.connect("a", "b")
    message_id = wire.send("a", "b", b"hello")
    wire.run()
    assert message_id == 1
    assert payloads(wire, "b") == [b"hello"]
    assert kinds(wire) == [("a", DATA), ("b", ACK)]
    assert wire.endpoints["a"].in_flight("b") == 0
    assert wire.endpoints["a"].get_timer() is None
    assert wire.endpoints["a"].stats()["b"]["acked"] == 1


def test_message_ids_are_monotonic_per_peer_and_class_and_delivered_says_which(config):
    wire = pair(config)
    wire.add("c", Endpoint(config, session=0xC3))
    ids = [wire.send("a", "b", b"x") for _ in range(3)]
    assert ids == [1, 2, 3]
    assert wire.send("a", "c", b"x") == 1
    assert [wire.send("a", "b", b"x", reliable=False) for _ in range(2)] == [1, 2]
    wire.run()
    assert sorted((e.message_id, e.reliable) for e in wire.delivered["b"]) == [
        (1, False), (1, True), (2, False), (2, True), (3, True)]


@pytest.mark.parametrize("size", [0, 1, 67, 68, 69, 1000, 20000])
def test_messages_of_any_size_arrive_whole(small_mtu, size):
    wire = pair(small_mtu)
    payload = bytes(i % 251 for i in range(size))
    wire.send("a", "b", payload)
    wire.run()
    assert payloads(wire, "b") == [payload]
    assert wire.endpoints["b"].stats()[ENDPOINT]["reassemblies"] == 0


def test_first_fragment_lost_needs_no_handshake(small_mtu):
    """The original runtime deadlocked when its REQ/ACK_START was lost; here any fragment opens."""
    dropped = []

    def drop_first_data(source, destination, datagram):
        if datagram[1] == DATA and not dropped:
            dropped.append(datagram)
            return True
        return False

    wire = pair(small_mtu, drop=drop_first_data)
    wire.send("a", "b", b"z" * 500)
    wire.run()
    assert payloads(wire, "b") == [b"z" * 500]
    assert wire.endpoints["a"].stats()["b"]["retransmitted"] >= 1
    assert wire.failed["a"] == []


def test_lost_ack_means_retransmission_and_the_duplicate_is_acknowledged_not_delivered(config):
    acks = []

    def drop_first_ack(source, destination, datagram):
        if datagram[1] == ACK and not acks:
            acks.append(datagram)
            return True
        return False

    wire = pair(config)
    wire.connect("a", "b")
    wire.drop = drop_first_ack
    wire.send("a", "b", b"once")
    wire.run()
    assert payloads(wire, "b") == [b"once"]
    b_stats = wire.endpoints["b"].stats()["a"]
    assert b_stats["duplicates"] == 1
    assert b_stats["acks_sent"] == 1 + 2  # the channel's confirmation, then the message's twice
    assert wire.endpoints["a"].in_flight("b") == 0


def test_a_probe_recovers_the_tail_long_before_the_retransmission_timeout(small_mtu):
    """A stream whose last fragments are lost recovers in a few round trips, not an RTO."""
    wire = pair(small_mtu, latency=100)
    wire.connect("a", "b")
    wire.send("a", "b", b"warm-up")
    wire.run()
    lost = set()

    def drop_tail(source, destination, datagram):
        index = datagram[16]
        if datagram[1] == DATA and index in (7, 8) and index not in lost:
            lost.add(index)
            return True
        return False

    wire.drop = drop_tail
    start = wire.now
    wire.send("a", "b", b"t" * 600)  # nine fragments; the last two are lost once
    wire.run()
    assert payloads(wire, "b")[-1] == b"t" * 600
    assert wire.endpoints["a"].stats()["b"]["probes"] >= 1
    assert wire.now - start < small_mtu.rto_min


def test_losses_in_a_stream_are_detected_by_later_acks():
    """With a small window the fragments go out over several round trips; the ACK of a
    later one shows the fifth lost, without waiting for a probe or the timeout."""
    count = []

    def drop_fifth_data(source, destination, datagram):
        if datagram[1] == DATA:
            count.append(1)
            return len(count) == 5
        return False

    wire = pair(small_config(window=4), drop=drop_fifth_data, latency=1000)
    wire.connect("a", "b")
    wire.send("a", "b", b"s" * 2000)
    wire.run()
    stats = wire.endpoints["a"].stats()["b"]
    assert payloads(wire, "b") == [b"s" * 2000]
    assert (stats["fast_retransmits"], stats["retransmitted"], stats["probes"]) == (1, 1, 0)


def test_give_up_after_the_retry_limit_reports_failure_and_frees_state():
    config = TransportConfig(retry_limit=3)
    wire = pair(config)
    wire.connect("a", "b")
    wire.drop = lambda source, destination, datagram: destination == "b"
    message_id = wire.send("a", "b", b"into the void")
    wire.run()
    a = wire.endpoints["a"]
    [failure] = wire.failed["a"]
    assert (failure.peer, failure.message_id) == ("b", message_id)
    assert "3 retransmissions" in failure.reason
    assert a.in_flight("b") == 0 and a.get_timer() is None
    stats = a.stats()["b"]
    assert (stats["failed"], stats["retransmitted"]) == (1, 3)
    assert stats["rto_us"] > config.rto_min  # backed off


def test_a_peer_that_never_answers_the_handshake_fails_what_waits_for_it():
    config = TransportConfig(retry_limit=3)
    wire = pair(config, drop=lambda source, destination, datagram: destination == "b")
    reliable = [wire.send("a", "b", b"into the void") for _ in range(2)]
    wire.send("a", "b", b"best effort", reliable=False)
    wire.run()
    a = wire.endpoints["a"]
    assert sorted(f.message_id for f in wire.failed["a"]) == reliable
    assert "handshake after 3 retransmissions" in wire.failed["a"][0].reason
    stats = a.stats()["b"]
    assert (stats["hellos_sent"], stats["failed"], stats["best_effort_dropped"]) == (4, 2, 1)
    assert a.in_flight("b") == 0 and a.get_timer() is None


def test_retransmission_timeouts_back_off_up_to_the_ceiling():
    config = TransportConfig(retry_limit=12, rto_initial=100_000, rto_max=400_000)
    wire = pair(config, drop=lambda source, destination, datagram: destination == "b")
    wire.send("a", "b", b"x")  # the HELLO backs off like a fragment
    sends = []
    while not wire.failed["a"]:
        sends.append(wire.now)
        wire.run(until=wire.endpoints["a"].get_timer())
    gaps = [later - earlier for earlier, later in zip(sends, sends[1:])]
    assert gaps[:3] == [100_000, 150_000, 225_000]
    assert max(gaps) == 400_000


def test_best_effort_is_neither_acknowledged_nor_retransmitted(small_mtu):
    wire = pair(small_mtu)
    wire.connect("a", "b")
    wire.send("a", "b", b"q" * 300, reliable=False)
    wire.run()
    assert payloads(wire, "b") == [b"q" * 300]
    assert {kind for _, kind in kinds(wire)} == {DATA}
    assert wire.endpoints["a"].get_timer() is None

    lossy = pair(small_mtu)
    lossy.connect("a", "b")
    lossy.drop = lambda source, destination, datagram: True
    lossy.send("a", "b", b"gone", reliable=False)
    lossy.run()
    assert lossy.endpoints["a"].stats()["b"]["retransmitted"] == 0
    assert lossy.failed["a"] == []


def test_duplicated_datagrams_deliver_once(small_mtu):
    wire = pair(small_mtu)
    for reliable in (True, False):
        wire.send("a", "b", b"d" * 200, reliable=reliable)
    for source, destination, datagram in list(wire.carried):
        wire.inject(destination, source, datagram)
    wire.run()
    for source, destination, datagram in list(wire.carried):
        wire.inject(destination, source, datagram)
    wire.run()
    assert payloads(wire, "b") == [b"d" * 200, b"d" * 200]
    assert wire.endpoints["b"].stats()["a"]["duplicates"] > 0


def test_refusals_are_value_errors_and_counted():
    config = TransportConfig(max_message_size=1000, max_in_flight=2, max_queued=1, replay_window=8, max_peers=1)
    a = Endpoint(config, session=1)
    with pytest.raises(MessageTooLarge):
        a.send("b", bytes(1001), True, 0)
    a.send("b", b"1", True, 0)
    a.send("b", b"2", True, 0)
    a.send("b", b"3 waits for room", True, 0)  # (all three wait for the channel)
    assert not a.can_send("b") and a.in_flight("b") == 3
    with pytest.raises(TooManyInFlight):
        a.send("b", b"4", True, 0)
    a.send("b", b"best effort is not limited", False, 0)
    with pytest.raises(TooManyPeers):
        a.send("c", b"x", True, 0)
    for error in (MessageTooLarge, TooManyInFlight, TooManyPeers):
        assert issubclass(error, SendRefused) and issubclass(error, ValueError)
    stats = a.stats()
    assert stats["b"]["too_large"] == 0 and stats[ENDPOINT]["too_large"] == 1
    assert stats["b"]["in_flight_full"] == 1 and stats["b"]["queued"] == 3
    assert stats[ENDPOINT]["peers_full"] == 1


def test_reliable_messages_beyond_max_in_flight_wait_and_then_all_arrive():
    wire = pair(TransportConfig(max_in_flight=4, replay_window=8), latency=500)
    wire.connect("a", "b")
    for index in range(40):
        wire.send("a", "b", b"control %d" % index)
    assert len(wire.carried) == 4  # only max_in_flight went on the wire at once
    wire.run()
    assert sorted(payloads(wire, "b")) == sorted(b"control %d" % i for i in range(40))
    assert wire.endpoints["a"].in_flight("b") == 0 and wire.endpoints["a"].stats()["b"]["queued"] == 36


def test_when_a_peer_goes_silent_its_waiting_messages_fail_with_the_stuck_one():
    config = TransportConfig(max_in_flight=1, replay_window=8, retry_limit=2)
    wire = pair(config, drop=lambda source, destination, datagram: destination == "b")
    for index in range(5):
        wire.send("a", "b", b"%d" % index)
    wire.run()
    assert sorted(e.message_id for e in wire.failed["a"]) == [1, 2, 3, 4, 5]
    assert wire.endpoints["a"].in_flight("b") == 0


def test_a_stuck_message_holds_back_new_ones_before_the_replay_window_would_drop_it():
    config = TransportConfig(max_in_flight=4, replay_window=8)
    held = []

    def hold_message_one(source, destination, datagram):
        if datagram[1] == DATA and datagram[12:16] == b"\x01\x00\x00\x00":
            held.append(datagram)
            return True
        return False

    wire = pair(config, drop=hold_message_one)
    wire.connect("a", "b")
    wire.send("a", "b", b"first")
    for index in range(6):
        wire.send("a", "b", b"next %d" % index)
        wire.run(until=wire.now + 1000)
    assert wire.endpoints["a"].can_send("b")
    wire.send("a", "b", b"eighth")
    wire.send("a", "b", b"ninth")
    wire.run(until=wire.now + 1000)
    assert b"eighth" in payloads(wire, "b")
    assert b"ninth" not in payloads(wire, "b")  # id 9 waits: it would push id 1 out of b's window
    assert wire.endpoints["a"].stats()["b"]["queued"] == 1
    wire.drop = None
    wire.run()
    assert b"first" in payloads(wire, "b") and b"ninth" in payloads(wire, "b")
    assert wire.endpoints["a"].can_send("b")


def test_rtt_estimate_follows_the_link():
    wire = pair(TransportConfig(), latency=2000)
    wire.connect("a", "b")
    for _ in range(20):
        wire.send("a", "b", b"ping")
        wire.run()
    stats = wire.endpoints["a"].stats()["b"]
    assert stats["rtt_us"] == 4000
    assert stats["rto_us"] == TransportConfig().rto_min


def test_restarted_peer_is_recognised_and_its_old_session_refused(config):
    wire = pair(config)
    wire.send("b", "a", b"before")
    wire.run()
    old_boot = [datagram for source, _, datagram in wire.carried if source == "b"]
    wire.reboot("b", session=0xB3)
    wire.send("b", "a", b"after")
    wire.run()
    assert payloads(wire, "a") == [b"before", b"after"]
    assert [e.message_id for e in wire.delivered["a"]] == [1, 1]
    for datagram in old_boot:  # HELLO, CONFIRM and DATA of the earlier boot
        wire.inject("a", "b", datagram)
    stats = wire.endpoints["a"].stats()["b"]
    assert stats["restarts"] == 1 and stats["stale_session"] == 1 and stats["unknown_channel"] == 1
    assert stats["session"] == 0xB3
    assert payloads(wire, "a") == [b"before", b"after"]


def test_messages_in_flight_when_the_receiver_restarts_fail_and_later_ones_go_to_the_new_boot(small_mtu):
    """What went out to the receiver's earlier boot may or may not have been delivered
    there: it fails, honestly. What is sent from then on reaches the new boot."""
    wire = pair(small_mtu)
    wire.connect("a", "b")
    wire.drop = lambda source, destination, datagram: source == "b"
    wire.send("a", "b", b"m" * 400)
    wire.run(until=wire.now + 500)
    wire.reboot("b", session=0xB9)
    wire.drop = None
    wire.run()  # a retransmission reaches the new boot, whose CHALLENGE shows the restart
    wire.send("a", "b", b"n" * 400)
    wire.run()
    assert [f.message_id for f in wire.failed["a"]] == [1]
    assert "restarted" in wire.failed["a"][0].reason
    # m reached the earlier boot (its ACKs were lost): failed means "not known delivered".
    assert payloads(wire, "b") == [b"m" * 400, b"n" * 400]
    a = wire.endpoints["a"]
    assert a.in_flight("b") == 0 and a.stats()["b"]["session"] == 0xB9


def test_authenticated_endpoints_refuse_unauthenticated_and_foreign_traffic(config):
    wire = pair(config, key=KEY)
    wire.add("plain", Endpoint(config, session=0xD4))
    wire.add("foreign", Endpoint(config, session=0xE5, key=b"another cluster's key, 32 bytes!"))
    wire.send("plain", "a", b"let me in")
    wire.send("foreign", "a", b"let me in too")
    wire.send("a", "plain", b"secret")
    wire.run(until=1_000_000)
    assert payloads(wire, "a") == [] and payloads(wire, "plain") == []
    stats = wire.endpoints["a"].stats()
    assert stats["plain"]["bad_auth"] >= 1  # a knows plain: it sent to it
    assert stats[ENDPOINT]["bad_auth"] >= 1  # foreign never became a peer
    assert "foreign" not in stats
    assert wire.endpoints["plain"].stats()["a"]["bad_auth"] >= 1
    assert wire.endpoints["a"].authenticated and not wire.endpoints["plain"].authenticated


def test_replayed_datagrams_are_not_delivered_again(config):
    wire = pair(config, key=KEY)
    wire.connect("a", "b")
    wire.send("a", "b", b"pay 10")
    wire.run()
    captured = wire.carried[0][2]
    for _ in range(3):
        wire.inject("b", "a", captured)
    assert payloads(wire, "b") == [b"pay 10"]
    assert wire.endpoints["b"].stats()["a"]["duplicates"] == 3


def test_ids_older_than_the_replay_window_are_refused():
    config = TransportConfig(replay_window=8, max_in_flight=4)
    wire = pair(config)
    wire.connect("a", "b")
    wire.send("a", "b", b"old", reliable=False)
    old = wire.carried[-1][2]
    for index in range(10):
        wire.send("a", "b", b"new %d" % index, reliable=False)
    wire.run()
    wire.inject("b", "a", old)
    assert wire.endpoints["b"].stats()["a"]["replayed"] == 1
    assert payloads(wire, "b").count(b"old") == 1


def test_unanswered_reassembly_expires_and_frees_its_memory(small_mtu):
    wire = pair(small_mtu)
    wire.connect("a", "b")
    start = wire.now
    wire.endpoints["a"].send("b", b"r" * 300, False, start)
    first = wire.endpoints["a"].datagrams_to_send()[0][0]
    wire.inject("b", "a", first)
    b = wire.endpoints["b"]
    assert b.stats()[ENDPOINT]["reassemblies"] == 1
    assert b.get_timer() == start + small_mtu.reassembly_timeout
    wire.run()
    assert wire.now == start + small_mtu.reassembly_timeout
    stats = b.stats()
    assert stats[ENDPOINT]["reassemblies"] == 0 and stats[ENDPOINT]["reassembly_memory"] == 0
    assert stats["a"]["reassembly_expired"] == 1
    assert b.get_timer() is None


def test_reassembly_limits_evict_best_effort_and_hold_off_reliable():
    config = small_config(max_reassemblies=2)
    wire = pair(config)
    wire.connect("a", "b")
    a = wire.endpoints["a"]

    def first_fragment(payload, reliable):
        a.send("b", payload, reliable, wire.now)
        return [d for d, _ in a.datagrams_to_send()][0]

    wire.inject("b", "a", first_fragment(b"1" * 200, False))
    wire.inject("b", "a", first_fragment(b"2" * 200, True))
    wire.inject("b", "a", first_fragment(b"3" * 200, True))  # evicts the best-effort one
    wire.inject("b", "a", first_fragment(b"4" * 200, True))  # no room: refused, unacknowledged
    stats = wire.endpoints["b"].stats()["a"]
    assert stats["reassembly_evicted"] == 1 and stats["peer_reassembly_full"] == 1
    wire.run()  # retransmissions complete all three reliable messages
    assert sorted(payloads(wire, "b")) == [b"2" * 200, b"3" * 200, b"4" * 200]


def test_idle_peers_are_evicted_when_the_table_is_full_once_they_fell_silent_long_enough():
    """Only a peer that cannot still be retransmitting is evicted: forgetting the ids
    delivered from it is harmless then, and its counters go to the endpoint-wide section."""
    config = TransportConfig(max_peers=2)
    wire = pair(config)
    for name in ("c", "d"):
        wire.add(name, Endpoint(config, session=ord(name)))
    for name in ("b", "c"):
        wire.send(name, "a", b"hi from " + name.encode())
        wire.run()
    wire.send("d", "a", b"turned away")
    wire.run()  # b and c spoke too recently: d finds no room, and gives up
    stats = wire.endpoints["a"].stats()
    assert set(stats) == {"b", "c", ENDPOINT} and stats[ENDPOINT]["peers_full"] >= 1
    assert [f.message_id for f in wire.failed["d"]] == [1]
    wire.run(until=wire.now + config.reliable_reassembly_timeout)
    wire.send("d", "a", b"hi from d")
    wire.run()
    assert payloads(wire, "a")[-1] == b"hi from d"
    stats = wire.endpoints["a"].stats()
    assert set(stats) == {"c", "d", ENDPOINT}
    assert stats[ENDPOINT]["peers_evicted"] == 1 and stats[ENDPOINT]["delivered"] == 1


def test_stats_have_one_schema_per_peer(config):
    wire = pair(config)
    wire.send("a", "b", b"x")
    wire.run()
    stats = wire.endpoints["a"].stats()
    for name in ("sent", "delivered", "retransmitted", "duplicates", "bad_crc", "bad_auth",
                 "failed", "rtt_us"):
        assert name in stats["b"]
    assert {"peers", "reassembly_memory", "peers_full"} <= set(stats[ENDPOINT])
    assert set(stats["b"]) == set(wire.endpoints["b"].stats()["a"])


def test_session_must_be_a_nonzero_64_bit_int(config):
    for session in (0, -1, 1 << 64, "1", 1.0):
        with pytest.raises(ValueError):
            Endpoint(config, session=session)  # type: ignore[arg-type]


def test_a_handshake_whose_confirms_are_lost_until_the_cookie_ages_starts_again(config):
    """Found by the 20 %-loss benchmark: CONFIRMs retransmitted with an expired cookie were
    refused for ever. Past half the cookie's lifetime, a fresh HELLO gets a fresh cookie."""
    wire = pair(config)
    wire.drop = lambda source, destination, datagram: datagram[1] == CONFIRM and wire.now < 1_500_000
    a = wire.endpoints["a"]
    a.connect("b", wire.now)
    wire.flush("a")
    wire.run()
    assert a.connected("b") and wire.failed["a"] == []
    a_stats, b_stats = a.stats()["b"], wire.endpoints["b"].stats()["a"]
    assert a_stats["hellos_sent"] >= 2 and b_stats["bad_cookie"] == 0
    wire.send("a", "b", b"through at last")
    wire.run()
    assert payloads(wire, "b") == [b"through at last"]


@pytest.mark.parametrize("key", [None, KEY])
def test_each_end_learns_the_identity_the_other_proved(config, key):
    wire = Wire()
    wire.add("a", Endpoint(config, session=0xA1, key=key, identity=b"camera-1"))
    wire.add("b", Endpoint(config, session=0xB2, key=key, identity=b"runtime-manager"))
    wire.send("a", "b", b"hello")
    wire.run()
    assert wire.endpoints["b"].peer_identity("a") == identity_digest(b"camera-1")
    assert wire.endpoints["a"].peer_identity("b") == identity_digest(b"runtime-manager")
    assert wire.endpoints["a"].peer_identity("nobody") is None
    with pytest.raises(TypeError):
        Endpoint(config, session=1, identity="not bytes")  # type: ignore[arg-type]


def test_a_handshake_that_replaces_an_acknowledged_channel_gets_its_own_resends(config):
    """After the peer restarts, the CHALLENGE that replaces the channel starts a handshake
    of its own: its resends are counted from 0, not on from the first handshake's."""
    from dataclasses import replace

    config = replace(config, retry_limit=4)
    hellos_lost = [2]

    def drop(source, destination, datagram):
        if source == "a" and datagram[1] == HELLO and hellos_lost[0]:
            hellos_lost[0] -= 1
            return True  # the first handshake needs two resends
        return source == "a" and datagram[1] == CONFIRM and restarted[0]

    restarted = [False]
    wire = pair(config)
    wire.drop = drop
    wire.send("a", "b", b"first")
    wire.run()
    assert payloads(wire, "b") == [b"first"]
    wire.reboot("b", session=0xB9)
    restarted[0] = True
    before = len(wire.carried)
    wire.send("a", "b", b"second")
    wire.run()
    handshake = [d for source, _, d in wire.carried[before:] if source == "a" and d[1] in (HELLO, CONFIRM)]
    assert [f.message_id for f in wire.failed["a"]] == [2]
    assert len(handshake) == 1 + config.retry_limit  # the first CONFIRM, then every resend it allows

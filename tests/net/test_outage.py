"""Long silences and outages: nothing raises, and no reliable message ends acknowledged but lost.

Issue D items 1, 2 and the give-up time of item 9. Everything runs on the
fake clock of tests/net/fakewire.py, so outages of minutes take no time.
"""
from __future__ import annotations

import os

import pytest

from appliance.net import ENDPOINT, Endpoint, TransportConfig
from appliance.net.rtt import RttEstimator
from appliance.net.wire import ACK, DATA

from .fakewire import channel_data, pair, small_config


def test_the_backoff_never_overflows_however_many_timeouts_expire():
    rtt = RttEstimator(TransportConfig())
    for _ in range(5000):  # 1.5**k overflowed a float near k = 1750
        rtt.back_off()
    assert rtt.rto == TransportConfig().rto_max


def test_a_peer_silent_for_thousands_of_timeouts_never_makes_the_endpoint_raise():
    config = TransportConfig(rto_min=1000, rto_initial=1000, rto_max=2000, retry_limit=3)
    wire = pair(config)
    wire.send("a", "b", b"hello")
    wire.run()
    wire.drop = lambda source, destination, datagram: True
    a = wire.endpoints["a"]
    expiries = 0
    while expiries < 2500:
        if a.in_flight("b") < 2:
            wire.send("a", "b", b"into the silence")
        wire.run(until=a.get_timer())
        expiries += 1
    stats = a.stats()["b"]
    assert stats["failed"] > 500 and stats["rto_us"] == config.rto_max
    assert stats["sent"] == stats["acked"] + stats["failed"] + a.in_flight("b")


def outage_run(outage: int, key=None, size: int = 2000):
    """One multi-fragment reliable message; the link goes down in both directions for
    ``outage`` µs right after the receiver's first ACK (fragments acknowledged, more to come)."""
    config = small_config(window=4)
    state = {"start": None}
    wire = pair(config, key=key)
    wire.connect("a", "b")

    def drop(source, destination, datagram):
        if state["start"] is None:
            if source == "b" and datagram[1] == ACK:
                state["start"] = wire.now
            return False
        return state["start"] <= wire.now < state["start"] + outage

    wire.drop = drop
    payload = bytes(range(200)) * (size // 200)
    wire.send("a", "b", payload)
    wire.run()
    return wire, payload


GIVE_UP = small_config(window=4).give_up_bounds()
OUTAGES = [0, 1_000_000, 5_000_000, 9_000_000, 11_000_000, 12_000_000, 13_000_000, 15_000_000,
           GIVE_UP[1] - 1_000_000, GIVE_UP[1] + 1_000_000, 40_000_000]


@pytest.mark.parametrize("outage", OUTAGES)
@pytest.mark.parametrize("key", [None, b"outage test cluster key 32 bytes"])
def test_every_reliable_message_ends_delivered_once_or_failed_whatever_the_outage(outage, key):
    """It used to be counted acknowledged and never delivered for outages between the
    reassembly timeout (10 s) and the give-up time: the receiver dropped the fragments it
    had acknowledged and acknowledged the rest into a new buffer."""
    wire, payload = outage_run(outage, key)
    a_stats = wire.endpoints["a"].stats()["b"]
    delivered = [e for e in wire.delivered["b"] if e.payload == payload]
    assert a_stats["acked"] + a_stats["failed"] == 1 and wire.endpoints["a"].in_flight("b") == 0
    if a_stats["acked"]:
        assert len(delivered) == 1
    else:
        assert len(delivered) <= 1
    if outage < GIVE_UP[0]:  # shorter than any give-up: it must get through
        assert a_stats["acked"] == 1
    assert wire.endpoints["b"].stats()[ENDPOINT]["reassemblies"] == 0


def test_a_reliable_reassembly_outlives_its_senders_retries():
    config = TransportConfig()
    assert config.reliable_reassembly_timeout > config.give_up_bounds()[1]
    assert config.reliable_reassembly_timeout >= config.reassembly_timeout


def test_a_dropped_reliable_reassembly_is_announced_and_fails_at_the_sender():
    """Signalling the discard: when a reliable buffer with acknowledged fragments goes while
    its sender still works on it (evicted here, to make room for a member's message), the
    receiver refuses its later fragments and tells the sender, which reports it failed."""
    config = small_config(window=2, reassembly_memory=1500)
    wire = pair(config)
    wire.add("m", Endpoint(config, session=0xC5))
    wire.endpoints["b"].set_members(["m"])
    wire.connect("a", "b")
    wire.connect("m", "b")
    held = {"on": False}

    def hold_after_the_first_ack(source, destination, datagram):
        if source == "b" and destination == "a" and datagram[1] == ACK:
            held["on"] = True  # some fragments arrived and were acknowledged
        return held["on"] and source == "a"

    wire.drop = hold_after_the_first_ack
    wire.send("a", "b", b"s" * 600)  # a stranger's message: 600 + 48 * 9 bytes reserved
    wire.run(until=wire.now + 2000)
    b = wire.endpoints["b"]
    assert b.stats()[ENDPOINT]["reassemblies"] == 1
    wire.drop = None
    wire.send("m", "b", b"m" * 600)  # the member's does not fit beside it
    wire.run()
    assert [e.payload for e in wire.delivered["b"]] == [b"m" * 600]
    [failure] = wire.failed["a"]
    assert "dropped" in failure.reason
    stats = b.stats()["a"]
    assert stats["reassembly_evicted"] == 1 and wire.endpoints["a"].stats()["b"]["failed"] == 1


def test_a_dropped_message_is_never_reassembled_again_from_its_later_fragments():
    config = small_config()
    wire = pair(config)
    wire.connect("a", "b")
    a, b = wire.endpoints["a"], wire.endpoints["b"]
    fragments = [channel_data(a, "b", True, 5, index, 4, 200, b"x" * 50) for index in range(4)]
    wire.inject("b", "a", fragments[0])  # held and acknowledged
    wire.run(until=wire.now + config.reliable_reassembly_timeout + 1)
    for datagram in fragments[1:]:
        wire.inject("b", "a", datagram)
    assert wire.delivered["b"] == []
    assert b.stats()["a"]["dropped_message"] == 3 and b.stats()[ENDPOINT]["reassemblies"] == 0


@pytest.mark.parametrize("config", [TransportConfig(), TransportConfig(rto_max=400_000, retry_limit=8),
                                    small_config(rto_min=10_000, rto_initial=50_000)])
def test_a_silent_peer_is_given_up_within_the_computed_bounds(config):
    """The give-up time the docs state is computed from the configuration, and every way a
    peer can fall silent (fresh channel, RTT samples at the floor, backed off) lands in it."""
    shortest, longest = config.give_up_bounds()
    assert shortest <= longest == (config.retry_limit + 1) * config.rto_max
    measured = []
    for warm_ups, gap in ((0, 0), (30, 0), (30, longest)):
        wire = pair(config, latency=100)
        wire.connect("a", "b")
        for _ in range(warm_ups):
            wire.send("a", "b", b"warm-up")
            wire.run()
        wire.drop = lambda source, destination, datagram: True
        if gap:  # a first message fails, so the timeout is backed off for the next
            wire.send("a", "b", b"backs off")
            wire.run()
        wire.failed["a"].clear()
        start = wire.now
        wire.send("a", "b", b"x" * 300)
        wire.run()
        assert len(wire.failed["a"]) == 1
        measured.append(wire.now - start)
    assert all(shortest <= time <= longest for time in measured), (shortest, measured, longest)


def test_the_documented_give_up_times_are_the_computed_ones():
    with open(os.path.join(os.path.dirname(__file__), "..", "..", "docs", "protocol.md")) as doc:
        text = doc.read()
    shortest, longest = TransportConfig().give_up_bounds()
    assert "%.1f s" % (shortest / 1e6) in text and "%.0f s" % (longest / 1e6) in text


def test_an_endpoint_told_nothing_for_a_day_still_serves():
    config = TransportConfig()
    wire = pair(config)
    wire.send("a", "b", b"before")
    wire.run()
    wire.now += 24 * 3600 * 1_000_000
    wire.send("a", "b", b"after a day")
    wire.run()
    assert [e.payload for e in wire.delivered["b"]] == [b"before", b"after a day"]
    assert [datagram[1] for _, _, datagram in wire.carried[-2:]] == [DATA, ACK]  # same channel

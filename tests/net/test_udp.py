"""The socket shell on real loopback sockets: IPv4, IPv6, dual stack, and through the relay."""
from __future__ import annotations

import logging
import random
import selectors
import socket

import pytest

from appliance.net import Delivered, Endpoint, TransportConfig
from appliance.net.address import BadAddress, canonical_address, format_address, parse_address
from appliance.net.impairment import Impairment
from appliance.net.relay import LossyRelay
from appliance.net.udp import UdpShell, now_us, run_until

CONFIG = TransportConfig()
KEY = b"loopback test cluster key, 32 B."
#: A safety net against a hung test, not a performance claim.
PATIENCE = 30_000_000


def ipv6_loopback_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


needs_ipv6 = pytest.mark.skipif(not ipv6_loopback_available(), reason="no IPv6 loopback")


def shell(bind: str = "127.0.0.1:0", session: int = 1, key=KEY, **options) -> UdpShell:
    return UdpShell(Endpoint(CONFIG, session=session, key=key), bind, **options)


def delivered(shell_: UdpShell, sink: list) -> list:
    sink.extend(e for e in shell_.events() if isinstance(e, Delivered))
    return sink


def exchange(a: UdpShell, b: UdpShell, a_to_b: str) -> None:
    """a sends to b (at ``a_to_b``); b answers whoever wrote to it."""
    got_b, got_a = [], []
    a.send(a_to_b, b"ping" * 1000, True)
    a.send(a_to_b, b"tick", False)
    assert run_until([a, b], lambda: len(delivered(b, got_b)) == 2, now_us() + PATIENCE)
    assert sorted(e.payload for e in got_b) == [b"ping" * 1000, b"tick"]
    b.send(got_b[0].peer, b"pong", True)
    assert run_until([a, b], lambda: len(delivered(a, got_a)) == 1, now_us() + PATIENCE)
    assert got_a[0].payload == b"pong" and got_a[0].peer == a_to_b


def test_addresses_have_one_spelling():
    assert parse_address("127.0.0.1:8225") == ("127.0.0.1", 8225)
    assert parse_address("[::1]:8225") == ("::1", 8225)
    assert canonical_address("[0:0:0::1]:5") == "[::1]:5"
    assert canonical_address("[::ffff:10.0.0.1]:5") == "10.0.0.1:5"
    assert format_address("::ffff:10.0.0.1", 5) == "10.0.0.1:5"
    assert format_address("fe80::1%eth0", 5) == "[fe80::1%eth0]:5"
    for bad in ("::1:80", "localhost:80", "1.2.3.4", "1.2.3.4:65536", "[::1]80", "", "1.2.3.4:-1"):
        with pytest.raises(BadAddress):
            parse_address(bad)


def test_loopback_ipv4():
    with shell(session=1) as a, shell(session=2) as b:
        assert a.address.startswith("127.0.0.1:")
        exchange(a, b, b.address)
        stats = a.stats()
        assert stats[b.address]["acked"] == 1 and stats["*"]["socket_send_errors"] == 0


@needs_ipv6
def test_loopback_ipv6():
    with shell("[::1]:0", session=1) as a, shell("[::1]:0", session=2) as b:
        assert b.address.startswith("[::1]:")
        exchange(a, b, b.address)


@needs_ipv6
def test_dual_stack_socket_serves_ipv4_peers_under_their_ipv4_names():
    with shell("127.0.0.1:0", session=1) as a, shell("[::]:0", session=2) as b:
        port = parse_address(b.address)[1]
        exchange(a, b, "127.0.0.1:%d" % port)


def test_through_a_lossy_relay_every_reliable_message_arrives_exactly_once():
    rng = random.Random(7)
    with shell(session=1) as a, shell(session=2) as b, LossyRelay(
            b.address, impairment=Impairment(loss=0.2, duplicate=0.05, reorder=0.05), seed=3
    ) as relay:
        outgoing = {a.send(relay.address, bytes([i]) * rng.randrange(1, 20000), True): i
                    for i in range(30)}
        got_b, got_a = [], []
        assert run_until([a, b], lambda: len(delivered(b, got_b)) >= 30, now_us() + PATIENCE)
        assert sorted(outgoing) == sorted(e.message_id for e in got_b)
        for event in got_b:
            assert event.payload == bytes([outgoing[event.message_id]]) * len(event.payload)
        back = got_b[0].peer  # the relay's face towards b
        for i in range(30):
            b.send(back, b"reply %d" % i, True)
        # Wait for both directions to settle: a lost ACK leaves a message in flight until retransmitted.
        assert run_until([a, b], lambda: len(delivered(a, got_a)) >= 30 and b.endpoint.in_flight(back) == 0
                         and a.endpoint.in_flight(relay.address) == 0, now_us() + PATIENCE)
        assert sorted(e.payload for e in got_a) == sorted(b"reply %d" % i for i in range(30))
        assert relay.counters["lost"] > 0 and relay.counters["duplicated"] > 0
        assert a.stats()[relay.address]["retransmitted"] > 0
        assert a.endpoint.in_flight(relay.address) == 0


def test_a_caller_owned_selector_can_watch_other_descriptors_too():
    doorbell_reader, doorbell_writer = socket.socketpair()
    rang = []
    with shell(session=1) as a, shell(session=2) as b:
        selector = selectors.DefaultSelector()
        a.register(selector)
        b.register(selector, data=b)
        selector.register(doorbell_reader, selectors.EVENT_READ, "doorbell")
        got = []
        a.send(b.address, b"over the network", True)
        a.flush()
        doorbell_writer.send(b"!")
        deadline = now_us() + PATIENCE
        while not (got and rang) and now_us() < deadline:
            timeouts = [t for t in (a.timeout(), b.timeout()) if t is not None]
            for key, mask in selector.select(min(timeouts, default=1.0)):
                if key.data == "doorbell":
                    rang.append(doorbell_reader.recv(1))
                else:
                    key.data.service(readable=bool(mask & selectors.EVENT_READ))
            for s in (a, b):
                s.service()
            delivered(b, got)
        a.unregister()
        b.unregister()
        selector.close()
    doorbell_reader.close()
    doorbell_writer.close()
    assert rang == [b"!"] and got[0].payload == b"over the network"


def test_events_can_go_to_a_callback():
    seen = []
    with shell(session=1) as a, shell(session=2, on_event=seen.append) as b:
        a.send(b.address, b"call me", True)
        assert run_until([a, b], lambda: bool(seen), now_us() + PATIENCE)
        assert seen[0].payload == b"call me" and b.events() == []


def test_unreachable_addresses_are_refused_before_they_become_state():
    with shell(session=1) as a:
        with pytest.raises(BadAddress):
            a.send("[::1]:9", b"x", True)  # an IPv6 peer from an IPv4 socket
        with pytest.raises(ValueError):
            a.send("not an address", b"x", True)
        assert a.endpoint.in_flight("[::1]:9") == 0


def test_running_without_a_key_is_announced_unless_only_loopback_can_reach_it(caplog):
    with caplog.at_level(logging.WARNING, logger="appliance.net.udp"), shell("0.0.0.0:0", key=None) as plain:
        pass
    assert "unauthenticated" in caplog.text and plain.address in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="appliance.net.udp"), shell(key=KEY), shell(key=None):
        pass  # with a key; on loopback (nobody off this host can forge its traffic)
    assert "unauthenticated" not in caplog.text


def test_socket_buffers_are_enlarged():
    with shell() as a:
        assert a.receive_buffer > 212992  # above the common Linux default


def test_a_long_silence_never_raises_out_of_the_shell(monkeypatch):
    """OverflowError used to escape UdpShell.service once a silent peer had cost some 1750
    timeouts. The shell's clock is faked here, so thousands of them pass in no time."""
    config = TransportConfig(rto_min=1000, rto_initial=1000, rto_max=2000, retry_limit=3)
    clock = [now_us()]
    monkeypatch.setattr("appliance.net.udp.now_us", lambda: clock[0])
    with UdpShell(Endpoint(config, session=1, key=KEY), "127.0.0.1:0") as a:
        with UdpShell(Endpoint(config, session=2, key=KEY), "127.0.0.1:0") as b:
            silent = b.address
            a.send(silent, b"hello", True)
            for _ in range(50):  # the channel opens and the message is acknowledged
                for shell in (a, b):
                    shell.receive()
                    shell.service()
                clock[0] += 100
                if a.endpoint.in_flight(silent) == 0:
                    break
        assert a.endpoint.connected(silent)
        for _ in range(2500):  # b is gone: every datagram to it is lost from now on
            if a.endpoint.in_flight(silent) < 2:
                a.send(silent, b"into the silence", True)
            clock[0] = max(clock[0], a.next_deadline() or clock[0])
            a.service(readable=True)
        stats = a.stats()[silent]
        assert stats["failed"] > 500 and stats["rto_us"] == config.rto_max

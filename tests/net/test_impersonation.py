"""No one can pose as a peer: replays and blind forgeries (issue D items 5, 6 and 9).

With a cluster key, every datagram is bound to its sender and its receiver,
in their current sessions, and a new session is accepted only in answer to
a challenge the receiver chose; each attack the review found is a test
here. Without a key, a forger who cannot see the traffic (blind) cannot get
past the return-routability check nor write an ACK.
"""
from __future__ import annotations

import random
import socket

import pytest

from appliance.net import ENDPOINT, Endpoint, TransportConfig
from appliance.net import wire as layout
from appliance.net.udp import UdpShell, now_us, run_until
from appliance.net.wire import ACK, CHALLENGE, CHALLENGE_HEADER, DATA

from .fakewire import Wire, pair, seeded

KEY = b"impersonation tests cluster key!"
CONFIG = TransportConfig()
#: A safety net against a hung socket test, not a performance claim.
PATIENCE = 30_000_000


def sent_by(wire, name, kind=None):
    return [datagram for source, _, datagram in wire.carried
            if source == name and (kind is None or datagram[1] == kind)]


def payloads(wire, name, peer=None):
    return [e.payload for e in wire.delivered[name] if peer is None or e.peer == peer]


def trio(key=KEY):
    wire = pair(CONFIG, key=key)
    wire.add("c", Endpoint(CONFIG, session=0xC3, key=key, entropy=seeded(0xC3)))
    return wire


# -- with a cluster key: replays -------------------------------------------------


def test_a_datagram_replayed_from_twenty_other_addresses_is_delivered_once():
    wire = pair(CONFIG, key=KEY)
    wire.send("a", "b", b"pay 10")
    wire.run()
    captured = sent_by(wire, "a")
    for index in range(20):
        for datagram in captured:
            wire.inject("b", "10.9.9.%d:8225" % index, datagram)
    wire.run()
    assert payloads(wire, "b") == [b"pay 10"]
    stats = wire.endpoints["b"].stats()
    assert stats[ENDPOINT]["peers"] == 1  # no replayed handshake made a peer
    assert stats[ENDPOINT]["bad_cookie"] == 20 and stats[ENDPOINT]["unknown_channel"] == 20


def test_a_members_datagrams_replayed_under_another_members_address_change_nothing():
    """It used to reset b's session and lock b out until b rebooted."""
    wire = trio()
    wire.send("b", "a", b"from b")
    wire.send("c", "a", b"from c")
    wire.run()
    for datagram in sent_by(wire, "c"):
        wire.inject("a", "b", datagram)
    wire.run()
    wire.send("b", "a", b"b again")
    wire.run()
    assert payloads(wire, "a", "b") == [b"from b", b"b again"]
    stats = wire.endpoints["a"].stats()["b"]
    assert stats["session"] == 0xB2 and stats["restarts"] == 0


def rebooted_after_one_message(rebooted: str, session: int):
    """a sends b a message, then ``rebooted`` reboots; returns the wire and what a had sent."""
    wire = pair(CONFIG, key=KEY)
    wire.send("a", "b", b"before the reboot")
    wire.run()
    captured = sent_by(wire, "a")
    wire.reboot(rebooted, session=session, key=KEY)
    return wire, captured


def replay(wire, captured):
    for datagram in captured:
        wire.inject("b", "a", datagram)
    wire.run()


def test_after_the_receiver_reboots_nothing_its_earlier_boot_received_is_accepted():
    wire, captured = rebooted_after_one_message("b", 0xB7)
    replay(wire, captured)
    assert payloads(wire, "b") == [b"before the reboot"]  # the first boot's delivery only
    wire.send("a", "b", b"to the new boot")
    wire.run()
    assert payloads(wire, "b") == [b"before the reboot", b"to the new boot"]


def test_after_the_sender_reboots_nothing_from_its_earlier_boot_is_accepted():
    wire, captured = rebooted_after_one_message("a", 0xA9)
    wire.send("a", "b", b"second boot")
    wire.run()
    replay(wire, captured)  # HELLO, CONFIRM and DATA of the first boot, after the second's
    wire.send("a", "b", b"still second boot")
    wire.run()
    assert payloads(wire, "b") == [b"before the reboot", b"second boot", b"still second boot"]
    stats = wire.endpoints["b"].stats()["a"]
    assert stats["session"] == 0xA9 and stats["restarts"] == 1 and stats["stale_session"] == 1


def test_a_peers_ack_replayed_from_another_address_acknowledges_nothing():
    """It used to make the sender count its undelivered message to y acknowledged."""
    wire = pair(CONFIG, key=KEY)
    wire.add("y", Endpoint(CONFIG, session=0xD4, key=KEY))
    wire.connect("a", "y")
    wire.drop = lambda source, destination, datagram: destination == "y" and datagram[1] == DATA
    wire.send("a", "b", b"to b")
    wire.send("a", "y", b"to y, lost")
    wire.run(until=wire.now + 1000)
    for ack in sent_by(wire, "b", ACK):
        wire.inject("a", "y", ack)
    a_stats = wire.endpoints["a"].stats()
    assert a_stats["b"]["acked"] == 1 and a_stats["y"]["acked"] == 0 and a_stats["y"]["unknown_channel"] >= 1
    assert wire.endpoints["a"].in_flight("y") == 1


def test_a_datagram_sent_to_one_member_is_worthless_at_another():
    """It used to be delivered at a and to suppress b's genuine message with the same id."""
    wire = trio()
    wire.send("b", "c", b"for c only")
    wire.run()
    for datagram in sent_by(wire, "b"):
        wire.inject("a", "b", datagram)
    wire.run()
    wire.send("b", "a", b"for a")  # message id 1 to a as well
    wire.run()
    assert payloads(wire, "a") == [b"for a"] and payloads(wire, "c") == [b"for c only"]


# -- without a key: a blind forger -------------------------------------------------


def guesses(count, seed=7):
    rng = random.Random(seed)
    return [rng.getrandbits(64) | 1 for _ in range(count)] + [0xB2, 0xA1, 1, 2]  # sessions are public


def test_without_a_key_a_blind_forger_cannot_hijack_a_peer():
    """A DATA with a made-up session from a spoofed address used to be delivered and to lock
    the real peer out. Now it names no channel, and no handshake completes without the cookie
    that only the real address received."""
    wire = pair(CONFIG)
    wire.send("b", "a", b"genuine")
    wire.run()
    for guess in guesses(200):
        wire.inject("a", "b", layout.data(guess, None, True, 1, 0, 1, 6, 0, b"forged"))
        wire.inject("a", "b", layout.hello(guess, None))
        wire.inject("a", "b", layout.confirm(guess, 0, guess, 0x666, 0xA1, bytes(16), None))
        wire.inject("a", "b", layout.challenge(guess, 0, 0x666, guess, 0, bytes(16), None))
    wire.run()
    wire.send("b", "a", b"genuine again")
    wire.run()
    assert payloads(wire, "a") == [b"genuine", b"genuine again"]
    stats = wire.endpoints["a"].stats()["b"]
    assert stats["session"] == 0xB2 and stats["restarts"] == 0
    assert stats["unknown_channel"] >= 200 and stats["bad_cookie"] >= 200


def test_without_a_key_a_blind_forger_cannot_write_an_ack():
    """A forged ACK used to mark an undelivered message acknowledged."""
    wire = pair(CONFIG)
    wire.connect("a", "b")
    wire.drop = lambda source, destination, datagram: destination == "b"
    wire.send("a", "b", b"undelivered")
    for guess in guesses(500):
        wire.inject("a", "b", layout.ack(guess, None, 0, [(1, 0, 1)], True))
    stats = wire.endpoints["a"].stats()["b"]
    assert stats["acked"] == 0 and stats["unknown_channel"] == 504
    assert wire.endpoints["a"].in_flight("b") == 1


def test_without_a_key_the_real_peer_ignores_the_challenge_a_forgers_hello_provoked():
    """The return-routability check: the CHALLENGE goes to the real address, whose owner
    asked nothing and drops it; the forger never sees the cookie."""
    wire = pair(CONFIG)
    wire.send("b", "a", b"genuine")
    wire.run()
    wire.inject("a", "b", layout.hello(0x5EED, None))
    wire.run()
    assert wire.endpoints["b"].stats()["a"]["stale_handshake"] == 1
    assert wire.endpoints["a"].stats()["b"]["session"] == 0xB2


# -- sessions are nonzero ----------------------------------------------------------


@pytest.mark.parametrize("key", [None, KEY])
def test_handshakes_naming_session_zero_or_token_zero_are_refused(key):
    """protocol.md said sessions are nonzero but session 0 was accepted."""
    link = Wire()
    b = link.add("b", Endpoint(CONFIG, session=5, key=key))
    x = link.add("x", Endpoint(CONFIG, session=6, key=key))
    x.connect("b", 0)
    link.flush("x")
    link.run(until=50)  # the HELLO reached b
    link.drop = lambda source, destination, datagram: True
    link.run()
    [challenge] = [d for source, _, d in link.carried if source == "b" and d[1] == CHALLENGE]
    fields = CHALLENGE_HEADER.unpack_from(challenge)
    echo, cookie, cookie_time = fields[4], fields[7], fields[8]
    transport = x._credentials.mac
    for session, nonce in ((0, echo), (6, 0)):
        b.receive_datagram(layout.confirm(cookie, cookie_time, nonce, session, 5, bytes(16), transport), "x", 100)
    b.receive_datagram(layout.hello(0, transport), "x", 100)
    assert b.stats()[ENDPOINT]["bad_session"] == 3 and b.stats()[ENDPOINT]["peers"] == 0


# -- on real sockets -----------------------------------------------------------------


def test_on_loopback_a_captured_datagram_replayed_from_other_sockets_is_delivered_once():
    with UdpShell(Endpoint(CONFIG, session=1, key=KEY), "127.0.0.1:0") as a, \
            UdpShell(Endpoint(CONFIG, session=2, key=KEY), "127.0.0.1:0") as b:
        captured = []
        take = a.endpoint.datagrams_to_send

        def recording():
            datagrams = take()
            captured.extend(d for d, _ in datagrams)
            return datagrams

        a.endpoint.datagrams_to_send = recording  # type: ignore[method-assign]
        got = []
        a.send(b.address, b"pay 10", True)
        assert run_until([a, b], lambda: (got.extend(b.events()), bool(got))[1]
                         and a.endpoint.in_flight(b.address) == 0, now_us() + PATIENCE)
        host, port = b.address.rsplit(":", 1)
        replayers = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(20)]
        try:
            for replayer in replayers:
                replayer.bind(("127.0.0.1", 0))
                for datagram in captured:
                    replayer.sendto(datagram, (host, int(port)))
            assert run_until([b], lambda: b.stats()["*"]["datagrams_received"] >= 20 * len(captured),
                             now_us() + PATIENCE)
        finally:
            for replayer in replayers:
                replayer.close()
        got.extend(b.events())
        assert [e.payload for e in got] == [b"pay 10"]
        assert b.stats()["*"]["peers"] == 1

"""The wire format against docs/protocol.md: check values, layouts, known-answer vectors.

The vectors are the ones printed in protocol.md section 14; each is also
recomputed here from the specification's formulas with the standard library
(hmac, hashlib, struct) and a bitwise CRC-32C, independently of crcmod and
of the implementation's own helpers.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import re
import struct

import pytest

from appliance.net import Endpoint, TransportConfig, wire
from appliance.net.auth import KEY_LABEL, BadKey, identity_digest, transport_mac
from appliance.net.crc import CHECK_VALUE, crc32c
from appliance.net.handshake import Credentials

from .fakewire import channel_data, pair

DOC = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "protocol.md")


def crc32c_bitwise(data: bytes) -> int:
    """CRC-32C from its definition (reflected 0x82F63B78), independent of crcmod."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def test_crc_is_crc32c_with_the_documented_check_value():
    assert crc32c(b"123456789") == CHECK_VALUE == 0xE3069283
    data = bytes(range(256)) * 5
    assert crc32c(data) == crc32c_bitwise(data)


def test_layout_sizes_match_the_specification():
    assert wire.VERSION == 2
    assert wire.COMMON.size == 12
    assert wire.DATA_HEADER.size == 28
    assert wire.ACK_HEADER.size == 18
    assert wire.ACK_ENTRY.size == 8
    assert wire.HELLO_HEADER.size == wire.CHALLENGE_HEADER.size == 52
    assert wire.CONFIRM_HEADER.size == 56
    assert wire.trailer_size(False) == 4 and wire.trailer_size(True) == 20
    assert wire.MIN_DATAGRAM == 76


# The parameters of the vectors of docs/protocol.md section 14.
INITIATOR_SESSION = 0x0123456789ABCDEF
RESPONDER_SESSION = 0xFEDCBA9876543210
NONCE = 0x1122334455667788
TICK = 0x01020304
ADDRESS = "192.0.2.1:8225"
COOKIE_SECRET = bytes(range(32))
VECTOR_KEY = b"0123456789abcdef"
INITIATOR_IDENTITY = b"camera-1"
RESPONDER_IDENTITY = b"rtm"


def documented_vectors():
    """The hex blocks of section 14, by their label line ("HELLO, no key:" ...)."""
    with open(DOC) as doc:
        text = doc.read()
    section = text[text.index("## 14. Test vectors") : text.index("## 15.")]
    vectors = {}
    for label, block in re.findall(r"\n([A-Z][^\n]*?):\n\n```\n([0-9a-f \n]+)```", section):
        vectors[label] = block.split()
    return vectors


def built_vectors():
    """The same datagrams as the implementation builds them."""
    vectors = {}
    for key, suffix in ((None, "no key"), (VECTOR_KEY, "with the cluster key")):
        initiator = Credentials(INITIATOR_SESSION, INITIATOR_IDENTITY, key, os.urandom, 2_000_000)
        responder = Credentials(RESPONDER_SESSION, RESPONDER_IDENTITY, key,
                                lambda size: COOKIE_SECRET, 2_000_000)
        cookie = wire.CHALLENGE_HEADER.unpack(responder.challenge(NONCE, 0, ADDRESS, TICK)[:52])[7]
        sending = initiator.sending(NONCE, cookie, TICK, RESPONDER_SESSION, responder.identity, 0)
        receiving = responder.receiving(NONCE, cookie, TICK, TICK, INITIATOR_SESSION, initiator.identity)
        vectors["HELLO, " + suffix] = initiator.hello(NONCE)
        vectors["CHALLENGE, " + suffix] = responder.challenge(NONCE, 0, ADDRESS, TICK)
        vectors["CONFIRM, " + suffix] = sending.confirm
        vectors["DATA, " + suffix] = wire.data(cookie, sending.mac, True, 7, 0, 1, 5, TICK, b"hello")
        vectors["ACK, " + suffix] = wire.ack(cookie, receiving.mac, TICK, [(7, 0, 1)], True)
    return vectors


def test_the_implementation_builds_the_documented_vectors():
    documented = documented_vectors()
    built = built_vectors()
    assert sorted(documented) == sorted(built)
    for label, datagram in built.items():
        assert datagram.hex(" ").split() == documented[label], label


def from_the_specification(key):
    """Every vector rebuilt from protocol.md's formulas alone."""
    def seal(body, tag_key):
        if tag_key is None:  # the CRC covers everything
            return body + struct.pack("<I", crc32c_bitwise(body))
        tag = hmac.new(tag_key, body, hashlib.sha256).digest()[:16]  # the CRC: common header and tag
        return body + tag + struct.pack("<I", crc32c_bitwise(body[:12] + tag))

    auth = 0x02 if key else 0
    transport = hmac.new(key, KEY_LABEL, hashlib.sha256).digest() if key else None
    ids = [hashlib.sha256(name).digest()[:16] for name in (INITIATOR_IDENTITY, RESPONDER_IDENTITY)]
    cookie_mac = hmac.new(COOKIE_SECRET, struct.pack("<IQ", TICK, NONCE) + ADDRESS.encode(),
                          hashlib.sha256).digest()
    cookie = struct.unpack("<Q", cookie_mac[:8])[0]
    channel = None
    if key:
        channel = hmac.new(transport, b"appliance channel v2" + struct.pack(
            "<QQQQI", INITIATOR_SESSION, RESPONDER_SESSION, NONCE, cookie, TICK) + ids[0] + ids[1],
            hashlib.sha256).digest()
    return {
        "HELLO": seal(struct.pack("<BBBBQ", 2, 3, auth, 0, NONCE) + bytes(40), transport),
        "CHALLENGE": seal(struct.pack("<BBBBQIQQI", 2, 4, auth, 0, NONCE, 0, RESPONDER_SESSION, cookie,
                                      TICK) + ids[1], transport),
        "CONFIRM": seal(struct.pack("<BBBBQIQQQ", 2, 5, auth, 0, cookie, TICK, NONCE, INITIATOR_SESSION,
                                    RESPONDER_SESSION) + ids[0], transport),
        "DATA": seal(struct.pack("<BBBBQIHHII", 2, 1, 0x01 | auth, 0, cookie, 7, 0, 1, 5, TICK) + b"hello",
                     channel),
        "ACK": seal(struct.pack("<BBBBQIH", 2, 2, auth, 0, cookie, TICK, 1) + struct.pack("<IHH", 7, 0, 1),
                    channel),
    }


@pytest.mark.parametrize("key, suffix", [(None, "no key"), (VECTOR_KEY, "with the cluster key")])
def test_the_vectors_follow_from_the_specification_alone(key, suffix):
    built = built_vectors()
    for kind, datagram in from_the_specification(key).items():
        assert built[kind + ", " + suffix] == datagram, kind


@pytest.mark.parametrize("key", [None, VECTOR_KEY])
def test_refusals_name_what_is_wrong(key):
    receiver = Endpoint(TransportConfig(), session=5, key=key)
    mac = transport_mac(key) if key else None
    good = wire.data(9, mac, False, 1, 0, 1, 3, 0, b"abc")  # intact, of a channel not held here
    flipped = bytearray(good)
    flipped[3] ^= 1  # the reserved byte: covered by the CRC with and without a key
    other = wire.data(9, None if key else transport_mac(VECTOR_KEY), False, 1, 0, 1, 3, 0, b"abc")
    unknown_type = wire.seal(bytes([2, 9, wire.FLAG_AUTH if key else 0]) + bytes(39), mac)
    cases = {"unknown_channel": good, "truncated": good[:15], "bad_version": b"\x01" + good[1:],
             "bad_crc": bytes(flipped), "bad_auth": other, "bad_type": unknown_type}
    for reason, datagram in cases.items():
        before = receiver.stats()["*"][reason]
        receiver.receive_datagram(datagram, "10.0.0.1:1", 0)
        assert receiver.stats()["*"][reason] == before + 1, reason


def test_with_a_key_the_tag_not_the_crc_decides():
    link = pair(TransportConfig(), key=VECTOR_KEY)
    link.connect("a", "b")
    genuine = channel_data(link.endpoints["a"], "b", True, 1, 0, 1, 3, b"abc")
    forged = bytearray(genuine)
    forged[28] ^= 1  # the payload changed: the CRC (header and tag) still holds, the tag does not
    link.inject("b", "a", bytes(forged))
    damaged = bytearray(genuine)
    damaged[5] ^= 1  # the token damaged: the CRC says so, and no one is answered
    link.inject("b", "a", bytes(damaged))
    stats = link.endpoints["b"].stats()["a"]
    assert (stats["bad_auth"], stats["bad_crc"], stats["delivered"], stats["challenges_sent"]) == (1, 1, 0, 0)


def test_identities_are_carried_as_a_fixed_size_digest():
    assert identity_digest(b"") == hashlib.sha256(b"").digest()[:16]
    assert len(identity_digest(b"a much longer ensemble name than sixteen bytes")) == 16


def test_cluster_keys_must_be_long_enough():
    with pytest.raises(BadKey):
        transport_mac(b"short")
    with pytest.raises(BadKey):
        transport_mac("a string, not bytes, of enough length")  # type: ignore[arg-type]


def test_fragment_geometry_splits_evenly():
    assert wire.fragment_geometry(2500, 3) == 834  # 834 + 834 + 832
    assert wire.fragment_geometry(1200, 1) == 1200
    assert wire.fragment_geometry(0, 1) == 0

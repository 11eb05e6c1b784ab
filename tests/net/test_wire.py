"""The wire format against docs/protocol.md: check values, layouts, a known-answer vector."""
from __future__ import annotations

import hashlib
import hmac
import struct

import pytest

from appliance.net import wire
from appliance.net.auth import KEY_LABEL, Authenticator, BadKey
from appliance.net.crc import CHECK_VALUE, crc32c
from appliance.net.wire import Framer


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
    assert wire.COMMON.size == 12
    assert wire.DATA_HEADER.size == 28
    assert wire.ACK_HEADER.size == 26
    assert wire.ACK_ENTRY.size == 8
    assert wire.trailer_size(False) == 4 and wire.trailer_size(True) == 20
    assert wire.MIN_DATAGRAM == 54


# The known-answer vectors of docs/protocol.md, section "Test vectors".
SESSION = 0x0123456789ABCDEF
DATA_VECTOR = (
    "01 01 01 00 ef cd ab 89 67 45 23 01 07 00 00 00 00 00 01 00 05 00 00 00 "
    "04 03 02 01 68 65 6c 6c 6f ce 54 4d 4f"
)
ACK_VECTOR = (
    "01 02 00 00 ef cd ab 89 67 45 23 01 10 32 54 76 98 ba dc fe 04 03 02 01 01 00 "
    "07 00 00 00 00 00 01 00 d3 0b ec 0e"
)
VECTOR_KEY = b"0123456789abcdef"
AUTH_DATA_VECTOR = (
    "01 01 03 00 ef cd ab 89 67 45 23 01 07 00 00 00 00 00 01 00 05 00 00 00 "
    "04 03 02 01 68 65 6c 6c 6f 2b d4 d0 0f b2 12 4c 4a 6c 1d 90 be a6 85 a4 4f a0 50 ec 7f"
)


def test_known_answer_vectors():
    framer = Framer(SESSION, None)
    data = framer.data(True, 7, 0, 1, 5, 0x01020304, b"hello")
    assert data.hex(" ") == DATA_VECTOR
    ack = framer.ack(0xFEDCBA9876543210, 0x01020304, [(7, 0, 1)], complete=True)
    assert ack.hex(" ") == ACK_VECTOR
    for vector in (data, ack):
        assert struct.unpack("<I", vector[-4:])[0] == crc32c_bitwise(vector[:-4])


def test_authenticated_vector_is_plain_hmac_sha256_of_a_derived_key():
    framer = Framer(SESSION, VECTOR_KEY)
    data = framer.data(True, 7, 0, 1, 5, 0x01020304, b"hello")
    body, tag, crc = data[:-20], data[-20:-4], data[-4:]
    assert body[2] == wire.FLAG_RELIABLE | wire.FLAG_AUTH
    transport_key = hmac.new(VECTOR_KEY, KEY_LABEL, hashlib.sha256).digest()
    assert tag == hmac.new(transport_key, body, hashlib.sha256).digest()[:16]
    assert struct.unpack("<I", crc)[0] == crc32c_bitwise(body + tag)
    assert framer.open(data) == len(body)
    assert data.hex(" ") == AUTH_DATA_VECTOR


@pytest.mark.parametrize("key", [None, VECTOR_KEY])
def test_open_names_what_is_wrong(key):
    framer = Framer(SESSION, key)
    good = framer.data(False, 1, 0, 1, 3, 0, b"abc")
    assert framer.open(good) == len(good) - framer.trailer
    assert framer.open(good[:15]) == "truncated"
    assert framer.open(b"\x02" + good[1:]) == "bad_version"
    flipped = bytearray(good)
    flipped[20] ^= 1
    assert framer.open(bytes(flipped)) == "bad_crc"


def test_a_valid_crc_does_not_make_a_forged_tag_valid():
    framer = Framer(SESSION, VECTOR_KEY)
    good = bytearray(framer.data(True, 1, 0, 1, 3, 0, b"abc"))
    good[28] ^= 1  # change the payload, then fix the CRC as a forger would
    body = bytes(good[:-4])
    forged = body + struct.pack("<I", crc32c(body))
    assert framer.open(forged) == "bad_auth"
    unkeyed = Framer(SESSION, None)
    assert framer.open(unkeyed.data(True, 1, 0, 1, 3, 0, b"abc")) == "bad_auth"
    assert unkeyed.open(Framer(SESSION, VECTOR_KEY).data(True, 1, 0, 1, 3, 0, b"abc")) == "bad_auth"


def test_cluster_keys_must_be_long_enough():
    with pytest.raises(BadKey):
        Authenticator(b"short")
    with pytest.raises(BadKey):
        Authenticator("a string, not bytes, of enough length")  # type: ignore[arg-type]


def test_fragment_geometry_splits_evenly():
    assert wire.fragment_geometry(2500, 3) == 834  # 834 + 834 + 832
    assert wire.fragment_geometry(1200, 1) == 1200
    assert wire.fragment_geometry(0, 1) == 0

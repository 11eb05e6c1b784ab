"""Byte layouts of transport version 2 and the trailer around every datagram.

docs/protocol.md is the specification; this module is its executable form.
All integers are little-endian. A datagram is a header, a body, an optional
authentication tag and a CRC-32C over everything before it. Builders take
the MAC to tag with (None without a cluster key), so the same functions
frame handshake datagrams (transport MAC) and channel traffic (channel MAC).
"""
from __future__ import annotations

import struct
from typing import Optional, Sequence, Tuple, Union

from appliance.net.auth import IDENTITY_DIGEST_SIZE, TAG_SIZE, Mac
from appliance.net.crc import crc32c

VERSION = 2

DATA = 1
ACK = 2
HELLO = 3
CHALLENGE = 4
CONFIRM = 5

FLAG_RELIABLE = 0x01  # DATA: acknowledge me
FLAG_AUTH = 0x02  # any: a tag precedes the CRC
FLAG_INCOMPLETE = 0x04  # ACK: the entries are not all the receiver holds

U32 = 0xFFFFFFFF
#: Message ids and timestamps are compared modulo 2**32 (RFC 1982 serial numbers).
ID_HALF_RANGE = 1 << 31
#: Fragment index and count are 16-bit.
MAX_FRAGMENTS = 0xFFFF

#: version, type, flags, reserved, token (the channel token, or the handshake's value)
COMMON = struct.Struct("<BBBBQ")
#: COMMON + message id, fragment index, fragment count, message length, timestamp
DATA_HEADER = struct.Struct("<BBBBQIHHII")
#: COMMON + echoed timestamp, entry count
ACK_HEADER = struct.Struct("<BBBBQIH")
#: message id, first fragment, number of consecutive fragments (0: the receiver dropped it)
ACK_ENTRY = struct.Struct("<IHH")
#: COMMON (token: the initiator's nonce) + zero padding up to the size of a CHALLENGE
HELLO_HEADER = struct.Struct("<BBBBQ40x")
#: COMMON (token: the echoed value) + echoed timestamp, responder session, cookie, cookie time,
#: responder identity
CHALLENGE_HEADER = struct.Struct("<BBBBQIQQI%ds" % IDENTITY_DIGEST_SIZE)
#: COMMON (token: the cookie) + cookie time, nonce, initiator session, responder session,
#: initiator identity
CONFIRM_HEADER = struct.Struct("<BBBBQIQQQ%ds" % IDENTITY_DIGEST_SIZE)
CRC = struct.Struct("<I")

AckEntry = Tuple[int, int, int]
Chunk = Union[bytes, memoryview]

#: The handshake datagrams, by type, with their exact header sizes.
HANDSHAKE_SIZES = {HELLO: HELLO_HEADER.size, CHALLENGE: CHALLENGE_HEADER.size,
                   CONFIRM: CONFIRM_HEADER.size}


def trailer_size(authenticated: bool) -> int:
    return CRC.size + (TAG_SIZE if authenticated else 0)


#: Shortest datagram that is not refused as truncated outright: a common header and a CRC.
MIN_SIZE = COMMON.size + CRC.size
#: Smallest mtu that still carries every datagram type, one payload byte and one
#: ACK entry, with a tag.
MIN_DATAGRAM = max(DATA_HEADER.size + 1, ACK_HEADER.size + ACK_ENTRY.size,
                   *HANDSHAKE_SIZES.values()) + trailer_size(True)


def fragment_geometry(length: int, count: int) -> int:
    """Bytes in every fragment but the last: the message is split evenly.

    Deriving the size from (length, count) lets a receiver check each
    fragment on arrival, before it acknowledges anything.
    """
    return -(-length // count)


def max_ack_entries(mtu: int, authenticated: bool) -> int:
    return (mtu - ACK_HEADER.size - trailer_size(authenticated)) // ACK_ENTRY.size


def data(token: int, mac: Optional[Mac], reliable: bool, wire_id: int, index: int, count: int,
         length: int, timestamp: int, chunk: Chunk) -> bytes:
    """One DATA datagram of a channel: the sender's hot path, sealed in one concatenation."""
    flags = FLAG_RELIABLE if reliable else 0
    if mac is not None:
        flags |= FLAG_AUTH
    return seal(DATA_HEADER.pack(VERSION, DATA, flags, 0, token, wire_id, index, count, length,
                                 timestamp & U32) + chunk, mac)


def ack(token: int, mac: Optional[Mac], echo: int, entries: Sequence[AckEntry],
        complete: bool) -> bytes:
    flags = 0 if complete else FLAG_INCOMPLETE
    head = ACK_HEADER.pack(VERSION, ACK, flags | (FLAG_AUTH if mac else 0), 0, token, echo & U32,
                           len(entries))
    return seal(head + b"".join([ACK_ENTRY.pack(*entry) for entry in entries]), mac)


def hello(nonce: int, mac: Optional[Mac]) -> bytes:
    return seal(HELLO_HEADER.pack(VERSION, HELLO, FLAG_AUTH if mac else 0, 0, nonce), mac)


def challenge(echo: int, timestamp: int, session: int, cookie: int, cookie_time: int,
              identity: bytes, mac: Optional[Mac]) -> bytes:
    return seal(CHALLENGE_HEADER.pack(VERSION, CHALLENGE, FLAG_AUTH if mac else 0, 0, echo,
                                      timestamp & U32, session, cookie, cookie_time & U32,
                                      identity), mac)


def confirm(cookie: int, cookie_time: int, nonce: int, initiator_session: int,
            responder_session: int, identity: bytes, mac: Optional[Mac]) -> bytes:
    return seal(CONFIRM_HEADER.pack(VERSION, CONFIRM, FLAG_AUTH if mac else 0, 0, cookie,
                                    cookie_time & U32, nonce, initiator_session,
                                    responder_session, identity), mac)


def seal(body: bytes, mac: Optional[Mac]) -> bytes:
    """Append the tag (if ``mac``) and the CRC.

    Without a key the CRC-32C covers everything before it: it is the only
    integrity check. With a key the tag covers everything before it and the
    CRC only the common header and the tag: enough to tell a damaged header
    (bad_crc) from a forgery before a key is chosen by its token, at a
    fraction of the cost (a CRC over the whole datagram was the largest single
    cost of sending, larger than the HMAC).
    """
    if mac is None:
        return body + CRC.pack(crc32c(body))
    tag = mac.tag(body)
    return body + tag + CRC.pack(crc32c(tag, crc32c(body[: COMMON.size])))


def crc_ok(datagram: bytes, authenticated: bool) -> bool:
    """Whether the last four bytes are the CRC that ``seal`` computes for this datagram."""
    end = len(datagram) - CRC.size
    if not authenticated:
        return end >= 0 and crc32c(memoryview(datagram)[:end]) == CRC.unpack_from(datagram, end)[0]
    if end < COMMON.size + TAG_SIZE:
        return False
    view = memoryview(datagram)
    crc = crc32c(view[end - TAG_SIZE : end], crc32c(view[: COMMON.size]))
    return crc == CRC.unpack_from(datagram, end)[0]

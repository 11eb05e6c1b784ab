"""Byte layouts of transport version 1 and the trailer around every datagram.

docs/protocol.md is the specification; this module is its executable form.
All integers are little-endian. A datagram is a header, a body, an optional
authentication tag and a CRC-32C over everything before it.
"""
from __future__ import annotations

import struct
from typing import Sequence, Tuple, Union

from appliance.net.auth import TAG_SIZE, Authenticator
from appliance.net.crc import crc32c

VERSION = 1

DATA = 1
ACK = 2

FLAG_RELIABLE = 0x01  # DATA: acknowledge me
FLAG_AUTH = 0x02  # any: a tag precedes the CRC
FLAG_INCOMPLETE = 0x04  # ACK: the entries are not all the receiver holds

U32 = 0xFFFFFFFF
#: Message ids and timestamps are compared modulo 2**32 (RFC 1982 serial numbers).
ID_HALF_RANGE = 1 << 31
#: Fragment index and count are 16-bit.
MAX_FRAGMENTS = 0xFFFF

#: version, type, flags, reserved, sender session
COMMON = struct.Struct("<BBBBQ")
#: COMMON + message id, fragment index, fragment count, message length, timestamp
DATA_HEADER = struct.Struct("<BBBBQIHHII")
#: COMMON + acknowledged session, echoed timestamp, entry count
ACK_HEADER = struct.Struct("<BBBBQQIH")
#: message id, first fragment, number of consecutive fragments
ACK_ENTRY = struct.Struct("<IHH")
CRC = struct.Struct("<I")

AckEntry = Tuple[int, int, int]


def trailer_size(authenticated: bool) -> int:
    return CRC.size + (TAG_SIZE if authenticated else 0)


#: Smallest mtu that still carries one payload byte and one ACK entry with a tag.
MIN_DATAGRAM = max(DATA_HEADER.size + 1, ACK_HEADER.size + ACK_ENTRY.size) + trailer_size(True)


def fragment_geometry(length: int, count: int) -> int:
    """Bytes in every fragment but the last: the message is split evenly.

    Deriving the size from (length, count) lets a receiver check each
    fragment on arrival, before it acknowledges anything.
    """
    return -(-length // count)


class Framer:
    """Builds this endpoint's datagrams and checks the trailer of incoming ones."""

    __slots__ = ("session", "authenticated", "trailer", "_auth", "_flags")

    def __init__(self, session: int, key: Union[bytes, None]) -> None:
        self.session = session
        self._auth = Authenticator(key) if key is not None else None
        self.authenticated = self._auth is not None
        self._flags = FLAG_AUTH if self.authenticated else 0
        self.trailer = trailer_size(self.authenticated)

    def data(
        self,
        reliable: bool,
        wire_id: int,
        index: int,
        count: int,
        length: int,
        timestamp: int,
        chunk: Union[bytes, memoryview],
    ) -> bytes:
        flags = (self._flags | FLAG_RELIABLE) if reliable else self._flags
        head = DATA_HEADER.pack(
            VERSION, DATA, flags, 0, self.session, wire_id, index, count, length, timestamp & U32
        )
        return self._seal(head + chunk)

    def ack(self, acked_session: int, echo: int, entries: Sequence[AckEntry],
            complete: bool) -> bytes:
        flags = self._flags if complete else self._flags | FLAG_INCOMPLETE
        head = ACK_HEADER.pack(
            VERSION, ACK, flags, 0, self.session, acked_session, echo & U32, len(entries)
        )
        return self._seal(head + b"".join(ACK_ENTRY.pack(*entry) for entry in entries))

    def _seal(self, body: bytes) -> bytes:
        if self._auth is not None:
            body += self._auth.tag(body)
        return body + CRC.pack(crc32c(body))

    def open(self, datagram: bytes) -> Union[int, str]:
        """The length of the authenticated body, or the name of the check that failed."""
        size = len(datagram)
        if size < COMMON.size + CRC.size:
            return "truncated"
        if datagram[0] != VERSION:
            return "bad_version"
        end = size - CRC.size
        view = memoryview(datagram)
        if crc32c(view[:end]) != CRC.unpack_from(datagram, end)[0]:
            return "bad_crc"
        if self._auth is None:
            # A tagged datagram means the sender holds a key this endpoint lacks:
            # a configuration error worth counting, not traffic to accept.
            return "bad_auth" if datagram[2] & FLAG_AUTH else end
        end -= TAG_SIZE
        if not datagram[2] & FLAG_AUTH or end < COMMON.size:
            return "bad_auth"
        if not self._auth.verify(view[:end], datagram[end : end + TAG_SIZE]):
            return "bad_auth"
        return end

    def max_ack_entries(self, mtu: int) -> int:
        return (mtu - ACK_HEADER.size - self.trailer) // ACK_ENTRY.size

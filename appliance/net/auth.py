"""Keys and tags: HMAC-SHA256 with the cluster key, per-channel keys, identity digests.

The endpoint never uses the cluster key directly. It derives a transport key
from it (so the same cluster key can authenticate other things without a tag
from one being valid in another), tags handshake datagrams with that, and
tags DATA and ACK with a key derived per channel from both ends' sessions,
identities and the handshake's fresh values: a datagram captured on one
channel is then worthless on any other, whoever replays it and from where.
"""
from __future__ import annotations

import hashlib
import hmac
import struct
from typing import Union

#: Bytes of HMAC-SHA256 kept; 128 bits is the truncation RFC 4868 uses for IPsec.
TAG_SIZE = 16
#: Shortest cluster key accepted: a shorter one is guessable, not a secret.
MIN_KEY_SIZE = 16
#: Domain-separation label for deriving the transport key (version 2 of the protocol).
KEY_LABEL = b"appliance transport v2"
#: Domain-separation label for deriving a channel key from the transport key.
CHANNEL_LABEL = b"appliance channel v2"
#: Bytes of SHA-256 kept of an endpoint's identity, as carried in handshakes.
IDENTITY_DIGEST_SIZE = 16

_CHANNEL_FIELDS = struct.Struct("<QQQQI")

Bytes = Union[bytes, bytearray, memoryview]


class BadKey(ValueError):
    """The cluster key is not usable (wrong type or too short)."""


def derive_transport_key(cluster_key: bytes) -> bytes:
    if not isinstance(cluster_key, (bytes, bytearray)):
        raise BadKey("cluster key must be bytes, got %s" % type(cluster_key).__name__)
    if len(cluster_key) < MIN_KEY_SIZE:
        raise BadKey(
            "cluster key must be at least %d bytes, got %d" % (MIN_KEY_SIZE, len(cluster_key))
        )
    return hmac.digest(bytes(cluster_key), KEY_LABEL, hashlib.sha256)


def identity_digest(identity: bytes) -> bytes:
    """What stands for an endpoint's identity on the wire and in channel keys:
    fixed-size, so handshakes have fixed layouts whatever the name's length."""
    return hashlib.sha256(identity).digest()[:IDENTITY_DIGEST_SIZE]


class Mac:
    """HMAC-SHA256 (RFC 2104) under one key; tags are its first TAG_SIZE bytes.

    The inner and outer hash states of the key are computed once: that
    halves the cost per datagram compared with ``hmac.digest``, which sets up
    the key on every call.
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        block = hashlib.sha256().block_size
        if len(key) > block:
            key = hashlib.sha256(key).digest()
        key = key.ljust(block, b"\0")
        self._inner = hashlib.sha256(bytes(byte ^ 0x36 for byte in key))
        self._outer = hashlib.sha256(bytes(byte ^ 0x5C for byte in key))

    def digest(self, *parts: Bytes) -> bytes:
        inner = self._inner.copy()
        for part in parts:
            inner.update(part)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    def tag(self, body: Bytes) -> bytes:
        """The tag of one datagram body (digest's loop unrolled: this is per datagram)."""
        inner = self._inner.copy()
        inner.update(body)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()[:TAG_SIZE]

    def verify(self, datagram: bytes, end: int) -> bool:
        """Whether the TAG_SIZE bytes at ``end`` are the tag of ``datagram[:end]``."""
        view = memoryview(datagram)
        inner = self._inner.copy()
        inner.update(view[:end])
        outer = self._outer.copy()
        outer.update(inner.digest())
        return hmac.compare_digest(outer.digest()[:TAG_SIZE], view[end : end + TAG_SIZE])


def transport_mac(cluster_key: bytes) -> Mac:
    """The MAC of handshake datagrams, and the root of every channel key."""
    return Mac(derive_transport_key(cluster_key))


def channel_mac(transport: Mac, initiator_session: int, responder_session: int, nonce: int,
                cookie: int, cookie_time: int, initiator_identity: bytes,
                responder_identity: bytes) -> Mac:
    """The MAC of one channel's DATA and ACKs: bound to both sessions and identities
    and to the handshake's fresh values (the initiator's nonce, the responder's cookie)."""
    fields = _CHANNEL_FIELDS.pack(initiator_session, responder_session, nonce, cookie, cookie_time)
    return Mac(transport.digest(CHANNEL_LABEL, fields, initiator_identity, responder_identity))

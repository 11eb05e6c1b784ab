"""Channels and the handshake that opens them: HELLO, CHALLENGE, CONFIRM.

A *channel* carries one direction of messages between two endpoints: DATA
from its initiator, ACKs back from its responder. Every datagram on it
carries the channel's *token*, a 64-bit value the responder chose and gave
only to the initiator's address, and (with a cluster key) a tag under a key
derived from both ends' sessions and identities and the handshake's fresh
values. So a datagram is bound to its sender and its receiver, in their
current sessions: replayed from another address, to another endpoint, or
after either end rebooted, it names a channel that does not exist there.

The handshake is a return-routability check in the manner of QUIC's Retry
and DTLS's HelloVerifyRequest: the initiator sends HELLO with a fresh nonce;
the responder answers, keeping no state, with a CHALLENGE echoing the nonce
and carrying its session and a *cookie* (a MAC, under a secret of this boot,
of the cookie's time, the echoed value and the initiator's address); the
initiator sends CONFIRM echoing the cookie (its DATA may follow at once),
the cookie becomes the token, and the responder acknowledges the CONFIRM
with an ACK that lists nothing. A responder therefore accepts a new session
for a peer only in answer to a challenge it chose moments ago, sent to that
peer's address; and an initiator accepts a responder's session only in a
CHALLENGE that echoes its own fresh nonce (or the token of the channel in
use). Nothing received
before this boot of either end can complete either step. (docs/protocol.md
section 6 has the rules; appliance.net.sender the initiator's timers.)
"""
from __future__ import annotations

import hashlib
import hmac
import struct
from collections import deque
from typing import Callable, Deque, List, Optional, Tuple

from appliance.net import wire
from appliance.net.auth import Mac, channel_mac, identity_digest, transport_mac
from appliance.net.wire import U32

#: Bytes of the per-boot secret that cookies are MACs under.
COOKIE_SECRET_SIZE = 32

_COOKIE_INPUT = struct.Struct("<IQ")

Entropy = Callable[[int], bytes]


class Channel:
    """One direction of traffic with a peer, as a completed handshake set it up."""

    __slots__ = ("token", "mac", "peer_session")

    def __init__(self, token: int, mac: Optional[Mac], peer_session: int) -> None:
        #: What every datagram of the channel carries in its token field.
        self.token = token
        #: The channel's MAC, None without a cluster key.
        self.mac = mac
        #: The other end's session, as the handshake proved it.
        self.peer_session = peer_session


class ReceivingChannel(Channel):
    """The responder's side: the channel a peer sends DATA to this endpoint on."""

    __slots__ = ("issued_at",)

    def __init__(self, token: int, mac: Optional[Mac], peer_session: int, issued_at: int) -> None:
        super().__init__(token, mac, peer_session)
        #: When this endpoint issued the cookie (its own ticks): a CONFIRM of a cookie
        #: issued no later than this one is a copy, or older, and changes nothing.
        self.issued_at = issued_at


class SendingChannel(Channel):
    """The initiator's side: the channel this endpoint sends DATA to a peer on."""

    __slots__ = ("confirm", "opened_at", "confirm_sent_at", "confirmed_at")

    def __init__(self, token: int, mac: Optional[Mac], peer_session: int, confirm: bytes,
                 now: int) -> None:
        super().__init__(token, mac, peer_session)
        #: The CONFIRM that opened it, sent again until the responder acknowledges it.
        self.confirm = confirm
        self.opened_at = now
        self.confirm_sent_at = now
        #: When the first ACK arrived on it (proof the responder holds it), None before.
        self.confirmed_at: Optional[int] = None


class Credentials:
    """What this endpoint proves itself with: its session, identity, key and cookie secret."""

    def __init__(self, session: int, identity: bytes, key: Optional[bytes], entropy: Entropy,
                 cookie_lifetime: int) -> None:
        self.session = session
        self.identity = identity_digest(identity)
        #: The transport MAC tags handshakes and derives channel keys; None without a key.
        self.mac = transport_mac(key) if key is not None else None
        self._entropy = entropy
        self._secret = entropy(COOKIE_SECRET_SIZE)
        self._lifetime = cookie_lifetime

    def nonce(self) -> int:
        """A fresh nonzero 64-bit value: a HELLO's nonce, the initiator's part of a channel."""
        while True:
            value = int.from_bytes(self._entropy(8), "little")
            if value:
                return value

    def hello(self, nonce: int) -> bytes:
        return wire.hello(nonce, self.mac)

    def challenge(self, echo: int, timestamp: int, address: str, now: int) -> bytes:
        """The answer to a HELLO (``echo`` its nonce) or to DATA of an unknown channel
        (``echo`` its token, ``timestamp`` its timestamp); it commits no state here."""
        issued = now & U32
        return wire.challenge(echo, timestamp, self.session, self._cookie(issued, echo, address),
                              issued, self.identity, self.mac)

    def cookie_issued_at(self, cookie: int, cookie_time: int, nonce: int, address: str,
                         now: int) -> Optional[int]:
        """When this endpoint issued ``cookie`` (in full ticks), or None if it did not,
        or did so longer than the cookie lifetime ago."""
        age = (now - cookie_time) & U32
        if age > self._lifetime or not hmac.compare_digest(
                self._cookie(cookie_time, nonce, address).to_bytes(8, "little"),
                cookie.to_bytes(8, "little")):
            return None
        return now - age

    def sending(self, nonce: int, cookie: int, cookie_time: int, responder_session: int,
                responder_identity: bytes, now: int) -> SendingChannel:
        """The channel this endpoint opens as initiator with the responder's cookie, and
        the CONFIRM that tells the responder so."""
        mac = None if self.mac is None else channel_mac(
            self.mac, self.session, responder_session, nonce, cookie, cookie_time, self.identity,
            responder_identity)
        confirm = wire.confirm(cookie, cookie_time, nonce, self.session, responder_session,
                               self.identity, self.mac)
        return SendingChannel(cookie, mac, responder_session, confirm, now)

    def receiving(self, nonce: int, cookie: int, cookie_time: int, issued_at: int,
                  initiator_session: int, initiator_identity: bytes) -> ReceivingChannel:
        """The channel a peer opened to this endpoint with a CONFIRM of a cookie it issued."""
        mac = None if self.mac is None else channel_mac(
            self.mac, initiator_session, self.session, nonce, cookie, cookie_time,
            initiator_identity, self.identity)
        return ReceivingChannel(cookie, mac, initiator_session, issued_at)

    def _cookie(self, cookie_time: int, echo: int, address: str) -> int:
        digest = hmac.new(self._secret, _COOKIE_INPUT.pack(cookie_time, echo) + address.encode(),
                          hashlib.sha256).digest()
        return int.from_bytes(digest[:8], "little") or 1  # tokens are never 0


class Overtaken:
    """DATA that came for a channel this endpoint does not hold: most likely it overtook
    its channel's CONFIRM (both leave together; jitter reorders them).

    The last ``limit`` such datagrams are kept for ``hold`` µs; a CONFIRM that opens the
    channel they name hands them back to be received then, checked under the new
    channel like any other. Bounded in count and time, whoever sends them: a forger
    who cannot know a token only pushes others out early.
    """

    def __init__(self, limit: int, hold: int) -> None:
        self._hold = hold
        self._kept: Deque[Tuple[int, str, int, bytes]] = deque(maxlen=limit)

    def keep(self, address: str, token: int, datagram: bytes, now: int) -> None:
        self._kept.append((now, address, token, datagram))

    def take(self, address: str, token: int, now: int) -> List[bytes]:
        """The datagrams kept for this channel, oldest first; the expired ones are forgotten."""
        limit = now - self._hold
        taken = [datagram for at, source, kept, datagram in self._kept
                 if at >= limit and source == address and kept == token]
        self._kept = deque(((at, source, kept, datagram) for at, source, kept, datagram in self._kept
                            if at >= limit and not (source == address and kept == token)),
                           maxlen=self._kept.maxlen)
        return taken

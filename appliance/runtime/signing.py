"""Control messages signed by the runtime manager: the cluster key makes a member, not a manager.

With a manager key pair configured, every transmission in which the runtime
manager tells an ensemble's processes to change (deploy, start, remove,
routes, the answer to a join, clock replies) travels as one
``NetMsg.SIGNED`` message, ``(body, signature)``: an Ed25519 signature, by
the key only the manager holds, over a label and the body
``[boot, target, seq, payload]``:

- ``boot``: a random number the manager picks at every start;
- ``target``: the ensemble it is for (its name, or for the answer to a join
  its address), so a message for one ensemble is refused by another;
- ``seq``: numbered per destination address from 1, each accepted once (a
  window of the last ``REPLAY_WINDOW``), so a captured message replayed is
  refused;
- ``payload``: the transmission's messages, as the codec encodes them.

An ensemble takes a manager's boot only from the answer to its own current
join, which echoes the nonce the join carried (fresh at every join): a
capture from an earlier boot of the manager, or from before this ensemble's
join, never passes. Ensembles hold the manager's public key and refuse
control messages it did not sign (``NetworkCore.requires_signature``).
"""
from __future__ import annotations

import hashlib
from typing import Dict, List, Optional, Tuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from appliance.ipc import Layer, Message, NetMsg, Recipient
from appliance.ipc.codec import CodecError, decode, decode_messages, encode
from appliance.net.replay import ReplayWindow

#: Signed with every body, so a signature made for anything else never passes here.
SIGNATURE_LABEL = b"appliance control v1\x00"
#: Sequence numbers remembered per manager boot; older ones are refused as replays.
REPLAY_WINDOW = 1024

_SIGNED, _JOIN_RESULT = NetMsg.SIGNED, NetMsg.JOIN_RESULT
_NOT_AN_ENSEMBLES = (Recipient.RUNTIME_MANAGER, Recipient.CLIENT)


def changes_an_ensemble(messages: List[Message]) -> bool:
    """Whether a transmission holds control for an ensemble's processes (what must be signed)."""
    return any(m.msg_type.layer is Layer.CONTROL and m.recipient not in _NOT_AN_ENSEMBLES for m in messages)


class ControlSigner:
    """The runtime manager's side: seals each control transmission for its target."""

    def __init__(self, key: Ed25519PrivateKey, boot: int) -> None:
        self._key = key
        self.boot = boot
        #: The last number used per destination address: an ensemble is named by its address
        #: before it joins and by its name after, but it has one window.
        self._sequence: Dict[str, int] = {}

    def seal(self, address: str, target: str, payload: bytes) -> Message:
        seq = self._sequence.get(address, 0) + 1
        self._sequence[address] = seq
        body = encode([self.boot, target, seq, payload])
        return Message(_SIGNED, (body, self._key.sign(SIGNATURE_LABEL + body)), Recipient.NETWORK)


class ControlVerifier:
    """An ensemble's side: opens what the manager signed for it, once, from its current boot."""

    def __init__(self, key: Ed25519PublicKey, secret: bytes) -> None:
        self._key = key
        self._secret = secret
        self._joins = 0
        self.boot: Optional[int] = None
        self._window = ReplayWindow(REPLAY_WINDOW)

    def next_nonce(self) -> str:
        """A nonce for a new join: unguessable, and never the same twice in this process."""
        self._joins += 1
        return hashlib.sha256(self._secret + b"%d" % self._joins).hexdigest()[:32]

    def open(self, payload: object, targets: Tuple[str, ...], nonce: str) -> Tuple[Optional[List[Message]], str]:
        """``(messages, "")`` if the manager signed this for one of ``targets``, fresh;
        else ``(None, why)``, ``why`` a counter name."""
        if not (isinstance(payload, tuple) and len(payload) == 2 and all(isinstance(p, bytes) for p in payload)):
            return None, "malformed_signed"
        body, signature = payload
        try:
            self._key.verify(signature, SIGNATURE_LABEL + body)
        except InvalidSignature:
            return None, "bad_signature"
        try:
            boot, target, seq, inner = decode(body)
            messages = decode_messages(inner)
        except (CodecError, TypeError, ValueError):
            return None, "malformed_signed"
        if type(boot) is not int or type(seq) is not int or seq < 1:
            return None, "malformed_signed"
        if target not in targets:
            return None, "signed_for_another"
        if boot != self.boot:
            if not nonce or not any(m.msg_type is _JOIN_RESULT and _echoed_nonce(m) == nonce for m in messages):
                return None, "stale_manager_boot"
            self.boot = boot  # the answer to our own join: this is the manager now
            self._window = ReplayWindow(REPLAY_WINDOW)
        message_id = self._window.unwrap(seq)
        if self._window.delivered(message_id) or self._window.too_old(message_id):
            return None, "replayed_control"
        self._window.mark(message_id)
        return messages, ""


def _echoed_nonce(join_result: Message) -> object:
    payload = join_result.payload
    return payload[3] if isinstance(payload, tuple) and len(payload) == 4 else None

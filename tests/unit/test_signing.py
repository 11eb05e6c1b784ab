"""Signed control: only the manager's key makes it, once, for its target, from its current boot."""
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance.ipc import ExecuteMsg, Message, NetMsg, Recipient, SyncMsg
from appliance.ipc.codec import encode_messages
from appliance.runtime.signing import ControlSigner, ControlVerifier, changes_an_ensemble

KEY = Ed25519PrivateKey.generate()
DEPLOY = [Message(ExecuteMsg.INSTANTIATE_SQS, ("app-1", {}, [], 10_000_000), Recipient.EXECUTE)]


def joined_pair(boot=7):
    """A signer and a verifier that has taken the signer's boot from the answer to its join."""
    signer, verifier = ControlSigner(KEY, boot), ControlVerifier(KEY.public_key(), b"secret")
    nonce = verifier.next_nonce()
    answer = [Message(NetMsg.JOIN_RESULT, (True, "", {}, nonce), Recipient.NETWORK)]
    opened, why = verifier.open(signer.seal("addr:e1", "e1", encode_messages(answer)).payload, ("e1",), nonce)
    assert why == "" and opened == answer and verifier.boot == boot
    return signer, verifier, nonce


def test_what_the_manager_signed_for_this_ensemble_opens_once():
    signer, verifier, nonce = joined_pair()
    sealed = signer.seal("addr:e1", "e1", encode_messages(DEPLOY)).payload
    assert verifier.open(sealed, ("e1",), nonce) == (DEPLOY, "")
    assert verifier.open(sealed, ("e1",), nonce) == (None, "replayed_control")


def test_a_message_for_another_ensemble_or_with_a_bad_signature_is_refused():
    signer, verifier, nonce = joined_pair()
    assert verifier.open(signer.seal("addr:e1", "e2", encode_messages(DEPLOY)).payload, ("e1",), nonce)[1] == \
        "signed_for_another"
    body, signature = signer.seal("addr:e1", "e1", encode_messages(DEPLOY)).payload
    forged = Ed25519PrivateKey.generate().sign(b"appliance control v1\x00" + body)
    assert verifier.open((body, forged), ("e1",), nonce) == (None, "bad_signature")
    assert verifier.open((body[:-1] + b"\x00", signature), ("e1",), nonce) == (None, "bad_signature")
    assert verifier.open(("not", "bytes"), ("e1",), nonce) == (None, "malformed_signed")


def test_a_capture_from_another_boot_of_the_manager_never_passes():
    old = ControlSigner(KEY, boot=1)
    captured = old.seal("addr:e1", "e1", encode_messages(DEPLOY)).payload
    signer, verifier, nonce = joined_pair(boot=2)
    assert verifier.open(captured, ("e1",), nonce) == (None, "stale_manager_boot")
    # Nor does an old boot's answer to an earlier join switch it back.
    earlier = [Message(NetMsg.JOIN_RESULT, (True, "", {}, "an earlier nonce"), Recipient.NETWORK)]
    assert verifier.open(old.seal("addr:e1", "e1", encode_messages(earlier)).payload, ("e1",), nonce)[1] == \
        "stale_manager_boot"


def test_nonces_are_fresh_at_every_join_and_differ_between_processes():
    first, second = ControlVerifier(KEY.public_key(), b"one"), ControlVerifier(KEY.public_key(), b"two")
    nonces = [first.next_nonce() for _ in range(3)] + [second.next_nonce()]
    assert len(set(nonces)) == 4


@pytest.mark.parametrize("messages, signed", [
    (DEPLOY, True),
    ([Message(SyncMsg.START_SQS, ("a", []), Recipient.INPUT_TOKENS)], True),
    ([Message(NetMsg.ADD_ROUTES, {}, Recipient.NETWORK)], True),
    ([Message(SyncMsg.INPUT_TOKEN, None, Recipient.INPUT_TOKENS)], False),  # tokens are data
])
def test_what_must_be_signed_is_control_for_an_ensembles_processes(messages, signed):
    assert changes_an_ensemble(messages) is signed

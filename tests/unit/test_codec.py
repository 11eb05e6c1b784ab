import contextlib

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.ipc import ExecutionContext, Message, NetMsg, Recipient, RuntimeMsg, SyncMsg, codec
from appliance.ipc.codec import (
    CODEC_VERSION,
    MAX_SHARED_EXPANSION,
    CodecError,
    ValueTooLarge,
    decode,
    decode_messages,
    encode,
    encode_messages,
    outbound_copy,
    private_copy,
)
from appliance.program.token import EMPTY, Tag, Token
from appliance.timing import Interval

values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False)
    | st.text(max_size=20) | st.binary(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.tuples(children, children)
    | st.dictionaries(st.text(max_size=5) | st.integers(-5, 5), children, max_size=4),
    max_leaves=20,
)


@given(values)
@settings(max_examples=300, deadline=None)
def test_any_plain_value_round_trips_with_tuples_kept_apart_from_lists(value):
    assert decode(encode(value)) == value
    assert type(decode(encode(value))) is type(value)


def test_tokens_messages_and_empty_round_trip():
    token = Token((1, [2, (3,)], b"\x00"), Interval(-5, 7), Tag(0, "add", 1))
    messages = [
        Message(SyncMsg.INPUT_TOKEN, token, Recipient.INPUT_TOKENS),
        Message(NetMsg.SEND_TOKENS, ("add", Interval(1, 2), (EMPTY, 3)), Recipient.NETWORK),
        Message(RuntimeMsg.SQS_READY, ("app-1", "e1", 1, []), Recipient.RUNTIME_MANAGER),
    ]
    decoded = decode_messages(encode_messages(messages))
    assert decoded == messages
    assert decoded[0].msg_type is SyncMsg.INPUT_TOKEN
    assert decoded[1].payload[2][0] is EMPTY


def test_numpy_arrays_and_scalars_round_trip():
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    back = decode(encode(array))
    assert back.dtype == np.float32 and back.shape == (3, 4) and (back == array).all()
    back.flags.writeable = True  # a copy the receiver owns, not a view on network bytes
    assert decode(encode(np.int16(7))) == 7


def test_execution_contexts_round_trip():
    ctx = ExecutionContext("avg", Interval(0, 10), (1.5, "x"), 5)
    assert decode(encode(ctx)) == ctx


def test_object_arrays_and_arbitrary_objects_are_refused_at_encoding():
    with pytest.raises(TypeError, match="cannot be sent"):
        encode(np.array([object()]))
    with pytest.raises(TypeError, match="cannot be sent"):
        encode(object())


def test_a_message_type_that_the_recipient_does_not_know_is_refused():
    bogus = msgpack.packb([CODEC_VERSION, 55, 1, None])
    with pytest.raises(CodecError, match="unknown message type"):
        decode_messages(bogus)


def test_an_interval_that_is_empty_on_the_wire_is_refused():
    bogus = msgpack.ExtType(3, msgpack.packb([5, 5, "root"]))
    with pytest.raises(CodecError, match="bad interval"):
        decode(msgpack.packb(bogus))


def test_a_wrong_codec_version_is_refused():
    with pytest.raises(CodecError, match="version"):
        decode_messages(msgpack.packb([99]))


@given(st.binary(max_size=200))
@settings(max_examples=500, deadline=None)
def test_random_bytes_raise_only_codec_errors(data):
    with contextlib.suppress(CodecError):
        decode_messages(data)


@given(st.data())
@settings(max_examples=300, deadline=None)
def test_mutated_transmissions_raise_only_codec_errors_or_decode(data):
    token = Token([1, 2.5, "x"], Interval(0, 10), Tag(0, "sq", 0))
    raw = bytearray(encode_messages([Message(SyncMsg.INPUT_TOKEN, token, Recipient.INPUT_TOKENS)]))
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    try:
        messages = decode_messages(bytes(raw))
    except CodecError:
        return
    assert all(type(m) is Message for m in messages)


def test_a_frame_that_is_not_whole_messages_is_refused():
    with pytest.raises(CodecError, match="a transmission is"):
        decode_messages(msgpack.packb([CODEC_VERSION, 0, 1]))


def test_a_transmission_keeps_its_messages_in_order():
    token = Token(7, Interval(0, 10), Tag(0, "sq", 1))
    messages = [Message(SyncMsg.INPUT_TOKEN, token, Recipient.INPUT_TOKENS),
                Message(SyncMsg.REMOVE_SQS, "app-1", Recipient.INPUT_TOKENS)]
    assert decode_messages(encode_messages(messages)) == messages


@given(st.integers() | st.integers(min_value=2**63, max_value=2**200) | st.integers(max_value=-(2**63) - 1))
@settings(max_examples=300, deadline=None)
def test_integers_of_any_size_round_trip(n):
    assert decode(encode(n)) == n and type(decode(encode([n]))[0]) is int


def test_a_big_integer_inside_a_token_and_a_message_round_trips():
    token = Token(0xDEADBEEF ** 4, Interval(0, 10), Tag(0, "mul", 0))
    [back] = decode_messages(encode_messages([Message(SyncMsg.INPUT_TOKEN, token, Recipient.INPUT_TOKENS)]))
    assert back.payload.value == 0xDEADBEEF ** 4


def test_a_truncated_big_integer_extension_is_refused():
    with pytest.raises(CodecError):
        decode(msgpack.packb(msgpack.ExtType(8, b"")))


def test_a_private_copy_shares_nothing_mutable_and_refuses_what_cannot_be_sent():
    inner = [1, 2]
    values = (inner, {"k": inner}, 2**70, "s")
    copy = private_copy(values)
    assert copy == values and copy[0] is not inner and copy[1]["k"] is not inner
    plain = (1, 2.5, "x", None, EMPTY)
    assert private_copy(plain) is plain  # nothing to copy: immutable values are shared
    for bad in ({1, 2}, object(), np.array([object()])):
        with pytest.raises(Exception):  # noqa: B017 -- whatever the codec raises
            private_copy((1, bad))


outbound = st.lists(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
    | st.binary(max_size=40) | st.lists(st.integers(), max_size=5) | st.just(EMPTY),
    min_size=1, max_size=4).map(tuple)


@given(outbound, st.integers(0, 400))
def test_outbound_values_are_refused_exactly_when_their_encoding_is_over_the_limit(values, limit):
    """The shortcut for immutable values never decides otherwise than their encoding would."""
    size = len(encode(values))
    if size > limit:
        with pytest.raises(ValueTooLarge):
            outbound_copy(values, limit)
    else:
        copy = outbound_copy(values, limit)
        assert copy == values
        assert all(a is not b for a, b in zip(copy, values) if isinstance(a, list))


def test_outbound_values_just_over_the_limit_are_refused_whatever_their_kind():
    for value in ("\u20ac" * 1000, b"x" * 3000, 7 ** 5000, [1] * 3000):
        size = len(encode((value,)))
        assert outbound_copy((value,), size) == (value,)
        with pytest.raises(ValueTooLarge):
            outbound_copy((value,), size - 1)


@given(st.lists(st.sampled_from(range(4)), min_size=1, max_size=12),
       st.lists(values, min_size=4, max_size=4))
def test_tokens_sharing_a_value_round_trip_and_the_value_travels_once(picks, pool):
    pool = pool[:3] + [b"v" * 50_000]
    messages = [Message(SyncMsg.INPUT_TOKEN, Token(pool[i], Interval(0, 10), Tag(0, "s%d" % n, 0)),
                        Recipient.INPUT_TOKENS) for n, i in enumerate(picks)]
    data = encode_messages(messages)
    assert decode_messages(data) == messages
    assert len(data) < 70_000  # the large one once, however many of its tokens (the rest is far less)


def test_a_shared_value_that_refers_to_nothing_or_outside_a_transmission_is_refused():
    bogus = msgpack.packb([CODEC_VERSION, SyncMsg.INPUT_TOKEN.value, Recipient.INPUT_TOKENS.value,
                           msgpack.ExtType(4, msgpack.packb([msgpack.ExtType(10, msgpack.packb(0)), 0, 10, "root",
                                                             0, "s", 0]))], use_bin_type=True)
    with pytest.raises(CodecError, match="refers to shared value 0, of 0 so far"):
        decode_messages(bogus)
    with pytest.raises(CodecError, match="a shared token value outside a transmission"):
        decode(msgpack.packb(msgpack.ExtType(9, msgpack.packb(b"x" * 100))))


def test_references_that_stand_for_more_than_a_transmission_may_are_refused(monkeypatch):
    assert MAX_SHARED_EXPANSION == 256 * 1024 * 1024
    monkeypatch.setattr(codec, "MAX_SHARED_EXPANSION", 1_000_000)  # the rule, at a size a test can hold
    value = [1.5] * 60_000  # 540 KB encoded: one reference stands for it, a second for twice that
    tokens = [Message(SyncMsg.INPUT_TOKEN, Token(value, Interval(0, 10), Tag(0, "s%d" % n, 0)),
                      Recipient.INPUT_TOKENS) for n in range(3)]
    assert len(decode_messages(encode_messages(tokens[:2]))) == 2  # the value, and one reference to it
    with pytest.raises(CodecError, match="stand for more than 1000000 bytes"):
        decode_messages(encode_messages(tokens))


def _frame_of(*payloads):
    return msgpack.packb([CODEC_VERSION] + [x for p in payloads for x in (SyncMsg.INPUT_TOKEN.value,
                                                                          Recipient.INPUT_TOKENS.value, p)],
                         use_bin_type=True)


def _token(value):
    return msgpack.ExtType(4, msgpack.packb([value, 0, 10, "root", 0, "s", 0], use_bin_type=True))


def test_shared_values_only_as_a_tokens_value_and_never_references_inside_one():
    """Nested references would let a 10 KB frame stand for a terabyte (shared #k = 1000
    references to #k-1); shared values outside tokens would alias payloads."""
    first = msgpack.ExtType(9, msgpack.packb(b"x" * 1000))
    nested = msgpack.ExtType(9, msgpack.packb([msgpack.ExtType(10, msgpack.packb(0))] * 1000))
    with pytest.raises(CodecError, match="a shared token value that is not a token's value"):
        decode_messages(_frame_of(_token(first), _token(nested)))
    with pytest.raises(CodecError, match="a shared token value that is not a token's value"):
        decode_messages(_frame_of(_token(msgpack.ExtType(1, msgpack.packb([first])))))  # inside a tuple
    with pytest.raises(CodecError, match="a shared token value that is not a token's value"):
        decode_messages(_frame_of(first))


def test_extensions_nested_deeper_than_a_c_stack_takes_are_refused_both_ways():
    deep = 0
    for _ in range(200):  # about 200 nested unpack calls overflow the C stack: a crash, not an error
        deep = msgpack.ExtType(1, msgpack.packb([deep]))
    with pytest.raises(CodecError, match="extensions nested more than 64 deep"):
        decode_messages(_frame_of(deep))
    value = 0
    for _ in range(200):
        value = (value,)
    with pytest.raises(ValueError, match="nested more than 64 deep"):
        private_copy(([value],))


def test_a_version_that_is_not_an_int_is_a_codec_error():
    array = msgpack.ExtType(2, msgpack.packb(["<i8", [2], b"\3\0\0\0\0\0\0\0" * 2], use_bin_type=True))
    for version in (array, 3.0, [3]):
        with pytest.raises(CodecError, match="codec version"):
            decode_messages(msgpack.packb([version, 0, 1, 1], use_bin_type=True))


@pytest.mark.parametrize("data", [b"\xc1\xc1\xc1\xc1", b"\x92\x01", b"\xd9"])
def test_undecodable_bytes_always_say_why(data):
    """Was, for a byte msgpack never uses (0xc1): "undecodable bytes: " and nothing more."""
    with pytest.raises(CodecError) as refused:
        codec.decode(data)
    reason = str(refused.value).partition("undecodable bytes: ")[2]
    assert reason.strip(), str(refused.value)

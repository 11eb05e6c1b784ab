"""The safe wire encoding of messages: msgpack with a few extension types.

Nothing here can construct an arbitrary object: the decoder knows a closed set
of types (tuples, numpy arrays of plain dtypes, intervals, tokens, EMPTY,
messages) and refuses everything else with :class:`CodecError`. This is what
replaces the original runtime's ``pickle.loads`` on network bytes.
"""
from __future__ import annotations

import threading
from typing import Any, Dict, List, Optional, Tuple

import msgpack

from appliance.ipc.message import TYPES_FOR, ExecutionContext, Message, Recipient
from appliance.program.token import EMPTY, Empty, Tag, Token
from appliance.timing import Interval

CODEC_VERSION = 3

_TUPLE = 1
_NDARRAY = 2
_INTERVAL = 3
_TOKEN = 4
_EMPTY = 5
_MESSAGE = 6
_CONTEXT = 7
_BIGINT = 8
_SHARED = 9
_SAME = 10

#: Token values never shared within a transmission: a few bytes each, not worth a lookup.
_UNSHARED = frozenset([int, float, bool, type(None), Empty])
#: Strings and bytes shorter than this are not shared either.
_SHARE_FROM = 64

#: Extension types nested in one another, at most, either way: each level of decoding is a
#: call into msgpack's C code, and about 200 of them overflow the C stack (a crash, not an
#: exception), so a value nested deeper is refused at its SQ and a frame so nested on arrival.
MAX_EXT_DEPTH = 64

#: numpy dtype kinds that are plain bytes: bool, ints, floats, complex. Never "O" (objects).
_ARRAY_KINDS = frozenset("biufc")


class CodecError(ValueError):
    """Bytes that are not a valid encoding; the message names what is wrong."""


def _default(obj: Any) -> Any:
    cls = obj.__class__
    if cls is int:  # msgpack hands over only the ints beyond 64 bits
        return msgpack.ExtType(_BIGINT, obj.to_bytes(obj.bit_length() // 8 + 1, "little", signed=True))
    if cls is Token:
        tag = obj.tag
        iv = obj.interval
        value = obj.value
        shared = _stack.shared
        if shared is not None and value.__class__ not in _UNSHARED and (
                value.__class__ not in (str, bytes) or len(value) >= _SHARE_FROM):
            value = _shared(shared, value)
        return msgpack.ExtType(
            _TOKEN, _pack([value, iv.start, iv.stop, iv.clock, tag.context, tag.sq, tag.port])
        )
    if cls is Interval:
        return msgpack.ExtType(_INTERVAL, _pack([obj.start, obj.stop, obj.clock]))
    if cls is Message:
        return msgpack.ExtType(
            # _value_, not .value: the same number without the property lookup (hot path)
            _MESSAGE, _pack([obj.msg_type._value_, obj.recipient._value_, obj.payload])
        )
    if cls is ExecutionContext:
        return msgpack.ExtType(_CONTEXT, _pack([obj.sq, obj.interval, obj.values, obj.tick]))
    if cls is Empty:
        return msgpack.ExtType(_EMPTY, b"")
    if isinstance(obj, tuple):
        return msgpack.ExtType(_TUPLE, _pack(list(obj)))
    if isinstance(obj, (int, float, str, bytes)):  # subclasses: strict_types sends them here
        for base in (bool, int, float, str, bytes):
            if isinstance(obj, base):
                value = base(obj)
                return _default(value) if base is int and not -(2**63) <= value < 2**64 else value
    if getattr(cls, "__module__", "") == "numpy":
        import numpy

        if isinstance(obj, numpy.generic):
            return obj.item()
        if isinstance(obj, numpy.ndarray):
            if obj.dtype.kind not in _ARRAY_KINDS:
                raise TypeError("numpy arrays of dtype %s cannot be sent" % obj.dtype)
            return msgpack.ExtType(_NDARRAY, _pack([obj.dtype.str, list(obj.shape), obj.tobytes()]))
    raise TypeError("values of type %s cannot be sent between ensembles" % cls.__name__)


def _shared(shared: Dict[int, int], value: Any) -> msgpack.ExtType:
    """A token value as a transmission carries it once: encoded at its first token (its
    number is the order its encoding ends in, as the decoder numbers them), and only that
    number at every later one. The network manager gives every copy of one output for the
    SQs of one ensemble the same object, so a value for dozens of SQs there travels once."""
    index = shared.get(id(value))
    if index is not None:
        return msgpack.ExtType(_SAME, _pack(index))
    _stack.shared = None  # nothing inside a shared value is shared: no reference stands for references
    try:
        data = _pack(value)
    finally:
        _stack.shared = shared
    shared[id(value)] = len(shared)
    return msgpack.ExtType(_SHARED, data)


class _PackerStack(threading.local):
    """One reusable packer per nesting depth of extension types.

    ``msgpack.packb`` inside a ``default`` hook builds a fresh packer each time
    and costs ~15 µs; a reused packer costs ~0.6 µs. Packers are not
    re-entrant, hence one per depth (and per thread).
    """

    def __init__(self) -> None:
        self.packers: List[msgpack.Packer] = []
        self.depth = 0
        #: While a transmission is encoded: the shared token values so far, by id, numbered.
        self.shared: Optional[Dict[int, int]] = None


_stack = _PackerStack()


def _pack(obj: Any) -> bytes:
    stack = _stack
    depth = stack.depth
    if depth >= MAX_EXT_DEPTH:
        raise ValueError("values nested more than %d deep (tuples, arrays, tokens) cannot be sent" % MAX_EXT_DEPTH)
    if depth == len(stack.packers):
        stack.packers.append(msgpack.Packer(default=_default, strict_types=True, use_bin_type=True))
    stack.depth = depth + 1
    try:
        return stack.packers[depth].pack(obj)
    finally:
        stack.depth = depth


def _unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=False)


def _ext_hook(code: int, data: bytes) -> Any:
    frame = _frame
    depth = frame.depth
    if depth >= MAX_EXT_DEPTH:
        raise CodecError("extensions nested more than %d deep" % MAX_EXT_DEPTH)
    frame.depth = depth + 1
    try:
        return _extension(code, data, frame)
    finally:
        frame.depth = depth


def _extension(code: int, data: bytes, frame: _Frame) -> Any:
    if code == _TOKEN:  # the commonest by far: its checks are inline
        token_depth, frame.token_depth = frame.token_depth, frame.depth
        try:
            fields = _unpack(data)
        finally:
            frame.token_depth = token_depth
        if type(fields) is not list or len(fields) != 7:
            raise CodecError("token: expected a list of 7 fields, got %r" % (fields,))
        value, start, stop, clock, context, sq, port = fields
        if type(context) is not int or type(sq) is not str or type(port) is not int:
            raise CodecError("token tag must be [int, str, int], got %r" % ([context, sq, port],))
        return Token(value, _interval(start, stop, clock), Tag(context, sq, port))
    if code == _TUPLE:
        return tuple(_expect(_unpack(data), list, "tuple"))
    if code in (_SHARED, _SAME):
        return _shared_value(code, data, frame)
    if code == _INTERVAL:
        fields = _expect(_unpack(data), list, "interval")
        if len(fields) != 3:
            raise CodecError("interval has %d fields, expected 3" % len(fields))
        return _interval(*fields)
    if code == _EMPTY:
        return EMPTY
    if code == _MESSAGE:
        fields = _expect(_unpack(data), list, "message")
        if len(fields) != 3:
            raise CodecError("message has %d fields, expected 3" % len(fields))
        return _message(*fields)
    if code == _CONTEXT:
        fields = _expect(_unpack(data), list, "execution context")
        if len(fields) != 4 or not isinstance(fields[1], Interval) or not isinstance(fields[2], tuple):
            raise CodecError("malformed execution context")
        return ExecutionContext(_str(fields[0]), fields[1], fields[2], fields[3])
    if code == _NDARRAY:
        return _ndarray(_expect(_unpack(data), list, "array"))
    if code == _BIGINT:
        if not data:
            raise CodecError("an integer extension needs at least one byte")
        return int.from_bytes(data, "little", signed=True)
    raise CodecError("unknown extension type %d" % code)


#: Bytes the references of one transmission may stand for, its shared values' encodings
#: counted once per reference (1,000 SQs fed one 256 KiB value): a few bytes of reference
#: must not stand for gigabytes that every firing they feed copies.
MAX_SHARED_EXPANSION = 256 * 1024 * 1024


class _Frame(threading.local):
    """What decoding needs to know of where it is: how deep in extensions, at which depth
    the innermost token's fields are, and while a transmission is decoded, its shared token
    values so far (in order, with their encodings' lengths) and the bytes its references
    stood for so far."""

    def __init__(self) -> None:
        self.depth = 0
        self.token_depth = -2
        self.in_shared = False
        self.shared: Optional[List[Tuple[Any, int]]] = None
        self.expansion = 0


_frame = _Frame()


def _shared_value(code: int, data: bytes, frame: _Frame) -> Any:
    """Extension 9 or 10: only as a token's field (the encoder puts them in the value) and
    never inside a shared value, so what a reference stands for is one value's encoding."""
    shared = frame.shared
    if shared is None:
        raise CodecError("a shared token value outside a transmission")
    if frame.depth != frame.token_depth + 1 or frame.in_shared:
        raise CodecError("a shared token value that is not a token's value")
    if code == _SHARED:
        frame.in_shared = True
        try:
            value = _unpack(data)
        finally:
            frame.in_shared = False
        shared.append((value, len(data)))
        return value
    index = _unpack(data)
    if type(index) is not int or not 0 <= index < len(shared):
        raise CodecError("a token value refers to shared value %r, of %d so far" % (index, len(shared)))
    value, length = shared[index]
    frame.expansion += length
    if frame.expansion > MAX_SHARED_EXPANSION:
        raise CodecError("a transmission whose shared token values stand for more than %d bytes"
                         % MAX_SHARED_EXPANSION)
    return value


def _expect(value: Any, cls: type, what: str) -> Any:
    if not isinstance(value, cls):
        raise CodecError("%s: expected %s, got %s" % (what, cls.__name__, type(value).__name__))
    return value


def _str(value: Any) -> str:
    if type(value) is not str:
        raise CodecError("expected a string, got %r" % (value,))
    return value


def _interval(start: Any, stop: Any, clock: Any) -> Interval:
    if type(clock) is not str:
        raise CodecError("bad interval: clock must be a string, got %r" % (clock,))
    try:
        return Interval(start, stop, clock)  # checks that start and stop are int ticks
    except (TypeError, ValueError) as exc:
        raise CodecError("bad interval: %s" % exc) from None


#: recipient value -> (recipient, {type value: type}): a dict lookup where calling
#: the enum (``Recipient(1)``) costs a microsecond per message.
_MESSAGE_TYPES = {who.value: (who, {kind.value: kind for kind in TYPES_FOR[who]}) for who in Recipient}


def _message(msg_type: Any, recipient: Any, payload: Any) -> Message:
    known = _MESSAGE_TYPES.get(recipient) if type(recipient) is int else None
    kind = known[1].get(msg_type) if known is not None and type(msg_type) is int else None
    if kind is None:
        raise CodecError("unknown message type %r for recipient %r" % (msg_type, recipient))
    return Message(kind, payload, known[0])


def _ndarray(fields: List[Any]) -> Any:
    try:
        import numpy
    except ImportError:
        raise CodecError("a numpy array arrived but numpy is not installed here") from None
    if len(fields) != 3:
        raise CodecError("array has %d fields, expected 3" % len(fields))
    dtype_str, shape, raw = fields
    try:
        dtype = numpy.dtype(_str(dtype_str))
    except TypeError:
        raise CodecError("bad array dtype %r" % (dtype_str,)) from None
    if dtype.kind not in _ARRAY_KINDS:
        raise CodecError("array dtype %s is not allowed" % dtype)
    if not isinstance(shape, list) or not all(type(n) is int and n >= 0 for n in shape):
        raise CodecError("bad array shape %r" % (shape,))
    count = 1
    for n in shape:
        count *= n
    if not isinstance(raw, bytes) or len(raw) != count * dtype.itemsize:
        raise CodecError("array data does not match shape %r and dtype %s" % (shape, dtype))
    return numpy.frombuffer(raw, dtype=dtype).reshape(shape).copy()


#: Types whose values no SQ can change: a process may share them instead of copying.
IMMUTABLE = frozenset([int, float, str, bytes, bool, type(None), Empty])


def private_copy(values: tuple) -> tuple:
    """``values`` as another process would receive them: every mutable value a copy.

    Across a process boundary every value is a copy. Where two SQs run in one
    process (the simulator), the runtime copies too, so an SQ that mutates
    what it was given or what it returned changes nothing another SQ sees,
    wherever the mapping put them. A copy is the codec's round trip, so a value
    the wire cannot carry (a ``set``) fails here exactly as it would between
    ensembles: any exception means the values cannot leave their SQ.
    """
    for value in values:
        if value.__class__ not in IMMUTABLE:
            return _unpack(_pack(values))
    return values


class ValueTooLarge(ValueError):
    """Values whose encoding is more than a limit: refused before anything carries them."""


def outbound_copy(values: tuple, limit: int) -> tuple:
    """:func:`private_copy` of what an SQ returns, or :class:`ValueTooLarge` when the
    values' encoding (what every queue and transport carries of them) is more than
    ``limit`` bytes.

    Mutable values are encoded anyway to be copied, so they are measured exactly.
    Immutable ones are not copied: an upper bound on their encoding (a header is
    at most 16 bytes) spares encoding the many small values, and only a bound
    over the limit is checked exactly. A string that is not ASCII is encoded
    always: one holding a lone surrogate cannot be, and must fail here, at its SQ.
    """
    bound = 16
    for value in values:
        cls = value.__class__
        if cls is bytes or cls is str and value.isascii():  # an ASCII character is one byte
            bound += len(value) + 16
        elif cls is int:
            bound += value.bit_length() // 8 + 16
        elif cls in IMMUTABLE and cls is not str:
            bound += 16
        else:
            data = _pack(values)
            if len(data) > limit:
                raise ValueTooLarge("%d bytes encoded" % len(data))
            return _unpack(data)
    if bound > limit:
        size = len(_pack(values))
        if size > limit:
            raise ValueTooLarge("%d bytes encoded" % size)
    return values


def encode(value: Any) -> bytes:
    """Encode one value (anything the codec knows) to bytes."""
    return _pack(value)


def decode(data: bytes) -> Any:
    """Decode bytes from :func:`encode`; raises :class:`CodecError` on anything malformed."""
    try:
        return _unpack(data)
    except CodecError:
        raise
    except Exception as exc:  # msgpack raises a zoo of types on truncated or hostile input
        # Some say nothing (FormatError, for a byte msgpack never uses): then the type says it.
        raise CodecError("undecodable bytes: %s" % (str(exc) or type(exc).__name__)) from None


def encode_messages(messages: List[Message]) -> bytes:
    """The payload of one transmission: ``[version, type, recipient, payload, type, ...]``.

    The frame lists each message's three fields inline rather than as
    ``Message`` extensions: one msgpack pass instead of one per message, on the
    path every token between ensembles takes. (Messages nested in a payload,
    as in a forward, still travel as extensions.)
    """
    frame: List[Any] = [CODEC_VERSION]
    for message in messages:
        frame += (message.msg_type._value_, message.recipient._value_, message.payload)
    stack = _stack
    outer, stack.shared = stack.shared, {}
    try:
        return _pack(frame)
    finally:
        stack.shared = outer


def decode_messages(data: bytes) -> List[Message]:
    outer = _frame.shared, _frame.expansion
    _frame.shared, _frame.expansion = [], 0
    try:
        frame = decode(data)
    finally:
        _frame.shared, _frame.expansion = outer
    if not isinstance(frame, list) or len(frame) % 3 != 1:
        raise CodecError("a transmission is [version, type, recipient, payload, ...]")
    if type(frame[0]) is not int or frame[0] != CODEC_VERSION:
        raise CodecError("codec version %r, this ensemble speaks %d" % (frame[0], CODEC_VERSION))
    return [_message(frame[i], frame[i + 1], frame[i + 2]) for i in range(1, len(frame), 3)]

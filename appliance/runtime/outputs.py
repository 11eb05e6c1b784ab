"""Output records as JSON lines: one object per output token, times in integer µs."""
from __future__ import annotations

import base64
import json
import math
from typing import Any, Protocol

from appliance.runtime.app import OutputRecord

#: Bits of the largest integer written as a JSON number; beyond, JSON readers (and
#: Python's own int-to-text limit of 4300 digits) give up, so it is written as hex text.
MAX_JSON_INT_BITS = 4096


def jsonable(value: Any) -> Any:
    """A JSON-safe rendering of an SQ's value (tuples become lists, arrays lists,
    bytes base64, non-finite floats strings, huge ints hex strings, anything
    else its repr)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_JSON_INT_BITS:
        return hex(value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return jsonable(value.tolist())
    return repr(value)


def record_to_json(record: OutputRecord) -> str:
    return json.dumps({
        "app": record.app, "sq": record.sq, "port": record.port, "value": jsonable(record.value),
        "start": record.start, "stop": record.stop, "clock": record.clock,
        "ensemble": record.ensemble, "logged_at": record.logged_at,
    }, allow_nan=False)


class TextSink(Protocol):
    """Where lines go: an open text file, or a command's output file."""

    def write(self, text: str) -> Any: ...


class JsonLinesWriter:
    """Writes each record as it is logged, so a long run can be followed with ``tail -f``."""

    def __init__(self, stream: TextSink) -> None:
        self.stream = stream
        self.count = 0

    def __call__(self, record: OutputRecord) -> None:
        self.stream.write(record_to_json(record) + "\n")
        self.count += 1

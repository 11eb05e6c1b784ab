"""Tokens: a value stamped with a time interval and addressed by a tag."""
from __future__ import annotations

from typing import Any, NamedTuple

from appliance.timing import Interval


class Empty:
    """The value of an output that produces nothing this time.

    An SQ that returns ``EMPTY`` (or puts it in one slot of its output tuple)
    sends no token on that output: conditional outputs and Plan B use it.
    """

    _instance = None

    def __new__(cls) -> Empty:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "EMPTY"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self):
        return (Empty, ())


EMPTY = Empty()


class Tag(NamedTuple):
    """Where a token goes: its context (stream element family), SQ and input port."""

    context: int
    sq: str
    port: int


class Token:
    """A value with the interval during which it is valid, and its destination tag."""

    __slots__ = ("value", "interval", "tag")

    def __init__(self, value: Any, interval: Interval, tag: Tag) -> None:
        self.value = value
        self.interval = interval
        self.tag = tag

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Token):
            return NotImplemented
        return (self.value, self.interval, self.tag) == (other.value, other.interval, other.tag)

    __hash__ = None  # type: ignore[assignment]  # values may be unhashable

    def __repr__(self) -> str:
        return "Token(%r, %r, %s:%d)" % (self.value, self.interval, self.tag.sq, self.tag.port)

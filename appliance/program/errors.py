"""Errors a user sees when a program does not build or a graph file does not load."""
from __future__ import annotations

import os
import signal
from typing import Optional


def stops_the_process(exc: BaseException) -> bool:
    """Whether an exception out of program code (a program's top level, an SQ, a driver)
    is someone stopping this process, not the program's error: only a KeyboardInterrupt
    where SIGINT raises one (Ctrl-C at a command or a simulation). Every other exception,
    ``BaseException`` subclasses included, is the program's, counted like any error, since
    nothing a program raises may end a process that serves the others; a device's
    processes ignore SIGINT (their supervisor stops them), so there even a
    KeyboardInterrupt is the program's own."""
    return isinstance(exc, KeyboardInterrupt) and signal.getsignal(signal.SIGINT) is signal.default_int_handler


def exception_text(exc: BaseException) -> str:
    """``str(exc)``, or a stand-in for an exception of the program's that cannot say what it is
    (its ``__str__`` raises)."""
    try:
        return str(exc)
    except BaseException as failure:
        if stops_the_process(failure):
            raise
        return "<exception str() failed>"


class ProgramError(Exception):
    """Base of the errors that name the user's mistake; the CLI prints them as one line."""


class BuildError(ProgramError):
    """A program that cannot be built into a graph: names the SQ and the source line."""

    def __init__(
        self,
        message: str,
        sq: Optional[str] = None,
        filename: Optional[str] = None,
        line: Optional[int] = None,
    ) -> None:
        self.message = message
        self.sq = sq
        self.filename = filename
        self.line = line
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.filename:
            where = "%s:%s: " % (os.path.relpath(self.filename), self.line or "?")
        who = "SQ '%s': " % self.sq if self.sq else ""
        return where + who + self.message


class GraphFileError(ProgramError):
    """A graph file (or graph document) that does not validate: names the SQ and the field."""

    def __init__(self, message: str, source: str = "graph", sq: Optional[str] = None, field: Optional[str] = None):
        self.message = message
        self.source = source
        self.sq = sq
        self.field = field
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = [self.source]
        if self.sq:
            parts.append("SQ '%s'" % self.sq)
        if self.field:
            parts.append("field '%s'" % self.field)
        return "%s: %s" % (": ".join(parts), self.message)

"""Errors a user sees when a program does not build or a graph file does not load."""
from __future__ import annotations

import os
from typing import Optional


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

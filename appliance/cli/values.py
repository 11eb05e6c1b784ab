"""Command-line values, checked where argparse reads them: one line naming the option.

Each function is an argparse ``type=``: a bad value raises
``ArgumentTypeError``, which the parser reports as ``argument --option: why``
and exit status 2, never a traceback further in.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
from typing import IO, Callable, Iterator, Optional

from appliance.cli.errors import UsageError

#: Longest simulated run (about three years): beyond, a run cannot end in a human lifetime.
MAX_SECONDS = 1e8
#: Longest delay a time option takes (a minute).
MAX_DELAY_MS = 60_000.0


def bounded(low: float, high: float, range_text: str) -> Callable[[str], float]:
    """A number in ``[low, high]`` (so never inf or NaN); ``range_text`` says the range to people."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not low <= value <= high:  # NaN compares false: refused here too
            raise argparse.ArgumentTypeError("must be %s, got %r" % (range_text, text))
        return value

    parse.__name__ = "number"  # argparse names the type in its own messages
    return parse


seconds = bounded(1e-6, MAX_SECONDS, "a number of seconds from 0.000001 (1 µs) to %d" % MAX_SECONDS)
delay_ms = bounded(0.0, MAX_DELAY_MS, "a number of milliseconds from 0 to %d" % MAX_DELAY_MS)
probability = bounded(0.0, 1.0, "a probability from 0 to 1")


def file_name(text: str, what: str = "file name") -> str:
    """A file's name: an empty one is refused here, not read as a flag not given, and so
    is one that is not UTF-8 (its bytes reach Python as lone surrogates), which could be
    neither printed nor sent (a program's file name travels in its deployment)."""
    if not text:
        raise argparse.ArgumentTypeError("is empty: give a %s" % what)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise argparse.ArgumentTypeError("is not UTF-8 text (%s): rename the file"
                                         % text.encode("utf-8", "surrogateescape").decode("ascii", "replace")
                                         ) from None
    return text


def directory_name(text: str) -> str:
    """A directory's name, checked as a file's is."""
    return file_name(text, "directory")


def counted(what: str, low: int, high: int) -> Callable[[str], int]:
    """A whole number of ``what`` in ``[low, high]``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError("must be a whole number of %s, got %r" % (what, text)) from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError("must be from %d to %d %s, got %d" % (low, high, what, value))
        return value

    parse.__name__ = what
    return parse


class OutputFile:
    """A file a command writes its results to, opened before any work is done (a bad
    path costs nothing). Writing it can fail later too (a full disk, a file that takes
    no writes): that ends the command with the same one line naming the flag and the
    path, never a traceback."""

    def __init__(self, path: str, option: str) -> None:
        self.path, self.option = path, option
        if os.path.isdir(path):
            raise UsageError("%s %s: is a directory; give a file name" % (option, path))
        try:
            self._file: IO[str] = open(path, "w", encoding="utf-8")  # noqa: SIM115 -- closed by close()
        except OSError as exc:
            raise self._cannot_write(exc) from None

    def _cannot_write(self, exc: OSError) -> UsageError:
        return UsageError("%s %s: cannot write: %s" % (self.option, self.path, exc.strerror or exc))

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            raise self._cannot_write(exc) from None

    def write(self, text: str) -> None:
        with self._writing():
            self._file.write(text)

    def flush(self) -> None:
        with self._writing():
            self._file.flush()

    def close(self) -> None:
        """Flushes what is buffered; the file is closed even when that fails."""
        with self._writing():
            self._file.close()

    def __enter__(self) -> OutputFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def output_or_nowhere(path: Optional[str], option: str) -> OutputFile:
    """The output file a flag names, or the null device when the flag was not given
    (an empty name is a bad value, not an absent flag)."""
    return OutputFile(os.devnull if path is None else path, option)

"""How a process that did not create a queue finds it: the segment's name and the doorbells' descriptors."""
from __future__ import annotations

from multiprocessing import reduction
from typing import Any, NamedTuple, Tuple


class QueueHandle(NamedTuple):
    """Attach with ``ShmQueue.attach(handle)``.

    Pickles with its descriptors: ``multiprocessing`` duplicates them into the
    child it is spawning (or sends them over a socket otherwise). For fork+exec,
    pass :meth:`encode` on the command line and ``pass_fds=handle.fds`` to
    ``subprocess``; the child calls ``ShmQueue.attach(QueueHandle.decode(text))``.
    """

    segment: str
    doorbell: str  # "eventfd" or "pipe"
    fds: Tuple[int, ...]  # the consumer's doorbell, then the producers'

    def encode(self) -> str:
        return "%s %s %s" % (self.segment, self.doorbell, ",".join(str(fd) for fd in self.fds))

    @classmethod
    def decode(cls, text: str) -> QueueHandle:
        segment, doorbell, fds = text.split(" ")
        return cls(segment, doorbell, tuple(int(fd) for fd in fds.split(",")))

    def __reduce__(self) -> Tuple[Any, Tuple[Any, ...]]:
        return _rebuild, (self.segment, self.doorbell, tuple(reduction.DupFd(fd) for fd in self.fds))


def _rebuild(segment: str, doorbell: str, fds: Tuple[Any, ...]) -> QueueHandle:
    return QueueHandle(segment, doorbell, tuple(fd.detach() for fd in fds))

"""What the child processes of the queue tests run (importable, so "spawn" children can run it too)."""
from __future__ import annotations

import os
import struct
import sys

from appliance.ipc.shmqueue import QueueFull, QueueHandle, ShmQueue

STAMP = struct.Struct("=II")  # producer, index
BOUND = 20.0  # seconds: a failure bound, never a pace


def payload(producer: int, index: int) -> bytes:
    """Message ``index`` of ``producer``: its stamp and a filler whose size varies (0 to 1500 bytes)."""
    return STAMP.pack(producer, index) + bytes([index % 251]) * (index * 37 % 1501)


def produce(queue: ShmQueue, producer: int, count: int) -> None:
    """Put ``count`` messages; every seventh is a control message, the rest data; some in batches."""
    index = 0
    while index < count:
        if index % 50 == 10:
            batch = [payload(producer, i) for i in range(index, min(index + 5, count))]
            queue.put_many(batch)
            index += len(batch)
        else:
            queue.put(payload(producer, index), control=index % 7 == 0)
            index += 1


def put_when_told(queue: ShmQueue, go, message: bytes) -> None:
    if not go.wait(BOUND):
        raise SystemExit("never told to put")
    queue.put(message)


def wait_for_room(queue: ShmQueue, waiting, report) -> None:
    """A control put that times out, then one that waits (telling the parent when it blocks) and succeeds."""
    try:
        queue.put(b"too soon", control=True, timeout=0.1)
    except QueueFull as full:
        report.put(str(full))
    space_wait = queue._space.wait

    def wait_and_tell(timeout):
        waiting.set()
        return space_wait(timeout)

    queue._space.wait = wait_and_tell
    queue.put(b"waited", control=True, timeout=BOUND)
    report.put("put")


def hold_the_lock(queue: ShmQueue, holding, never) -> None:
    """Take the queue's lock, scribble over the free part of the data ring as a half-copied record would,
    and wait there to be killed."""
    queue._lock()
    queue._view[queue._dbase:queue._dbase + 64] = b"\xff" * 64
    holding.set()
    never.wait(BOUND * 3)


def attach_put_and_exit(queue: ShmQueue) -> None:
    """Use the queue, then exit having started no helper process (no resource tracker that could unlink it)."""
    queue.put(b"child was here")
    queue.close()
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return
    raise SystemExit("this child started a process of its own")


def main(argv: list) -> None:
    """fork+exec children: ``python -m tests.ipc.workers HANDLE``."""
    attach_put_and_exit(ShmQueue.attach(QueueHandle.decode(argv[1])))


if __name__ == "__main__":
    main(sys.argv)

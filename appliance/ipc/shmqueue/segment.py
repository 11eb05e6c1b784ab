"""Named shared-memory segments: their names, their mappings, their removal.

A segment is a file in ``/dev/shm`` (POSIX shared memory on Linux). Its name
says who made it: ``appliance-<pid>-<ensemble>-<queue>``, with the pid of the
creating process. The pid comes first and queue names hold no ``-``, so a name
parses back unambiguously although ensemble names may contain ``-``
("runtime-manager"). After a ``kill -9`` of a whole process tree nobody is left
to unlink the segments; :func:`remove_orphans`, run by the next start, removes
those whose creator no longer runs, and only those. A pid alone does not say
so: the kernel hands pids out again (the next start of a service in a
container often gets its predecessor's), so a segment also holds its
creator's start time, and a live process of that pid that started at another
time is not its creator. Nor is a zombie of that pid (it died; its parent has
not reaped it yet), although ``kill(pid, 0)`` still finds it.

Only the creator goes through :class:`multiprocessing.shared_memory.SharedMemory`:
it registers the segment with the creator's resource tracker, a safety net
that unlinks it if the creator dies without doing so while the tracker lives.
Attachers map the file themselves and never touch the resource tracker. Before
Python 3.13 an attaching ``SharedMemory`` registers the segment too; a child
with its own tracker (one started by fork+exec) then unlinks it when the child
exits, under the feet of the others, and a child sharing the creator's tracker
that unregisters instead removes the creator's entry. Mapping the file directly
is what ``track=False`` does on 3.13, on every version.
"""
from __future__ import annotations

import contextlib
import mmap
import os
import re
import struct
import weakref
from multiprocessing import shared_memory
from typing import List, NamedTuple, Optional

from appliance.ipc.shmqueue import layout

SHM_DIR = "/dev/shm"
PREFIX = "appliance-"
_ENSEMBLE = re.compile(r"[A-Za-z0-9_.-]{1,64}\Z")
_QUEUE = re.compile(r"[A-Za-z0-9_.]{1,32}\Z")
_NAME = re.compile(re.escape(PREFIX) + r"([0-9]+)-([A-Za-z0-9_.-]{1,64})-([A-Za-z0-9_.]{1,32})\Z")


class SegmentName(NamedTuple):
    pid: int
    ensemble: str
    queue: str


def segment_name(ensemble: str, queue: str, pid: Optional[int] = None) -> str:
    """The segment name for queue ``queue`` of ``ensemble``, created by ``pid`` (this process)."""
    if not _ENSEMBLE.match(ensemble):
        raise ValueError("ensemble name %r: letters, digits, '_', '.', '-'; at most 64" % (ensemble,))
    if not _QUEUE.match(queue):
        raise ValueError("queue name %r: letters, digits, '_', '.' (no '-'); at most 32" % (queue,))
    return "%s%d-%s-%s" % (PREFIX, os.getpid() if pid is None else pid, ensemble, queue)


def parse_segment_name(name: str) -> Optional[SegmentName]:
    """``SegmentName(pid, ensemble, queue)`` of one of our segment names, else None."""
    match = _NAME.match(name)
    return SegmentName(int(match.group(1)), match.group(2), match.group(3)) if match else None


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (a zombie counts until it is reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, belongs to another user
        return True
    return True


def _stat(pid: int) -> Optional[List[bytes]]:
    """The fields of /proc/PID/stat from field 3 (state) on (None: no such process, or unreadable)."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()  # after the command, which may hold anything
    except (OSError, IndexError):
        return None
    return fields if len(fields) > 19 else None


def start_time(pid: int) -> Optional[int]:
    """When process ``pid`` started, in clock ticks since boot (None: no such process, or unreadable)."""
    fields = _stat(pid)
    try:
        return int(fields[19]) if fields is not None else None  # field 22 of stat(5)
    except ValueError:
        return None


def is_dead(pid: int) -> bool:
    """Whether process ``pid`` has exited and only waits to be reaped (state Z, zombie, or X)."""
    fields = _stat(pid)
    return fields is not None and fields[0] in (b"Z", b"X")


def creator_running(path: str, pid: int) -> bool:
    """Whether the process that made the segment at ``path`` (named with ``pid``) still runs.

    A zombie does not: it has exited (killed with its tree, say) and will never unlink
    its segments, even if its parent, which has not reaped it yet, lives on."""
    if not 0 < pid < 1 << 31 or not pid_alive(pid) or is_dead(pid):
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        try:
            recorded = struct.unpack("=Q", os.pread(fd, 8, layout.CREATOR_AT).ljust(8, b"\0"))[0]
        finally:
            os.close(fd)
    except OSError:  # not a segment we can read: leave it be
        return True
    return recorded == 0 or recorded == start_time(pid)


def remove_orphans(ensemble: Optional[str] = None) -> List[str]:
    """Unlink the segments whose creating process is gone; return their names.

    Run it before creating an ensemble's queues. With ``ensemble``, only that
    ensemble's segments are considered. A segment whose creator still runs is
    never touched, whoever runs this; neither is anything in /dev/shm that only
    looks like one of ours (a directory, another user's file).
    """
    removed = []
    for name in sorted(os.listdir(SHM_DIR)):
        parsed = parse_segment_name(name)
        if parsed is None or (ensemble is not None and parsed.ensemble != ensemble):
            continue
        path = os.path.join(SHM_DIR, name)
        if creator_running(path, parsed.pid):
            continue
        try:
            os.unlink(path)
        except OSError:  # another cleaner was first; another user's; a directory: not ours to remove
            continue
        removed.append(name)
    return removed


def _unlink(shm: shared_memory.SharedMemory, owner: int) -> None:
    # Also runs at interpreter exit (weakref.finalize): only in the creating
    # process, never in a forked child that inherited the object.
    if os.getpid() != owner:
        return
    with contextlib.suppress(FileNotFoundError):  # removed behind our back (rm, systemd RemoveIPC=)
        shm.unlink()


class Segment:
    """This process's mapping of one segment, and its own open file description.

    The file descriptor is what :mod:`fcntl.flock` locks: the kernel keys an
    flock on the open file description, so every process needs its own (see
    :meth:`reopen_after_fork`), and it releases the lock when the process dies.
    """

    def __init__(self, name: str, fd: int, owner: Optional[shared_memory.SharedMemory] = None) -> None:
        self.name = name
        self.fd = fd
        self.size = os.fstat(fd).st_size
        self.map = mmap.mmap(fd, self.size)
        self.view = memoryview(self.map)
        self._unlink = weakref.finalize(self, _unlink, owner, os.getpid()) if owner is not None else None

    @classmethod
    def create(cls, name: str, size: int) -> Segment:
        shm = shared_memory.SharedMemory(name, create=True, size=size)
        shm.close()  # its mapping; the name stays until unlink
        try:
            fd = os.open(os.path.join(SHM_DIR, name), os.O_RDWR | os.O_CLOEXEC)
        except BaseException:
            shm.unlink()
            raise
        try:
            return cls(name, fd, owner=shm)
        except BaseException:
            os.close(fd)
            shm.unlink()
            raise

    @classmethod
    def attach(cls, name: str) -> Segment:
        fd = os.open(os.path.join(SHM_DIR, name), os.O_RDWR | os.O_CLOEXEC)
        try:
            return cls(name, fd)
        except BaseException:  # an empty file cannot be mapped
            os.close(fd)
            raise

    def reopen_after_fork(self) -> None:
        """Give a forked child an open file description of its own, hence a lock of its own.

        The mapping too: mmap keeps a duplicate of the descriptor it was made
        from, and an inherited duplicate would keep the parent's description,
        and any lock the parent held on it, alive after the parent died.
        Through ``/proc/self/fd`` so that it works even after the name was unlinked.
        """
        fd = os.open("/proc/self/fd/%d" % self.fd, os.O_RDWR | os.O_CLOEXEC)
        self.view.release()
        self.map.close()
        os.close(self.fd)
        self.fd = fd
        self.map = mmap.mmap(fd, self.size)
        self.view = memoryview(self.map)

    def close(self) -> None:
        """Unmap and close; the creator also unlinks the name."""
        self.view.release()
        self.map.close()
        os.close(self.fd)
        if self._unlink is not None:
            self._unlink()

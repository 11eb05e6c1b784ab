"""A bounded multi-producer, single-consumer queue of byte messages in shared memory.

One queue per consuming process of an ensemble; any process puts, one gets.
The queue moves bytes (the device shell encodes ``Message``s with
``appliance.ipc.codec``). docs/ipc.md has the whole design; the choices:

Two rings. Control (and system) messages and data messages (tokens) have a
ring each, in one segment (``layout.py``), so tokens never take a control
message's room. Every message takes the next number of one sequence and the
consumer takes the lower of the two rings' oldest numbers: messages leave in
the order they were put, exactly once. A message up to its ring's capacity
less 16 bytes is carried in one record (the 2 MiB defaults carry a 1 MiB deploy
message); a larger one is refused, before anything is queued, with
:class:`MessageTooLarge` naming the queue, its size and the limit.

Publication, and why it holds on ARM64. Every access to the header and the
rings is made holding the queue's lock, an ``flock`` on the segment's file.
Taking and releasing it are kernel lock operations, which are barriers: what a
producer stored before unlocking is visible to whoever locks next, on x86 and on
ARM64 (Jetson), whose plain ``mmap``/``memoryview`` stores are otherwise
unordered. A lock-free ring would need barriers or atomics that pure Python
does not have, and its waiting flag a store-load fence even on x86. Within the
lock a put writes the payload and then commits by the ring's head; an eviction
commits the tail before the freed bytes are overwritten: whoever dies at any
point leaves a message whole or absent. The consumer checks every position and
length word against what the ring holds and raises :class:`QueueCorrupt`
naming the queue rather than read a record that cannot be there.

Lock-holder death. The kernel drops an flock when the holder's descriptors
close, which they do when it dies: a producer killed inside ``put`` hangs
nobody and the queue stays usable. (A *stopped* holder stalls the others until
it continues; the lock is held for one copy of one message.) An flock belongs to
an open file description, so each process opens its own: forked children get
theirs, and a mapping of their own, at fork (:func:`_after_fork_in_child`);
threads of one process are serialised by a thread lock.

Doorbells. The consumer sets a *waiting* word, under the lock, when it finds
the queue empty and is about to block; a producer that sees it clears it and
rings the consumer's doorbell (``fileno()``: an eventfd, or a pipe before
Python 3.10) once. Both under the lock: no put goes unnoticed, and while the
consumer is busy producers make no system call for it.

Full queue. A data message never waits: the oldest data messages are dropped
to make room, and counted. A control message is never dropped: its producer
waits for room on a counting doorbell the consumer rings when it frees control
room, up to the queue's control timeout (or the call's), then raises
:class:`QueueFull` naming the queue. This keeps the ensemble's processes, which
feed each other in a cycle (input tokens -> execute -> network -> input
tokens), from deadlocking under overload: tokens block nobody, so a process
blocks only on a control ring full of control messages, which its consumer,
never blocked by tokens, drains; should that fail, the bounded wait turns the
deadlock into an error that names the queue.

Processes. The supervisor creates the queues; the creator unlinks a segment on
``close``, on leaving ``with``, and at interpreter exit (so an exception, or
SIGTERM turned into ``SystemExit``, unlinks too). Others attach by
:class:`QueueHandle` (a ``ShmQueue`` pickles as one, for "spawn" children),
inherit the object ("fork"), or decode a handle passed as text with its
descriptors (fork+exec). Attaching never involves a resource tracker
(``segment.py`` says why).
"""
from __future__ import annotations

import contextlib
import os
import struct
import threading
import time
import weakref
from typing import Any, List, NamedTuple, Optional, Sequence, Tuple

from appliance.ipc.shmqueue import layout
from appliance.ipc.shmqueue.doorbell import EVENTFD, Doorbell, default_kind
from appliance.ipc.shmqueue.errors import MessageTooLarge, QueueClosed, QueueCorrupt, QueueEmpty, QueueError, QueueFull
from appliance.ipc.shmqueue.handle import QueueHandle
from appliance.ipc.shmqueue.layout import (
    HEADER,
    LOCK_EX,
    LOCK_UN,
    RINGS_AT,
    STATE_AT,
    flock,
    read_consumer,
    read_producer,
    read_record,
    write_consumer,
    write_producer,
    write_record,
)
from appliance.ipc.shmqueue.segment import Segment, parse_segment_name, segment_name, start_time

MIB = 1 << 20
DEFAULT_CONTROL_BYTES = 2 * MIB
DEFAULT_DATA_BYTES = 2 * MIB
DEFAULT_CONTROL_TIMEOUT = 5.0
DEFAULT_BATCH = 256
BATCH_BYTES = 256 * 1024  # get_many stops after this much payload: producers never wait long for the lock
#: More producers than could ever wait on one queue (each is a thread): a larger count is corruption.
MAX_WAITERS = 1 << 20
#: A producer waiting for control room looks again after this long even if no doorbell rang for it.
RECHECK_SECONDS = 0.05


class QueueStats(NamedTuple):
    """Counters of one queue, as every process attached to it sees them (for ``status``)."""

    name: str
    put: int  # messages queued, both classes
    control: int  # of which control (and system) messages
    got: int  # messages the consumer took
    dropped: int  # data messages dropped, oldest first, to make room
    dropped_items: int  # the items those messages held (what their producers said)
    waits: int  # control puts that found no room and waited
    timeouts: int  # control puts that waited in vain (QueueFull)
    doorbells: int  # times a producer woke the consumer
    depth: int  # messages queued now
    depth_bytes: int  # ring bytes in use now (records with their headers)
    high_water: int  # most messages ever queued at once
    high_water_bytes: int
    consumer_waiting: bool
    control_bytes: int  # capacity of the control ring
    data_bytes: int  # capacity of the data ring


class ShmQueue:
    """One queue as seen from one process. Create with :meth:`create` (the
    supervisor), attach with :meth:`attach` or by pickling (everyone else).

    ``put``/``put_many`` from any process; ``get``/``get_many``/``arm`` from the
    one consuming process. ``name`` is ``"<ensemble>/<queue>"``, as errors say it.
    """

    def __init__(self, segment: Segment, items: Doorbell, space: Doorbell) -> None:
        self._seg = segment
        self._view = segment.view  # struct access and writes: fastest through a memoryview
        self._map = segment.map  # reads: slicing the mmap makes the bytes in one copy
        self._items = items  # rung by producers; the consumer waits on it
        self._space = space  # rung by the consumer; producers waiting for control room wait on it
        parsed = parse_segment_name(segment.name)
        self.name = "%s/%s" % (parsed.ensemble, parsed.queue) if parsed else segment.name
        if segment.size < RINGS_AT:
            raise QueueCorrupt("queue '%s': segment %s is %d bytes, too small for a queue"
                               % (self.name, segment.name, segment.size))
        magic, self._ccap, self._dcap, timeout_us = layout.META.unpack_from(self._view, 0)
        rings = RINGS_AT + self._ccap + self._dcap
        if magic != layout.MAGIC or self._ccap % 16 or self._dcap % 16 or rings > segment.size:
            raise QueueCorrupt("queue '%s': segment %s does not hold a queue of this version"
                               % (self.name, segment.name))
        self._dbase = RINGS_AT + self._ccap
        self.control_timeout = timeout_us / 1e6
        self._fd = segment.fd  # the lock's open file description, this process's own
        self._thread_lock = threading.Lock()
        self._armed = False  # we set the waiting word and have not cleared our doorbell since
        self._closed = False
        #: Data messages the queue had dropped when the consumer last took from it (or looked,
        #: finding it empty): read under the lock ``get_many`` takes anyway, so a consumer
        #: counting its losses after every batch pays no lock (no ``stats()``) for it.
        self.dropped = 0
        #: The items those messages held, read with it.
        self.dropped_items = 0
        _OPEN.add(self)

    # -- life cycle ------------------------------------------------------------

    @classmethod
    def create(cls, ensemble: str, queue: str, *, control_bytes: int = DEFAULT_CONTROL_BYTES,
               data_bytes: int = DEFAULT_DATA_BYTES, control_timeout: float = DEFAULT_CONTROL_TIMEOUT,
               doorbell: Optional[str] = None) -> ShmQueue:
        """Create queue ``queue`` of ``ensemble`` in a new segment; this process owns and unlinks it.

        ``control_bytes``/``data_bytes``: ring capacities (rounded up to 16;
        the largest message of a class is its ring's capacity less 16).
        ``control_timeout``: how long a control put waits for room by default.
        ``doorbell``: "eventfd" or "pipe"; default eventfd where Python has it.
        """
        ccap, dcap = (max(64, (size + 15) & ~15) for size in (control_bytes, data_bytes))
        if max(ccap, dcap) > layout.MAX_RING:
            raise ValueError("a ring holds 4 GiB at most, not %d bytes" % max(ccap, dcap))
        if not control_timeout > 0:
            raise ValueError("control_timeout must be positive, not %r" % (control_timeout,))
        name = segment_name(ensemble, queue)
        kind = doorbell or default_kind()
        items = Doorbell.create(kind, counting=False)
        space = Doorbell.create(kind, counting=True)
        try:
            try:
                seg = Segment.create(name, RINGS_AT + ccap + dcap)
            except FileExistsError:
                raise QueueError("queue '%s/%s': segment %s already exists: this process created that queue "
                                 "already" % (ensemble, queue, name)) from None
            layout.META.pack_into(seg.view, 0, layout.MAGIC, ccap, dcap, int(control_timeout * 1e6))
            layout.WORD.pack_into(seg.view, layout.CREATOR_AT, start_time(os.getpid()) or 0)
            return cls(seg, items, space)
        except BaseException:
            items.close()
            space.close()
            raise

    @classmethod
    def attach(cls, handle: QueueHandle) -> ShmQueue:
        """Attach to a queue another process created; closing it later does not unlink it."""
        width = 1 if handle.doorbell == EVENTFD else 2
        if len(handle.fds) != 2 * width:
            raise ValueError("queue handle %r: a %s doorbell pair needs %d descriptors"
                             % (handle, handle.doorbell, 2 * width))
        # The handle's descriptors are the queue's from here: closed with it, or now if it cannot be.
        try:
            seg = Segment.attach(handle.segment)
        except FileNotFoundError:
            _close_all(handle.fds)
            parsed = parse_segment_name(handle.segment)
            name = "%s/%s" % (parsed.ensemble, parsed.queue) if parsed else handle.segment
            raise QueueError("queue '%s': its segment %s does not exist: its creator closed it, or died and it was "
                             "removed" % (name, handle.segment)) from None
        except BaseException:
            _close_all(handle.fds)
            raise
        try:
            items, space = handle.fds[:width], handle.fds[width:]
            return cls(seg, Doorbell(handle.doorbell, items), Doorbell(handle.doorbell, space))
        except BaseException:
            seg.close()
            _close_all(handle.fds)
            raise

    def handle(self) -> QueueHandle:
        return QueueHandle(self._seg.name, self._items.kind, self._items.fds + self._space.fds)

    @property
    def segment(self) -> str:
        """The segment's name in /dev/shm."""
        return self._seg.name

    def __reduce__(self) -> Tuple[Any, Tuple[Any, ...]]:
        return ShmQueue.attach, (self.handle(),)

    def close(self) -> None:
        """Release this process's mapping and descriptors; in the creator, also unlink the segment."""
        with self._thread_lock:  # not under a put or get of another thread (one that waits lets go)
            if self._closed:
                return
            self._closed = True
            _OPEN.discard(self)
            self._items.close()
            self._space.close()
            self._seg.close()

    def __enter__(self) -> ShmQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _after_fork(self) -> None:
        try:
            self._seg.reopen_after_fork()
        except (OSError, BufferError):  # without a lock of its own the child must not touch the queue
            self._closed = True
            return
        self._fd, self._map, self._view = self._seg.fd, self._seg.map, self._seg.view
        self._thread_lock = threading.Lock()

    # -- the lock --------------------------------------------------------------

    def _lock(self) -> None:
        if self._closed:
            raise self._closed_error()
        self._thread_lock.acquire()
        try:
            flock(self._fd, LOCK_EX)
        except BaseException:
            self._thread_lock.release()
            raise

    def _unlock(self) -> None:
        flock(self._fd, LOCK_UN)
        self._thread_lock.release()

    def _closed_error(self) -> QueueClosed:
        return QueueClosed("queue '%s' is closed in this process" % self.name)

    # -- producers -------------------------------------------------------------

    def put(self, data: bytes, control: bool = False, timeout: Optional[float] = None, items: int = 1) -> None:
        """Queue one message. ``control=True`` for control- and system-layer messages.
        ``items``: what the message holds (a batch of tokens), counted if it is dropped.

        Data: never waits; drops the oldest data messages if it must. Control:
        waits for room up to ``timeout`` seconds (None: the queue's control
        timeout), then raises :class:`QueueFull`. Raises :class:`MessageTooLarge`
        for a message its ring can never hold.
        """
        if (len(data) + 31) & -16 > (self._ccap if control else self._dcap):
            raise self._too_large(len(data), control)
        if not 0 < items < 1 << 32:
            raise ValueError("items must be from 1 to 2**32-1, not %r" % (items,))
        with self._thread_lock:  # the lock, inlined: this runs for every message
            if self._closed:
                raise self._closed_error()
            flock(self._fd, LOCK_EX)
            try:
                rung = self._append(data, control, items)
                if rung is None:
                    rung = self._append_after_room(data, timeout, items)
            except struct.error:  # a header word beyond 64 bits: nothing a queue writes
                raise self._out_of_range() from None
            finally:
                if not self._closed:  # closed while it waited: the descriptor, and its lock, are gone
                    flock(self._fd, LOCK_UN)
        if rung:
            self._items.ring()

    def put_many(self, messages: Sequence[bytes], control: bool = False, timeout: Optional[float] = None) -> None:
        """Queue several messages of one class under one lock, in order; as :meth:`put`.

        Sizes are checked first: a batch with a message too large queues nothing.
        A control batch that times out has queued the messages before the one that waited.
        """
        cap = self._ccap if control else self._dcap
        for data in messages:
            if (len(data) + 31) & -16 > cap:
                raise self._too_large(len(data), control)
        ring = 0
        self._lock()
        try:
            for data in messages:
                rung = self._append(data, control, 1)
                if rung is None:
                    if ring:  # the consumer must run to make room: wake it before waiting
                        self._items.ring()
                        ring = 0
                    rung = self._append_after_room(data, timeout, 1)
                ring |= rung
        except struct.error:
            raise self._out_of_range() from None
        finally:
            if not self._closed:
                flock(self._fd, LOCK_UN)
            self._thread_lock.release()
        if ring:
            self._items.ring()

    def _too_large(self, length: int, control: bool) -> MessageTooLarge:
        return MessageTooLarge("queue '%s': a %s message of %d bytes is larger than its ring can hold (%d bytes at "
                               "most)" % (self.name, "control" if control else "data", length,
                                          (self._ccap if control else self._dcap) - HEADER))

    def _append(self, data: bytes, control: bool, items: int) -> Optional[int]:
        """Write one record (lock held). Returns 1 if the consumer must be woken, 0 if not,
        None for a control message that must wait for room (nothing written)."""
        buf = self._view
        length = len(data)
        size = (length + 31) & -16
        seq, got, dropped, waiting, chead, ctail, dhead, dtail, high, high_bytes, control_in, doorbells = \
            read_producer(buf, STATE_AT)
        if control:
            cap = self._ccap
            free = cap - chead + ctail
            if size > free or (chead != ctail and not self._beside_waiters(size, free)):
                return None
            base = RINGS_AT
            offset = chead % cap
            chead += size
            control_in += 1
        else:
            cap = self._dcap
            if not dtail <= dhead <= dtail + cap:  # else evicting could walk for ever (the writes stay in the ring)
                self._check_positions(chead, ctail, dhead, dtail)
            if size > cap - dhead + dtail:
                dtail, dropped = self._evict(size, dhead, dtail, dropped)
            base = self._dbase
            offset = dhead % cap
            dhead += size
        write_record(buf, base + offset, length, items, seq)
        start = offset + HEADER
        if start == cap:
            start = 0
        end = start + length
        if end <= cap:
            buf[base + start:base + end] = data
        else:  # the payload wraps around the end of the ring
            view = memoryview(data)
            buf[base + start:base + cap] = view[:cap - start]
            buf[base:base + end - cap] = view[cap - start:]
        seq += 1
        if seq - got - dropped > high:
            high = seq - got - dropped
        if chead - ctail + dhead - dtail > high_bytes:
            high_bytes = chead - ctail + dhead - dtail
        doorbells += waiting
        # The commit: the new head publishes the record; the waiting word is cleared, we ring.
        write_producer(buf, STATE_AT, seq, got, dropped, 0, chead, ctail, dhead, dtail, high, high_bytes,
                        control_in, doorbells)
        return waiting

    def _evict(self, size: int, head: int, tail: int, dropped: int) -> Tuple[int, int]:
        """Drop the oldest data records until ``size`` bytes are free (lock held); commit the tail."""
        buf, cap, base = self._view, self._dcap, self._dbase
        lost = layout.WORD.unpack_from(buf, layout.DROPPED_ITEMS_AT)[0]
        while size > cap - (head - tail):
            length, items = read_record(buf, base + tail % cap)[:2]
            if layout.record_size(length) > head - tail:
                raise self._corrupt("data", length, head - tail)
            tail += layout.record_size(length)
            dropped += 1
            lost += items
        # Before the freed bytes are overwritten: a producer killed mid-copy must not leave a torn record.
        layout.WORD.pack_into(buf, layout.DATA_TAIL_AT, tail)
        layout.WORD.pack_into(buf, layout.DROPPED_AT, dropped)
        layout.WORD.pack_into(buf, layout.DROPPED_ITEMS_AT, lost)
        return tail, dropped

    def _append_after_room(self, data: bytes, timeout: Optional[float], items: int) -> int:
        """Wait until the control ring has room for ``data``, then append it (lock held on entry and return).

        A waiter counts itself in the waiters word; the consumer, freeing room,
        zeroes it, bumps the epoch and rings the counting doorbell once per
        waiter. A waiter whose epoch moved on is no longer counted, and counts
        itself again if the room went to another producer. A token nobody takes
        (its waiter timed out) costs a later waiter one extra look. The tokens are
        everyone's: one counted in the next epoch may take a token rung for an
        earlier waiter, which then sleeps uncounted; so a waiter also looks again
        every RECHECK_SECONDS, which bounds what such a theft costs it. (Only a
        control ring full of control messages gets here: never the token path.)
        """
        buf = self._view
        wait = self.control_timeout if timeout is None else timeout
        deadline = time.monotonic() + wait
        size = (len(data) + 31) & -16
        layout.bump(buf, layout.WAITS_AT)
        waiters, mine = self._waiters()
        self._count_in(waiters, mine, size)
        while True:
            flock(self._fd, LOCK_UN)
            self._thread_lock.release()
            try:
                remaining = deadline - time.monotonic()
                if remaining > 0 and self._space.wait(min(remaining, RECHECK_SECONDS)):
                    self._space.take()
            finally:
                self._thread_lock.acquire()
                if self._closed:  # by another thread of this process: the caller leaves unlocked
                    raise self._closed_error()
                flock(self._fd, LOCK_EX)
            chead, ctail = layout.RING_POSITIONS.unpack_from(buf, layout.POSITIONS_AT)[:2]
            room = self._fits(size, chead, ctail)
            waiters, epoch = self._waiters()
            if room or time.monotonic() >= deadline:
                if epoch == mine and waiters:  # still counted: leave (the last one out frees what it held)
                    layout.WAITERS.pack_into(buf, layout.WAITERS_AT, waiters - 1, epoch)
                    if waiters == 1:
                        layout.WORD.pack_into(buf, layout.NEED_AT, 0)
                if room:
                    return self._append(data, True, items) or 0
                layout.bump(buf, layout.TIMEOUTS_AT)
                raise QueueFull("queue '%s': control message of %d bytes waited %.1f s for room; the control ring "
                                "has %d of %d bytes in use: is its consumer running?"
                                % (self.name, len(data), wait, chead - ctail, self._ccap))
            if epoch != mine:
                self._count_in(waiters, epoch, size)
                mine = epoch

    def _fits(self, size: int, chead: int, ctail: int) -> bool:
        """Whether a control record of ``size`` bytes may go in now (lock held).

        Room is not enough: a record smaller than the largest one waiting must leave
        that one its room, or a stream of small ones could take every byte the consumer
        frees ahead of a large one, which would wait in vain with its consumer running.
        An empty ring takes anything that fits: a waiter that counted itself and was
        killed while it waited holds nobody back, and the next take that frees room
        forgets what it asked for (the consumer zeroes it with the waiters).
        """
        free = self._ccap - (chead - ctail)
        if size > free or chead == ctail:
            return size <= free
        return self._beside_waiters(size, free)

    def _beside_waiters(self, size: int, free: int) -> bool:
        """Whether ``size`` bytes leave the largest waiting control message its room (lock held)."""
        need = layout.WORD.unpack_from(self._view, layout.NEED_AT)[0]
        return size >= need or size + need <= free

    def _count_in(self, waiters: int, epoch: int, size: int) -> None:
        """Count this producer among those waiting in ``epoch``, and the room it needs."""
        buf = self._view
        layout.WAITERS.pack_into(buf, layout.WAITERS_AT, waiters + 1, epoch)
        if size > layout.WORD.unpack_from(buf, layout.NEED_AT)[0]:
            layout.WORD.pack_into(buf, layout.NEED_AT, size)

    # -- the consumer ----------------------------------------------------------

    def fileno(self) -> int:
        """The consumer's doorbell, for a selector; readable after :meth:`arm` once a message is put."""
        return self._items.fileno()

    def arm(self) -> bool:
        """Before blocking in a selector: True if the queue is empty and the doorbell armed.

        False means messages are waiting: take them (:meth:`get_many`) rather
        than block. After the selector returns, :meth:`get_many` disarms.
        """
        self._lock()
        try:
            chead, ctail, dhead, dtail = layout.RING_POSITIONS.unpack_from(self._view, layout.POSITIONS_AT)
            empty = chead == ctail and dhead == dtail
            if empty:
                layout.WORD.pack_into(self._view, layout.WAITING_AT, 1)
        finally:
            self._unlock()
        self._armed = self._armed or empty
        return empty

    def get(self, timeout: Optional[float] = None) -> bytes:
        """The oldest message; waits up to ``timeout`` seconds (None: no limit, 0: no wait).

        Raises :class:`QueueEmpty` when nothing came in time.
        """
        got = self.get_many(1, timeout)
        if not got:
            raise QueueEmpty("queue '%s': no message within %s s" % (self.name, timeout))
        return got[0]

    def get_many(self, max_messages: int = DEFAULT_BATCH, timeout: Optional[float] = 0) -> List[bytes]:
        """Up to ``max_messages`` messages, oldest first, under one lock (fewer once they
        hold :data:`BATCH_BYTES`, but at least one).

        Waits up to ``timeout`` seconds for the first (default 0: returns at
        once, perhaps an empty list; None: no limit).
        """
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1, not %r" % (max_messages,))
        if self._armed:
            self._items.clear()
            self._armed = False
        # From the call, not from the first look: a consumer waiting for its next timer asks
        # for the time left until it, and must not wake later by what the look took.
        deadline = time.monotonic() + timeout if timeout else None
        while True:
            with self._thread_lock:  # the lock, inlined: this runs for every batch
                if self._closed:
                    raise self._closed_error()
                flock(self._fd, LOCK_EX)
                try:
                    got, wake = self._take(max_messages)
                    if not got and timeout != 0:
                        layout.WORD.pack_into(self._view, layout.WAITING_AT, 1)
                        self._armed = True
                except struct.error:
                    raise self._out_of_range() from None
                finally:
                    flock(self._fd, LOCK_UN)
            if wake:
                self._space.ring(wake)
            if got or timeout == 0:
                return got
            remaining = None
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return got
            self._items.wait(remaining)
            self._items.clear()
            self._armed = False

    def _take(self, limit: int) -> Tuple[List[bytes], int]:
        """Pop up to ``limit`` records (lock held): (payloads, producers to wake)."""
        buf, ccap, dcap, dbase = self._view, self._ccap, self._dcap, self._dbase
        seq, got, dropped, _, chead, ctail, dhead, dtail = read_consumer(buf, STATE_AT)
        self.dropped = dropped
        self.dropped_items = layout.WORD.unpack_from(buf, layout.DROPPED_ITEMS_AT)[0]
        self._check_positions(chead, ctail, dhead, dtail)
        mm = self._map
        out = []
        freed = False
        taken = payload = 0
        while taken < limit and payload < BATCH_BYTES:
            if chead != ctail:
                length, _, number = read_record(buf, RINGS_AT + ctail % ccap)
                control = True
                if dhead != dtail:
                    dlength, _, dnumber = read_record(buf, dbase + dtail % dcap)
                    if dnumber < number:
                        length, number, control = dlength, dnumber, False
            elif dhead != dtail:
                length, _, number = read_record(buf, dbase + dtail % dcap)
                control = False
            else:
                break
            if control:
                base, cap, head, tail = RINGS_AT, ccap, chead, ctail
            else:
                base, cap, head, tail = dbase, dcap, dhead, dtail
            size = (length + 31) & -16
            if size > head - tail or number >= seq:
                raise self._corrupt("control" if control else "data", length, head - tail)
            start = base + tail % cap + HEADER
            if start + length <= base + cap:
                out.append(mm[start:start + length])
            else:
                out.append(self._wrapped(base, cap, tail, length))
            if control:
                ctail += size
                freed = True
            else:
                dtail += size
            taken += 1
            payload += length
        wake = epoch = 0
        if freed:
            wake, epoch = layout.WAITERS.unpack_from(buf, layout.WAITERS_AT)
            if wake > MAX_WAITERS or epoch >= 1 << 63:
                self._waiters()  # raises QueueCorrupt, before the commit: a bad word loses no message
        if taken:
            write_consumer(buf, STATE_AT, seq, got + taken, dropped, 0, chead, ctail, dhead, dtail)
        if wake:
            layout.WAITERS.pack_into(buf, layout.WAITERS_AT, 0, epoch + 1)
            layout.WORD.pack_into(buf, layout.NEED_AT, 0)  # the woken count themselves in again if they must
        return out, wake

    def _wrapped(self, base: int, cap: int, tail: int, length: int) -> bytes:
        """A payload that does not end before the end of its ring."""
        start = (tail % cap + HEADER) % cap
        end = start + length
        if end <= cap:  # the header ended the ring exactly
            return self._map[base + start:base + end]
        return self._map[base + start:base + cap] + self._map[base:base + end - cap]

    def _check_positions(self, chead: int, ctail: int, dhead: int, dtail: int) -> None:
        """Raise QueueCorrupt unless the rings' positions are ones a queue can be at (lock held):
        every loop over records is then bounded by the ring's size."""
        if not (ctail <= chead <= ctail + self._ccap and dtail <= dhead <= dtail + self._dcap) \
                or (chead | ctail | dhead | dtail) & 15:
            raise QueueCorrupt("queue '%s': ring positions %d..%d (control), %d..%d (data) are impossible: the "
                               "segment %s is corrupt" % (self.name, ctail, chead, dtail, dhead, self._seg.name))

    def _waiters(self) -> Tuple[int, int]:
        """(producers waiting for control room, epoch), checked (lock held)."""
        waiters, epoch = layout.WAITERS.unpack_from(self._view, layout.WAITERS_AT)
        if waiters > MAX_WAITERS or epoch >= 1 << 63:
            raise QueueCorrupt("queue '%s': %d producers waiting (epoch %d) is impossible: the segment %s is "
                               "corrupt" % (self.name, waiters, epoch, self._seg.name))
        return waiters, epoch

    def _out_of_range(self) -> QueueCorrupt:
        return QueueCorrupt("queue '%s': a counter in the header is out of range: the segment %s is corrupt"
                            % (self.name, self._seg.name))

    def _corrupt(self, ring: str, length: int, used: int) -> QueueCorrupt:
        return QueueCorrupt("queue '%s': a %s record claims %d bytes but its ring holds %d bytes: the segment %s is "
                            "corrupt" % (self.name, ring, length, used, self._seg.name))

    # -- counters --------------------------------------------------------------

    def stats(self) -> QueueStats:
        buf = self._view
        self._lock()
        try:
            seq, got, dropped, waiting, chead, ctail, dhead, dtail, high, high_bytes, control, doorbells = \
                read_producer(buf, STATE_AT)
            waits, timeouts = layout.COUNTS.unpack_from(buf, layout.WAITS_AT)
            dropped_items = layout.WORD.unpack_from(buf, layout.DROPPED_ITEMS_AT)[0]
        finally:
            self._unlock()
        return QueueStats(self.name, seq, control, got, dropped, dropped_items, waits, timeouts, doorbells,
                          seq - got - dropped, chead - ctail + dhead - dtail, high, high_bytes, bool(waiting),
                          self._ccap, self._dcap)


_OPEN: weakref.WeakSet[ShmQueue] = weakref.WeakSet()


def _close_all(fds: Sequence[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def _after_fork_in_child() -> None:
    # A forked child shares its parent's open file descriptions, hence its flocks:
    # give every inherited queue a description (a lock) of its own.
    for queue in list(_OPEN):
        queue._after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)

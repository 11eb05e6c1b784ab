"""The queue's rules within one process: order, sizes, full-queue rules, counters, bad segments."""
from __future__ import annotations

import itertools
import os
import struct
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.ipc.shmqueue import PIPE, QueueHandle, ShmQueue
from appliance.ipc.shmqueue.errors import MessageTooLarge, QueueClosed, QueueCorrupt, QueueEmpty, QueueError, QueueFull

MIB = 1 << 20


def record(length: int) -> int:
    """Ring bytes a message of ``length`` takes: a 16-byte header, padded to 16."""
    return (length + 31) & -16


def test_messages_leave_in_the_order_they_were_put_whatever_their_sizes(make_queue):
    q = make_queue(control_bytes=4096, data_bytes=4096)
    sizes = [0, 1, 15, 16, 17, 100, 1000, 2000, 3000, 4064, 7, 0, 333] * 3  # wraps around the ring many times
    for i, size in enumerate(sizes):
        payload = bytes([i % 251]) * size
        q.put(payload)
        assert q.get(0) == payload


def test_the_two_classes_leave_in_put_order(make_queue):
    q = make_queue()
    sent = [(b"d%d" % i, i % 3 == 0) for i in range(30)]
    for data, control in sent:
        q.put(data, control=control)
    assert q.get_many(100) == [data for data, _ in sent]


def test_a_one_mebibyte_deploy_message_is_carried_whole(make_queue):
    q = make_queue()
    deploy = os.urandom(MIB)
    q.put(b"before", control=True)
    q.put(deploy, control=True)
    q.put(deploy)  # tokens as large: the data ring is as large by default
    assert [q.get(0), q.get(0), q.get(0)] == [b"before", deploy, deploy]


@pytest.mark.parametrize("control", [True, False])
def test_a_message_larger_than_its_ring_is_refused_naming_queue_and_size(make_queue, ensemble, control):
    q = make_queue("execute", control_bytes=4096, data_bytes=4096)
    with pytest.raises(MessageTooLarge) as refused:
        q.put(b"x" * 4081, control=control)
    assert "queue '%s/execute'" % ensemble in str(refused.value)
    assert "4081 bytes" in str(refused.value) and "4080 bytes at most" in str(refused.value)
    q.put(b"x" * 4080, control=control)  # the largest that fits
    assert q.stats().put == 1


def test_a_batch_with_one_message_too_large_queues_nothing(make_queue):
    q = make_queue(data_bytes=4096)
    with pytest.raises(MessageTooLarge):
        q.put_many([b"ok", b"x" * 5000])
    assert q.stats().put == 0


def test_data_drops_oldest_first_when_full_and_counts(make_queue):
    q = make_queue(data_bytes=1024)  # 8 records of 128 bytes
    for i in range(20):
        q.put(bytes([i]) * 100)
    stats = q.stats()
    assert (stats.put, stats.dropped, stats.depth, stats.depth_bytes) == (20, 12, 8, 1024)
    assert q.dropped == 0  # what the consumer saw: it has not looked yet
    assert [m[0] for m in q.get_many(100)] == list(range(12, 20))
    assert q.dropped == 12


def test_a_dropped_message_counts_the_items_its_producer_said_it_held(make_queue):
    q = make_queue(data_bytes=1024)  # 8 records of 128 bytes
    for i in range(10):
        q.put(bytes([i]) * 100, items=i + 1)
    stats = q.stats()
    assert (stats.dropped, stats.dropped_items) == (2, 1 + 2)  # the two oldest: 1 and 2 items
    q.get_many(100)
    assert (q.dropped, q.dropped_items) == (2, 3)
    with pytest.raises(ValueError, match="items"):
        q.put(b"x", items=0)


def test_a_data_flood_never_takes_the_room_of_control_messages(make_queue):
    q = make_queue(control_bytes=1024, data_bytes=1024)
    q.put(b"deploy", control=True)
    for i in range(1000):
        q.put(b"token %d" % i)
    q.put(b"teardown", control=True)
    out = q.get_many(1000)
    assert out[0] == b"deploy" and out[-1] == b"teardown"
    assert q.stats().dropped == 1000 - (len(out) - 2)


def test_a_control_message_without_room_waits_and_then_fails_naming_the_queue(make_queue, ensemble):
    q = make_queue("execute", control_bytes=1024, control_timeout=0.05)
    for _ in range(8):
        q.put(b"c" * 100, control=True)
    with pytest.raises(QueueFull) as full:
        q.put(b"one more", control=True)
    message = str(full.value)
    assert message.startswith("queue '%s/execute': control message of 8 bytes waited 0.1 s" % ensemble), message
    with pytest.raises(QueueFull):
        q.put(b"one more", control=True, timeout=0)  # the call's timeout wins
    stats = q.stats()
    assert (stats.waits, stats.timeouts, stats.dropped, stats.depth) == (2, 2, 0, 8)


def test_a_waiting_control_put_proceeds_when_the_consumer_makes_room(make_queue):
    q = make_queue(control_bytes=1024, control_timeout=20)
    for i in range(8):
        q.put(bytes([i]) * 100, control=True)
    waiting = threading.Event()
    space_wait = q._space.wait

    def wait_and_tell(timeout):
        waiting.set()
        return space_wait(timeout)

    q._space.wait = wait_and_tell  # observe the producer blocking on its doorbell
    producer = threading.Thread(target=q.put, args=(b"late" * 25,), kwargs={"control": True})
    producer.start()
    assert waiting.wait(20)
    assert q.get(0)[0] == 0  # frees one record: the producer is woken
    producer.join(20)
    assert not producer.is_alive()
    assert q.get_many(100)[-1] == b"late" * 25
    stats = q.stats()
    assert (stats.waits, stats.timeouts) == (1, 0)


def test_counters_for_status(make_queue, ensemble):
    q = make_queue("net", control_bytes=4096, data_bytes=4096)
    q.put_many([b"a" * 10, b"b" * 20])
    q.put(b"c", control=True)
    q.get(0)
    stats = q.stats()
    assert stats.name == "%s/net" % ensemble
    assert (stats.put, stats.control, stats.got, stats.dropped, stats.depth) == (3, 1, 1, 0, 2)
    assert stats.depth_bytes == record(20) + record(1)
    assert (stats.high_water, stats.high_water_bytes) == (3, record(10) + record(20) + record(1))
    assert (stats.control_bytes, stats.data_bytes) == (4096, 4096)
    assert stats._asdict()["consumer_waiting"] is False


def test_a_busy_consumer_costs_producers_no_doorbell(make_queue):
    q = make_queue()
    for i in range(100):
        q.put(b"%d" % i)
        if i % 10 == 9:
            q.get_many()
    assert q.stats().doorbells == 0
    q.put(b"pending")
    assert q.arm() is False  # messages are waiting: do not block
    assert q.get_many() == [b"pending"]
    assert q.arm() is True
    q.put(b"wake")
    assert q.stats().doorbells == 1
    q.put(b"again")  # the first put cleared the waiting word
    assert q.stats().doorbells == 1
    assert q.get_many() == [b"wake", b"again"]


def test_get_many_stops_after_a_batch_of_bytes_so_producers_never_wait_long(make_queue):
    q = make_queue(data_bytes=MIB)
    q.put_many([b"x" * 100_000] * 5)
    assert [len(q.get_many()) for _ in range(3)] == [3, 2, 0]  # 300 kB reach the 256 KiB bound


@pytest.mark.parametrize("timeout", [0, 0.01])
def test_get_raises_empty_naming_the_queue(make_queue, ensemble, timeout):
    q = make_queue("rtm")
    with pytest.raises(QueueEmpty, match="queue '%s/rtm'" % ensemble):
        q.get(timeout)
    assert q.get_many(timeout=timeout) == []


def test_a_torn_length_word_is_refused_not_read_out_of_bounds(make_queue, ensemble):
    q = make_queue(data_bytes=4096)
    q.put(b"x" * 100)
    base = 256 + q._ccap
    struct.pack_into("=I", q._view, base, 1 << 31)  # the record's length word, as garbage
    with pytest.raises(QueueCorrupt, match="queue '%s/q': a data record claims 2147483648 bytes" % ensemble):
        q.get(0)


def test_impossible_ring_positions_are_refused(make_queue):
    q = make_queue(data_bytes=4096)
    struct.pack_into("=Q", q._view, 64 + 48, 1 << 20)  # data head far beyond the ring
    with pytest.raises(QueueCorrupt, match="impossible"):
        q.get_many()


def _own_copy(handle):
    """The handle as another process gets it: descriptors of its own, which attaching takes."""
    return handle._replace(fds=tuple(os.dup(fd) for fd in handle.fds))


def _all_closed(fds):
    for fd in fds:
        try:
            os.fstat(fd)
        except OSError:
            continue
        return False
    return True


def test_attach_refuses_a_segment_that_is_not_a_queue(make_queue):
    q = make_queue()
    q._view[0:8] = b"garbage!"
    handle = _own_copy(q.handle())
    with pytest.raises(QueueCorrupt, match="does not hold a queue"):
        ShmQueue.attach(handle)
    assert _all_closed(handle.fds)  # a failed attach keeps none of the descriptors it took


def test_attach_to_a_missing_segment_says_so(make_queue):
    q = make_queue()
    handle = _own_copy(q.handle())._replace(segment="appliance-1-nobody-q")
    with pytest.raises(QueueError, match="queue 'nobody/q': its segment appliance-1-nobody-q does not exist"):
        ShmQueue.attach(handle)
    assert _all_closed(handle.fds)


def test_creating_a_queue_twice_is_refused(make_queue, ensemble):
    make_queue("execute")
    with pytest.raises(QueueError, match="already exists"):
        make_queue("execute")


def test_a_closed_queue_says_so(make_queue):
    q = make_queue()
    q.close()
    q.close()  # idempotent
    for use in (lambda: q.put(b"x"), lambda: q.get(0), lambda: q.get_many(), q.arm, q.stats):
        with pytest.raises(QueueClosed, match="is closed"):
            use()


def test_a_handle_travels_as_text(make_queue):
    q = make_queue(doorbell=PIPE)
    handle = q.handle()
    assert QueueHandle.decode(handle.encode()) == handle
    assert len(handle.fds) == 4


# -- the ring's bookkeeping against a model ---------------------------------------

class Model:
    """What the queue must hold: each ring as a list of (number, payload), bytes accounted per record."""

    def __init__(self, control_bytes: int, data_bytes: int) -> None:
        self.caps = {True: control_bytes, False: data_bytes}
        self.rings = {True: [], False: []}
        self.number = 0
        self.dropped = 0

    def used(self, control: bool) -> int:
        return sum(record(len(p)) for _, p in self.rings[control])

    def put(self, payload: bytes, control: bool) -> bool:
        """False: a control message without room (QueueFull)."""
        if self.used(control) + record(len(payload)) > self.caps[control]:
            if control:
                return False
            while self.used(False) + record(len(payload)) > self.caps[False]:
                self.rings[False].pop(0)
                self.dropped += 1
        self.rings[control].append((self.number, payload))
        self.number += 1
        return True

    def get(self, count: int) -> list:
        out = []
        while len(out) < count and (self.rings[True] or self.rings[False]):
            heads = [(ring[0][0], control) for control, ring in self.rings.items() if ring]
            out.append(self.rings[min(heads)[1]].pop(0)[1])
        return out


EXAMPLES = itertools.count()
OPERATIONS = st.lists(st.one_of(
    st.tuples(st.just("put"), st.integers(0, 700), st.booleans()),
    st.tuples(st.just("get"), st.integers(1, 5), st.just(False)),
), max_size=60)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=OPERATIONS)
def test_the_ring_bookkeeping_matches_a_model(ensemble, operations):
    q = ShmQueue.create(ensemble, "m%d" % next(EXAMPLES), control_bytes=1024, data_bytes=1536)
    try:
        model = Model(1024, 1536)
        for i, (op, size, control) in enumerate(operations):
            if op == "put":
                payload = bytes([i % 256]) * size
                if model.put(payload, control):
                    q.put(payload, control=control)
                else:
                    with pytest.raises(QueueFull):
                        q.put(payload, control=True, timeout=0)
            else:
                assert q.get_many(size) == model.get(size)
            stats = q.stats()
            assert stats.depth == len(model.rings[True]) + len(model.rings[False])
            assert stats.depth_bytes == model.used(True) + model.used(False)
            assert stats.dropped == model.dropped
        assert q.get_many(1000) == model.get(1000)
    finally:
        q.close()


# -- a corrupt header is an error naming the queue, never a hang, another exception or a lost message --

def test_a_data_head_far_beyond_its_ring_is_refused_by_a_put_not_walked(make_queue):
    q = make_queue(data_bytes=4096)
    struct.pack_into("=Q", q._view, 64 + 48, 1 << 40)  # the data head: a put would evict 2**36 records
    with pytest.raises(QueueCorrupt, match=r"queue 'ipct-\w+/q': ring positions .* the segment appliance-"):
        q.put(b"x")


@pytest.mark.parametrize("word", [1 << 32, (1 << 63) + 5, (1 << 64) - 1])
def test_an_impossible_count_of_waiting_producers_is_corruption_and_costs_no_message(make_queue, word):
    q = make_queue()
    q.put(b"first", control=True)
    struct.pack_into("=Q", q._view, 160, word)  # producers waiting for control room
    with pytest.raises(QueueCorrupt, match="producers waiting"):
        q.get(timeout=0)
    struct.pack_into("=Q", q._view, 160, 0)
    assert q.get(timeout=0) == b"first"  # refused before the take was committed


@pytest.mark.parametrize("at", [64, 72])  # the sequence number, messages got
def test_a_counter_at_the_top_of_its_64_bits_is_corruption_not_a_struct_error(make_queue, at):
    q = make_queue()
    q.put(b"x")
    struct.pack_into("=Q", q._view, at, (1 << 64) - 1)
    with pytest.raises(QueueCorrupt, match="out of range|impossible"):
        q.put(b"y")
        q.get_many()


# -- control messages that wait are not overtaken -------------------------------------

def _wait_for(condition, seconds=10.0):
    """Until ``condition()`` holds (another thread's progress), failing after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.001)


def test_a_control_message_waiting_for_room_is_not_overtaken_by_later_small_ones(make_queue):
    q = make_queue(control_bytes=4096, control_timeout=10)
    for _ in range(3):
        q.put(b"f" * 1000, control=True)  # 3 x 1024 ring bytes: 1024 free, not enough for the large one
    done = []
    large = threading.Thread(target=lambda: done.append(q.put(b"L" * 2000, control=True)))
    large.start()
    _wait_for(lambda: q.stats().waits == 1)
    with pytest.raises(QueueFull):  # it fits, but the large one waits, and came first
        q.put(b"s" * 100, control=True, timeout=0.05)
    assert q.get(timeout=0) == b"f" * 1000  # room for the large one now
    large.join(10)
    assert done == [None]
    assert [q.get(timeout=0) for _ in range(3)] == [b"f" * 1000, b"f" * 1000, b"L" * 2000]


def test_a_large_control_message_gets_room_while_small_ones_stream_past_a_busy_consumer(make_queue):
    q = make_queue(control_bytes=64 * 1024, control_timeout=10)
    stop = threading.Event()
    errors = []

    def small():
        try:
            while not stop.is_set():
                q.put(b"s" * 200, control=True)
        except QueueError as exc:
            errors.append(exc)

    def consume():
        while not stop.is_set() or q.stats().depth:
            q.get_many(8, timeout=0.01)

    workers = [threading.Thread(target=small) for _ in range(3)] + [threading.Thread(target=consume)]
    for worker in workers:
        worker.start()
    try:
        _wait_for(lambda: q.stats().high_water_bytes > 60 * 1024)  # the small ones keep it nearly full
        q.put(b"L" * 32 * 1024, control=True)  # raised QueueFull before: the freed room went to newcomers
    finally:
        stop.set()
        for worker in workers:
            worker.join(20)
    assert errors == []


def test_closing_a_queue_while_another_thread_waits_to_put_is_queue_closed_for_it(make_queue):
    q = make_queue(control_bytes=64, control_timeout=10)
    q.put(b"x" * 48, control=True)
    raised = []

    def put():
        try:
            q.put(b"y" * 48, control=True, timeout=0.5)
        except Exception as exc:  # noqa: BLE001 - which exception is the point
            raised.append(exc)

    waiter = threading.Thread(target=put)
    waiter.start()
    _wait_for(lambda: q.stats().waits == 1)
    q.close()
    waiter.join(10)
    assert len(raised) == 1 and isinstance(raised[0], QueueClosed), raised


def test_a_doorbell_numbered_above_fd_setsize_still_waits_and_wakes(make_queue):
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip("this process may open at most %d files" % hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        q = make_queue()
        assert q.fileno() >= 1024
        with pytest.raises(QueueEmpty):
            q.get(timeout=0.01)
        q.put(b"x")
        assert q.get(timeout=10) == b"x"
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

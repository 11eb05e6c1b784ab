"""The segment's layout: one header, then the control ring, then the data ring.

Every word is a native-endian u64 (the segment never leaves the machine)::

    @0    magic + layout version, control ring bytes, data ring bytes, control timeout (µs),
          the creator's start time (clock ticks since boot, /proc/<pid>/stat; 0: unknown)
    @64   next sequence number, got, dropped, waiting,
          control head, control tail, data head, data tail,
          high-water mark (messages), high-water mark (bytes), control messages put, doorbells rung
    @160  producers waiting for control room, epoch of the consumer's last wake-up for them
    @176  control puts that waited, control puts that timed out
    @192  ring bytes the largest waiting control record needs (0: none waits)
    @200  items in the data messages dropped (a record says how many its payload holds)
    @256  the control ring, then the data ring

Producers read and write the twelve words at 64 in one struct call each way,
the consumer the first eight. ``pack_into`` writes words in order, so the
sequence number is written before the heads: a producer killed in between
leaves a gap in the numbers, never a published record whose number is not taken.

A record is a 16-byte header (payload length and items, u32 each; sequence
number) and the payload, padded to 16 bytes. *Items* is what the producer says
the payload holds (a device process batches up to 256 tokens in one message), so
a drop is counted in what was lost, not only in queue messages. Ring positions are byte counters that only grow; the
offset in the ring is the position modulo its size.
"""
import fcntl
import struct

MAGIC = b"APLQ\x00\x00\x00\x03"  # layout version 3
META = struct.Struct("=8sQQQ")
CREATOR_AT = 32
STATE_AT = 64
PRODUCER = struct.Struct("=12Q")
CONSUMER = struct.Struct("=8Q")
RING_POSITIONS = struct.Struct("=4Q")
DROPPED_AT = STATE_AT + 16
WAITING_AT = STATE_AT + 24
POSITIONS_AT = STATE_AT + 32
DATA_TAIL_AT = STATE_AT + 56
WAITERS_AT = 160
WAITERS = struct.Struct("=2Q")
WAITS_AT = 176
COUNTS = struct.Struct("=2Q")  # waits, timeouts
TIMEOUTS_AT = 184
NEED_AT = 192
DROPPED_ITEMS_AT = 200
RINGS_AT = 256
RECORD = struct.Struct("=IIQ")  # length, items, sequence number
#: The largest ring: a record's length is a u32.
MAX_RING = 1 << 32
HEADER = RECORD.size
WORD = struct.Struct("=Q")

# Bound once: these run for every message.
read_producer, write_producer = PRODUCER.unpack_from, PRODUCER.pack_into
read_consumer, write_consumer = CONSUMER.unpack_from, CONSUMER.pack_into
read_record, write_record = RECORD.unpack_from, RECORD.pack_into
flock, LOCK_EX, LOCK_UN = fcntl.flock, fcntl.LOCK_EX, fcntl.LOCK_UN


def record_size(length: int) -> int:
    """Ring bytes a payload of ``length`` bytes takes, with its header and padding."""
    return (length + HEADER + 15) & -16


def bump(buf: memoryview, at: int) -> None:
    WORD.pack_into(buf, at, WORD.unpack_from(buf, at)[0] + 1)

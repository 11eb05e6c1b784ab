"""Shared-memory queues between the processes of one device (an ensemble).

``ShmQueue`` (``queue.py``) is the queue: a bounded multi-producer,
single-consumer queue of byte messages in a ``multiprocessing.shared_memory``
segment, with a selectable doorbell. ``layout.py`` is the segment's layout,
``segment.py`` names segments, maps them and removes what a killed process tree
left, ``doorbell.py`` is the eventfd or pipe wake-up, ``handle.py`` what a
child needs to attach. docs/ipc.md describes the design.
"""
from appliance.ipc.shmqueue.doorbell import EVENTFD, PIPE
from appliance.ipc.shmqueue.errors import (
    MessageTooLarge,
    QueueClosed,
    QueueCorrupt,
    QueueEmpty,
    QueueError,
    QueueFull,
)
from appliance.ipc.shmqueue.handle import QueueHandle
from appliance.ipc.shmqueue.queue import QueueStats, ShmQueue
from appliance.ipc.shmqueue.segment import parse_segment_name, remove_orphans, segment_name

__all__ = [
    "EVENTFD",
    "MessageTooLarge",
    "PIPE",
    "QueueClosed",
    "QueueCorrupt",
    "QueueEmpty",
    "QueueError",
    "QueueFull",
    "QueueHandle",
    "QueueStats",
    "ShmQueue",
    "parse_segment_name",
    "remove_orphans",
    "segment_name",
]

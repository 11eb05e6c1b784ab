"""How a device's processes reach each other: one shared-memory queue per process,
and the rule that sends each message to the process it names.

A process hands its outputs to ``Outboxes.send``: they are grouped by the
process they are for, in order, each group encoded with the safe codec into
one queue message per class (control and system messages in one, tokens in
the other), so the receiving queue can drop tokens under overload and never
a control message. Messages for the local client go to the network manager,
which knows where clients are.
"""
from __future__ import annotations

import logging
from typing import Dict, List, Mapping, Tuple

import psutil

from appliance.ipc import Layer, Message, Recipient
from appliance.ipc.codec import CodecError, decode_messages, encode_messages
from appliance.ipc.shmqueue import MessageTooLarge, QueueError, ShmQueue
from appliance.runtime.counters import Counters

log = logging.getLogger("appliance.device")

#: Messages encoded into one queue message at most: a burst (a stream fanning out to
#: hundreds of SQs) goes as several, each well inside a ring.
MAX_BATCH = 256

#: The queue of each process, by the name the queue and the process have: its name in
#: status replies (``Core.process``), so a process that died is named as status names it.
PROCESS_NAMES: Dict[Recipient, str] = {
    recipient: recipient.name.lower()
    for recipient in (Recipient.INPUT_TOKENS, Recipient.EXECUTE, Recipient.NETWORK, Recipient.RUNTIME_MANAGER)
}


class Outboxes:
    """The queues of the other processes of this ensemble, as one process writes to them."""

    def __init__(self, queues: Mapping[Recipient, ShmQueue], counters: Counters) -> None:
        self._queues = dict(queues)
        # Reports for the client go through the network manager: it knows where clients are.
        self._queues[Recipient.CLIENT] = self._queues[Recipient.NETWORK]
        self._counters = counters

    def send(self, messages: List[Message]) -> None:
        groups: Dict[Tuple[Recipient, bool], List[Message]] = {}
        for message in messages:
            control = message.msg_type.layer is not Layer.DATA
            groups.setdefault((message.recipient, control), []).append(message)
        for (recipient, control), batch in groups.items():
            queue = self._queues.get(recipient)
            if queue is None:
                self._counters.incr("refused.no_such_process")
                log.warning("no %s process on this ensemble: %d message(s) dropped", recipient.name.lower(),
                            len(batch))
                continue
            for start in range(0, len(batch), MAX_BATCH):
                self._put(queue, batch[start:start + MAX_BATCH], control)

    def _put(self, queue: ShmQueue, batch: List[Message], control: bool) -> None:
        """One queue message, or halves of it until each fits its ring; a single message
        that cannot fit is dropped and counted (the inputs of one firing, together more
        than the execute queue carries)."""
        try:
            data = encode_messages(batch)
        except Exception as exc:  # what the codec refuses (a core's bug, never a value an SQ returned): the
            # process serves on, and the loss is counted as the network manager counts one it cannot send
            self._counters.drop("unsendable", len(batch))
            log.error("%d %s message(s) dropped: they cannot be encoded: %s: %s", len(batch),
                      batch[0].msg_type.name, type(exc).__name__, exc)
            return
        try:
            queue.put(data, control=control, items=len(batch))
        except MessageTooLarge as exc:  # refused before anything was queued: safe to split
            if len(batch) > 1:
                half = len(batch) // 2
                self._put(queue, batch[:half], control)
                self._put(queue, batch[half:], control)
                return
            self._counters.drop("too_large_for_queue")
            log.error("%s dropped: %s", batch[0].msg_type.name, exc)


def device_status(inbox: ShmQueue) -> Dict[str, object]:
    """What a device process adds to its status: who it is, its memory, its queue."""
    process = psutil.Process()
    try:
        uss = process.memory_full_info().uss  # reads /proc/<pid>/smaps: slower, but exact
    except (psutil.AccessDenied, AttributeError):
        uss = None
    return {"device": {"pid": process.pid, "rss": process.memory_info().rss, "uss": uss,
                       "queue": inbox.stats()._asdict()}}


def count_queue_drops(inbox: ShmQueue, seen: int, counters: Counters) -> int:
    """Tokens the full queue dropped for this process since ``seen``, counted where the
    app's teardown report carries them (``dropped.queue_full``); returns the new total.

    A queue message holds up to MAX_BATCH tokens and says how many (``items``), so the
    count is of tokens. Called after every ``get_many``, so it reads the total that call
    saw (``inbox.dropped_items``): asking ``stats()`` would take the queue's lock once more
    per batch, on every hop of every token."""
    dropped = inbox.dropped_items
    if dropped > seen:
        counters.drop("queue_full", dropped - seen)
    return dropped


def decode_batch(data: bytes, counters: Counters) -> List[Message]:
    """One queue message back into its messages; a batch that does not decode is counted."""
    try:
        return decode_messages(data)
    except CodecError as exc:
        counters.incr("refused.undecodable")
        log.error("an undecodable message on a local queue: %s", exc)
        return []


__all__ = ["PROCESS_NAMES", "Outboxes", "QueueError", "count_queue_drops", "decode_batch", "device_status"]

"""A core's OS process: block on its queue, feed the core both clocks, pass its outputs on.

Nothing here decides anything: the core does. The loop waits on the process's
queue until a message arrives or the core's next timer (root or local clock)
is due, hands every message to ``core.handle`` and runs what is due, and
sends the outputs to the queues of the processes they name. A system-layer
``END`` ends it (the supervisor sends one to every process at shutdown).
"""
from __future__ import annotations

import contextlib
import functools
import logging
from typing import Callable, Dict, List, Optional

from appliance.device import clock
from appliance.device.lifecycle import child_started
from appliance.device.pulse import Heart, PulseEnds
from appliance.device.wiring import Outboxes, count_queue_drops, decode_batch, device_status
from appliance.ipc import Layer, Message, Recipient
from appliance.ipc.shmqueue import ShmQueue
from appliance.runtime.core import Core
from appliance.runtime.timers import IDLE
from appliance.runtime.watchdog import Watchdog

log = logging.getLogger("appliance.device")


def wait_seconds(root_due: int, local_due: int, now: int, local: int) -> Optional[float]:
    """How long a process may block: until the earlier of its two clocks' deadlines (None: no limit)."""
    waits = [due - at for due, at in ((root_due, now), (local_due, local)) if due < IDLE]
    return max(0.0, min(waits) / 1e6) if waits else None


def run_core(name: str, make_core: Callable[[], Core], queues: Dict[Recipient, ShmQueue],
             log_level: int, parent: int, pulse: Optional[PulseEnds] = None) -> None:
    """The main function of a core's process (input-token, execute or runtime manager); the
    one that runs SQs (execute) has a watchdog for a firing that does not end, which beats
    on its ``pulse`` to the supervisor."""
    child_started(name, log_level, parent)
    with Watchdog(Heart(pulse).beat) if pulse is not None else contextlib.nullcontext():
        _serve(make_core(), queues)


def _serve(core: Core, queues: Dict[Recipient, ShmQueue]) -> None:
    inbox = queues[core.recipient]
    core.shell_status = functools.partial(device_status, inbox)
    outboxes = Outboxes(queues, core.counters)
    dropped = 0
    running = True
    while running:
        now, local = clock.both()
        batch = inbox.get_many(timeout=wait_seconds(core.next_deadline(), core.next_local_deadline(local),
                                                    now, local))
        dropped = count_queue_drops(inbox, dropped, core.counters)
        now, local = clock.both()
        out: List[Message] = []
        for data in batch:
            for message in decode_batch(data, core.counters):
                if message.msg_type.layer is Layer.SYSTEM:
                    running = False  # END: finish what came before it, then stop
                out.extend(core.handle(message, now))  # the core's own end (the execute core's teardown)
        if core.next_deadline() <= now:
            out.extend(core.on_timer(now))
        if core.next_local_deadline(local) <= local:
            out.extend(core.on_local_timer(now, local))
        outboxes.send(out)
    for queue in queues.values():
        queue.close()

"""Fixtures of the shared-memory queue tests: unique ensemble names, and a check
that every test leaves no segment of its ensembles in /dev/shm."""
from __future__ import annotations

import os
import uuid
from typing import Callable, Iterator, List

import pytest

from appliance.ipc.shmqueue import ShmQueue, parse_segment_name
from appliance.ipc.shmqueue.segment import SHM_DIR


def segments_of(ensemble: str) -> List[str]:
    return sorted(name for name in os.listdir(SHM_DIR)
                  if (parse_segment_name(name) or (0, None))[1] == ensemble)


@pytest.fixture
def ensemble() -> Iterator[str]:
    """A fresh ensemble name; the test fails if a segment of it is left behind."""
    name = "ipct-" + uuid.uuid4().hex[:10]
    yield name
    left = segments_of(name)
    for segment in left:  # clean up for the next run, then fail
        os.unlink(os.path.join(SHM_DIR, segment))
    assert left == [], "segments left in %s: %s" % (SHM_DIR, left)


@pytest.fixture
def make_queue(ensemble: str) -> Iterator[Callable[..., ShmQueue]]:
    """``make_queue(queue="q", **options)``: a queue of the test's ensemble, closed after the test."""
    made: List[ShmQueue] = []

    def make(queue: str = "q", **options: object) -> ShmQueue:
        made.append(ShmQueue.create(ensemble, queue, **options))
        return made[-1]

    yield make
    for queue in made:
        queue.close()

"""What every child process of an ensemble does first, and how it dies with its parent."""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal

#: prctl(2): deliver this signal to the calling process when its parent dies.
_PR_SET_PDEATHSIG = 1


def child_started(name: str, log_level: int, parent: int) -> None:
    """A child of the supervisor: logs like its parent, leaves Ctrl-C to it (a terminal
    signals the whole process group; the supervisor shuts the children down in order),
    and dies if the supervisor dies, so a ``kill -9`` of the supervisor leaves no orphan."""
    logging.basicConfig(level=log_level, format="%(levelname)s %(name)s[" + name + "]: %(message)s")
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(parent)


def _die_with_parent(parent: int) -> None:
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return
    libc = ctypes.CDLL(libc_name, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        logging.getLogger("appliance.device").warning(
            "prctl(PR_SET_PDEATHSIG) failed (%s): this process may outlive its supervisor",
            os.strerror(ctypes.get_errno()))
    if os.getppid() != parent:  # the parent died before the call took effect
        os._exit(1)

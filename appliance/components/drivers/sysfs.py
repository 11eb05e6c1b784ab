"""``sysfs:relative/path``: one file of the kernel's sysfs, such as
``class/thermal/thermal_zone0/temp``, ``class/gpio/gpio17/value``,
``class/leds/led0/brightness`` or ``class/pwm/pwmchip0/pwm0/duty_cycle``.

The file is ``<root>/sys/<path>``: the root is ``/`` on a device unless its
configuration says otherwise (``sysfs_root``), so tests and simulations can
read a fake tree. A path that leaves ``<root>/sys`` (``..``, an absolute
path, a symbolic link pointing outside) is refused. A read returns the file's
text as an integer when it is one (a thermal zone's millidegrees), else the
text, stripped; a write writes the value's text (``True``/``False`` as 1/0).
A sensor's or camera's file is read-only. Each read and write opens the file
afresh, as sysfs attributes expect.
"""
from __future__ import annotations

import os
import re
from typing import Any

from appliance.components.drivers.base import DriverError
from appliance.components.model import Component

_INTEGER = re.compile(r"^[-+]?[0-9]+\Z")
#: Kinds whose files SQs only read.
READ_ONLY_KINDS = ("sensor", "camera")


def checked_path(rest: str) -> str:
    """The relative path of a spec, refused if it is empty, absolute or climbs out (``..``)."""
    if not rest or "\0" in rest:
        raise DriverError("a sysfs driver names a file under /sys, as sysfs:class/thermal/thermal_zone0/temp")
    if rest.startswith("/"):
        raise DriverError("sysfs path %r must be relative to /sys (sysfs:class/..., not sysfs:/sys/class/...)"
                          % rest)
    if ".." in rest.split("/"):
        raise DriverError("sysfs path %r leaves /sys ('..')" % rest)
    return rest


def resolved(rest: str, root: str) -> str:
    """The file ``rest`` names under ``<root>/sys``, with its links followed; refused outside it."""
    base = os.path.realpath(os.path.join(root, "sys"))
    path = os.path.realpath(os.path.join(base, checked_path(rest)))
    if os.path.commonpath([base, path]) != base:
        raise DriverError("sysfs path %r leads out of %s (to %s)" % (rest, base, path))
    if not os.path.isfile(path):
        raise DriverError("no file %s" % path)
    return path


class SysfsReader:
    """A sysfs file SQs read."""

    def __init__(self, path: str) -> None:
        self.path = path

    def read(self) -> Any:
        with open(self.path, encoding="ascii", errors="replace") as handle:
            text = handle.read().strip()
        return int(text) if _INTEGER.match(text) else text


class SysfsFile(SysfsReader):
    """A sysfs file SQs read and write (a GPIO value, an LED's brightness, a PWM duty cycle)."""

    def write(self, value: Any) -> None:
        if isinstance(value, bool):
            value = int(value)
        if not isinstance(value, (int, float, str)):
            raise TypeError("a sysfs file takes a number or a string, got %s" % type(value).__name__)
        with open(self.path, "w", encoding="ascii") as handle:
            handle.write(str(value))


def open_handle(rest: str, component: Component, root: str) -> SysfsReader:
    path = resolved(rest, root)
    return SysfsReader(path) if component.kind in READ_ONLY_KINDS else SysfsFile(path)

"""Components: what an ensemble is made of, and what programs ask of it.

A component has a name (unique on its ensemble), a kind, attributes
(unit, range, rate, resolution, cores, memory, model, ...) and, if SQs read
or write it, a driver. An ensemble's components come from its configuration
or system file and travel to the runtime manager with its join, where the
mapper matches them against the SQs' queries.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from appliance.program.errors import ProgramError
from appliance.program.names import NAME_RULE, is_name

#: The kinds a component may have ("" when a file names a component and nothing more).
KINDS = ("sensor", "actuator", "camera", "compute", "gpu", "clock", "storage", "radio")

_ATTRIBUTE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}\Z")
#: Keys of a component's document; every other key is an attribute (of a JSON scalar value).
_KEYS = ("name", "kind", "attributes", "fields", "driver")


class ComponentError(ProgramError):
    """A component description that does not validate; names where and what."""


@dataclass(frozen=True)
class Component:
    """A sensor, actuator, camera, compute unit, ... of an ensemble.

    ``driver`` says how SQs reach it (``appliance.components.drivers``):
    ``python:module:function``, ``sysfs:relative/path`` or ``bridge:...``;
    None for a component that is only described.
    """

    name: str
    kind: str = ""
    attributes: Dict[str, Any] = field(default_factory=dict, compare=True, hash=False)
    driver: Optional[str] = None

    def to_wire(self) -> Dict[str, Any]:
        doc: Dict[str, Any] = {"name": self.name, "kind": self.kind, "attributes": dict(self.attributes)}
        if self.driver is not None:
            doc["driver"] = self.driver
        return doc

    def describe(self) -> str:
        """``name`` (a kind, attributes) for error messages."""
        details = ", ".join("%s=%r" % item for item in sorted(self.attributes.items()))
        what = " ".join(part for part in (self.kind, details) if part)
        return "%s (%s)" % (self.name, what) if what else self.name


def component_from_wire(item: Any, where: str) -> Component:
    """A component from a file or a join: a bare name, or an object with ``name``,
    optional ``kind``, ``attributes`` (``fields`` in older files) and ``driver``."""
    if isinstance(item, str):
        item = {"name": item}
    if not isinstance(item, dict):
        raise ComponentError("%s: a component is a name or an object with a name, got %r" % (where, item))
    name = item.get("name")
    if not is_name(name):
        raise ComponentError("%s: component name %r is not valid (%s)" % (where, name, NAME_RULE))
    where = "%s: component %r" % (where, name)
    kind = item.get("kind", "")
    if kind not in KINDS and kind != "":
        raise ComponentError("%s: unknown kind %r (kinds: %s)" % (where, kind, ", ".join(KINDS)))
    if "attributes" in item and "fields" in item:
        raise ComponentError("%s: 'fields' is the older name of 'attributes'; give one of them" % where)
    attributes = item.get("attributes", item.get("fields", {}))
    if not isinstance(attributes, dict):
        raise ComponentError("%s: 'attributes' must be an object" % where)
    for key, value in attributes.items():
        if not isinstance(key, str) or not _ATTRIBUTE.match(key):
            raise ComponentError("%s: attribute name %r is not an identifier" % (where, key))
        if not (value is None or isinstance(value, (bool, int, str))
                or isinstance(value, float) and math.isfinite(value)):
            raise ComponentError("%s: attribute %r must be a (finite) number, string, boolean or null, got %r"
                                 % (where, key, value))
    driver = item.get("driver")
    if driver is not None and not isinstance(driver, str):
        raise ComponentError("%s: 'driver' must be a string like 'python:module:function', got %r"
                             % (where, driver))
    unknown = sorted(set(item) - set(_KEYS))
    if unknown:
        raise ComponentError("%s: unknown key %r (a component has %s)"
                             % (where, unknown[0], ", ".join(_KEYS[:3] + _KEYS[4:])))
    return Component(name, kind, dict(attributes), driver)

"""What a device knows of itself: its compute component, from psutil.

The rule (docs/components.md): an ensemble whose configuration lists no
``compute`` component gets one named ``cpu`` with this device's ``cores``
(logical CPUs) and ``memory_mb`` (total RAM, MiB), unless a component of
another kind already has that name; a listed ``compute`` component without
``cores`` or ``memory_mb`` gets them filled in. What the file gives is kept.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable, Dict, List, Sequence

import psutil

from appliance.components.model import Component

#: The name of the compute component added when the configuration lists none.
COMPUTE_NAME = "cpu"


def measured() -> Dict[str, int]:
    """This device's ``cores`` and ``memory_mb``."""
    return {"cores": psutil.cpu_count(logical=True) or 1, "memory_mb": psutil.virtual_memory().total // 2 ** 20}


def with_compute(components: Sequence[Component],
                 measure: Callable[[], Dict[str, int]] = measured) -> List[Component]:
    """``components`` with the compute component filled in as the module docstring says."""
    out = list(components)
    computes = [i for i, c in enumerate(out) if c.kind == "compute"]
    if not computes:
        if all(c.name != COMPUTE_NAME for c in out):
            out.append(Component(COMPUTE_NAME, "compute", measure()))
        return out
    facts = None
    for i in computes:
        missing = [key for key in ("cores", "memory_mb") if key not in out[i].attributes]
        if missing:
            facts = facts or measure()
            out[i] = replace(out[i], attributes=dict({key: facts[key] for key in missing}, **out[i].attributes))
    return out

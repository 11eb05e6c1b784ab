"""The rule for naming ensembles and components, kept in one place so that every
refusal of a name (a program's pin, a graph file, a system file, a device's
configuration) states the same rule."""
from __future__ import annotations

import re
from typing import Any

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}\Z")
#: The rule, as refusals say it.
NAME_RULE = "letters, digits, '_', '.', '-', not starting with '.' or '-'; at most 64"


def is_name(name: Any) -> bool:
    """Whether ``name`` can name an ensemble or a component (``NAME_RULE``)."""
    return isinstance(name, str) and bool(_NAME.match(name))


__all__ = ["NAME_RULE", "is_name"]

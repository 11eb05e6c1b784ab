"""SQ functions the runtime provides: the pieces ``finish_by`` is built from."""
from __future__ import annotations

from typing import Any, Callable, Dict, Tuple

from appliance.program.token import EMPTY


def merge(a: Any, b: Any) -> Any:
    """Immediate rule: one input arrived; the other is EMPTY."""
    return a if a is not EMPTY else b


def deadline(value: Any, met: bool) -> Tuple[Any, Any]:
    """Output 0 carries the value when it arrived in time; output 1 triggers Plan B."""
    if met:
        return value, EMPTY
    return EMPTY, True


#: name -> (function, number of outputs)
BUILTINS: Dict[str, Tuple[Callable[..., Any], int]] = {
    "merge": (merge, 1),
    "deadline": (deadline, 2),
}

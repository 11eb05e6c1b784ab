"""Reading the JSON files users write (graph, system and configuration files).

``json`` keeps the last of a key given twice, silently: a system file with two
``"ensembles"`` lists would run on the second alone. Every file is read here,
and a key given twice in any object is refused, as is a file that cannot be
read, is not JSON, or nests too deeply; ``error`` makes the exception its
caller raises (naming the file as that caller names files). So is a string
holding a lone surrogate (JSON's ``"\udcff"``), which no UTF-8 encoder, the
wire's included, can carry: it would fail where the file's values are sent.
"""
from __future__ import annotations

import json
from typing import Any, Callable, Dict, List, Tuple


def load_json(path: str, error: Callable[[str], Exception]) -> Any:
    """The file's JSON document; ``error(why)`` raised when it has none, or a key twice."""
    def unique(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
        seen: Dict[str, Any] = {}
        for key, value in pairs:
            if key in seen:
                raise error("key %r is given twice (only one value can hold)" % key)
            seen[key] = value
        return seen

    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle, object_pairs_hook=unique)
    except OSError as exc:
        raise error("cannot read: %s" % exc.strerror) from None
    except ValueError as exc:  # also a file that is not UTF-8
        raise error("not JSON: %s" % exc) from None
    except RecursionError:  # the json module recurses once per level of nesting
        raise error("JSON nested too deeply") from None
    if has_lone_surrogate(document):
        raise error("a string in it is not Unicode text: it holds a lone surrogate (such as \\udcff)")
    return document


def has_lone_surrogate(value: Any) -> bool:
    """Whether a string anywhere in ``value`` (JSON values: str, list, tuple, dict) holds
    a lone surrogate, text that cannot be encoded as UTF-8."""
    pending = [value]
    while pending:  # not recursive: a document may nest as deep as json allowed
        item = pending.pop()
        if isinstance(item, str):
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    return True
        elif isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
        elif isinstance(item, (list, tuple)):
            pending.extend(item)
    return False

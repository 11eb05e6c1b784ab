"""Queries: which components an SQ needs, as plain data a graph file can hold.

A query describes one component. In a program and in a graph file it is JSON:

- ``"camera_left"``: the component of that name (the shortcut; what
  ``requires="camera_left"`` always meant);
- ``{"kind": "gpu", "memory_gb": {"at_least": 4}}``: every key must hold
  for the same component: ``name`` and ``kind`` by equality, any other key an
  attribute, compared with a plain value (equality) or a condition:
  ``{"at_least": x}``, ``{"at_most": x}``, ``{"between": [low, high]}``
  (both included), ``{"one_of": [v, ...]}``;
- ``{"any": [query, ...]}``: one of them; ``{"all": [query, ...]}``: each of them.

``requires=[q1, q2]`` asks for an ensemble on which each query matches some
component (not necessarily the same one). The helpers below build queries in
programs: ``where(kind="gpu", memory_gb=at_least(4))``.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Iterable, List, Optional

from appliance.components.model import Component
from appliance.program.errors import ProgramError

_CONDITIONS = ("at_least", "at_most", "between", "one_of")
_SCALARS = (bool, int, float, str, type(None))


class QueryError(ProgramError):
    """A query that is not one: says where and what."""


# -- building queries in programs ---------------------------------------------------


def where(name: Optional[str] = None, kind: Optional[str] = None, **attributes: Any) -> Dict[str, Any]:
    """A component with this name, this kind, and these attributes (values or conditions)."""
    query: Dict[str, Any] = {}
    if name is not None:
        query["name"] = name
    if kind is not None:
        query["kind"] = kind
    query.update(attributes)
    return query


def at_least(value: float) -> Dict[str, Any]:
    return {"at_least": value}


def at_most(value: float) -> Dict[str, Any]:
    return {"at_most": value}


def between(low: float, high: float) -> Dict[str, Any]:
    return {"between": [low, high]}


def one_of(*values: Any) -> Dict[str, Any]:
    return {"one_of": list(values)}


def any_of(*queries: Any) -> Dict[str, Any]:
    return {"any": list(queries)}


def all_of(*queries: Any) -> Dict[str, Any]:
    return {"all": list(queries)}


# -- checking and matching ------------------------------------------------------------


#: How deep ``any``/``all`` may nest: far beyond what a person writes, and a bound on
#: the recursion a query from a file can cause.
MAX_DEPTH = 16


def normalize(query: Any, where_: str = "query", depth: int = 0) -> Any:
    """The query in its canonical form (a name becomes ``{"name": ...}``), checked;
    QueryError naming ``where_`` if it is not a query."""
    if depth > MAX_DEPTH:
        raise QueryError("%s: 'any' and 'all' nest more than %d deep" % (where_, MAX_DEPTH))
    if isinstance(query, str):
        if not query:
            raise QueryError("%s: an empty component name" % where_)
        return {"name": query}
    if not isinstance(query, dict) or not query:
        raise QueryError("%s: a query is a component name or a non-empty object, got %r" % (where_, query))
    for combinator in ("any", "all"):
        if combinator in query:
            if len(query) != 1:
                raise QueryError("%s: %r stands alone in its object, got %r" % (where_, combinator, query))
            parts = query[combinator]
            if not isinstance(parts, list) or not parts:
                raise QueryError("%s: %r takes a non-empty list of queries" % (where_, combinator))
            return {combinator: [normalize(part, where_, depth + 1) for part in parts]}
    out: Dict[str, Any] = {}
    for key, value in query.items():
        if not isinstance(key, str) or not key:
            raise QueryError("%s: a key must be a non-empty string, got %r" % (where_, key))
        if key in ("name", "kind") and not isinstance(value, str):
            raise QueryError("%s: %r is compared with a string, got %r" % (where_, key, value))
        out[key] = _condition(value, "%s: attribute %r" % (where_, key))
    return out


def _condition(value: Any, where_: str) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        raise QueryError("%s: %r is not a finite number" % (where_, value))
    if isinstance(value, _SCALARS):
        return value
    if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in _CONDITIONS:
        raise QueryError("%s: a value or one of %s, got %r" % (where_, ", ".join(
            "{%r: ...}" % c for c in _CONDITIONS), value))
    (test, argument), = value.items()
    if test in ("at_least", "at_most") and not _number(argument):
        raise QueryError("%s: %s takes a number, got %r" % (where_, test, argument))
    if test == "between" and not (isinstance(argument, list) and len(argument) == 2
                                  and all(_number(a) for a in argument) and argument[0] <= argument[1]):
        raise QueryError("%s: between takes [low, high], low <= high, got %r" % (where_, argument))
    if test == "one_of" and not (isinstance(argument, list) and argument and all(
            isinstance(a, _SCALARS) and not (isinstance(a, float) and not math.isfinite(a)) for a in argument)):
        raise QueryError("%s: one_of takes a non-empty list of values, got %r" % (where_, argument))
    return {test: argument}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def matches(query: Any, component: Component) -> bool:
    """Whether the (normalized) query holds for ``component``."""
    if "any" in query:
        return any(matches(part, component) for part in query["any"])
    if "all" in query:
        return all(matches(part, component) for part in query["all"])
    for key, condition in query.items():
        if key == "name":
            value: Any = component.name
        elif key == "kind":
            value = component.kind
        elif key in component.attributes:
            value = component.attributes[key]
        else:
            return False
        if not _holds(condition, value):
            return False
    return True


def _holds(condition: Any, value: Any) -> bool:
    if not isinstance(condition, dict):
        if isinstance(value, bool) or isinstance(condition, bool):
            return value is condition  # True is not 1 here
        return value == condition
    (test, argument), = condition.items()
    if test == "one_of":
        return any(_holds(option, value) for option in argument)
    if not _number(value):
        return False
    if test == "at_least":
        return value >= argument
    if test == "at_most":
        return value <= argument
    return argument[0] <= value <= argument[1]


def unmet(queries: Iterable[Any], components: List[Component]) -> List[Any]:
    """The queries no component matches (empty: all are satisfied)."""
    return [query for query in queries if not any(matches(query, c) for c in components)]


def describe(query: Any) -> str:
    """A query for people: ``camera_left``, ``kind=gpu, memory_gb>=4``, ``(a or b)``."""
    if "any" in query or "all" in query:
        word = " or " if "any" in query else " and "
        return "(%s)" % word.join(describe(part) for part in next(iter(query.values())))
    if list(query) == ["name"]:
        return str(query["name"])
    parts = []
    for key, condition in query.items():
        if not isinstance(condition, dict):
            parts.append("%s=%s" % (key, condition))
            continue
        (test, argument), = condition.items()
        parts.append({"at_least": "%s>=%s", "at_most": "%s<=%s"}[test] % (key, argument)
                     if test in ("at_least", "at_most") else
                     "%s in [%s, %s]" % (key, argument[0], argument[1]) if test == "between" else
                     "%s in %s" % (key, argument))
    return ", ".join(parts)

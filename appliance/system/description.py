"""Ensemble descriptions (what an ensemble tells the runtime manager when it
joins) and system files (the ensembles a simulation or deployment has)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, List

from appliance.components.drivers import DriverError, check_drivers
from appliance.components.model import Component, ComponentError, component_from_wire
from appliance.program.errors import ProgramError
from appliance.program.jsonfile import load_json
from appliance.program.names import NAME_RULE, is_name

#: The name of the runtime manager's own ensemble: no other ensemble may take it.
RUNTIME_MANAGER = "runtime-manager"


class SystemFileError(ProgramError):
    """A system file or ensemble description that does not validate."""


#: Ensembles one runtime manager accepts unless its shell says fewer (its transport's
#: peer table must hold them all); more joins are refused with a reason.
MAX_ENSEMBLES = 4096

#: What a system file holds (anything else is a typo, refused rather than ignored).
SYSTEM_KEYS = ("ensembles", "links")

#: The largest capacity a system file may give an ensemble (sums of capacities stay numbers).
MAX_CAPACITY = 1_000_000

#: What a link to another ensemble may say: its one-way latency (µs) and a relative cost.
LINK_KEYS = ("latency", "cost")


@dataclass
class EnsembleDescription:
    """An ensemble as the runtime manager knows it: what it told at its join.

    ``links`` are what is known of its links to other ensembles, by their name:
    ``{"latency": µs, "cost": c}`` (either may be missing); the static mapper keeps
    connected SQs together by them and checks latency bounds against them.
    """

    name: str
    address: str = ""
    components: List[Component] = field(default_factory=list)
    resources: Dict[str, Any] = field(default_factory=dict)
    links: Dict[str, Dict[str, float]] = field(default_factory=dict)

    def component_names(self) -> List[str]:
        return [c.name for c in self.components]

    @property
    def capacity(self) -> float:
        """What SQ costs this ensemble can carry before it counts as loaded: its
        ``resources.capacity`` if given, else the cores of its compute components,
        else 1."""
        given = self.resources.get("capacity")
        if _positive(given):
            return given
        cores = sum(c.attributes.get("cores", 0) for c in self.components
                    if c.kind == "compute" and _positive(c.attributes.get("cores")))
        return min(cores, MAX_CAPACITY) or 1

    def to_wire(self) -> Dict[str, Any]:
        return {
            "name": self.name,
            "address": self.address,
            "components": [c.to_wire() for c in self.components],
            "resources": dict(self.resources),
            "links": {other: dict(link) for other, link in self.links.items()},
        }

    @classmethod
    def from_wire(cls, doc: Any, where: str = "ensemble") -> EnsembleDescription:
        if not isinstance(doc, dict):
            raise SystemFileError("%s: must be an object" % where)
        name = doc.get("name")
        if not is_name(name):
            raise SystemFileError("%s: field 'name': %r is not a valid ensemble name (%s)" % (where, name, NAME_RULE))
        where = "%s '%s'" % (where, name)
        address = doc.get("address", "")
        if not isinstance(address, str):
            raise SystemFileError("%s: field 'address' must be a string" % where)
        raw = doc.get("components", [])
        if not isinstance(raw, list):
            raise SystemFileError("%s: field 'components' must be a list" % where)
        try:
            components = [component_from_wire(item, where) for item in raw]
        except ComponentError as exc:
            raise SystemFileError(str(exc)) from None
        names = [c.name for c in components]
        doubled = sorted({n for n in names if names.count(n) > 1})
        if doubled:
            raise SystemFileError("%s: field 'components' names component %r twice" % (where, doubled[0]))
        resources = doc.get("resources", {})
        if not isinstance(resources, dict):
            raise SystemFileError("%s: field 'resources' must be an object" % where)
        if "capacity" in resources and not (_positive(resources["capacity"])
                                            and resources["capacity"] <= MAX_CAPACITY):
            raise SystemFileError("%s: resources.capacity must be a positive number up to %d, got %r"
                                  % (where, MAX_CAPACITY, resources["capacity"]))
        links = doc.get("links", {})
        if not isinstance(links, dict) or not all(_link_ok(link) for link in links.values()):
            raise SystemFileError("%s: field 'links' must map ensemble names to {\"latency\": µs, \"cost\": c}"
                                  % where)
        return cls(name, address, components, resources, {other: dict(link) for other, link in links.items()})


def _link_ok(link: Any) -> bool:
    return isinstance(link, dict) and all(key in LINK_KEYS and _non_negative(value) for key, value in link.items())


def system_from_document(doc: Any, source: str = "system") -> List[EnsembleDescription]:
    if not isinstance(doc, dict) or not isinstance(doc.get("ensembles"), list):
        raise SystemFileError("%s: must be an object with a list 'ensembles'" % source)
    unknown = sorted(str(key) for key in doc if key not in SYSTEM_KEYS)
    if unknown:
        raise SystemFileError("%s: unknown key %r (a system file holds %s)"
                              % (source, unknown[0], " and ".join(SYSTEM_KEYS)))
    if not doc["ensembles"]:
        raise SystemFileError("%s: 'ensembles' names no ensemble; list at least one" % source)
    if len(doc["ensembles"]) > MAX_ENSEMBLES:
        raise SystemFileError("%s: %d ensembles: a runtime manager takes at most %d"
                              % (source, len(doc["ensembles"]), MAX_ENSEMBLES))
    ensembles = [EnsembleDescription.from_wire(item, "%s: ensembles[%d]" % (source, i))
                 for i, item in enumerate(doc["ensembles"])]
    by_name: Dict[str, EnsembleDescription] = {}
    for ensemble in ensembles:
        if ensemble.name in by_name:
            raise SystemFileError("%s: ensemble '%s' is listed twice" % (source, ensemble.name))
        if ensemble.name == RUNTIME_MANAGER:  # its ensemble is there already, and a candidate like the others
            raise SystemFileError("%s: ensemble name %r is the runtime manager's; rename that ensemble"
                                  % (source, RUNTIME_MANAGER))
        by_name[ensemble.name] = ensemble
    links = doc.get("links", [])
    if not isinstance(links, list):
        raise SystemFileError("%s: 'links' must be a list of {\"between\": [a, b], \"latency_ms\": ..., "
                              "\"cost\": ...}" % source)
    for index, item in enumerate(links):
        where = "%s: links[%d]" % (source, index)
        pair = item.get("between") if isinstance(item, dict) else None
        if not (isinstance(pair, list) and len(pair) == 2 and pair[0] != pair[1]
                and all(isinstance(p, str) and p in by_name for p in pair)):
            raise SystemFileError("%s: 'between' must name two different ensembles of the file, got %r" % (where, pair))
        link: Dict[str, float] = {}
        for key, value in item.items():
            if key == "latency_ms" and _non_negative(value) and _non_negative(value * 1000):  # µs, finite
                link["latency"] = int(round(value * 1000))
            elif key == "cost" and _non_negative(value):
                link["cost"] = value
            elif key in ("latency_ms", "cost"):
                raise SystemFileError("%s: %r must be a finite non-negative number, got %r" % (where, key, value))
            elif key != "between":
                raise SystemFileError("%s: %r is not a key of a link (between, latency_ms, cost)" % (where, key))
        a, b = pair
        if b in by_name[a].links:
            raise SystemFileError("%s: the link between %s and %s is given twice" % (where, a, b))
        by_name[a].links[b] = dict(link)
        by_name[b].links[a] = dict(link)
    return ensembles


def _non_negative(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < float("inf")


def _positive(value: Any) -> bool:
    return _non_negative(value) and value > 0


def load_system(path: str) -> List[EnsembleDescription]:
    """Read a system file: ``{"ensembles": [{"name": ..., "components": [...]}, ...]}``.

    Every component's driver must resolve (``python:`` modules are looked for next to
    the file first, then on ``sys.path``)."""
    ensembles = system_from_document(load_json(path, lambda why: SystemFileError("%s: %s" % (path, why))), path)
    search = [os.path.dirname(os.path.abspath(path))]
    for index, ensemble in enumerate(ensembles):
        try:
            check_drivers(ensemble.components, "%s: ensembles[%d] '%s'" % (path, index, ensemble.name), search)
        except DriverError as exc:
            raise SystemFileError(str(exc)) from None
    return ensembles

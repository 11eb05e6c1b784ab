"""Ensemble descriptions (what an ensemble tells the runtime manager when it
joins) and system files (the ensembles a simulation or deployment has)."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Type

from appliance.program.errors import ProgramError

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}$")


class SystemFileError(ProgramError):
    """A system file or ensemble description that does not validate."""


@dataclass(frozen=True)
class Component:
    """A sensor, actuator or other capability of an ensemble, found by name."""

    name: str
    kind: str = ""
    fields: Dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass
class EnsembleDescription:
    name: str
    address: str = ""
    components: List[Component] = field(default_factory=list)
    resources: Dict[str, Any] = field(default_factory=dict)

    def component_names(self) -> List[str]:
        return [c.name for c in self.components]

    def to_wire(self) -> Dict[str, Any]:
        return {
            "name": self.name,
            "address": self.address,
            "components": [{"name": c.name, "kind": c.kind, "fields": dict(c.fields)} for c in self.components],
            "resources": dict(self.resources),
        }

    @classmethod
    def from_wire(cls, doc: Any, where: str = "ensemble") -> EnsembleDescription:
        if not isinstance(doc, dict):
            raise SystemFileError("%s: must be an object" % where)
        name = doc.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise SystemFileError("%s: field 'name': %r is not a valid ensemble name "
                               "(letters, digits, '_', '.', '-'; at most 64)" % (where, name))
        where = "%s '%s'" % (where, name)
        address = doc.get("address", "")
        if not isinstance(address, str):
            raise SystemFileError("%s: field 'address' must be a string" % where)
        components = []
        raw = doc.get("components", [])
        if not isinstance(raw, list):
            raise SystemFileError("%s: field 'components' must be a list" % where)
        for item in raw:
            if isinstance(item, str):
                item = {"name": item}
            if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
                raise SystemFileError("%s: field 'components': each is a name or an object with a name" % where)
            fields = item.get("fields", {})
            if not isinstance(fields, dict):
                raise SystemFileError("%s: component %r: 'fields' must be an object" % (where, item["name"]))
            components.append(Component(item["name"], str(item.get("kind", "")), fields))
        names = [c.name for c in components]
        if len(set(names)) != len(names):
            raise SystemFileError("%s: field 'components' names a component twice" % where)
        resources = doc.get("resources", {})
        if not isinstance(resources, dict):
            raise SystemFileError("%s: field 'resources' must be an object" % where)
        return cls(name, address, components, resources)


def system_from_document(doc: Any, source: str = "system") -> List[EnsembleDescription]:
    if not isinstance(doc, dict) or not isinstance(doc.get("ensembles"), list):
        raise SystemFileError("%s: must be an object with a list 'ensembles'" % source)
    if not doc["ensembles"]:
        raise SystemFileError("%s: 'ensembles' names no ensemble; list at least one" % source)
    ensembles = [EnsembleDescription.from_wire(item, "%s: ensembles[%d]" % (source, i))
                 for i, item in enumerate(doc["ensembles"])]
    seen = set()
    for ensemble in ensembles:
        if ensemble.name in seen:
            raise SystemFileError("%s: ensemble '%s' is listed twice" % (source, ensemble.name))
        seen.add(ensemble.name)
    return ensembles


def load_json(path: str, error: Type[ProgramError]) -> Any:
    """A JSON file's document; ``error`` (naming the file) when it cannot be read or parsed."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except OSError as exc:
        raise error("%s: cannot read: %s" % (path, exc.strerror)) from None
    except ValueError as exc:
        raise error("%s: not JSON: %s" % (path, exc)) from None


def load_system(path: str) -> List[EnsembleDescription]:
    """Read a system file: ``{"ensembles": [{"name": ..., "components": [...]}, ...]}``."""
    return system_from_document(load_json(path, SystemFileError), path)

"""An ensemble's components (sensors, actuators, cameras, compute, clocks, ...), the
queries programs place SQs with, and the drivers SQs read and write them through.

Inside an SQ::

    from appliance import components

    value = components.read("temp0")      # through temp0's driver, on this SQ's ensemble
    components.write("valve", 1)
"""
from appliance.components.access import AccessError, attached, has, read, write
from appliance.components.inventory import Inventory
from appliance.components.model import KINDS, Component, ComponentError, component_from_wire
from appliance.components.query import (
    QueryError,
    all_of,
    any_of,
    at_least,
    at_most,
    between,
    describe,
    matches,
    normalize,
    one_of,
    unmet,
    where,
)

__all__ = [
    "KINDS",
    "AccessError",
    "Component",
    "ComponentError",
    "Inventory",
    "QueryError",
    "all_of",
    "attached",
    "any_of",
    "at_least",
    "at_most",
    "between",
    "component_from_wire",
    "describe",
    "has",
    "matches",
    "normalize",
    "one_of",
    "read",
    "unmet",
    "where",
    "write",
]

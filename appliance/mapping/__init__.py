"""Mapping a graph onto ensembles (trivial, random, static), and the arc
destinations that follow from a mapping."""
from appliance.mapping.arcs import assign_mapping
from appliance.mapping.candidates import MappingError
from appliance.mapping.strategies import (
    DEFAULT_STRATEGY,
    STRATEGIES,
    map_graph,
    random_mapping,
    static_mapping,
    trivial_mapping,
)

__all__ = ["DEFAULT_STRATEGY", "STRATEGIES", "MappingError", "assign_mapping", "map_graph", "random_mapping",
           "static_mapping", "trivial_mapping"]

"""Mapping a graph onto ensembles, and the forward tables that follow from it."""
from appliance.mapping.arcs import forward_parts
from appliance.mapping.strategies import STRATEGIES, MappingError, map_graph

__all__ = ["STRATEGIES", "MappingError", "forward_parts", "map_graph"]

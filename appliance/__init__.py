"""appliance: a hardened runtime for timed dataflow programs on edge devices.

Programs import their vocabulary from here::

    from appliance import sq, stream, graph, finish_by, EMPTY
"""
from appliance.program import EMPTY, finish_by, graph, sq, stream

__version__ = "0.1.0"

__all__ = ["EMPTY", "finish_by", "graph", "sq", "stream", "__version__"]

"""appliance: a hardened runtime for timed dataflow programs on edge devices.

Programs import their vocabulary from here::

    from appliance import sq, stream, graph, finish_by, placement, max_latency, EMPTY

and what SQs need of their ensemble's components from ``appliance.components``
(``where(kind="camera")`` to place them, ``components.read("temp0")`` inside them).
"""
from appliance.program import EMPTY, finish_by, graph, max_latency, placement, sq, stream

__version__ = "0.1.0"

__all__ = ["EMPTY", "finish_by", "graph", "max_latency", "placement", "sq", "stream", "__version__"]

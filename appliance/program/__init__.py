"""The program model and authoring API: SQs, streams, graphs, deadlines, graph files."""
from appliance.program.authoring import (
    GraphTemplate,
    Handle,
    SQTemplate,
    finish_by,
    graph,
    max_latency,
    placement,
    sq,
    stream,
)
from appliance.program.errors import BuildError, GraphFileError, ProgramError
from appliance.program.loader import load_program
from appliance.program.model import Arc, Graph, LatencyBound, ProgramSource, SQSpec, StreamSpec
from appliance.program.token import EMPTY, Empty, Tag, Token

__all__ = [
    "EMPTY",
    "Arc",
    "BuildError",
    "Empty",
    "Graph",
    "GraphFileError",
    "GraphTemplate",
    "Handle",
    "LatencyBound",
    "ProgramError",
    "ProgramSource",
    "SQSpec",
    "SQTemplate",
    "StreamSpec",
    "Tag",
    "Token",
    "finish_by",
    "graph",
    "load_program",
    "max_latency",
    "placement",
    "sq",
    "stream",
]

"""Loading a deployed program's SQ functions on an ensemble.

The runtime manager ships the program file's source inside the (reliable,
authenticated when a cluster key is set) deploy message, and each ensemble
compiles it into a fresh module. This is the one place where code arrives
over the network and runs: by design, as in TickTalk, and only from the
runtime manager's address, and only when the network core admits it
(``NetworkCore.deliver``, ``NetworkManager.admits_code``): signed by the
runtime manager's key, or carried by a transport that authenticates every
datagram (a cluster key), or on the simulator's closed network, or from this
host's loopback (which the kernel drops on other interfaces). A source address
from anywhere else never suffices (docs/decisions.md). Data never goes this
way: tokens are decoded by the safe codec.
"""
from __future__ import annotations

import hashlib
import linecache
import sys
import types
from collections import OrderedDict
from typing import Any, Callable, Dict

from appliance.program.authoring import SQTemplate
from appliance.program.builtins import BUILTINS
from appliance.program.model import ProgramSource, SQSpec

#: Deployed code's file names read "prog.py (deployed 1a2b3c4d)".
DEPLOYED_MARK = " (deployed "

_compiled: OrderedDict[str, types.CodeType] = OrderedDict()
_COMPILED_MAX = 8


def program_from_wire(doc: Any) -> ProgramSource:
    if not isinstance(doc, dict):
        raise TypeError("program must be an object")
    program = ProgramSource(str(doc["module"]), str(doc["filename"]), str(doc["source"]))
    if doc.get("sha256") != program.sha256:
        raise ValueError("program source does not match its sha256")
    return program


def program_to_wire(program: ProgramSource) -> Dict[str, str]:
    return {"module": program.module, "filename": program.filename, "source": program.source,
            "sha256": program.sha256}


def _code_for(program: ProgramSource) -> types.CodeType:
    """Compile once per source (a simulation deploys one program to many ensembles)."""
    key = program.sha256
    code = _compiled.get(key)
    if code is None:
        filename = "%s%s%s)" % (program.filename, DEPLOYED_MARK, key[:8])
        code = compile(program.source, filename, "exec")
        # Tracebacks from SQs show the program's lines although no file exists here.
        linecache.cache[filename] = (len(program.source), None, program.source.splitlines(True), filename)
        _compiled[key] = code
        while len(_compiled) > _COMPILED_MAX:
            _compiled.popitem(last=False)
    return code


def load_module(program: ProgramSource, ensemble: str) -> types.ModuleType:
    """Run the program file in a new module of its own (one per ensemble and deployment).

    Module-level imports and helpers are there for the SQs, unlike in the
    original runtime where only the function body was shipped.
    """
    digest = hashlib.sha1(("%s|%s" % (ensemble, program.sha256)).encode()).hexdigest()[:12]
    module = types.ModuleType("appliance_deployed_%s_%s" % (program.module, digest))
    module.__file__ = program.filename
    sys.modules[module.__name__] = module  # dataclasses and typing look modules up by name
    try:
        exec(_code_for(program), module.__dict__)  # noqa: S102 -- the deployment, see module docstring
    except BaseException:
        sys.modules.pop(module.__name__, None)
        raise
    return module


def unload_module(module: types.ModuleType) -> None:
    sys.modules.pop(module.__name__, None)


def sq_function(spec: SQSpec, module: types.ModuleType) -> Callable[..., Any]:
    if spec.kind == "builtin":
        return BUILTINS[spec.function][0]
    value = getattr(module, spec.function, None)
    if isinstance(value, SQTemplate):
        return value.function
    raise LookupError("program %s has no @sq/@stream function %s" % (module.__file__, spec.function))

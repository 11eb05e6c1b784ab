"""Load a program file and build one of its graphs: ``PROGRAM.py[:graph_name]``."""
from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import traceback
from typing import Dict

from appliance.program.authoring import GraphTemplate
from appliance.program.errors import BuildError, ProgramError, exception_text, stops_the_process
from appliance.program.model import Graph


def split_target(target: str):
    """``"prog.py:main"`` -> ``("prog.py", "main")``; ``"prog.py"`` -> ``("prog.py", None)``."""
    path, sep, name = target.rpartition(":")
    if sep and path.endswith(".py") and name.isidentifier():
        return path, name
    return target, None


def graphs_in(path: str) -> Dict[str, GraphTemplate]:
    """Import the program file and return its ``@graph`` functions by name."""
    if not os.path.isfile(path):
        raise ProgramError("%s: %s" % (path, "a directory, not a program file" if os.path.isdir(path)
                                       else "no such program file"))
    if not path.endswith(".py"):
        raise ProgramError("%s: a program is a Python file (.py)" % path)
    real = os.path.realpath(path)
    module_name = "appliance_program_%s_%s" % (
        os.path.splitext(os.path.basename(real))[0], hashlib.sha1(real.encode()).hexdigest()[:8])
    spec = importlib.util.spec_from_file_location(module_name, real)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    directory = os.path.dirname(real)
    sys.modules[module_name] = module
    sys.path.insert(0, directory)  # helper modules next to the program import as they would when run
    try:
        spec.loader.exec_module(module)
    except BuildError:
        raise
    except SyntaxError as exc:
        raise BuildError("syntax error: %s" % exc.msg, filename=exc.filename or path, line=exc.lineno) from None
    except BaseException as exc:  # sys.exit() at import would end the command, silently
        if stops_the_process(exc):
            raise
        raise _error_in_program(exc, real) from None
    finally:
        sys.path.remove(directory)
    return {name: value for name, value in vars(module).items() if isinstance(value, GraphTemplate)}


def load_program(target: str) -> Graph:
    """Build the graph named by ``target`` (``PROGRAM.py`` or ``PROGRAM.py:graph_name``)."""
    path, name = split_target(target)
    graphs = graphs_in(path)
    if not graphs:
        raise ProgramError("%s: defines no @graph function" % path)
    if name is None:
        if len(graphs) > 1:
            raise ProgramError("%s: defines several graphs (%s); say which: %s:NAME"
                               % (path, ", ".join(sorted(graphs)), path))
        name = next(iter(graphs))
    elif name not in graphs:
        raise ProgramError("%s: no @graph named %r (it has %s)" % (path, name, ", ".join(sorted(graphs))))
    try:
        return graphs[name].build()
    except ProgramError:
        raise
    except BaseException as exc:
        if stops_the_process(exc):
            raise
        raise _error_in_program(exc, os.path.realpath(path)) from None


def _error_in_program(exc: BaseException, real_path: str) -> BuildError:
    """Point at the deepest line of the program file in the traceback."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if os.path.realpath(frame.filename) == real_path:
            line = frame.lineno
    if isinstance(exc, SystemExit):
        return BuildError("the program called sys.exit(%s): it is imported to be built, not run; keep what runs "
                          "it under if __name__ == '__main__'" % ("" if exc.code is None else repr(exc.code)),
                          filename=real_path, line=line)
    return BuildError("%s: %s" % (type(exc).__name__, exception_text(exc)), filename=real_path, line=line)

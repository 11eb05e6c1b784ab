"""The execute process core: runs SQ functions on execution contexts."""
from __future__ import annotations

import traceback
import types
from typing import Any, Callable, Dict, List, Optional

from appliance.ipc import ExecuteMsg, ExecutionContext, Message, NetMsg, Output, Recipient, RuntimeMsg
from appliance.program.graphfile import sq_from_document
from appliance.program.model import SQSpec
from appliance.runtime import reports
from appliance.runtime.code import DEPLOYED_MARK, load_module, program_from_wire, sq_function, unload_module
from appliance.runtime.core import Core
from appliance.runtime.counters import Counters
from appliance.runtime.reports import MAX_ERROR_REPORTS

# Hot-path constants: an enum member lookup costs ~0.1 µs, a global ~0.01 µs.
_SEND_TOKENS, _NETWORK = NetMsg.SEND_TOKENS, Recipient.NETWORK


def _where(tb: Any) -> str:
    """`` (prog.py:12)``: the deepest line of the deployed program in a traceback."""
    where = ""
    for frame in traceback.extract_tb(tb):
        file, marker, _ = frame.filename.partition(DEPLOYED_MARK)
        if marker:
            where = " (%s:%s)" % (file, frame.lineno)
    return where


class Executable:
    """One SQ's function, how to call it, and its persistent state."""

    __slots__ = ("spec", "function", "state", "errors", "by_name", "plain")

    def __init__(self, spec: SQSpec, function: Callable[..., Any]) -> None:
        self.spec = spec
        self.function = function
        self.state: Optional[Dict[str, Any]] = {} if spec.state else None
        self.errors = 0
        # Inputs go positionally unless ``state``/``tick`` sit before an input in the signature.
        code = function.__code__
        params = list(code.co_varnames[:code.co_argcount])
        inputs = [params.index(name) for name in spec.inputs if name in params]
        reserved = [params.index(name) for name in ("state", "tick") if name in params]
        self.by_name = bool(inputs and reserved and min(reserved) < max(inputs))
        #: Inputs only, positionally: most SQs, called directly rather than through ``call``.
        self.plain = self.state is None and not spec.tick and not self.by_name

    def call(self, values: tuple, tick: Optional[int]) -> Any:
        kwargs: Dict[str, Any] = dict(zip(self.spec.inputs, values)) if self.by_name else {}
        if self.state is not None:
            kwargs["state"] = self.state
        if self.spec.tick:
            kwargs["tick"] = tick
        if self.by_name:
            return self.function(**kwargs)
        return self.function(*values, **kwargs) if kwargs else self.function(*values)


class ExecuteCore(Core):
    """Runs each execution context and hands the outputs to the network manager.

    An exception in user code is caught, counted and reported to the runtime
    manager with the SQ's name and traceback; the SQ keeps serving later
    tokens. (In the original runtime one exception ended the ensemble.)
    """

    recipient = Recipient.EXECUTE

    def __init__(self, ensemble: str) -> None:
        super().__init__(ensemble)
        self.app: Any = None
        self.module: Optional[types.ModuleType] = None
        self.sqs: Dict[str, Executable] = {}
        self.executions = 0  # a plain int: the hottest counter, folded into the report
        self.on(ExecuteMsg.EXECUTION_CONTEXT, self._execute)
        self.on(ExecuteMsg.INSTANTIATE_SQS, self._instantiate)
        self.on(ExecuteMsg.REMOVE_SQS, self._remove)
        self.on(ExecuteMsg.END, lambda payload, now: [])

    def _instantiate(self, payload: Any, now: int) -> List[Output]:
        app, program_doc, docs = payload
        errors: List[str] = []
        sqs: Dict[str, Executable] = {}
        module = None
        try:
            program = program_from_wire(program_doc)
            module = load_module(program, self.ensemble)
        except Exception as exc:
            errors.append("%s: program does not load here: %s: %s" % (self.ensemble, type(exc).__name__, exc))
        if module is not None:
            for index, doc in enumerate(docs):
                try:
                    spec = sq_from_document(doc, source="deployed SQ", index=index)
                    sqs[spec.name] = Executable(spec, sq_function(spec, module))
                except Exception as exc:
                    errors.append("%s: %s" % (self.ensemble, exc))
        if errors:
            if module is not None:
                unload_module(module)
        else:
            self.app, self.module = app, module
            self.sqs.update(sqs)
        return [reports.ready(app, self.ensemble, self.recipient, errors)]

    def _execute(self, ctx: Any, now: int) -> List[Output]:
        if type(ctx) is not ExecutionContext:
            raise TypeError("an execution context payload must be an ExecutionContext")
        exe = self.sqs.get(ctx.sq)
        if exe is None:
            self.counters.drop("unknown_sq")
            return []
        spec = exe.spec
        self.executions += 1
        try:
            result = exe.function(*ctx.values) if exe.plain else exe.call(ctx.values, ctx.tick)
            if spec.outputs == 1:
                outputs = (result,)
            elif isinstance(result, (tuple, list)) and len(result) == spec.outputs:
                outputs = tuple(result)
            else:
                raise ValueError("SQ %s has outputs=%d but returned %r" % (spec.name, spec.outputs, result))
        except (Exception, SystemExit) as exc:
            return self._failed(exe, exc)
        return [Message(_SEND_TOKENS, (ctx.sq, ctx.interval, outputs), _NETWORK)]

    def _failed(self, exe: Executable, exc: BaseException) -> List[Output]:
        self.counters.incr("sq_errors")
        exe.errors += 1
        if exe.errors > MAX_ERROR_REPORTS:
            return []
        tb = exc.__traceback__.tb_next if exc.__traceback__ else None  # skip this core's frame
        text = "".join(traceback.format_exception(type(exc), exc, tb))
        line = "%s: %s%s" % (type(exc).__name__, exc, _where(tb))
        return [reports.to_runtime_manager(Message(
            RuntimeMsg.SQ_ERROR, (self.app, self.ensemble, exe.spec.name, line, text), Recipient.RUNTIME_MANAGER))]

    def _remove(self, app: Any, now: int) -> List[Output]:
        errors = {name: exe.errors for name, exe in self.sqs.items() if exe.errors}
        self.counters.incr("executions", self.executions)
        self.executions = 0
        report = {"counters": self.counters.as_dict(), "errors": errors}
        if self.module is not None:
            unload_module(self.module)
        self.sqs.clear()
        self.module = None
        self.app = None
        self.counters = Counters()
        return [reports.removed(app, self.ensemble, self.recipient, report)]

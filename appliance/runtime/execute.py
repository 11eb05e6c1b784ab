"""The execute process core: runs SQ functions on execution contexts."""
from __future__ import annotations

import traceback
import types
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from appliance.components.access import CURRENT, Attached, Opener
from appliance.components.model import Component
from appliance.ipc import ExecuteMsg, ExecutionContext, Message, NetMsg, Output, Recipient, RuntimeMsg
from appliance.ipc.codec import IMMUTABLE, ValueTooLarge, outbound_copy, private_copy
from appliance.program.errors import exception_text, stops_the_process
from appliance.program.graphfile import sq_from_document
from appliance.program.model import SQSpec
from appliance.program.token import Empty
from appliance.runtime import reports
from appliance.runtime.code import DEPLOYED_MARK, load_module, program_from_wire, sq_function, unload_module
from appliance.runtime.core import AppCore
from appliance.runtime.reports import MAX_ERROR_REPORTS
from appliance.runtime.watchdog import MAX_TIME_LIMIT, RUNNING, TimeLimitExceeded, Watched

# Hot-path constants: an enum member lookup costs ~0.1 µs, a global ~0.01 µs.
_SEND_TOKENS, _NETWORK = NetMsg.SEND_TOKENS, Recipient.NETWORK
_CURRENT, _RUNNING = CURRENT, RUNNING

#: The SQ name teardown errors are reported under (no SQ can have it).
TEARDOWN = "teardown()"

#: The most one firing may send, all its outputs together, encoded: 256 KiB. The same
#: wherever its consumers run, so what an SQ may return does not depend on the mapping,
#: and small beside what carries it on: a device's queue (2 MiB) holds 7 such values (or
#: the inputs of one firing), a transport message (4 MiB) 15; a value for many SQs of one
#: ensemble travels once (codec.py). docs/decisions.md.
MAX_FIRING_BYTES = 256 * 1024

#: Values whose encoding is a few bytes whatever they are: sent without measuring them.
_SMALL = frozenset([float, bool, type(None), Empty])

#: Characters of an SQ's input kept with an error report (``--debug`` shows them).
MAX_INPUT_REPR = 300


def input_repr(values: tuple, limit: int = MAX_INPUT_REPR) -> str:
    """The input of a failed firing, for a person: ``repr``, cut to ``limit`` characters."""
    try:
        text = repr(values)
    except BaseException as exc:  # a user type whose __repr__ raises
        if stops_the_process(exc):
            raise
        text = "<input whose repr failed: %s>" % type(exc).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _described(exc: BaseException) -> Tuple[str, str]:
    """An exception raised by program code: its line for a person, and its traceback."""
    tb = exc.__traceback__.tb_next if exc.__traceback__ else None  # skip this core's frame
    return ("%s: %s%s" % (type(exc).__name__, exception_text(exc), _where(tb)),
            "".join(traceback.format_exception(type(exc), exc, tb)))


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

    __slots__ = ("spec", "function", "state", "errors", "executions", "unsendable", "by_name", "plain",
                 "time_limit", "stopped", "not_run")

    #: What follows a firing's stop by the watchdog, for the error's text.
    after_stop = "; it is not called again in this app"

    def __init__(self, spec: SQSpec, function: Callable[..., Any], time_limit: float) -> None:
        self.spec = spec
        self.function = function
        self.state: Optional[Dict[str, Any]] = {} if spec.state else None
        self.errors = 0
        self.executions = 0
        self.unsendable = 0
        #: Seconds one firing may run (the app's ``sq_time_limit``), and whether one ran longer.
        self.time_limit = time_limit
        self.stopped = False
        self.not_run = 0  # firings after it was stopped
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


class ExecuteCore(AppCore):
    """Runs each execution context and hands the outputs to the network manager.

    An exception in user code is caught, counted and reported to the runtime
    manager with the SQ's name and traceback; the SQ keeps serving later
    tokens. (In the original runtime one exception ended the ensemble.)

    An SQ's values are its own: it is called with private copies of its
    inputs and what it returns is copied as it leaves (``private_copy``), as
    crossing a process would, so no two SQs or firings share a mutable object
    in any shell or mapping. A value that cannot be copied cannot be sent
    either: it is the SQ's error, ``unsendable``.

    SQs reach the ensemble's ``components`` through ``components.read`` and
    ``write`` (``appliance.components.access``): before each call the core
    points the module-level context at this deployment's :class:`Attached`,
    which opens a component's handle with ``drivers`` (the shell's opener) at
    its first use. When the app is removed (or at ``END``) the program's
    top-level ``teardown()``, if it has one, runs, then the handles are closed;
    what fails there is an SQ error reported under ``teardown()``.

    A firing that runs longer than the app's ``sq_time_limit`` is stopped by the
    shell's :class:`~appliance.runtime.watchdog.Watchdog`, which this core tells
    what runs now (``RUNNING``); the SQ is not called again in that app.
    """

    recipient = Recipient.EXECUTE

    def __init__(self, ensemble: str, components: Iterable[Component] = (),
                 drivers: Optional[Opener] = None) -> None:
        super().__init__(ensemble)
        self.module: Optional[types.ModuleType] = None
        self.sqs: Dict[str, Executable] = {}
        #: The ensemble's components, read at each deployment (a simulated ensemble's may grow before it joins).
        self.components = components
        self.drivers = drivers
        #: This deployment's components as its SQs reach them (their handles, opened at first use).
        self.attached = Attached(ensemble)
        self._released = True
        #: Seconds the deployed program's code may run at once (its app's ``sq_time_limit``).
        self.time_limit = 0.0
        self.on(ExecuteMsg.EXECUTION_CONTEXT, self._execute)
        self.on(ExecuteMsg.INSTANTIATE_SQS, self._instantiate)
        self.on(ExecuteMsg.REMOVE_SQS, self._remove)
        self.on(ExecuteMsg.FORGET_APPS, self._forget)
        self.on(ExecuteMsg.END, self._end)

    def _instantiate(self, payload: Any, now: int) -> List[Output]:
        app, program_doc, docs, time_limit = payload
        refusal = self.refuse_deploy(app)
        if not refusal and (type(time_limit) is not int or not 0 < time_limit <= MAX_TIME_LIMIT):
            refusal = "%s: its sq_time_limit must be an int of µs from 1 to %d, got %r" % (
                self.ensemble, MAX_TIME_LIMIT, time_limit)
        if refusal:
            return [reports.ready(app, self.ensemble, self.recipient, [refusal])]
        errors: List[str] = []
        sqs: Dict[str, Executable] = {}
        module = None
        attached = _CURRENT.attached = Attached(self.ensemble, self.components, self.drivers)  # for top-level code
        try:
            program = program_from_wire(program_doc)
            _RUNNING.exe = Watched(time_limit / 1e6)  # its top level runs here, as long as an SQ may
            _RUNNING.longest = max(_RUNNING.longest, time_limit / 1e6)
            _RUNNING.announce()
            module = load_module(program, self.ensemble)
            _RUNNING.exe = None
        except BaseException as exc:  # sys.exit() at its top level must not end us
            _RUNNING.exe = None
            if stops_the_process(exc):
                raise
            errors.append("%s: program does not load here: %s: %s" % (self.ensemble, type(exc).__name__,
                                                                      exception_text(exc)))
        _CURRENT.attached = None
        if module is not None:
            for index, doc in enumerate(docs):
                try:
                    spec = sq_from_document(doc, source="deployed SQ", index=index)
                    sqs[spec.name] = Executable(spec, sq_function(spec, module), time_limit / 1e6)
                except Exception as exc:
                    errors.append("%s: %s" % (self.ensemble, exc))
        if errors:
            if module is not None:
                unload_module(module)
            errors.extend("%s: %s" % (self.ensemble, line) for line in attached.close())
        else:
            self.install(app)
            self.time_limit = time_limit / 1e6
            self.module = module
            self.sqs.update(sqs)
            self.attached = attached
            self._released = False
        return [reports.ready(app, self.ensemble, self.recipient, errors)]

    def _execute(self, ctx: Any, now: int) -> List[Output]:
        if type(ctx) is not ExecutionContext:
            raise TypeError("an execution context payload must be an ExecutionContext")
        exe = self.sqs.get(ctx.sq)
        if exe is None:
            self.counters.drop("unknown_sq")
            return []
        if exe.stopped:
            exe.not_run += 1
            return []
        spec = exe.spec
        exe.executions += 1
        values = ctx.values
        try:
            if len(values) != 1 or values[0].__class__ not in IMMUTABLE:  # private_copy's test, inline
                values = private_copy(values)
            _CURRENT.attached = self.attached  # what components.read/write reach during this call, and only then
            _RUNNING.exe = exe  # what the watchdog looks at
            result = exe.function(*values) if exe.plain else exe.call(values, ctx.tick)
            _RUNNING.exe = _CURRENT.attached = None
            if spec.outputs == 1:
                outputs = (result,)
            elif isinstance(result, (tuple, list)) and len(result) == spec.outputs:
                outputs = tuple(result)
            else:
                raise ValueError("SQ %s has outputs=%d but %s"
                                 % (spec.name, spec.outputs, _returned(result, spec.outputs)))
        except BaseException as exc:  # whatever the SQ raises is its error (errors.stops_the_process)
            _RUNNING.exe = _CURRENT.attached = None
            if stops_the_process(exc):
                raise
            if exc.__class__ is TimeLimitExceeded:
                exe.stopped = True
            return self._failed(exe, exc, values)
        try:
            if len(outputs) != 1 or outputs[0].__class__ not in _SMALL:  # one small value: nothing to copy or measure
                outputs = outbound_copy(outputs, MAX_FIRING_BYTES)
        except ValueTooLarge:  # the text leaves out the size, so every such error of the SQ is one
            return self._unsendable(exe, "its outputs are more than the %d bytes (256 KiB) one firing may send, "
                                         "encoded" % MAX_FIRING_BYTES, values)
        except BaseException as exc:  # whatever the codec raises (or a value's own methods): it cannot leave its SQ
            if stops_the_process(exc):
                raise
            return self._unsendable(exe, "its output cannot be sent to another SQ: %s: %s"
                                    % (type(exc).__name__, exception_text(exc)), values)
        return [Message(_SEND_TOKENS, (ctx.sq, ctx.interval, outputs), _NETWORK)]

    def _unsendable(self, exe: Executable, why: str, values: tuple) -> List[Output]:
        exe.unsendable += 1
        return self._report(exe, "unsendable: " + why, "", values)

    def _failed(self, exe: Executable, exc: BaseException, values: tuple) -> List[Output]:
        line, text = _described(exc)
        return self._report(exe, line, text, values)

    def _report(self, exe: Executable, line: str, text: str, values: tuple) -> List[Output]:
        """Count an SQ error; the first few go to the runtime manager with their input."""
        self.counters.incr("sq_errors")
        exe.errors += 1
        if exe.errors > MAX_ERROR_REPORTS:
            return []
        return [reports.to_runtime_manager(self._error(exe.spec.name, line, text, input_repr(values)))]

    def _error(self, sq: str, line: str, text: str, inputs: str) -> Message:
        return Message(RuntimeMsg.SQ_ERROR, (self.app, self.ensemble, sq, line, text, inputs),
                       Recipient.RUNTIME_MANAGER)

    # -- teardown -------------------------------------------------------------------------

    def _release(self) -> List[Tuple[str, str]]:
        """Once per deployment: run the program's ``teardown()`` (with the components
        attached), then close the handles. What failed, as (line, traceback), counted."""
        if self._released:
            return []
        self._released = True
        failures: List[Tuple[str, str]] = []
        hook = self.module.__dict__.get("teardown") if self.module is not None else None
        if isinstance(hook, types.FunctionType):
            _CURRENT.attached = self.attached
            _RUNNING.exe = Watched(self.time_limit)
            try:
                hook()
                _RUNNING.exe = None  # inside: the watchdog's exception may come until it is cleared
            except BaseException as exc:
                _RUNNING.exe = None
                if stops_the_process(exc):
                    raise
                failures.append(_described(exc))
            _CURRENT.attached = None
        failures.extend((line, "") for line in self.attached.close())
        self.attached = Attached(self.ensemble)
        if failures:
            self.counters.incr("sq_errors", len(failures))
        return failures

    def _remove(self, app: Any, now: int) -> List[Output]:
        errors = [self._error(TEARDOWN, line, text, "") for line, text in self._release()] if app == self.app else []
        out = super()._remove(app, now)
        if errors:  # reported ahead of the removal, in the same report
            [removal] = out
            out = [reports.to_runtime_manager(*errors, *removal.payload)]
        return out

    def _end(self, payload: Any, now: int) -> List[Output]:
        """The process stops: the teardown of what is still deployed, its failures logged."""
        for line, _ in self._release():
            self.log.warning("%s: %s", self.ensemble, line)
        return []

    def sq_report(self) -> Dict[str, Dict[str, int]]:
        for line, _ in self._release():  # an app replaced without its removal: nobody to tell
            self.log.warning("%s: %s", self.ensemble, line)
        sqs = {}
        for name, exe in self.sqs.items():
            sqs[name] = {"executions": exe.executions, "errors": exe.errors}
            if exe.unsendable:
                sqs[name]["dropped.unsendable"] = exe.unsendable
            if exe.not_run:
                sqs[name]["dropped.over_time_limit"] = exe.not_run
        if self.module is not None:
            unload_module(self.module)
        self.sqs.clear()
        self.module = None
        return sqs

    def status(self, now: int) -> Dict[str, Any]:
        status = super().status(now)
        status["sqs"] = {}
        for name, exe in self.sqs.items():
            status["sqs"][name] = {"executions": exe.executions, "errors": exe.errors}
            if exe.stopped:  # by the time limit: it runs no more
                status["sqs"][name]["stopped"] = True
        #: Each component of the ensemble, and whether this deployment holds its handle open.
        status["components"] = {c.name: "open" if c.name in self.attached.handles else "closed"
                                for c in self.components}
        return status


def _returned(result: Any, outputs: int) -> str:
    """What an SQ returned instead of ``outputs`` values, in a few words: not the value,
    which may be megabytes, and would make each error's text (how errors are told apart)
    differ by the data."""
    if isinstance(result, (tuple, list)):
        return "returned a %s of %d value%s, not %d" % (type(result).__name__, len(result),
                                                       "" if len(result) == 1 else "s", outputs)
    return "returned a value of type %s, not %d values" % (type(result).__name__, outputs)

"""Writing programs in Python: ``@sq``, ``@stream``, ``@graph`` and ``finish_by``.

A ``@graph`` function is called once, at build time, with a builder active:
each call of an SQ inside it adds a node and returns symbolic :class:`Handle`
objects for the node's outputs. Passing a handle to another SQ wires an arc;
passing a plain value makes a constant input. Nothing runs at build time.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import json
import os
import sys
import threading
from dataclasses import dataclass
from typing import (
    Any,
    Callable,
    Dict,
    FrozenSet,
    Iterable,
    Iterator,
    List,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from appliance.components.query import QueryError, normalize
from appliance.program.builtins import BUILTINS
from appliance.program.errors import BuildError
from appliance.program.graphfile import check_wiring, name_problem, path_problem
from appliance.program.jsonfile import has_lone_surrogate
from appliance.program.model import (
    DEADLINE,
    DEFAULT_MAX_AGE,
    DEFAULT_MAX_TOKENS,
    IMMEDIATE,
    MAX_COST,
    MAX_OUTPUTS,
    SEQUENTIAL,
    STREAM,
    TIMED,
    Arc,
    Graph,
    LatencyBound,
    ProgramSource,
    SQSpec,
    StreamSpec,
)
from appliance.program.names import NAME_RULE, is_name
from appliance.timing import ms_to_ticks

_USER_RULES = (TIMED, IMMEDIATE, SEQUENTIAL)


#: What requires= holds: a query, or a list of them.
Requires = Union[str, Dict[str, Any], Iterable[Union[str, Dict[str, Any]]]]


@dataclass(frozen=True)
class _Options:
    state: bool
    requires: Tuple[Any, ...]
    ensemble: Optional[str]
    outputs: int
    firing: Optional[str]
    max_tokens: int
    max_age: int
    reorder: int
    stream: Optional[StreamSpec] = None
    cost: float = 1
    #: A stream whose width was not given: it follows the period when ``.options`` changes it.
    width_is_period: bool = False


@dataclass(frozen=True)
class _Placement:
    """Where SQs called in a ``placement`` block (or through ``.options``) go: what is
    not None replaces the SQ's own setting."""

    ensemble: Optional[str] = None
    requires: Optional[Tuple[Any, ...]] = None
    cost: Optional[float] = None

    def then(self, inner: _Placement) -> _Placement:
        """This placement with what ``inner`` (more specific) sets replacing it."""
        return _Placement(*(new if new is not None else old for new, old in (
            (inner.ensemble, self.ensemble), (inner.requires, self.requires), (inner.cost, self.cost))))

    def applied(self, options: _Options) -> _Options:
        changes: Dict[str, Any] = {key: value for key, value in (
            ("ensemble", self.ensemble), ("requires", self.requires), ("cost", self.cost)) if value is not None}
        return dataclasses.replace(options, **changes) if changes else options


NO_DEFAULT = inspect.Parameter.empty


class Port(NamedTuple):
    """An SQ input: a parameter of its function, with its default value if it has one."""

    name: str
    default: Any


class SQTemplate:
    """A function made into an SQ. Call it inside a ``@graph`` function to add an SQ.

    The plain function stays available as ``.function`` (for unit tests of the
    SQ's logic).
    """

    def __init__(self, function: Callable[..., Any], settings: _Options,
                 call_site: Optional[_Placement] = None) -> None:
        functools.update_wrapper(self, function)
        self.function = function
        #: The decorator's options (stream timing changed by ``.options``, if it was).
        self.settings = settings
        #: Placement given by ``.options``: it wins over the decorator and ``placement`` blocks.
        self.call_site = call_site
        self.kind = "stream" if settings.stream is not None else "sq"
        self.filename = function.__code__.co_filename
        self.line = function.__code__.co_firstlineno
        self.ports = self._port_parameters()

    def _fail(self, message: str) -> BuildError:
        return BuildError(message, sq=self.function.__name__, filename=self.filename, line=self.line)

    def _port_parameters(self) -> List[Port]:
        # Read from the code object: ensembles import every SQ of a program, and
        # inspect.signature costs ~30 µs a function.
        code = self.function.__code__
        if code.co_flags & (inspect.CO_VARARGS | inspect.CO_VARKEYWORDS) or code.co_kwonlyargcount:
            raise self._fail("SQ inputs are plain positional parameters (no *args, **kwargs or keyword-only)")
        names = list(code.co_varnames[:code.co_argcount])
        defaults = self.function.__defaults__ or ()
        padded = [NO_DEFAULT] * (len(names) - len(defaults)) + list(defaults)
        self.parameters = names
        reserved = set()
        if self.settings.state:
            reserved.add("state")
            if "state" not in names:
                raise self._fail("state=True needs a parameter named 'state' (the SQ's persistent dict)")
        if self.kind == "stream":
            reserved.add("tick")
        return [Port(name, default) for name, default in zip(names, padded) if name not in reserved]

    @property
    def wants_tick(self) -> bool:
        return self.kind == "stream" and "tick" in self.parameters

    def options(self, *, ensemble: Optional[str] = None, requires: Optional[Requires] = None,
                cost: Optional[float] = None, period_ms: Optional[float] = None,
                phase_ms: Optional[float] = None, width_ms: Optional[float] = None,
                count: Optional[int] = None) -> SQTemplate:
        """This SQ placed or timed otherwise, for the calls made through what it returns:
        ``detect.options(requires="camera_right")(frame)``. Placement given here wins
        over the decorator's and over an enclosing ``placement`` block; a stream's
        ``period_ms``, ``phase_ms``, ``width_ms`` and ``count`` replace its own (the
        width stays the period when the decorator left it so)."""
        caller = sys._getframe(1)
        try:
            call_site = _placement(ensemble, requires, cost)
            settings = self.settings
            timing = {"period_ms": period_ms, "phase_ms": phase_ms, "width_ms": width_ms, "count": count}
            if any(value is not None for value in timing.values()):
                if settings.stream is None:
                    raise TypeError("%s is not a stream; only a stream takes %s" % (
                        self.function.__name__, ", ".join(k for k, v in timing.items() if v is not None)))
                settings = dataclasses.replace(settings, **_retimed(settings, **timing))
        except (TypeError, ValueError) as exc:
            raise BuildError(str(exc), sq=self.function.__name__, filename=caller.f_code.co_filename,
                             line=caller.f_lineno) from None
        if self.call_site is not None:
            call_site = self.call_site.then(call_site)
        template = type(self).__new__(type(self))
        template.__dict__.update(self.__dict__)
        template.settings, template.call_site = settings, call_site
        return template

    def __call__(self, *args: Any, **kwargs: Any) -> Union[Handle, Tuple[Handle, ...]]:
        caller = sys._getframe(1)
        builder = _current_builder()
        if builder is None:
            raise BuildError(
                "called outside a @graph function; SQs are wired inside a graph "
                "(use .function(...) to call the plain Python function)",
                sq=self.function.__name__, filename=caller.f_code.co_filename, line=caller.f_lineno)
        return builder.add(self, args, kwargs, caller.f_code.co_filename, caller.f_lineno)

    def __repr__(self) -> str:
        return "<%s %s>" % (self.kind, self.function.__name__)


class Handle:
    """One output of an SQ in a graph being built: pass it to other SQs to wire arcs."""

    __slots__ = ("builder", "sq", "port", "streams")

    def __init__(self, builder: _Builder, sq: str, port: int, streams: FrozenSet[str]) -> None:
        self.builder = builder
        self.sq = sq
        self.port = port
        self.streams = streams  # the stream SQs whose samples this output derives from

    def __bool__(self) -> bool:
        raise TypeError(
            "the output of SQ '%s' is not a value at build time; decide inside an @sq function" % self.sq)

    def __iter__(self) -> Iterator[Handle]:
        raise TypeError("SQ '%s' has one output; to unpack several, give it outputs=n" % self.sq)

    def __repr__(self) -> str:
        return "<output %d of SQ %s>" % (self.port, self.sq)


def _not_a_value(operator: str) -> Callable[..., Any]:
    def refuse(self: Handle, *other: Any) -> Any:
        raise TypeError("the output of SQ '%s' is not a value at build time; compute with it (%s) inside an @sq "
                        "function" % (self.sq, operator))
    return refuse


# Arithmetic and comparisons on an output are what a new user tries first: each says so,
# naming the SQ, rather than "unsupported operand type(s) for +: 'Handle' and 'int'".
for _name, _operator in [("add", "+"), ("sub", "-"), ("mul", "*"), ("truediv", "/"), ("floordiv", "//"),
                         ("mod", "%"), ("pow", "**"), ("matmul", "@"), ("and", "&"), ("or", "|"), ("xor", "^"),
                         ("lshift", "<<"), ("rshift", ">>")]:
    setattr(Handle, "__%s__" % _name, _not_a_value(_operator))
    setattr(Handle, "__r%s__" % _name, _not_a_value(_operator))
for _name, _operator in [("lt", "<"), ("le", "<="), ("gt", ">"), ("ge", ">="), ("neg", "-"), ("pos", "+"),
                         ("abs", "abs"), ("invert", "~"), ("getitem", "[]")]:
    setattr(Handle, "__%s__" % _name, _not_a_value(_operator))
del _name, _operator


class _Builder:
    def __init__(self, graph_name: str, reserved: FrozenSet[str] = frozenset()) -> None:
        self.graph_name = graph_name
        #: Names of the program's SQ functions: a further call of another never takes one
        #: (``f`` called twice beside a ``def f_2`` gives ``f``, ``f_3``, and ``f_2`` is f_2).
        self.reserved = reserved
        self.sqs: Dict[str, SQSpec] = {}
        self.arcs: List[Arc] = []
        self.functions: List[Tuple[str, Callable[..., Any], str]] = []  # (sq, function, where)
        self.streams_of: Dict[str, FrozenSet[str]] = {}
        self._next_suffix: Dict[str, int] = {}
        #: The ``placement`` blocks open, outermost first.
        self.placements: List[_Placement] = []
        self.bounds: List[LatencyBound] = []

    def unique_name(self, base: str) -> str:
        """``base``, then ``base_2``, ``base_3``, ... for each further call of the same SQ."""
        if base not in self.sqs:
            return base
        n = self._next_suffix.get(base, 2)
        name = "%s_%d" % (base, n)
        while name in self.sqs or name in self.reserved:
            n += 1
            name = "%s_%d" % (base, n)
        self._next_suffix[base] = n + 1
        return name

    def add(self, template: SQTemplate, args: Sequence[Any], kwargs: Dict[str, Any],
            filename: str, line: int, trigger: Optional[Handle] = None,
            name: Optional[str] = None) -> Union[Handle, Tuple[Handle, ...]]:
        name = self.unique_name(name or template.function.__name__)

        def fail(message: str) -> BuildError:
            return BuildError(message, sq=name, filename=filename, line=line)

        problem = name_problem(name)
        if problem:
            raise BuildError("SQ " + problem, filename=template.filename, line=template.line)

        bound = self._bind(template, args, kwargs, fail)
        opts = template.settings
        for block in self.placements:
            opts = block.applied(opts)
        if template.call_site is not None:
            opts = template.call_site.applied(opts)
        streams: FrozenSet[str] = frozenset()
        constants: Dict[str, Any] = {}
        wired: List[Tuple[int, Handle]] = []
        for index, (param, value) in enumerate(bound):
            if isinstance(value, Handle):
                if value.builder is not self:
                    raise fail("argument %r is an output of another graph" % param)
                if template.kind == "stream":
                    raise fail("a stream samples on its clock; argument %r must be a constant, "
                               "not the output of SQ '%s'" % (param, value.sq))
                wired.append((index, value))
                streams |= value.streams
            else:
                constants[param] = _constant(value, param, fail)
        if template.kind == "stream":
            streams = frozenset([name])
        if trigger is not None:
            streams = trigger.streams

        firing = opts.firing
        if template.kind == "stream":
            firing = STREAM
        elif firing is None:
            firing = SEQUENTIAL if opts.state and streams else TIMED
        sticky = [bound[i][0] for i, h in wired if streams and not h.streams]
        if opts.reorder and firing != SEQUENTIAL:
            raise fail("reorder_ms applies to sequential SQs (stateful on a stream, or firing='sequential'); "
                       "this one fires by the %s rule" % firing)

        spec = SQSpec(
            name=name, kind=template.kind, function=template.function.__name__,
            inputs=[p for p, _ in bound], outputs=opts.outputs, firing=firing,
            constants=constants, sticky=sticky, stream=opts.stream, state=opts.state,
            tick=template.wants_tick, requires=list(opts.requires), ensemble=opts.ensemble, cost=opts.cost,
            max_tokens=opts.max_tokens, max_age=opts.max_age, reorder=opts.reorder, line=line,
        )
        self.sqs[name] = spec
        if template.kind != "builtin":
            self.functions.append((name, template.function, "%s:%d" % (filename, line)))
        self.streams_of[name] = streams
        for index, handle in wired:
            self.arcs.append(Arc(handle.sq, handle.port, name, index))
        if trigger is not None:
            self.arcs.append(Arc(trigger.sq, trigger.port, name, spec.trigger_port))
        return self.handles(name)

    def handles(self, name: str) -> Union[Handle, Tuple[Handle, ...]]:
        spec = self.sqs[name]
        out = tuple(Handle(self, name, port, self.streams_of[name]) for port in range(spec.outputs))
        return out[0] if spec.outputs == 1 else out

    @staticmethod
    def _bind(template: SQTemplate, args: Sequence[Any], kwargs: Dict[str, Any],
              fail: Callable[[str], BuildError]) -> List[Tuple[str, Any]]:
        ports = template.ports
        names = [p.name for p in ports]
        if len(args) > len(ports):
            raise fail("takes %d input(s) (%s) but was given %d" % (len(ports), ", ".join(names), len(args)))
        values: Dict[str, Any] = dict(zip(names, args))
        for key, value in kwargs.items():
            if key not in names:
                reserved = " (it is passed by the runtime)" if key in ("state", "tick") else ""
                raise fail("unknown argument %r%s; it takes (%s)" % (key, reserved, ", ".join(names)))
            if key in values:
                raise fail("argument %r given twice" % key)
            values[key] = value
        bound = []
        for p in ports:
            if p.name in values:
                bound.append((p.name, values[p.name]))
            elif p.default is not NO_DEFAULT:
                bound.append((p.name, p.default))
            else:
                raise fail("missing argument %r" % p.name)
        return bound


def _constant(value: Any, param: str, fail: Callable[[str], BuildError]) -> Any:
    if isinstance(value, SQTemplate):
        raise fail("argument %r is the SQ %s itself; call it to get its output" % (param, value.function.__name__))
    try:
        # Exactly what a graph file will hold (tuples become lists, keys strings), whether the
        # graph goes through a file or straight to a simulation.
        held = json.loads(json.dumps(value, allow_nan=False))
    except ValueError:  # what allow_nan refuses, at any depth
        raise fail("constant %r holds a float that is not finite (nan or infinity); graph files hold JSON values, "
                   "which have none" % param) from None
    except TypeError:
        raise fail("constant %r is a %s; graph files hold JSON values (numbers, strings, lists, dicts)"
                   % (param, type(value).__name__)) from None
    if has_lone_surrogate(held):
        raise fail("constant %r holds a string that is not Unicode text: a lone surrogate (such as '\\udcff'), "
                   "which no ensemble can be sent" % param)
    return held


_local = threading.local()


def _current_builder() -> Optional[_Builder]:
    stack = getattr(_local, "builders", None)
    return stack[-1] if stack else None


def _requires(requires: Requires) -> Tuple[Any, ...]:
    """requires= as a tuple of queries: names stay names, objects are checked and normalized."""
    if isinstance(requires, (str, dict)):
        requires = [requires]
    try:
        items = list(requires)
    except TypeError:
        raise TypeError("requires= takes a query or a list of queries, got %r" % (requires,)) from None
    out = []
    for query in items:
        if isinstance(query, str) and query:
            out.append(query)
            continue
        try:
            out.append(normalize(query, "requires="))
        except QueryError as exc:
            raise ValueError(str(exc)) from None
    return tuple(out)


def _cost(cost: Any) -> float:
    if isinstance(cost, bool) or not isinstance(cost, (int, float)) or not 0 < cost <= MAX_COST:
        raise ValueError("cost= must be a positive number up to %d, got %r" % (MAX_COST, cost))
    return cost


def _ensemble(ensemble: Any) -> Optional[str]:
    if ensemble is not None and not isinstance(ensemble, str):
        raise TypeError("ensemble= takes an ensemble name, got %r" % (ensemble,))
    if ensemble is not None and not is_name(ensemble):
        raise ValueError("ensemble= %r is not an ensemble name (%s)" % (ensemble, NAME_RULE))
    return ensemble


def _placement(ensemble: Optional[str], requires: Optional[Requires], cost: Optional[float]) -> _Placement:
    return _Placement(_ensemble(ensemble), None if requires is None else _requires(requires),
                      None if cost is None else _cost(cost))


def _options(state: bool, requires: Requires, ensemble: Optional[str], outputs: int,
             firing: Optional[str], max_tokens: Optional[int], max_age_ms: Optional[float],
             reorder_ms: float, cost: float, stream: Optional[StreamSpec] = None,
             width_is_period: bool = False) -> _Options:
    if type(outputs) is not int or not 0 < outputs <= MAX_OUTPUTS:
        raise ValueError("outputs= must be an int from 1 to %d, got %r" % (MAX_OUTPUTS, outputs))
    if firing is not None and firing not in _USER_RULES:
        raise ValueError("firing= must be one of %s, got %r" % (", ".join(_USER_RULES), firing))
    if max_tokens is not None and (type(max_tokens) is not int or max_tokens < 1):
        raise ValueError("max_tokens= must be a positive int, got %r" % (max_tokens,))
    if max_age_ms is not None and not ms_to_ticks(max_age_ms, "max_age_ms") > 0:
        raise ValueError("max_age_ms= must be positive, got %r" % (max_age_ms,))
    if ms_to_ticks(reorder_ms, "reorder_ms") < 0:
        raise ValueError("reorder_ms= must not be negative, got %r" % (reorder_ms,))
    return _Options(
        state=bool(state), requires=_requires(requires), ensemble=_ensemble(ensemble), outputs=outputs,
        firing=firing, max_tokens=max_tokens or DEFAULT_MAX_TOKENS,
        max_age=ms_to_ticks(max_age_ms, "max_age_ms") if max_age_ms is not None else DEFAULT_MAX_AGE,
        reorder=ms_to_ticks(reorder_ms, "reorder_ms"), stream=stream, cost=_cost(cost),
        width_is_period=width_is_period,
    )


def _stream_spec(period_ms: float, phase_ms: float, width_ms: Optional[float], count: Optional[int]) -> StreamSpec:
    period = ms_to_ticks(period_ms, "period_ms")
    if period < 1:
        raise ValueError("period_ms must be positive, got %r" % (period_ms,))
    phase = ms_to_ticks(phase_ms, "phase_ms")
    if not 0 <= phase < period:
        raise ValueError("phase_ms must be in [0, period_ms), got %r" % (phase_ms,))
    width = period if width_ms is None else ms_to_ticks(width_ms, "width_ms")
    if width < 1:
        raise ValueError("width_ms must be positive, got %r" % (width_ms,))
    if count is not None and (type(count) is not int or count < 1):
        raise ValueError("count must be a positive int or None, got %r" % (count,))
    return StreamSpec(period, phase, width, count)


def _retimed(settings: _Options, period_ms: Optional[float], phase_ms: Optional[float],
             width_ms: Optional[float], count: Optional[int]) -> Dict[str, Any]:
    """The stream fields of ``settings`` with the given timing replacing its own."""
    old = settings.stream
    assert old is not None
    width_is_period = settings.width_is_period and width_ms is None
    stream = _stream_spec(
        old.period / 1000 if period_ms is None else period_ms,
        old.phase / 1000 if phase_ms is None else phase_ms,
        None if width_is_period else old.width / 1000 if width_ms is None else width_ms,
        old.count if count is None else count)
    return {"stream": stream, "width_is_period": width_is_period}


def _decorate(options: _Options, fn: Optional[Callable[..., Any]]):
    def wrap(function: Callable[..., Any]) -> SQTemplate:
        if isinstance(function, SQTemplate):
            raise TypeError("%s is already an SQ" % function.function.__name__)
        return SQTemplate(function, options)

    return wrap(fn) if fn is not None else wrap


def sq(fn: Optional[Callable[..., Any]] = None, *, state: bool = False, requires: Requires = (),
       ensemble: Optional[str] = None, outputs: int = 1, firing: Optional[str] = None,
       max_tokens: Optional[int] = None, max_age_ms: Optional[float] = None, reorder_ms: float = 0,
       cost: float = 1):
    """Make a function an SQ.

    Options: ``state=True`` passes a persistent per-SQ dict as ``state``;
    ``requires=`` queries the components the hosting ensemble must have (a
    name, a query object such as ``where(kind="camera")``, or a list of them);
    ``ensemble="name"`` pins it; ``cost`` is what hosting it weighs against an
    ensemble's capacity; ``outputs=n`` spreads a returned tuple over n output
    ports; ``firing=`` overrides the rule ("timed", "immediate", "sequential";
    a stateful SQ on a stream is sequential by default);
    ``max_tokens``/``max_age_ms`` bound each input port's store;
    ``reorder_ms`` lets a sequential SQ wait that long for late earlier samples.
    """
    return _decorate(_options(state, requires, ensemble, outputs, firing, max_tokens, max_age_ms, reorder_ms,
                              cost), fn)


def stream(fn: Optional[Callable[..., Any]] = None, *, period_ms: float, phase_ms: float = 0,
           width_ms: Optional[float] = None, count: Optional[int] = None, state: bool = False,
           requires: Requires = (), ensemble: Optional[str] = None, outputs: int = 1, cost: float = 1):
    """Make a function a periodic source sampled on the root clock.

    It samples at ticks ``t`` with ``t ≡ phase (mod period)``; each sample's
    token is valid over ``width_ms`` (default: the period) centred on ``t``.
    A parameter named ``tick`` receives ``t`` in µs. ``count`` caps the
    number of samples.
    """
    spec = _stream_spec(period_ms, phase_ms, width_ms, count)
    return _decorate(_options(state, requires, ensemble, outputs, None, None, None, 0, cost, spec,
                              width_is_period=width_ms is None), fn)


@contextlib.contextmanager
def placement(*, ensemble: Optional[str] = None, requires: Optional[Requires] = None,
              cost: Optional[float] = None) -> Iterator[None]:
    """Place the SQs called inside the block: what is given replaces each SQ's own
    ``ensemble=``, ``requires=`` or ``cost``; an inner block wins over an outer one,
    and ``.options(...)`` on a call wins over both. It covers every SQ the block adds,
    the deadline gate, Plan B and merge of a ``finish_by`` among them."""
    caller = sys._getframe(2)  # past contextlib's frame
    builder = _current_builder()
    if builder is None:
        raise BuildError("placement(...) is used inside a @graph function",
                         filename=caller.f_code.co_filename, line=caller.f_lineno)
    try:
        block = _placement(ensemble, requires, cost)
    except (TypeError, ValueError) as exc:
        raise BuildError(str(exc), filename=caller.f_code.co_filename, line=caller.f_lineno) from None
    builder.placements.append(block)
    try:
        yield
    finally:
        builder.placements.pop()


def max_latency(ms: float, *path: Handle) -> None:
    """Bound the network latency along a path of SQs, given by their outputs in order,
    each SQ fed by an arc from the one before: ``max_latency(5, reading, valve)``.

    The mapper then picks only placements where the one-way link latencies between
    the ensembles of consecutive SQs (as the system file gives them; nothing between
    SQs on one ensemble) add up to at most ``ms``, and fails when none does. It
    bounds time on the network, not the SQs' own execution.
    """
    caller = sys._getframe(1)
    where = {"filename": caller.f_code.co_filename, "line": caller.f_lineno}
    builder = _current_builder()
    if builder is None:
        raise BuildError("max_latency is used inside a @graph function", **where)
    if not all(isinstance(h, Handle) and h.builder is builder for h in path):
        raise BuildError("max_latency takes the outputs of SQs of this graph, got %r" % (path,), **where)
    try:
        limit = ms_to_ticks(ms, "max_latency")
        if limit < 1:
            raise ValueError("max_latency must be positive, got %r ms" % (ms,))
    except (TypeError, ValueError) as exc:
        raise BuildError(str(exc), **where) from None
    names = [h.sq for h in path]
    problem = path_problem(names, builder.arcs)
    if problem:
        raise BuildError("max_latency: %s" % problem, **where)
    builder.bounds.append(LatencyBound(tuple(names), limit, caller.f_lineno))


class GraphTemplate:
    """A function made into a program. ``build()`` calls it once and returns the graph."""

    def __init__(self, function: Callable[..., Any]) -> None:
        functools.update_wrapper(self, function)
        self.function = function
        self.filename = function.__code__.co_filename
        self.line = function.__code__.co_firstlineno

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise BuildError("a @graph is not called; build it with appliance build or .build()",
                         filename=self.filename, line=self.line)

    def build(self) -> Graph:
        if inspect.signature(self.function).parameters:
            raise BuildError("a @graph function takes no parameters (streams and constants feed it)",
                             filename=self.filename, line=self.line)
        problem = name_problem(self.function.__name__)
        if problem:
            raise BuildError("graph " + problem, filename=self.filename, line=self.line)
        builder = _Builder(self.function.__name__, frozenset(
            value.function.__name__ for value in self.function.__globals__.values() if isinstance(value, SQTemplate)))
        stack = getattr(_local, "builders", None)
        if stack is None:
            stack = _local.builders = []
        stack.append(builder)
        try:
            result = self.function()
        finally:
            stack.pop()
        outputs = self._outputs(result, builder)
        program = _program_source(self.function, builder.functions)
        graph = Graph(builder.graph_name, program, list(builder.sqs.values()), builder.arcs, outputs,
                      builder.bounds)
        check_wiring(graph, source=os.path.relpath(self.filename))
        return graph

    def _outputs(self, result: Any, builder: _Builder) -> List[Tuple[str, int]]:
        def fail(message: str) -> BuildError:
            return BuildError(message, filename=self.filename, line=self.line)

        if result is None:
            raise fail("graph %s returns nothing: return the SQ outputs the runtime manager "
                       "should log" % builder.graph_name)
        items = result if isinstance(result, tuple) else (result,)
        outputs: List[Tuple[str, int]] = []
        seen = set()
        for item in items:
            if not isinstance(item, Handle) or item.builder is not builder:
                raise fail("graph %s returns %r; return SQ outputs (handles)" % (builder.graph_name, item))
            if (item.sq, item.port) in seen:
                raise BuildError("output %d is returned twice as a graph output" % item.port,
                                 sq=item.sq, filename=self.filename, line=self.line)
            seen.add((item.sq, item.port))
            outputs.append((item.sq, item.port))
        return outputs


def _program_source(graph_fn: Callable[..., Any],
                    functions: List[Tuple[str, Callable[..., Any], str]]) -> ProgramSource:
    filename = inspect.getsourcefile(graph_fn)
    if not filename or not os.path.exists(filename):
        raise BuildError("the program must be a Python file", sq=None)
    module = sys.modules.get(graph_fn.__module__)
    for sq_name, function, where in functions:
        file, _, line = where.rpartition(":")
        defined_in = inspect.getsourcefile(function) or "<unknown>"
        if os.path.realpath(defined_in) != os.path.realpath(filename):
            raise BuildError("its function %s is defined in %s; SQ functions must be defined in the "
                             "program file %s so ensembles can load them"
                             % (function.__name__, defined_in, os.path.relpath(filename)),
                             sq=sq_name, filename=file, line=int(line))
        top = getattr(module, function.__name__, None)
        if not isinstance(top, SQTemplate) or top.function is not function:
            raise BuildError("its function %s is not a top-level @sq/@stream of %s; ensembles load "
                             "SQ functions by name" % (function.__name__, os.path.relpath(filename)),
                             sq=sq_name, filename=file, line=int(line))
    with open(filename, encoding="utf-8") as handle:
        source = handle.read()
    name = os.path.splitext(os.path.basename(filename))[0]
    return ProgramSource(name, os.path.basename(filename), source)


def graph(fn: Callable[..., Any]) -> GraphTemplate:
    """Make a function a program: it wires SQs and returns the outputs to log."""
    return GraphTemplate(fn)


class _Builtin(SQTemplate):
    """A runtime built-in used by ``finish_by``; its function is looked up by name on ensembles."""

    def __init__(self, function: Callable[..., Any], options: _Options) -> None:
        super().__init__(function, options)
        self.kind = "builtin"


def _builtin_template(name: str, firing: str) -> _Builtin:
    function, outputs = BUILTINS[name]
    options = _Options(state=False, requires=(), ensemble=None, outputs=outputs, firing=firing,
                       max_tokens=DEFAULT_MAX_TOKENS, max_age=DEFAULT_MAX_AGE, reorder=0, cost=1)
    return _Builtin(function, options)


def finish_by(value: Handle, *, deadline_ms: float, otherwise: SQTemplate,
              sample: Optional[Handle] = None) -> Handle:
    """``value`` if its token arrives by its sample's start + ``deadline_ms``, else Plan B.

    ``otherwise`` is an SQ that takes no inputs (constants by default values
    are fine); on a miss it runs and its value goes out instead, with the
    interval of the sample that missed. ``sample`` names the stream whose
    samples set the deadline when ``value`` derives from more than one.
    """
    caller = sys._getframe(1)
    where = (caller.f_code.co_filename, caller.f_lineno)
    builder = _current_builder()
    if builder is None:
        raise BuildError("finish_by is used inside a @graph function", filename=where[0], line=where[1])
    if not isinstance(value, Handle) or value.builder is not builder:
        raise BuildError("finish_by needs an SQ output as its value, got %r" % (value,),
                         filename=where[0], line=where[1])
    if not isinstance(otherwise, SQTemplate) or otherwise.kind != "sq":
        raise BuildError("finish_by(otherwise=...) takes an @sq function (the Plan B), got %r" % (otherwise,),
                         sq=value.sq, filename=where[0], line=where[1])
    deadline = ms_to_ticks(deadline_ms, "deadline_ms")
    if deadline < 1:
        raise BuildError("deadline_ms must be positive", sq=value.sq, filename=where[0], line=where[1])
    if sample is None:
        if len(value.streams) != 1:
            found = ", ".join(sorted(value.streams)) or "no stream"
            raise BuildError("finish_by needs the stream whose samples set the deadline; the value derives "
                             "from %s: pass sample=<that stream's output>" % found,
                             sq=value.sq, filename=where[0], line=where[1])
        stream_name = next(iter(value.streams))
        sample = builder.handles(stream_name)
        if isinstance(sample, tuple):
            sample = sample[0]
    elif not isinstance(sample, Handle) or builder.sqs[sample.sq].kind != "stream":
        raise BuildError("finish_by(sample=...) must be the output of a stream", sq=value.sq,
                         filename=where[0], line=where[1])
    if any(p.default is NO_DEFAULT for p in otherwise.ports):
        raise BuildError("a Plan B SQ takes no inputs (give its parameters default values)",
                         sq=otherwise.function.__name__, filename=where[0], line=where[1])
    if otherwise.settings.outputs != 1:
        raise BuildError("a Plan B SQ has one output", sq=otherwise.function.__name__,
                         filename=where[0], line=where[1])
    gate = builder.add(_builtin_template("deadline", DEADLINE), (value, sample), {}, where[0], where[1],
                       name="deadline_" + value.sq)
    assert isinstance(gate, tuple)
    builder.sqs[gate[0].sq].deadline = deadline
    plan_b = builder.add(otherwise, (), {}, where[0], where[1], trigger=gate[1])
    assert isinstance(plan_b, Handle)
    merged = builder.add(_builtin_template("merge", IMMEDIATE), (gate[0], plan_b), {}, where[0], where[1],
                         name="%s_or_%s" % (value.sq, plan_b.sq))
    assert isinstance(merged, Handle)
    return merged

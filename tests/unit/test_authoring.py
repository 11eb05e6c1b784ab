import os

import pytest

from appliance.program import BuildError, ProgramError, load_program
from appliance.program.model import DEADLINE, IMMEDIATE, SEQUENTIAL, STREAM, TIMED

HEADER = """
from appliance import sq, stream, graph, finish_by, EMPTY
"""


def test_calls_wire_arcs_and_plain_values_become_constants(build):
    g = build(HEADER + """
@stream(period_ms=10)
def src(tick):
    return tick

@sq
def scale(x, k, offset=1):
    return x * k + offset

@graph
def main():
    return scale(src(), 3)
""")
    assert [(a.source, a.output, a.target, a.input) for a in g.arcs] == [("src", 0, "scale", 0)]
    spec = g.sq("scale")
    assert spec.constants == {"k": 3, "offset": 1}
    assert spec.firing == TIMED
    assert g.sq("src").firing == STREAM and g.sq("src").tick
    assert g.sq("src").stream.period == 10_000 and g.sq("src").stream.width == 10_000
    assert g.outputs == [("scale", 0)]


def test_a_stateful_sq_on_a_stream_is_sequential_and_names_are_made_unique(build):
    g = build(HEADER + """
@stream(period_ms=5)
def src():
    return 1

@sq(state=True)
def count(x, state):
    state["n"] = state.get("n", 0) + 1
    return state["n"]

@graph
def main():
    s = src()
    return count(s), count(s)
""")
    assert [s.name for s in g.sqs] == ["src", "count", "count_2"]
    assert g.sq("count").firing == SEQUENTIAL and g.sq("count").state


def test_a_further_call_never_takes_the_name_of_another_sq_function_of_the_program(build):
    g = build(HEADER + """
@stream(period_ms=5)
def src():
    return 1

@sq
def f(x):
    return x

@sq
def f_2(x):
    return x

@graph
def main():
    return f_2(f(f(src())))
""")
    assert [(s.name, s.function) for s in g.sqs] == [("src", "src"), ("f", "f"), ("f_3", "f"), ("f_2", "f_2")]


def test_multiple_outputs_give_one_handle_per_port(build):
    g = build(HEADER + """
@stream(period_ms=5)
def src():
    return 1

@sq(outputs=2)
def split(x):
    return x, -x

@sq
def add(a, b):
    return a + b

@graph
def main():
    lo, hi = split(src())
    return add(lo, hi)
""")
    assert {(a.source, a.output, a.input) for a in g.arcs if a.target == "add"} == {("split", 0, 0), ("split", 1, 1)}


def test_finish_by_builds_a_deadline_a_plan_b_and_a_merge(build):
    g = build(HEADER + """
@stream(period_ms=50, width_ms=10)
def cam():
    return 1

@sq
def detect(frame):
    return frame

@sq
def fallback(value=None):
    return value

@graph
def main():
    return finish_by(detect(cam()), deadline_ms=20, otherwise=fallback)
""")
    gate, merge = g.sq("deadline_detect"), g.sq("detect_or_fallback")
    assert gate.firing == DEADLINE and gate.deadline == 20_000
    assert merge.firing == IMMEDIATE
    arcs = {(a.source, a.output, a.target, a.input) for a in g.arcs}
    assert ("cam", 0, "deadline_detect", 1) in arcs  # the sample arms the deadline
    assert ("deadline_detect", 1, "fallback", g.sq("fallback").trigger_port) in arcs
    assert g.outputs == [("detect_or_fallback", 0)]


def _error(build, body: str) -> BuildError:
    with pytest.raises(BuildError) as info:
        build(HEADER + body)
    return info.value


def test_an_unknown_argument_names_the_sq_and_the_line(build):
    err = _error(build, """
@sq
def add(a, b):
    return a + b

@graph
def main():
    return add(1, c=2)
""")
    assert err.sq == "add" and err.line == 10
    assert "unknown argument 'c'" in str(err) and "(a, b)" in str(err)
    assert ":10: SQ 'add'" in str(err)


def test_a_missing_argument_is_an_error(build):
    err = _error(build, """
@sq
def add(a, b):
    return a + b

@graph
def main():
    return add(1)
""")
    assert "missing argument 'b'" in str(err)


def test_an_sq_called_outside_a_graph_says_so(write_program):
    path = write_program(HEADER + """
@sq
def add(a, b):
    return a + b

add(1, 2)
""")
    with pytest.raises(BuildError, match="outside a @graph") as info:
        load_program(path)
    assert info.value.line == 8


def test_returning_the_same_output_twice_is_an_error(build):
    err = _error(build, """
@stream(period_ms=5)
def src():
    return 1

@graph
def main():
    s = src()
    return s, s
""")
    assert "returned twice" in str(err) and err.sq == "src"


def test_a_graph_that_returns_nothing_is_an_error(build):
    err = _error(build, """
@stream(period_ms=5)
def src():
    return 1

@graph
def main():
    src()
""")
    assert "returns nothing" in str(err)


def test_a_stream_cannot_take_another_sqs_output(build):
    err = _error(build, """
@stream(period_ms=5)
def a():
    return 1

@stream(period_ms=5)
def b(x):
    return x

@graph
def main():
    return b(a())
""")
    assert "samples on its clock" in str(err) and err.sq == "b"


def test_finish_by_asks_which_stream_when_there_are_two(build):
    err = _error(build, """
@stream(period_ms=5)
def a():
    return 1

@stream(period_ms=5)
def b():
    return 2

@sq
def add(x, y):
    return x + y

@sq
def zero():
    return 0

@graph
def main():
    return finish_by(add(a(), b()), deadline_ms=3, otherwise=zero)
""")
    assert "sample=" in str(err) and "a, b" in str(err)


def test_constants_must_fit_a_graph_file(build):
    err = _error(build, """
@sq
def f(x):
    return x

@graph
def main():
    return f(object())
""")
    assert "JSON values" in str(err)


def test_state_true_needs_a_state_parameter(write_program):
    path = write_program(HEADER + """
@sq(state=True)
def f(x):
    return x
""")
    with pytest.raises(BuildError, match="parameter named 'state'"):
        load_program(path)


def test_sq_functions_must_live_in_the_program_file(write_program):
    write_program(HEADER + """
@sq
def helper(x):
    return x
""", name="helpers")
    path = write_program(HEADER + """
from helpers import helper

@stream(period_ms=5)
def src():
    return 1

@graph
def main():
    return helper(src())
""")
    with pytest.raises(BuildError, match="must be defined in the program file"):
        load_program(path)


def test_errors_while_importing_the_program_point_at_its_line(write_program):
    path = write_program(HEADER + "\nx = 1 / 0\n")
    with pytest.raises(BuildError, match="ZeroDivisionError") as info:
        load_program(path)
    assert info.value.line == 4 and os.path.samefile(info.value.filename, path)


def test_several_graphs_need_a_name(write_program):
    path = write_program(HEADER + """
@stream(period_ms=5)
def src():
    return 1

@graph
def one():
    return src()

@graph
def two():
    return src()
""")
    with pytest.raises(ProgramError, match="several graphs"):
        load_program(path)
    assert load_program(path + ":two").name == "two"
    with pytest.raises(ProgramError, match="no @graph named 'three'"):
        load_program(path + ":three")


def test_the_plain_function_stays_callable_for_unit_tests(write_program):
    from appliance.program.loader import graphs_in

    path = write_program(HEADER + """
@sq
def add(a, b):
    return a + b

@graph
def main():
    return add(1, 2)
""")
    module_graphs = graphs_in(path)
    add = module_graphs["main"].function.__globals__["add"]
    assert add.function(2, 3) == 5


def test_reorder_applies_only_to_sequential_sqs(build):
    err = _error(build, """
@stream(period_ms=5)
def src():
    return 1

@sq(reorder_ms=3)
def f(x):
    return x

@graph
def main():
    return f(src())
""")
    assert "reorder_ms applies to sequential SQs" in str(err)


def test_bad_store_bounds_are_refused_when_decorating():
    from appliance import sq

    with pytest.raises(ValueError, match="max_age_ms"):
        sq(max_age_ms=0)
    with pytest.raises(ValueError, match="reorder_ms"):
        sq(reorder_ms=-1)


def test_constants_are_exactly_what_a_graph_file_holds(build):
    g = build(HEADER + """
@sq
def f(x, shape):
    return x

@stream(period_ms=5)
def src():
    return 1

@graph
def main():
    return f(src(), shape=((1, 2), {3: "a"}))
""")
    assert g.sq("f").constants["shape"] == [[1, 2], {"3": "a"}]

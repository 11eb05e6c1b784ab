"""Where SQs may run, said in the program: requires= queries, pins, costs, call-site
placement (placement blocks and .options) and latency bounds on paths."""
import pytest

from appliance.program import BuildError
from appliance.program.graphfile import from_document, to_document

HEADER = """
from appliance import sq, stream, graph, finish_by, placement, max_latency
from appliance.components import where, at_least, any_of

@stream(period_ms=10)
def camera():
    return 1

@sq(requires="camera_left", cost=2)
def detect(frame):
    return frame

@sq
def fuse(a, b):
    return (a, b)

@sq
def zero():
    return 0
"""


def _error(build, body):
    with pytest.raises(BuildError) as info:
        build(HEADER + body)
    return info.value


def test_one_function_is_placed_two_ways_at_its_call_sites(build):
    g = build(HEADER + """
@graph
def main():
    left = detect(camera())
    right = detect.options(requires=["camera_right", where(kind="gpu", memory_gb=at_least(4))])(camera())
    return fuse(left, right)
""")
    assert g.sq("detect").requires == ["camera_left"]
    assert g.sq("detect_2").requires == ["camera_right", {"kind": "gpu", "memory_gb": {"at_least": 4}}]
    assert g.sq("detect").cost == g.sq("detect_2").cost == 2  # what .options does not say stays


def test_a_stream_is_retimed_at_its_call_site(build):
    g = build(HEADER + """
@stream(period_ms=10, width_ms=4)
def narrow():
    return 1

@graph
def main():
    a = camera()
    b = camera.options(phase_ms=5, ensemble="pi-right")()
    c = camera.options(period_ms=20, count=3)()
    d = narrow.options(period_ms=20)()
    return a, b, c, d
""")
    assert (g.sq("camera").stream.phase, g.sq("camera").stream.period) == (0, 10_000)
    assert g.sq("camera_2").stream.phase == 5_000 and g.sq("camera_2").ensemble == "pi-right"
    # The width followed the period where the decorator left it so, and kept its own where it did not.
    assert (g.sq("camera_3").stream.period, g.sq("camera_3").stream.width, g.sq("camera_3").stream.count) \
        == (20_000, 20_000, 3)
    assert (g.sq("narrow").stream.period, g.sq("narrow").stream.width) == (20_000, 4_000)


def test_placement_blocks_nest_and_options_win_over_them(build):
    g = build(HEADER + """
@graph
def main():
    with placement(ensemble="jetson", cost=5):
        a = detect(camera())
        with placement(ensemble="edge"):
            b = detect(camera())
        c = detect.options(ensemble="pi")(camera())
    return fuse(a, b), c
""")
    pins = {s.name: s.ensemble for s in g.sqs}
    assert pins == {"camera": "jetson", "detect": "jetson", "camera_2": "edge", "detect_2": "edge",
                    "camera_3": "jetson", "detect_3": "pi", "fuse": None}
    assert g.sq("detect_2").cost == 5 and g.sq("fuse").cost == 1
    assert g.sq("detect").requires == ["camera_left"]  # a block without requires= keeps the SQ's own


def test_the_sqs_finish_by_builds_are_placed_by_the_block_around_it(build):
    g = build(HEADER + """
@graph
def main():
    frame = camera()
    with placement(ensemble="gateway", requires=where(kind="compute")):
        safe = finish_by(detect(frame), deadline_ms=5, otherwise=zero)
    return safe
""")
    placed = {s.name for s in g.sqs if s.ensemble == "gateway"}
    assert placed == {"detect", "deadline_detect", "zero", "detect_or_zero"}
    assert all(g.sq(name).requires == [{"kind": "compute"}] for name in placed)


def test_placement_travels_through_a_graph_file(build):
    g = build(HEADER + """
@graph
def main():
    a = detect(camera())
    with placement(requires=any_of("gpu", where(kind="compute", cores=at_least(4)))):
        b = fuse(a, a)
    max_latency(15, a, b)
    return b
""")
    again = from_document(to_document(g))
    assert again.sq("fuse").requires == [{"any": [{"name": "gpu"}, {"kind": "compute", "cores": {"at_least": 4}}]}]
    assert [(b.path, b.limit) for b in again.bounds] == [(("detect", "fuse"), 15_000)]


def test_a_latency_bound_needs_a_path_of_arcs(build):
    err = _error(build, """
@graph
def main():
    a = detect(camera())
    b = detect(camera())
    max_latency(5, a, b)
    return fuse(a, b)
""")
    assert "no arc joins SQ 'detect' to SQ 'detect_2'" in str(err) and err.line == 25
    err = _error(build, """
@graph
def main():
    a = detect(camera())
    max_latency(0, camera(), a)
    return a
""")
    assert "max_latency must be positive" in str(err)


@pytest.mark.parametrize("call, message", [
    ('detect.options(requires={"memory_gb": {"more": 4}})', "at_least"),
    ('detect.options(cost=0)', "cost= must be a positive number"),
    ('detect.options(cost=1e308)', "cost= must be a positive number up to 1000000"),
    ('detect.options(ensemble=3)', "ensemble= takes an ensemble name"),
    ('detect.options(ensemble="")', "ensemble= '' is not an ensemble name (letters, digits"),
    ('detect.options(ensemble="-pi")', "ensemble= '-pi' is not an ensemble name"),
    ('detect.options(period_ms=5)', "detect is not a stream; only a stream takes period_ms"),
    ('camera.options(phase_ms=10)', "phase_ms must be in [0, period_ms)"),
])
def test_bad_call_site_options_name_the_line(build, call, message):
    err = _error(build, """
@graph
def main():
    return %s(camera())
""" % call if "camera.options" not in call else """
@graph
def main():
    return detect(%s())
""" % call)
    assert message in str(err) and err.line == 23


def test_a_placement_block_outside_a_graph_is_an_error():
    from appliance import placement

    with pytest.raises(BuildError, match="inside a @graph"), placement(ensemble="pi"):
        pass


def test_bad_requires_are_refused_when_decorating():
    from appliance import sq, stream

    # Was: taken, and the mapper then made a list per port until memory ran out.
    with pytest.raises(ValueError, match="outputs= must be an int from 1 to 1024, got 1000000000"):
        sq(outputs=10 ** 9)(lambda: 1)
    with pytest.raises(ValueError, match="outputs= must be an int from 1 to 1024"):
        stream(period_ms=10, outputs=1025)(lambda tick: 1)
    with pytest.raises(ValueError, match="ensemble= 'a b' is not an ensemble name"):
        sq(ensemble="a b")(lambda: 1)

    with pytest.raises(ValueError, match="between takes"):
        sq(requires={"temp": {"between": [5, 1]}})(lambda: 1)
    with pytest.raises(TypeError, match="a query or a list of queries"):
        sq(requires=3)(lambda: 1)
    with pytest.raises(ValueError, match="not a finite number"):
        sq(requires={"rate": float("nan")})(lambda: 1)

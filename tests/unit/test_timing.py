import pytest

from appliance.timing import FOREVER, NEVER, Clock, ClockSet, Interval, ms_to_ticks


def test_intervals_are_half_open_and_touching_ones_do_not_overlap():
    a = Interval(0, 10)
    assert a.overlaps(Interval(9, 20))
    assert not a.overlaps(Interval(10, 20))
    assert a.intersection(Interval(10, 20)) is None
    assert a.intersection(Interval(5, 20)) == Interval(5, 10)


def test_an_interval_needs_integer_ticks_and_a_positive_width():
    with pytest.raises(ValueError):
        Interval(5, 5)
    with pytest.raises(TypeError):
        Interval(0.0, 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Interval(True, 3)  # type: ignore[arg-type]


def test_around_keeps_the_exact_width_even_when_odd():
    assert Interval.around(1000, 7) == Interval(997, 1004)
    assert Interval.around(1000, 7).width == 7
    assert Interval.around(1000, 1) == Interval(1000, 1001)


def test_intervals_on_different_clocks_must_be_converted_first():
    with pytest.raises(ValueError, match="common clock"):
        Interval(0, 1, "root").intersection(Interval(0, 1, "ms"))


def test_derived_clocks_convert_exactly_to_a_common_ancestor():
    clocks = ClockSet([Clock("ms", period=1000, epoch=0, parent="root"),
                       Clock("frames", period=40, epoch=5, parent="ms")])
    assert clocks.common_ancestor("frames", "ms") == "ms"
    assert clocks.to_ancestor(Interval(2, 3, "frames"), "root") == Interval(85_000, 125_000, "root")
    common = clocks.intersection(Interval(2, 3, "frames"), Interval(100_000, 200_000, "root"))
    assert common == Interval(100_000, 125_000, "root")


def test_the_always_interval_stays_always_on_any_clock():
    clocks = ClockSet([Clock("ms", period=1000, parent="root")])
    assert clocks.to_ancestor(Interval.always("ms"), "root") == Interval(NEVER, FOREVER)
    assert Interval.always().is_always


def test_clock_definitions_are_checked():
    with pytest.raises(ValueError):
        Clock("ms", period=0, parent="root")
    with pytest.raises(ValueError):
        Clock("orphan")  # only the root has no parent
    with pytest.raises(ValueError, match="parent"):
        ClockSet([Clock("child", parent="missing")])


def test_milliseconds_become_whole_ticks_or_are_refused():
    assert ms_to_ticks(20) == 20_000
    assert ms_to_ticks(0.5) == 500
    assert ms_to_ticks(0.1) == 100  # 0.1 * 1000 is not exact in binary, still one whole tick count
    with pytest.raises(ValueError, match="whole number"):
        ms_to_ticks(0.0005)
    with pytest.raises(TypeError):
        ms_to_ticks("5")  # type: ignore[arg-type]


@pytest.mark.parametrize("ms", [float("inf"), float("-inf"), float("nan"), 1e306])
def test_milliseconds_that_are_no_number_of_ticks_are_refused_as_values(ms):
    with pytest.raises(ValueError, match="max_latency must be a finite number of milliseconds, got"):
        ms_to_ticks(ms, "max_latency")

"""Firing rules, driven directly with tokens and a fake clock (plain integers)."""
from appliance.program.model import DEADLINE, IMMEDIATE, SEQUENTIAL, STREAM, TIMED, SQSpec, StreamSpec
from appliance.program.token import EMPTY, Tag, Token
from appliance.runtime.counters import Counters
from appliance.runtime.firing import make_rule
from appliance.runtime.timers import Timers
from appliance.timing import Interval


def rule_for(firing=TIMED, inputs=("a", "b"), fed=(0, 1), **fields):
    spec = SQSpec(name="s", kind="sq", function="f", inputs=list(inputs), firing=firing, **fields)
    timers, counters = Timers(), Counters()
    return make_rule(spec, fed, timers, counters), timers, counters


def tok(value, start, stop, port):
    return Token(value, Interval(start, stop), Tag(0, "s", port))


def test_timed_fires_when_intervals_overlap_with_their_intersection():
    rule, _, _ = rule_for()
    assert rule.on_token(tok("a1", 0, 10, 0), now=0) == []
    [ctx] = rule.on_token(tok("b1", 5, 15, 1), now=1)
    assert ctx.values == ("a1", "b1") and ctx.interval == Interval(5, 10)
    assert rule.on_token(tok("b2", 20, 30, 1), now=2) == []  # a1 was consumed


def test_touching_intervals_do_not_fire():
    rule, _, _ = rule_for()
    rule.on_token(tok("a", 0, 10, 0), now=0)
    assert rule.on_token(tok("b", 10, 20, 1), now=0) == []


def test_the_widest_overlap_wins_and_ties_go_to_the_earliest():
    rule, _, _ = rule_for()
    rule.on_token(tok("narrow", 0, 12, 0), now=0)
    rule.on_token(tok("wide", 8, 30, 0), now=0)
    [ctx] = rule.on_token(tok("b", 10, 20, 1), now=0)
    assert ctx.values == ("wide", "b") and ctx.interval == Interval(10, 20)
    rule, _, _ = rule_for()
    rule.on_token(tok("early", 0, 15, 0), now=0)
    rule.on_token(tok("late", 15, 30, 0), now=0)
    [ctx] = rule.on_token(tok("b", 10, 20, 1), now=0)
    assert ctx.values[0] == "early"


def test_tokens_passed_by_a_firing_are_counted_as_unmatched():
    rule, _, counters = rule_for()
    for i in range(4):  # a fast stream: samples at 0, 5, 10, 15
        rule.on_token(tok("fast%d" % i, i * 5, i * 5 + 1, 1), now=i)
    [ctx] = rule.on_token(tok("slow", 15, 16, 0), now=20)
    assert ctx.values == ("slow", "fast3")
    assert counters.get("dropped.unmatched") == 3


def test_a_full_port_store_evicts_the_oldest_and_counts_it():
    rule, _, counters = rule_for(max_tokens=3)
    for i in range(5):
        rule.on_token(tok(i, i * 10, i * 10 + 5, 0), now=0)
    assert counters.get("dropped.store_full") == 2
    [ctx] = rule.on_token(tok("b", 0, 100, 1), now=0)
    assert ctx.values[0] in (2, 3, 4)


def test_stale_tokens_expire_by_age_and_are_counted():
    rule, _, counters = rule_for(max_age=100)
    rule.on_token(tok("old", 0, 10, 0), now=0)
    assert rule.on_token(tok("b", 5, 15, 1), now=500) == []
    assert counters.get("dropped.expired") == 1


def test_sticky_inputs_keep_their_newest_token():
    rule, _, _ = rule_for(sticky=["b"])
    rule.on_token(tok("config", -10**9, 10**9, 1), now=0)
    outs = [rule.on_token(tok(i, i, i + 1, 0), now=i) for i in range(3)]
    assert [o[0].values for o in outs] == [(0, "config"), (1, "config"), (2, "config")]


def test_constants_fill_their_inputs_and_a_single_input_fires_at_once():
    rule, _, _ = rule_for(inputs=("x", "k"), fed=(0,), constants={"k": 7})
    [ctx] = rule.on_token(tok(1, 0, 10, 0), now=0)
    assert ctx.values == (1, 7)


def test_immediate_fires_on_each_token_with_the_others_empty():
    rule, _, _ = rule_for(firing=IMMEDIATE)
    [ctx] = rule.on_token(tok("x", 0, 10, 1), now=0)
    assert ctx.values == (EMPTY, "x") and ctx.interval == Interval(0, 10)


def test_sequential_releases_in_time_order_after_the_reorder_window():
    rule, timers, counters = rule_for(firing=SEQUENTIAL, inputs=("x",), fed=(0,), reorder=50)
    assert rule.on_token(tok("t20", 20, 21, 0), now=100) == []
    assert rule.on_token(tok("t10", 10, 11, 0), now=120) == []
    assert timers.next_due() == 150
    assert [c.values[0] for c in timers.run_due(150)] == []  # t10 is the earliest and waits until 170
    assert [c.values[0] for c in timers.run_due(170)] == ["t10", "t20"]
    assert counters.get("out_of_order") == 0


def test_sequential_without_a_window_never_skips_a_late_sample():
    rule, _, counters = rule_for(firing=SEQUENTIAL, inputs=("x",), fed=(0,))
    assert rule.on_token(tok("t20", 20, 21, 0), now=0)[0].values == ("t20",)
    assert rule.on_token(tok("t10", 10, 11, 0), now=1)[0].values == ("t10",)  # executed, not dropped
    assert counters.get("out_of_order") == 1


def rule_for_stream(period=5000, phase=0, width=1000, count=None):
    spec = SQSpec(name="s", kind="stream", function="f", inputs=[], firing=STREAM,
                  stream=StreamSpec(period, phase, width, count), tick=True)
    timers, counters = Timers(), Counters()
    return make_rule(spec, [], timers, counters), timers, counters


def test_a_stream_samples_on_its_grid_for_the_whole_window():
    rule, timers, _ = rule_for_stream(period=5000, phase=1000, width=1000)
    assert rule.on_start(Interval(2500, 1_002_500), now=0) == []
    ticks = []
    while timers.next_due() is not None:
        ticks += [c.tick for c in timers.run_due(timers.next_due())]
    assert ticks[0] == 6000 and ticks[-1] == 1_001_000
    assert len(ticks) == 200 and all(b - a == 5000 for a, b in zip(ticks, ticks[1:]))


def test_a_stream_sample_is_stamped_around_its_tick():
    rule, timers, _ = rule_for_stream(period=20_000, width=1000)
    rule.on_start(Interval(0, 100_000), now=0)
    [ctx] = timers.run_due(0)
    assert ctx.tick == 0 and ctx.interval == Interval(-500, 500)


def test_a_stream_stops_after_count_samples():
    rule, timers, _ = rule_for_stream(period=10, count=3)
    rule.on_start(Interval(0, 10**6), now=0)
    seen = []
    while timers.next_due() is not None:
        seen += timers.run_due(timers.next_due())
    assert len(seen) == 3


def test_a_late_stream_skips_ahead_and_counts_what_it_skipped():
    rule, timers, counters = rule_for_stream(period=10)
    rule.on_start(Interval(0, 10**6), now=0)
    out = timers.run_due(1000)  # 100 periods late
    assert counters.get("dropped.stream_overrun") > 0
    assert len(out) == 17  # the catch-up bound, then back on the grid
    assert out[-1].tick == 1000


def _deadline(deadline):
    spec = SQSpec(name="s", kind="builtin", function="deadline", inputs=["value", "met"],
                  outputs=2, firing=DEADLINE, deadline=deadline)
    timers, counters = Timers(), Counters()
    return make_rule(spec, [0, 1], timers, counters), timers, counters


def test_a_value_in_time_passes_through():
    rule, timers, _ = _deadline(100)
    assert rule.on_token(tok(None, 1000, 1010, 1), now=1000) == []  # the sample arms the deadline
    [ctx] = rule.on_token(tok("v", 1000, 1010, 0), now=1080)
    assert ctx.values == ("v", True)
    assert timers.run_due(1100) == []
    assert rule.stop()[1] == {"met": 1, "missed": 0}


def test_a_missed_deadline_triggers_plan_b_with_the_samples_interval_and_drops_the_late_value():
    rule, timers, counters = _deadline(100)
    rule.on_token(tok(None, 1000, 1010, 1), now=1000)
    [ctx] = timers.run_due(1100)
    assert ctx.values == (EMPTY, False) and ctx.interval == Interval(1000, 1010)
    assert rule.on_token(tok("late", 1000, 1010, 0), now=1200) == []
    assert counters.get("dropped.deadline_late") == 1
    assert rule.stop()[1] == {"met": 0, "missed": 1}


def test_a_value_that_beats_its_sample_token_counts_as_met():
    rule, _, _ = _deadline(100)
    assert rule.on_token(tok("v", 1000, 1010, 0), now=1010) == []
    [ctx] = rule.on_token(tok(None, 1000, 1010, 1), now=1020)
    assert ctx.values == ("v", True)


def test_a_sample_arriving_after_its_deadline_misses_at_once():
    rule, _, _ = _deadline(100)
    [ctx] = rule.on_token(tok(None, 1000, 1010, 1), now=1500)
    assert ctx.values == (EMPTY, False)


def test_an_sq_takes_tokens_on_its_arc_fed_inputs_or_else_its_trigger():
    rule, _, _ = rule_for(inputs=("x", "k"), fed=(0,), constants={"k": 1})
    assert rule.ports == {0}
    trigger_only, _, _ = rule_for(inputs=("k",), fed=(), constants={"k": 1})
    assert trigger_only.ports == {1}  # the trigger port, after the constant input


def test_a_value_ahead_of_its_sample_but_after_the_deadline_is_a_miss():
    rule, _, _ = _deadline(100)
    assert rule.on_token(tok("v", 1000, 1010, 0), now=1500) == []
    [ctx] = rule.on_token(tok(None, 1000, 1010, 1), now=1600)
    assert ctx.values == (EMPTY, False)


def test_an_sq_without_arc_inputs_fires_when_the_window_opens():
    rule, timers, _ = rule_for(inputs=("k",), fed=(), constants={"k": 5})
    assert rule.on_start(Interval(200, 10_000), now=0) == []
    assert timers.next_due() == 200
    [ctx] = timers.run_due(200)
    assert ctx.values == (5,) and ctx.interval == Interval(200, 10_000)


def test_the_reorder_hold_is_bounded_and_releases_the_earliest_when_full():
    rule, timers, counters = rule_for(firing=SEQUENTIAL, inputs=("x",), fed=(0,), reorder=1000, max_tokens=2)
    assert rule.on_token(tok("a", 10, 11, 0), now=0) == []
    assert rule.on_token(tok("b", 20, 21, 0), now=1) == []
    [early] = rule.on_token(tok("c", 30, 31, 0), now=2)
    assert early.values == ("a",) and counters.get("reorder_overflow") == 1
    assert [c.values[0] for c in timers.run_due(2000)] == ["b", "c"]


def test_a_sticky_value_that_arrives_late_joins_every_sample_that_waited_for_it():
    spec = SQSpec(name="s", kind="sq", function="f", inputs=["x", "k"], sticky=["k"])
    counters = Counters()
    rule = make_rule(spec, [0, 1], Timers(), counters)
    for i in range(5):  # five samples before the value computed once
        assert rule.on_token(tok(i, 10 * i, 10 * i + 2, 0), now=10 * i) == []
    contexts = rule.on_token(tok("k", 0, 10**6, 1), now=50)
    assert [c.values for c in contexts] == [(i, "k") for i in range(5)]  # all of them, in time order
    [later] = rule.on_token(tok(5, 50, 52, 0), now=51)
    assert later.values == (5, "k")
    assert counters.as_dict() == {}  # nothing unmatched, nothing dropped

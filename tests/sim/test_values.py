"""An SQ's values are its own, and any value a program computes reaches the outputs
(or is that SQ's error), whatever the mapping."""
import json

import pytest

from appliance.cli import main
from appliance.runtime.execute import MAX_FIRING_BYTES
from appliance.system import EnsembleDescription

from .conftest import longest_bytes

MUTATING = """
from appliance import graph, sq, stream

@stream(period_ms=10, count=5, ensemble="ensemble-1")
def sample(tick):
    return [tick // 10000]

@sq(ensemble="ensemble-1")
def vandal(xs):
    xs.append("vandalised")   # mutates what it was given, before its sibling runs
    return len(xs)

@sq(ensemble="{reader}")
def reader(xs):
    return list(xs)

@sq(ensemble="ensemble-1")
def collect(xs, seen=[]):
    seen.append(len(seen))     # a mutable constant: every firing must get a fresh one
    return len(seen)

@graph
def main():
    s = sample()
    return vandal(s), reader(s), collect(s)
"""


@pytest.mark.parametrize("reader", ["ensemble-1", "ensemble-2"], ids=["same-ensemble", "across-ensembles"])
def test_an_sq_that_mutates_its_input_or_a_constant_changes_nothing_another_sees(run_sim, write_program, reader):
    records, _ = run_sim(write_program(MUTATING.replace("{reader}", reader)), ensembles=2, seconds=0.1)
    by_sq = {}
    for r in sorted(records, key=lambda r: r.start):
        by_sq.setdefault(r.sq, []).append(r.value)
    first = by_sq["reader"][0][0]
    assert by_sq["reader"] == [[n] for n in range(first, first + 5)]  # as sampled, never vandalised
    assert by_sq["vandal"] == [2] * 5
    assert by_sq["collect"] == [1] * 5  # the default list is new at every firing, as on a device


RETURNS_STATE = """
from appliance import graph, sq, stream

@stream(period_ms=10, count=4, ensemble="ensemble-1")
def sample(tick):
    return tick // 10000

@sq(state=True, ensemble="ensemble-1")
def history(x, state):
    state.setdefault("seen", []).append(x)
    return state["seen"]          # returns an object it goes on changing

@sq(ensemble="ensemble-2")
def echo(x):
    return x                      # back after a round trip longer than the period

@sq(ensemble="ensemble-1")
def late(h, x):
    return list(h)

@graph
def main():
    s = sample()
    return late(history(s), echo(s))
"""


def test_what_an_sq_returns_is_copied_as_it_leaves(run_sim, write_program):
    records, _ = run_sim(write_program(RETURNS_STATE), ensembles=2, seconds=0.1, latency=8000)
    values = [r.value for r in sorted(records, key=lambda r: r.start)]
    first = values[0][0]
    assert values == [list(range(first, first + n)) for n in range(1, 5)]  # each as it was when returned


SET_VALUE = """
from appliance import graph, sq, stream

@stream(period_ms=10, count=3, ensemble="ensemble-1")
def sample(tick):
    return {{1, 2}}

@sq(ensemble="{consumer}")
def size(s):
    return len(s)

@graph
def main():
    return size(sample())
"""


@pytest.mark.parametrize("consumer", ["ensemble-1", "ensemble-2"])
def test_a_value_the_wire_cannot_carry_fails_the_same_on_one_ensemble_as_across_two(run_sim, write_program,
                                                                                    consumer):
    records, result = run_sim(write_program(SET_VALUE.format(consumer=consumer)), ensembles=2, seconds=0.1)
    assert records == [] and result.summary["sq_errors"] == 3
    [error] = result.errors
    assert error["sq"] == "sample" and error["error"].startswith("unsendable: ") and "set" in error["error"]
    assert result.summary["sqs"]["sample"]["lost"] == {"unsendable": 3}


BIG = """
from appliance import graph, sq, stream

@stream(period_ms=10, count=2, ensemble="ensemble-1")
def sample(tick, k=2**70):
    return k

@sq(ensemble="ensemble-2")
def times(x, m=0xdeadbeef):
    return x * m * m

@graph
def main():
    return times(sample())
"""


def test_integers_beyond_64_bits_cross_ensembles_and_reach_the_output_file(capsys, write_program, tmp_path):
    out = tmp_path / "o.jsonl"
    code = main(["simulate", write_program(BIG), "--ensembles", "2", "--duration", "0.1", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    values = [json.loads(line)["value"] for line in out.read_text().splitlines()]
    assert values == [2**70 * 0xDEADBEEF * 0xDEADBEEF] * 2


def test_a_value_the_codec_cannot_encode_for_any_reason_is_an_sq_error(run_sim, write_program):
    path = write_program("""
from appliance import graph, sq, stream

@stream(period_ms=10, count=2)
def sample(tick):
    deep = []
    for _ in range(5000):   # deeper than the codec nests
        deep = [deep]
    return deep

@graph
def main():
    return sample()
""")
    records, result = run_sim(path, ensembles=[EnsembleDescription("solo")], seconds=0.1)
    assert records == [] and result.summary["sq_errors"] == 2
    assert result.errors[0]["error"].startswith("unsendable: ")


SIZED = """
from appliance import graph, sq, stream

@stream(period_ms=10, count=3, ensemble="ensemble-1")
def frame(tick):
    return b"x" * {length}

@sq(ensemble="{consumer}")
def measure(b):
    return len(b)

@graph
def main():
    return measure(frame())
"""


@pytest.mark.parametrize("consumer", ["ensemble-1", "ensemble-2"], ids=["same-ensemble", "across-ensembles"])
def test_what_one_firing_may_send_is_the_same_limit_wherever_its_consumer_runs(run_sim, write_program, consumer):
    length = longest_bytes(MAX_FIRING_BYTES)
    records, result = run_sim(write_program(SIZED.format(length=length, consumer=consumer)), ensembles=2,
                              seconds=0.1)
    assert [r.value for r in records] == [length] * 3 and result.summary["sq_errors"] == 0

    records, result = run_sim(write_program(SIZED.format(length=length + 1, consumer=consumer)), ensembles=2,
                              seconds=0.1)
    assert records == [] and result.summary["sq_errors"] == 3
    [error] = result.errors
    assert error["sq"] == "frame" and error["error"] == (
        "unsendable: its outputs are more than the 262144 bytes (256 KiB) one firing may send, encoded")
    assert result.summary["sqs"]["frame"]["lost"] == {"unsendable": 3}


NESTED = """
from appliance import graph, sq, stream

@stream(period_ms=10, count=2, ensemble="ensemble-1")
def nested(tick):
    value = 1
    for _ in range({depth}):
        value = (value,)
    return value

@sq(ensemble="{consumer}")
def depth(value):
    levels = 0
    while isinstance(value, tuple):
        value, levels = value[0], levels + 1
    return levels

@graph
def main():
    return depth(nested())
"""


@pytest.mark.parametrize("consumer", ["ensemble-1", "ensemble-2"], ids=["same-ensemble", "across-ensembles"])
def test_tuples_nest_62_deep_and_no_deeper_wherever_their_consumer_runs(run_sim, write_program, consumer):
    """programming.md: the codec's 64 levels, less the token and its message."""
    records, result = run_sim(write_program(NESTED.format(depth=62, consumer=consumer)), ensembles=2, seconds=0.1)
    assert [r.value for r in records] == [62, 62] and result.summary["sq_errors"] == 0
    records, result = run_sim(write_program(NESTED.format(depth=63, consumer=consumer)), ensembles=2, seconds=0.1)
    assert records == [] and result.summary["sqs"]["nested"]["lost"] == {"unsendable": 2}
    assert "values nested more than 64 deep" in result.errors[0]["error"]


#: More copies of a token at the limit than one transport message carries, or the transport
#: lets wait for its first channel to an ensemble (16 MiB).
COPIES = 80

FANNED_OUT = """
from appliance import graph, sq, stream

@stream(period_ms=10, count=2, ensemble="ensemble-1")
def frame(tick):
    return b"x" * %d
""" % longest_bytes(MAX_FIRING_BYTES) + "".join("""
@sq(ensemble="ensemble-2")
def measure_%d(b):
    return len(b) + %d
""" % (n, n) for n in range(COPIES)) + """
@graph
def main():
    f = frame()
    return %s
""" % ", ".join("measure_%d(f)" % n for n in range(COPIES))


def test_a_value_at_the_limit_reaches_every_consumer_on_another_ensemble_however_many_share_it(
        run_sim, write_program):
    """80 copies of a 256 KiB token for one ensemble would be more than one transport message
    carries: the value travels once, and every copy arrives, as on the producer's ensemble."""
    records, result = run_sim(write_program(FANNED_OUT), ensembles=2, seconds=0.1)
    assert result.summary["sq_errors"] == 0, result.errors
    length = longest_bytes(MAX_FIRING_BYTES)
    assert sorted(r.value for r in records) == sorted([length + n for n in range(COPIES)] * 2)


SURROGATE = """
from appliance import graph, sq, stream

@stream(period_ms=10, count=3, ensemble="ensemble-1")
def text(tick):
    return "caf\\u00e9 \\udcff"   # a lone surrogate: no UTF-8 encoder carries it

@sq(ensemble="{consumer}")
def measure(s):
    return len(s)

@graph
def main():
    return measure(text())
"""


@pytest.mark.parametrize("consumer", ["ensemble-1", "ensemble-2"], ids=["same-ensemble", "across-ensembles"])
def test_a_string_the_wire_cannot_carry_fails_at_its_sq_the_same_wherever_its_consumer_runs(run_sim, write_program,
                                                                                           consumer):
    records, result = run_sim(write_program(SURROGATE.replace("{consumer}", consumer)), ensembles=2, seconds=0.1)
    assert records == [] and result.summary["sq_errors"] == 3  # was: delivered on one ensemble, an error across two
    [error] = result.errors
    assert error["sq"] == "text" and error["error"].startswith(
        "unsendable: its output cannot be sent to another SQ: UnicodeEncodeError: ")
    assert result.summary["sqs"]["text"]["lost"] == {"unsendable": 3} and result.summary["lost"] == {"unsendable": 3}


def test_tokens_the_transport_drops_itself_are_said_on_the_transport_line(write_program, capsys):
    """70 distinct 256 KiB tokens wait for the first channel to another ensemble: more than the
    transport lets wait for one (16 MiB), so some are never sent, and said."""
    producers = 70
    source = "from appliance import graph, sq, stream\n\n" + \
        '@stream(period_ms=10, count=1, ensemble="ensemble-1")\ndef pulse(tick):\n    return 1\n' + "".join(
            '\n@sq(ensemble="ensemble-1")\ndef make_%d(x):\n    return bytes([%d]) * %d\n'
            '\n@sq(ensemble="ensemble-2")\ndef measure_%d(b):\n    return len(b)\n'
            % (n, n, longest_bytes(MAX_FIRING_BYTES), n) for n in range(producers)) + (
            "\n@graph\ndef main():\n    t = pulse()\n    return %s\n"
            % ", ".join("measure_%d(make_%d(t))" % (n, n) for n in range(producers)))
    code = main(["simulate", write_program(source), "--ensembles", "2", "--duration", "0.1"])
    out, err = capsys.readouterr()
    assert "  outputs logged" in out, err
    [logged] = [int(line.split()[2]) for line in out.splitlines() if line.startswith("  outputs logged")]
    [transport] = [line for line in out.splitlines() if line.startswith("  transport ")]
    assert code == 0 and logged < producers, out
    assert transport.split(", ")[-1].endswith(" best-effort never sent"), transport

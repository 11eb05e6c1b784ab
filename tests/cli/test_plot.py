"""``appliance plot``: one row of panels per output stream, from real simulation records."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from matplotlib.figure import Figure

from appliance.cli import main
from appliance.cli import plot as plot_command

from ..sim.conftest import example_path
from .test_graph import appliance_executable, run_cli, run_help_examples

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _simulated_records(tmp_path_factory, example, seconds):
    path = tmp_path_factory.mktemp("records") / "outputs.jsonl"
    assert main(["simulate", example_path(example), "--duration", seconds, "--out", str(path)]) == 0
    return str(path)


@pytest.fixture(scope="module")
def diamond_records(tmp_path_factory):
    """A real short run of the diamond: one stream, values that are lists."""
    return _simulated_records(tmp_path_factory, "diamond.py", "0.3")


@pytest.fixture(scope="module")
def sinusoid_records(tmp_path_factory):
    """A real short run of two_sinusoids: two streams of floats."""
    return _simulated_records(tmp_path_factory, "two_sinusoids.py", "0.3")


def _read(path):
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


def _drawn(path):
    figure = Figure()
    plot_command.draw(figure, plot_command.read_streams(path))
    return figure


def test_the_installed_command_writes_a_png(diamond_records, tmp_path):
    out = tmp_path / "plot.png"
    done = subprocess.run([appliance_executable(), "plot", diamond_records, "-o", str(out)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout == "plotted 1 stream(s), 30 records -> %s\n" % out
    data = out.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 10_000


def test_the_picture_goes_beside_the_records_by_default(capsys, tmp_path, diamond_records):
    records = tmp_path / "run.jsonl"
    shutil.copy(diamond_records, str(records))
    code, out, _ = run_cli(capsys, "plot", str(records))
    assert code == 0 and out.endswith("-> %s\n" % (tmp_path / "run.png"))
    assert (tmp_path / "run.png").read_bytes().startswith(PNG_MAGIC)


def test_one_row_per_stream_with_the_records_values_and_latency(sinusoid_records):
    records = _read(sinusoid_records)
    figure = _drawn(sinusoid_records)
    streams = sorted({(r["sq"], r["port"]) for r in records})
    assert streams == [("add", 0), ("smooth", 0)]
    assert len(figure.axes) == 2 * len(streams)
    for row, (sq, port) in enumerate(streams):
        mine = sorted((r for r in records if (r["sq"], r["port"]) == (sq, port)), key=lambda r: r["start"])
        values, latency = figure.axes[2 * row], figure.axes[2 * row + 1]
        assert values.get_title() == "%s:%d values" % (sq, port)
        [line] = values.get_lines()
        assert list(line.get_xdata()) == [r["start"] / 1e6 for r in mine]
        assert list(line.get_ydata()) == [r["value"] for r in mine]
        [delays] = latency.get_lines()
        assert list(delays.get_ydata()) == [(r["logged_at"] - r["start"]) / 1000 for r in mine]
    assert figure.axes[-1].get_xlabel() == "time (s, root clock)"


def test_values_that_are_not_numbers_are_counted_over_time(diamond_records):
    figure = _drawn(diamond_records)
    values, latency = figure.axes
    assert values.get_lines() == [] and len(latency.get_lines()) == 1
    assert sum(bar.get_height() for bar in values.patches) == len(_read(diamond_records)) == 30
    assert values.get_ylabel().startswith("records per ")


def test_a_stream_mixing_numbers_and_others_gets_both(tmp_path):
    path = tmp_path / "mixed.jsonl"
    values = [1, 2.5, True, None, 4, "x", [1], {"a": 1}]
    lines = [json.dumps({"sq": "m", "port": 1, "value": v, "start": 10_000 * i, "stop": 0,
                         "logged_at": 10_000 * i + 500 * i, "app": "main-1"}) for i, v in enumerate(values)]
    path.write_text("\n".join(reversed(lines)) + "\n")  # logged out of order: plotted in interval order
    figure = _drawn(str(path))
    assert len(figure.axes) == 3  # values, latency, and the count's own y axis
    numbers, latency, counts = figure.axes
    assert list(numbers.get_lines()[0].get_ydata()) == [1, 2.5, 4]  # True is not a number
    assert list(latency.get_lines()[0].get_ydata()) == [0.5 * i for i in range(len(values))]
    assert sum(bar.get_height() for bar in counts.patches) == 5
    assert counts.get_ylabel().startswith("non-numbers per ")


def test_bins_are_round_and_cut_the_span_into_about_twenty():
    one = plot_command.Record
    assert plot_command.bin_width({("a", 0): [one(0, 0, 1), one(300_000, 0, 1)]}) == 20_000
    assert plot_command.bin_width({("a", 0): [one(5, 0, 1)]}) == 1


@pytest.mark.parametrize("content, expected", [
    (None, "missing.jsonl: cannot read: No such file or directory"),
    ("", "bad.jsonl: holds no output records"),
    ("\n \n", "bad.jsonl: holds no output records"),
    ('{"sq": "a", "port": 0, "value": 1, "start": 0, "logged_at": 1}\nnot json\n', "bad.jsonl:2: not JSON: "),
    ('\n{"sq": "a", "port": 0, "value": 1, "start": 0}\n', "bad.jsonl:2: not an output record: no 'logged_at'"),
    ('[1, 2]\n', "bad.jsonl:1: not an output record: a JSON object with sq, port"),
    ('{"sq": "a", "port": true, "value": 1, "start": 0, "logged_at": 1}\n',
     "bad.jsonl:1: field 'port' must be an integer, got true"),
])
def test_bad_records_are_one_line_naming_file_and_line(capsys, tmp_path, content, expected):
    path = tmp_path / ("missing.jsonl" if content is None else "bad.jsonl")
    if content is not None:
        path.write_text(content)
    code, out, err = run_cli(capsys, "plot", str(path), "-o", str(tmp_path / "p.png"))
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("appliance plot: error: ")
    assert str(tmp_path / expected) in err
    assert not (tmp_path / "p.png").exists()


def test_an_unknown_picture_format_is_a_usage_error(capsys, diamond_records, tmp_path):
    code, _, err = run_cli(capsys, "plot", diamond_records, "-o", str(tmp_path / "plot.bmpx"))
    assert code == 2 and "the extension says the format" in err and ".png" in err


def test_without_matplotlib_it_says_how_to_get_it(diamond_records):
    wrapper = ("import sys; sys.modules['matplotlib'] = None; from appliance.cli import main; "
               "sys.exit(main(sys.argv[1:]))")
    done = subprocess.run([sys.executable, "-c", wrapper, "plot", diamond_records], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == ("appliance plot: error: matplotlib is not installed; "
                           "get it with: pip install 'appliance[plot]'\n")


def test_the_help_examples_run_from_the_repository_root(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "plot", "--help")
    assert code == 0 and "examples:" in out
    run_help_examples(plot_command, tmp_path)
    assert (tmp_path / "outputs.png").read_bytes().startswith(PNG_MAGIC)

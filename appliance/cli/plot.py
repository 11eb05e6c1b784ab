"""``appliance plot``: an output records file as a picture.

One row of panels per output stream (an ``(sq, port)`` pair of the records):
its values over time (numbers as a line, other values as a count per time
bin) beside its end-to-end latency. matplotlib is an optional extra, so it is
imported only here, and only its Agg backend is used: no display needed.
"""
from __future__ import annotations

import argparse
import json
import math
import os
from collections import Counter
from dataclasses import dataclass
from typing import Any, Dict, List, Tuple

from appliance.cli import values
from appliance.cli.errors import UsageError

EXAMPLES = """examples:
  appliance simulate examples/diamond.py --duration 0.3 --out outputs.jsonl
  appliance plot outputs.jsonl -o outputs.png

Time runs along the root clock, in seconds: each point is a record's interval
start. Latency is logged_at - start, in ms. Values that are not numbers
(booleans, null, strings, lists, dicts) are counted per time bin instead.
"""

#: The keys of an output record the plot reads; any others (``ensemble``, ``app``, ...) are ignored.
KEYS = ("sq", "port", "value", "start", "logged_at")

#: Roughly how many count bins the time span is cut into.
BINS = 20

Stream = Tuple[str, int]


@dataclass(frozen=True)
class Record:
    start: int
    logged_at: int
    value: Any


def add_parser(sub) -> None:
    p = sub.add_parser("plot", help="plot output records: values and latency per output stream",
                       description="Plot each output stream of OUTPUTS.jsonl (what `appliance simulate --out` "
                       "writes): its values over time and its end-to-end latency.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("records", metavar="OUTPUTS.jsonl", type=values.file_name,
                   help="output records, one JSON object a line")
    p.add_argument("-o", "--output", metavar="PLOT.png", type=values.file_name,
                   help="where to write the picture; the extension says the format "
                   "(default: OUTPUTS.png beside the records)")
    p.set_defaults(run=run)


def _field(doc: Dict[str, Any], key: str, where: str) -> Any:
    value = doc[key]
    wanted = str if key == "sq" else int
    if not isinstance(value, wanted) or isinstance(value, bool):
        raise UsageError("%s: field '%s' must be %s, got %s"
                         % (where, key, "a string" if wanted is str else "an integer", json.dumps(value)))
    return value


def read_streams(path: str) -> Dict[Stream, List[Record]]:
    """The records of ``path`` by output stream (sorted by SQ and port), each in
    interval order; a line that is not an output record is a UsageError naming it."""
    try:
        with open(path, "rb") as handle:
            lines = handle.read().splitlines()
    except OSError as exc:
        raise UsageError("%s: cannot read: %s" % (path, exc.strerror)) from None
    streams: Dict[Stream, List[Record]] = {}
    for number, raw in enumerate(lines, 1):
        where = "%s:%d" % (path, number)
        if not raw.strip():
            continue
        try:
            doc = json.loads(raw.decode("utf-8"))
        except ValueError as exc:  # UnicodeDecodeError is a ValueError too
            raise UsageError("%s: not JSON: %s" % (where, exc)) from None
        except RecursionError:  # the json module recurses once per level of nesting
            raise UsageError("%s: not an output record: JSON nested too deeply" % where) from None
        if not isinstance(doc, dict):
            raise UsageError("%s: not an output record: a JSON object with %s" % (where, ", ".join(KEYS)))
        missing = [key for key in KEYS if key not in doc]
        if missing:
            raise UsageError("%s: not an output record: no %s" % (where, ", ".join("'%s'" % k for k in missing)))
        stream = (_field(doc, "sq", where), _field(doc, "port", where))
        record = Record(_field(doc, "start", where), _field(doc, "logged_at", where), doc["value"])
        streams.setdefault(stream, []).append(record)
    if not streams:
        raise UsageError("%s: holds no output records" % path)
    return {stream: sorted(streams[stream], key=lambda r: r.start) for stream in sorted(streams)}


def is_number(value: Any) -> bool:
    """Whether ``value`` is plotted as a number: finite ints and floats, and not booleans."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def bin_width(streams: Dict[Stream, List[Record]]) -> int:
    """A round bin (1, 2 or 5 times a power of ten µs) cutting the records' time span into about BINS."""
    starts = [r.start for records in streams.values() for r in records]
    target = max(1, (max(starts) - min(starts)) // BINS)
    width = 1
    while True:
        for step in (1, 2, 5):
            if width * step >= target:
                return width * step
        width *= 10


def draw(figure: Any, streams: Dict[Stream, List[Record]]) -> None:
    """Fill a matplotlib ``figure``: one row per stream, values (or counts) left, latency right.

    The time axis is shared, so rows line up. A stream that mixes numbers and
    other values shows their count on a second y axis of its values panel."""
    from matplotlib.ticker import MaxNLocator  # a figure means matplotlib is there
    width = bin_width(streams)
    axes = figure.subplots(len(streams), 2, squeeze=False, sharex=True)
    for (panel, latency), ((sq, port), records) in zip(axes, streams.items()):
        numbers = [r for r in records if is_number(r.value)]
        others = Counter(r.start // width for r in records if not is_number(r.value))
        panel.set_title("%s:%d values" % (sq, port))
        if numbers:
            panel.plot([r.start / 1e6 for r in numbers], [r.value for r in numbers], marker=".", linewidth=1)
            panel.set_ylabel("value")
        if others:
            counts = panel.twinx() if numbers else panel
            bins = sorted(others)
            counts.bar([b * width / 1e6 for b in bins], [others[b] for b in bins], width=0.9 * width / 1e6,
                       align="edge", color="tab:orange", alpha=0.6)
            counts.yaxis.set_major_locator(MaxNLocator(integer=True))
            counts.set_ylabel("%s per %g ms" % ("non-numbers" if numbers else "records", width / 1000))
        latency.set_title("%s:%d latency" % (sq, port))
        latency.plot([r.start / 1e6 for r in records], [(r.logged_at - r.start) / 1000 for r in records],
                     marker=".", linewidth=1, color="tab:green")
        latency.set_ylabel("ms")
    for column in axes[-1]:
        column.set_xlabel("time (s, root clock)")


def run(args: argparse.Namespace) -> int:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise UsageError("matplotlib is not installed; get it with: pip install 'appliance[plot]'") from None
    output = os.path.splitext(args.records)[0] + ".png" if args.output is None else args.output
    kind = os.path.splitext(output)[1][1:].lower()
    formats = FigureCanvasAgg.get_supported_filetypes()
    if kind not in formats:
        raise UsageError("%s: the extension says the format; use one of %s"
                         % (output, ", ".join("." + f for f in sorted(formats))))
    streams = read_streams(args.records)
    figure = Figure(figsize=(11, 1 + 2.4 * len(streams)), layout="constrained")
    FigureCanvasAgg(figure)
    draw(figure, streams)
    try:
        figure.savefig(output, format=kind)
    except OSError as exc:
        raise UsageError("%s: cannot write: %s" % (output, exc.strerror)) from None
    print("plotted %d stream(s), %d records -> %s"
          % (len(streams), sum(len(records) for records in streams.values()), output))
    return 0

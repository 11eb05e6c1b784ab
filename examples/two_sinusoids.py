"""Two sinusoids sampled at different rates, added by a timed join, plus a
moving average over the faster one.

    appliance simulate examples/two_sinusoids.py --ensembles 3 --duration 1

`slow` samples every 20 ms and `fast` every 5 ms. Each sample's token is
valid for 1 ms around its sample time, so `add` fires only where the two
streams sample together (every 20 ms): its output is slow(t) + fast(t). The
other three of every four fast samples find no partner and are counted as
unmatched. `smooth` keeps a window in its state and, being stateful on a
stream, sees the fast samples in time order.
"""
import math

from appliance import graph, sq, stream

SLOW_HZ = 1.0  # frequency of the slow signal
FAST_HZ = 7.0  # frequency of the fast signal


def wave(hz: float, tick: int) -> float:
    """The signal value at root-clock tick ``tick`` (µs)."""
    return math.sin(2 * math.pi * hz * tick / 1e6)


@stream(period_ms=20, width_ms=1)
def slow(tick):
    return wave(SLOW_HZ, tick)


@stream(period_ms=5, width_ms=1)
def fast(tick, amplitude=0.5):
    return amplitude * wave(FAST_HZ, tick)


@sq
def add(a, b):
    return a + b


@sq(state=True)
def smooth(x, state, window=4):
    """Moving average of the last `window` samples."""
    recent = state.setdefault("recent", [])
    recent.append(x)
    del recent[:-window]
    return sum(recent) / len(recent)


@graph
def main():
    s = slow()
    f = fast()
    return add(s, f), smooth(f)

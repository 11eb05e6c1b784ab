"""A diamond: one source, two branches, joined again by a timed join.

    appliance simulate examples/diamond.py --ensembles 4 --jitter-ms 3

Each sample n of `counter` goes both ways (`double` and `square`) and the two
results meet again in `pair`. The join matches the two branches by time
interval, so every pair comes from the same sample even when the branches
run on different ensembles and the network delays them differently.
"""
from appliance import graph, sq, stream


@stream(period_ms=10)
def counter(tick):
    return tick // 10_000  # the sample's index on the root clock


@sq
def double(n):
    return 2 * n


@sq
def square(n):
    return n * n


@sq
def pair(doubled, squared):
    return [doubled, squared]


@graph
def main():
    n = counter()
    return pair(double(n), square(n))

"""Two cameras fused by a timed join, with a deadline and a Plan B.

    appliance simulate examples/camera_fusion.py --system examples/camera_fusion.system.json \\
        --latency-ms 4 --jitter-ms 12

Each camera sees the tracked object from its side (offset by 2 px); `fuse`,
which needs a GPU, averages the two views back to the true position. The
fused position must reach the deadline check within 20 ms of the start of the
left camera's sample interval (which opens 5 ms before the frame); when the
network is too slow, `no_detection` answers for that sample instead (Plan B),
with the same time interval, and the summary counts met and missed deadlines.
"""
import math

from appliance import finish_by, graph, sq, stream


def object_x(tick):
    """Where the object is at root-clock tick `tick` (µs): it swings left and right."""
    return round(100.0 + 40.0 * math.sin(2 * math.pi * 0.5 * tick / 1e6), 6)


@stream(period_ms=50, width_ms=10, requires=["camera_left"])
def left_camera(tick):
    return {"x": object_x(tick) - 2.0}


@stream(period_ms=50, width_ms=10, requires=["camera_right"])
def right_camera(tick):
    return {"x": object_x(tick) + 2.0}


@sq(requires=["gpu"])
def fuse(left, right):
    return {"x": round((left["x"] + right["x"]) / 2, 6), "source": "fused"}


@sq
def no_detection():
    return {"x": None, "source": "plan-b"}


@graph
def main():
    left = left_camera()
    right = right_camera()
    return finish_by(fuse(left, right), deadline_ms=20, otherwise=no_detection, sample=left)

"""A greenhouse: a thermometer on one Pi, the roof vent's valve on another.

    appliance simulate examples/greenhouse.py --system examples/greenhouse.system.json --duration 10

`temperature` reads the sensor every 100 ms on the ensemble that has it; the
controller opens the vent above 25 °C and closes it below 23 °C (in between
it keeps it as it was); `vent` writes the position to the valve on the
ensemble that has it. When the app is removed, `teardown()` closes the vent.
In simulation the sensor is simulated (a seeded function of time) and every
write is recorded; on devices each ensemble's configuration names the
drivers (docs/components.md).
"""
from appliance import components, graph, sq, stream
from appliance.components import where

OPEN_ABOVE = 25.0
CLOSE_BELOW = 23.0


@stream(period_ms=100, width_ms=10, requires=where(kind="sensor", unit="C"))
def temperature(tick):
    return round(components.read("thermometer"), 2)


@sq(state=True)
def controller(celsius, state):
    position = state.get("position", 0)
    if celsius > OPEN_ABOVE:
        position = 1
    elif celsius < CLOSE_BELOW:
        position = 0
    state["position"] = position
    return position


@sq(requires=where(kind="actuator"))
def vent(position):
    components.write("vent", position)
    return position


def teardown():
    """Runs on every ensemble hosting part of the app when it is removed: leave the vent closed."""
    if components.has("vent"):
        components.write("vent", 0)


@graph
def main():
    celsius = temperature()
    return celsius, vent(controller(celsius))

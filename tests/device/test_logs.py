"""A flood of bad messages is counted in full but logged a few lines a minute (appliance/device/logs.py)."""
import logging

from appliance.device.client import ControlClient
from appliance.device.logs import BURST, Repeats

from .conftest import WAIT, process_statuses


def _record(text, *args, name="appliance.network"):
    return logging.LogRecord(name, logging.WARNING, __file__, 1, text, args, None)


def test_a_kind_says_its_burst_a_window_then_how_many_it_held_back():
    now = [0.0]
    repeats = Repeats(burst=3, window=60.0, clock=lambda: now[0])
    said = [repeats.filter(_record("undecodable message from %s: %s", "10.0.0.%d" % i, "bad")) for i in range(10)]
    assert said == [True] * 3 + [False] * 7
    assert repeats.filter(_record("refused %s from %s", "JOIN", "10.0.0.1"))  # another kind: its own burst
    assert repeats.filter(_record("undecodable message from %s: %s", "x", "y", name="appliance.other"))
    now[0] = 59.0
    assert not repeats.filter(_record("undecodable message from %s: %s", "10.0.0.1", "bad"))
    now[0] = 60.0
    record = _record("undecodable message from %s: %s", "10.0.0.1", "bad")
    assert repeats.filter(record)
    assert record.getMessage() == ("undecodable message from 10.0.0.1: bad (and 8 more like it since the last one "
                                   "said, not said: the counters have them all)")
    assert repeats.filter(_record("undecodable message from %s: %s", "10.0.0.1", "bad")) is True


def test_a_peer_sending_undecodable_messages_is_counted_for_each_and_logged_a_burst(commands):
    """Was: one WARNING line per message, as fast as a peer sends them."""
    ensemble = commands("ensemble", "--name", "flooded", "--rtm", "127.0.0.1:9", "--listen", "127.0.0.1:0")
    address = ensemble.address()
    sent = 4 * BURST
    with ControlClient(address) as client:
        for i in range(sent):
            client.udp.send(client.target, b"\xc1 not a message %d" % i, True)
        client.udp.flush()
        assert client.wait(lambda: process_statuses(address)["network"]["counters"].get("refused.undecodable", 0)
                           == sent, WAIT)
    ensemble.stderr_line_containing("undecodable message from")
    code, _, stderr = ensemble.stop()
    assert code == 0, stderr
    lines = [line for line in stderr.splitlines() if "undecodable message from" in line]
    assert len(lines) == BURST, stderr

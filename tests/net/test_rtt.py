"""The RFC 6298 estimator with this transport's LAN bounds."""
from __future__ import annotations

from appliance.net import TransportConfig
from appliance.net.rtt import RttEstimator


def test_first_sample_then_smoothing_per_rfc6298():
    rtt = RttEstimator(TransportConfig(rto_min=1000))
    assert rtt.rto == 200_000 and rtt.srtt is None
    rtt.sample(8000)
    assert (rtt.srtt, rtt.rttvar, rtt.rto) == (8000, 4000, 8000 + 4 * 4000)
    rtt.sample(16000)
    assert rtt.rttvar == (3 * 4000 + 8000) // 4
    assert rtt.srtt == (7 * 8000 + 16000) // 8
    assert rtt.rto == rtt.srtt + 4 * rtt.rttvar


def test_bounds_and_backoff():
    config = TransportConfig(rto_min=30_000, rto_initial=50_000, rto_max=100_000, rto_backoff=2.0)
    rtt = RttEstimator(config)
    rtt.sample(200)
    assert rtt.rto == 30_000  # a LAN round trip stays at the floor
    rtt.back_off()
    assert rtt.rto == 60_000
    rtt.back_off()
    assert rtt.rto == 100_000  # capped
    rtt.sample(200)
    assert rtt.rto == 30_000  # a new sample ends the backoff

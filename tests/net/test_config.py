"""TransportConfig validates itself, so a bad limit fails at start-up, not under load."""
from __future__ import annotations

import dataclasses

import pytest

from appliance.net import TransportConfig


def test_defaults_are_valid_and_fit_an_ipv6_minimum_mtu_path():
    config = TransportConfig()
    assert config.mtu == 1280 - 40 - 8
    assert config.fragment_payload(authenticated=False) == 1200
    assert config.fragment_payload(authenticated=True) == 1184
    assert config.rto_min <= config.rto_initial <= config.rto_max
    assert 20_000 <= config.rto_min <= 50_000


def test_it_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        TransportConfig().window = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    "overrides",
    [
        {"mtu": 40},
        {"mtu": 70000},
        {"window": 0},
        {"max_peers": -1},
        {"rto_min": 300_000},  # above rto_initial
        {"rto_max": 100_000},  # below rto_initial
        {"rto_backoff": 0.5},
        {"max_in_flight": 600},  # more than half the replay window
        {"mtu": 100},  # 4 MiB would need more than 65535 fragments
        {"window": 70000},
    ],
)
def test_bad_values_are_refused_with_a_reason(overrides):
    with pytest.raises(ValueError):
        TransportConfig(**overrides)


def test_non_integers_are_refused():
    with pytest.raises(TypeError):
        TransportConfig(window=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        TransportConfig(retry_limit=True)  # type: ignore[arg-type]


def test_zero_is_allowed_where_it_means_off():
    TransportConfig(reorder_window=0, retired_sessions=0)

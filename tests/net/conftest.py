"""Shared fixtures of the transport tests."""
from __future__ import annotations

import pytest

from appliance.net import TransportConfig

from .fakewire import small_config


@pytest.fixture
def config() -> TransportConfig:
    return TransportConfig()


@pytest.fixture
def small_mtu() -> TransportConfig:
    return small_config()

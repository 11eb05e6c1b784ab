"""Counters account for every datagram, evicted peers included (issue D item 4)."""
from __future__ import annotations

from appliance.net import ENDPOINT, Endpoint, TransportConfig
from appliance.net.counters import REFUSALS

from .fakewire import Wire


class Counting(Wire):
    """A wire that counts what it hands each endpoint."""

    def __init__(self) -> None:
        super().__init__()
        self.handed = {}

    def inject(self, destination, source, datagram):
        self.handed[destination] = self.handed.get(destination, 0) + 1
        super().inject(destination, source, datagram)


def totals(stats, names):
    return {name: sum(section[name] for section in stats.values()) for name in names}


def test_the_sums_over_all_sections_are_exact_after_a_thousand_peers_came_and_went():
    config = TransportConfig(max_peers=8)
    wire = Counting()
    wire.add("b", Endpoint(config, session=5))
    refused = 0
    for index in range(1000):
        name = "p%d" % index
        wire.add(name, Endpoint(config, session=100 + index))
        wire.send(name, "b", b"hi")
        wire.run()
        wire.inject("b", name, b"\x02garbage datagram")  # one refused datagram each
        refused += 1
        wire.now += config.reliable_reassembly_timeout  # fall quiet: evictable
        del wire.endpoints[name]
    stats = wire.endpoints["b"].stats()
    assert stats[ENDPOINT]["peers"] == 8 and stats[ENDPOINT]["peers_evicted"] == 992
    sums = totals(stats, ("datagrams_received", "delivered", "acks_sent", "channels_opened") + REFUSALS)
    assert sums["datagrams_received"] == wire.handed["b"]  # every datagram, once
    assert sum(sums[name] for name in REFUSALS) == refused
    assert sums["delivered"] == sums["channels_opened"] == 1000
    assert sums["acks_sent"] == 2000  # each channel's confirmation, and its message's


def test_the_endpoint_wide_section_counts_what_came_from_no_peer():
    b = Endpoint(TransportConfig(), session=5)
    for garbage in (b"", b"\x02" * 40, bytes(60)):
        b.receive_datagram(garbage, "10.0.0.9:1", 0)
    stats = b.stats()
    assert set(stats) == {ENDPOINT}
    assert stats[ENDPOINT]["datagrams_received"] == 3
    assert sum(stats[ENDPOINT][name] for name in REFUSALS) == 3

"""Counters account for every datagram, evicted peers included (issue D item 4)."""
from __future__ import annotations

from appliance.net import ENDPOINT, Endpoint, TransportConfig
from appliance.net import wire as wire_format
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


def test_a_confirm_refused_for_want_of_room_is_counted_once():
    """One reason per datagram: the table's refusal is the CONFIRM's, counted where datagrams are."""
    config = TransportConfig(max_peers=2)
    wire = Counting()
    from_d = []
    inject = wire.inject

    def watch(destination, source, datagram):
        if destination == "a" and source == "d":
            from_d.append(datagram[1])  # its type
        inject(destination, source, datagram)

    wire.inject = watch
    for name in "abcd":
        wire.add(name, Endpoint(config, session=ord(name)))
    for name in "bc":
        wire.send(name, "a", b"hi")
        wire.run()
    wire.send("d", "a", b"turned away")  # b and c spoke too recently to be evicted
    wire.run()
    stats = wire.endpoints["a"].stats()
    confirms = from_d.count(wire_format.CONFIRM)
    assert confirms and stats[ENDPOINT]["peers_full"] == confirms
    # Every datagram d sent but its HELLOs (answered, not refused) is refused once, for one reason.
    refused = sum(section[name] for section in stats.values() for name in REFUSALS)
    assert refused == len(from_d) - from_d.count(wire_format.HELLO)


def test_peers_evicted_leave_nothing_behind_however_many_came_and_went():
    """A stranger that opened a channel to this endpoint, and was evicted, is forgotten
    whole: nothing of it stays reachable (it used to stay among the 'busy' peers)."""
    import gc

    from appliance.net.peer import Peer

    config = TransportConfig(max_peers=4)
    wire = Counting()
    wire.add("b", Endpoint(config, session=5))
    for index in range(40):
        name = "p%d" % index
        wire.add(name, Endpoint(config, session=100 + index))
        wire.send(name, "b", b"hi")
        wire.run()
        wire.now += config.reliable_reassembly_timeout
        del wire.endpoints[name]
    gc.collect()
    assert wire.endpoints["b"].stats()[ENDPOINT]["peers_evicted"] == 36
    held = [o for o in gc.get_objects() if isinstance(o, Peer) and o.address.startswith("p")]
    assert len(held) == 4  # the four the table still holds

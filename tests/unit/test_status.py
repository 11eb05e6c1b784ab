"""What a run counted on ensembles that served before it (appliance/runtime/status.py)."""
from appliance.net import ENDPOINT, Endpoint, TransportConfig
from appliance.runtime.network import NetworkCore
from appliance.runtime.network_manager import NetworkManager
from appliance.runtime.status import STRANGER_SECTIONS, STRANGERS, add_late_counts, counted_since, transport_totals

from ..net.fakewire import Wire


def _network(epoch, counters, transport):
    return {"counters_epoch": epoch, "counters": counters, "transport": transport}


def test_what_was_counted_before_the_run_is_taken_off_unless_counting_started_afresh():
    before = {"e1/network": _network(3, {"dropped.send_failed": 2}, {}),
              "e2/network": _network(5, {"dropped.no_route": 4}, {})}
    after = {"e1/network": _network(3, {"dropped.send_failed": 3}, {}),  # same epoch: 1 of them is the run's
             "e2/network": _network(6, {"dropped.no_route": 1}, {}),  # cleared at a deploy: all the run's
             "e3/network": _network(0, {"dropped.no_route": 7}, {})}  # new: all the run's
    since = counted_since(before, after)
    assert [since[p]["counters"] for p in sorted(since)] == [
        {"dropped.send_failed": 1}, {"dropped.no_route": 1}, {"dropped.no_route": 7}]


def test_a_peer_evicted_during_the_run_does_not_count_its_earlier_traffic_again():
    """Was: taken off per peer, so what an evicted peer had sent came back in the endpoint's own section."""
    before = {"m/network": _network(0, {}, {"10.0.0.1:1": {"sent": 100, "delivered": 100, "rtt_us": 900},
                                            "*": {"sent": 0, "delivered": 0}})}
    after = {"m/network": _network(0, {}, {"10.0.0.2:2": {"sent": 5, "delivered": 5, "rtt_us": 300},
                                           "*": {"sent": 100, "delivered": 100}})}
    totals = transport_totals(counted_since(before, after).values())
    assert (totals["sent"], totals["delivered"]) == (5, 5)


def test_a_process_started_again_counts_whole():
    before = {"m/network": _network(0, {}, {"*": {"sent": 100}})}
    after = {"m/network": _network(0, {}, {"*": {"sent": 7}})}
    assert transport_totals(counted_since(before, after).values())["sent"] == 7


def test_a_network_status_answer_stays_bounded_however_many_strangers_completed_handshakes():
    """Was: one section per peer; 4,400 handshakes from separate ports made a member's network
    answer 2.5 MB, larger than the queue the runtime manager relays it through, and
    ``appliance status`` left that process out without a word."""
    config = TransportConfig(max_peers=128)
    wire = Wire()
    endpoint = wire.add("m", Endpoint(config, session=2))
    network = NetworkManager(NetworkCore("m", "m"), endpoint)
    network.core.routes.update({"e1": "e1"})
    network.core.routes_changed(set(network.core.routes.values()) - {"m"})
    wire.add("e1", Endpoint(config, session=3))
    wire.send("e1", "m", b"member")
    for index in range(40):
        wire.add("s%d" % index, Endpoint(config, session=100 + index))
        wire.send("s%d" % index, "m", b"stranger")
        wire.run()
    everything = endpoint.stats()
    assert len(everything) == 1 + 1 + 40  # "*", the member, the strangers: what the answer used to carry
    answered = network.core.status(wire.now)["transport"]
    kept = ["s%d" % index for index in range(40 - STRANGER_SECTIONS, 40)]  # the most recently active
    assert sorted(answered) == sorted([ENDPOINT, "e1", STRANGERS] + kept)
    assert answered[STRANGERS]["peers"] == 40 - STRANGER_SECTIONS
    for name in ("datagrams_received", "delivered", "channels_opened", "acks_sent"):
        assert sum(s.get(name, 0) for s in answered.values()) == sum(s[name] for s in everything.values()) > 0


def test_what_did_not_grow_during_the_run_is_not_in_its_summary():
    """Was: a second run on the same ensembles printed "lost  send_failed 0" (and "refused
    unknown_sender 0"): counters of earlier runs, taken off, stayed as zeros."""
    before = {"e1/network": _network(2, {"dropped.send_failed": 3, "refused.unknown_sender": 1}, {})}
    after = {"e1/network": _network(2, {"dropped.send_failed": 3, "refused.unknown_sender": 1}, {})}
    summary = {"discarded": {}, "lost": {}, "refused": {}}
    add_late_counts(summary, counted_since(before, after).values())
    assert summary == {"discarded": {}, "lost": {}, "refused": {}}

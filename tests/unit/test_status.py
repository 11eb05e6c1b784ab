"""What a run counted on ensembles that served before it (appliance/runtime/status.py)."""
from appliance.runtime.status import counted_since, transport_totals


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

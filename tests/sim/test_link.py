import simpy

from appliance.net.impairment import Impairment
from appliance.sim.link import SimNetwork


def _deliveries(seed, impairment, count=200):
    env = simpy.Environment()
    net = SimNetwork(env, seed, impairment)
    got = []
    net.attach("b", lambda data, source: got.append((env.now, data, source)))
    net.attach("a", lambda data, source: None)
    for i in range(count):
        net.send("a", "b", b"%d" % i)
    env.run()
    return got, net.counters


def test_a_seed_replays_exactly_and_another_seed_does_not():
    impairment = Impairment(latency=1000, jitter=500, loss=0.2, duplicate=0.1, reorder=0.1, corrupt=0.05)
    first, _ = _deliveries(3, impairment)
    assert first == _deliveries(3, impairment)[0]
    assert first != _deliveries(4, impairment)[0]


def test_impairments_happen_at_about_their_rates_and_are_counted():
    got, counters = _deliveries(1, Impairment(latency=100, loss=0.3, duplicate=0.2), count=2000)
    assert 500 < counters["lost"] < 700
    assert counters["delivered"] == len(got) == counters["sent"] - counters["lost"] + counters["duplicated"]


def test_without_jitter_or_reordering_the_link_is_fifo_and_delays_exactly():
    got, _ = _deliveries(0, Impairment(latency=250))
    assert [data for _, data, _ in got] == [b"%d" % i for i in range(200)]
    assert {t for t, _, _ in got} == {250}


def test_datagrams_to_a_detached_address_are_counted_as_undeliverable():
    env = simpy.Environment()
    net = SimNetwork(env, 0, Impairment(latency=10))
    net.attach("b", lambda data, source: None)
    net.send("a", "b", b"x")
    net.detach("b")
    env.run()
    assert net.counters["undeliverable"] == 1

"""The lossy relay forwards both ways and impairs as told, reproducibly per seed."""
from __future__ import annotations

import random
import socket

import pytest

from appliance.net.address import format_address
from appliance.net.impairment import Impairment
from appliance.net.relay import LossyRelay, main


@pytest.fixture
def target():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    yield sock
    sock.close()


@pytest.fixture
def client():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    yield sock
    sock.close()


def relay_for(target, seed=0, **impairment) -> LossyRelay:
    address = format_address(*target.getsockname())
    return LossyRelay(address, impairment=Impairment(**impairment), seed=seed)


def first_draws(seed, count=2):
    rng = random.Random(seed)
    return [rng.random() < 0.5 for _ in range(count)]


def sockaddr(relay):
    host, port = relay.address.rsplit(":", 1)
    return host, int(port)


def test_forwards_both_ways(target, client):
    with relay_for(target) as relay:
        client.sendto(b"there", sockaddr(relay))
        datagram, upstream = target.recvfrom(100)
        assert datagram == b"there" and upstream != client.getsockname()
        target.sendto(b"back", upstream)
        assert client.recvfrom(100) == (b"back", sockaddr(relay))


def test_upstream_sockets_bind_where_the_relay_was_told(target, client):
    """They used to bind 0.0.0.0, opening ports on every interface of a relay told loopback."""
    with relay_for(target) as relay:
        client.sendto(b"x", sockaddr(relay))
        target.recvfrom(100)
        assert relay.source == "127.0.0.1"
        assert [address.rsplit(":", 1)[0] for address in relay.upstreams()] == ["127.0.0.1"]
    address = format_address(*target.getsockname())
    with pytest.raises(ValueError):
        LossyRelay(address, listen="[::1]:0")  # an IPv6 host cannot reach an IPv4 target


def test_an_upstream_socket_takes_its_clients_port_on_the_source_host(target, client):
    """So an ensemble behind the relay knows the address the manager will see it at before
    it sends, and advertises it (was: a port the kernel picked, learnt only afterwards)."""
    address = format_address(*target.getsockname())
    port = client.getsockname()[1]
    with LossyRelay(address, listen="127.0.0.1:0", source="127.0.0.2") as relay:
        client.sendto(b"x", sockaddr(relay))
        assert target.recvfrom(100) == (b"x", ("127.0.0.2", port))


def test_an_upstream_socket_takes_any_port_when_its_clients_is_taken(target, client):
    address = format_address(*target.getsockname())
    port = client.getsockname()[1]
    squatter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        squatter.bind(("127.0.0.2", port))
        with LossyRelay(address, listen="127.0.0.1:0", source="127.0.0.2") as relay:
            client.sendto(b"x", sockaddr(relay))
            datagram, upstream = target.recvfrom(100)
            assert datagram == b"x" and upstream[0] == "127.0.0.2" and upstream[1] != port
            target.sendto(b"back", upstream)
            assert client.recvfrom(100) == (b"back", sockaddr(relay))
    finally:
        squatter.close()


def test_duplication(target, client):
    with relay_for(target, duplicate=1.0) as relay:
        client.sendto(b"twice", sockaddr(relay))
        assert [target.recvfrom(100)[0] for _ in range(2)] == [b"twice", b"twice"]
        assert relay.counters["duplicated"] == 1


def test_loss_follows_the_seed(target, client):
    survives = [not lost for lost in first_draws(seed=1, count=20)]
    last = max(i for i, kept in enumerate(survives) if kept)  # wait for it, not for a timeout
    with relay_for(target, loss=0.5, seed=1) as relay:
        for i in range(last + 1):
            client.sendto(b"%d" % i, sockaddr(relay))
        expected = [b"%d" % i for i in range(last + 1) if survives[i]]
        assert [target.recvfrom(100)[0] for _ in expected] == expected
        assert relay.counters["lost"] == last + 1 - len(expected) > 0


def test_reordering_lets_a_later_datagram_overtake(target, client):
    # The seed whose first draw reorders and whose second does not.
    seed = next(s for s in range(100) if first_draws(s) == [True, False])
    with relay_for(target, reorder=0.5, reorder_delay=50_000, seed=seed) as relay:
        client.sendto(b"first", sockaddr(relay))
        client.sendto(b"second", sockaddr(relay))
        assert [target.recvfrom(100)[0] for _ in range(2)] == [b"second", b"first"]
        assert relay.counters["reordered"] == 1


def test_impairments_are_validated():
    for bad in ({"loss": 1.5}, {"latency": -1}, {"jitter": 0.5}, {"corrupt": True}):
        with pytest.raises(ValueError):
            Impairment(**bad)


def test_command_line(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0 and "--loss" in capsys.readouterr().out
    assert main(["--target", "nowhere", "--listen", "127.0.0.1:0"]) == 2

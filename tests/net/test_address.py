"""Addresses are checked where they are read: a port out of range, junk after the colon, a host
that is not there is a BadAddress (one line), never a wrapped port or a resolver's traceback."""
from __future__ import annotations

import socket

import pytest

from appliance.net.address import BadAddress, canonical_address, parse_address, resolve_address


@pytest.mark.parametrize("text", [
    "127.0.0.1:70000", "[::1]:70000", "127.0.0.1:65536", "127.0.0.1:" + "9" * 5000,
    "127.0.0.1:²", "127.0.0.1:٣", "127.0.0.1:+80", "127.0.0.1: 80", "127.0.0.1:80 ", "127.0.0.1:0x50",
    ":8225", "[]:8225", "127.0.0.1:", "[fe80::1%]:8225", "1.2.3.4%eth0:1",
])
def test_malformed_addresses_are_refused_by_both_parsers(text):
    for parse in (parse_address, resolve_address):
        with pytest.raises(BadAddress) as caught:
            parse(text)
        assert "\n" not in str(caught.value) and len(str(caught.value)) < 200


def test_a_port_above_65535_does_not_wrap_to_a_16_bit_one():
    # The C library's getaddrinfo takes "70000" and gives 4464.
    with pytest.raises(BadAddress, match="port in 0-65535, got '127.0.0.1:70000'"):
        resolve_address("127.0.0.1:70000")


def test_ports_from_0_to_65535_are_taken_leading_zeros_and_all():
    assert parse_address("127.0.0.1:0") == ("127.0.0.1", 0)
    assert parse_address("[::1]:65535") == ("::1", 65535)
    assert canonical_address("127.0.0.1:008225") == "127.0.0.1:8225"


def test_an_empty_host_is_named_as_such():
    with pytest.raises(BadAddress, match="no host"):
        resolve_address(":8225")


@pytest.mark.parametrize("name", ["a" * 64 + ".example", "foo..example", " 127.0.0.1", "host\x00name", "ho st",
                                  "é" * 300])
def test_a_name_the_resolver_would_raise_on_is_refused_before_it_is_asked(monkeypatch, name):
    def resolver(*args, **kwargs):
        raise AssertionError("asked the resolver about %r" % (args,))

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    with pytest.raises(BadAddress, match="host must be an IP address or a host name"):
        resolve_address("%s:8225" % name)


def test_a_name_that_does_not_resolve_is_one_line(monkeypatch):
    def resolver(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    with pytest.raises(BadAddress, match=r"^cannot resolve 'nowhere\.invalid:8225': Name or service not known$"):
        resolve_address("nowhere.invalid:8225")


def test_a_name_with_both_families_resolves_to_the_preferred_one(monkeypatch):
    both = [(socket.AF_INET6, socket.SOCK_DGRAM, 17, "", ("::1", 8225, 0, 0)),
            (socket.AF_INET, socket.SOCK_DGRAM, 17, "", ("127.0.0.1", 8225))]
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: both)
    assert resolve_address("dual.example:8225") == "[::1]:8225"
    assert resolve_address("dual.example:8225", socket.AF_INET) == "127.0.0.1:8225"
    assert resolve_address("dual.example:8225", socket.AF_INET6) == "[::1]:8225"


def test_a_name_is_resolved_with_its_port_checked_first(monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: pytest.fail("resolved"))
    with pytest.raises(BadAddress, match="port in 0-65535"):
        resolve_address("localhost:70000")


def test_a_bracketed_name_is_not_a_name():
    with pytest.raises(BadAddress, match="literal IP address"):
        resolve_address("[localhost]:8225")


def test_a_scope_must_name_an_interface_of_this_host():
    loopback = socket.if_indextoname(1)
    assert resolve_address("[fe80::1%%%s]:8225" % loopback) == "[fe80::1%%%s]:8225" % loopback
    with pytest.raises(BadAddress, match="no network interface 'no-such-if0'"):
        resolve_address("[fe80::1%no-such-if0]:8225")
    with pytest.raises(BadAddress, match="no network interface '99999'"):
        resolve_address("[fe80::1%99999]:8225")


def test_a_huge_address_is_still_a_short_line():
    with pytest.raises(BadAddress) as caught:
        parse_address("x" * 1_000_000)
    assert len(str(caught.value)) < 200

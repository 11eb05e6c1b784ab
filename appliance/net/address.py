"""Peer addresses as strings: ``1.2.3.4:8225`` and ``[::1]:8225``.

The endpoint keys peers by these strings, so the socket shell must produce
exactly one spelling per address: IPv6 compressed, IPv4-mapped IPv6
addresses (what a dual-stack socket reports for IPv4 peers) as plain IPv4.
Only literal IP addresses are accepted; host names are resolved once, at
configuration time, with ``resolve_address``, never on the datagram path.
"""
from __future__ import annotations

import ipaddress
import socket
from typing import Tuple

_MAPPED_PREFIX = "::ffff:"


class BadAddress(ValueError):
    """Not a ``host:port`` string with a literal IP host."""


def parse_address(text: str) -> Tuple[str, int]:
    """``(host, port)`` of ``'1.2.3.4:8225'`` or ``'[::1]:8225'``, host in canonical form."""
    if not isinstance(text, str):
        raise BadAddress("address must be a string like 1.2.3.4:8225, got %r" % (text,))
    if text.startswith("["):
        host, separator, port = text[1:].partition("]:")
    else:
        host, separator, port = text.rpartition(":")
        if ":" in host:
            raise BadAddress("IPv6 address needs brackets: [%s]:%s, got %r" % (host, port, text))
    if not separator or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise BadAddress("address must be host:port with a port in 0-65535, got %r" % (text,))
    return _canonical_host(host, text), int(port)


def format_address(host: str, port: int) -> str:
    """The canonical string for a socket address (as recvfrom/getsockname give it)."""
    if host.startswith(_MAPPED_PREFIX) and "." in host:
        host = host[len(_MAPPED_PREFIX) :]
    return "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)


def canonical_address(text: str) -> str:
    """One spelling per address, so a configured peer matches what recvfrom reports."""
    return format_address(*parse_address(text))


def is_ipv6(host: str) -> bool:
    return ":" in host


def resolve_address(text: str) -> str:
    """Like ``canonical_address`` but also accepts a host name (resolved now, blocking)."""
    try:
        return canonical_address(text)
    except BadAddress:
        pass
    host, separator, port = text.rpartition(":")
    if not separator or not port.isdigit():
        raise BadAddress("address must be host:port, got %r" % (text,))
    try:
        infos = socket.getaddrinfo(host.strip("[]"), int(port), type=socket.SOCK_DGRAM)
    except socket.gaierror as error:
        raise BadAddress("cannot resolve %r: %s" % (text, error)) from None
    return format_address(infos[0][4][0], infos[0][4][1])


def _canonical_host(host: str, text: str) -> str:
    bare, percent, scope = host.partition("%")
    try:
        ip = ipaddress.ip_address(bare)
    except ValueError:
        raise BadAddress("host must be a literal IP address, got %r" % (text,)) from None
    mapped = getattr(ip, "ipv4_mapped", None)
    canonical = str(mapped if mapped is not None else ip)
    if percent and ":" not in canonical:
        raise BadAddress("only IPv6 addresses have a scope, got %r" % (text,))
    return canonical + percent + scope

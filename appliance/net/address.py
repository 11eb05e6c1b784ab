"""Peer addresses as strings: ``1.2.3.4:8225`` and ``[::1]:8225``.

The endpoint keys peers by these strings, so the socket shell must produce
exactly one spelling per address: IPv6 compressed, IPv4-mapped IPv6
addresses (what a dual-stack socket reports for IPv4 peers) as plain IPv4.
Only literal IP addresses are accepted; host names are resolved once, at
configuration time, with ``resolve_address``, never on the datagram path.

A port is ASCII digits, 0 to 65535, checked here: the C library truncates a
larger one to 16 bits without a word (``:70000`` would bind 4464).
"""
from __future__ import annotations

import ipaddress
import re
import socket
from typing import Tuple

_MAPPED_PREFIX = "::ffff:"
#: ASCII digits only (``str.isdigit`` takes ``'²'`` and ``'٣'``), at most five after leading zeros
#: (so ``int`` never meets a number too long for it).
_PORT = re.compile(r"0*[0-9]{1,5}")
#: A DNS name: dot-separated labels of at most 63 letters, digits, '-' or '_' (what the resolver
#: takes without raising UnicodeError or ValueError), 253 characters in all, a final dot allowed.
_HOST_NAME = re.compile(r"(?=.{1,254}$)(?:[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.)*"
                        r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.?")


class BadAddress(ValueError):
    """Not a ``host:port`` string with a literal IP host (or, to ``resolve_address``, a host name)."""


def parse_address(text: str) -> Tuple[str, int]:
    """``(host, port)`` of ``'1.2.3.4:8225'`` or ``'[::1]:8225'``, host in canonical form."""
    host, port, _ = _split(text)
    return _canonical_host(host, text), port


def format_address(host: str, port: int) -> str:
    """The canonical string for a socket address (as recvfrom/getsockname give it)."""
    if host.startswith(_MAPPED_PREFIX) and "." in host:
        host = host[len(_MAPPED_PREFIX) :]
    return "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)


def canonical_address(text: str) -> str:
    """One spelling per address, so a configured peer matches what recvfrom reports."""
    return format_address(*parse_address(text))


def is_ipv6(host: str) -> bool:
    """Whether ``host`` (canonical, as ``parse_address`` gives it) is an IPv6 address."""
    return ":" in host


def resolve_address(text: str, prefer: int = socket.AF_UNSPEC) -> str:
    """Like ``canonical_address`` but also accepts a host name (resolved now, blocking).

    A name with addresses of both families resolves to one of family ``prefer``
    when it has one (``localhost`` is 127.0.0.1 to an IPv4 socket, whatever the
    resolver lists first). A literal's interface scope must name an interface
    of this host: a datagram to a scope that does not exist cannot be sent.
    """
    host, port, bracketed = _split(text)
    if bracketed or _is_literal(host):
        canonical = _canonical_host(host, text)
        _check_scope(canonical.partition("%")[2], text)
        return format_address(canonical, port)
    if not _HOST_NAME.fullmatch(host):
        raise BadAddress("host must be an IP address or a host name, got %s" % (_shown(text),))
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except OSError as error:  # gaierror, and whatever else the resolver says
        raise BadAddress("cannot resolve %s: %s" % (_shown(text), error.strerror or error)) from None
    if not infos:
        raise BadAddress("cannot resolve %s: no address" % (_shown(text),))
    chosen = next((info for info in infos if info[0] == prefer), infos[0])
    return format_address(chosen[4][0], chosen[4][1])


def _split(text: str) -> Tuple[str, int, bool]:
    """``(host, port, bracketed)``, the port checked, the host only for being there."""
    if not isinstance(text, str):
        raise BadAddress("address must be a string like 1.2.3.4:8225, got %s" % (_shown(text),))
    bracketed = text.startswith("[")
    if bracketed:
        host, separator, port = text[1:].partition("]:")
    else:
        host, separator, port = text.rpartition(":")
        if ":" in host:
            raise BadAddress("IPv6 address needs brackets: [%s]:%s, got %s" % (host, port, _shown(text)))
    if not separator:
        raise BadAddress("address must be host:port, got %s" % (_shown(text),))
    if not host:
        raise BadAddress("address has no host (0.0.0.0 or [::] is every interface), got %s" % (_shown(text),))
    if not _PORT.fullmatch(port) or not 0 <= int(port) <= 65535:
        raise BadAddress("address must be host:port with a port in 0-65535, got %s" % (_shown(text),))
    return host, int(port), bracketed


def _shown(text: object) -> str:
    """``repr(text)``, cut short: a pasted megabyte is still one line of error."""
    shown = repr(text)
    return shown if len(shown) <= 80 else shown[:70] + "...(%d characters)" % len(str(text))


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _canonical_host(host: str, text: str) -> str:
    bare, percent, scope = host.partition("%")
    try:
        ip = ipaddress.ip_address(bare)
    except ValueError:
        raise BadAddress("host must be a literal IP address, got %s" % (_shown(text),)) from None
    mapped = getattr(ip, "ipv4_mapped", None)
    canonical = str(mapped if mapped is not None else ip)
    if percent and ":" not in canonical:
        raise BadAddress("only IPv6 addresses have a scope, got %s" % (_shown(text),))
    if percent and not scope:
        raise BadAddress("an empty scope after '%%' names no interface, got %s" % (_shown(text),))
    return canonical + percent + scope


def _check_scope(scope: str, text: str) -> None:
    if not scope:
        return
    try:
        if scope.isascii() and scope.isdigit():
            socket.if_indextoname(int(scope))
        else:
            socket.if_nametoindex(scope)
    except (OSError, ValueError, OverflowError):
        raise BadAddress("no network interface %r on this host, in %s" % (scope, _shown(text))) from None


def is_loopback(address: str) -> bool:
    """Whether a transport address is on this host's loopback (unforgeable from outside it)."""
    try:
        host, _ = parse_address(address)
        return ipaddress.ip_address(host.partition("%")[0]).is_loopback
    except (BadAddress, ValueError):
        return False

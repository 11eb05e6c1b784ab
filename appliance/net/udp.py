"""The socket shell: one non-blocking UDP socket per ensemble driving an Endpoint.

It does only I/O: reads datagrams into the endpoint, writes what the
endpoint wants sent, fires its timer, hands events on. The network-manager
process owns the loop and the ``selectors`` selector (shared with its
queue doorbells): it registers the shell, and whenever the selector returns
or times out it calls ``service``. There are no threads; time is
``time.monotonic_ns() // 1000``.
"""
from __future__ import annotations

import errno
import logging
import selectors
import socket
import time
from collections import deque
from typing import Callable, Deque, Dict, List, Optional, Sequence, Tuple

from appliance.net.address import BadAddress, format_address, is_ipv6, is_loopback, parse_address
from appliance.net.endpoint import ENDPOINT, Endpoint
from appliance.net.events import Event

__all__ = ["UdpShell", "bound_socket", "format_address", "now_us", "parse_address", "run_until"]

log = logging.getLogger(__name__)

#: Datagrams read per ``service`` call before timers and writes get a turn.
#: One ACK answers a whole batch: larger batches save ACKs, smaller ones
#: return feedback sooner; 64 measured best for bulk transfer (a sender with
#: a 128-fragment window then hears back twice per window).
READ_BATCH = 64
#: Datagrams kept while the socket refuses writes; beyond, they are dropped
#: (reliable ones come back as retransmissions).
BACKLOG_LIMIT = 4096
#: Address translations cached in each direction before the cache restarts.
_CACHE_LIMIT = 4096


def now_us() -> int:
    """The shell's clock: monotonic microseconds."""
    return time.monotonic_ns() // 1000


class UdpShell:
    """Runs ``endpoint`` on a UDP socket bound to ``bind`` (``host:port``).

    Binding ``[::]:port`` serves IPv4 and IPv6 peers on one socket. Events go
    to ``on_event`` if given, otherwise they collect until ``events()``. With
    ``sock`` (from ``bound_socket``; a device's supervisor binds it before its
    network process starts) that socket is used and ``bind`` is ignored.
    """

    def __init__(self, endpoint: Endpoint, bind: str = "0.0.0.0:8225",
                 on_event: Optional[Callable[[Event], None]] = None,
                 receive_buffer: int = 4 << 20, send_buffer: int = 1 << 20,
                 sock: Optional[socket.socket] = None) -> None:
        self.endpoint = endpoint
        self._on_event = on_event
        self._events: List[Event] = []
        if sock is None:
            sock = bound_socket(bind, receive_buffer, send_buffer)
        self._ipv6 = sock.family == socket.AF_INET6
        self._sock = sock
        self.address = format_address(*sock.getsockname()[:2])
        #: What the kernel granted (Linux doubles the request, capped by rmem_max).
        self.receive_buffer = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        self._backlog: Deque[Tuple[bytes, str]] = deque()
        self._selector: Optional[selectors.BaseSelector] = None
        self._selector_data: object = None
        self._writing = False
        self._names: Dict[tuple, str] = {}
        self._sockaddrs: Dict[str, tuple] = {}
        self.socket_counters = {"receive_errors": 0, "send_errors": 0, "backlog_dropped": 0}
        if not endpoint.authenticated and not is_loopback(self.address):  # loopback: nobody else can forge it
            log.warning("transport on %s is unauthenticated: no cluster key configured", self.address)

    # -- the loop's side -----------------------------------------------

    def fileno(self) -> int:
        return self._sock.fileno()

    def register(self, selector: selectors.BaseSelector, data: object = None) -> None:
        """Watch the socket in ``selector``; ``data`` (default: this shell) tags its key."""
        if self._selector is not None:
            raise ValueError("%s is already registered with a selector" % self.address)
        self._selector = selector
        self._selector_data = self if data is None else data
        selector.register(self._sock, self._interest(), self._selector_data)

    def unregister(self) -> None:
        if self._selector is not None:
            self._selector.unregister(self._sock)
            self._selector = None

    def service(self, readable: bool = False) -> None:
        """One turn: read if the selector said so, fire a due timer, write, hand on events.

        Call it whenever the selector reports the shell's key (readable or
        writable) and whenever ``timeout()`` elapses.
        """
        if readable:
            self.receive()
        now = now_us()
        deadline = self.endpoint.get_timer()
        if deadline is not None and deadline <= now:
            self.endpoint.handle_timer(now)
        self.flush()
        self._dispatch()

    def timeout(self) -> Optional[float]:
        """Seconds until the endpoint's next deadline, for ``selector.select``; None if idle."""
        deadline = self.endpoint.get_timer()
        if deadline is None:
            return None
        return max(0.0, (deadline - now_us()) / 1e6)

    def next_deadline(self) -> Optional[int]:
        """The endpoint's next deadline in shell ticks (µs), None if idle."""
        return self.endpoint.get_timer()

    # -- I/O -------------------------------------------------------------

    def send(self, peer: str, payload: bytes, reliable: bool) -> int:
        """``Endpoint.send`` now; the datagrams leave at the next ``flush`` or ``service``,
        so call one of them before blocking in the selector again."""
        self._sockaddr(peer)  # refuse an unreachable address before it becomes state
        return self.endpoint.send(peer, payload, reliable, now_us())

    def receive(self) -> int:
        """Feed up to READ_BATCH waiting datagrams to the endpoint; returns how many."""
        receive = self._sock.recvfrom
        endpoint = self.endpoint
        names = self._names
        count = 0
        for _ in range(READ_BATCH):
            try:
                datagram, source = receive(65536)
            except BlockingIOError:
                break
            except OSError as error:  # e.g. an ICMP error queued on the socket
                self.socket_counters["receive_errors"] += 1
                log.debug("recvfrom on %s failed: %s", self.address, error)
                continue
            name = names.get(source)
            if name is None:
                if len(names) >= _CACHE_LIMIT:
                    names.clear()
                name = names[source] = format_address(source[0], source[1])
            endpoint.receive_datagram(datagram, name, now_us())
            count += 1
        return count

    def flush(self) -> int:
        """Write everything the endpoint wants sent; returns datagrams written."""
        backlog = self._backlog
        backlog.extend(self.endpoint.datagrams_to_send())
        sendto = self._sock.sendto
        written = 0
        last_peer, sockaddr = None, None
        while backlog:
            datagram, peer = backlog[0]
            try:
                if peer != last_peer:  # bulk transfers send runs to one peer: look it up once
                    sockaddr = self._sockaddr(peer)
                    last_peer = peer
                sendto(datagram, sockaddr)
                written += 1
            except BlockingIOError:
                break
            except (OSError, BadAddress) as error:
                self.socket_counters["send_errors"] += 1
                log.debug("sendto %s from %s failed: %s", peer, self.address, error)
            backlog.popleft()
        excess = len(backlog) - BACKLOG_LIMIT
        if excess > 0:
            for _ in range(excess):
                backlog.pop()
            self.socket_counters["backlog_dropped"] += excess
        self._want_write(bool(backlog))
        return written

    def events(self) -> List[Event]:
        """Events collected since the last call (only without ``on_event``)."""
        self._dispatch()
        events = self._events
        self._events = []
        return events

    def stats(self) -> Dict[str, Dict[str, int]]:
        """The endpoint's counters, with the socket's in the endpoint-wide section."""
        stats = self.endpoint.stats()
        stats[ENDPOINT].update(("socket_" + k, v) for k, v in self.socket_counters.items())
        stats[ENDPOINT]["socket_backlog"] = len(self._backlog)
        return stats

    def close(self) -> None:
        self.unregister()
        self._sock.close()

    def __enter__(self) -> UdpShell:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- internals -------------------------------------------------------

    def _dispatch(self) -> None:
        events = self.endpoint.events()
        if self._on_event is None:
            self._events.extend(events)
        else:
            for event in events:
                self._on_event(event)

    def _sockaddr(self, peer: str) -> tuple:
        sockaddr = self._sockaddrs.get(peer)
        if sockaddr is None:
            host, port = parse_address(peer)
            if self._ipv6 and not is_ipv6(host):
                host = "::ffff:" + host
            elif not self._ipv6 and is_ipv6(host):
                raise BadAddress("%s is IPv6 but %s is an IPv4 socket" % (peer, self.address))
            if len(self._sockaddrs) >= _CACHE_LIMIT:
                self._sockaddrs.clear()
            sockaddr = self._sockaddrs[peer] = (host, port)
        return sockaddr

    def _interest(self) -> int:
        return selectors.EVENT_READ | (selectors.EVENT_WRITE if self._writing else 0)

    def _want_write(self, writing: bool) -> None:
        if writing != self._writing:
            self._writing = writing
            if self._selector is not None:
                self._selector.modify(self._sock, self._interest(), self._selector_data)


def bound_socket(bind: str, receive_buffer: int = 4 << 20, send_buffer: int = 1 << 20) -> socket.socket:
    """A non-blocking UDP socket bound to ``bind`` (``[::]:port`` serves IPv4 and IPv6)."""
    host, port = parse_address(bind)
    ipv6 = is_ipv6(host)
    sock = socket.socket(socket.AF_INET6 if ipv6 else socket.AF_INET, socket.SOCK_DGRAM)
    try:
        if ipv6 and host == "::":
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        _set_buffer(sock, socket.SO_RCVBUF, receive_buffer)
        _set_buffer(sock, socket.SO_SNDBUF, send_buffer)
        sock.setblocking(False)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _set_buffer(sock: socket.socket, option: int, size: int) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, option, size)
    except OSError as error:  # the kernel caps rather than fails; this is belt and braces
        if error.errno != errno.EINVAL:
            raise


def run_until(shells: Sequence[UdpShell], done: Callable[[], bool], deadline: int) -> bool:
    """Drive ``shells`` until ``done()`` or the tick ``deadline``; True if done.

    A small loop with its own selector, for tests, benchmarks and tools;
    a process that also waits on other file descriptors runs its own loop
    with ``register`` and ``service``.
    """
    selector = selectors.DefaultSelector()
    try:
        for shell in shells:
            shell.register(selector)
        while True:
            for shell in shells:
                shell.service()
            if done():
                return True
            for shell in shells:
                shell.flush()  # done() may have sent
            now = now_us()
            if now >= deadline:
                return False
            wake = deadline
            for shell in shells:
                candidate = shell.next_deadline()
                if candidate is not None and candidate < wake:
                    wake = candidate
            for key, mask in selector.select(max(0, wake - now) / 1e6):
                key.data.service(readable=bool(mask & selectors.EVENT_READ))
    finally:
        for shell in shells:
            shell.unregister()
        selector.close()

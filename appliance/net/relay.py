"""A lossy UDP relay: a small proxy that drops, duplicates, reorders, corrupts and delays.

Clients send to the relay's address instead of the target's, and the relay
forwards both directions with seeded impairments. Tests and the benchmark use
it on loopback (the kernel here has no netem); a field engineer uses it to try
a deployment under loss (the recipe is in ``--help`` and docs/devices.md).

Each client address gets its own upstream socket, so the target sees one
distinct address per client and its replies find their way back. Upstream
sockets bind to the host the relay listens on (``--source`` says otherwise),
so a relay told to listen on loopback never opens a port anywhere else, and
on the client's own port when that is free there: a client knows beforehand
the address the target will see, which an ensemble has to advertise.
"""
from __future__ import annotations

import argparse
import heapq
import json
import random
import selectors
import signal
import socket
import sys
import threading
from typing import Dict, List, Optional, Sequence, Tuple

from appliance.net.address import format_address, is_ipv6, parse_address
from appliance.net.impairment import IMPAIRMENT_COUNTERS, Impairment, fates
from appliance.net.udp import now_us

_READ_BATCH = 256

EXAMPLES = """examples:
  (a deployment under 10 % loss on one machine, each line in a terminal of its own)
  python -m appliance.net.relay --listen 127.0.0.1:9225 --target 127.0.0.1:8225 --source 127.0.0.2 --loss 0.1
  appliance ensemble --name e1 --rtm 127.0.0.1:9225 --listen 127.0.0.1:8226 --advertise 127.0.0.2:8226
  appliance rtm --graph examples/diamond.py --listen 127.0.0.1:8225 --advertise 127.0.0.1:9225 --expect 1 \\
      --duration 2

The manager advertises the relay's address, so what it sends goes through the
relay too; the ensemble advertises its port on the --source host, the address
the manager sees it at (joins are checked against the source address).
"""


class LossyRelay:
    """Forwards between clients of ``listen`` and ``target``, impaired, on one thread."""

    def __init__(self, target: str, listen: str = "127.0.0.1:0",
                 impairment: Impairment = Impairment(), seed: int = 0,
                 max_clients: int = 64, source: Optional[str] = None) -> None:
        self.impairment = impairment
        self.counters = dict.fromkeys(("forwarded", "clients_full", "send_errors") + IMPAIRMENT_COUNTERS, 0)
        self._target = parse_address(target)
        listen_address = parse_address(listen)
        #: The host upstream sockets bind to: ``source``, else the listen host.
        self.source = _upstream_host(listen_address[0], source, self._target[0])
        self._random = random.Random(seed)
        self._max_clients = max_clients
        self._selector = selectors.DefaultSelector()
        self._listen = self._socket(listen_address)
        self.address = format_address(*self._listen.getsockname()[:2])
        self._upstream: Dict[tuple, socket.socket] = {}
        self._clients: Dict[socket.socket, tuple] = {}
        self._held: List[Tuple[int, int, socket.socket, bytes, tuple]] = []
        self._order = 0
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._wake_reader.setblocking(False)
        self._selector.register(self._wake_reader, selectors.EVENT_READ)
        self._stopping = False
        self._thread: Optional[threading.Thread] = None

    def upstreams(self) -> List[str]:
        """The addresses of the upstream sockets, one per client: what the target sees."""
        return [format_address(*sock.getsockname()[:2]) for sock in self._upstream.values()]

    def serve(self) -> None:
        """Forward until ``stop()``."""
        while not self._stopping:
            timeout = None
            if self._held:
                timeout = max(0, self._held[0][0] - now_us()) / 1e6
            for key, _ in self._selector.select(timeout):
                if key.fileobj is self._wake_reader:
                    self._wake_reader.recv(64)
                else:
                    self._drain(key.fileobj)  # type: ignore[arg-type]
            self._release(now_us())

    def start(self) -> LossyRelay:
        """Serve on a background thread (for tests); ``stop()`` ends it."""
        self._thread = threading.Thread(target=self.serve, name="lossy-relay", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping = True
        self._wake_writer.send(b"x")
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def close(self) -> None:
        if self._listen.fileno() == -1:
            return
        self.stop()
        for sock in [self._listen, *self._clients, self._wake_reader, self._wake_writer]:
            sock.close()
        self._selector.close()

    def __enter__(self) -> LossyRelay:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _socket(self, address: Tuple[str, int]) -> socket.socket:
        family = socket.AF_INET6 if is_ipv6(address[0]) else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.setblocking(False)
        try:
            sock.bind(address)
        except OSError:
            sock.close()
            raise
        self._selector.register(sock, selectors.EVENT_READ)
        return sock

    def _drain(self, sock: socket.socket) -> None:
        for _ in range(_READ_BATCH):
            try:
                datagram, source = sock.recvfrom(65536)
            except BlockingIOError:
                return
            except OSError:
                continue
            if sock is self._listen:
                upstream = self._upstream_for(source)
                if upstream is not None:
                    self._forward(upstream, datagram, self._target)
            else:
                self._forward(self._listen, datagram, self._clients[sock])

    def _upstream_for(self, client: tuple) -> Optional[socket.socket]:
        upstream = self._upstream.get(client)
        if upstream is None:
            if len(self._upstream) >= self._max_clients:
                self.counters["clients_full"] += 1
                return None
            upstream = self._upstream_socket(client[1])
            self._upstream[client] = upstream
            self._clients[upstream] = client
        return upstream

    def _upstream_socket(self, client_port: int) -> socket.socket:
        """On the client's own port when that is free on the source host, so a client
        knows beforehand the address the target will see (an ensemble advertises it:
        joins are checked against the source address); else on any free port."""
        try:
            return self._socket((self.source, client_port))
        except OSError:
            return self._socket((self.source, 0))

    def _forward(self, sock: socket.socket, datagram: bytes, destination: tuple) -> None:
        for delay, data in fates(self.impairment, self._random, datagram, self.counters):
            if delay:
                self._order += 1
                heapq.heappush(self._held, (now_us() + delay, self._order, sock, data, destination))
            else:
                self._send(sock, data, destination)

    def _release(self, now: int) -> None:
        held = self._held
        while held and held[0][0] <= now:
            _, _, sock, datagram, destination = heapq.heappop(held)
            self._send(sock, datagram, destination)

    def _send(self, sock: socket.socket, datagram: bytes, destination: tuple) -> None:
        try:
            sock.sendto(datagram, destination)
            self.counters["forwarded"] += 1
        except OSError:
            self.counters["send_errors"] += 1


def _upstream_host(listen_host: str, source: Optional[str], target_host: str) -> str:
    """Where upstream sockets bind: ``source`` if given, else the listen host; a wildcard
    listen host of the other family than the target's becomes the target family's wildcard."""
    host = source if source is not None else listen_host
    if is_ipv6(host) == is_ipv6(target_host):
        return host
    if source is None and host in ("0.0.0.0", "::"):
        return "::" if is_ipv6(target_host) else "0.0.0.0"
    raise ValueError("upstream sockets would bind to %s, which cannot reach %s; give a source host "
                     "of the target's family" % (host, target_host))


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m appliance.net.relay",
        description="Forward UDP between clients and a target with seeded loss, duplication, "
                    "reordering and delay. Prints its counters as JSON when stopped.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listen", default="0.0.0.0:9225", help="host:port clients send to")
    parser.add_argument("--target", required=True, help="host:port datagrams are forwarded to")
    parser.add_argument("--source", help="host the upstream sockets bind to (default: the --listen host)")
    parser.add_argument("--loss", type=float, default=0.0, help="drop probability")
    parser.add_argument("--duplicate", type=float, default=0.0, help="duplication probability")
    parser.add_argument("--reorder", type=float, default=0.0, help="reordering probability")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added one-way delay")
    parser.add_argument("--jitter-ms", type=float, default=0.0, help="random extra delay, up to")
    parser.add_argument("--corrupt", type=float, default=0.0, help="probability a bit is flipped")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same fate)")
    args = parser.parse_args(argv)
    try:
        impairment = Impairment(latency=int(round(args.latency_ms * 1000)), jitter=int(round(args.jitter_ms * 1000)),
                                loss=args.loss, duplicate=args.duplicate, reorder=args.reorder, corrupt=args.corrupt)
        relay = LossyRelay(args.target, args.listen, impairment, args.seed, source=args.source)
    except (ValueError, OSError) as error:
        print("relay: %s" % error, file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: relay.stop())
    print("relay %s -> %s %s" % (relay.address, args.target, impairment), file=sys.stderr)
    try:
        relay.serve()
    except KeyboardInterrupt:
        pass
    finally:
        print(json.dumps(relay.counters))
        relay.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

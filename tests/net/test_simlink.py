"""Across 1000 seeds of a bad simulated link, every reliable message arrives exactly once.

The link (appliance.sim.link) loses 30 % of datagrams in each direction,
duplicates, reorders, jitters and corrupts them; the endpoints are the
production code, their timers driven by simpy. Half the seeds run with a
cluster key. Best-effort messages ride along: at most once, never damaged.
"""
from __future__ import annotations

import random
from collections import Counter
from typing import Dict, List

import simpy

from appliance.net import ENDPOINT, Endpoint, TransportConfig
from appliance.net.impairment import Impairment
from appliance.sim.link import SimNetwork, derived_rng

from .simhost import SimHost

SEEDS = 1000
PROFILE = Impairment(latency=1000, jitter=500, loss=0.3, duplicate=0.1, reorder=0.1,
                      corrupt=0.01)
#: Small datagrams, so messages of a few kilobytes have dozens of fragments.
CONFIG = TransportConfig(mtu=200, max_message_size=65536)
SIZES = (0, 1, 100, 150, 151, 400, 1000, 3000, 9000)
MESSAGES = 12
KEY = b"simulated cluster key, 32 bytes."


def random_bytes(rng: random.Random, size: int) -> bytes:
    return rng.getrandbits(8 * size).to_bytes(size, "little") if size else b""


def run_seed(seed: int, totals: Counter) -> List[str]:
    env = simpy.Environment()
    network = SimNetwork(env, seed=seed, impairment=PROFILE)
    rng = derived_rng(seed, "workload")
    key = KEY if seed % 2 else None
    hosts = {
        name: SimHost(env, network, name,
                      Endpoint(CONFIG, session=rng.getrandbits(64) | 1, key=key))
        for name in ("sim:a", "sim:b")
    }
    reliable: Dict[str, Dict[int, bytes]] = {name: {} for name in hosts}
    best_effort: Dict[str, Dict[int, bytes]] = {name: {} for name in hosts}
    for _ in range(MESSAGES):
        source = rng.choice(sorted(hosts))
        destination = "sim:b" if source == "sim:a" else "sim:a"
        is_reliable = rng.random() < 0.75
        # The classes are numbered independently: the first byte tells them apart here.
        size = rng.choice(SIZES)
        payload = bytes([is_reliable]) + random_bytes(rng, size)
        message_id = hosts[source].send(destination, payload, is_reliable)
        (reliable if is_reliable else best_effort)[destination][message_id] = payload
    env.run(until=10 * 60 * 1_000_000)

    problems = []
    for name, host in hosts.items():
        if host.failed:
            problems.append("seed %d: %s gave up %s" % (seed, name, host.failed))
        seen = Counter()
        for event in host.delivered:
            kind, sent = ("reliable", reliable) if event.payload[:1] == b"\x01" else (
                "best_effort", best_effort)
            if sent[name].get(event.message_id) == event.payload:
                seen[kind, event.message_id] += 1
            else:
                problems.append("seed %d: %s got a damaged or unknown message" % (seed, name))
        for message_id in reliable[name]:
            if seen["reliable", message_id] != 1:
                problems.append("seed %d: %s got reliable message %d %d times"
                                % (seed, name, message_id, seen["reliable", message_id]))
        problems.extend("seed %d: %s got best-effort message %d twice" % (seed, name, key_[1])
                        for key_, times in seen.items() if times > 1)
        stats = host.endpoint.stats()
        if stats[ENDPOINT]["reassemblies"] or host.endpoint.get_timer() is not None:
            problems.append("seed %d: %s kept state after the run" % (seed, name))
        for peer_stats in stats.values():
            totals.update({k: v for k, v in peer_stats.items() if k in (
                "retransmitted", "duplicates", "bad_crc", "delivered")})
            totals["refused as damaged or forged, keyed" if key else "bad_auth, keyless"] += (
                peer_stats["bad_auth"] + (peer_stats["bad_crc"] if key else 0))
    totals.update(network.counters)
    return problems


def test_every_reliable_message_arrives_exactly_once_across_1000_seeds():
    totals: Counter = Counter()
    problems = []
    for seed in range(SEEDS):
        problems.extend(run_seed(seed, totals))
    assert problems == []
    # The link really was that bad, and the endpoints really had to work for it.
    assert totals["lost"] > 0.25 * totals["sent"]
    for name in ("duplicated", "reordered", "corrupted", "retransmitted", "duplicates", "bad_crc",
                 "refused as damaged or forged, keyed"):
        assert totals[name] > 100, name
    # Without a key a flipped bit is caught by the CRC, never taken for a key mismatch. With
    # one the CRC covers only the header and the tag: a damaged payload fails the tag.
    assert totals["bad_auth, keyless"] == 0

"""The flags that say how a program runs, the same on every command that starts one
(``simulate``, ``rtm``, ``deploy``): where its SQs go and when clocks are too far apart."""
from __future__ import annotations

import argparse
from typing import Optional

from appliance.cli import values
from appliance.mapping import DEFAULT_STRATEGY, STRATEGIES
from appliance.runtime.app import RunOptions


def add_run_flags(p: argparse.ArgumentParser, seed_help: str = "seed of the mapping (default 0)") -> None:
    p.add_argument("--seed", type=int, default=0, metavar="S", help=seed_help)
    p.add_argument("--mapping", choices=tuple(STRATEGIES), default=DEFAULT_STRATEGY,
                   help="how SQs are placed (default %s; pins, queries and latency bounds always hold)"
                   % DEFAULT_STRATEGY)
    p.add_argument("--max-clock-offset-ms", dest="max_clock_offset_ms", type=values.delay_ms, metavar="MS",
                   help="warn at deploy about an ensemble whose clock is further than this from the runtime "
                   "manager's (default: a quarter of the app's smallest stream period)")
    p.add_argument("--sq-time-limit", dest="sq_time_limit", type=values.seconds, default=10.0, metavar="SECONDS",
                   help="stop an SQ firing that runs longer than this, and that SQ with it: its error "
                   "(default 10)")


def run_options(args: argparse.Namespace, duration: Optional[int], request: str = "") -> RunOptions:
    """The app's ``RunOptions`` from the flags of :func:`add_run_flags` (``duration`` in µs)."""
    offset = args.max_clock_offset_ms
    return RunOptions(strategy=args.mapping, seed=args.seed, duration=duration, request=request,
                      max_clock_offset=None if offset is None else int(round(offset * 1000)),
                      sq_time_limit=max(1, int(round(args.sq_time_limit * 1e6))))

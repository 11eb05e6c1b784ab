"""The flags of the commands that talk to the runtime manager on this host
(``deploy``, ``teardown``, ``status``): where it is, and the cluster key."""
from __future__ import annotations

import argparse
from typing import Optional, Tuple

from appliance.cli import values
from appliance.device.config import checked_address, cluster_key_flag


def add_client_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rtm", default="127.0.0.1:8225", metavar="HOST:PORT",
                   help="the runtime manager's address, on this host (default 127.0.0.1:8225)")
    p.add_argument("--cluster-key", dest="cluster_key", metavar="FILE", type=values.file_name,
                   help="the cluster key, if it has one")


def client_settings(args: argparse.Namespace) -> Tuple[str, Optional[bytes]]:
    """The runtime manager's address and the cluster key, checked (ConfigError naming the flag)."""
    return checked_address(args.rtm, "--rtm"), cluster_key_flag(args.cluster_key)

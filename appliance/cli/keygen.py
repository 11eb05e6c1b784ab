"""``appliance keygen``: a new cluster key and runtime-manager key pair."""
from __future__ import annotations

import argparse

from appliance.cli import values
from appliance.keys import generate_keys
from appliance.keys.files import CLUSTER_KEY_FILE, MANAGER_KEY_FILE, MANAGER_PUBLIC_FILE

EXAMPLES = """examples:
  mkdir -p keys && appliance keygen keys
  sudo appliance keygen /etc/appliance

Copy cluster.key and manager.pub to every device; manager.key stays on the
runtime manager's host only. Existing key files are never overwritten.
"""


def add_parser(sub) -> None:
    p = sub.add_parser("keygen", help="write a new cluster key and runtime-manager key pair",
                       description="Write cluster.key (the shared key that authenticates every datagram), "
                       "manager.key and manager.pub (the runtime manager's Ed25519 key pair: it signs what "
                       "changes an ensemble) into DIRECTORY, each with mode 0600.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("directory", metavar="DIRECTORY", type=values.directory_name, help="an existing directory")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    paths = generate_keys(args.directory)
    print("wrote %s (every device), %s (the runtime manager only) and %s (every device), mode 0600"
          % (paths[CLUSTER_KEY_FILE], paths[MANAGER_KEY_FILE], paths[MANAGER_PUBLIC_FILE]))
    return 0

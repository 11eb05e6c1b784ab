"""``appliance ensemble``: run this device as an ensemble until stopped."""
from __future__ import annotations

import argparse
import logging

from appliance.cli import values
from appliance.device.run import Running, settings_from

EXAMPLES = """examples:
  appliance ensemble --name left-pi --rtm 127.0.0.1:8225 --listen 127.0.0.1:0
  appliance ensemble --config /etc/appliance/ensemble.json
  appliance ensemble --name jetson --rtm 10.0.0.1:8225 --listen 0.0.0.0:8225 --advertise 10.0.0.7:8225 \\
      --cluster-key /etc/appliance/cluster.key --manager-public-key /etc/appliance/manager.pub

It joins the runtime manager (asking again, with backoff, while it is not up)
and serves until SIGTERM or Ctrl-C. Exit status 0 when stopped so, 1 when one
of its processes died (named on stderr), 2 for a bad setting.
"""


def add_device_options(p: argparse.ArgumentParser) -> None:
    """The flags every device command shares; each is also a key of the --config file."""
    p.add_argument("--name", help="the ensemble's name (letters, digits, '_', '.', '-')")
    p.add_argument("--listen", metavar="HOST:PORT",
                   help="the UDP address to bind (default 0.0.0.0:8225; port 0: any free port)")
    p.add_argument("--advertise", metavar="HOST:PORT",
                   help="the address the others reach it at (needed with a wildcard --listen)")
    p.add_argument("--config", metavar="FILE", type=values.file_name,
                   help="a JSON file with these settings as keys (flags win)")
    p.add_argument("--cluster-key", dest="cluster_key", metavar="FILE", type=values.file_name,
                   help="the cluster key (appliance keygen): needed off loopback")


def add_parser(sub) -> None:
    p = sub.add_parser("ensemble", help="run this device as an ensemble",
                       description="Join the runtime manager and run the SQs it deploys here, as three OS "
                       "processes (input tokens, execute, network manager) on shared-memory queues.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_device_options(p)
    p.add_argument("--rtm", metavar="HOST:PORT", help="the runtime manager's address")
    p.add_argument("--manager-public-key", dest="manager_public_key", metavar="FILE", type=values.file_name,
                   help="the runtime manager's public key: control it did not sign is refused")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    flags = {key: getattr(args, key) for key in ("name", "listen", "advertise", "cluster_key", "rtm",
                                                  "manager_public_key")}
    settings, sock = settings_from(flags, args.config, hosts_runtime_manager=False,
                                   log_level=logging.DEBUG if args.debug else logging.WARNING)
    running = Running(settings, sock)  # from here SIGTERM and SIGINT stop it in order: before its first line
    print("ensemble %s at %s, joining the runtime manager at %s" % (settings.name, settings.advertise, settings.rtm),
          flush=True)
    with running:
        status = running.serve()
    return running.exit_status(status)

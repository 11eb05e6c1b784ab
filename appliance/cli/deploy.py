"""``appliance deploy``: run a program on a runtime manager that is waiting for one."""
from __future__ import annotations

import argparse
import secrets
import sys

from appliance.cli import values
from appliance.cli.clientflags import add_client_flags, client_settings
from appliance.cli.errors import UsageError
from appliance.cli.runflags import add_run_flags, run_options
from appliance.cli.simulate import load_to_run
from appliance.device.client import ClientError, ControlClient, RequestTooLarge, check_request
from appliance.ipc import ClientMsg, Message, NetMsg, Recipient, RuntimeMsg
from appliance.program import graphfile
from appliance.program.model import Graph
from appliance.runtime.app import RunOptions

EXAMPLES = """examples (from the repository root):
  appliance rtm --wait --listen 127.0.0.1:8225 &
  appliance deploy examples/diamond.py --rtm 127.0.0.1:8225 --duration 5
  appliance deploy examples/diamond.py --rtm 127.0.0.1:8225   # no --duration: until `appliance teardown`

It returns once the app runs (exit 0) or failed to start (exit 2, with the
reason); `appliance status` then shows it.
"""

#: How long the deployment may take before the command gives up waiting (the app goes on).
DEPLOY_SECONDS = 60.0


def add_parser(sub) -> None:
    p = sub.add_parser("deploy", help="run a program on a waiting runtime manager",
                       description="Send PROGRAM to the runtime manager on this host, which maps it onto its "
                       "ensembles, deploys it and starts it.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("program", metavar="PROGRAM", type=values.file_name, help="PROGRAM.py[:graph_name] or GRAPH.json")
    add_client_flags(p)
    p.add_argument("--duration", type=values.seconds, metavar="SECONDS",
                   help="how long the streams sample (default: until torn down)")
    add_run_flags(p)
    p.set_defaults(run=run)


def deployment(graph: Graph, options: RunOptions, program: str) -> Message:
    """The request that deploys ``graph``, checked to fit what the runtime manager takes:
    a larger one would be dropped on its way to the manager unanswered, and the command
    would wait for nothing. UsageError (exit 2) naming ``program`` and the limit."""
    message = Message(RuntimeMsg.INSTANTIATE_AND_MAP, (graphfile.to_document(graph), options.to_wire()),
                      Recipient.RUNTIME_MANAGER)
    try:
        check_request(message)
    except RequestTooLarge as exc:
        raise UsageError("%s is too large to deploy: its deployment is %d bytes and the runtime manager takes "
                         "%d at most" % (program, exc.size, exc.limit)) from None
    return message


def run(args: argparse.Namespace) -> int:
    graph = load_to_run(args.program, "deploy")
    address, key = client_settings(args)
    duration = int(round(args.duration * 1e6)) if args.duration is not None else None
    token = secrets.token_hex(8)  # the reports about this request carry it; others are other apps' news
    options = run_options(args, duration, request=token)
    request = deployment(graph, options, args.program)
    reports = []
    with ControlClient(address, key, peer="runtime manager") as client:
        client.send(Message(NetMsg.SUBSCRIBE, None, Recipient.NETWORK), request)

        def started() -> bool:
            for message in client.take(ClientMsg.APP):
                report = message.payload
                if report.get("request") != token:
                    continue
                if "refused" in report or report["phase"] != "deploying" or report["summary"] is not None:
                    reports.append(report)
            return bool(reports)

        try:
            if not client.wait(started, DEPLOY_SECONDS):
                raise UsageError("the runtime manager at %s did not start the app within %g s"
                                 % (address, DEPLOY_SECONDS))
        except ClientError as exc:
            raise UsageError(str(exc)) from None
    app = reports[0]
    if "refused" in app:
        print("appliance deploy: error: refused: %s" % app["refused"], file=sys.stderr)
        return 2
    for warning in app["warnings"]:
        print("appliance deploy: warning: %s" % warning, file=sys.stderr)
    if app["phase"] == "running":
        placed = ", ".join("%s on %s" % item for item in sorted(app["mapping"].items()))
        print("app %s running (%s)" % (app["app"], placed))
        return 0
    print("appliance deploy: error: app %s %s: %s" % (app["app"], app["phase"], app["error"]), file=sys.stderr)
    return 2

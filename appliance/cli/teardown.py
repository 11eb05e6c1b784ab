"""``appliance teardown``: stop the app a runtime manager on this host is running."""
from __future__ import annotations

import argparse
import sys
from typing import Any, Dict, List

from appliance.cli.clientflags import add_client_flags, client_settings
from appliance.cli.errors import UsageError
from appliance.device.client import ClientError, ControlClient, request_id
from appliance.ipc import ClientMsg, Message, NetMsg, Recipient, RuntimeMsg
from appliance.runtime.app import FAILED, FINISHED

EXAMPLES = """examples (from the repository root):
  appliance rtm --wait --listen 127.0.0.1:8225 &
  appliance deploy examples/diamond.py --rtm 127.0.0.1:8225      # no --duration: runs until torn down
  appliance teardown --rtm 127.0.0.1:8225

It returns once the app is removed from every ensemble: exit 0 when it
finished, 2 when it failed (the reason on stderr) or no app was running.
"""

#: How long the removal may take before the command gives up waiting (the manager's own
#: teardown wait, teardown_timeout, is 10 s: it has answered by then).
TEARDOWN_SECONDS = 30.0


def add_parser(sub) -> None:
    p = sub.add_parser("teardown", help="stop the app a runtime manager runs",
                       description="Tell the runtime manager on this host to tear down its running app "
                       "(one started without --duration runs until then), and wait until it is removed.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_client_flags(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    address, key = client_settings(args)
    try:
        with ControlClient(address, key, peer="runtime manager") as client:
            app = _running_app(client, address)
            client.send(Message(NetMsg.SUBSCRIBE, None, Recipient.NETWORK),
                        Message(RuntimeMsg.TEARDOWN, app, Recipient.RUNTIME_MANAGER))
            ended: List[Dict[str, Any]] = []

            def removed() -> bool:
                ended.extend(m.payload for m in client.take(ClientMsg.APP)
                             if m.payload["app"] == app and m.payload["phase"] in (FINISHED, FAILED))
                return bool(ended)

            if not client.wait(removed, TEARDOWN_SECONDS):
                raise UsageError("the runtime manager at %s did not remove app %s within %g s"
                                 % (address, app, TEARDOWN_SECONDS))
    except ClientError as exc:
        raise UsageError(str(exc)) from None
    report = ended[0]
    if report["phase"] == FAILED:
        print("appliance teardown: error: app %s failed: %s" % (app, report["error"]), file=sys.stderr)
        return 2
    print("app %s: finished (%d outputs logged)" % (app, report["summary"]["outputs"]))
    return 0


def _running_app(client: ControlClient, address: str) -> str:
    """The id of the app the runtime manager runs (from its status); UsageError when none is."""
    request = request_id()
    answers = client.status([Message(RuntimeMsg.STATUS, request, Recipient.RUNTIME_MANAGER)],
                            lambda got: "runtime_manager" in got, 3.0)
    status = answers.get("runtime_manager")
    if status is None:
        raise UsageError("no runtime manager answered at %s" % address)
    app = status.get("app")
    if app is None or app["phase"] in (FINISHED, FAILED):
        raise UsageError("no app is running on the runtime manager at %s%s" % (
            address, "" if app is None else " (app %s %s)" % (app["app"], app["phase"])))
    return app["app"]

"""``appliance status``: what a running runtime manager and its ensembles are doing."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Dict, List

from appliance.cli.clientflags import add_client_flags, client_settings
from appliance.cli.errors import UsageError
from appliance.device.client import ClientError, ControlClient, request_id
from appliance.ipc import ExecuteMsg, Message, NetMsg, Recipient, RuntimeMsg, SyncMsg
from appliance.runtime.app import FAILED, FINISHED

EXAMPLES = """examples:
  appliance status                          # the runtime manager on this host, at 127.0.0.1:8225
  appliance status --rtm 127.0.0.1:18225 --json
"""

#: How long the members' answers, relayed by the runtime manager, may take.
ANSWER_SECONDS = 3.0


def add_parser(sub) -> None:
    p = sub.add_parser("status", help="show a running runtime manager and its ensembles",
                       description="Ask the runtime manager on this host (and, through it, every member) for "
                       "its status: the ensembles and their clock offsets, where each SQ runs and what it did, "
                       "queue depths, transport counters and process memory.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_client_flags(p)
    p.add_argument("--json", action="store_true", help="print every process's answer as JSON")
    p.set_defaults(run=run)


def gather(address: str, cluster_key: Any) -> Dict[str, Dict[str, Any]]:
    """Every process's status answer, by ``process`` (the runtime manager's ensemble) and
    ``member/process``."""
    request = request_id()
    requests = [Message(RuntimeMsg.CLUSTER_STATUS, request, Recipient.RUNTIME_MANAGER),
                Message(SyncMsg.STATUS, request, Recipient.INPUT_TOKENS),
                Message(ExecuteMsg.STATUS, request, Recipient.EXECUTE),
                Message(NetMsg.STATUS, request, Recipient.NETWORK)]

    with ControlClient(address, cluster_key, peer="runtime manager") as client:
        answers = client.status(requests, lambda got: "runtime_manager" in got and not unanswered(got),
                                ANSWER_SECONDS)
    if "runtime_manager" not in answers:
        raise ClientError("no runtime manager answered at %s" % address)
    return answers


def unanswered(answers: Dict[str, Dict[str, Any]]) -> List[str]:
    """The processes the runtime manager's answer implies (its ensemble's four, three per
    other member) that have not answered."""
    manager = answers["runtime_manager"]
    expected = ["input_tokens", "execute", "network"] + ["%s/%s" % (m["name"], p) for m in manager["members"]
                                                         if m["name"] != manager["ensemble"]
                                                         for p in ("input_tokens", "execute", "network")]
    return [process for process in expected if process not in answers]


def run(args: argparse.Namespace) -> int:
    address, key = client_settings(args)
    try:
        answers = gather(address, key)
    except ClientError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        print(json.dumps(answers, indent=1, sort_keys=True, default=str))
    else:
        print("\n".join(describe(answers)))
    missing = unanswered(answers)
    if missing:  # a member down, or an answer lost on the way: its ensemble's log says which
        print("appliance status: no answer within %g s from %s" % (ANSWER_SECONDS, ", ".join(missing)),
              file=sys.stderr)
    return 0


def describe(answers: Dict[str, Dict[str, Any]]) -> List[str]:
    """The answers for people: members, the app and its SQs, then the processes."""
    manager = answers["runtime_manager"]
    lines = ["runtime manager %s" % manager["ensemble"], "", "ensembles:"]
    for member in manager["members"]:
        offset = member["clock_offset"]
        clock = "clock %+.3f ms (round trip %.3f ms)" % (offset / 1000, member["clock_delay"] / 1000) \
            if offset is not None else "clock not measured yet"
        lines.append("  %-20s %-22s %s" % (member["name"], member["address"], clock))
    app = manager.get("app")
    if app is None:
        lines += ["", "no app deployed"]
    else:
        lines += ["", "app %s: %s%s" % (app["app"], app["phase"], " (%s)" % app["error"] if app["error"] else ""),
                  "  %-24s %-20s %10s %6s" % ("SQ", "ran on", "executions", "errors")]
        removed = app["phase"] in (FINISHED, FAILED)  # its parts' counts are in the teardown summary
        for name, sq in app["summary"]["sqs"].items():
            here = [status.get("sqs", {}).get(name, {}) for process, status in answers.items()
                    if process.endswith("execute")]
            if removed:
                executions, errors = sq["executions"], sq["errors"]
            else:  # running: what each execute process counted so far
                executions = sum(counts.get("executions", 0) for counts in here)
                errors = sum(counts.get("errors", 0) for counts in here)
            stopped = "  stopped: a firing ran over the time limit" if any(c.get("stopped") for c in here) else ""
            lines.append("  %-24s %-20s %10d %6d%s" % (name, sq["ensemble"], executions, errors, stopped))
    lines += ["", "processes:", "  %-32s %8s %10s %10s %8s" % ("process", "pid", "RSS MiB", "USS MiB", "queued")]
    for process, status in sorted(answers.items()):
        device = status.get("device", {})
        queue = device.get("queue", {})
        lines.append("  %-32s %8s %10s %10s %8s" % (
            process, device.get("pid", "?"), _mib(device.get("rss")), _mib(device.get("uss")), queue.get("depth", "")))
    lines += ["  %-32s no answer" % process for process in unanswered(answers)]
    return lines


def _mib(value: Any) -> str:
    return "%.1f" % (value / 2**20) if isinstance(value, int) else "?"

"""What one SQ execution costs in the process cores alone, with no shell around them.

A chain of one-input SQs on one ensemble, driven message by message: the
token goes to the input-token core, the execution context to the execute
core, the outputs to the network-manager core, which forwards the next token.
This is the floor under every shell (simulated or device). Prints JSON lines:

    .venv/bin/python bench/cores.py
"""
from __future__ import annotations

import argparse
import json
import time
from collections import deque

from appliance.ipc import ExecuteMsg, Message, NetMsg, Recipient, SyncMsg
from appliance.program import graphfile
from appliance.program.model import ProgramSource, SQSpec
from appliance.program.token import Tag, Token
from appliance.runtime.app import RunOptions
from appliance.runtime.code import program_to_wire
from appliance.runtime.execute import ExecuteCore
from appliance.runtime.network import NetworkCore
from appliance.runtime.sync import InputTokenCore
from appliance.timing import Interval

PROGRAM = "from appliance import sq\n\n\n@sq\ndef step(x):\n    return x + 1\n"


def seconds_per_execution(executions: int) -> float:
    """Wall seconds per execution of the chain below, driven through the three cores."""
    doc = graphfile.sq_to_document(SQSpec(name="step", kind="sq", function="step", inputs=["x"]))
    sync, execute, network = InputTokenCore("e"), ExecuteCore("e"), NetworkCore("e", "bench:e")
    sync.handle(Message(SyncMsg.INSTANTIATE_SQS, ("app", [{"sq": doc, "fed": [0]}]), Recipient.INPUT_TOKENS), 0)
    execute.handle(Message(ExecuteMsg.INSTANTIATE_SQS,
                           ("app", program_to_wire(ProgramSource("bench", "bench.py", PROGRAM)), [doc],
                            RunOptions().sq_time_limit),
                           Recipient.EXECUTE), 0)
    # The SQ feeds itself: an endless chain, one execution per lap.
    network.handle(Message(NetMsg.INSTANTIATE_SQS, ("app", [
        {"sq": "step", "destinations": [[["e", "step", 0]]], "logged": []}], {}), Recipient.NETWORK), 0)
    handlers = {Recipient.INPUT_TOKENS: sync.handle, Recipient.EXECUTE: execute.handle,
                Recipient.NETWORK: network.handle}
    queue = deque([Message(SyncMsg.INPUT_TOKEN, Token(0, Interval(0, 10), Tag(0, "step", 0)), Recipient.INPUT_TOKENS)])
    started = time.perf_counter()
    for now in range(3 * executions):
        message = queue.popleft()
        queue.extend(handlers[message.recipient](message, now))
    elapsed = time.perf_counter() - started
    assert execute.sqs["step"].executions == executions
    return elapsed / executions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--executions", type=int, default=300_000)
    args = parser.parse_args()
    per_execution = seconds_per_execution(args.executions)
    for metric, value, unit in (("per_message", per_execution / 3 * 1e6, "us"),
                                ("per_execution", per_execution * 1e6, "us"),
                                ("executions_per_second", 1 / per_execution, "1/s")):
        print(json.dumps({"bench": "cores", "metric": metric, "value": round(value, 3), "unit": unit}))


if __name__ == "__main__":
    main()

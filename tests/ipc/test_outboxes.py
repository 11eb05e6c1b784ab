"""A device process's outboxes under overload: what a full queue drops is counted in tokens."""
from __future__ import annotations

from appliance.device.wiring import MAX_BATCH, Outboxes, count_queue_drops, decode_batch
from appliance.ipc import Message, NetMsg, Recipient, SyncMsg
from appliance.program.token import Tag, Token
from appliance.runtime.counters import Counters
from appliance.timing import Interval


def tokens(count: int, first: int = 0):
    return [Message(NetMsg.SEND_TOKENS, ("sq", None, (first + i,)), Recipient.NETWORK) for i in range(count)]


def test_tokens_a_full_queue_drops_are_counted_one_by_one_not_by_queue_message(make_queue):
    inbox = make_queue("network", data_bytes=64 * 1024)
    producer, consumer = Counters(), Counters()
    outboxes = Outboxes({Recipient.NETWORK: inbox}, producer)
    sent = 0
    while inbox.stats().dropped < 3:  # bursts of several queue messages each, until some are pushed out
        outboxes.send(tokens(3 * MAX_BATCH, sent))
        sent += 3 * MAX_BATCH
    got = []
    seen = 0
    while True:
        batch = inbox.get_many(100)
        if not batch:
            break
        seen = count_queue_drops(inbox, seen, consumer)
        for data in batch:
            got.extend(decode_batch(data, consumer))
    lost = consumer.get("dropped.queue_full")
    assert lost > inbox.stats().dropped  # each queue message held many tokens
    assert lost + len(got) == sent  # every token arrived or was counted lost
    assert [m.payload[2][0] for m in got] == list(range(sent - len(got), sent))  # the newest survive



def test_a_message_larger_than_a_ring_is_counted_and_logged_not_raised_and_the_others_go(make_queue):
    inbox = make_queue("execute", data_bytes=64 * 1024)
    counters = Counters()
    outboxes = Outboxes({Recipient.EXECUTE: inbox, Recipient.NETWORK: make_queue("network")}, counters)
    small = Message(NetMsg.SEND_TOKENS, ("sq", None, (b"x" * 20_000,)), Recipient.EXECUTE)
    large = Message(NetMsg.SEND_TOKENS, ("sq", None, (b"x" * 70_000,)), Recipient.EXECUTE)
    outboxes.send([small, large, small])
    assert counters.get("dropped.too_large_for_queue") == 1
    got = [m for data in inbox.get_many(100) for m in decode_batch(data, counters)]
    assert [m.payload for m in got] == [small.payload] * 2


def test_a_message_the_codec_cannot_encode_is_counted_and_logged_not_raised(make_queue):
    inbox = make_queue("execute")
    counters = Counters()
    outboxes = Outboxes({Recipient.EXECUTE: inbox, Recipient.NETWORK: make_queue("network")}, counters)
    fine = Message(NetMsg.SEND_TOKENS, ("sq", None, (1,)), Recipient.EXECUTE)
    outboxes.send([Message(NetMsg.SEND_TOKENS, ("sq", None, ("\udcff",)), Recipient.EXECUTE)])
    outboxes.send([fine])
    assert counters.get("dropped.unsendable") == 1
    assert [m.payload for data in inbox.get_many(100) for m in decode_batch(data, counters)] == [fine.payload]


def test_one_value_for_many_sqs_takes_a_queues_room_once(make_queue):
    """Ten copies of a 100 KB value (one object, as the network manager sends one output to
    ten local SQs) are one queue message of about 100 KB: a 256 KiB ring holds them."""
    inbox = make_queue("input_tokens", data_bytes=256 * 1024)
    counters = Counters()
    outboxes = Outboxes({Recipient.INPUT_TOKENS: inbox, Recipient.NETWORK: make_queue("network")}, counters)
    value = b"v" * 100_000
    tokens = [Message(SyncMsg.INPUT_TOKEN, Token(value, Interval(0, 10), Tag(0, "sq%d" % n, 0)),
                      Recipient.INPUT_TOKENS) for n in range(10)]
    outboxes.send(tokens)
    got = [m for data in inbox.get_many(100) for m in decode_batch(data, counters)]
    assert got == tokens and counters.get("dropped.too_large_for_queue") == 0
    assert inbox.stats().dropped == 0

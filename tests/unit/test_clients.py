"""The local control channel's clients, as the network core keeps them: who hears the
reports (subscribers only), and how a client leaves (it unsubscribes, or the transport
gives up on it), so no number of commands can silence the one that started the manager."""
from appliance.ipc import ClientMsg, Message, NetMsg, Recipient, RuntimeMsg, Transmission
from appliance.runtime.manager import RuntimeManagerCore
from appliance.runtime.network import MAX_CLIENTS, NetworkCore
from appliance.system import EnsembleDescription

RTM = "127.0.0.1:8225"


def manager() -> NetworkCore:
    core = NetworkCore("runtime-manager", RTM, hosts_runtime_manager=True)
    core.admits_client = lambda source: source.startswith("127.0.0.1:")
    return core


def request(kind, payload=None):
    recipient = Recipient.RUNTIME_MANAGER if isinstance(kind, RuntimeMsg) else Recipient.NETWORK
    return Message(kind, payload, recipient)


def report_targets(core: NetworkCore):
    out = core.to_client(Message(ClientMsg.OUTPUT, ("main-1",), Recipient.CLIENT)) or []
    return sorted(t.address for t in out if isinstance(t, Transmission))


def test_status_requests_do_not_subscribe_and_do_not_push_a_subscriber_out():
    core = manager()
    core.deliver([request(NetMsg.SUBSCRIBE)], "127.0.0.1:5000", 0)
    for n in range(3 * MAX_CLIENTS):
        core.deliver([request(RuntimeMsg.STATUS, n)], "127.0.0.1:%d" % (6000 + n), 0)
    assert report_targets(core) == ["127.0.0.1:5000"]


def test_a_client_that_unsubscribes_hears_no_more():
    core = manager()
    for port in (5000, 5001):
        core.deliver([request(NetMsg.SUBSCRIBE)], "127.0.0.1:%d" % port, 0)
    core.deliver([request(NetMsg.UNSUBSCRIBE)], "127.0.0.1:5001", 0)
    assert report_targets(core) == ["127.0.0.1:5000"]


def test_a_client_the_transport_gave_up_on_is_forgotten_quietly():
    core = manager()
    for port in (5000, 5001):
        core.deliver([request(NetMsg.SUBSCRIBE)], "127.0.0.1:%d" % port, 0)
    assert core.transmission_failed("127.0.0.1:5001", "fragment unacknowledged after 20 retransmissions") == []
    assert report_targets(core) == ["127.0.0.1:5000"]
    assert core.counters.get("clients_gone") == 1
    assert core.counters.get("dropped.send_failed") == 0  # nothing anyone awaits was lost


def test_a_status_client_gone_before_its_answer_is_forgotten_with_its_request():
    core = manager()
    core.deliver([request(NetMsg.STATUS, 7)], "127.0.0.1:6000", 0)
    assert core.transmission_failed("127.0.0.1:6000", "restarted") == []
    answer = Message(ClientMsg.STATUS, (7, "network", {}), Recipient.CLIENT)
    assert core.to_client(answer) is None  # nobody over the network awaits it any more
    assert core.counters.get("clients_gone") == 1


def test_more_subscribers_than_the_table_holds_push_out_the_oldest_counted():
    core = manager()
    for n in range(MAX_CLIENTS + 1):
        core.deliver([request(NetMsg.SUBSCRIBE)], "127.0.0.1:%d" % (5000 + n), 0)
    targets = report_targets(core)
    assert len(targets) == MAX_CLIENTS and "127.0.0.1:5000" not in targets
    assert core.counters.get("clients_evicted") == 1


def test_how_things_stand_goes_to_the_new_subscriber_alone():
    """Found by a review: what a subscription draws from the runtime manager (the members
    and the app as they are) went to every subscriber, so `appliance rtm --wait` printed
    `joined again: e1 ...` for every member whenever a deploy command subscribed."""
    network, rtm = manager(), RuntimeManagerCore(RTM)
    for name, address in (("runtime-manager", RTM), ("e1", "127.0.0.1:9001")):
        rtm.handle(request(RuntimeMsg.JOIN, EnsembleDescription(name, address).to_wire()), 0)
    rtm.handle(request(RuntimeMsg.MEMBER_CLOCK, ("e1", 250, 900)), 0)
    network.deliver([request(NetMsg.SUBSCRIBE)], "127.0.0.1:5000", 0)  # the rtm command
    [subscribed] = network.deliver([request(NetMsg.SUBSCRIBE)], "127.0.0.1:5001", 0)  # a deploy command
    told = {}
    for message in rtm.handle(subscribed, 0):
        sent = network.to_client(message) if message.recipient is Recipient.CLIENT else network.handle(message, 0)
        for transmission in sent or []:
            told.setdefault(transmission.address, []).extend(m.payload[0] for m in transmission.messages
                                                             if m.msg_type is ClientMsg.MEMBER)
    assert told == {"127.0.0.1:5001": ["runtime-manager", "e1"]}

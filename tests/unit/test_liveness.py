"""Members and their runtime manager find out when the other is gone: heartbeats, leaving,
silence, a manager that restarted, and joining again. Cores driven with fake clocks."""
import logging

from appliance.ipc import ClientMsg, ExecuteMsg, Message, NetMsg, Recipient, RuntimeMsg, SyncMsg, Transmission
from appliance.runtime.app import FAILED, FINISHED, RUNNING, STOPPING
from appliance.runtime.manager import SILENT_LOOKS
from appliance.runtime.network import EARLIER_GIVE_UPS, HEARTBEAT_INTERVAL, JOIN_RETRY, NetworkCore
from appliance.runtime.sync import InputTokenCore
from appliance.system import EnsembleDescription
from tests.unit.test_cores import SOURCE, Manager, _deploy, _join_result, _running_on_e1

RTM = "sim:runtime-manager"


def _client(outputs, kind):
    return [o.payload for o in outputs if isinstance(o, Message) and o.msg_type is kind]


def _look(m, times=1):
    """Let the manager look for silent members ``times`` times; what it said."""
    out = []
    for _ in range(times):
        m.local += HEARTBEAT_INTERVAL
        out.extend(m.core.on_local_timer(m.now, m.local))
        m.core.next_local_deadline(m.local)  # as a shell does after every call
    return out


def _manager():
    m = Manager()
    m.local = 0
    m.core.next_local_deadline(m.local)  # the shell fixes the first look against its clock
    return m


def _running(graph, duration):
    """A manager (with a local clock) running ``graph`` on e1 for ``duration`` µs."""
    m = _manager()
    m.join("e1")
    _deploy(m, graph, strategy="trivial", duration=duration)
    for process in (1, 2, 3):
        m.send(RuntimeMsg.SQS_READY, (m.core.app.id, "e1", process, []))
    return m, m.core.app


def test_a_member_that_keeps_beating_stays_and_a_silent_one_is_dropped_and_its_name_freed():
    m = _manager()
    m.join("e1")
    m.join("e2")
    for _ in range(3):
        assert _look(m) == []
        m.send(RuntimeMsg.HEARTBEAT, ("e1", "sim:e1", ""))
        m.send(RuntimeMsg.HEARTBEAT, ("e2", "sim:e2", ""))
    said = []  # e2 falls silent; e1 beats on
    for _ in range(SILENT_LOOKS):
        assert "e2" in m.core.members
        said.append(_client(_look(m), ClientMsg.MEMBER_LEFT))
        m.send(RuntimeMsg.HEARTBEAT, ("e1", "sim:e1", ""))
    assert said == [[]] * (SILENT_LOOKS - 1) + [[("e2", "no heartbeat for 15 s")]]
    assert "e1" in m.core.members and "e2" not in m.core.members
    assert m.core.counters.get("members_left") == 1
    _, (accepted, _, _) = _join_result(m.join("e2", address="sim:elsewhere"))
    assert accepted  # the name is free again


def test_leaving_tells_the_client_drops_the_route_and_fails_the_running_app_without_waiting_for_it(build):
    m, app = _running_on_e1(build(SOURCE))
    assert app.phase == RUNNING
    out = m.core.handle(Message(RuntimeMsg.LEAVE, ("e1", "sim:e1", ""), Recipient.RUNTIME_MANAGER), 0)
    assert _client(out, ClientMsg.MEMBER_LEFT) == [("e1", "it stopped")]
    assert _client(out, NetMsg.REMOVE_ROUTES) == [["e1"]]
    assert "e1" not in m.core.members
    # the app failed; it waits for no teardown report from the ensemble that left
    assert app.phase == FAILED and app.error == "ensemble e1 left: it stopped"
    [report] = [r for r in _client(out, ClientMsg.APP) if r["phase"] == FAILED]
    assert report["error"] == "ensemble e1 left: it stopped"
    # nor sends it the teardown: it has no route there, and each message would be counted lost (no_route)
    assert [ensemble for ensemble, _ in _client(out, NetMsg.FORWARD)] == []


def test_a_run_cut_short_says_how_long_its_sources_sampled_not_the_duration_asked_for(build):
    """Was: the summary's first line gave the requested duration, whatever ended the run."""
    m, app = _running(build(SOURCE), 30_000_000)
    assert app.phase == RUNNING
    m.now = app.t0 + 4_000_000  # e1 beats no more; it is found silent by the local clock
    out = _look(m, SILENT_LOOKS)
    [report] = [r for r in _client(out, ClientMsg.APP) if r["phase"] == FAILED]
    assert report["summary"]["ran"] and report["summary"]["ran_for"] == 4_000_000


def test_a_run_ran_for_its_window_until_its_teardown_and_not_at_all_if_torn_down_before_its_start(build):
    m, app = _running_on_e1(build(SOURCE))  # no duration: until torn down
    m.now = app.t0 + 2_500_000
    m.send(RuntimeMsg.TEARDOWN, None)
    assert app.ran_for == 2_500_000
    for now, ran_for in ((None, 1_000_000), (0, 0)):  # the end of its window, drained; before its first sample
        m, app = _running(build(SOURCE), 1_000_000)
        if now is None:
            m.now = app.t0 + 1_000_000 + app.options.drain
            m.core.on_timer(m.now)
        else:
            m.send(RuntimeMsg.TEARDOWN, None)
        assert app.phase == STOPPING and app.ran_for == ran_for


def test_a_stopping_manager_tells_each_member_to_join_again_for_its_current_join():
    m = _manager()
    m.join("e1")
    m.join("e2")
    out = m.core.handle(Message(RuntimeMsg.END, None, Recipient.RUNTIME_MANAGER), 0)
    sent = sorted((ensemble, [(x.msg_type, x.payload) for x in messages]) for ensemble, messages in
                  _client(out, NetMsg.FORWARD))
    # (the joins here carry no nonce: "")
    assert sent == [(name, [(NetMsg.REJOIN, (name, "", "it stopped", False))]) for name in ("e1", "e2")]


def test_a_member_told_its_manager_stopped_removes_the_app_and_joins_again_at_once(caplog):
    e = Member()
    e.answer_join()
    _with_app(e)
    caplog.set_level(logging.WARNING)
    out = e.core.deliver([_rejoin_because("e1", e.core.join_nonce, "it stopped")], RTM, 0)
    assert e.core.app is None and _sent(out, RuntimeMsg.JOIN)
    assert "lost the runtime manager at %s (it stopped); joining again" % RTM in caplog.text


def test_a_leave_or_heartbeat_for_another_address_changes_nothing():
    m = _manager()
    m.join("e1")
    assert m.send(RuntimeMsg.LEAVE, ("e1", "sim:impostor", "")) == []
    assert m.send(RuntimeMsg.LEAVE, ("e1", "sim:e1", "an earlier join")) == []
    assert m.send(RuntimeMsg.LEAVE, ("runtime-manager", "sim:runtime-manager", None)) == []
    assert "e1" in m.core.members and m.core.counters.get("refused.leave") == 3
    assert "runtime-manager" in m.core.members
    # a heartbeat from a name it does not know there is told to join again, at its own address
    [reply] = m.send(RuntimeMsg.HEARTBEAT, ("e1", "sim:impostor", "n-1"))
    address, [rejoin] = reply.payload
    assert reply.msg_type is NetMsg.FORWARD_TO_ADDRESS and address == "sim:impostor"
    name, nonce, reason, known = rejoin.payload  # naming the ensemble and the join it answers
    assert rejoin.msg_type is NetMsg.REJOIN and (name, nonce, known) == ("e1", "n-1", False)
    assert "has no member e1 at sim:impostor" in reason
    # a heartbeat from before the member's current join changes nothing, and is not answered
    assert m.send(RuntimeMsg.HEARTBEAT, ("e1", "sim:e1", "an earlier join")) == []
    assert m.core.counters.get("stale_heartbeats") == 1


def _join_with(m, name, nonce):
    return m.send(RuntimeMsg.JOIN, dict(EnsembleDescription(name, "sim:" + name).to_wire(), nonce=nonce))


def test_a_member_that_joins_anew_during_an_app_fails_it_but_its_join_asked_again_does_not(build):
    m, app = _running_on_e1(build(SOURCE))
    m.join("e1")  # the same join (same nonce), asked again: its answer was slow, or lost
    assert app.phase == RUNNING and not app.error
    _join_with(m, "e1", "b-1")  # a new join: it restarted, or lost this manager
    assert app.phase == FAILED and "joined again" in app.error


def test_a_member_that_finished_its_teardown_may_leave_without_failing_the_app(build):
    m = Manager()
    m.join("e1")
    m.join("e2")
    _deploy(m, build(PAIR), strategy="trivial", duration=10**6)
    app = m.core.app
    for ensemble in ("e1", "e2"):
        for process in (1, 2, 3):
            m.send(RuntimeMsg.SQS_READY, (app.id, ensemble, process, []))
    m.core.handle(Message(RuntimeMsg.TEARDOWN, app.id, Recipient.RUNTIME_MANAGER), 0)
    for process in (1, 2, 3):
        m.send(RuntimeMsg.SQS_REMOVED, (app.id, "e1", process, {"counters": {}}))
    m.send(RuntimeMsg.LEAVE, ("e1", "sim:e1", ""))  # done, and stopping
    for process in (1, 2, 3):
        m.send(RuntimeMsg.SQS_REMOVED, (app.id, "e2", process, {"counters": {}}))
    assert app.phase == FINISHED and not app.error


PAIR = '''
from appliance import sq, stream, graph

@stream(period_ms=10, ensemble="e1")
def src(tick):
    return tick

@sq(ensemble="e2")
def inc(x):
    return x + 1

@graph
def main():
    return inc(src())
'''


def test_the_runtime_managers_network_core_admits_heartbeats_only_from_the_address_they_name():
    core = NetworkCore("runtime-manager", RTM, hosts_runtime_manager=True)
    beat = Message(RuntimeMsg.HEARTBEAT, ("e1", "sim:e1", "n-1"), Recipient.RUNTIME_MANAGER)
    assert core.deliver([beat], "sim:elsewhere", 0) == []
    assert core.counters.get("refused.member_address") == 1
    assert core.deliver([beat], "sim:e1", 0) == [beat]  # not yet known: it may be one the manager forgot


class Member:
    """An ensemble's network core, joined to the runtime manager at ``RTM``, on a fake local clock."""

    def __init__(self):
        self.core = NetworkCore("e1", "sim:e1")
        self.local = 0
        self.out = self.core.handle(Message(NetMsg.JOIN_NETWORK, (RTM, EnsembleDescription("e1", "sim:e1").to_wire()),
                                            Recipient.NETWORK), 0)
        self.core.next_local_deadline(self.local)

    def answer_join(self, accepted=True, reason="", advertised=RTM):
        routes = {"runtime-manager": advertised, "e1": "sim:e1"} if accepted else {}
        result = Message(NetMsg.JOIN_RESULT, (accepted, reason, routes, self.core.join_nonce), Recipient.NETWORK)
        out = self.core.deliver([result], RTM, 0)
        self.core.next_local_deadline(self.local)
        return out

    def wait(self, delay):
        self.local += delay
        out = self.core.on_local_timer(0, self.local)
        self.core.next_local_deadline(self.local)
        return out


def _sent(outputs, kind):
    return [(o.address, m.payload) for o in outputs if isinstance(o, Transmission) for m in o.messages
            if m.msg_type is kind]


def test_a_joined_ensemble_beats_every_interval_and_says_goodbye_when_it_stops():
    e = Member()
    e.answer_join()
    mine = ("e1", "sim:e1", e.core.join_nonce)
    assert _sent(e.wait(HEARTBEAT_INTERVAL), RuntimeMsg.HEARTBEAT) == [(RTM, mine)]
    assert _sent(e.wait(HEARTBEAT_INTERVAL), RuntimeMsg.HEARTBEAT) == [(RTM, mine)]
    assert _sent(e.core.handle(Message(NetMsg.END, None, Recipient.NETWORK), 0), RuntimeMsg.LEAVE) == [(RTM, mine)]


def _with_app(e):
    e.core.handle(Message(NetMsg.INSTANTIATE_SQS, ("app-1", [], {}), Recipient.NETWORK), 0)
    assert e.core.app == "app-1"


def test_a_manager_given_up_on_removes_the_app_here_and_the_ensemble_joins_again(caplog):
    e = Member()
    e.answer_join()
    _with_app(e)
    e.wait(EARLIER_GIVE_UPS)  # a give-up sooner is one of what was sent before the join (below)
    caplog.set_level(logging.WARNING)
    out = e.core.transmission_failed(RTM, "the peer restarted before acknowledging it")
    e.core.next_local_deadline(e.local)  # as a shell does after every call
    assert [(m.msg_type, m.payload) for m in out if isinstance(m, Message)] == [
        (SyncMsg.REMOVE_SQS, "app-1"), (ExecuteMsg.REMOVE_SQS, "app-1")]
    assert e.core.app is None and e.core.joined is None
    assert _sent(out, RuntimeMsg.JOIN)  # at once
    assert "lost the runtime manager at %s (the peer restarted" % RTM in caplog.text
    assert "could not deliver" not in caplog.text  # said once, as the loss
    # asked again, with backoff, while nobody answers; no heartbeat while not joined
    later = e.wait(JOIN_RETRY)
    assert _sent(later, RuntimeMsg.JOIN) and not _sent(later, RuntimeMsg.HEARTBEAT)
    # each failed join attempt is not one more error line
    caplog.clear()
    for _ in range(3):
        e.core.transmission_failed(RTM, "retry limit")
    assert "could not deliver" not in caplog.text
    e.answer_join()
    assert e.core.joined is True
    assert _sent(e.wait(HEARTBEAT_INTERVAL), RuntimeMsg.HEARTBEAT)


def test_a_manager_advertising_another_address_is_said_once_not_at_every_answer_or_rejoin(caplog):
    """Was: said at every answer to the join's retries (5 lines in a millisecond), and again
    at every join after a loss of the manager."""
    e = Member()
    caplog.set_level(logging.WARNING)
    for _ in range(3):
        e.answer_join(advertised="sim:advertised")
    e.core.deliver([_rejoin("e1", e.core.join_nonce)], RTM, 0)
    e.answer_join(advertised="sim:advertised")
    assert e.core.joined is True
    assert caplog.text.count("advertises sim:advertised but this ensemble reaches it at %s" % RTM) == 1


def _rejoin_because(name, nonce, why, known=False):
    return Message(NetMsg.REJOIN, (name, nonce, why, known), Recipient.NETWORK)


def _rejoin(name, nonce, known=False):
    return Message(NetMsg.REJOIN, (name, nonce, "no member %s" % name, known), Recipient.NETWORK)


def test_rejoin_is_taken_only_from_the_runtime_manager_for_this_ensemble_and_its_current_join():
    e = Member()
    e.answer_join()
    first = e.core.join_nonce
    assert e.core.deliver([_rejoin("e1", first)], "sim:stranger", 0) == []
    assert e.core.deliver([_rejoin("nobody", first)], RTM, 0) == []  # another's, sent to this address
    assert e.core.deliver([_rejoin("e1", "an earlier join")], RTM, 0) == []
    assert e.core.joined is True and e.core.counters.get("refused.stale_rejoin") == 2
    out = e.core.deliver([_rejoin("e1", first)], RTM, 0)
    assert e.core.joined is None and _sent(out, RuntimeMsg.JOIN)
    e.answer_join()
    _with_app(e)
    # one more answer to a heartbeat of the first join, late: the new join and its app stay
    assert e.core.deliver([_rejoin("e1", first)], RTM, 0) == []
    assert e.core.joined is True and e.core.app == "app-1"


def test_an_answer_to_an_earlier_join_is_not_taken_for_this_ones():
    e = Member()
    stale = Message(NetMsg.JOIN_RESULT, (False, "name taken", {}, "an earlier join"), Recipient.NETWORK)
    assert e.core.deliver([stale], RTM, 0) == []
    assert e.core.joined is None and e.core.counters.get("refused.stale_join_result") == 1


def test_a_refused_ensemble_asks_again_and_says_the_same_refusal_once(caplog):
    caplog.set_level(logging.ERROR)
    e = Member()
    for _ in range(3):
        e.answer_join(False, "ensemble name 'e1' is taken by sim:other")
        assert _sent(e.wait(JOIN_RETRY * 64), RuntimeMsg.JOIN)
    assert caplog.text.count("refused to let it join") == 1
    e.answer_join()
    assert e.core.joined is True


def test_an_unreachable_ensemble_is_said_once_until_heard_from_again(caplog):
    caplog.set_level(logging.ERROR)
    e = Member()
    e.answer_join()
    e.core.handle(Message(NetMsg.ADD_ROUTES, {"e2": "sim:e2"}, Recipient.NETWORK), 0)
    for _ in range(5):
        e.core.transmission_failed("sim:e2", "retry limit")
    assert caplog.text.count("could not deliver to e2") == 1
    assert e.core.counters.get("dropped.send_failed") == 5
    e.core.deliver([Message(SyncMsg.INPUT_TOKEN, None, Recipient.INPUT_TOKENS)], "sim:e2", 0)
    e.core.transmission_failed("sim:e2", "retry limit")
    assert caplog.text.count("could not deliver to e2") == 2


def test_a_finished_app_is_not_failed_by_a_member_leaving(build):
    m, app = _running_on_e1(build(SOURCE))
    m.core.handle(Message(RuntimeMsg.TEARDOWN, app.id, Recipient.RUNTIME_MANAGER), 0)
    for process in (1, 2, 3):
        m.send(RuntimeMsg.SQS_REMOVED, (app.id, "e1", process, {"counters": {}}))
    assert app.phase == FINISHED
    m.send(RuntimeMsg.LEAVE, ("e1", "sim:e1", ""))
    assert app.phase == FINISHED and "e1" not in m.core.members


def test_a_new_join_forgets_the_apps_removed_here_so_a_restarted_manager_may_number_them_again():
    e = Member()
    out = e.answer_join()
    assert [(m.msg_type, m.recipient) for m in out if isinstance(m, Message)
            and m.msg_type in (SyncMsg.FORGET_APPS, ExecuteMsg.FORGET_APPS)] == [
        (SyncMsg.FORGET_APPS, Recipient.INPUT_TOKENS), (ExecuteMsg.FORGET_APPS, Recipient.EXECUTE)]
    _with_app(e)
    e.core.handle(Message(NetMsg.REMOVE_SQS, "app-1", Recipient.NETWORK), 0)
    sync = InputTokenCore("e1")
    sync.handle(Message(SyncMsg.REMOVE_SQS, "app-1", Recipient.INPUT_TOKENS), 0)
    e.wait(EARLIER_GIVE_UPS)
    e.core.transmission_failed(RTM, "the peer restarted before acknowledging it")
    for message in e.answer_join():
        if isinstance(message, Message) and message.msg_type is SyncMsg.FORGET_APPS:
            sync.handle(message, 0)
    _with_app(e)  # the new manager's app-1 is taken, not refused as the old one removed
    sync.handle(Message(SyncMsg.INSTANTIATE_SQS, ("app-1", []), Recipient.INPUT_TOKENS), 0)
    assert sync.app == "app-1"


def test_a_join_answered_twice_says_it_joined_once(caplog):
    caplog.set_level(logging.WARNING)
    e = Member()
    e.wait(JOIN_RETRY)  # asked again: both asks get an answer
    e.answer_join()
    e.answer_join()
    assert caplog.text.count("joined the runtime manager after 2 attempts") == 1


def test_a_give_up_soon_after_a_join_is_of_what_was_sent_before_it_and_loses_nothing():
    e = Member()
    e.wait(JOIN_RETRY)  # asked twice while the manager was not up: the first ask gives up late
    e.answer_join()
    _with_app(e)
    assert e.core.transmission_failed(RTM, "retry limit") == []
    assert e.core.joined is True and e.core.app == "app-1" and e.core.counters.get("earlier_give_ups") == 1
    # but a restarted manager is news at once: the transport fails what was outstanding when it finds it
    assert _sent(e.core.transmission_failed(RTM, "the peer restarted", restarted=True), RuntimeMsg.JOIN)
    e.answer_join()
    _with_app(e)
    e.wait(EARLIER_GIVE_UPS)
    assert _sent(e.core.transmission_failed(RTM, "retry limit"), RuntimeMsg.JOIN)  # later: a loss
    assert e.core.joined is None and e.core.app is None


def test_a_rejoin_from_the_manager_that_accepted_the_join_keeps_a_late_deploy_of_a_removed_app_refused():
    m = _manager()
    _join_with(m, "e1", "n-1")
    m.send(RuntimeMsg.LEAVE, ("e1", "sim:e1", "n-1"))  # dropped (as if silent)
    [reply] = m.send(RuntimeMsg.HEARTBEAT, ("e1", "sim:e1", "n-1"))
    [rejoin] = reply.payload[1]
    assert rejoin.payload[3] is True  # it accepted that join: it numbered its apps
    e = Member()
    e.answer_join()
    e.core.handle(Message(NetMsg.REMOVE_SQS, "app-1", Recipient.NETWORK), 0)  # overtook its deploy
    assert _sent(e.core.deliver([_rejoin("e1", e.core.join_nonce, known=True)], RTM, 0), RuntimeMsg.JOIN)
    assert not [m for m in e.answer_join() if isinstance(m, Message) and m.msg_type is SyncMsg.FORGET_APPS]
    e.core.handle(Message(NetMsg.INSTANTIATE_SQS, ("app-1", [], {}), Recipient.NETWORK), 0)
    assert e.core.app is None  # the late deploy stays refused
    # a REJOIN from a manager that never accepted the join (it restarted) forgets them
    e.wait(HEARTBEAT_INTERVAL)
    assert _sent(e.core.deliver([_rejoin("e1", e.core.join_nonce)], RTM, 0), RuntimeMsg.JOIN)
    assert [m for m in e.answer_join() if isinstance(m, Message) and m.msg_type is SyncMsg.FORGET_APPS]

"""Everything an endpoint knows about one peer address."""
from __future__ import annotations

from collections import deque
from typing import Deque, Dict, Iterable, List, Optional, Tuple

from appliance.net.config import TransportConfig
from appliance.net.counters import Counters
from appliance.net.events import Event
from appliance.net.reassembly import Reassembly
from appliance.net.replay import ReplayWindow
from appliance.net.sender import Outbound, Outbox
from appliance.net.wire import ID_HALF_RANGE, U32, AckEntry, Framer

#: Completed messages repeated in every ACK to the peer, most recent last: a
#: lost ACK of a finished message is then made good by the next ACK instead
#: of by a retransmission.
ACK_HISTORY = 4


class Peer:
    """A peer's session, the ids delivered from it, what to acknowledge to it, and
    (in ``outbound``) what is being sent to it."""

    __slots__ = ("address", "counters", "outbound", "session", "windows", "_whole", "_echo",
                 "_retired", "_replay_window", "_completed")

    def __init__(self, address: str, config: TransportConfig, framer: Framer, outbox: Outbox,
                 events: List[Event]) -> None:
        self.address = address
        self.counters = Counters()
        self.outbound = Outbound(address, config, framer, outbox, events, self.counters)
        #: The peer's boot session, None until its first datagram.
        self.session: Optional[int] = None
        self._retired: Deque[int] = deque(maxlen=config.retired_sessions)
        self._replay_window = config.replay_window
        #: Delivered-id windows, indexed by ``reliable``: best-effort and
        #: reliable messages are numbered independently.
        self.windows = (ReplayWindow(config.replay_window), ReplayWindow(config.replay_window))
        #: Messages to acknowledge whole in the next ACK: wire id -> fragment count.
        self._whole: Dict[int, int] = {}
        self._completed: Deque[AckEntry] = deque(maxlen=ACK_HISTORY)
        #: Newest timestamp of the reliable DATA since the last ACK, echoed in it.
        self._echo: Optional[int] = None

    def session_change(self, session: int) -> Optional[str]:
        """None when ``session`` is current; 'stale_session' or 'restarts' otherwise.

        Sessions are random, so they cannot be ordered: the ones seen before
        are remembered so a late datagram from an earlier boot is refused
        instead of being taken for yet another restart.
        """
        if session == self.session:
            return None
        if self.session is None:
            self.session = session
            return None
        if session in self._retired:
            return "stale_session"
        self._retired.append(self.session)
        self.session = session
        self.windows = (ReplayWindow(self._replay_window), ReplayWindow(self._replay_window))
        self._whole.clear()
        self._completed.clear()
        self._echo = None
        return "restarts"

    def acknowledge(self, wire_id: int, count: int, whole: bool, timestamp: int) -> None:
        """Note reliable DATA to answer: a whole message, or a fragment of one in progress."""
        echo = self._echo
        if echo is None or (timestamp - echo) & U32 < ID_HALF_RANGE:
            self._echo = timestamp
        if whole:
            self._whole[wire_id] = count
            entry = (wire_id, 0, count)
            if entry not in self._completed:
                self._completed.append(entry)

    def take_ack(self, in_progress: Iterable[Reassembly], limit: int) -> Tuple[int, List[AckEntry]]:
        """Echo and entries of the next ACK: everything this endpoint holds of the peer's
        reliable messages in progress, those just completed and the recent history, so
        that any one ACK that arrives makes good all the lost ones before it."""
        entries: List[AckEntry] = [(wire_id, 0, count) for wire_id, count in self._whole.items()]
        for buffer in in_progress:
            if buffer.reliable:
                entries.extend(buffer.ack_entries(limit))
        entries.extend(entry for entry in self._completed if entry[0] not in self._whole)
        echo = self._echo or 0
        self._whole.clear()
        self._echo = None
        return echo, entries

    def stats(self) -> Dict[str, int]:
        result = self.counters.as_dict()
        rtt = self.outbound.rtt
        result["rtt_us"] = rtt.srtt or 0
        result["rto_us"] = rtt.rto
        result["in_flight"] = len(self.outbound.messages)
        result["session"] = self.session or 0
        return result

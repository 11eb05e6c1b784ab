"""Everything an endpoint knows about one peer address."""
from __future__ import annotations

from collections import deque
from itertools import chain, islice
from typing import Deque, Dict, Iterable, Iterator, List, Optional, Tuple

from appliance.net.config import TransportConfig
from appliance.net.counters import TransportCounters
from appliance.net.handshake import ReceivingChannel
from appliance.net.reassembly import Reassembly
from appliance.net.replay import ReplayWindow
from appliance.net.sender import Outbound
from appliance.net.wire import ID_HALF_RANGE, U32, AckEntry

#: Completed messages repeated in every ACK to the peer, most recent last: a
#: lost ACK of a finished message is then made good by the next ACK instead
#: of by a retransmission.
ACK_HISTORY = 4
#: ACK datagrams per peer per flush at most; state beyond is reported later.
MAX_ACK_PARTS = 4


class Peer:
    """A peer's proven session, its channel to this endpoint, the ids delivered from it,
    what to acknowledge to it, and (in ``outbound``) what is being sent to it."""

    __slots__ = ("address", "member", "counters", "outbound", "session", "identity", "inbound",
                 "windows", "last_active", "_retired", "_replay_window", "_whole", "_dropped",
                 "_echo", "_completed")

    def __init__(self, address: str, member: bool, config: TransportConfig, outbound: Outbound,
                 counters: TransportCounters, now: int) -> None:
        self.address = address
        #: Whether the application named this address a member (never evicted for a stranger).
        self.member = member
        self.counters = counters
        self.outbound = outbound
        #: The peer's boot session, None until a handshake proved one.
        self.session: Optional[int] = None
        #: The digest of the identity the peer proved in its last handshake.
        self.identity: Optional[bytes] = None
        #: The channel the peer sends DATA to this endpoint on (and gets ACKs back on).
        self.inbound: Optional[ReceivingChannel] = None
        #: When a datagram from this peer was last accepted (or this endpoint last sent to it).
        self.last_active = now
        self._retired: Deque[int] = deque(maxlen=config.retired_sessions)
        self._replay_window = config.replay_window
        #: Finished-id windows, indexed by ``reliable``: best-effort and
        #: reliable messages are numbered independently.
        self.windows = (ReplayWindow(config.replay_window), ReplayWindow(config.replay_window))
        #: Messages to acknowledge whole in the next ACK: wire id -> fragment count.
        self._whole: Dict[int, int] = {}
        #: Messages whose partial copy this endpoint dropped, to say so in the next ACK.
        self._dropped: Dict[int, None] = {}
        self._completed: Deque[AckEntry] = deque(maxlen=ACK_HISTORY)
        #: Newest timestamp of the reliable DATA since the last ACK, echoed in it.
        self._echo: Optional[int] = None

    def retired(self, session: int) -> bool:
        """Whether ``session`` is one of the peer's earlier boots."""
        return session in self._retired

    def restart(self, session: int) -> None:
        """A handshake proved a new session: forget everything received from the old one.

        Sessions are random, so they cannot be ordered: the ones seen before
        are remembered so a handshake from an earlier boot is refused instead
        of being taken for yet another restart.
        """
        if self.session is not None:
            self._retired.append(self.session)
            self.counters.restarts += 1
        self.session = session
        self.inbound = None
        self.windows = (ReplayWindow(self._replay_window), ReplayWindow(self._replay_window))
        self._whole.clear()
        self._dropped.clear()
        self._completed.clear()
        self._echo = None

    def echo(self, timestamp: int) -> None:
        """Note reliable DATA to answer: the ACK echoes the newest timestamp among it."""
        echo = self._echo
        if echo is None or (timestamp - echo) & U32 < ID_HALF_RANGE:
            self._echo = timestamp

    def acknowledge_whole(self, wire_id: int, count: int, timestamp: int) -> None:
        """Note a reliable message to acknowledge whole: completed, or a duplicate of one."""
        self.echo(timestamp)
        self._whole[wire_id] = count
        entry = (wire_id, 0, count)
        if entry not in self._completed:
            self._completed.append(entry)

    def note_dropped(self, wire_id: int) -> None:
        """Say in the next ACK that the message's partial copy is gone (its sender fails it)."""
        self._dropped[wire_id] = None

    def take_ack(self, in_progress: Iterable[Reassembly], limit: int
                 ) -> Tuple[int, List[List[AckEntry]], bool]:
        """Echo, datagram-sized parts and completeness of the next ACK.

        The ACK states everything this endpoint holds of the peer's reliable
        messages in progress, those just completed or dropped, and (room
        permitting) the recent history, so that any one ACK that arrives
        makes good all the lost ones before it. It is *complete* only if all
        of that fits in one datagram: a list cut to fit is incomplete, or the
        sender would take the fragments left out for lost. Entries are built
        lazily and at most one beyond what the parts can carry, so the cost
        does not grow with what the peer holds.
        """
        required: Iterator[AckEntry] = chain(
            [(wire_id, 0, count) for wire_id, count in self._whole.items()],
            [(wire_id, 0, 0) for wire_id in self._dropped],
            *(_listed(buffer) for buffer in in_progress if buffer.reliable))
        entries = list(islice(required, MAX_ACK_PARTS * limit + 1))
        complete = len(entries) <= limit
        if complete:
            entries.extend(islice((entry for entry in self._completed if entry[0] not in self._whole),
                                  limit - len(entries)))
        parts = [entries[start : start + limit]
                 for start in range(0, min(len(entries), MAX_ACK_PARTS * limit), limit)]
        echo = self._echo or 0
        self._whole.clear()
        self._dropped.clear()
        self._echo = None
        return echo, parts, complete

    def stats(self) -> Dict[str, int]:
        result = self.counters.as_dict()
        rtt = self.outbound.rtt
        result["rtt_us"] = rtt.srtt or 0
        result["rto_us"] = rtt.rto
        result["in_flight"] = len(self.outbound.messages)
        result["session"] = self.session or 0
        return result


def _listed(buffer: Reassembly) -> Iterator[AckEntry]:
    """The buffer's runs; once one is listed, dropping the buffer must be announced."""
    for entry in buffer.runs():
        buffer.acknowledged = True
        yield entry

"""The replay window: exact answers inside it, refusal below it, 32-bit ids unwrapped."""
from __future__ import annotations

from appliance.net.replay import ReplayWindow


def test_ids_inside_the_window_are_answered_exactly():
    window = ReplayWindow(8)
    for message_id in (5, 7, 6):
        assert not window.delivered(message_id)
        window.mark(message_id)
        assert window.delivered(message_id)
    assert window.highest == 7
    assert not window.delivered(4) and not window.too_old(4)
    assert not window.delivered(100)


def test_ids_below_the_window_are_too_old():
    window = ReplayWindow(8)
    window.mark(1)
    window.mark(20)
    assert window.too_old(12) and not window.too_old(13)
    assert not window.delivered(1)


def test_a_huge_jump_does_not_build_a_huge_bitmap():
    window = ReplayWindow(1024)
    window.mark(1)
    window.mark(1 + (1 << 31) - 1)
    assert window.delivered(1 + (1 << 31) - 1)
    assert window._finished == 1


def test_wire_ids_wrap_around_32_bits():
    window = ReplayWindow(16)
    start = (1 << 32) - 3
    window.mark(window.unwrap(start))
    extended = [window.unwrap(wire_id) for wire_id in ((1 << 32) - 2, (1 << 32) - 1, 0, 1)]
    assert extended == [start + 1, start + 2, start + 3, start + 4]
    for message_id in extended:
        window.mark(message_id)
    assert window.unwrap(start & 0xFFFFFFFF) == start
    assert window.delivered(window.unwrap(0))


def test_a_dropped_id_is_finished_but_never_delivered():
    window = ReplayWindow(8)
    window.mark(3)
    window.mark_dropped(5)  # above the highest delivered: the window moves on
    window.mark_dropped(2)
    assert window.highest == 5
    assert window.dropped(5) and window.dropped(2) and not window.dropped(3)
    assert not window.delivered(5) and not window.delivered(2) and window.delivered(3)
    for later in range(6, 14):
        window.mark(later)
    assert window.too_old(5) and not window.dropped(5)  # out of the window: refused as too old

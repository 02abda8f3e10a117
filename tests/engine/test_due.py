"""Maintenance is skipped while nothing can be due (meta `due`): whatever lowers the moment
something becomes due must be seen on time, after calls that skipped it."""

from __future__ import annotations

import pytest

from ferrymq.engine import NewMessage


@pytest.mark.one_partition
def test_a_touch_shortening_a_reservation_brings_its_lapse_forward(engine, clock):
    q = engine.queue("p", "q")
    q.put(["x"])
    [m] = q.reserve(timeout=100)
    q.put(["y"])  # a call that maintains: nothing due before the 100 s deadline
    q.touch(m.id, m.reservation_id, timeout=3)
    clock.advance(3)
    assert [got.body for got in q.reserve(2)] == [b"y", b"x"]


def test_a_short_delay_after_a_long_one_is_promoted_on_time(engine, clock):
    q = engine.queue("p", "q")
    q.put([NewMessage("late", delay=60)])
    q.put(["now"])
    q.put([NewMessage("soon", delay=2)])
    assert [m.body for m in q.reserve(3)] == [b"now"]
    clock.advance(2)
    assert [m.body for m in q.reserve(3)] == [b"soon"]


def test_a_short_expiry_behind_long_ones_expires_on_time(engine, clock):
    q = engine.queue("p", "q")
    q.put(["long"])
    q.put([NewMessage("short", expires_in=5)])
    clock.advance(5)
    assert q.info().size == 1
    assert [m.body for m in q.reserve(2)] == [b"long"]

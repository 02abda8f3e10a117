"""release_reserved: an operator puts every reserved message back at once (the dashboard's
"Release reserved" button)."""

from __future__ import annotations


def test_every_reserved_message_is_released_in_batches_and_counted(engine):
    q = engine.queue("p", "q")
    for start in range(0, 250, 50):  # more than two settle batches (100 each)
        q.put([str(i) for i in range(start, start + 50)])
    assert len(q.reserve(100)) + len(q.reserve(100)) + len(q.reserve(30)) == 230
    assert q.release_reserved() == 230
    info = q.info()
    assert (info.ready, info.reserved) == (250, 0)
    again = q.reserve(100) + q.reserve(100) + q.reserve(50)
    counts = [m.reserved_count for m in again]  # a release keeps the delivery count
    assert (counts.count(2), counts.count(1)) == (230, 20)


def test_a_released_message_out_of_deliveries_is_dead_lettered(engine):
    q = engine.queue("p", "q")
    q.create(max_deliveries=1, dead_letter_queue="dead")
    q.put(["once", "twice"])
    q.reserve(2)
    assert q.release_reserved() == 2
    assert q.info().size == 0
    assert sorted(m.body for m in engine.queue("p", "dead").peek(10)) == [b"once", b"twice"]


def test_nothing_reserved_releases_nothing(engine):
    q = engine.queue("p", "q")
    q.put(["ready"])
    assert q.release_reserved() == 0
    assert q.info().ready == 1

"""Queue alerts: validation, and firing evaluated inside the script that changes the size."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import pytest
import redis

from ferrymq.engine import (
    Alert, AlertNotFound, Engine, InvalidArgument, NewMessage, PushConfig, QueueNotFound, Subscriber,
)


def fired(engine, target="alerts"):
    return [json.loads(m.body) for m in engine.queue("p", target).peek(100)]


def sizes(engine, target="alerts"):
    return [doc["queue_size"] for doc in fired(engine, target)]


def grow(q, n):
    return q.put([str(i) for i in range(n)])


def in_threads(run, count=8):
    """Runs ``run`` in ``count`` threads at once, until each is done."""
    threads = [threading.Thread(target=run) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)


def shrink(q, n):
    for m in q.reserve(n, delete=True):
        assert m


# -- validation ---------------------------------------------------------------------------------


def test_alerts_are_added_with_ids_and_listed_in_order(engine):
    q = engine.queue("p", "q")
    info = q.add_alerts([Alert("fixed", 10, "alerts"), Alert("progressive", 5, "alerts", "desc", 30)])
    a, b = info.settings.alerts
    assert len(a.id) == 24 and int(a.id, 16) >= 0 and a.id != b.id
    assert (a.type, a.trigger, a.direction, a.snooze, a.queue) == ("fixed", 10, "asc", 0, "alerts")
    assert (b.type, b.direction, b.snooze) == ("progressive", "desc", 30)


@pytest.mark.parametrize(
    "alert, field",
    [
        (Alert("both", 1, "a"), "alerts[0].type"),
        (Alert("fixed", 0, "a"), "alerts[0].trigger"),
        (Alert("fixed", "c", "a"), "alerts[0].trigger"),
        (Alert("fixed", 1, "a", "both"), "alerts[0].direction"),
        (Alert("fixed", 1, "a", "asc", -1), "alerts[0].snooze"),
        (Alert("fixed", 1, "a", "asc", "1234"), "alerts[0].snooze"),
        (Alert("fixed", 1, ""), "alerts[0].queue"),
        (Alert("progressive", 1, "q"), "alerts[0].queue"),
    ],
)
def test_bad_alerts_are_refused(engine, alert, field):
    with pytest.raises(InvalidArgument) as err:
        engine.queue("p", "q").add_alerts([alert])
    assert err.value.field == field


def test_a_fixed_alert_may_post_to_its_own_queue(engine):
    assert engine.queue("p", "q").add_alerts([Alert("fixed", 3, "q")]).settings.alerts


def test_a_duplicate_of_an_existing_alert_is_refused_but_duplicates_in_one_request_are_not(engine):
    q = engine.queue("p", "q")
    assert len(q.add_alerts([Alert("fixed", 5, "a")] * 5).settings.alerts) == 5
    q.replace_alerts([Alert("fixed", 5, "a", snooze=3)])
    with pytest.raises(InvalidArgument) as err:
        q.add_alerts([Alert("fixed", 5, "b", snooze=9)])  # same type, direction, trigger
    assert err.value.message == "At least one new alert duplicates current queue alerts."


def test_at_most_five_alerts(engine):
    q = engine.queue("p", "q")
    with pytest.raises(InvalidArgument):
        q.add_alerts([Alert("fixed", i + 1, "a") for i in range(6)])
    q.add_alerts([Alert("fixed", i + 1, "a") for i in range(5)])
    with pytest.raises(InvalidArgument):
        q.add_alerts([Alert("fixed", 99, "a")])


def test_a_progressive_cycle_is_refused(engine):
    engine.queue("p", "q2").add_alerts([Alert("progressive", 10, "q1")])
    with pytest.raises(InvalidArgument) as err:
        engine.queue("p", "q1").add_alerts([Alert("progressive", 10, "q2")])
    assert err.value.field == "alerts[0].queue"
    engine.queue("p", "q1").add_alerts([Alert("fixed", 10, "q2")])  # fixed alerts may


def test_push_queues_do_not_support_alerts(engine):
    push = engine.queue("p", "push")
    push.set_push(PushConfig((Subscriber("http://x.example/"),)))
    with pytest.raises(InvalidArgument) as err:
        push.add_alerts([Alert("fixed", 1, "a")])
    assert err.value.message == "Push queues do not support alerts."
    alerted = engine.queue("p", "alerted")
    alerted.add_alerts([Alert("fixed", 1, "a")])
    with pytest.raises(InvalidArgument) as err:
        alerted.set_push(PushConfig((Subscriber("http://x.example/"),)))
    assert err.value.message == "Push queues do not support alerts."


def test_replace_and_remove(engine):
    q = engine.queue("p", "q")
    a, b = q.add_alerts([Alert("fixed", 1, "a"), Alert("fixed", 2, "a")]).settings.alerts
    assert [x.id for x in q.remove_alerts([a.id, "unknown"]).settings.alerts] == [b.id]
    with pytest.raises(AlertNotFound):
        q.remove_alert(a.id)
    assert q.remove_alert(b.id).settings.alerts == ()
    assert q.replace_alerts([Alert("progressive", 4, "a")]).settings.alerts[0].trigger == 4
    assert q.replace_alerts([]).settings.alerts == ()


def test_alert_changes_may_refuse_to_create_the_queue(engine):
    q = engine.queue("p", "missing")
    for change in (lambda: q.add_alerts([Alert("fixed", 1, "a")], create=False),
                   lambda: q.replace_alerts([Alert("fixed", 1, "a")], create=False),
                   lambda: q.remove_alerts(["x"], create=False)):
        with pytest.raises(QueueNotFound):
            change()
    assert engine.list_queues("p") == []
    q.create()
    assert len(q.add_alerts([Alert("fixed", 1, "a")], create=False).settings.alerts) == 1


# -- firing -------------------------------------------------------------------------------------


def test_fixed_asc_fires_on_each_crossing_up_and_rearms_below(engine):
    q = engine.queue("p", "q")
    q.add_alerts([Alert("fixed", 3, "alerts")])
    grow(q, 2)
    assert fired(engine) == []
    grow(q, 1)
    [doc] = fired(engine)
    assert doc["source_queue"] == "q" and doc["queue_size"] == 3 and doc["alert_trigger"] == 3
    assert (doc["alert_type"], doc["alert_direction"]) == ("fixed", "asc")
    assert doc["created_at"].endswith("Z") and len(doc["created_at"]) == 20
    grow(q, 5)
    assert sizes(engine) == [3]  # already above: no new crossing
    shrink(q, 7)
    grow(q, 4)
    assert sizes(engine) == [3, 5]


def test_fixed_desc_fires_when_the_size_falls_to_the_trigger(engine):
    q = engine.queue("p", "q")
    q.add_alerts([Alert("fixed", 2, "alerts", "desc")])
    grow(q, 5)
    shrink(q, 2)
    assert fired(engine) == []
    shrink(q, 1)
    assert sizes(engine) == [2]
    shrink(q, 2)
    assert sizes(engine) == [2]


def test_progressive_asc_fires_at_every_multiple(engine):
    q = engine.queue("p", "q")
    q.add_alerts([Alert("progressive", 5, "alerts")])
    for _ in range(12):
        grow(q, 1)
    assert sizes(engine) == [5, 10]
    grow(q, 20)  # one change past several multiples fires once
    assert sizes(engine) == [5, 10, 32]


def test_progressive_desc_fires_at_every_multiple_but_zero(engine):
    q = engine.queue("p", "q")
    q.add_alerts([Alert("progressive", 3, "alerts", "desc")])
    grow(q, 7)
    for _ in range(7):
        shrink(q, 1)
    assert sizes(engine) == [6, 3]


def test_snooze_drops_firings_inside_its_window(engine, clock):
    q = engine.queue("p", "q")
    q.add_alerts([Alert("fixed", 1, "alerts", snooze=60)])
    grow(q, 1)
    shrink(q, 1)
    grow(q, 1)  # crosses again 0 s later: snoozed
    assert sizes(engine) == [1]
    clock.advance(60)
    shrink(q, 1)
    grow(q, 1)
    assert len(fired(engine)) == 2


def test_expiry_and_clear_count_as_size_changes(engine, clock):
    q = engine.queue("p", "q")
    q.add_alerts([Alert("fixed", 1, "alerts", "desc")])  # fires when the size falls to 1 or less
    grow(q, 3)
    q.put([NewMessage("short", expires_in=5)])
    clock.advance(5)
    assert q.info().size == 3
    assert sizes(engine) == []
    q.clear()
    assert sizes(engine) == [0]


def test_concurrent_producers_fire_a_crossing_exactly_once(redis_url, redis_client):
    """Eight threads put one message each, many times over, through one trigger: each crossing
    is seen by exactly one script, so the alert fires exactly once per crossing."""
    Engine(redis_client).queue("p", "q").add_alerts([Alert("fixed", 40, "alerts")])

    def produce() -> None:
        client = redis.Redis.from_url(redis_url)
        q = Engine(client).queue("p", "q")
        for _ in range(10):
            q.put(["x"])
        client.close()

    in_threads(produce)
    assert sizes(Engine(redis_client)) == [40]


@pytest.mark.parametrize("where", ["redis", "cluster"])
def test_a_partitioned_queue_fires_on_its_summed_size_once_per_crossing_under_concurrent_producers(where, request):
    """Eight threads put into a queue of 3 partitions (spread over the masters on the cluster),
    then eight take everything: partition 0 sums the partitions' reports, so each crossing of
    the sum fires once, and the sum it keeps is exact (a later crossing fires at the trigger)."""
    if where == "cluster":
        deployment = request.getfixturevalue("cluster")
        connect = deployment.sync_client
    else:
        url = request.getfixturevalue("redis_url")
        redis.Redis.from_url(url).flushall()

        def connect() -> redis.Redis:
            return redis.Redis.from_url(url)

    client = connect()
    engine = Engine(client)
    q = engine.queue("p", "q")
    q.ensure(partitions=3)
    q.add_alerts([Alert("fixed", 40, "up"), Alert("progressive", 10, "steps"), Alert("fixed", 5, "down", "desc")])

    def each_own_engine(work) -> Callable[[], None]:
        def run() -> None:
            own = connect()
            work(Engine(own).queue("p", "q"))
            own.close()

        return run

    in_threads(each_own_engine(lambda mine: [mine.put(["x"]) for _ in range(10)]))
    assert q.info().size == 80
    assert {m.id[19:] for m in q.peek(100)} == {"", "01", "02"}  # all three partitions took puts
    [up] = sizes(engine, "up")
    assert up >= 40
    steps = sizes(engine, "steps")
    assert steps and [s // 10 for s in steps] == sorted({s // 10 for s in steps})  # once per multiple at most

    in_threads(each_own_engine(lambda mine: [mine.reserve(1, delete=True) for _ in range(10)]))
    assert q.info().size == 0
    [down] = sizes(engine, "down")
    assert down <= 5 and sizes(engine, "up") == [up]

    for _ in range(40):
        q.put(["y"])
    assert sizes(engine, "up") == [up, 40]  # the sum partition 0 kept is the queue's exact size
    client.close()

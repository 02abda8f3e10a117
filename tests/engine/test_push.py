"""Push queues in the engine: deliveries claimed under a lease, outcomes reported, retries,
202 acknowledgements, error queues. The pusher's HTTP side is tested in tests/push/."""

from __future__ import annotations

import json

import pytest

from ferrymq.engine import (Alert, Engine, FakeClock, InvalidArgument, MessageNotFound, NewMessage, PushConfig,
                            QueueNotFound, Subscriber)

A, B = "http://a.example/hook", "http://b.example/hook"
LEASE = 70.0


def push_queue(engine, name="q", *urls, **config):
    subscribers = tuple(Subscriber(u) for u in (urls or (A, B)))
    q = engine.queue("p", name)
    q.set_push(PushConfig(subscribers, **config))
    return q


def statuses(q, message_id):
    return [(s.url, s.status, s.status_code, s.retries_remaining) for s in q.push_status(message_id)]


def test_a_push_queue_has_a_status_per_subscriber_from_the_moment_of_posting(engine):
    q = push_queue(engine)
    [mid] = q.put(["hello"])
    assert statuses(q, mid) == [(A, "queued", None, 3), (B, "queued", None, 3)]
    ids = [s.id for s in q.push_status(mid)]
    assert ids == [mid + "01", mid + "02"] and all(i.isdigit() for i in ids)
    assert q.get(mid).status == "pushing"
    assert q.info().size == 1 and q.info().pushing == 1


def test_delivered_push_messages_count_their_bytes_while_their_records_are_kept(real_engine):
    # A pushed message stays readable (its record in Redis) until it expires: byte quotas count it.
    q = push_queue(real_engine, "q", A)
    q.put(["x" * 200])
    [delivery] = q.claim_pushes(10, LEASE).deliveries
    assert q.report_push(delivery, 200)
    info = q.info()
    assert (info.size, info.pushing) == (0, 0) and info.bytes > 200


def test_messages_of_a_push_queue_are_never_pulled(engine):
    q = engine.queue("p", "q")
    [before] = q.put(["pulled"])
    q.set_push(PushConfig((Subscriber(A),)))
    q.put(["pushed"])
    assert [m.body for m in q.reserve(10)] == [b"pulled"]
    assert q.push_status(before) == []


def test_multicast_delivers_to_each_subscriber_and_retries_only_the_failed_one(engine, clock):
    q = push_queue(engine, retries_delay=30)
    [mid] = q.put(["hello"])
    claim = q.claim_pushes(10, LEASE)
    assert sorted(d.url for d in claim.deliveries) == [A, B]
    assert all(d.body == b"hello" and d.message_id == mid for d in claim.deliveries)
    assert q.claim_pushes(10, LEASE).deliveries == []  # leased: no second pusher gets them
    to = {d.url: d for d in claim.deliveries}
    assert q.report_push(to[A], 200) and q.report_push(to[B], 503, "503 Service Unavailable")
    assert statuses(q, mid) == [(A, "deleted", 200, 3), (B, "retrying", 503, 2)]
    clock.advance(29)
    assert q.claim_pushes(10, LEASE).deliveries == []
    clock.advance(1)
    [again] = q.claim_pushes(10, LEASE).deliveries
    assert again.url == B
    q.report_push(again, 204)
    assert statuses(q, mid) == [(A, "deleted", 200, 3), (B, "deleted", 204, 2)]
    assert q.get(mid).status == "pushed" and q.info().size == 0
    counters = q.info().counters
    assert (counters["push_delivered"], counters["push_failed"], counters.get("push_errors", 0)) == (2, 1, 0)


def test_unicast_tries_the_next_subscriber_at_once_and_stops_at_the_first_success(engine, clock):
    q = push_queue(engine, "u", A, B, "http://c.example/", type="unicast", retries=1, retries_delay=60)
    [mid] = q.put(["one"])
    [first] = q.claim_pushes(10, LEASE).deliveries
    assert first.url == A
    q.report_push(first, 500)
    [second] = q.claim_pushes(10, LEASE).deliveries  # at once, no delay
    assert second.url == B
    q.report_push(second, 200)
    assert q.claim_pushes(10, LEASE).deliveries == []
    assert [s[1] for s in statuses(q, mid)] == ["retrying", "deleted", "queued"]
    assert q.get(mid).status == "pushed"


def test_unicast_waits_after_a_round_where_all_failed(engine, clock):
    q = push_queue(engine, "u", A, B, type="unicast", retries=1, retries_delay=60, error_queue="errors")
    [mid] = q.put(["one"])
    for url in (A, B):
        [d] = q.claim_pushes(10, LEASE).deliveries
        assert d.url == url
        q.report_push(d, 500, "500 Internal Server Error")
    assert q.claim_pushes(10, LEASE).deliveries == []
    clock.advance(60)
    for url in (A, B):  # the last round
        [d] = q.claim_pushes(10, LEASE).deliveries
        assert d.url == url
        q.report_push(d, 0, "no answer within 60 s")
    assert [s[1] for s in statuses(q, mid)] == ["error", "error"]
    [error] = engine.queue("p", "errors").reserve()
    doc = json.loads(error.body)
    assert doc["source_msg_id"] == mid and doc["body"] == "one" and doc["msg"] == "no answer within 60 s"
    assert [s["url"] for s in doc["subscribers"]] == [A, B]


def test_out_of_retries_a_multicast_subscriber_ends_in_error_and_the_error_queue(engine, clock):
    q = push_queue(engine, "m", A, B, retries=0, error_queue="errors")
    [mid] = q.put(["x"])
    for d in q.claim_pushes(10, LEASE).deliveries:
        q.report_push(d, 200 if d.url == A else 404, "" if d.url == A else "404 Not Found")
    assert statuses(q, mid) == [(A, "deleted", 200, 0), (B, "error", 404, 0)]
    [error] = engine.queue("p", "errors").reserve()
    doc = json.loads(error.body)
    assert (doc["code"], doc["msg"], doc["subscribers"]) == (404, "404 Not Found", [{"url": B, "code": 404, "msg": "404 Not Found"}])
    assert q.get(mid).status == "pushed"  # the original stays readable
    assert [m.name for m in engine.list_queues("p")] == ["errors", "m"]
    [stats] = [s for s in engine.stats("p") if s.name == "m"]
    assert (stats.counters["push_delivered"], stats.counters["push_errors"]) == (1, 1)


def test_a_202_waits_for_its_acknowledgement(engine, clock):
    q = push_queue(engine, "q", A)
    [mid] = q.put([NewMessage("slow job", timeout=120)])
    [d] = q.claim_pushes(10, LEASE).deliveries
    q.report_push(d, 202)
    assert statuses(q, mid) == [(A, "reserved", 202, 3)]
    clock.advance(100)
    assert q.claim_pushes(10, LEASE).deliveries == []
    with pytest.raises(MessageNotFound):
        q.ack_push(mid + "01", "wrong-token")
    assert q.ack_push(mid + "01", d.token) is True
    assert statuses(q, mid) == [(A, "deleted", 202, 3)] and q.get(mid).status == "pushed"
    assert q.ack_push(mid + "01") is False  # nothing waits any more


def test_a_202_may_be_acknowledged_by_the_message_and_the_deliverys_token(engine):
    q = push_queue(engine, "q", A, B)
    [mid] = q.put(["slow job"])
    deliveries = {d.url: d for d in q.claim_pushes(10, LEASE).deliveries}
    for d in deliveries.values():
        q.report_push(d, 202)
    for wrong in ("", "x", deliveries[A].token[:-2] + "99"):
        with pytest.raises(MessageNotFound):
            q.ack_push_by_token(mid, wrong)
    assert q.ack_push_by_token(mid, deliveries[B].token) is True
    assert statuses(q, mid) == [(A, "reserved", 202, 3), (B, "deleted", 202, 3)]


def test_a_202_not_acknowledged_in_time_is_retried(engine, clock):
    q = push_queue(engine, "q", A, retries_delay=10)
    [mid] = q.put([NewMessage("job", timeout=30)])
    [d] = q.claim_pushes(10, LEASE).deliveries
    q.report_push(d, 202)
    clock.advance(30)
    assert q.claim_pushes(10, LEASE).deliveries == []  # the failed attempt waits its delay
    assert statuses(q, mid)[0][1:] == ("retrying", 202, 2)
    clock.advance(10)
    assert [x.url for x in q.claim_pushes(10, LEASE).deliveries] == [A]


def test_a_pusher_that_dies_loses_nothing_and_its_late_report_changes_nothing(engine, clock):
    q = push_queue(engine, "q", A)
    [mid] = q.put(["x"])
    [first] = q.claim_pushes(10, LEASE).deliveries
    clock.advance(LEASE)
    [second] = q.claim_pushes(10, LEASE).deliveries  # the lease ran out: due again, no retry used
    assert second.token != first.token
    assert q.report_push(first, 200) is False
    assert statuses(q, mid) == [(A, "reserved", None, 3)]
    assert q.report_push(second, 200) is True
    assert statuses(q, mid) == [(A, "deleted", 200, 3)]


def test_delayed_push_messages_are_delivered_when_due(engine, clock):
    q = push_queue(engine, "q", A)
    q.put([NewMessage("later", delay=30)])
    assert q.claim_pushes(10, LEASE).deliveries == []
    clock.advance(30)
    assert [d.body for d in q.claim_pushes(10, LEASE).deliveries] == [b"later"]


def test_expired_and_deleted_push_messages_leave_nothing_behind(engine, clock):
    q = push_queue(engine, "q", A)
    [gone, deleted] = q.put([NewMessage("short", expires_in=5), "x"])
    q.delete_message(deleted)
    clock.advance(5)
    assert q.claim_pushes(10, LEASE).deliveries == []
    assert q.info().size == 0 and q.info().pushing == 0
    with pytest.raises(MessageNotFound):
        q.push_status(gone)


class HostBehind(FakeClock):
    """Scripts run at ``ms``; this host's clock is a second behind Redis's."""

    def wall_ms(self) -> int:
        return self.ms - 1000


def test_a_push_queue_is_due_by_the_scripts_clock_not_the_hosts(redis_client):
    engine = Engine(redis_client, clock=HostBehind())
    q = push_queue(engine, "q", A)
    q.put(["x"])
    assert [d.body for d in q.claim_pushes(10, LEASE).deliveries] == [b"x"]
    q.put(["y"])  # listed again by the put, at the scripts' now
    assert engine.due_push_queues() == [("p", "q")]


def test_claims_list_push_queues_where_pushers_look(engine, clock):
    q = push_queue(engine, "q", A)
    assert engine.due_push_queues() == [("p", "q")]
    q.put(["x"])
    [d] = q.claim_pushes(10, LEASE).deliveries
    assert engine.due_push_queues() == []  # looked at again within a second, or at its next event
    clock.advance(1)
    assert engine.due_push_queues() == [("p", "q")]
    q.report_push(d, 200)
    q.set_push(PushConfig((), type="pull"))
    q.claim_pushes(10, LEASE)
    assert engine.due_push_queues() == []


@pytest.mark.parametrize(
    "config, field",
    [
        (PushConfig(()), "subscribers"),
        (PushConfig((Subscriber("ftp://x"),)), "subscribers[0].url"),
        (PushConfig((Subscriber("ironmq:///q"),)), "subscribers[0].url"),  # itself
        (PushConfig((Subscriber(A),), type="broadcast"), "push_type"),
        (PushConfig((Subscriber(A),), retries=101), "retries"),
        (PushConfig((Subscriber(A),), error_queue="q"), "error_queue"),
        (PushConfig((Subscriber(A, {"X": 1}),)), "subscribers[0].headers"),
    ],
)
def test_bad_push_configurations_are_refused(engine, config, field):
    with pytest.raises(InvalidArgument) as err:
        engine.queue("p", "q").set_push(config)
    assert err.value.field == field


def test_reverting_to_pull_keeps_pushed_messages_statuses(engine):
    q = push_queue(engine, "q", A)
    [mid] = q.put(["x"])
    info = q.set_push(PushConfig((), type="pull"))
    assert info.settings.push is None
    q.put(["pulled"])
    assert [m.body for m in q.reserve(5)] == [b"pulled"]
    assert statuses(q, mid) == [(A, "queued", None, 3)]


def test_named_subscribers_go_by_name_and_their_deliveries_carry_it(engine):
    q = engine.queue("p", "q")
    q.set_push(PushConfig((Subscriber(A, {"X-Key": "1"}, name="first"), Subscriber(A, name="second"))))
    [mid] = q.put(["x"])
    assert [(s.name, s.url) for s in q.push_status(mid)] == [("first", A), ("second", A)]
    claimed = {d.subscriber_name: d for d in q.claim_pushes(10, LEASE).deliveries}
    assert (claimed["first"].headers, claimed["second"].headers) == ({"X-Key": "1"}, {})
    info = q.add_subscribers([Subscriber(B, name="first"), Subscriber(B)])  # replaces "first" by name
    assert [(s.name, s.url) for s in info.settings.push.subscribers] == [("first", B), ("second", A), ("", B)]
    info = q.remove_subscribers(["second", B])  # by name, and by url
    assert info.settings.push is None
    with pytest.raises(InvalidArgument) as err:
        q.set_push(PushConfig((Subscriber(A, name="x"), Subscriber(B, name="x"))))
    assert err.value.field == "subscribers"


def test_with_a_fixed_type_pull_queues_refuse_subscribers_and_push_queues_keep_one(engine):
    pull = engine.queue("p", "pull")
    pull.create()
    for change in (lambda: pull.add_subscribers([Subscriber(A)], fixed_type=True),
                   lambda: pull.replace_subscribers([Subscriber(A)]),
                   lambda: pull.remove_subscribers([A], fixed_type=True)):
        with pytest.raises(InvalidArgument):
            change()
    assert pull.info().settings.push is None
    with pytest.raises(QueueNotFound):
        engine.queue("p", "missing").add_subscribers([Subscriber(A)], fixed_type=True)
    q = push_queue(engine, "q", A, B, type="unicast")
    assert [s.url for s in q.replace_subscribers([Subscriber(B, name="b")]).settings.push.subscribers] == [B]
    assert q.info().settings.push.type == "unicast"
    with pytest.raises(InvalidArgument):
        q.remove_subscribers(["b"], fixed_type=True)
    assert [s.name for s in q.info().settings.push.subscribers] == ["b"]


async def test_concurrent_subscriber_and_alert_changes_lose_no_update(aengine):
    """Each change is read, built and written again if another caller changed the same setting
    in between, so 20 callers adding at once all land."""
    import asyncio

    q = aengine.queue("p", "pq")
    urls = [f"http://s{i}.example/hook" for i in range(20)]
    await asyncio.gather(*(q.add_subscribers([Subscriber(u)]) for u in urls))
    assert sorted(s.url for s in (await q.info()).settings.push.subscribers) == sorted(urls)
    await asyncio.gather(*(q.remove_subscribers([u]) for u in urls[:19]))
    assert [s.url for s in (await q.info()).settings.push.subscribers] == urls[19:]

    watched = aengine.queue("p", "watched")
    alerts = [Alert("fixed", n, "alerts") for n in range(1, 6)]
    await asyncio.gather(*(watched.add_alerts([a]) for a in alerts))
    assert sorted(a.trigger for a in (await watched.info()).settings.alerts) == [1, 2, 3, 4, 5]


def test_a_changed_setting_is_not_overwritten_by_a_stale_change(real_engine):
    engine = real_engine  # sync: the change calls the engine again from inside a verb
    q = engine.queue("p", "pq")
    q.add_subscribers([Subscriber(A)])
    seen = []

    def stale(current):
        seen.append(current)
        if len(seen) == 1:  # another caller changes the setting after this one read it
            engine.queue("p", "pq").add_subscribers([Subscriber(B)])
        return PushConfig((*current.subscribers, Subscriber("http://c.example/hook")))

    q.update_push(stale)
    assert [s.url for s in q.info().settings.push.subscribers] == [A, B, "http://c.example/hook"]
    assert len(seen) == 2 and [s.url for s in seen[1].subscribers] == [A, B]

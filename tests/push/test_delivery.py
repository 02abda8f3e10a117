"""Push delivery end to end: a server with a pusher, subscriber servers on loopback answering
what each test scripts, statuses read back over IronMQ v1. Retry delays and 202 waits run on the
server's FakeClock; a subscriber that hangs costs PUSH_TIMEOUT of real time."""

from __future__ import annotations

import json
import time

from .conftest import HANG, PUSH_TIMEOUT
from .iron import AUTH, PROJECT, eventually, ok, post, url


def push_queue(server, queue: str, *subs, **settings) -> None:
    doc = {"subscribers": [{"url": s.url, **({"headers": s.headers} if hasattr(s, "headers") else {})}
                           for s in subs], **settings}
    ok(server.http.post(url(f"/queues/{queue}"), json=doc, headers=AUTH))


def statuses(server, queue: str, mid: str) -> list[tuple]:
    subs = ok(server.http.get(url(f"/queues/{queue}/messages/{mid}/subscribers"), headers=AUTH))["subscribers"]
    return [(s["status"], s["status_code"], s["retries_remaining"]) for s in subs]


def test_each_subscriber_gets_the_raw_body_and_ironmq_headers(push_server, subscribers):
    a, b = subscribers(), subscribers()
    doc = {"subscribers": [{"url": a.url}, {"url": b.url, "headers": {"Content-Type": "application/json", "X-Key": "k"}}]}
    ok(push_server.http.post(url("/queues/pq"), json=doc, headers=AUTH))
    [mid] = post(push_server, "pq", '{"hello": "world"}')
    [got_a], [got_b] = a.wait_for(1), b.wait_for(1)
    assert got_a.body == got_b.body == b'{"hello": "world"}'
    assert got_a.headers["User-Agent"] == "IronMQ Pusherd"
    assert got_a.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert (got_b.headers["Content-Type"], got_b.headers["X-Key"]) == ("application/json", "k")
    assert got_a.headers["Iron-Message-Id"] == got_b.headers["Iron-Message-Id"] == mid
    assert (got_a.headers["Iron-Subscriber-Message-Id"], got_b.headers["Iron-Subscriber-Message-Id"]) == (mid + "01", mid + "02")
    ack = got_a.headers["Iron-Subscriber-Message-Url"]
    assert ack.startswith(f"http://public.example:9999/1/projects/{PROJECT}/queues/pq/messages/{mid}/subscribers/{mid}01?oauth=")
    assert "token-a" not in ack  # the URL goes to a third party: never the project's token
    eventually(lambda: _assert(statuses(push_server, "pq", mid) == [("deleted", 200, 3), ("deleted", 200, 3)]))
    assert ok(push_server.http.get(url(f"/queues/pq/messages/{mid}"), headers=AUTH))["status"] == "deleted"
    assert ok(push_server.http.get(url("/queues/pq"), headers=AUTH))["size"] == 0


def test_multicast_retries_only_the_failing_subscriber_after_retries_delay(push_server, subscribers):
    good, flaky = subscribers(), subscribers(answers=[500, 503])
    push_queue(push_server, "pq", good, flaky, retries_delay=30)
    [mid] = post(push_server, "pq", "x")
    flaky.wait_for(1)
    eventually(lambda: _assert(statuses(push_server, "pq", mid) == [("deleted", 200, 3), ("retrying", 500, 2)]))
    push_server.clock.advance(29)
    time.sleep(0.3)  # a pusher pass or more: nothing is due yet
    assert len(flaky.received) == 1
    push_server.clock.advance(1)
    flaky.wait_for(2)
    eventually(lambda: _assert(statuses(push_server, "pq", mid)[1] == ("retrying", 503, 1)))
    push_server.clock.advance(30)
    flaky.wait_for(3)
    eventually(lambda: _assert(statuses(push_server, "pq", mid) == [("deleted", 200, 3), ("deleted", 200, 1)]))
    assert len(good.received) == 1


def test_unicast_tries_the_next_subscriber_at_once(push_server, subscribers):
    down, up, spare = subscribers(otherwise=502), subscribers(), subscribers()
    push_queue(push_server, "uq", down, up, spare, push_type="unicast")
    [mid] = post(push_server, "uq", "x")
    up.wait_for(1)
    eventually(lambda: _assert([s[0] for s in statuses(push_server, "uq", mid)] == ["retrying", "deleted", "queued"]))
    assert (len(down.received), len(spare.received)) == (1, 0)


def test_a_hanging_subscriber_times_out_and_does_not_delay_other_queues(push_server, subscribers):
    stuck, fast = subscribers(answers=[HANG]), subscribers()
    push_queue(push_server, "slow", stuck, retries_delay=60)
    push_queue(push_server, "quick", fast)
    [slow_id] = post(push_server, "slow", "s")
    stuck.wait_for(1)
    started = time.monotonic()
    post(push_server, "quick", "q")
    fast.wait_for(1)
    assert time.monotonic() - started < PUSH_TIMEOUT  # delivered while the other push still hangs
    eventually(lambda: _assert(statuses(push_server, "slow", slow_id) == [("retrying", None, 2)]))


def test_a_202_is_held_until_acknowledged_through_its_url(push_server, subscribers):
    sub = subscribers(answers=[202])
    push_queue(push_server, "pq", sub)
    [mid] = post(push_server, "pq", "x")
    [got] = sub.wait_for(1)
    eventually(lambda: _assert(statuses(push_server, "pq", mid) == [("reserved", 202, 3)]))
    ack = got.headers["Iron-Subscriber-Message-Url"].replace("http://public.example:9999", push_server.url)
    assert ok(push_server.http.delete(ack)) == {"msg": "Deleted"}  # no Authorization header: the URL's token
    assert statuses(push_server, "pq", mid) == [("deleted", 202, 3)]
    assert ok(push_server.http.get(url(f"/queues/pq/messages/{mid}"), headers=AUTH))["status"] == "deleted"


def test_a_202_not_acknowledged_within_the_message_timeout_is_retried(push_server, subscribers):
    sub = subscribers(answers=[202])
    push_queue(push_server, "pq", sub, retries_delay=5)
    doc = {"messages": [{"body": "x", "timeout": 30}]}
    [mid] = ok(push_server.http.post(url("/queues/pq/messages"), json=doc, headers=AUTH))["ids"]
    sub.wait_for(1)
    eventually(lambda: _assert(statuses(push_server, "pq", mid) == [("reserved", 202, 3)]))
    push_server.clock.advance(30)  # the wait for the acknowledgement ends: a failed attempt
    eventually(lambda: _assert(statuses(push_server, "pq", mid)[0][0] == "retrying"))
    push_server.clock.advance(5)
    sub.wait_for(2)
    eventually(lambda: _assert(statuses(push_server, "pq", mid) == [("deleted", 200, 2)]))


def test_out_of_retries_the_message_lands_in_the_error_queue(push_server, subscribers):
    sub = subscribers(otherwise=404)
    push_queue(push_server, "pq", sub, retries=1, retries_delay=3, error_queue="failed")
    [mid] = post(push_server, "pq", "the body")
    sub.wait_for(1)
    eventually(lambda: _assert(statuses(push_server, "pq", mid) == [("retrying", 404, 0)]))
    push_server.clock.advance(3)
    sub.wait_for(2)
    eventually(lambda: _assert(statuses(push_server, "pq", mid) == [("error", 404, 0)]))
    # The error-queue message crosses queues through the outbox: it arrives soon after, not atomically.
    [error] = eventually(lambda: _nonempty(ok(push_server.http.get(url("/queues/failed/messages"), headers=AUTH))["messages"]))
    doc = json.loads(error["body"])
    assert (doc["source_msg_id"], doc["body"], doc["code"], doc["msg"]) == (mid, "the body", 404, "404 Not Found")
    assert doc["subscribers"] == [{"url": sub.url, "code": 404, "msg": "404 Not Found"}]
    assert ok(push_server.http.get(url(f"/queues/pq/messages/{mid}"), headers=AUTH))["id"] == mid  # still readable


def test_an_ironmq_subscriber_forwards_into_another_queue(push_server):
    ok(push_server.http.post(url("/queues/pq"), json={"subscribers": [{"url": "ironmq:///inbox"}]}, headers=AUTH))
    [mid] = post(push_server, "pq", "forwarded")
    got = eventually(lambda: _nonempty(ok(push_server.http.get(url("/queues/inbox/messages"), headers=AUTH))["messages"]))
    assert [m["body"] for m in got] == ["forwarded"]
    # the pusher reports the delivery after the forward's put, which a reader can see first
    eventually(lambda: _assert(statuses(push_server, "pq", mid) == [("deleted", 200, 3)]))


def test_a_switch_after_n_calls_is_seen_per_message(push_server, subscribers):
    sub = subscribers(answers=[200, 200], otherwise=500)
    push_queue(push_server, "pq", sub)
    ids = post(push_server, "pq", "1", "2", "3")
    sub.wait_for(3)
    eventually(lambda: _assert(sorted(statuses(push_server, "pq", m)[0][0] for m in ids) == ["deleted", "deleted", "retrying"]))


def _assert(condition: bool) -> bool:
    assert condition
    return condition


def _nonempty(items: list) -> list:
    assert items
    return items

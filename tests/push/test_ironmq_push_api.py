"""IronMQ v1 push-queue settings over real HTTP: the queue object's push keys, subscribers added and
removed by url, and every refusal (docs/contracts/ironmq-v1.md §5, §7). Nothing is delivered
here (the shared live server runs no pusher): see test_delivery.py."""

from __future__ import annotations

import pytest

from .iron import AUTH, ok, refused, url

A, B = "http://a.example/hook", "http://b.example/hook"


def update(http, queue: str, **doc) -> dict:
    return ok(http.post(url(f"/queues/{queue}"), json=doc, headers=AUTH))


def test_subscribers_make_a_multicast_push_queue_with_the_default_settings(http):
    q = update(http, "pq", subscribers=[{"url": A}, {"url": B, "headers": {"Content-Type": "application/json"}}])
    assert {k: q[k] for k in ("push_type", "retries", "retries_delay", "subscribers")} == {
        "push_type": "multicast", "retries": 3, "retries_delay": 60,
        "subscribers": [{"url": A}, {"url": B, "headers": {"Content-Type": "application/json"}}],
    }
    assert "error_queue" not in q and "alerts" not in q
    assert ok(http.get(url("/queues/pq"), headers=AUTH)) == q


def test_settings_change_one_at_a_time_and_error_queue_empty_removes_it(http):
    update(http, "pq", subscribers=[{"url": A}], push_type="unicast", retries=5, retries_delay=10, error_queue="errs")
    q = update(http, "pq", retries=0)  # other keys unchanged
    assert (q["push_type"], q["retries"], q["retries_delay"], q["error_queue"]) == ("unicast", 0, 10, "errs")
    assert "error_queue" not in update(http, "pq", error_queue="")
    assert update(http, "pq", retries_delay=0)["retries_delay"] == 10  # zero means "not set"


def test_push_type_pull_reverts_and_the_push_keys_disappear(http):
    update(http, "pq", subscribers=[{"url": A}], error_queue="errs")
    q = update(http, "pq", push_type="pull")
    assert not {"push_type", "retries", "retries_delay", "subscribers", "error_queue"} & q.keys()
    assert q["name"] == "pq" and q["size"] == 0


def test_a_pull_queue_updated_without_subscribers_stays_a_pull_queue(http):
    # Java's update-queue sends pushType, retries and an empty subscriber list for a pull queue.
    q = update(http, "plain", pushType="multicast", retries=3, subscribers=[])
    assert "push_type" not in q and q["name"] == "plain"


def test_subscribers_are_added_and_removed_by_url(http):
    update(http, "pq", subscribers=[{"url": A}])
    q = ok(http.post(url("/queues/pq/subscribers"), headers=AUTH,
                     json={"subscribers": [{"url": B}, {"url": A, "headers": {"X-Key": "1"}}]}))
    assert q["subscribers"] == [{"url": A, "headers": {"X-Key": "1"}}, {"url": B}]
    q = ok(http.request("DELETE", url("/queues/pq/subscribers"), headers=AUTH, json={"subscribers": [{"url": A}]}))
    assert q["subscribers"] == [{"url": B}] and q["push_type"] == "multicast"
    q = ok(http.request("DELETE", url("/queues/pq/subscribers"), headers=AUTH, json={"subscribers": [{"url": B}]}))
    assert "subscribers" not in q and "push_type" not in q  # none left: a pull queue again


def test_adding_subscribers_creates_the_queue(http):
    q = ok(http.post(url("/queues/fresh/subscribers"), headers=AUTH, json={"subscribers": [{"url": A}]}))
    assert q["name"] == "fresh" and q["push_type"] == "multicast"


@pytest.mark.parametrize(
    "doc, status, message",
    [
        ({"subscribers": [{"url": A}], "push_type": "broadcast"}, 400, "push_type must be multicast, unicast or pull"),
        ({"subscribers": [{"url": A}], "retries": 101}, 400, "retries must be between 0 and 100"),
        ({"subscribers": [{"url": A}], "retries": -1}, 400, "retries must be between 0 and 100"),
        ({"subscribers": [{"url": A}], "retries_delay": 2}, 400, "retries_delay must be between 3 and 86400"),
        ({"subscribers": [{"url": A}], "retries_delay": 86401}, 400, "retries_delay must be between 3 and 86400"),
        ({"subscribers": [{}]}, 406, "subscribers[0].url is required"),
        ({"subscribers": [{"url": 7}]}, 400, "subscribers[0].url must be a string"),
        ({"subscribers": "http://a"}, 400, "subscribers must be an array"),
        ({"subscribers": [{"url": "ftp://a.example/x"}]}, 400,
         "subscribers[0].url must be an http(s) URL or ironmq:///queue"),
        ({"subscribers": [{"url": A, "headers": {"X": 1}}]}, 400,
         "subscribers[0].headers must map header names to strings"),
        ({"subscribers": [{"url": "ironmq:///pq"}]}, 400, "a queue cannot be subscribed to itself"),
        ({"subscribers": [{"url": "ironmq://proj@/other"}]}, 400,
         "subscribers[0].url: an ironmq subscriber with a project needs its token"),
        ({"subscribers": [{"url": "ironmq://proj:tok@example.com/other"}]}, 400,
         "subscribers[0].url: ironmq subscribers on another host are not supported"),
        ({"subscribers": [{"url": "ironworker:///worker"}]}, 400,
         "subscribers[0].url: ironworker subscribers are not supported"),
        ({"push_type": "unicast"}, 400, "A push queue needs at least one subscriber"),
        ({"subscribers": [{"url": A}], "error_queue": "pq"}, 400, "a queue cannot be its own error queue"),
        ({"subscribers": [{"url": A}], "error_queue": 5}, 400, "error_queue must be a string"),
        ({"subscribers": [{"url": "ironmq:///l2"}, {"url": "ironmq:///l2"}]}, 400,
         "subscribers[1].url repeats subscribers[0].url"),
        ({"subscribers": [{"url": A}, {"url": A}]}, 400, "subscribers[1].url repeats subscribers[0].url"),
    ],
)
def test_bad_push_settings_are_refused_and_change_nothing(http, doc, status, message):
    assert refused(http.post(url("/queues/pq"), json=doc, headers=AUTH), status) == message
    assert http.get(url("/queues/pq"), headers=AUTH).status_code == 404  # not even created


def test_a_forwarding_loop_is_refused_and_changes_nothing(http):
    update(http, "l2", subscribers=[{"url": "ironmq:///l1"}])
    r = http.post(url("/queues/l1/subscribers"), json={"subscribers": [{"url": "ironmq:///l2"}]}, headers=AUTH)
    assert refused(r) == "subscribers[0].url would send messages round in a loop: l1 → l2 → l1"
    assert http.get(url("/queues/l1"), headers=AUTH).status_code == 404


def test_a_forwarding_subscriber_with_project_and_token_names_a_local_queue(http):
    q = update(http, "pq", subscribers=[{"url": "ironmq://p:t@/target"}, {"url": "ironmq:///my%20queue"}])
    assert q["subscribers"] == [{"url": "ironmq:///target"}, {"url": "ironmq:///my queue"}]


def test_posted_push_messages_have_a_status_per_subscriber_at_once(http):
    update(http, "pq", subscribers=[{"url": A}, {"url": B}], retries=2, retries_delay=30)
    [mid] = ok(http.post(url("/queues/pq/messages"), json={"messages": [{"body": "x"}]}, headers=AUTH))["ids"]
    subs = ok(http.get(url(f"/queues/pq/messages/{mid}/subscribers"), headers=AUTH))["subscribers"]
    assert subs == [
        {"id": mid + "01", "url": A, "status": "queued", "status_code": None, "retries_remaining": 2, "retries_delay": 30},
        {"id": mid + "02", "url": B, "status": "queued", "status_code": None, "retries_remaining": 2, "retries_delay": 30},
    ]
    assert ok(http.get(url(f"/queues/pq/messages/{mid}"), headers=AUTH))["status"] == "queued"
    assert ok(http.get(url("/queues/pq"), headers=AUTH))["size"] == 1
    assert ok(http.get(url("/queues/pq/messages"), headers=AUTH)) == {"messages": []}  # never pulled


def test_a_pull_message_has_no_subscribers_and_a_missing_one_is_404(http):
    [mid] = ok(http.post(url("/queues/pull/messages"), json={"messages": [{"body": "x"}]}, headers=AUTH))["ids"]
    assert ok(http.get(url(f"/queues/pull/messages/{mid}/subscribers"), headers=AUTH)) == {"subscribers": []}
    r = http.get(url("/queues/pull/messages/123456/subscribers"), headers=AUTH)
    assert refused(r, 404) == "Message not found"


def test_acknowledging_needs_the_project_token_or_the_delivery_token(http):
    update(http, "pq", subscribers=[{"url": A}])
    [mid] = ok(http.post(url("/queues/pq/messages"), json={"messages": [{"body": "x"}]}, headers=AUTH))["ids"]
    path = url(f"/queues/pq/messages/{mid}/subscribers/{mid}01")
    assert refused(http.delete(path), 401) == "Invalid project/token combination"
    assert refused(http.delete(path, params={"oauth": "not-the-delivery-token"}), 401) == "Invalid project/token combination"
    assert refused(http.delete(path, headers={"Authorization": "OAuth token-b"}), 401) == "Invalid project/token combination"
    assert ok(http.delete(path, headers=AUTH)) == {"msg": "Deleted"}  # nothing waits: no change
    assert refused(http.delete(url(f"/queues/pq/messages/{mid}/subscribers/99901"), headers=AUTH), 404) == "Message not found"

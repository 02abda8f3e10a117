"""Cloudflare Queues REST API over real HTTP: every endpoint and error, with the v4 envelope
(docs/contracts/cloudflare-queues.md)."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

ACCOUNT, TOKEN = "000000000000000000000001", "token-a"
OTHER_TOKEN = "token-b"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BASE = f"/client/v4/accounts/{ACCOUNT}"
IRON = {"Authorization": f"OAuth {TOKEN}"}
IRON_BASE = f"/1/projects/{ACCOUNT}"


def ok(r: httpx.Response):
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["success"] is True and body["errors"] == [] and body["messages"] == []
    return body["result"]


def fail(r: httpx.Response, status: int, code: int) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["success"] is False and body["result"] is None and body["messages"] == []
    [error] = body["errors"]
    assert error["code"] == code, error
    return error["message"]


def fail_for_good(r: httpx.Response, status: int, code: int) -> str:
    """``fail``, with ``x-should-retry: false``: the SDK must not send the same request again."""
    message = fail(r, status, code)
    assert r.headers["x-should-retry"] == "false"
    return message


def create(http, name="orders", **doc):
    return ok(http.post(f"{BASE}/queues", json={"queue_name": name, **doc}, headers=AUTH))


def push(http, qid, body, **fields):
    return ok(http.post(f"{BASE}/queues/{qid}/messages", json={"body": body, **fields}, headers=AUTH))


def pull(http, qid, **doc):
    return ok(http.post(f"{BASE}/queues/{qid}/messages/pull", json=doc, headers=AUTH))


def ack(http, qid, **doc):
    return ok(http.post(f"{BASE}/queues/{qid}/messages/ack", json=doc, headers=AUTH))


# -- envelope and auth --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers, status",
    [
        ({}, 401),
        ({"Authorization": "Bearer nope"}, 401),
        ({"Authorization": f"OAuth {TOKEN}"}, 401),
        ({"Authorization": f"Bearer {OTHER_TOKEN}"}, 403),  # a valid token of another account
    ],
)
def test_requests_without_a_valid_token_for_the_account_fail(http, headers, status):
    r = http.get(f"{BASE}/queues", headers=headers)
    assert fail_for_good(r, status, 10000) == "Authentication error"


@pytest.mark.parametrize("headers", [{"X-Auth-Key": TOKEN, "X-Auth-Email": "me@example.com"}, {"X-Auth-User-Service-Key": TOKEN}])
def test_the_other_credential_headers_the_sdk_sends_work(http, headers):
    assert ok(http.get(f"{BASE}/queues", headers=headers)) == []


def test_unknown_routes_and_wrong_methods_answer_in_the_envelope(http):
    assert fail(http.get(f"{BASE}/nothing", headers=AUTH), 404, 7003)
    assert fail(http.put(f"{BASE}/queues", headers=AUTH), 405, 7003)


# -- queues -------------------------------------------------------------------------------------


def test_create_queue_returns_the_queue_object(http):
    q = create(http)
    assert set(q) == {"queue_id", "queue_name", "created_on", "modified_on", "producers", "producers_total_count",
                      "consumers", "consumers_total_count", "settings"}
    assert len(q["queue_id"]) == 32 and q["queue_name"] == "orders"
    assert q["created_on"].endswith("Z") and q["consumers"] == [] and q["producers"] == []
    assert q["settings"] == {"delivery_delay": 0, "delivery_paused": False, "message_retention_period": 345600}


def test_create_queue_with_settings_and_jurisdiction(http):
    q = create(http, settings={"delivery_delay": 5, "delivery_paused": True, "message_retention_period": 60}, jurisdiction="eu")
    assert q["settings"] == {"delivery_delay": 5, "delivery_paused": True, "message_retention_period": 60}
    assert q["jurisdiction"] == "eu"


def test_a_taken_queue_name_is_409_without_retry(http):
    create(http)
    r = http.post(f"{BASE}/queues", json={"queue_name": "orders"}, headers=AUTH)
    assert fail_for_good(r, 409, 11009) == "Queue name already taken"


@pytest.mark.parametrize(
    "doc, code",
    [
        ({}, 11003),
        ({"queue_name": ""}, 11003),
        ({"queue_name": 5}, 11003),
        ({"queue_name": "bad\nname"}, 11003),
        ({"queue_name": "q", "settings": {"message_retention_period": 59}}, 100128),
        ({"queue_name": "q", "settings": {"message_retention_period": 1_209_601}}, 100128),
        ({"queue_name": "q", "settings": {"delivery_delay": 86_401}}, 100128),
        ({"queue_name": "q", "settings": {"delivery_paused": "yes"}}, 100128),
        ({"queue_name": "q", "jurisdiction": "mars"}, 100128),
    ],
)
def test_bad_queue_creation_is_400(http, doc, code):
    assert fail(http.post(f"{BASE}/queues", json=doc, headers=AUTH), 400, code)
    assert ok(http.get(f"{BASE}/queues", headers=AUTH)) == []


def test_list_queues_gives_all_without_paging_and_pages_on_request(http):
    for name in ["c", "a", "b"]:
        create(http, name)
    r = http.get(f"{BASE}/queues", headers=AUTH).json()
    assert [q["queue_name"] for q in r["result"]] == ["a", "b", "c"]
    assert r["result_info"]["total_count"] == 3
    paged = http.get(f"{BASE}/queues", params={"page": 2, "per_page": 2}, headers=AUTH).json()
    assert [q["queue_name"] for q in paged["result"]] == ["c"]
    assert paged["result_info"] == {"page": 2, "per_page": 2, "count": 1, "total_count": 3, "total_pages": 2}
    named = http.get(f"{BASE}/queues", params=[("name", "a"), ("name", "c"), ("page", 1)], headers=AUTH).json()
    assert [q["queue_name"] for q in named["result"]] == ["a", "c"] and named["result_info"]["total_count"] == 2


def test_get_unknown_queue_is_404_11000(http):
    assert fail(http.get(f"{BASE}/queues/{'0' * 32}", headers=AUTH), 404, 11000) == "Queue not found"


def test_put_replaces_settings_and_patch_changes_only_what_it_names(http):
    q = create(http, settings={"delivery_delay": 5, "message_retention_period": 600})
    qid = q["queue_id"]
    patched = ok(http.patch(f"{BASE}/queues/{qid}", json={"settings": {"delivery_paused": True}}, headers=AUTH))
    assert patched["settings"] == {"delivery_delay": 5, "delivery_paused": True, "message_retention_period": 600}
    put = ok(http.put(f"{BASE}/queues/{qid}", json={"queue_name": "orders"}, headers=AUTH))
    assert put["settings"] == {"delivery_delay": 0, "delivery_paused": False, "message_retention_period": 345600}
    assert put["queue_id"] == qid


def test_a_queue_cannot_be_renamed(http):
    qid = create(http)["queue_id"]
    assert fail(http.put(f"{BASE}/queues/{qid}", json={"queue_name": "other"}, headers=AUTH), 400, 11003)
    assert fail(http.patch(f"{BASE}/queues/{qid}", json={"queue_name": ""}, headers=AUTH), 400, 11003)


def test_delete_queue(http):
    qid = create(http)["queue_id"]
    assert ok(http.delete(f"{BASE}/queues/{qid}", headers={**AUTH, "Content-Type": "application/json"})) is None
    assert fail(http.get(f"{BASE}/queues/{qid}", headers=AUTH), 404, 11000)
    assert fail(http.delete(f"{BASE}/queues/{qid}", headers=AUTH), 404, 11000)


def test_the_id_of_a_queue_deleted_and_created_again_is_not_found_on_any_route(http):
    old = create(http)["queue_id"]
    push(http, old, "a", content_type="text")  # the server has used this id: it knows its name
    pull(http, old, batch_size=1, visibility_timeout_ms=1000)
    ok(http.delete(f"{BASE}/queues/{old}", headers=AUTH))
    new = create(http)["queue_id"]  # the same name
    one = {"body": "b", "content_type": "text"}
    assert fail(http.post(f"{BASE}/queues/{old}/messages", json=one, headers=AUTH), 404, 11000)
    assert fail(http.post(f"{BASE}/queues/{old}/messages/batch", json={"messages": [one]}, headers=AUTH), 404, 11000)
    assert fail(http.post(f"{BASE}/queues/{old}/messages/pull", json={}, headers=AUTH), 404, 11000)
    assert fail(http.get(f"{BASE}/queues/{old}", headers=AUTH), 404, 11000)
    push(http, new, "c", content_type="text")
    assert [m["body"] for m in pull(http, new, batch_size=5)["messages"]] == ["c"]


def test_metrics(http, server):
    qid = create(http)["queue_id"]
    push(http, qid, "a", content_type="text")
    push(http, qid, "b", content_type="text", delay_seconds=30)
    m = ok(http.get(f"{BASE}/queues/{qid}/metrics", headers=AUTH))
    assert m["backlog_count"] == 2 and m["backlog_bytes"] > 0
    assert m["oldest_message_timestamp_ms"] == server.clock.ms


def test_queues_are_shared_with_ironmq(http):
    http.post(f"{IRON_BASE}/queues/from-iron/messages", json={"messages": [{"body": "x"}]}, headers=IRON)
    [listed] = ok(http.get(f"{BASE}/queues", headers=AUTH))
    assert listed["queue_name"] == "from-iron"
    assert listed["queue_id"].startswith(http.get(f"{IRON_BASE}/queues/from-iron", headers=IRON).json()["id"])
    create(http, "from-cf")
    assert http.get(f"{IRON_BASE}/queues/from-cf", headers=IRON).status_code == 200


# -- consumers ----------------------------------------------------------------------------------


def consumer(http, qid, **doc):
    return http.post(f"{BASE}/queues/{qid}/consumers", json=doc, headers=AUTH)


def test_http_pull_consumer_gets_its_defaults_filled_in(http):
    qid = create(http)["queue_id"]
    c = ok(consumer(http, qid, type="http_pull"))
    assert len(c["consumer_id"]) == 32 and c["type"] == "http_pull" and c["dead_letter_queue"] == ""
    assert c["settings"] == {"batch_size": 5, "max_retries": 3, "retry_delay": 0, "visibility_timeout_ms": 30000}
    assert (c["queue_name"], c["queue_id"]) == ("orders", qid)
    [listed] = ok(http.get(f"{BASE}/queues/{qid}/consumers", headers=AUTH))
    assert listed == c
    assert ok(http.get(f"{BASE}/queues/{qid}/consumers/{c['consumer_id']}", headers=AUTH)) == c
    assert ok(http.get(f"{BASE}/queues/{qid}", headers=AUTH))["consumers"] == [c]


def test_worker_consumers_are_stored_and_returned_faithfully(http):
    qid = create(http)["queue_id"]
    c = ok(consumer(http, qid, type="worker", script_name="my-worker", dead_letter_queue="dead",
                    settings={"batch_size": 50, "max_wait_time_ms": 1000, "max_concurrency": 3}))
    assert (c["script_name"], c["script"], c["dead_letter_queue"]) == ("my-worker", "my-worker", "dead")
    assert c["settings"] == {"batch_size": 50, "max_concurrency": 3, "max_retries": 3, "max_wait_time_ms": 1000, "retry_delay": 0}


def test_a_second_consumer_is_409_11004_without_retry(http):
    qid = create(http)["queue_id"]
    ok(consumer(http, qid, type="http_pull"))
    r = consumer(http, qid, type="http_pull")
    assert fail_for_good(r, 409, 11004) == "workers.api.error.consumer_exists"


@pytest.mark.parametrize(
    "doc, code",
    [
        ({}, 10026),
        ({"type": "cron"}, 10026),
        ({"type": "worker"}, 100127),
        ({"type": "http_pull", "settings": {"batch_size": 101}}, 100127),
        ({"type": "http_pull", "settings": {"max_retries": 101}}, 100127),
        ({"type": "http_pull", "settings": {"visibility_timeout_ms": 43_200_001}}, 100127),
        ({"type": "http_pull", "settings": {"retry_delay": -1}}, 100127),
        ({"type": "http_pull", "dead_letter_queue": "orders"}, 100127),
    ],
)
def test_bad_consumers_are_400(http, doc, code):
    qid = create(http)["queue_id"]
    assert fail(consumer(http, qid, **doc), 400, code)
    assert ok(http.get(f"{BASE}/queues/{qid}/consumers", headers=AUTH)) == []


def test_put_consumer_replaces_it_or_creates_it_and_delete_removes_it(http):
    qid = create(http)["queue_id"]
    cid = "ab" * 16
    created = ok(http.put(f"{BASE}/queues/{qid}/consumers/{cid}", json={"type": "http_pull"}, headers=AUTH))
    assert created["consumer_id"] == cid
    updated = ok(http.put(f"{BASE}/queues/{qid}/consumers/{cid}", json={"type": "http_pull", "settings": {"batch_size": 9}}, headers=AUTH))
    assert updated["settings"]["batch_size"] == 9 and updated["created_on"] == created["created_on"]
    assert ok(http.delete(f"{BASE}/queues/{qid}/consumers/{cid}", headers=AUTH)) is None
    assert fail(http.get(f"{BASE}/queues/{qid}/consumers/{cid}", headers=AUTH), 404, 11002)
    assert fail(http.delete(f"{BASE}/queues/{qid}/consumers/{cid}", headers=AUTH), 404, 11002)


# -- messages -----------------------------------------------------------------------------------


def test_push_answers_backlog_metrics(http, server):
    qid = create(http)["queue_id"]
    result = push(http, qid, {"n": 1})
    assert result == {"metadata": {"metrics": {"backlog_count": 1, "backlog_bytes": result["metadata"]["metrics"]["backlog_bytes"],
                                               "oldest_message_timestamp_ms": server.clock.ms}}}


def test_bodies_round_trip_by_content_type(http):
    qid = create(http)["queue_id"]
    push(http, qid, "plain text", content_type="text")
    push(http, qid, {"a": [1, 2]}, content_type="json")
    push(http, qid, {"default": "json"})
    push(http, qid, base64.b64encode(b"\x00\xffbin").decode(), content_type="bytes")
    got = pull(http, qid, batch_size=10)["messages"]
    assert [m["metadata"]["CF-Content-Type"] for m in got] == ["text", "json", "json", "bytes"]
    assert got[0]["body"] == "plain text"
    assert json.loads(base64.b64decode(got[1]["body"])) == {"a": [1, 2]}
    assert base64.b64decode(got[3]["body"]) == b"\x00\xffbin"
    assert all(m["metadata"]["CF-sourceMessageSource"] == "api" for m in got)


@pytest.mark.parametrize(
    "doc, code",
    [
        ({}, 10207),
        ({"body": 5, "content_type": "text"}, 10207),
        ({"body": "not base64!", "content_type": "bytes"}, 10207),
        ({"body": "x", "content_type": "v8"}, 10203),
        ({"body": "x", "delay_seconds": 86_401}, 10203),
        ({"body": "x" * 128_001, "content_type": "text"}, 10204),
    ],
)
def test_bad_pushes_are_400_and_store_nothing(http, doc, code):
    qid = create(http)["queue_id"]
    assert fail(http.post(f"{BASE}/queues/{qid}/messages", json=doc, headers=AUTH), 400, code)
    assert ok(http.get(f"{BASE}/queues/{qid}/metrics", headers=AUTH))["backlog_count"] == 0


def test_batch_push_is_all_or_nothing(http):
    qid = create(http)["queue_id"]
    bad = {"messages": [{"body": "ok"}, {"body": 1, "content_type": "text"}]}
    assert "messages[1]" in fail(http.post(f"{BASE}/queues/{qid}/messages/batch", json=bad, headers=AUTH), 400, 10207)
    assert ok(http.get(f"{BASE}/queues/{qid}/metrics", headers=AUTH))["backlog_count"] == 0
    fine = {"messages": [{"body": "a", "content_type": "text"}, {"body": "b", "content_type": "text"}]}
    ok(http.post(f"{BASE}/queues/{qid}/messages/batch", json=fine, headers=AUTH))
    assert [m["body"] for m in pull(http, qid, batch_size=10)["messages"]] == ["a", "b"]


@pytest.mark.parametrize(
    "messages, code",
    [([{"body": "x"}] * 101, 10206), ([{"body": "y" * 100_000, "content_type": "text"}] * 3, 10205)],
)
def test_batch_limits(http, messages, code):
    qid = create(http)["queue_id"]
    assert fail(http.post(f"{BASE}/queues/{qid}/messages/batch", json={"messages": messages}, headers=AUTH), 400, code)


def test_delay_precedence_message_over_batch_over_queue(http, server):
    qid = create(http, settings={"delivery_delay": 100})["queue_id"]
    batch = {"delay_seconds": 20, "messages": [{"body": "batch", "content_type": "text"},
                                               {"body": "zero", "content_type": "text", "delay_seconds": 0},
                                               {"body": "own", "content_type": "text", "delay_seconds": 10}]}
    ok(http.post(f"{BASE}/queues/{qid}/messages/batch", json=batch, headers=AUTH))
    push(http, qid, "queue", content_type="text")

    def drain():
        got = pull(http, qid, batch_size=10)["messages"]
        if got:
            ack(http, qid, acks=[{"lease_id": m["lease_id"]} for m in got])
        return [m["body"] for m in got]

    assert drain() == ["zero"]
    server.clock.advance(10)
    assert drain() == ["own"]
    server.clock.advance(10)
    assert drain() == ["batch"]
    server.clock.advance(80)
    assert drain() == ["queue"]


@pytest.mark.parametrize("body", [None, b"", b"{}"])
def test_pull_with_no_settings_uses_the_defaults(http, body):
    qid = create(http)["queue_id"]
    for i in range(7):
        push(http, qid, f"m{i}", content_type="text")
    r = ok(http.post(f"{BASE}/queues/{qid}/messages/pull", content=body, headers=AUTH))
    assert len(r["messages"]) == 5 and r["message_backlog_count"] == 7
    m = r["messages"][0]
    assert set(m) == {"id", "lease_id", "body", "attempts", "timestamp_ms", "metadata"}
    assert m["lease_id"].startswith(m["id"] + ".") and m["attempts"] == 1


def test_pull_honours_the_consumers_settings(http, server):
    qid = create(http)["queue_id"]
    ok(consumer(http, qid, type="http_pull", settings={"batch_size": 2, "visibility_timeout_ms": 1500}))
    for i in range(3):
        push(http, qid, f"m{i}", content_type="text")
    assert len(pull(http, qid)["messages"]) == 2
    server.clock.advance(1.5)
    again = pull(http, qid, batch_size=10)["messages"]
    assert [(m["body"], m["attempts"]) for m in again] == [("m2", 1), ("m0", 2), ("m1", 2)]


def test_visibility_timeout_and_its_old_name(http, server):
    qid = create(http)["queue_id"]
    push(http, qid, "x", content_type="text")
    [first] = pull(http, qid, visibility_timeout=1000)["messages"]  # read as milliseconds
    assert pull(http, qid)["messages"] == []
    server.clock.advance(1)
    [again] = pull(http, qid, visibility_timeout_ms=5000)["messages"]
    assert again["id"] == first["id"] and again["attempts"] == 2 and again["lease_id"] != first["lease_id"]


@pytest.mark.parametrize("doc", [{"batch_size": 0}, {"batch_size": 101}, {"visibility_timeout_ms": 0}, {"batch_size": "x"}, []])
def test_bad_pulls_are_400_10026(http, doc):
    qid = create(http)["queue_id"]
    assert fail(http.post(f"{BASE}/queues/{qid}/messages/pull", json=doc, headers=AUTH), 400, 10026)


def test_pull_of_a_paused_queue_is_409_and_peek_still_works(http):
    qid = create(http, settings={"delivery_paused": True})["queue_id"]
    push(http, qid, "x", content_type="text")
    r = http.post(f"{BASE}/queues/{qid}/messages/pull", json={}, headers=AUTH)
    assert fail_for_good(r, 409, 10252) == "queue_delivery_paused"
    assert [m["body"] for m in ok(http.post(f"{BASE}/queues/{qid}/messages/peek", json={}, headers=AUTH))["messages"]] == ["x"]


def test_ack_and_retry_count_and_warn(http, server):
    qid = create(http)["queue_id"]
    for body in ("a", "b", "c"):
        push(http, qid, body, content_type="text")
    a, b, c = pull(http, qid, batch_size=3)["messages"]
    result = ack(http, qid, acks=[{"lease_id": a["lease_id"]}, {"lease_id": "123.nope"}, {"lease_id": "garbage"}],
                 retries=[{"lease_id": b["lease_id"], "delay_seconds": 30}, {"lease_id": c["id"] + ".stale"}])
    assert (result["ackCount"], result["retryCount"]) == (1, 1)
    assert set(result["warnings"]) == {"123.nope", "garbage", c["id"] + ".stale"}
    assert pull(http, qid)["messages"] == []  # b waits 30 s, c is still leased
    server.clock.advance(30)
    assert [m["body"] for m in pull(http, qid, visibility_timeout_ms=60_000)["messages"]] == ["c", "b"]


def test_an_ack_with_an_expired_lease_still_deletes(http, server):
    qid = create(http)["queue_id"]
    push(http, qid, "x", content_type="text")
    [first] = pull(http, qid, visibility_timeout_ms=1000)["messages"]
    server.clock.advance(1)
    assert ack(http, qid, acks=[{"lease_id": first["lease_id"]}]) == {"ackCount": 1, "retryCount": 0}
    assert pull(http, qid)["messages"] == []


def test_retries_beyond_max_retries_go_to_the_dead_letter_queue(http, server):
    qid = create(http)["queue_id"]
    ok(consumer(http, qid, type="http_pull", dead_letter_queue="orders-dlq", settings={"max_retries": 1, "retry_delay": 0}))
    push(http, qid, {"k": "v"})
    for attempt in (1, 2):
        [m] = pull(http, qid)["messages"]
        assert m["attempts"] == attempt
        ack(http, qid, retries=[{"lease_id": m["lease_id"]}])
    assert pull(http, qid)["messages"] == []
    dlq = [q for q in ok(http.get(f"{BASE}/queues", headers=AUTH)) if q["queue_name"] == "orders-dlq"][0]
    [dead] = pull(http, dlq["queue_id"])["messages"]
    assert json.loads(base64.b64decode(dead["body"])) == {"k": "v"} and dead["attempts"] == 1
    assert dead["metadata"]["CF-Content-Type"] == "json"


def test_a_lapsed_last_delivery_is_dropped_when_there_is_no_dead_letter_queue(http, server):
    qid = create(http)["queue_id"]
    ok(consumer(http, qid, type="http_pull", settings={"max_retries": 0, "visibility_timeout_ms": 1000}))
    push(http, qid, "once", content_type="text")
    assert len(pull(http, qid)["messages"]) == 1
    server.clock.advance(1)
    assert pull(http, qid)["messages"] == []
    assert ok(http.get(f"{BASE}/queues/{qid}/metrics", headers=AUTH))["backlog_count"] == 0


def test_peek_and_purge_by_ref(http):
    qid = create(http)["queue_id"]
    for body in ("a", "b"):
        push(http, qid, body, content_type="text")
    peeked = ok(http.post(f"{BASE}/queues/{qid}/messages/peek", json={"batch_size": 5}, headers=AUTH))["messages"]
    assert [(m["body"], m["ref"] == m["id"]) for m in peeked] == [("a", True), ("b", True)]
    r = ok(http.post(f"{BASE}/queues/{qid}/messages/purge", json={"refs": [{"ref": peeked[0]["ref"]}, {"ref": "404"}]}, headers=AUTH))
    assert r == {"warnings": {"404": "Message not found"}}
    assert [m["body"] for m in pull(http, qid, batch_size=5)["messages"]] == ["b"]
    assert fail(http.post(f"{BASE}/queues/{qid}/messages/purge", json={}, headers=AUTH), 400, 10026)


# -- purge --------------------------------------------------------------------------------------


def test_purge_removes_everything_and_reports_completion(http, server):
    qid = create(http)["queue_id"]
    assert ok(http.get(f"{BASE}/queues/{qid}/purge", headers=AUTH)) == {}
    push(http, qid, "ready", content_type="text")
    push(http, qid, "later", content_type="text", delay_seconds=60)
    push(http, qid, "leased", content_type="text")
    pull(http, qid, batch_size=1)
    assert fail(http.post(f"{BASE}/queues/{qid}/purge", json={}, headers=AUTH), 400, 10026)
    assert fail(http.post(f"{BASE}/queues/{qid}/purge", json={"delete_messages_permanently": False}, headers=AUTH), 400, 10026)
    q = ok(http.post(f"{BASE}/queues/{qid}/purge", json={"delete_messages_permanently": True}, headers=AUTH))
    assert q["queue_id"] == qid
    assert ok(http.get(f"{BASE}/queues/{qid}/metrics", headers=AUTH))["backlog_count"] == 0
    status = ok(http.get(f"{BASE}/queues/{qid}/purge", headers=AUTH))
    assert status["completed"] == "true" and status["complete"] is True and status["started_at"].endswith("Z")


# -- event subscriptions ------------------------------------------------------------------------

SUBS = f"{BASE}/event_subscriptions/subscriptions"


def subscribe(http, source, destination_id, events, name="watch", **more):
    return http.post(SUBS, json={"name": name, "enabled": True, "source": source,
                                 "destination": {"type": "queues.queue", "queue_id": destination_id},
                                 "events": events, **more}, headers=AUTH)


def test_our_queues_events_reach_the_destination_queue(http):
    events_id = create(http, "events")["queue_id"]
    qid = create(http)["queue_id"]
    sub = ok(subscribe(http, {"type": "ferrymq.queue", "queue_name": "orders"}, events_id,
                       ["queue.purged", "ferrymq.queue.message.dead_lettered"]))
    assert len(sub["id"]) == 32 and sub["events"] == ["queue.purged", "ferrymq.queue.message.dead_lettered"]
    ok(http.post(f"{BASE}/queues/{qid}/purge", json={"delete_messages_permanently": True}, headers=AUTH))
    [event] = pull(http, events_id)["messages"]
    doc = json.loads(base64.b64decode(event["body"]))
    assert doc["type"] == "ferrymq.queue.queue.purged" and doc["source"] == {"type": "ferrymq.queue", "queue_name": "orders"}
    assert doc["metadata"]["eventSubscriptionId"] == sub["id"] and doc["metadata"]["accountId"] == ACCOUNT


def test_subscription_crud(http):
    events_id = create(http, "events")["queue_id"]
    sub = ok(subscribe(http, {"type": "kv"}, events_id, ["namespace.created", "cf.kv.namespace.deleted"]))
    assert ok(http.get(f"{SUBS}/{sub['id']}", headers=AUTH)) == sub
    patched = ok(http.patch(f"{SUBS}/{sub['id']}", json={"name": "renamed", "enabled": False}, headers=AUTH))
    assert (patched["name"], patched["enabled"], patched["source"]) == ("renamed", False, {"type": "kv"})
    assert fail(http.patch(f"{SUBS}/{sub['id']}", json={"source": {"type": "r2"}}, headers=AUTH), 400, 10026)
    assert ok(http.delete(f"{SUBS}/{sub['id']}", headers=AUTH))["id"] == sub["id"]
    assert fail(http.get(f"{SUBS}/{sub['id']}", headers=AUTH), 404, 11002)


@pytest.mark.parametrize(
    "source, events, status, code",
    [
        ({"type": "nope"}, ["a.b"], 400, 10026),
        ({"type": "kv"}, [], 400, 10026),
        ({"type": "kv"}, ["not an event"], 400, 10026),
        ({"type": "ferrymq.queue", "queue_name": "orders"}, ["queue.exploded"], 400, 10026),
        ({"type": "ferrymq.queue", "queue_name": "missing"}, ["queue.created"], 404, 11000),
    ],
)
def test_bad_subscriptions(http, source, events, status, code):
    events_id = create(http, "events")["queue_id"]
    create(http)
    assert fail(subscribe(http, source, events_id, events), status, code)


def test_subscription_needs_an_existing_destination_and_one_per_source(http):
    assert fail(subscribe(http, {"type": "kv"}, "f" * 32, ["namespace.created"]), 404, 11000)
    events_id = create(http, "events")["queue_id"]
    ok(subscribe(http, {"type": "kv"}, events_id, ["namespace.created"]))
    assert "Multiple subscriptions" in fail(subscribe(http, {"type": "kv"}, events_id, ["namespace.deleted"]), 405, 10026)


def test_subscriptions_list_pages_and_orders(http):
    events_id = create(http, "events")["queue_id"]
    for name, source in [("b", {"type": "kv"}), ("a", {"type": "r2"}), ("c", {"type": "vectorize"})]:
        ok(subscribe(http, source, events_id, ["x.created"], name=name))
    r = http.get(SUBS, params={"per_page": 2}, headers=AUTH).json()
    assert [s["name"] for s in r["result"]] == ["a", "b"]
    assert r["result_info"] == {"page": 1, "per_page": 2, "count": 2, "total_count": 3, "total_pages": 2}
    assert [s["name"] for s in ok(http.get(SUBS, params={"page": 2, "per_page": 2}, headers=AUTH))] == ["c"]
    assert ok(http.get(SUBS, params={"page": 3, "per_page": 2}, headers=AUTH)) == []
    desc = ok(http.get(SUBS, params={"order": "source", "direction": "desc"}, headers=AUTH))
    assert [s["source"]["type"] for s in desc] == ["vectorize", "r2", "kv"]
    assert fail(http.get(SUBS, params={"order": "color"}, headers=AUTH), 400, 10026)


# -- across contracts ---------------------------------------------------------------------------


def test_posted_through_ironmq_pulled_and_acked_through_cloudflare(http):
    [mid] = http.post(f"{IRON_BASE}/queues/shared/messages", json={"messages": [{"body": "from iron"}]}, headers=IRON).json()["ids"]
    qid = ok(http.get(f"{BASE}/queues", headers=AUTH))[0]["queue_id"]
    [m] = pull(http, qid)["messages"]
    assert (m["id"], m["body"], m["metadata"]["CF-Content-Type"]) == (mid, "from iron", "text")
    assert ack(http, qid, acks=[{"lease_id": m["lease_id"]}])["ackCount"] == 1
    assert http.get(f"{IRON_BASE}/queues/shared", headers=IRON).json()["size"] == 0


def test_pushed_through_cloudflare_reserved_and_deleted_through_ironmq(http):
    qid = create(http, "shared")["queue_id"]
    push(http, qid, "from cf", content_type="text")
    [m] = http.get(f"{IRON_BASE}/queues/shared/messages", headers=IRON).json()["messages"]
    assert m["body"] == "from cf"
    assert http.delete(f"{IRON_BASE}/queues/shared/messages/{m['id']}", headers=IRON).status_code == 200
    assert ok(http.get(f"{BASE}/queues/{qid}/metrics", headers=AUTH))["backlog_count"] == 0

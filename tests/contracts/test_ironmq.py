"""IronMQ v1 over real HTTP: every endpoint, status code and error of the pull-queue contract
(docs/contracts/ironmq-v1.md), with literal requests and exact expected bodies."""

from __future__ import annotations

import json
import socket
import time

import pytest

from ferrymq.engine import Engine

from .iron import AUTH, OTHER_PROJECT, OTHER_TOKEN, PROJECT, TOKEN, err, ok, post_soon

BASE = f"/1/projects/{PROJECT}"


def url(path: str) -> str:
    return BASE + path


def post(http, queue, *bodies, **options):
    doc = {"messages": [{"body": b, **options} for b in bodies]}
    return ok(http.post(url(f"/queues/{queue}/messages"), json=doc, headers=AUTH))["ids"]


def reserve(http, queue, **params):
    return ok(http.get(url(f"/queues/{queue}/messages"), params=params, headers=AUTH))["messages"]


# -- auth ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers, params",
    [
        ({}, {}),
        ({"Authorization": "OAuth wrong"}, {}),
        ({"Authorization": f"Basic {TOKEN}"}, {}),
        ({}, {"oauth": "wrong"}),
        ({"Authorization": f"OAuth {OTHER_TOKEN}"}, {}),  # a valid token of another project
    ],
)
def test_requests_without_a_valid_token_for_the_project_are_401(http, headers, params):
    r = http.get(url("/queues"), headers=headers, params=params)
    assert err(r, 401) == "Invalid project/token combination"


def test_token_in_header_any_case_or_in_query(http):
    assert ok(http.get(url("/queues"), headers={"Authorization": f"oauth {TOKEN}"})) == []
    assert ok(http.get(url("/queues"), params={"oauth": TOKEN})) == []


def test_a_project_never_sees_another_projects_queues(http):
    post(http, "secret", "mine")
    other = {"Authorization": f"OAuth {OTHER_TOKEN}"}
    other_base = f"/1/projects/{OTHER_PROJECT}"
    assert ok(http.get(f"{other_base}/queues", headers=other)) == []
    assert err(http.get(f"{other_base}/queues/secret", headers=other), 404) == "Queue not found"
    assert ok(http.get(f"{other_base}/queues/secret/messages", headers=other)) == {"messages": []}
    assert err(http.get(url("/queues/secret"), headers=other), 401)
    assert [m["body"] for m in reserve(http, "secret")] == ["mine"]


# -- queues -------------------------------------------------------------------------------------


def test_list_queues_is_a_bare_array_in_name_order_with_paging(http):
    for name in ["c", "a", "b"]:
        post(http, name, "x")
    listed = ok(http.get(url("/queues"), headers=AUTH))
    assert [q["name"] for q in listed] == ["a", "b", "c"]
    assert all(set(q) == {"id", "project_id", "name"} and q["project_id"] == PROJECT for q in listed)
    assert all(len(q["id"]) == 24 and int(q["id"], 16) >= 0 for q in listed)
    page = ok(http.get(url("/queues"), params={"page": 1, "per_page": 2}, headers=AUTH))
    assert [q["name"] for q in page] == ["c"]
    assert ok(http.get(url("/queues"), params={"page": 9}, headers=AUTH)) == []


@pytest.mark.parametrize("params", [{"per_page": 101}, {"per_page": -1}, {"page": "x"}, {"page": -1}])
def test_list_queues_rejects_bad_paging(http, params):
    assert err(http.get(url("/queues"), params=params, headers=AUTH), 400)


def test_queue_info(http):
    post(http, "orders", "a", "b")
    post(http, "orders", "c", delay=60)
    reserve(http, "orders")
    info = ok(http.get(url("/queues/orders"), headers=AUTH))
    assert set(info) == {"id", "name", "project_id", "size", "total_messages"}
    assert (info["name"], info["project_id"], info["size"], info["total_messages"]) == ("orders", PROJECT, 3, 3)


def test_info_of_a_missing_queue_is_404(http):
    assert err(http.get(url("/queues/ghost"), headers=AUTH), 404) == "Queue not found"


def test_post_queue_creates_it_with_an_empty_body(http):
    created = ok(http.post(url("/queues/fresh"), headers=AUTH))
    assert (created["name"], created["size"], created["total_messages"]) == ("fresh", 0, 0)
    again = ok(http.post(url("/queues/fresh"), json={"pushType": "x", "oauth": TOKEN}, headers=AUTH))
    assert again["id"] == created["id"]


def test_delete_queue(http):
    post(http, "gone", "x")
    assert ok(http.delete(url("/queues/gone"), headers=AUTH)) == {"msg": "Deleted."}
    assert err(http.get(url("/queues/gone"), headers=AUTH), 404) == "Queue not found"
    assert err(http.delete(url("/queues/gone"), headers=AUTH), 404) == "Queue not found"
    assert ok(http.get(url("/queues"), headers=AUTH)) == []


def test_a_push_queue_whose_error_queue_message_is_over_the_body_limit_is_still_deleted(http, server, redis_client):
    doc = {"subscribers": [{"url": "http://refused.example/"}], "retries": 0, "error_queue": "failed"}
    ok(http.post(url("/queues/pq"), json=doc, headers=AUTH))
    [mid] = post(http, "pq", "x" * 262_144)  # the largest body: its error-queue message is larger
    pq = Engine(redis_client, clock=server.clock).queue(PROJECT, "pq")
    [delivery] = pq.claim_pushes(10, 60).deliveries  # as a pusher would, refused by the subscriber
    pq.report_push(delivery, 503, "503 Service Unavailable")
    [failed] = ok(http.get(url("/queues/failed/messages"), headers=AUTH))["messages"]
    assert json.loads(failed["body"])["source_msg_id"] == mid
    assert ok(http.delete(url("/queues/pq"), headers=AUTH)) == {"msg": "Deleted."}


def test_a_queue_deleted_and_posted_again_gets_a_new_id(http):
    post(http, "phoenix", "x")
    first = ok(http.get(url("/queues/phoenix"), headers=AUTH))["id"]
    http.delete(url("/queues/phoenix"), headers=AUTH)
    post(http, "phoenix", "y")
    assert ok(http.get(url("/queues/phoenix"), headers=AUTH))["id"] != first


@pytest.mark.parametrize("body", [None, b"", b"{}"])
def test_clear_removes_messages_keeps_total_and_accepts_empty_bodies(http, body):
    post(http, "c", "a", "b")
    post(http, "c", "later", delay=60)
    reserve(http, "c")
    headers = {**AUTH, "Content-Type": "application/json"} if body is not None else AUTH
    assert ok(http.post(url("/queues/c/clear"), content=body, headers=headers)) == {"msg": "Cleared"}
    info = ok(http.get(url("/queues/c"), headers=AUTH))
    assert (info["size"], info["total_messages"]) == (0, 3)


def test_clear_of_a_missing_queue_is_ok(http):
    assert ok(http.post(url("/queues/nothing/clear"), headers=AUTH)) == {"msg": "Cleared"}


# -- posting ------------------------------------------------------------------------------------


def test_post_messages_returns_string_ids_in_request_order(http):
    r = ok(http.post(url("/queues/q/messages"), headers=AUTH,
                     json={"messages": [{"body": "one"}, {"body": "two", "timeout": 30, "delay": 0, "expires_in": 86400}]}))
    assert r["msg"] == "Messages put on queue."
    assert len(r["ids"]) == 2 and all(isinstance(i, str) and i.isdigit() for i in r["ids"])
    assert r["ids"] == sorted(r["ids"])
    assert [m["body"] for m in reserve(http, "q", n=2)] == ["one", "two"]


def test_zeros_mean_defaults_and_unknown_keys_are_ignored(http):
    ids = post(http, "q", "x", timeout=0, delay=0, expires_in=0, oauth=TOKEN, extra={"a": 1})
    [m] = reserve(http, "q", timeout=0, wait=0, n=0)
    assert (m["id"], m["timeout"]) == (ids[0], 60)


def test_timeouts_below_30_seconds_are_honoured(http, server):
    post(http, "q", "short", timeout=2)
    [m] = reserve(http, "q")
    assert m["timeout"] == 2
    server.clock.advance(2)
    assert [x["body"] for x in reserve(http, "q")] == ["short"]


@pytest.mark.parametrize(
    "doc, status, words",
    [
        ({}, 406, "messages"),
        ({"messages": []}, 406, "messages"),
        ({"messages": [{"timeout": 30}]}, 406, "messages[0].body"),
        ({"messages": "x"}, 400, "messages"),
        ({"messages": [{"body": 5}]}, 400, "messages[0].body"),
        ({"messages": [{"body": "x", "timeout": 86401}]}, 400, "timeout"),
        ({"messages": [{"body": "x", "timeout": -1}]}, 400, "timeout"),
        ({"messages": [{"body": "x", "delay": 604801}]}, 400, "delay"),
        ({"messages": [{"body": "x", "expires_in": 2592001}]}, 400, "expires_in"),
        ({"messages": [{"body": "x", "delay": "soon"}]}, 400, "delay"),
        ({"messages": [{"body": "x"}] * 101}, 400, "messages"),
        ([1, 2], 400, "object"),
    ],
)
def test_bad_posts_are_refused_and_nothing_is_stored(http, doc, status, words):
    assert words in err(http.post(url("/queues/q/messages"), json=doc, headers=AUTH), status)
    assert err(http.get(url("/queues/q"), headers=AUTH), 404)


def test_malformed_json_is_400(http):
    r = http.post(url("/queues/q/messages"), content=b'{"messages": [', headers=AUTH)
    assert "JSON" in err(r, 400)


def test_a_message_over_256_kb_is_400_and_a_request_over_the_limit_is_413(http):
    big = "x" * (256 * 1024 + 1)
    msg = err(http.post(url("/queues/q/messages"), json={"messages": [{"body": big}]}, headers=AUTH), 400)
    assert "messages[0].body" in msg and "262144" in msg
    huge = {"messages": [{"body": "y" * 200_000}] * 6}  # 1.2 MB > the test server's 1 MB
    assert err(http.post(url("/queues/q/messages"), json=huge, headers=AUTH), 413)


def test_a_batch_names_the_message_whose_body_is_over_256_kb_in_utf8(http):
    at_limit = "é" * (128 * 1024)  # 262,144 bytes in UTF-8
    batch = {"messages": [{"body": "a"}, {"body": at_limit}, {"body": at_limit + "x"}]}
    r = http.post(url("/queues/q/messages"), content=json.dumps(batch, ensure_ascii=False).encode(),
                  headers={**AUTH, "Content-Type": "application/json"})
    assert err(r, 400) == "messages[2].body is 262145 bytes; the limit is 262144"


def test_webhook_stores_the_raw_body_as_one_message(http):
    raw = b'{"event": "push", "ref": "main"}'
    r = ok(http.post(url("/queues/hooks/messages/webhook"), params={"oauth": TOKEN}, content=raw,
                     headers={"Content-Type": "application/x-www-form-urlencoded"}))
    assert r["msg"] == "Messages put on queue." and len(r["ids"]) == 1
    assert [m["body"] for m in reserve(http, "hooks")] == [raw.decode()]
    assert ok(http.get(url("/queues/hooks"), headers=AUTH))["total_messages"] == 1


# -- reserving ----------------------------------------------------------------------------------


def test_get_reserves_in_fifo_order_with_id_body_timeout_and_count(http):
    ids = post(http, "q", "a", "b", "c")
    got = reserve(http, "q", n=2, timeout=120)
    assert got == [
        {"id": ids[0], "body": "a", "timeout": 120, "reserved_count": 1},
        {"id": ids[1], "body": "b", "timeout": 120, "reserved_count": 1},
    ]
    assert [m["id"] for m in reserve(http, "q", n=10)] == [ids[2]]
    assert reserve(http, "q") == []


def test_get_on_a_missing_queue_is_empty_not_404(http):
    assert ok(http.get(url("/queues/never/messages"), headers=AUTH)) == {"messages": []}
    assert ok(http.get(url("/queues"), headers=AUTH)) == []


def test_get_with_delete_true_removes_what_it_returns(http):
    post(http, "q", "a")
    [m] = reserve(http, "q", delete="true")
    assert m["reserved_count"] == 1
    assert ok(http.get(url("/queues/q"), headers=AUTH))["size"] == 0


@pytest.mark.parametrize(
    "params",
    [{"n": 101}, {"n": -1}, {"n": "a"}, {"timeout": 86401}, {"wait": 31}, {"wait": -1}, {"delete": "yes"}],
)
def test_get_rejects_out_of_range_parameters_naming_them(http, params):
    [name] = params
    assert name in err(http.get(url("/queues/q/messages"), params=params, headers=AUTH), 400)


def test_timed_out_messages_return_to_the_end_of_the_queue(http, server):
    post(http, "q", "first", timeout=10)
    post(http, "q", "second")
    reserve(http, "q")
    server.clock.advance(10)
    assert [m["body"] for m in reserve(http, "q", n=5)] == ["second", "first"]


def test_long_poll_returns_as_soon_as_another_client_posts(http, server):
    post_soon(server.url, url("/queues/lp/messages"), "now")
    started = time.monotonic()
    [m] = reserve(http, "lp", wait=5)
    elapsed = time.monotonic() - started
    assert m["body"] == "now"
    assert 0.15 < elapsed < 1.0


def test_long_poll_with_nothing_returns_empty_after_wait(http):
    started = time.monotonic()
    assert reserve(http, "empty", wait=1) == []
    assert 0.9 < time.monotonic() - started < 2.0


def test_a_long_poll_whose_client_went_away_reserves_nothing(http, server):
    host, port = server.url.removeprefix("http://").split(":")
    request = f"GET {url('/queues/gone/messages')}?wait=5 HTTP/1.1\r\nHost: x\r\nAuthorization: OAuth {TOKEN}\r\n\r\n"
    with socket.create_connection((host, int(port))) as client:
        client.sendall(request.encode())
        time.sleep(0.2)  # the long poll waits
    time.sleep(0.2)  # the server sees the client gone
    post(http, "gone", "kept")
    assert [m["body"] for m in reserve(http, "gone")] == ["kept"]


# -- peek, get by id ----------------------------------------------------------------------------


def test_peek_shows_ready_messages_without_reserving(http):
    ids = post(http, "q", "a", "b", "c")
    post(http, "q", "later", delay=60)
    reserve(http, "q")
    peeked = ok(http.get(url("/queues/q/messages/peek"), params={"n": 7}, headers=AUTH))["messages"]
    assert [m["id"] for m in peeked] == ids[1:]
    assert all(set(m) == {"id", "body", "timeout", "reserved_count"} for m in peeked)
    assert ok(http.get(url("/queues/q/messages/peek"), headers=AUTH))["messages"][0]["id"] == ids[1]
    assert ok(http.get(url("/queues/nope/messages/peek"), headers=AUTH)) == {"messages": []}


def test_get_message_by_id_with_status(http):
    queued, reserved = post(http, "q", "a", "b")
    post(http, "q", "c", delay=30)
    http.get(url("/queues/q/messages"), params={"n": 1}, headers=AUTH)  # reserves "a"
    a = ok(http.get(url(f"/queues/q/messages/{queued}"), headers=AUTH))
    b = ok(http.get(url(f"/queues/q/messages/{reserved}"), headers=AUTH))
    assert a == {"id": queued, "body": "a", "timeout": 60, "reserved_count": 1, "status": "reserved"}
    assert b == {"id": reserved, "body": "b", "timeout": 60, "reserved_count": 0, "status": "queued"}


def test_get_unknown_message_is_404(http):
    post(http, "q", "a")
    assert err(http.get(url("/queues/q/messages/1234567890123456789"), headers=AUTH), 404) == "Message not found"


# -- delete, touch, release ---------------------------------------------------------------------


@pytest.mark.parametrize("body", [None, b"{}"])
def test_delete_a_message_reserved_or_not(http, body):
    a, b = post(http, "q", "a", "b")
    reserve(http, "q")  # a is reserved, b is not
    for mid in (a, b):
        assert ok(http.request("DELETE", url(f"/queues/q/messages/{mid}"), content=body, headers=AUTH)) == {"msg": "Deleted"}
    assert ok(http.get(url("/queues/q"), headers=AUTH))["size"] == 0
    assert err(http.delete(url(f"/queues/q/messages/{a}"), headers=AUTH), 404) == "Message not found"


def test_delete_many_is_best_effort(http):
    a, b, c = post(http, "q", "a", "b", "c")
    r = http.request("DELETE", url("/queues/q/messages"), json={"ids": [a, "404404", c]}, headers=AUTH)
    assert ok(r) == {"msg": "Deleted"}
    assert [m["body"] for m in reserve(http, "q", n=5)] == ["b"]


@pytest.mark.parametrize(
    "doc, status", [({}, 406), ({"ids": []}, 406), ({"ids": "a"}, 400), ({"ids": [1]}, 400), ({"ids": ["x"] * 101}, 400)]
)
def test_delete_many_requires_ids(http, doc, status):
    assert err(http.request("DELETE", url("/queues/q/messages"), json=doc, headers=AUTH), status)


@pytest.mark.parametrize("body", [None, b"", b"{}"])
def test_touch_extends_a_reservation(http, server, body):
    post(http, "q", "x", timeout=10)
    [m] = reserve(http, "q")
    server.clock.advance(8)
    headers = {**AUTH, "Content-Type": "application/json"} if body is not None else AUTH
    assert ok(http.post(url(f"/queues/q/messages/{m['id']}/touch"), content=body, headers=headers)) == {"msg": "Touched"}
    server.clock.advance(8)
    assert reserve(http, "q") == []
    server.clock.advance(2)
    assert [x["id"] for x in reserve(http, "q")] == [m["id"]]


def test_touch_of_an_unreserved_message_is_403_and_of_an_unknown_one_404(http):
    [mid] = post(http, "q", "x")
    assert err(http.post(url(f"/queues/q/messages/{mid}/touch"), json={}, headers=AUTH), 403) == "Message not reserved"
    assert err(http.post(url("/queues/q/messages/99/touch"), json={}, headers=AUTH), 404) == "Message not found"


def test_release_puts_a_message_back_at_the_end_or_after_a_delay(http, server):
    a, b = post(http, "q", "a", "b")
    [m] = reserve(http, "q")
    assert ok(http.post(url(f"/queues/q/messages/{a}/release"), json={"delay": 30}, headers=AUTH)) == {"msg": "Released"}
    assert [x["body"] for x in reserve(http, "q", n=5)] == ["b"]
    server.clock.advance(30)
    [again] = reserve(http, "q")
    assert (again["id"], again["reserved_count"]) == (m["id"], 2)


@pytest.mark.parametrize("body", [None, b"", b"{}"])
def test_release_of_an_unreserved_message_is_ok_and_changes_nothing(http, body):
    [mid] = post(http, "q", "x")
    assert ok(http.post(url(f"/queues/q/messages/{mid}/release"), content=body, headers=AUTH)) == {"msg": "Released"}
    assert [m["id"] for m in reserve(http, "q")] == [mid]


def test_release_errors(http):
    [mid] = post(http, "q", "x")
    reserve(http, "q")
    assert "delay" in err(http.post(url(f"/queues/q/messages/{mid}/release"), json={"delay": 604801}, headers=AUTH), 400)
    assert err(http.post(url("/queues/q/messages/77/release"), json={}, headers=AUTH), 404) == "Message not found"


# -- routing ------------------------------------------------------------------------------------


def test_unknown_path_is_404_and_wrong_verb_405_in_json(http):
    assert err(http.get(url("/nothing/here"), headers=AUTH), 404) == "Not found"
    assert err(http.put(url("/queues/q"), headers=AUTH), 405) == "Method not allowed"
    assert err(http.get("/totally/elsewhere"), 404) == "Not found"


def test_trailing_slashes_are_the_same_routes_without_redirects(http):
    post(http, "q", "x")
    r = http.get(url("/queues/q/"), headers=AUTH)
    assert ok(r)["name"] == "q" and not r.history
    assert ok(http.post(url("/queues/q/clear/"), headers=AUTH)) == {"msg": "Cleared"}

"""IronMQ v3 over real HTTP: every endpoint, status code and error of the contract
(docs/contracts/ironmq-v3.md), with literal requests and exact expected bodies. Push delivery
itself (headers, acknowledgements) is in tests/push/test_ironmq3_push.py."""

from __future__ import annotations

import time

import httpx
import pytest

from .iron import AUTH, OTHER_PROJECT, OTHER_TOKEN, PROJECT, TOKEN, err, ok, post_soon

BASE = f"/3/projects/{PROJECT}"
A, B = "http://a.example/hook", "http://b.example/hook"


def url(path: str) -> str:
    return BASE + path


def call(http, method: str, path: str, doc=None, **kwargs) -> httpx.Response:
    return http.request(method, url(path), json=doc, headers=AUTH, **kwargs)


def create(http, queue: str, **fields) -> dict:
    return ok(call(http, "PUT", f"/queues/{queue}", {"queue": fields}))["queue"]


def post(http, queue: str, *bodies: str, **options) -> list[str]:
    doc = {"messages": [{"body": b, **options} for b in bodies]}
    return ok(call(http, "POST", f"/queues/{queue}/messages", doc), 201)["ids"]


def reserve(http, queue: str, **options) -> list[dict]:
    return ok(call(http, "POST", f"/queues/{queue}/reservations", options))["messages"]


def bodies(messages: list[dict]) -> list[str]:
    return [m["body"] for m in messages]


# -- auth and routing ---------------------------------------------------------------------------


@pytest.mark.parametrize("headers, params", [
    ({}, {}),
    ({"Authorization": "OAuth wrong"}, {}),
    ({"Authorization": f"Basic {TOKEN}"}, {}),
    ({"Authorization": f"OAuth {OTHER_TOKEN}"}, {}),  # a valid token of another project
    ({}, {"oauth": "wrong"}),
])
def test_requests_without_a_valid_token_for_the_project_are_401(http, headers, params):
    r = http.get(url("/queues"), headers=headers, params=params)
    assert err(r, 401) == "Invalid project/token combination"


def test_the_token_goes_in_the_header_any_case_or_in_the_query(http):
    assert ok(http.get(url("/queues"), headers={"Authorization": f"oauth {TOKEN}"})) == {"queues": []}
    assert ok(http.get(url("/queues"), params={"oauth": TOKEN})) == {"queues": []}


def test_a_project_never_reaches_another_projects_queues(http):
    post(http, "secret", "mine")
    other = {"Authorization": f"OAuth {OTHER_TOKEN}"}
    other_base = f"/3/projects/{OTHER_PROJECT}"
    assert ok(http.get(f"{other_base}/queues", headers=other)) == {"queues": []}
    assert err(http.get(f"{other_base}/queues/secret", headers=other), 404) == "Queue not found"
    assert bodies(reserve(http, "secret")) == ["mine"]


def test_unknown_path_is_404_and_wrong_verb_405_in_json(http):
    assert err(call(http, "GET", "/nothing/here"), 404) == "Not found"
    assert err(call(http, "POST", "/queues/q"), 405) == "Method not allowed"
    assert ok(call(http, "GET", "/queues/"), 200) == {"queues": []}  # both spellings, no redirect


def test_bad_json_is_400(http):
    r = http.put(url("/queues/q"), content=b"{", headers={**AUTH, "Content-Type": "application/json"})
    assert err(r, 400).startswith("Request body is not valid JSON")
    assert err(call(http, "PUT", "/queues/q", ["x"]), 400) == "Request body must be a JSON object"
    assert err(call(http, "PUT", "/queues/q", {"queue": 7}), 400) == "queue must be a JSON object"


# -- queues -------------------------------------------------------------------------------------


def test_put_creates_a_pull_queue_with_the_defaults(http):
    created = create(http, "orders")
    assert len(created.pop("id")) == 24
    assert created == {"project_id": PROJECT, "name": "orders", "size": 0, "total_messages": 0,
                       "message_timeout": 60, "message_expiration": 604800, "type": "pull"}
    got = ok(call(http, "GET", "/queues/orders"))["queue"]
    assert got == {**created, "id": got["id"]}


def test_put_without_a_queue_object_creates_the_queue(http):
    # The clients send {} (Python) or {"queue": undefined} (Node) when given no options.
    assert ok(call(http, "PUT", "/queues/plain", {}))["queue"]["type"] == "pull"
    assert ok(call(http, "PUT", "/queues/plain2", {"queue": None}))["queue"]["name"] == "plain2"


def test_put_sets_timeout_expiration_and_dead_letter(http, server):
    q = create(http, "q", message_timeout=30, message_expiration=3600, dead_letter={"queue_name": "dlq"})
    assert (q["message_timeout"], q["message_expiration"]) == (30, 3600)
    assert q["dead_letter"] == {"queue_name": "dlq", "max_reservations": 10}
    post(http, "q", "x")
    for _ in range(10):  # each reservation lasts the queue's 30 s
        assert bodies(reserve(http, "q")) == ["x"]
        server.clock.advance(30)
    assert reserve(http, "q") == []
    assert bodies(reserve(http, "dlq")) == ["x"]


def test_message_expiration_applies_to_messages_posted_after_it(http, server):
    create(http, "q", message_expiration=10)
    post(http, "q", "short-lived")
    server.clock.advance(10)
    assert ok(call(http, "GET", "/queues/q"))["queue"]["size"] == 0


def test_put_on_an_existing_queue_changes_only_what_is_given(http):
    create(http, "q", message_timeout=30, message_expiration=3600)
    q = create(http, "q", message_timeout=45)
    assert (q["message_timeout"], q["message_expiration"], q["type"]) == (45, 3600, "pull")


def test_patch_changes_only_what_is_given_and_needs_the_queue(http):
    create(http, "q", message_timeout=30)
    q = ok(call(http, "PATCH", "/queues/q", {"queue": {"message_expiration": 120}}))["queue"]
    assert (q["message_timeout"], q["message_expiration"]) == (30, 120)
    assert ok(call(http, "PATCH", "/queues/q", {}))["queue"]["name"] == "q"
    assert err(call(http, "PATCH", "/queues/missing", {"queue": {"message_timeout": 30}}), 404) == "Queue not found"
    assert err(call(http, "PATCH", "/queues/missing", {}), 404) == "Queue not found"


def test_dead_letter_can_be_changed_and_removed(http):
    create(http, "q", dead_letter={"queue_name": "dlq", "max_reservations": 3})
    q = ok(call(http, "PATCH", "/queues/q", {"queue": {"dead_letter": {"queue_name": "other", "max_reservations": 5}}}))
    assert q["queue"]["dead_letter"] == {"queue_name": "other", "max_reservations": 5}
    q = ok(call(http, "PATCH", "/queues/q", {"queue": {"dead_letter": {"queue_name": ""}}}))
    assert "dead_letter" not in q["queue"]


@pytest.mark.parametrize("fields, status, text", [
    ({"message_timeout": 86401}, 400, "message_timeout must be between 1 and 86400"),
    ({"message_timeout": "x"}, 400, "message_timeout must be an integer between 1 and 86400"),
    ({"message_expiration": 2592001}, 400, "message_expiration must be between 1 and 2592000"),
    ({"type": "broadcast"}, 400, "type must be pull, multicast or unicast"),
    ({"dead_letter": {"max_reservations": 2}}, 406, "dead_letter.queue_name is required"),
    ({"dead_letter": {"queue_name": "d", "max_reservations": 1001}}, 400,
     "dead_letter.max_reservations must be between 1 and 1000"),
    ({"dead_letter": {"queue_name": "q"}}, 400, "a queue cannot be its own dead letter queue"),
    ({"type": "multicast"}, 400, "A push queue needs at least one subscriber"),
    ({"type": "pull", "push": {"subscribers": [{"name": "a", "url": A}]}}, 400, "A pull queue has no push settings"),
    ({"push": {"subscribers": [{"name": "a", "url": A}]}, "dead_letter": {"queue_name": "d"}}, 400,
     "A push queue has no dead_letter: use push.error_queue"),
    ({"push": {"subscribers": [{"name": "a", "url": A}]}, "alerts": [{"type": "fixed", "trigger": 1, "queue": "a"}]},
     400, "Push queues do not support alerts."),
    ({"push": {"subscribers": [{"name": "a", "url": "ftp://x"}]}}, 400,
     "subscribers[0].url must be an http(s) URL or ironmq:///queue"),
    ({"push": {"subscribers": [{"name": "a", "url": A}, {"name": "a", "url": B}]}}, 400,
     "two subscribers have the same name"),
])
def test_bad_queue_settings_are_refused_and_create_nothing(http, fields, status, text):
    assert err(call(http, "PUT", "/queues/q", {"queue": fields}), status) == text
    assert err(call(http, "GET", "/queues/q"), 404) == "Queue not found"


def test_delete_queue(http):
    post(http, "q", "x")
    assert ok(call(http, "DELETE", "/queues/q", {})) == {"msg": "Deleted"}
    assert err(call(http, "DELETE", "/queues/q"), 404) == "Queue not found"
    assert err(call(http, "GET", "/queues/q"), 404) == "Queue not found"


def test_list_in_name_order_after_previous_and_by_prefix(http):
    for name in ["cats", "dogs", "cars", "ca"]:
        create(http, name)

    def names(**params):
        return [q["name"] for q in ok(call(http, "GET", "/queues", params=params))["queues"]]

    assert names() == ["ca", "cars", "cats", "dogs"]
    assert names(per_page=2) == ["ca", "cars"]
    assert names(per_page=2, previous="cars") == ["cats", "dogs"]
    assert names(previous="cb") == ["dogs"]  # a name no queue has
    assert names(prefix="ca", previous="ca") == ["cars", "cats"]
    assert names(per_page=0, prefix="d") == ["dogs"]  # zero means the default
    assert err(call(http, "GET", "/queues", params={"per_page": 101}), 400) == "per_page must be between 1 and 100"


# -- messages -----------------------------------------------------------------------------------


def test_post_answers_201_with_the_ids_in_order_and_creates_the_queue(http):
    r = call(http, "POST", "/queues/new/messages", {"messages": [{"body": "a"}, {"body": "b", "delay": 0}]})
    posted = ok(r, 201)
    assert posted["msg"] == "Messages put on queue." and len(posted["ids"]) == 2
    assert all(i.isdigit() for i in posted["ids"]) and posted["ids"] == sorted(posted["ids"])
    q = ok(call(http, "GET", "/queues/new"))["queue"]
    assert (q["size"], q["total_messages"], q["type"]) == (2, 2, "pull")


def test_a_message_timeout_or_expiration_in_a_post_is_ignored(http, server):
    post(http, "q", "x", timeout=5, expires_in=5)  # v3 keeps both on the queue
    [m] = reserve(http, "q")
    server.clock.advance(5)
    assert reserve(http, "q") == []  # still reserved: the queue's 60 s, not 5


def test_a_delay_hides_a_message_until_due(http, server):
    post(http, "q", "later", delay=10)
    post(http, "q", "now")
    assert bodies(reserve(http, "q", n=10)) == ["now"]
    server.clock.advance(10)
    assert bodies(reserve(http, "q", n=10)) == ["later"]


@pytest.mark.parametrize("doc, status, text", [
    ({}, 406, "messages is required"),
    ({"messages": []}, 406, "messages is required"),
    ({"messages": "x"}, 400, "messages must be an array"),
    ({"messages": [{"body": "x"}] * 101}, 400, "messages must hold at most 100 messages"),
    ({"messages": [{"delay": 1}]}, 406, "messages[0].body is required"),
    ({"messages": [{"body": 7}]}, 400, "messages[0].body must be a string"),
    ({"messages": [{"body": "x", "delay": 604801}]}, 400, "messages[0].delay must be between 0 and 604800"),
    ({"messages": [{"body": "x", "push_headers": {"X-A": "1"}}]}, 400,
     "messages[0].push_headers are not supported: set headers on the subscribers"),
])
def test_bad_posts_are_refused_and_store_nothing(http, doc, status, text):
    assert err(call(http, "POST", "/queues/q/messages", doc), status) == text
    assert err(call(http, "GET", "/queues/q"), 404) == "Queue not found"


def test_webhook_posts_the_raw_body(http):
    r = http.post(url("/queues/hooks/webhook"), content=b'{"event": "x"}', params={"oauth": TOKEN},
                  headers={"Content-Type": "text/plain"})
    [mid] = ok(r, 201)["ids"]
    assert ok(call(http, "GET", f"/queues/hooks/messages/{mid}"))["message"]["body"] == '{"event": "x"}'


def test_reserve_answers_ids_bodies_counts_and_reservation_ids(http):
    ids = post(http, "q", "a", "b", "c")
    [first] = reserve(http, "q")
    assert set(first) == {"id", "body", "reserved_count", "reservation_id"}
    assert (first["id"], first["body"], first["reserved_count"]) == (ids[0], "a", 1)
    batch = reserve(http, "q", n=5)
    assert bodies(batch) == ["b", "c"] and len({m["reservation_id"] for m in batch}) == 1
    assert reserve(http, "q", n=5) == []


def test_reserve_timeout_and_zeros_mean_defaults(http, server):
    post(http, "q", "x")
    reserve(http, "q", n=0, timeout=10, wait=0, delete=False)
    server.clock.advance(10)
    [again] = reserve(http, "q", timeout=0)
    assert again["reserved_count"] == 2
    server.clock.advance(59)
    assert reserve(http, "q") == []  # the queue's 60 s
    server.clock.advance(1)
    assert bodies(reserve(http, "q")) == ["x"]


def test_reserve_with_delete_takes_messages_for_good(http):
    post(http, "q", "a", "b")
    assert bodies(reserve(http, "q", n=2, delete=True)) == ["a", "b"]
    assert ok(call(http, "GET", "/queues/q"))["queue"]["size"] == 0


def test_reserve_long_polls_until_a_post(http, server):
    create(http, "lp")
    post_soon(server.url, url("/queues/lp/messages"), "now")
    started = time.monotonic()
    assert bodies(reserve(http, "lp", wait=5)) == ["now"]
    assert 0.15 < time.monotonic() - started < 1.0


@pytest.mark.parametrize("doc, text", [
    ({"n": 101}, "n must be between 1 and 100"),
    ({"n": "a"}, "n must be an integer between 1 and 100"),
    ({"timeout": 86401}, "timeout must be between 1 and 86400"),
    ({"wait": 31}, "wait must be between 0 and 30"),
    ({"delete": "yes"}, "delete must be true or false"),
])
def test_bad_reservations_are_400(http, doc, text):
    post(http, "q", "x")
    assert err(call(http, "POST", "/queues/q/reservations", doc), 400) == text


def test_a_missing_queue_is_not_found_except_where_queues_are_created(http):
    for method, path, doc in [
        ("POST", "/queues/nope/reservations", {}), ("GET", "/queues/nope/messages", None),
        ("GET", "/queues/nope/messages/1234567890123456789", None), ("DELETE", "/queues/nope/messages", {}),
        ("POST", "/queues/nope/subscribers", {"subscribers": [{"name": "a", "url": A}]}),
        ("POST", "/queues/nope/alerts", {"alerts": [{"type": "fixed", "trigger": 1, "queue": "a"}]}),
        ("PUT", "/queues/nope/alerts", {"alerts": []}), ("DELETE", "/queues/nope/alerts", {"alerts": [{"id": "x"}]}),
    ]:
        assert err(call(http, method, path, doc), 404) == "Queue not found", (method, path)
    assert ok(call(http, "GET", "/queues")) == {"queues": []}


def test_peek_shows_the_next_ready_messages_without_reserving(http):
    post(http, "q", "a", "b", "c")
    reserve(http, "q")
    peeked = ok(call(http, "GET", "/queues/q/messages", params={"n": 5}))["messages"]
    assert bodies(peeked) == ["b", "c"] and set(peeked[0]) == {"id", "body", "reserved_count"}
    assert bodies(ok(call(http, "GET", "/queues/q/messages"))["messages"]) == ["b"]
    assert err(call(http, "GET", "/queues/q/messages", params={"n": 101}), 400) == "n must be between 1 and 100"


def test_get_by_id_wraps_the_message_and_never_shows_its_reservation(http):
    [mid] = post(http, "q", "x")
    reserve(http, "q")
    got = ok(call(http, "GET", f"/queues/q/messages/{mid}"))
    assert got == {"message": {"id": mid, "body": "x", "reserved_count": 1}}
    assert err(call(http, "GET", "/queues/q/messages/1234567890123456789"), 404) == "Message not found"


def test_delete_under_the_current_reservation_only(http, server):
    [mid] = post(http, "q", "x")
    [m] = reserve(http, "q", timeout=10)
    server.clock.advance(10)
    [again] = reserve(http, "q")
    stale = call(http, "DELETE", f"/queues/q/messages/{mid}", {"reservation_id": m["reservation_id"]})
    assert err(stale, 403) == "Reservation timed out"
    assert ok(call(http, "DELETE", f"/queues/q/messages/{mid}", {"reservation_id": again["reservation_id"]})) == {
        "msg": "Deleted"}
    assert err(call(http, "DELETE", f"/queues/q/messages/{mid}", {}), 404) == "Message not found"


def test_a_message_that_is_not_reserved_is_deleted_without_a_reservation_id(http):
    [mid] = post(http, "q", "x")
    assert ok(http.delete(url(f"/queues/q/messages/{mid}"), headers=AUTH)) == {"msg": "Deleted"}
    assert ok(call(http, "GET", "/queues/q"))["queue"]["size"] == 0


def test_batch_delete_with_reservation_ids_or_plain_ids(http):
    ids = post(http, "q", "a", "b", "c")
    taken = reserve(http, "q", n=2)
    refs = [{"id": m["id"], "reservation_id": m["reservation_id"]} for m in taken]
    assert ok(call(http, "DELETE", "/queues/q/messages", {"ids": refs})) == {"msg": "Deleted"}
    assert ok(call(http, "DELETE", "/queues/q/messages", {"ids": [{"id": ids[2]}]})) == {"msg": "Deleted"}
    assert ok(call(http, "GET", "/queues/q"))["queue"]["size"] == 0


def test_batch_delete_reports_stale_reservations_and_unknown_ids(http, server):
    ids = post(http, "q", "a", "b")
    [m] = reserve(http, "q", timeout=5)
    server.clock.advance(5)
    reserve(http, "q")
    stale = {"ids": [{"id": m["id"], "reservation_id": m["reservation_id"]}, {"id": ids[1]}]}
    assert err(call(http, "DELETE", "/queues/q/messages", stale), 403) == "Reservation timed out"
    assert ok(call(http, "GET", "/queues/q"))["queue"]["size"] == 1  # the other one was deleted
    assert err(call(http, "DELETE", "/queues/q/messages", {"ids": ["1234567890123456789"]}), 404) == "Message not found"


@pytest.mark.parametrize("doc, status, text", [
    ({"ids": []}, 406, "ids is required"),
    ({"ids": "x"}, 400, "ids must be an array"),
    ({"ids": [{"id": "1"}] * 101}, 400, "ids must hold at most 100 ids"),
    ({"ids": [{"reservation_id": "r"}]}, 406, "id is required"),
    ({"ids": [7]}, 400, "ids[0] must be a JSON object"),
])
def test_bad_batch_deletes_are_refused_and_never_clear(http, doc, status, text):
    post(http, "q", "x")
    assert err(call(http, "DELETE", "/queues/q/messages", doc), status) == text
    assert ok(call(http, "GET", "/queues/q"))["queue"]["size"] == 1


def test_delete_messages_without_ids_clears_the_queue(http):
    post(http, "q", "a", "b")
    reserve(http, "q")
    assert ok(call(http, "DELETE", "/queues/q/messages", {})) == {"msg": "Cleared"}
    q = ok(call(http, "GET", "/queues/q"))["queue"]
    assert (q["size"], q["total_messages"]) == (0, 2)


def test_touch_answers_a_new_reservation_id_and_the_old_one_is_stale(http, server):
    [mid] = post(http, "q", "x")
    [m] = reserve(http, "q", timeout=10)
    server.clock.advance(8)
    touched = ok(call(http, "POST", f"/queues/q/messages/{mid}/touch", {"reservation_id": m["reservation_id"]}))
    assert touched["msg"] == "Touched" and touched["reservation_id"] != m["reservation_id"]
    server.clock.advance(8)  # past the first deadline: only the touch keeps it
    assert reserve(http, "q") == []
    old = call(http, "POST", f"/queues/q/messages/{mid}/touch", {"reservation_id": m["reservation_id"]})
    assert err(old, 403) == "Reservation timed out"
    longer = ok(call(http, "POST", f"/queues/q/messages/{mid}/touch",
                     {"reservation_id": touched["reservation_id"], "timeout": 100}))
    server.clock.advance(99)
    assert reserve(http, "q") == []
    assert ok(call(http, "DELETE", f"/queues/q/messages/{mid}", {"reservation_id": longer["reservation_id"]}))


def test_touch_and_release_need_a_reservation_id_and_a_message(http):
    [mid] = post(http, "q", "x")
    for action in ("touch", "release"):
        assert err(call(http, "POST", f"/queues/q/messages/{mid}/{action}", {}), 406) == "reservation_id is required"
        not_reserved = call(http, "POST", f"/queues/q/messages/{mid}/{action}", {"reservation_id": "r"})
        assert err(not_reserved, 403) == "Reservation timed out"
        missing = call(http, "POST", f"/queues/q/messages/1234567890123456789/{action}", {"reservation_id": "r"})
        assert err(missing, 404) == "Message not found"


def test_released_and_timed_out_messages_go_to_the_front(http, server):
    post(http, "q", "a", "b", "c")
    [a] = reserve(http, "q")
    assert ok(call(http, "POST", f"/queues/q/messages/{a['id']}/release", {"reservation_id": a["reservation_id"]})) == {
        "msg": "Released"}
    [again] = reserve(http, "q", timeout=5)
    assert (again["body"], again["reserved_count"]) == ("a", 2)
    server.clock.advance(5)
    assert bodies(reserve(http, "q", n=3)) == ["a", "b", "c"]


def test_a_release_with_a_delay_comes_back_at_the_front_when_due(http, server):
    post(http, "q", "a", "b")
    [a] = reserve(http, "q")
    call(http, "POST", f"/queues/q/messages/{a['id']}/release", {"reservation_id": a["reservation_id"], "delay": 10})
    assert bodies(ok(call(http, "GET", "/queues/q/messages", params={"n": 2}))["messages"]) == ["b"]
    server.clock.advance(10)
    assert bodies(reserve(http, "q", n=2)) == ["a", "b"]


def test_a_queue_created_through_v1_keeps_requeueing_at_the_end(http):
    http.post(f"/1/projects/{PROJECT}/queues/v1q/messages", json={"messages": [{"body": "a"}, {"body": "b"}]},
              headers=AUTH)
    [a] = reserve(http, "v1q")
    call(http, "POST", f"/queues/v1q/messages/{a['id']}/release", {"reservation_id": a["reservation_id"]})
    assert bodies(reserve(http, "v1q", n=2)) == ["b", "a"]


# -- push queues --------------------------------------------------------------------------------


def push_queue(http, name="pq", **push) -> dict:
    subscribers = [{"name": "first", "url": A, "headers": {"Content-Type": "application/json"}}, {"name": "second", "url": A}]
    return create(http, name, type="unicast", push={"subscribers": subscribers, **push})


def test_push_queues_are_created_with_named_subscribers(http):
    q = push_queue(http, retries=5, retries_delay=10, error_queue="errors")
    assert q["type"] == "unicast"
    assert q["push"] == {"subscribers": [{"name": "first", "url": A, "headers": {"Content-Type": "application/json"}},
                                         {"name": "second", "url": A}],
                         "retries": 5, "retries_delay": 10, "error_queue": "errors"}
    assert create(http, "mq", push={"subscribers": [{"name": "a", "url": A}]})["type"] == "multicast"
    defaults = create(http, "dq", push={"subscribers": [{"name": "a", "url": A}]})["push"]
    assert (defaults["retries"], defaults["retries_delay"], "error_queue" in defaults) == (3, 60, False)


def test_a_queues_type_never_changes(http):
    push_queue(http)
    create(http, "pull")
    assert err(call(http, "PATCH", "/queues/pq", {"queue": {"type": "pull"}}), 400) == (
        "The queue is a unicast queue: a queue's type never changes")
    assert err(call(http, "PUT", "/queues/pull", {"queue": {"type": "multicast"}}), 400) == (
        "The queue is a pull queue: a queue's type never changes")
    patch = {"queue": {"push": {"subscribers": [{"name": "a", "url": A}]}}}
    assert err(call(http, "PATCH", "/queues/pull", patch), 400) == (
        "A pull queue has no push settings (a queue's type never changes)")
    assert ok(call(http, "PATCH", "/queues/pq", {"queue": {"type": "unicast"}}))["queue"]["type"] == "unicast"


def test_patching_push_settings_keeps_what_is_not_given(http):
    push_queue(http, retries=5)
    q = ok(call(http, "PATCH", "/queues/pq", {"queue": {"push": {"retries_delay": 30, "error_queue": "e"}}}))["queue"]
    assert (q["push"]["retries"], q["push"]["retries_delay"], q["push"]["error_queue"]) == (5, 30, "e")
    assert [s["name"] for s in q["push"]["subscribers"]] == ["first", "second"]
    q = ok(call(http, "PATCH", "/queues/pq", {"queue": {"push": {"subscribers": [{"name": "only", "url": B}]}}}))
    assert q["queue"]["push"]["subscribers"] == [{"name": "only", "url": B}]


def test_subscribers_are_added_replaced_and_removed_by_name(http):
    push_queue(http)
    added = call(http, "POST", "/queues/pq/subscribers", {"subscribers": [{"name": "third", "url": B},
                                                                          {"name": "first", "url": B}]})
    assert ok(added) == {"msg": "Updated"}
    subs = ok(call(http, "GET", "/queues/pq"))["queue"]["push"]["subscribers"]
    assert [(s["name"], s["url"]) for s in subs] == [("first", B), ("second", A), ("third", B)]
    removed = call(http, "DELETE", "/queues/pq/subscribers", {"subscribers": [{"name": "first"}, {"name": "third"}]})
    assert ok(removed) == {"msg": "Updated"}
    assert [s["name"] for s in ok(call(http, "GET", "/queues/pq"))["queue"]["push"]["subscribers"]] == ["second"]
    assert ok(call(http, "PUT", "/queues/pq/subscribers", {"subscribers": [{"name": "new", "url": B}]})) == {
        "msg": "Updated"}
    q = ok(call(http, "GET", "/queues/pq"))["queue"]
    assert (q["type"], q["push"]["subscribers"]) == ("unicast", [{"name": "new", "url": B}])


def test_subscriber_changes_keep_the_queues_type(http):
    push_queue(http)
    create(http, "pull")
    last = call(http, "DELETE", "/queues/pq/subscribers", {"subscribers": [{"name": "first"}, {"name": "second"}]})
    assert err(last, 400) == "A push queue keeps at least one subscriber (its type is fixed)."
    for method in ("POST", "PUT", "DELETE"):
        r = call(http, method, "/queues/pull/subscribers", {"subscribers": [{"name": "a", "url": A}]})
        assert err(r, 400) == "A pull queue has no subscribers (its type is fixed).", method
    assert err(call(http, "POST", "/queues/pq/subscribers", {}), 406) == "subscribers is required"
    assert err(call(http, "DELETE", "/queues/pq/subscribers", {"subscribers": [{}]}), 406) == (
        "subscribers[0].name is required")


def test_push_statuses_name_each_subscriber(http):
    push_queue(http)
    [mid] = post(http, "pq", "pushed")
    statuses = ok(call(http, "GET", f"/queues/pq/messages/{mid}/subscribers"))["subscribers"]
    assert statuses == [
        {"name": "first", "url": A, "status": "queued", "status_code": None, "retries_remaining": 3, "retries_delay": 60},
        {"name": "second", "url": A, "status": "queued", "status_code": None, "retries_remaining": 3,
         "retries_delay": 60}]
    [pulled] = post(http, "plain", "x")
    assert ok(call(http, "GET", f"/queues/plain/messages/{pulled}/subscribers")) == {"subscribers": []}
    assert err(call(http, "GET", "/queues/pq/messages/1234567890123456789/subscribers"), 404) == "Message not found"


def test_acknowledging_a_push_needs_the_deliverys_reservation_id(http):
    push_queue(http)
    [mid] = post(http, "pq", "pushed")
    no_rid = call(http, "DELETE", f"/queues/pq/messages/{mid}", {"subscriber_name": "first"})
    assert err(no_rid, 406) == "reservation_id is required to acknowledge a push"
    wrong = call(http, "DELETE", f"/queues/pq/messages/{mid}", {"subscriber_name": "first", "reservation_id": "0ab01"})
    assert err(wrong, 404) == "Message not found"


# -- alerts -------------------------------------------------------------------------------------


def test_alerts_are_added_by_patch_or_post_and_replaced_by_put(http):
    create(http, "watched")
    fixed = {"type": "fixed", "trigger": 5, "queue": "alerts"}
    q = ok(call(http, "PATCH", "/queues/watched", {"queue": {"alerts": [fixed]}}))["queue"]
    assert [(a["type"], a["trigger"], a["direction"], a["snooze"]) for a in q["alerts"]] == [("fixed", 5, "asc", 0)]
    progressive = {"type": "progressive", "trigger": 10, "queue": "alerts", "direction": "desc"}
    assert ok(call(http, "POST", "/queues/watched/alerts", {"alerts": [progressive]})) == {"msg": "Updated"}
    assert len(ok(call(http, "GET", "/queues/watched"))["queue"]["alerts"]) == 2
    q = ok(call(http, "PUT", "/queues/watched", {"queue": {"alerts": [fixed | {"trigger": 7}]}}))["queue"]
    assert [a["trigger"] for a in q["alerts"]] == [7]
    assert ok(call(http, "PUT", "/queues/watched/alerts", {"alerts": []})) == {"msg": "Updated"}
    assert "alerts" not in ok(call(http, "GET", "/queues/watched"))["queue"]


def test_alerts_fire_into_their_queue(http):
    create(http, "watched", alerts=[{"type": "fixed", "trigger": 2, "queue": "alerts"}])
    post(http, "watched", "a", "b")
    [alert] = reserve(http, "alerts")
    assert '"queue_size":2' in alert["body"] and '"source_queue":"watched"' in alert["body"]


def test_alerts_are_removed_by_id_in_every_shape_the_clients_send(http):
    alerts = [{"type": "fixed", "trigger": n, "queue": "alerts"} for n in (1, 2, 3, 4)]
    ids = [a["id"] for a in create(http, "w", alerts=alerts)["alerts"]]
    assert ok(call(http, "DELETE", "/queues/w/alerts", {"alerts": [{"id": ids[0]}]})) == {"msg": "Deleted"}
    assert ok(call(http, "DELETE", "/queues/w/alerts", {"queue": {"alerts": [{"id": ids[1]}, ids[2]]}})) == {
        "msg": "Deleted"}
    assert ok(call(http, "DELETE", f"/queues/w/alerts/{ids[3]}")) == {"msg": "Deleted"}
    assert "alerts" not in ok(call(http, "GET", "/queues/w"))["queue"]
    assert err(call(http, "DELETE", f"/queues/w/alerts/{ids[3]}"), 404) == "Alert not found"


def test_push_queues_do_not_support_alerts(http):
    push_queue(http)
    alert = {"type": "fixed", "trigger": 1, "queue": "alerts"}
    assert err(call(http, "POST", "/queues/pq/alerts", {"alerts": [alert]}), 400) == "Push queues do not support alerts."
    assert err(call(http, "PATCH", "/queues/pq", {"queue": {"alerts": [alert]}}), 400) == (
        "Push queues do not support alerts.")
    assert err(call(http, "POST", "/queues/pq/alerts", {"alerts": [{"type": "fixed"}]}), 400) == (
        "alerts[0].trigger is required")

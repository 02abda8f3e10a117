"""ElasticQueue (JSON:API) over real HTTP: the producer endpoints of the spec, the consumer extension
of the notes (§5), media types, auth and error objects (docs/contracts/elasticqueue.md), with
literal requests and exact expected bodies."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
import redis

TOKEN, OTHER_TOKEN = "token-a", "token-b"
JSONAPI = "application/vnd.api+json"
HEADERS = {"Authorization": TOKEN, "Content-Type": JSONAPI, "Accept": JSONAPI}
DAY_MS = 86_400_000


def send(http, method, path, doc=None, *, headers=None, raw=None, **kwargs) -> httpx.Response:
    content = raw if raw is not None else None if doc is None else json.dumps(doc)
    return http.request(method, path, content=content, headers=headers or HEADERS, **kwargs)


def ok(response: httpx.Response, status: int = 200) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == JSONAPI
    return response.json()


def errors(response: httpx.Response, status: int) -> list[dict]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == JSONAPI
    body = response.json()
    assert set(body) == {"errors"}
    for error in body["errors"]:  # status is a string in JSON:API error objects
        assert isinstance(error["status"], str) and {"status", "code", "title", "detail"} <= set(error)
    return body["errors"]


def where(response: httpx.Response, status: int) -> list[tuple[str, str, str | None]]:
    """(status, code, pointer) of every error object, in order."""
    return [(e["status"], e["code"], e.get("source", {}).get("pointer")) for e in errors(response, status)]


def message(body="hello", **attributes) -> dict:
    return {"type": "message", "attributes": {"body": body, **attributes}}


def enqueue(http, queue, body="hello", **attributes) -> str:
    r = send(http, "POST", f"/v1/queues/{queue}/messages", {"data": message(body, **attributes)})
    return ok(r, 202)["data"]["id"]


def reserve(http, queue, **attributes) -> list[dict]:
    doc = {"data": {"type": "reservation", "attributes": attributes}}
    return ok(send(http, "POST", f"/v1/queues/{queue}/reservations", doc))["data"]


def read(http, queue, message_id) -> dict:
    return ok(send(http, "GET", f"/v1/queues/{queue}/messages/{message_id}"))["data"]["attributes"]


def read_queue(http, queue) -> dict:
    return ok(send(http, "GET", f"/v1/queues/{queue}"))["data"]["attributes"]


def size(http, queue) -> int:
    return read_queue(http, queue)["size"]


def patch(http, queue, message_id, rid, **attributes) -> httpx.Response:
    doc = {"data": {"type": "message", "id": message_id, "attributes": attributes}}
    return send(http, "PATCH", f"/v1/queues/{queue}/messages/{message_id}", doc, params={"reservation-id": rid})


# -- producing ----------------------------------------------------------------------------------


def test_enqueue_is_202_with_the_message_resource_and_its_link(http, server):
    r = send(http, "POST", "/v1/queues/my-queue/messages",
             {"data": {"type": "message", "attributes": {"body": "body-of-message-1"}}})
    doc = ok(r, 202)
    message_id = doc["data"]["id"]
    assert message_id.isdigit()
    assert doc == {"data": {"type": "message", "id": message_id,
                            "links": {"self": f"{server.url}/v1/queues/my-queue/messages/{message_id}"}}}
    assert "authorization" not in r.headers  # the spec's sample echoes it: we never do


def test_links_self_resolves_through_get(http):
    [a, b] = ok(send(http, "POST", "/v1/queues/q/messages/_bulk", {"data": [message("a"), message("b")]}), 202)["data"]
    got = ok(http.get(b["links"]["self"], headers=HEADERS))
    assert got == {"data": {"type": "message", "id": b["id"],
                            "attributes": {"body": "b", "wait-until": 0, "reserved-count": 0, "state": "ready"},
                            "links": {"self": b["links"]["self"]}}}
    assert ok(http.get(a["links"]["self"], headers=HEADERS))["data"]["attributes"]["body"] == "a"


def test_links_quote_the_queue_name(http, server):
    link = ok(send(http, "POST", "/v1/queues/a%20b/messages", {"data": message()}), 202)["data"]["links"]["self"]
    assert link.startswith(f"{server.url}/v1/queues/a%20b/messages/")
    assert ok(http.get(link, headers=HEADERS))["data"]["attributes"]["body"] == "hello"


def test_bulk_enqueues_in_order_one_resource_per_message(http, server):
    bodies = ["one", "two", "three"]
    doc = ok(send(http, "POST", "/v1/queues/q/messages/_bulk", {"data": [message(b) for b in bodies]}), 202)
    ids = [resource["id"] for resource in doc["data"]]
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert doc["data"] == [
        {"type": "message", "id": i, "links": {"self": f"{server.url}/v1/queues/q/messages/{i}"}} for i in ids
    ]
    assert [(m["id"], m["attributes"]["body"]) for m in reserve(http, "q", count=10)] == list(zip(ids, bodies))


def test_a_bulk_is_stored_by_one_script_call(http, redis_url):
    enqueue(http, "q", "creates the queue")  # creating and registering a queue are calls of their own
    with redis.Redis.from_url(redis_url) as client:
        client.config_resetstat()
        ok(send(http, "POST", "/v1/queues/q/messages/_bulk", {"data": [message(str(n)) for n in range(10)]}), 202)
        stats = client.info("commandstats")
    assert sum(stats.get(f"cmdstat_{name}", {}).get("calls", 0) for name in ("fcall", "evalsha", "eval")) == 1
    assert size(http, "q") == 11


def test_a_bulk_with_bad_members_enqueues_nothing_and_points_at_every_one(http):
    members = [
        message("fine"),
        {"type": "message", "attributes": {"wait-until": 5}},  # no body
        message("x", **{"wait-until": "soon"}),
        {"type": "messages", "attributes": {"body": 7}},  # wrong type and a body that is no string
        message("fine too"),
    ]
    r = send(http, "POST", "/v1/queues/q/messages/_bulk", {"data": members})
    assert where(r, 400) == [  # 422s and a 409 together: the most general status
        ("422", "invalid_attribute", "/data/1/attributes/body"),
        ("422", "invalid_attribute", "/data/2/attributes/wait-until"),
        ("409", "type_conflict", "/data/3/type"),
        ("422", "invalid_attribute", "/data/3/attributes/body"),
    ]
    assert errors(send(http, "GET", "/v1/queues/q"), 404)[0]["code"] == "not_found"  # not even created


def test_a_bulk_whose_problems_share_a_status_answers_that_status(http):
    enqueue(http, "q", "before")
    r = send(http, "POST", "/v1/queues/q/messages/_bulk", {"data": [message("ok"), message(None), message(1)]})
    assert errors(r, 422) == [
        {"status": "422", "code": "invalid_attribute", "title": "Invalid attribute",
         "detail": "body is required", "source": {"pointer": "/data/1/attributes/body"}},
        {"status": "422", "code": "invalid_attribute", "title": "Invalid attribute",
         "detail": "body must be a string", "source": {"pointer": "/data/2/attributes/body"}},
    ]
    assert size(http, "q") == 1


def test_a_bulk_of_more_than_100_is_422_too_many_and_an_empty_one_400(http):
    assert where(send(http, "POST", "/v1/queues/q/messages/_bulk", {"data": [message()] * 101}), 422) == [
        ("422", "too_many", "/data")
    ]
    assert len(ok(send(http, "POST", "/v1/queues/q/messages/_bulk", {"data": [message()] * 100}), 202)["data"]) == 100
    assert where(send(http, "POST", "/v1/queues/q/messages/_bulk", {"data": []}), 400) == [
        ("400", "invalid_document", "/data")
    ]
    assert where(send(http, "POST", "/v1/queues/q/messages/_bulk", {"data": message()}), 400) == [
        ("400", "invalid_document", "/data")
    ]


def test_a_body_over_256_kb_is_413_too_large_for_every_member(http):
    big = "x" * (256 * 1024 + 1)
    r = send(http, "POST", "/v1/queues/q/messages/_bulk", {"data": [message(big), message("ok"), message(big)]})
    assert errors(r, 413) == [
        {"status": "413", "code": "too_large", "title": "Too large",
         "detail": "body is 262145 bytes; the limit is 262144", "source": {"pointer": f"/data/{i}/attributes/body"}}
        for i in (0, 2)
    ]
    assert where(send(http, "POST", "/v1/queues/q/messages", {"data": message(big)}), 413) == [
        ("413", "too_large", "/data/attributes/body")
    ]
    assert ok(send(http, "POST", "/v1/queues/q/messages", {"data": message("x" * 256 * 1024)}), 202)


def test_a_request_over_the_servers_limit_is_413_too_large(http):
    huge = {"data": [message("y" * 200_000)] * 6}  # 1.2 MB > the test server's 1 MB
    assert where(send(http, "POST", "/v1/queues/q/messages/_bulk", huge), 413) == [("413", "too_large", None)]


@pytest.mark.parametrize(
    "doc, expected",
    [
        ({"data": {"type": "queue", "attributes": {"body": "x"}}}, [("409", "type_conflict", "/data/type")]),
        ({"data": {"type": "message", "id": "123", "attributes": {"body": "x"}}},
         [("403", "client_id_unsupported", "/data/id")]),
        ({"data": {"attributes": {"body": "x"}}}, [("400", "invalid_document", "/data/type")]),
        ({"data": {"type": "message", "attributes": []}}, [("400", "invalid_document", "/data/attributes")]),
        ({"data": {"type": "message"}}, [("400", "invalid_document", "/data/attributes")]),
        ({"data": {"type": "message", "attributes": {}}}, [("422", "invalid_attribute", "/data/attributes/body")]),
        ({"data": [message()]}, [("400", "invalid_document", "/data")]),
        ({"data": "hello"}, [("400", "invalid_document", "/data")]),
        ({"messages": [{"body": "x"}]}, [("400", "invalid_document", "/data")]),
        ([message()], [("400", "invalid_document", "")]),
        ({"data": {"type": "job", "id": "1", "attributes": {"body": 1}}}, [
            ("409", "type_conflict", "/data/type"), ("403", "client_id_unsupported", "/data/id"),
            ("422", "invalid_attribute", "/data/attributes/body"),
        ]),
    ],
)
def test_bad_documents_are_refused_with_pointers_and_nothing_is_stored(http, doc, expected):
    r = send(http, "POST", "/v1/queues/q/messages", doc)
    statuses = {int(status) for status, _, _ in expected}
    assert where(r, statuses.pop() if len(statuses) == 1 else 400) == expected
    assert errors(send(http, "GET", "/v1/queues/q"), 404)


def test_malformed_json_is_400_malformed_json(http):
    [error] = errors(send(http, "POST", "/v1/queues/q/messages", raw=b'{"data": {'), 400)
    assert (error["code"], error["title"]) == ("malformed_json", "Malformed json")
    assert "JSON" in error["detail"] and "source" not in error


# -- wait-until ---------------------------------------------------------------------------------


@pytest.mark.parametrize("unit", ["seconds", "milliseconds"])
def test_wait_until_in_seconds_or_milliseconds_delays_the_message(http, server, unit):
    due_s = server.clock.ms // 1000 + 30  # whole seconds: the session's clock may stand mid-second
    message_id = enqueue(http, "q", "later", **{"wait-until": due_s if unit == "seconds" else due_s * 1000})
    assert read(http, "q", message_id) == {"body": "later", "wait-until": due_s * 1000, "reserved-count": 0,
                                           "state": "delayed"}
    server.clock.advance((due_s * 1000 - server.clock.ms - 1) / 1000)
    assert reserve(http, "q") == []
    server.clock.advance(0.001)
    assert [m["id"] for m in reserve(http, "q")] == [message_id]


@pytest.mark.parametrize("past", [1459121798238, 1459121798, 1, 0])  # the spec's example: 2016, in ms and s
def test_wait_until_in_the_past_or_zero_means_now(http, past):
    message_id = enqueue(http, "q", "now", **{"wait-until": past})
    assert read(http, "q", message_id)["state"] == "ready"
    assert [m["id"] for m in reserve(http, "q")] == [message_id]


def test_wait_until_at_most_7_days_ahead(http, server):
    week_ms = 7 * DAY_MS
    enqueue(http, "q", "in a week", **{"wait-until": server.clock.ms + week_ms})
    r = send(http, "POST", "/v1/queues/q/messages", {"data": message(**{"wait-until": server.clock.ms + week_ms + 1000})})
    assert errors(r, 422) == [{
        "status": "422", "code": "invalid_attribute", "title": "Invalid attribute",
        "detail": "wait-until must be at most 604800 seconds ahead", "source": {"pointer": "/data/attributes/wait-until"},
    }]
    far = send(http, "POST", "/v1/queues/q/messages", {"data": message(**{"wait-until": 99_999_999_999})})  # s: year 5138
    assert where(far, 422) == [("422", "invalid_attribute", "/data/attributes/wait-until")]
    assert size(http, "q") == 1


@pytest.mark.parametrize("value", [-1, -1459121798238, "1459121798238", 1.5, True, [1]])
def test_wait_until_must_be_a_non_negative_integer(http, value):
    r = send(http, "POST", "/v1/queues/q/messages", {"data": message(**{"wait-until": value})})
    assert where(r, 422) == [("422", "invalid_attribute", "/data/attributes/wait-until")]


def test_wait_until_may_be_an_integral_float(http, server):
    message_id = enqueue(http, "q", "js", **{"wait-until": float(server.clock.ms + 5000)})
    assert read(http, "q", message_id)["wait-until"] == server.clock.ms + 5000


# -- media types and auth -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type, status",
    [
        (JSONAPI, 202),
        ("application/json", 202),
        ("application/json; charset=utf-8", 202),
        (f'{JSONAPI}; profile="https://example.com/profile"', 202),
        ("text/plain", 415),
        ("application/x-www-form-urlencoded", 415),
        (f"{JSONAPI}; charset=utf-8", 415),
        (f'{JSONAPI}; ext="https://jsonapi.org/ext/atomic"', 415),  # we implement no extension
    ],
)
def test_request_media_types(http, content_type, status):
    headers = {**HEADERS, "Content-Type": content_type}
    r = send(http, "POST", "/v1/queues/q/messages", {"data": message()}, headers=headers)
    if status == 202:
        assert ok(r, 202)["data"]["id"].isdigit()
    else:
        assert where(r, 415) == [("415", "unsupported_media_type", None)]


def test_a_body_without_content_type_is_415(http):
    r = http.post("/v1/queues/q/messages", content=json.dumps({"data": message()}),
                  headers={"Authorization": TOKEN, "Accept": JSONAPI})
    assert where(r, 415) == [("415", "unsupported_media_type", None)]


@pytest.mark.parametrize(
    "accept, status",
    [
        (JSONAPI, 202),
        ("application/json", 202),
        ("*/*", 202),
        (f"{JSONAPI}; q=0.5", 202),
        (f"{JSONAPI}; charset=utf-8, {JSONAPI}", 202),  # one plain instance is enough
        (f"{JSONAPI}; charset=utf-8", 406),
        (f'{JSONAPI}; ext="https://jsonapi.org/ext/atomic"', 406),
        (f"{JSONAPI}; version=2, {JSONAPI}; charset=utf-8, application/json", 406),
    ],
)
def test_accept_lists_the_jsonapi_type_only_with_parameters_is_406(http, accept, status):
    r = send(http, "POST", "/v1/queues/q/messages", {"data": message()}, headers={**HEADERS, "Accept": accept})
    if status == 202:
        assert ok(r, 202)
    else:
        assert where(r, 406) == [("406", "not_acceptable", None)]


@pytest.mark.parametrize("authorization", [None, "", "wrong", "OAuth token-a", "Basic token-a", "Bearer", "Bearer wrong"])
def test_requests_without_a_valid_token_are_401(http, authorization):
    headers = {k: v for k, v in HEADERS.items() if k != "Authorization"}
    if authorization is not None:
        headers["Authorization"] = authorization
    r = send(http, "POST", "/v1/queues/q/messages", {"data": message()}, headers=headers)
    assert errors(r, 401) == [{"status": "401", "code": "unauthorized", "title": "Unauthorized",
                               "detail": "A valid token is required in the Authorization header"}]
    assert r.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("authorization", [TOKEN, f"Bearer {TOKEN}", f"bearer {TOKEN}"])
def test_the_token_is_raw_or_bearer(http, authorization):
    message_id = ok(send(http, "POST", "/v1/queues/q/messages", {"data": message()},
                         headers={**HEADERS, "Authorization": authorization}), 202)["data"]["id"]
    assert read(http, "q", message_id)["body"] == "hello"


def test_a_token_sees_only_its_own_projects_queues(http):
    message_id = enqueue(http, "secret", "mine")
    other = {**HEADERS, "Authorization": OTHER_TOKEN}
    assert where(send(http, "GET", "/v1/queues/secret", headers=other), 404) == [("404", "not_found", None)]
    assert where(send(http, "GET", f"/v1/queues/secret/messages/{message_id}", headers=other), 404)
    assert ok(send(http, "POST", "/v1/queues/secret/reservations", headers=other)) == {"data": []}
    assert [m["attributes"]["body"] for m in reserve(http, "secret")] == ["mine"]


def test_a_queue_name_the_engine_refuses_is_422(http):
    r = send(http, "POST", f"/v1/queues/{'n' * 256}/messages", {"data": message()})
    assert where(r, 422) == [("422", "invalid_attribute", None)]


def test_unknown_paths_are_404_and_wrong_methods_405_as_jsonapi_errors(http):
    assert where(send(http, "GET", "/v1/nothing"), 404) == [("404", "not_found", None)]
    assert where(send(http, "PUT", "/v1/queues/q/messages"), 405) == [("405", "method_not_allowed", None)]


# -- consuming (the extension) ------------------------------------------------------------------


def test_reserve_returns_messages_with_their_reservation(http, server):
    a, b, c = (enqueue(http, "q", body) for body in "abc")
    got = reserve(http, "q", count=2, **{"visibility-timeout": 30})
    assert got == [
        {"type": "message", "id": i,
         "attributes": {"body": body, "reserved-count": 1, "reservation-id": got[0]["attributes"]["reservation-id"],
                        "reserved-until": server.clock.ms + 30_000},
         "links": {"self": f"{server.url}/v1/queues/q/messages/{i}"}}
        for i, body in [(a, "a"), (b, "b")]
    ]
    assert [m["id"] for m in reserve(http, "q", count=5)] == [c]
    assert reserve(http, "q") == []
    assert read(http, "q", a) == {"body": "a", "wait-until": 0, "reserved-count": 1, "state": "reserved"}


@pytest.mark.parametrize("body", [None, b"", json.dumps({"data": {"type": "reservation"}}).encode()])
def test_reserve_defaults_one_message_for_60_seconds(http, server, body):
    enqueue(http, "q", "a")
    enqueue(http, "q", "b")
    headers = HEADERS if body is not None else {"Authorization": TOKEN}
    [m] = ok(send(http, "POST", "/v1/queues/q/reservations", raw=body, headers=headers))["data"]
    assert m["attributes"]["reserved-until"] == server.clock.ms + 60_000


def test_reserve_on_an_empty_or_missing_queue_is_an_empty_list(http):
    assert reserve(http, "never") == []
    enqueue(http, "q")
    reserve(http, "q")
    assert reserve(http, "q") == []


@pytest.mark.parametrize(
    "data, expected",
    [
        ({"type": "reservation", "attributes": {"count": 0}}, [("422", "invalid_attribute", "/data/attributes/count")]),
        ({"type": "reservation", "attributes": {"count": 101}}, [("422", "invalid_attribute", "/data/attributes/count")]),
        ({"type": "reservation", "attributes": {"visibility-timeout": 0, "wait": 31}}, [
            ("422", "invalid_attribute", "/data/attributes/visibility-timeout"),
            ("422", "invalid_attribute", "/data/attributes/wait"),
        ]),
        ({"type": "message", "attributes": {}}, [("409", "type_conflict", "/data/type")]),
        ({"type": "reservation", "id": "r1"}, [("403", "client_id_unsupported", "/data/id")]),
        ({"type": "job", "attributes": {"count": "2"}}, [
            ("409", "type_conflict", "/data/type"), ("422", "invalid_attribute", "/data/attributes/count"),
        ]),
    ],
)
def test_reserve_refuses_bad_attributes(http, data, expected):
    enqueue(http, "q")
    statuses = {int(status) for status, _, _ in expected}
    r = send(http, "POST", "/v1/queues/q/reservations", {"data": data})
    assert where(r, statuses.pop() if len(statuses) == 1 else 400) == expected
    assert read_queue(http, "q")["reserved"] == 0


def test_long_poll_returns_as_soon_as_another_client_posts(http, server):
    def later():
        time.sleep(0.2)
        with httpx.Client(base_url=server.url) as other:
            send(other, "POST", "/v1/queues/lp/messages", {"data": message("now")})

    poster = threading.Thread(target=later)
    poster.start()
    started = time.monotonic()
    [m] = reserve(http, "lp", wait=5)
    elapsed = time.monotonic() - started
    poster.join()
    assert m["attributes"]["body"] == "now"
    assert 0.15 < elapsed < 1.0


def test_delete_with_the_current_reservation_is_204(http):
    message_id = enqueue(http, "q")
    [m] = reserve(http, "q")
    r = http.delete(f"/v1/queues/q/messages/{message_id}", params={"reservation-id": m["attributes"]["reservation-id"]},
                    headers={"Authorization": TOKEN})
    assert (r.status_code, r.content, "content-type" in r.headers) == (204, b"", False)
    assert where(send(http, "GET", f"/v1/queues/q/messages/{message_id}"), 404) == [("404", "not_found", None)]
    assert size(http, "q") == 0


def test_delete_needs_a_reservation_id_and_unknown_messages_are_404(http):
    message_id = enqueue(http, "q")
    assert errors(send(http, "DELETE", f"/v1/queues/q/messages/{message_id}"), 400) == [{
        "status": "400", "code": "invalid_parameter", "title": "Invalid parameter",
        "detail": "reservation-id is required: the id the reservation returned",
        "source": {"parameter": "reservation-id"},
    }]
    r = send(http, "DELETE", "/v1/queues/q/messages/1234567890123456789", params={"reservation-id": "x"})
    assert where(r, 404) == [("404", "not_found", None)]
    r = send(http, "DELETE", f"/v1/queues/q/messages/{message_id}", params={"reservation-id": "x"})  # not reserved
    assert where(r, 409) == [("409", "reservation_expired", None)]
    assert size(http, "q") == 1


def test_a_stale_reservation_id_is_409_for_delete_and_patch(http, server):
    message_id = enqueue(http, "q")
    [first] = reserve(http, "q", **{"visibility-timeout": 10})
    server.clock.advance(10)
    [second] = reserve(http, "q")
    stale, current = first["attributes"]["reservation-id"], second["attributes"]["reservation-id"]
    assert stale != current
    r = send(http, "DELETE", f"/v1/queues/q/messages/{message_id}", params={"reservation-id": stale})
    assert errors(r, 409) == [{"status": "409", "code": "reservation_expired", "title": "Reservation expired",
                               "detail": "The reservation is not current"}]
    for attributes in ({"wait-until": 0}, {"reserved-until": 0}):
        assert where(patch(http, "q", message_id, stale, **attributes), 409) == [("409", "reservation_expired", None)]
    r = send(http, "DELETE", f"/v1/queues/q/messages/{message_id}", params={"reservation-id": current})
    assert r.status_code == 204


def test_patch_reserved_until_extends_the_reservation_under_a_new_id(http, server):
    message_id = enqueue(http, "q")
    [m] = reserve(http, "q", **{"visibility-timeout": 10})
    rid = m["attributes"]["reservation-id"]
    touched_at = server.clock.ms
    until = (touched_at // 1000 + 100) * 1000  # whole seconds: the session's clock may stand mid-second
    doc = ok(patch(http, "q", message_id, rid, **{"reserved-until": until // 1000}))  # seconds work here too
    new_rid = doc["data"]["attributes"]["reservation-id"]
    assert doc == {"data": {"type": "message", "id": message_id,
                            "attributes": {"reservation-id": new_rid, "reserved-until": until},
                            "links": {"self": f"{server.url}/v1/queues/q/messages/{message_id}"}}}
    assert new_rid != rid
    server.clock.advance(99)
    assert reserve(http, "q") == []  # would have lapsed after 10 s
    assert where(patch(http, "q", message_id, rid, **{"reserved-until": 0}), 409)  # the old id is fenced off
    again = ok(patch(http, "q", message_id, new_rid, **{"reserved-until": 0}))["data"]["attributes"]
    assert again["reserved-until"] == server.clock.ms + (until - touched_at)  # 0: the same timeout again


def test_patch_wait_until_releases_back_to_the_queue(http, server):
    message_id = enqueue(http, "q")
    [m] = reserve(http, "q")
    due = server.clock.ms + 30_000
    doc = ok(patch(http, "q", message_id, m["attributes"]["reservation-id"], **{"wait-until": due}))
    assert doc["data"]["attributes"] == {"wait-until": due}
    assert read(http, "q", message_id)["state"] == "delayed"
    assert reserve(http, "q") == []
    server.clock.advance(30)
    [again] = reserve(http, "q")
    assert (again["id"], again["attributes"]["reserved-count"]) == (message_id, 2)
    ok(patch(http, "q", message_id, again["attributes"]["reservation-id"], **{"wait-until": 0}))  # 0: now
    assert read(http, "q", message_id)["state"] == "ready"


@pytest.mark.parametrize(
    "data, status, expected",
    [
        ({"type": "message", "id": "WRONG", "attributes": {"wait-until": 0}}, 409, [("409", "id_conflict", "/data/id")]),
        ({"type": "message", "attributes": {"wait-until": 0}}, 400, [("400", "invalid_document", "/data/id")]),
        ({"type": "message", "id": "ID", "attributes": {"wait-until": 0, "reserved-until": 0}}, 422,
         [("422", "invalid_attribute", "/data/attributes")]),
        ({"type": "message", "id": "ID", "attributes": {}}, 422, [("422", "invalid_attribute", "/data/attributes")]),
        ({"type": "message", "id": "ID", "attributes": {"reserved-until": "NEXT_DAY"}}, 422,
         [("422", "invalid_attribute", "/data/attributes/reserved-until")]),
        ({"type": "message", "id": "ID", "attributes": {"wait-until": -1}}, 422,
         [("422", "invalid_attribute", "/data/attributes/wait-until")]),
    ],
)
def test_patch_refuses_bad_documents(http, server, data, status, expected):
    message_id = enqueue(http, "q")
    [m] = reserve(http, "q")
    next_day = server.clock.ms + DAY_MS + 1000  # a reservation lasts at most a day
    data = json.loads(json.dumps(data).replace('"ID"', f'"{message_id}"').replace('"NEXT_DAY"', str(next_day)))
    r = send(http, "PATCH", f"/v1/queues/q/messages/{message_id}", {"data": data},
             params={"reservation-id": m["attributes"]["reservation-id"]})
    assert where(r, status) == expected
    assert read(http, "q", message_id)["state"] == "reserved"


def test_queue_resource_counts_messages(http, server):
    enqueue(http, "orders", "a")
    enqueue(http, "orders", "b")
    enqueue(http, "orders", "c", **{"wait-until": server.clock.ms + 60_000})
    reserve(http, "orders")
    assert ok(send(http, "GET", "/v1/queues/orders")) == {"data": {
        "type": "queue", "id": "orders",
        "attributes": {"size": 3, "reserved": 1, "delayed": 1, "total-messages": 3},
        "links": {"self": f"{server.url}/v1/queues/orders"},
    }}
    assert where(send(http, "GET", "/v1/queues/ghost"), 404) == [("404", "not_found", None)]


def test_links_come_from_the_public_url_when_it_is_set_not_from_the_host_header(serve_app, redis_url, server):
    from ferrymq.http.app import create_app

    settings = server.settings.with_(public_url="https://mq.example.com/queues-api/")
    with serve_app(create_app(settings)) as url, httpx.Client(base_url=url) as other:
        forged = {**HEADERS, "Host": "evil.example"}
        [resource] = ok(send(other, "POST", "/v1/queues/a%20b/messages/_bulk", {"data": [message()]},
                             headers=forged), 202)["data"]
        assert resource["links"]["self"] == f"https://mq.example.com/queues-api/v1/queues/a%20b/messages/{resource['id']}"
        queue = ok(send(other, "GET", "/v1/queues/a%20b", headers=forged))["data"]
        assert queue["links"]["self"] == "https://mq.example.com/queues-api/v1/queues/a%20b"

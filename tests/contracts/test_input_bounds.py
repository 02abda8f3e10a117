"""Hostile input is a 400 that names the field, in every contract: integers are ASCII decimal of
bounded length, stored numbers are bounded, and JSON documents are bounded in depth (each of the
shapes below was a 500 once)."""

from __future__ import annotations

import json

import pytest

PROJECT, TOKEN = "000000000000000000000001", "token-a"
IRON = {"Authorization": f"OAuth {TOKEN}"}
IRON_BASE = f"/1/projects/{PROJECT}"
CF = {"Authorization": f"Bearer {TOKEN}"}
CF_BASE = f"/client/v4/accounts/{PROJECT}"
JSONAPI = {"Authorization": TOKEN, "Content-Type": "application/vnd.api+json"}
HUGE = "9" * 5000


def nested(levels: int, leaf: object = 1) -> object:
    doc = leaf
    for _ in range(levels):
        doc = {"a": doc}
    return doc


def iron_refused(response, field: str) -> None:
    assert response.status_code == 400, response.text
    assert field in response.json()["msg"], response.text


def cf_refused(response, field: str) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["success"] is False and field in body["errors"][0]["message"], response.text
    assert response.headers["x-should-retry"] == "false"


@pytest.mark.parametrize("value", ["--5", "²", "٣", "5\u0660", "+-1", "0x10", "1_0", " 1 2", HUGE, "-" + HUGE])
def test_query_integers_are_ascii_decimal_of_bounded_length(http, value):
    for path in ("/queues/q/messages", "/queues/q/messages/peek"):
        iron_refused(http.get(IRON_BASE + path, params={"n": value}, headers=IRON), "n")
    iron_refused(http.get(IRON_BASE + "/queues", params={"page": value}, headers=IRON), "page")
    cf_refused(http.get(CF_BASE + "/queues", params={"page": value}, headers=CF), "page")
    cf_refused(http.get(CF_BASE + "/event_subscriptions/subscriptions", params={"per_page": value}, headers=CF),
               "per_page")


@pytest.mark.parametrize("value", ["5", "٣", 1e30, -1e30, 2**70, 1e30 + 0.5])
def test_body_numbers_out_of_range_or_quoted_in_unicode_are_refused(http, value):
    if value == "5":  # a quoted ASCII number is a number (IronMQ clients send some as strings)
        assert http.post(IRON_BASE + "/queues/q/messages", json={"messages": [{"body": "x", "delay": value}]},
                         headers=IRON).status_code == 200
        return
    doc = {"messages": [{"body": "x", "delay": value}]}
    iron_refused(http.post(IRON_BASE + "/queues/q/messages", json=doc, headers=IRON), "delay")
    elastic = http.post("/v1/queues/q/reservations", headers=JSONAPI,
                        json={"data": {"type": "reservation", "attributes": {"count": value}}})
    assert elastic.status_code in (400, 422), elastic.text
    assert elastic.json()["errors"][0]["source"]["pointer"] == "/data/attributes/count"


@pytest.mark.parametrize("field", ["trigger", "snooze"])
@pytest.mark.parametrize("value", [1e30, 2**63, 2**70])
def test_a_huge_alert_number_is_refused_and_stores_nothing(http, field, value):
    alert = {"type": "fixed", "trigger": 10, "queue": "watch", "snooze": 0, field: value}
    iron_refused(http.post(IRON_BASE + "/queues/q/alerts", json={"alerts": [alert]}, headers=IRON), f"alerts[0].{field}")
    assert http.get(IRON_BASE + "/queues/q", headers=IRON).status_code == 404


def test_a_deeply_nested_subscription_source_is_refused_naming_it(http):
    events = http.post(CF_BASE + "/queues", json={"queue_name": "events"}, headers=CF).json()["result"]["queue_id"]
    for source in ({"type": "kv", "deep": nested(300)}, {"type": "kv", "deep": nested(30)},
                   {"type": "kv", "big": "x" * 20_000}):
        doc = {"name": "w", "source": source, "destination": {"type": "queues.queue", "queue_id": events},
               "events": ["namespace.created"]}
        cf_refused(http.post(CF_BASE + "/event_subscriptions/subscriptions", json=doc, headers=CF), "source")
    listed = http.get(CF_BASE + "/event_subscriptions/subscriptions", headers=CF).json()
    assert listed["result"] == []


def test_a_deeply_nested_json_document_is_refused_naming_where(http):
    queue = http.post(CF_BASE + "/queues", json={"queue_name": "q"}, headers=CF).json()["result"]["queue_id"]
    cf_refused(http.post(f"{CF_BASE}/queues/{queue}/messages", json={"body": nested(300)}, headers=CF), "body")
    batch = {"messages": [{"body": "fine"}, {"body": nested(100)}]}
    cf_refused(http.post(f"{CF_BASE}/queues/{queue}/messages/batch", json=batch, headers=CF), "messages[1].body")
    elastic = http.post("/v1/queues/q/messages", headers=JSONAPI,
                        content=json.dumps({"data": {"type": "message", "attributes": {"body": nested(200)}}}))
    assert elastic.status_code == 400, elastic.text
    assert elastic.json()["errors"][0]["source"]["pointer"] == "/data/attributes/body"
    iron_refused(http.post(IRON_BASE + "/queues/q/messages", content=json.dumps({"messages": nested(500)}),
                           headers=IRON), "messages")
    # a body nested less deeply than the limit is still a body
    assert http.post(f"{CF_BASE}/queues/{queue}/messages", json={"body": nested(20)}, headers=CF).status_code == 200


def test_query_strings_parse_as_starlette_parses_them_cached_or_not():
    from starlette.requests import Request

    from ferrymq.http._common import CACHED_QUERY_BYTES, query_params

    def request(query: bytes) -> Request:
        return Request({"type": "http", "query_string": query, "headers": []})

    short = b"n=1&n=2&delete=true&oauth=a%2Fb&empty="
    long = short + b"&pad=" + b"x" * CACHED_QUERY_BYTES
    for query in (short, long):
        assert query_params(request(query)) == request(query).query_params
        assert query_params(request(query))["n"] == "2" and query_params(request(query))["oauth"] == "a/b"
    assert query_params(request(short)) is query_params(request(short))  # parsed once
    assert query_params(request(long)) is not query_params(request(long))  # never held

"""One message lifecycle, written once, run through every pair of contracts: produced through one,
consumed through another (or the same), the message arrives once, with the same id and body:
post -> reserve -> touch -> release -> reserve -> delete, then the queue is empty.

Each contract has a small adapter over real HTTP; adding a contract is one class and one entry
in CONTRACTS."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import httpx
import pytest

BODY = '{"order": 42, "note": "crème brûlée ✓"}'
IRON_BASE = "/1/projects/000000000000000000000001"
IRON_AUTH = {"Authorization": "OAuth token-a"}
IRON3_BASE = "/3/projects/000000000000000000000001"
JSONAPI = "application/vnd.api+json"
CF_BASE = "/client/v4/accounts/000000000000000000000001"
CF_AUTH = {"Authorization": "Bearer token-a"}
RESERVATION = 60
"""Seconds every adapter reserves for: the scenario names it rather than trusting each queue's
default (a queue created through Cloudflare defaults to 30 s, one created through IronMQ to 60)."""
ELASTIC_HEADERS = {"Authorization": "token-a", "Content-Type": JSONAPI, "Accept": JSONAPI}


class Reserved(NamedTuple):
    id: str
    body: str
    handle: Any
    """What the contract needs to act on this delivery (a reservation id, a lease), or None."""


class Contract:
    """What each adapter offers (duck-typed): produce, reserve, touch (unless can_touch is
    False), release, delete, size, read."""


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


class IronMQ:
    """IronMQ v1: no reservation ids on the wire (touch/release/delete name the message only)."""

    name = "ironmq"

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def url(self, queue: str, path: str = "") -> str:
        return f"{IRON_BASE}/queues/{queue}{path}"

    def produce(self, queue: str, body: str) -> str:
        doc = {"messages": [{"body": body}]}
        return ok(self.http.post(self.url(queue, "/messages"), json=doc, headers=IRON_AUTH))["ids"][0]

    def reserve(self, queue: str) -> Reserved | None:
        params = {"n": 1, "timeout": RESERVATION}
        got = ok(self.http.get(self.url(queue, "/messages"), params=params, headers=IRON_AUTH))["messages"]
        return Reserved(got[0]["id"], got[0]["body"], None) if got else None

    def touch(self, queue: str, message_id: str, handle: Any) -> Any:
        ok(self.http.post(self.url(queue, f"/messages/{message_id}/touch"), json={}, headers=IRON_AUTH))
        return handle

    def release(self, queue: str, message_id: str, handle: Any) -> None:
        ok(self.http.post(self.url(queue, f"/messages/{message_id}/release"), json={}, headers=IRON_AUTH))

    def delete(self, queue: str, message_id: str, handle: Any) -> None:
        ok(self.http.delete(self.url(queue, f"/messages/{message_id}"), headers=IRON_AUTH))

    def size(self, queue: str) -> int:
        return ok(self.http.get(self.url(queue), headers=IRON_AUTH))["size"]

    def read(self, queue: str, message_id: str) -> tuple[str, str]:
        got = ok(self.http.get(self.url(queue, f"/messages/{message_id}"), headers=IRON_AUTH))
        return got["id"], got["body"]


class IronMQ3:
    """IronMQ v3: reservation ids on the wire; touch answers a new one."""

    name = "ironmq3"

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def call(self, method: str, queue: str, path: str = "", doc: Any = None, status: int = 200) -> Any:
        return ok(self.http.request(method, f"{IRON3_BASE}/queues/{queue}{path}", json=doc, headers=IRON_AUTH), status)

    def produce(self, queue: str, body: str) -> str:
        return self.call("POST", queue, "/messages", {"messages": [{"body": body}]}, 201)["ids"][0]

    def reserve(self, queue: str) -> Reserved | None:
        got = self.call("POST", queue, "/reservations", {"n": 1, "timeout": RESERVATION})["messages"]
        return Reserved(got[0]["id"], got[0]["body"], got[0]["reservation_id"]) if got else None

    def touch(self, queue: str, message_id: str, handle: Any) -> Any:
        return self.call("POST", queue, f"/messages/{message_id}/touch", {"reservation_id": handle})["reservation_id"]

    def release(self, queue: str, message_id: str, handle: Any) -> None:
        self.call("POST", queue, f"/messages/{message_id}/release", {"reservation_id": handle})

    def delete(self, queue: str, message_id: str, handle: Any) -> None:
        self.call("DELETE", queue, f"/messages/{message_id}", {"reservation_id": handle})

    def size(self, queue: str) -> int:
        return self.call("GET", queue)["queue"]["size"]

    def read(self, queue: str, message_id: str) -> tuple[str, str]:
        got = self.call("GET", queue, f"/messages/{message_id}")["message"]
        return got["id"], got["body"]


class ElasticQueue:
    """ElasticQueue: the spec's producer, the notes' consumer extension (reservation ids fence)."""

    name = "elastic"

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def send(self, method: str, path: str, doc: Any = None, **kwargs: Any) -> Any:
        content = None if doc is None else json.dumps(doc)
        r = self.http.request(method, f"/v1/queues/{path}", content=content, headers=ELASTIC_HEADERS, **kwargs)
        return ok(r, {"POST": 202 if "/messages" in path else 200, "DELETE": 204}.get(method, 200))

    def produce(self, queue: str, body: str) -> str:
        doc = {"data": {"type": "message", "attributes": {"body": body}}}
        return self.send("POST", f"{queue}/messages", doc)["data"]["id"]

    def reserve(self, queue: str) -> Reserved | None:
        doc = {"data": {"type": "reservation", "attributes": {"count": 1, "visibility-timeout": RESERVATION}}}
        got = self.send("POST", f"{queue}/reservations", doc)["data"]
        if not got:
            return None
        return Reserved(got[0]["id"], got[0]["attributes"]["body"], got[0]["attributes"]["reservation-id"])

    def patch(self, queue: str, message_id: str, handle: Any, attributes: dict[str, Any]) -> Any:
        doc = {"data": {"type": "message", "id": message_id, "attributes": attributes}}
        return self.send("PATCH", f"{queue}/messages/{message_id}", doc, params={"reservation-id": handle})

    def touch(self, queue: str, message_id: str, handle: Any) -> Any:
        return self.patch(queue, message_id, handle, {"reserved-until": 0})["data"]["attributes"]["reservation-id"]

    def release(self, queue: str, message_id: str, handle: Any) -> None:
        self.patch(queue, message_id, handle, {"wait-until": 0})

    def delete(self, queue: str, message_id: str, handle: Any) -> None:
        self.send("DELETE", f"{queue}/messages/{message_id}", params={"reservation-id": handle})

    def size(self, queue: str) -> int:
        return self.send("GET", queue)["data"]["attributes"]["size"]

    def read(self, queue: str, message_id: str) -> tuple[str, str]:
        got = self.send("GET", f"{queue}/messages/{message_id}")["data"]
        return got["id"], got["attributes"]["body"]


class CloudflareQueues:
    """Cloudflare Queues: leases on the wire; no touch, no read by id (peek stands in for it), and
    push answers no id (the adapter peeks for it)."""

    name = "cloudflare"
    can_touch = False

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def call(self, method: str, path: str, doc: Any = None) -> Any:
        r = self.http.request(method, f"{CF_BASE}{path}", json=doc, headers=CF_AUTH)
        return ok(r)["result"]

    def queue_id(self, queue: str, *, create: bool = False) -> str:
        found = [q["queue_id"] for q in self.call("GET", "/queues") if q["queue_name"] == queue]
        if found:
            return found[0]
        assert create, f"no queue {queue}"
        return self.call("POST", "/queues", {"queue_name": queue})["queue_id"]

    def peek(self, queue: str) -> list[dict[str, Any]]:
        return self.call("POST", f"/queues/{self.queue_id(queue)}/messages/peek", {"batch_size": 100})["messages"]

    def produce(self, queue: str, body: str) -> str:
        qid = self.queue_id(queue, create=True)
        self.call("POST", f"/queues/{qid}/messages", {"body": body, "content_type": "text"})
        return self.peek(queue)[-1]["id"]

    def reserve(self, queue: str) -> Reserved | None:
        doc = {"batch_size": 1, "visibility_timeout_ms": RESERVATION * 1000}
        got = self.call("POST", f"/queues/{self.queue_id(queue)}/messages/pull", doc)["messages"]
        return Reserved(got[0]["id"], got[0]["body"], got[0]["lease_id"]) if got else None

    def release(self, queue: str, message_id: str, handle: Any) -> None:
        result = self.call("POST", f"/queues/{self.queue_id(queue)}/messages/ack", {"retries": [{"lease_id": handle}]})
        assert result["retryCount"] == 1

    def delete(self, queue: str, message_id: str, handle: Any) -> None:
        result = self.call("POST", f"/queues/{self.queue_id(queue)}/messages/ack", {"acks": [{"lease_id": handle}]})
        assert result["ackCount"] == 1

    def size(self, queue: str) -> int:
        return self.call("GET", f"/queues/{self.queue_id(queue)}/metrics")["backlog_count"]

    def read(self, queue: str, message_id: str) -> tuple[str, str]:
        [got] = [m for m in self.peek(queue) if m["id"] == message_id]
        return got["id"], got["body"]


CONTRACTS = [IronMQ, IronMQ3, ElasticQueue, CloudflareQueues]
PAIRS = [
    pytest.param(producer, consumer, id=f"{producer.name}-to-{consumer.name}")
    for producer in CONTRACTS for consumer in CONTRACTS
]


@pytest.mark.parametrize("producer, consumer", PAIRS)
def test_a_message_lives_once_whichever_contracts_produce_and_consume_it(http, server, producer, consumer):
    produce, consume = producer(http), consumer(http)
    message_id = produce.produce("orders", BODY)
    assert message_id.isdigit()

    got = consume.reserve("orders")
    assert (got.id, got.body) == (message_id, BODY)
    assert consume.reserve("orders") is None  # delivered once

    handle = got.handle
    if getattr(consume, "can_touch", True):
        server.clock.advance(50)
        handle = consume.touch("orders", message_id, got.handle)
        server.clock.advance(50)  # past the first reservation's 60 s: only the touch keeps it
        assert consume.reserve("orders") is None

    consume.release("orders", message_id, handle)
    again = consume.reserve("orders")
    assert (again.id, again.body) == (message_id, BODY)
    assert consume.reserve("orders") is None

    consume.delete("orders", message_id, again.handle)
    assert consume.reserve("orders") is None
    assert [contract(http).size("orders") for contract in CONTRACTS] == [0] * len(CONTRACTS)


@pytest.mark.parametrize("producer, reader", [pair for pair in PAIRS if pair.values[0] is not pair.values[1]])
def test_message_ids_are_the_same_digit_strings_in_every_contract(http, producer, reader):
    ids = [producer(http).produce("q", body) for body in ("first", "second")]
    assert all(i.isdigit() for i in ids) and ids == sorted(ids)
    assert [reader(http).read("q", i) for i in ids] == [(ids[0], "first"), (ids[1], "second")]


def test_an_elastic_bulk_is_consumed_in_order_through_ironmq(http):
    doc = {"data": [{"type": "message", "attributes": {"body": str(n)}} for n in range(5)]}
    r = http.post("/v1/queues/bulk/messages/_bulk", content=json.dumps(doc), headers=ELASTIC_HEADERS)
    ids = [resource["id"] for resource in ok(r, 202)["data"]]
    got = ok(http.get(f"{IRON_BASE}/queues/bulk/messages", params={"n": 10}, headers=IRON_AUTH))["messages"]
    assert [(m["id"], m["body"]) for m in got] == [(i, str(n)) for n, i in enumerate(ids)]


@pytest.mark.parametrize("consumer", CONTRACTS, ids=[c.name for c in CONTRACTS])
@pytest.mark.parametrize("producer, requeued_first", [
    pytest.param(IronMQ3, True, id="queue-made-by-ironmq3"), pytest.param(IronMQ, False, id="queue-made-by-ironmq"),
])
def test_the_queue_decides_where_a_release_goes_whichever_contract_releases(http, producer, requeued_first, consumer):
    """A queue created through IronMQ v3 requeues at the front, one created through v1 at the end."""
    first, second = (producer(http).produce("q", body) for body in ("first", "second"))
    consume = consumer(http)
    got = consume.reserve("q")
    assert got.id == first
    consume.release("q", got.id, got.handle)
    assert consume.reserve("q").id == (first if requeued_first else second)


@pytest.mark.parametrize("contract", CONTRACTS, ids=[c.name for c in CONTRACTS])
def test_every_contract_serves_a_queue_of_three_partitions(http, server, redis_client, contract):
    """Ids that name a partition (two more digits) go through every contract unchanged; a
    partitioned queue promises FIFO per partition only, so the order is not asserted."""
    from ferrymq.engine import Engine

    Engine(redis_client, clock=server.clock).queue("000000000000000000000001", "parted").ensure(partitions=3)
    client = contract(http)
    # Cloudflare's push answers no id (its adapter peeks for the newest, which needs FIFO across puts)
    producer = IronMQ(http) if contract is CloudflareQueues else client
    ids = [producer.produce("parted", f"m{i}") for i in range(3)]
    assert all(i.isdigit() for i in ids) and len({len(i) for i in ids}) == 2  # 19 digits, and 21
    got = [client.reserve("parted") for _ in range(3)]
    assert sorted((g.id, g.body) for g in got) == sorted(zip(ids, ("m0", "m1", "m2")))
    assert client.reserve("parted") is None
    for g in got:
        client.delete("parted", g.id, g.handle)
    assert [c(http).size("parted") for c in CONTRACTS] == [0] * len(CONTRACTS)

"""Quotas over HTTP: a request beyond one of its project's quotas is a clear 4xx in each contract's
shape (IronMQ {"msg"}, the Cloudflare envelope with code 10251 and x-should-retry: false, a JSON:API
error) and writes nothing; other projects go on."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import redis

from ferrymq.engine import Engine, Quotas
from ferrymq.http.app import create_app

PROJECT, TOKEN = "000000000000000000000001", "token-a"
OTHER_PROJECT, OTHER_TOKEN = "000000000000000000000002", "token-b"
IRON = {"Authorization": f"OAuth {TOKEN}"}
CF = {"Authorization": f"Bearer {TOKEN}"}
JSONAPI = {"Authorization": TOKEN, "Content-Type": "application/vnd.api+json"}
QUOTAS = Quotas(queues=2, messages=4, subscriptions=1, ids_per_request=100)


@pytest.fixture
def http(serve_app, server) -> Iterator[httpx.Client]:
    with serve_app(create_app(server.settings.with_(quotas=QUOTAS))) as url, \
            httpx.Client(base_url=url, timeout=10) as client:
        yield client


def sweep(redis_url: str) -> None:
    """What the server's sweeper does every second (the test servers run none): twice, to sum
    the projects and then mark their queues."""
    with redis.Redis.from_url(redis_url) as client:
        engine = Engine(client, quotas=QUOTAS)
        engine.sweep()
        engine.sweep()


def iron_put(http, queue, n=1, headers=IRON, project=PROJECT):
    return http.post(f"/1/projects/{project}/queues/{queue}/messages", headers=headers,
                     json={"messages": [{"body": "x"}] * n})


def cf_refused(response: httpx.Response, quota: str) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["x-should-retry"] == "false"
    body = response.json()
    assert body["success"] is False and body["errors"][0]["code"] == 10251
    assert quota in body["errors"][0]["message"]


def test_the_queue_quota_in_every_contract(http):
    assert iron_put(http, "a").status_code == 200
    assert http.post(f"/client/v4/accounts/{PROJECT}/queues", json={"queue_name": "b"}, headers=CF).status_code == 200
    iron = iron_put(http, "c")
    assert iron.status_code == 403 and iron.json() == {"msg": "The project's quota is exceeded: at most 2 queues"}
    cf_refused(http.post(f"/client/v4/accounts/{PROJECT}/queues", json={"queue_name": "c"}, headers=CF), "queues")
    elastic = http.post("/v1/queues/c/messages", headers=JSONAPI,
                        json={"data": {"type": "message", "attributes": {"body": "x"}}})
    assert elastic.status_code == 403 and elastic.json()["errors"][0]["code"] == "quota_exceeded"
    assert http.get(f"/1/projects/{PROJECT}/queues/c", headers=IRON).status_code == 404  # nothing written
    assert iron_put(http, "c", headers={"Authorization": f"OAuth {OTHER_TOKEN}"}, project=OTHER_PROJECT).status_code == 200


def test_the_message_quota_in_every_contract(http, redis_url):
    assert iron_put(http, "a", 4).status_code == 200
    qid = http.get(f"/client/v4/accounts/{PROJECT}/queues", headers=CF).json()["result"][0]["queue_id"]
    sweep(redis_url)
    iron = iron_put(http, "a")
    assert iron.status_code == 403 and "4 messages" in iron.json()["msg"]
    cf_refused(http.post(f"/client/v4/accounts/{PROJECT}/queues/{qid}/messages", json={"body": "x"}, headers=CF),
               "messages")
    elastic = http.post("/v1/queues/a/messages", headers=JSONAPI,
                        json={"data": {"type": "message", "attributes": {"body": "x"}}})
    assert elastic.status_code == 403
    assert http.get(f"/1/projects/{PROJECT}/queues/a", headers=IRON).json()["size"] == 4
    taken = http.get(f"/1/projects/{PROJECT}/queues/a/messages", params={"n": 4, "delete": "true"}, headers=IRON)
    assert len(taken.json()["messages"]) == 4  # consuming is never refused
    sweep(redis_url)
    assert iron_put(http, "a").status_code == 200


def test_ids_per_request_and_subscriptions(http):
    queue_id = http.post(f"/client/v4/accounts/{PROJECT}/queues", json={"queue_name": "q"}, headers=CF).json()["result"]["queue_id"]
    base = f"/client/v4/accounts/{PROJECT}/queues/{queue_id}/messages"
    acks = [{"lease_id": f"{i}.x"} for i in range(101)]
    cf_refused(http.post(f"{base}/ack", json={"acks": acks}, headers=CF), "ids")
    cf_refused(http.post(f"{base}/purge", json={"refs": [{"ref": str(i)} for i in range(101)]}, headers=CF), "ids")
    assert http.post(f"{base}/ack", json={"acks": acks[:60], "retries": acks[60:100]}, headers=CF).status_code == 200
    subs = f"/client/v4/accounts/{PROJECT}/event_subscriptions/subscriptions"
    doc = {"name": "w", "destination": {"type": "queues.queue", "queue_id": queue_id}, "events": ["namespace.created"]}
    assert http.post(subs, json={**doc, "source": {"type": "kv"}}, headers=CF).status_code == 200
    cf_refused(http.post(subs, json={**doc, "source": {"type": "r2"}}, headers=CF), "subscriptions")
    assert len(http.get(subs, headers=CF).json()["result"]) == 1

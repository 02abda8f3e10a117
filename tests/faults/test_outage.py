"""Redis killed (kill -9) and restarted under load, through all three contracts at once: every
request fails fast with its contract's error (IronMQ 503 {"msg"}, a Cloudflare 5xx v4 envelope,
a JSON:API 503), the server recovers by itself, nothing acknowledged is lost (Redis keeps an AOF
with fsync always), and no message is delivered twice while it is reserved. And Redis stopped
under an idle server: 503 at once, then back to work by itself once Redis returns."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import redis

from ferrymq.engine import Engine
from ferrymq.engine.keys import MESSAGE_SCORES, queue_keys
from ferrymq.http.app import create_app
from ferrymq.http.settings import Settings

PROJECT = "000000000000000000000001"
JSONAPI = "application/vnd.api+json"
FAIL_FAST = 3.0
"""Seconds an answer may take while Redis is down (the refused connection is at once)."""


class Producer:
    """Puts one message through one contract; ``error_ok`` checks that contract's error shape."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=30)

    def close(self) -> None:
        self.http.close()


class IronProducer(Producer):
    name = "ironmq"

    def put(self, queue: str, body: str) -> httpx.Response:
        return self.http.post(f"/1/projects/{PROJECT}/queues/{queue}/messages", json={"messages": [{"body": body}]},
                              headers={"Authorization": "OAuth token-a"})

    @staticmethod
    def error_ok(response: httpx.Response) -> bool:
        return response.status_code == 503 and set(response.json()) == {"msg"}


class CloudflareProducer(Producer):
    name = "cloudflare"
    queue_id: str | None = None

    def put(self, queue: str, body: str) -> httpx.Response:
        auth, base = {"Authorization": "Bearer token-a"}, f"/client/v4/accounts/{PROJECT}/queues"
        if self.queue_id is None:
            listed = self.http.get(base, headers=auth)
            if listed.status_code != 200:
                return listed
            self.queue_id = next(q["queue_id"] for q in listed.json()["result"] if q["queue_name"] == queue)
        return self.http.post(f"{base}/{self.queue_id}/messages", json={"body": body, "content_type": "text"}, headers=auth)

    @staticmethod
    def error_ok(response: httpx.Response) -> bool:
        doc = response.json()
        return (response.status_code >= 500 and doc["success"] is False and doc["result"] is None
                and all(set(e) == {"code", "message"} for e in doc["errors"]) and len(doc["errors"]) >= 1)


class ElasticProducer(Producer):
    name = "elastic"

    def put(self, queue: str, body: str) -> httpx.Response:
        doc = {"data": {"type": "message", "attributes": {"body": body}}}
        headers = {"Authorization": "token-a", "Content-Type": JSONAPI, "Accept": JSONAPI}
        response = self.http.post(f"/v1/queues/{queue}/messages", json=doc, headers=headers)
        return httpx.Response(200, json=response.json(), request=response.request) if response.status_code == 202 else response

    @staticmethod
    def error_ok(response: httpx.Response) -> bool:
        doc = response.json()
        return (response.status_code == 503 and response.headers["content-type"].startswith(JSONAPI)
                and [e["status"] for e in doc["errors"]] == ["503"])


PRODUCERS = [IronProducer, CloudflareProducer, ElasticProducer]


def produce(producer: Producer, stop: threading.Event) -> dict[str, Any]:
    acked, errors, n = set(), [], 0
    while not stop.is_set():
        body = f"{producer.name}/{n}"
        n += 1
        started = time.monotonic()
        response = producer.put("q", body)
        took = time.monotonic() - started
        if response.status_code == 200:
            acked.add(body)
        else:
            errors.append((response, took))
            time.sleep(0.02)
    return {"acked": acked, "errors": errors}


def consume(client, stop: threading.Event) -> list[tuple[str, str]]:
    """Reserve (for longer than the test) until stop: the (id, body) delivered, in order."""
    delivered = []
    while not stop.is_set():
        response = client.reserve("q", 10, timeout=600)
        if response.status_code == 200:
            delivered += [(m["id"], m["body"]) for m in response.json()["messages"]]
        else:
            assert response.status_code == 503, response.text
            time.sleep(0.02)
    return delivered


def test_a_redis_crash_under_load_fails_fast_per_contract_and_loses_nothing(durable_redis, spawn_server, iron):
    server = spawn_server("--redis-url", durable_redis.url)
    setup = iron(server.url)
    assert setup.put("q", "first").status_code == 200  # the queue exists, in every contract's view
    producers = [cls(server.url) for cls in PRODUCERS]
    stop = threading.Event()
    try:
        with ThreadPoolExecutor(len(producers) + 2) as pool:
            producing = [pool.submit(produce, p, stop) for p in producers]
            consuming = [pool.submit(consume, iron(server.url), stop) for _ in range(2)]
            time.sleep(0.5)
            durable_redis.kill()
            time.sleep(1.0)  # every producer meets the outage
            durable_redis.restart()
            recovered = time.monotonic()
            while setup.put("q", "after").status_code != 200:
                assert time.monotonic() - recovered < 20, "the server did not recover by itself"
                time.sleep(0.05)
            time.sleep(0.5)
            stop.set()
            produced = [f.result(timeout=30) for f in producing]
            delivered = [i for f in consuming for i in f.result(timeout=30)]
    finally:
        for p in producers:
            p.close()

    for cls, outcome in zip(PRODUCERS, produced):
        assert outcome["errors"], f"{cls.name} never met the outage"
        bad = [(r.status_code, r.text[:200]) for r, _ in outcome["errors"] if not cls.error_ok(r)]
        assert not bad, f"{cls.name} answered the outage with: {bad[:3]}"
        slow = max(took for _, took in outcome["errors"])
        assert slow < FAIL_FAST, f"{cls.name} took {slow:.1f} s to fail"
        assert outcome["acked"], f"{cls.name} had no put acknowledged"
    ids = [i for i, _ in delivered]
    assert len(ids) == len(set(ids)), "a reserved message was delivered again"
    still_there = {body for _, body in delivered} | reserved_unanswered(durable_redis.url, set(ids))
    while batch := setup.taken("q", 100, timeout=600):
        still_there |= {m["body"] for m in batch}
    acked = set().union(*(o["acked"] for o in produced))
    assert not acked - still_there, f"{len(acked - still_there)} acknowledged messages lost"


def reserved_unanswered(redis_url: str, delivered: set[str]) -> set[str]:
    """Bodies of messages a reserve took whose answer Redis never sent (it was killed after the
    write, which the fsync'd AOF keeps): reserved for 600 s, they are in the queue, not lost."""
    with redis.Redis.from_url(redis_url) as client:
        q = Engine(client).queue(PROJECT, "q")
        reserved = {i.decode() for i in client.zrangebyscore(queue_keys("fmq", PROJECT, "q").reserved, *MESSAGE_SCORES)}
        ids = reserved - delivered
        assert len(ids) <= 20, "more reserved, undelivered messages than two consumers' answers hold"
        return {q.get(i).text for i in ids}


def test_a_stopped_redis_answers_503_fast_and_the_server_recovers_by_itself(redis_servers, serve_app):
    server = redis_servers()
    auth, queues = {"Authorization": "OAuth t"}, "/1/projects/p1/queues"
    app = create_app(Settings(redis_url=server.url, tokens={"t": "p1"}, sweeper=False))
    with serve_app(app) as base, httpx.Client(base_url=base, timeout=10) as http:
        assert http.post(f"{queues}/q/messages", json={"messages": [{"body": "kept"}]}, headers=auth).status_code == 200
        server.stop()
        started = time.monotonic()
        down = http.get(f"{queues}/q/messages", headers=auth)
        assert down.status_code == 503 and down.headers["content-type"] == "application/json"
        assert set(down.json()) == {"msg"}
        assert time.monotonic() - started < FAIL_FAST
        redis_servers(port=server.port)  # Redis is back (empty: this one does not persist)
        for _ in range(100):
            up = http.get(queues, headers=auth)
            if up.status_code == 200:
                break
            time.sleep(0.05)
        assert up.status_code == 200
        assert http.post(f"{queues}/q/messages", json={"messages": [{"body": "again"}]}, headers=auth).status_code == 200
        assert [m["body"] for m in http.get(f"{queues}/q/messages", headers=auth).json()["messages"]] == ["again"]


def test_a_redis_busy_with_another_programs_script_answers_503_then_serves(redis_servers, serve_app, busy_redis):
    """Past lua-time-limit (busy-reply-threshold) Redis answers every other call BUSY until the
    script ends: it cannot answer now and will later, as when it is down (500 before: an error
    taken for a reply)."""
    server = redis_servers("--lua-time-limit", "100")
    auth, queues = {"Authorization": "OAuth t"}, "/1/projects/p1/queues"
    app = create_app(Settings(redis_url=server.url, tokens={"t": "p1"}, sweeper=False))
    with serve_app(app) as base, httpx.Client(base_url=base, timeout=10) as http:
        assert http.post(f"{queues}/q/messages", json={"messages": [{"body": "kept"}]}, headers=auth).status_code == 200
        with busy_redis(server.url, 1.0):
            time.sleep(0.2)  # past the limit
            during = http.get(f"{queues}/q/messages", headers=auth)
            assert during.status_code == 503 and set(during.json()) == {"msg"}
        after = http.get(f"{queues}/q/messages", headers=auth)
        assert [m["body"] for m in after.json()["messages"]] == ["kept"]

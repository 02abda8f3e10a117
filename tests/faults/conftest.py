"""Fixtures for fault tests: `ferrymq serve` processes over a Redis of the test's own (so a test
may stop, kill or restart it), and small IronMQ helpers over real HTTP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

PROJECT = "000000000000000000000001"
AUTH = {"Authorization": "OAuth token-a"}
QUEUES = f"/1/projects/{PROJECT}/queues"


@pytest.fixture
def durable_redis(redis_servers: Callable[..., Any]) -> Any:
    """A Redis of this test's own that loses nothing acknowledged on kill -9 (AOF, fsync always)."""
    return redis_servers("--appendonly", "yes", "--appendfsync", "always")


class Iron:
    """IronMQ v1 over one HTTP client, for project A (token-a)."""

    def __init__(self, url: str, timeout: float = 10) -> None:
        self.http = httpx.Client(base_url=url, timeout=timeout, headers=AUTH)

    def close(self) -> None:
        self.http.close()

    def put(self, queue: str, *bodies: str) -> httpx.Response:
        return self.http.post(f"{QUEUES}/{queue}/messages", json={"messages": [{"body": b} for b in bodies]})

    def reserve(self, queue: str, n: int = 1, **params: Any) -> httpx.Response:
        return self.http.get(f"{QUEUES}/{queue}/messages", params={"n": n, **params})

    def delete(self, queue: str, message_id: str) -> httpx.Response:
        return self.http.delete(f"{QUEUES}/{queue}/messages/{message_id}")

    def size(self, queue: str) -> int:
        response = self.http.get(f"{QUEUES}/{queue}")
        assert response.status_code == 200, response.text
        return response.json()["size"]

    def taken(self, queue: str, n: int = 100, **params: Any) -> list[dict[str, Any]]:
        response = self.reserve(queue, n, **params)
        assert response.status_code == 200, response.text
        return response.json()["messages"]


@pytest.fixture
def iron() -> Any:
    """``iron(url)``: an Iron client, closed after the test."""
    made: list[Iron] = []

    def make(url: str, timeout: float = 10) -> Iron:
        made.append(Iron(url, timeout))
        return made[-1]

    yield make
    for client in made:
        client.close()


@pytest.fixture
def account() -> Callable[[str, list[str]], dict[str, int]]:
    """``account(redis_url, queues)``: see ``account_of``."""
    return lambda redis_url, queues: account_of(redis_url, PROJECT, queues)


def account_of(redis_url: str, project: str, queues: list[str]) -> dict[str, int]:
    """What the engine says of the queues, summed: messages put, deleted and still there (ready,
    delayed or reserved), and how many message records Redis holds. A change written halfway
    shows as records that no count includes, or counts without records."""
    import redis

    from ferrymq.engine import Engine
    from ferrymq.engine.keys import queue_keys

    totals = {"put": 0, "deleted": 0, "queued": 0, "records": 0}
    with redis.Redis.from_url(redis_url) as client:
        engine = Engine(client)
        for name in queues:
            info = engine.queue(project, name).info()
            totals["put"] += info.total_messages
            totals["deleted"] += info.counters.get("deleted", 0)
            totals["queued"] += info.ready + info.delayed + info.reserved
            totals["records"] += client.hlen(queue_keys("fmq", project, name).msg)
    return totals

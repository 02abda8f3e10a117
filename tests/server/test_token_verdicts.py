"""Token verdicts are remembered a few seconds per process (no hash, no Redis call per
request), and a token revoked in Redis stops working once its verdict expires.

Each test runs its coroutine on a thread of its own: the browser tests' Playwright may leave
an event loop running in the main thread."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection

from ferrymq.engine import Unavailable
from ferrymq.http.auth import UNKNOWN, Auth, TokenStore, Verdicts

PROJECT = "000000000000000000000001"


def run(coroutine: Coroutine[Any, Any, None]) -> None:
    with concurrent.futures.ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, coroutine).result(timeout=30)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class CountingStore(TokenStore):
    lookups = 0

    async def project_of(self, token: str, remembered: dict[str, str] | None = None) -> str | None:
        self.lookups += 1
        return await super().project_of(token, remembered)


def test_a_revoked_token_is_refused_once_its_verdict_expires(redis_url):
    run(revoked_token_refused_once_its_verdict_expires(redis_url))


async def revoked_token_refused_once_its_verdict_expires(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    await client.flushall()
    store, clock = CountingStore(client), Clock()
    auth = Auth({}, store, verdicts=Verdicts(ttl=5.0, clock=clock))
    token = await store.add(PROJECT)
    assert await auth.project_of(token) == PROJECT
    await store.revoke(token)
    clock.now += 4.9
    assert await auth.project_of(token) == PROJECT  # remembered
    assert store.lookups == 1
    clock.now += 0.1
    assert await auth.project_of(token) is None
    assert store.lookups == 2
    await client.aclose()


def test_static_and_unknown_tokens_are_answered_from_memory_after_the_first_time(redis_url):
    run(static_and_unknown_tokens_answered_from_memory(redis_url))


async def static_and_unknown_tokens_answered_from_memory(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    await client.flushall()
    store = CountingStore(client)
    auth = Auth({"static-token": PROJECT}, store, Verdicts(ttl=5.0, clock=Clock()))
    for _ in range(3):
        assert await auth.project_of("static-token") == PROJECT
        assert await auth.project_of("made-up") is None
        assert await auth.project_of("") is None
    assert store.lookups == 1  # "made-up", once
    await client.aclose()


def test_a_full_cache_starts_over_rather_than_grow():
    verdicts = Verdicts(ttl=5.0, size=3, clock=Clock())
    for i in range(3):
        verdicts.remember(f"t{i}", PROJECT)
    verdicts.remember("t3", None)
    assert verdicts.get("t0") is UNKNOWN
    assert verdicts.get("t3") is None


def test_a_connection_closed_under_the_token_lookup_is_unavailable_not_a_crash(redis_url, monkeypatch):
    """The race a Sentinel failover runs (tests/sentinel/test_failover_under_load.py once answered
    it with a 500): the pool's connection is closed by another task while the lookup's HGET awaits
    its health check, and redis-py writes to a writer that is gone (an AttributeError of its own).
    The lookup says Unavailable, which every contract answers 503 (clients retry), and the next
    lookup works."""
    run(closed_under_the_lookup_is_unavailable(redis_url, monkeypatch))


async def closed_under_the_lookup_is_unavailable(redis_url: str, monkeypatch: Any) -> None:
    client = aioredis.Redis.from_url(redis_url)
    store = TokenStore(client)
    token = await store.add(PROJECT)

    async def closed_by_another_task(connection: Any) -> None:
        await connection.disconnect()

    with monkeypatch.context() as patch:
        patch.setattr(AbstractConnection, "check_health", closed_by_another_task)
        with pytest.raises(Unavailable):
            await Auth({}, store).project_of(token)
    assert await Auth({}, store).project_of(token) == PROJECT
    await client.aclose()

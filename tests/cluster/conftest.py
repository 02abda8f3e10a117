"""Engines over the session's three-master Redis Cluster (tests/conftest.py starts it), and a way
to pick queue names that live on a given master."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from ferrymq.engine import AsyncEngine, Engine, FakeClock, RedisClock
from ferrymq.engine.keys import queue_keys


@pytest.fixture
def cluster_client(cluster: Any) -> Iterator[redis.RedisCluster]:
    client = cluster.sync_client()
    yield client
    client.close()


@pytest.fixture
def cluster_engine(cluster_client: redis.RedisCluster, clock: FakeClock) -> Engine:
    return Engine(cluster_client, clock=clock)


@pytest.fixture
async def async_cluster_engines(cluster: Any) -> Any:
    """Two async engines, each with its own cluster client: two processes, as far as Redis can tell."""
    made: list[AsyncEngine] = []

    def make() -> AsyncEngine:
        engine = AsyncEngine(aioredis.RedisCluster.from_url(cluster.url), clock=RedisClock())
        made.append(engine)
        return engine

    yield make
    for engine in made:
        await engine.aclose()
        await engine.client.aclose()


@pytest.fixture
def queue_on(cluster_client: redis.RedisCluster) -> Callable[[str, int], str]:
    """``queue_on(project, port)``: a queue name whose keys live on the master at ``port``."""

    def pick(project: str, port: int) -> str:
        for i in range(1000):
            name = f"q{i}"
            if master_port(cluster_client, queue_keys("fmq", project, name).meta) == port:
                return name
        raise AssertionError(f"no queue name of the first 1000 lands on port {port}")

    return pick


def master_port(client: redis.RedisCluster, key: str) -> int:
    return int(client.get_node_from_key(key).port)


@pytest.fixture(autouse=True)
def collect_dropped_sockets() -> Iterator[None]:
    """redis-py's cluster client drops nodes and connections without closing them when it learns
    the layout again (after a node died): collect them within the test, whose mark
    ``filterwarnings("ignore::ResourceWarning")`` quiets them, not at interpreter exit, where
    each one's warning is an error of the whole run."""
    yield
    gc.collect()

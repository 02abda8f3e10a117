"""`ferrymq serve --redis-url <any cluster node>` serves from the whole cluster, and two such
servers behave as one broker: what one takes the other does not, and long polls on one wake on
puts through the other, whichever master holds the queue."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import redis
import redis.asyncio as aioredis

from ferrymq.http.app import redis_client
from ferrymq.http.settings import Settings

PROJECT = "000000000000000000000001"
AUTH = {"Authorization": "OAuth token-a"}
QUEUES = f"/1/projects/{PROJECT}/queues"


def put(http: httpx.Client, queue: str, *bodies: str) -> list[str]:
    response = http.post(f"{QUEUES}/{queue}/messages", json={"messages": [{"body": b} for b in bodies]}, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()["ids"]


def reserve(http: httpx.Client, queue: str, n: int = 1, **params: int) -> list[dict]:
    response = http.get(f"{QUEUES}/{queue}/messages", params={"n": n, **params}, headers=AUTH, timeout=15)
    assert response.status_code == 200, response.text
    return response.json()["messages"]


def test_a_server_given_one_node_serves_queues_on_every_master(cluster, spawn_server):
    server = spawn_server("--redis-url", cluster.nodes[-1].url)
    queues = [f"queue-{i}" for i in range(12)]
    with httpx.Client(base_url=server.url, timeout=10) as http:
        for queue in queues:
            put(http, queue, f"{queue}/1", f"{queue}/2")
        for node in cluster.nodes:
            with redis.Redis(port=node.port) as client:
                assert client.dbsize() > 0, f"nothing landed on the master at {node.port}"
        listed = http.get(QUEUES, params={"per_page": 100}, headers=AUTH).json()  # IronMQ v1: a bare array
        assert sorted(q["name"] for q in listed) == sorted(queues)
        for queue in queues:
            assert [m["body"] for m in reserve(http, queue, n=5)] == [f"{queue}/1", f"{queue}/2"]
    assert "CROSSSLOT" not in server.log()


def test_two_servers_on_a_cluster_share_messages_and_wake_each_others_long_polls(cluster, spawn_server, queue_on):
    a = spawn_server("--redis-url", cluster.nodes[1].url)
    b = spawn_server("--redis-url", cluster.nodes[2].url)
    with (httpx.Client(base_url=a.url, timeout=10) as http_a, httpx.Client(base_url=b.url, timeout=10) as http_b,
          ThreadPoolExecutor(1) as pool):
        for node in cluster.nodes:
            queue = queue_on(PROJECT, node.port)
            [put_id] = put(http_a, queue, "through a")
            [taken] = reserve(http_b, queue)
            assert (taken["id"], taken["body"]) == (put_id, "through a")
            assert reserve(http_a, queue) == []  # reserved through b: not delivered again

            waiting = pool.submit(reserve, http_a, queue, wait=10)
            time.sleep(0.3)  # let it park
            put_at = time.monotonic()
            put(http_b, queue, "through b")
            [woken] = waiting.result(timeout=15)
            latency = time.monotonic() - put_at
            assert woken["body"] == "through b"
            assert latency < 1.5, f"the long poll on a woke {latency:.2f} s after the put through b (master {node.port})"


async def test_the_server_client_is_a_cluster_client_given_any_node(cluster, redis_url):
    for node in cluster.nodes:
        client = redis_client(Settings(redis_url=node.url))
        try:
            assert isinstance(client, aioredis.RedisCluster)
            await client.set("k", "v")  # routed to whichever master owns the slot
            assert await client.get("k") == b"v"
        finally:
            await client.aclose()
    single = redis_client(Settings(redis_url=redis_url))
    assert type(single) is aioredis.Redis
    await single.aclose()

"""Redis Sentinel: the URL, the clients that follow the primary, and a failover seen from the
server, the CLI and a long poll: 503 while there is no primary, served again by the new one
without a restart, scripts loaded again, long polls subscribed again. Real sentinels on loopback
(tests/conftest.py, LocalSentinel); kill -9 of the primary."""

from __future__ import annotations

import asyncio
import subprocess
import time

import pytest
import redis
import redis.asyncio as aioredis

from ferrymq.engine import AsyncEngine, RedisClock, Unavailable
from ferrymq.http import connect
from ferrymq.http.settings import Settings

PROJECT = "000000000000000000000001"


def test_a_sentinel_url_names_the_sentinels_the_service_and_the_credentials():
    target = connect.parse_sentinel_url(
        "redis+sentinel://app:s%3Acret@10.0.0.1:26380,sentinel-b,[::1]:5000/my%20master/2"
        "?sentinel_password=watch&socket_connect_timeout=3")
    assert target.sentinels == [("10.0.0.1", 26380), ("sentinel-b", 26379), ("::1", 5000)]
    assert target.service == "my master"
    assert target.connection == {"username": "app", "password": "s:cret", "db": 2, "socket_connect_timeout": 3.0}
    assert target.sentinel == {"password": "watch", "socket_connect_timeout": 3.0, "socket_timeout": 2.0}


def test_a_tls_sentinel_url_uses_tls_to_the_sentinels_and_the_data_nodes():
    target = connect.parse_sentinel_url("rediss+sentinel://:pw@h:1/svc?ssl_cert_reqs=none")
    assert target.connection == {"password": "pw", "ssl": True, "ssl_cert_reqs": "none"}
    assert target.sentinel == {"ssl": True, "ssl_cert_reqs": "none", "socket_timeout": 2.0}


@pytest.mark.parametrize("url", [
    "redis+sentinel://h:26379", "redis+sentinel://h:26379/", "redis+sentinel:///svc",
    "redis+sentinel://:secret@h:notaport/svc", "redis+sentinel://h/svc/zero",
])
def test_a_malformed_sentinel_url_is_refused_without_showing_the_password(url):
    with pytest.raises(ValueError) as refused:
        connect.check_url(url)
    assert "secret" not in str(refused.value)


def test_the_server_never_prints_the_passwords_of_a_sentinel_url():
    from ferrymq.server.serve import redacted

    assert (redacted("redis+sentinel://app:pw@h1:26379,h2/svc?sentinel_password=spw&db=1")
            == "redis+sentinel://app:***@h1:26379,h2/svc?sentinel_password=***&db=1")


def test_other_urls_are_checked_by_redis_py_and_the_message_names_sentinel_too():
    connect.check_url("redis://localhost:6379/0")
    connect.check_url("unix:///tmp/redis.sock")
    with pytest.raises(ValueError, match="redis\\+sentinel://"):
        connect.check_url("http://localhost")


async def test_the_clients_talk_to_the_primary_the_sentinels_name(redis_sentinel):
    primary = redis_sentinel.primary()
    client = connect.redis_client(Settings(redis_url=redis_sentinel.url))
    try:
        assert type(client) is aioredis.Redis
        await client.set("written", "through sentinel")
        info = await client.info("server")
        assert info["tcp_port"] == primary.port
    finally:
        await client.aclose()
    with connect.sync_client(redis_sentinel.url) as sync:
        assert sync.get("written") == b"through sentinel"
        assert sync.info("server")["tcp_port"] == primary.port
    assert not connect.is_cluster_node(redis_sentinel.url)


def test_the_cli_works_on_the_primary_of_a_sentinel_url(redis_sentinel, ferrymq_script, clean_env):
    redis_sentinel.flush()
    env = {**clean_env, "FERRYMQ_REDIS_URL": redis_sentinel.url, "FERRYMQ_PROJECT": PROJECT,
           "FERRYMQ_MIN_REPLICAS_ACK": "1"}
    put = subprocess.run([str(ferrymq_script), "put", "orders", "first", "second"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert put.returncode == 0, put.stderr
    replica = next(node for node in redis_sentinel.nodes if node is not redis_sentinel.primary())
    with redis.Redis(port=replica.port) as replica:
        assert replica.hlen(f"fmq:{{{PROJECT}/orders}}:msg") == 1 + 2  # the empty field and both records: acknowledged, so on the replica
    bad = subprocess.run([str(ferrymq_script), "peek", "orders", "--min-replicas-ack", "1",
                          "--min-replicas-ack-timeout", "30"], env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "less than the command timeout" in bad.stderr


def test_the_server_answers_503_during_a_failover_then_serves_from_the_new_primary(redis_sentinels, spawn_server, iron):
    deployment = redis_sentinels()
    server = spawn_server("--redis-url", deployment.url)
    client = iron(server.url)
    assert client.put("q", "before").status_code == 200
    deployment.wait_for_replicas(deployment.primary(), 1)  # the replica has it before the crash
    old = deployment.kill_primary()
    statuses = []
    deadline = time.monotonic() + 30
    while not statuses or statuses[-1] != 200:
        assert time.monotonic() < deadline, f"not served again within 30 s: {statuses[-5:]}"
        statuses.append(client.put("q", f"attempt {len(statuses)}").status_code)
        time.sleep(0.05)
    assert set(statuses) <= {200, 503}, statuses
    assert 503 in statuses  # the failover took a while, and every request in it was told so
    assert deployment.primary() is not old
    bodies = [m["body"] for m in client.taken("q", 100)]
    assert bodies[0] == "before" and bodies[-1] == f"attempt {len(statuses) - 1}"
    assert "unhandled error" not in server.log()  # (the pusher and sweeper log their failed passes)


async def test_a_long_poll_waiting_through_a_failover_is_woken_by_a_put_on_the_new_primary(redis_sentinels, woken_by_put):
    deployment = redis_sentinels()
    consumer = AsyncEngine(connect.async_client(deployment.url), clock=RedisClock(), command_timeout=3)
    producer = AsyncEngine(connect.async_client(deployment.url), clock=RedisClock(), command_timeout=3,
                           min_replicas_ack=1)
    try:
        await producer.queue("p", "q").ensure()  # on the replica too, so the queue outlives the primary
        await consumer.queue("p", "warm-up").reserve(wait=0.1)  # the notifier is subscribed
        waiting = asyncio.create_task(consumer.queue("p", "q").reserve(wait=30))
        await asyncio.sleep(0.2)
        old = deployment.kill_primary()
        await asyncio.to_thread(deployment.wait_for_failover, old)
        await asyncio.sleep(1.5)  # the notifier notices within its reconnect backoff and subscribes again
        producer._acks = None  # the new primary has no replica yet: acknowledge on the primary alone
        put = put_until_served(producer.queue("p", "q"), "after the failover")
        await woken_by_put(waiting, put, b"after the failover", within=1.5)
    finally:
        for engine in (consumer, producer):
            await engine.aclose()
            await engine.client.aclose()


async def put_until_served(queue, body: str, timeout: float = 10) -> None:
    """The first calls after a failover may still meet a connection to the dead primary."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            await queue.put([body])
            return
        except Unavailable:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)


def test_an_unreachable_sentinel_is_skipped_for_the_next(redis_sentinel, unused_tcp_port):
    dead = f"127.0.0.1:{unused_tcp_port}"
    url = redis_sentinel.url.replace("redis+sentinel://", f"redis+sentinel://{dead},")
    started = time.monotonic()
    with connect.sync_client(url, socket_connect_timeout=1) as client:
        client.set("k", "v")
        assert client.get("k") == b"v"
    assert time.monotonic() - started < 1, "the dead sentinel was retried (redis-py backs off for seconds)"
    with pytest.raises(redis.ConnectionError):
        with connect.sync_client(f"redis+sentinel://{dead}/mymaster", socket_connect_timeout=1) as client:
            client.ping()

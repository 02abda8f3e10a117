"""The engine on a real three-master Redis Cluster, beyond the behaviour suite (which runs there
too: the `engine` fixture's "cluster" backend): work spread over every master, scripts on every
master, long polls that wake whichever master holds the queue, a notifier that survives the
loss of its node, and a dead master that makes calls Unavailable until it returns."""

from __future__ import annotations

import asyncio
import hashlib
import time

import pytest
import redis
import redis.asyncio as aioredis

from ferrymq.engine import AsyncEngine, Engine, RedisClock
from ferrymq.engine.keys import queue_keys
from ferrymq.engine.scripts import sources

PROJECTS = ["alpha", "beta", "gamma"]
KILLS_NODES = pytest.mark.filterwarnings("ignore::ResourceWarning")  # see collect_dropped_sockets


def node_clients(cluster):
    return [redis.Redis(port=node.port) for node in cluster.nodes]


def test_queues_of_several_projects_spread_over_every_master_and_list_across_them(cluster, cluster_engine):
    names = [f"queue-{i}" for i in range(12)]
    for project in PROJECTS:
        for name in names:
            cluster_engine.queue(project, name).put(["one", "two"])
    for client in node_clients(cluster):
        with client:
            assert client.dbsize() > 0, f"no queue landed on the master at port {client.connection_pool.connection_kwargs['port']}"
    assert cluster_engine.projects() == PROJECTS
    for project in PROJECTS:
        assert sorted(ref.name for ref in cluster_engine.list_queues(project, per_page=100)) == sorted(names)
        stats = cluster_engine.stats(project)
        assert [(s.name, s.ready) for s in sorted(stats, key=lambda s: s.name)] == [(n, 2) for n in sorted(names)]
        assert len(cluster_engine.list_details(project)) == len(names)
    assert cluster_engine.sweep().queues == len(PROJECTS) * len(names)


def test_load_scripts_puts_every_script_on_every_master(cluster, cluster_engine):
    """On a cluster the scripts run by SHA (see engine/scripts.py: redis-py's cluster client would
    spend a round trip per FCALL finding its keys)."""
    cluster_engine.load_scripts()
    assert cluster_engine.scripts.functions is False
    shas = [hashlib.sha1(src.text.encode()).hexdigest() for src in sources().values()]
    for client in node_clients(cluster):
        with client:
            assert client.script_exists(*shas) == [True] * len(shas)


def test_scripts_are_reloaded_after_every_master_forgot_them(cluster, cluster_engine, queue_on):
    """A restarted or failed-over master has an empty script cache: NOSCRIPT, load, retry."""
    queues = [cluster_engine.queue("p", queue_on("p", node.port)) for node in cluster.nodes]
    for q in queues:
        q.put(["before"])
    for client in node_clients(cluster):
        with client:
            client.script_flush()
    for q in queues:
        q.put(["after"])
        assert [m.body for m in q.reserve(5)] == [b"before", b"after"]


async def test_a_long_poll_wakes_for_a_put_on_any_master(cluster, async_cluster_engines, queue_on):
    consumer, producer = async_cluster_engines(), async_cluster_engines()
    for node in cluster.nodes:
        name = queue_on("p", node.port)
        waiting = asyncio.create_task(consumer.queue("p", name).reserve(wait=5))
        await asyncio.sleep(0.1)  # let it park
        put_at = time.monotonic()
        await producer.queue("p", name).put([f"for {node.port}"])
        [message] = await asyncio.wait_for(waiting, 3)
        assert message.body == f"for {node.port}".encode()
        assert time.monotonic() - put_at < 0.5, f"the wake-up for the master at {node.port} came late"
    assert await subscribed_connections(cluster) == 1  # one pub/sub connection for the process


async def subscribed_connections(cluster) -> int:
    count = 0
    for node in cluster.nodes:
        async with aioredis.Redis(port=node.port) as client:
            count += sum(1 for c in await client.client_list() if int(c.get("sub", 0)) > 0)
    return count


@KILLS_NODES
async def test_the_notifier_moves_to_another_node_when_its_node_dies(redis_clusters, woken_by_put):
    # Full coverage off: the surviving masters keep serving their slots while one is down.
    cluster = redis_clusters("--cluster-require-full-coverage", "no")
    consumer = AsyncEngine(aioredis.RedisCluster.from_url(cluster.url), clock=RedisClock())
    producer = AsyncEngine(aioredis.RedisCluster.from_url(cluster.url), clock=RedisClock())
    try:
        await producer.client.initialize()  # learns every node while all are up
        listener = await start_listening(consumer, cluster)
        survivor = next(node for node in cluster.nodes if node is not listener)
        with redis.RedisCluster.from_url(cluster.url) as admin:
            name = next(f"q{i}" for i in range(1000)
                        if admin.get_node_from_key(queue_keys("fmq", "p", f"q{i}").meta).port == survivor.port)
        await producer.queue("p", name).create()  # the project's registry may be on the node to die
        waiting = asyncio.create_task(consumer.queue("p", name).reserve(wait=10))
        await asyncio.sleep(0.1)
        listener.process.kill()  # the node the notifier listens on
        listener.process.wait(10)
        await asyncio.sleep(1.5)  # it notices at once and moves within its reconnect backoff
        await woken_by_put(waiting, producer.queue("p", name).put(["still heard"]), b"still heard", within=1.0)
    finally:
        for engine in (consumer, producer):
            await engine.aclose()
            await engine.client.aclose()


async def start_listening(engine: AsyncEngine, cluster):
    """Park one short long poll so the notifier subscribes; the node it subscribed on."""
    await engine.queue("p", "warm-up").reserve(wait=0.2)
    for node in cluster.nodes:
        async with aioredis.Redis(port=node.port) as client:
            if any(int(c.get("sub", 0)) > 0 for c in await client.client_list()):
                return node
    raise AssertionError("the notifier subscribed on no node")


@KILLS_NODES
async def test_a_dead_master_makes_calls_unavailable_not_errors_until_it_returns(redis_clusters):
    """Whatever redis-py raises while a master is down (a refused connection, then CLUSTERDOWN
    once the others notice), the engine says Unavailable (HTTP 503); it serves again by itself."""
    cluster = redis_clusters("--cluster-node-timeout", "1000")  # notice the loss within seconds
    engine = AsyncEngine(aioredis.RedisCluster.from_url(cluster.url), clock=RedisClock(), command_timeout=3)
    try:
        with redis.RedisCluster.from_url(cluster.url) as admin:
            names = [next(f"q{i}" for i in range(1000)
                          if admin.get_node_from_key(queue_keys("fmq", "p", f"q{i}").meta).port == node.port)
                     for node in cluster.nodes]
        queues = [engine.queue("p", name) for name in names]
        await put_on_every_master_until(queues, lambda o: o == ["ok"] * 3)  # the client knows every master
        victim = cluster.nodes[1]
        victim.kill()
        outcomes = await put_on_every_master_until(queues, lambda o: o[0] == "Unavailable" and o[2] == "Unavailable")
        assert {kind for outcome in outcomes for kind in outcome} <= {"ok", "Unavailable"}
        victim.restart()
        await put_on_every_master_until(queues, lambda o: o == ["ok"] * 3)
    finally:
        await engine.client.aclose()


async def put_on_every_master_until(queues, done, timeout: float = 20.0) -> list[list[str]]:
    """Put one message on each queue, again and again, until ``done(outcomes of one round)``;
    every round's outcomes: "ok" or the name of the exception."""
    rounds: list[list[str]] = []
    deadline = time.monotonic() + timeout
    while not rounds or not done(rounds[-1]):
        assert time.monotonic() < deadline, f"not done in {timeout} s: {rounds[-3:]}"
        outcome = []
        for q in queues:
            try:
                await q.put(["x"])
                outcome.append("ok")
            except Exception as exc:
                outcome.append(type(exc).__name__)
        rounds.append(outcome)
        await asyncio.sleep(0.1)
    return rounds


@pytest.mark.parametrize("name", ["orders", "events", "q7"])
def test_a_queue_of_three_partitions_has_one_on_each_master(cluster, cluster_engine, cluster_client, name):
    q = cluster_engine.queue("p", name)
    q.ensure(partitions=3)
    ids = [q.put([f"m{i}"])[0] for i in range(6)]
    assert q.info().settings.partitions == 3
    tags = cluster_client.hget(queue_keys("fmq", "p", name).meta, "parts").decode().split("|")[1:]
    metas = [queue_keys("fmq", "p", name, tag).meta for tag in ("", *tags)]
    ports = {cluster_client.get_node_from_key(meta).port for meta in metas}
    assert len(ports) == 3, f"partitions of {name!r} share a master: {ports}"
    for client in node_clients(cluster):
        with client:
            assert len(client.keys("fmq:{p/" + name + "*:msg")) == 1
    assert sorted(m.id for m in q.reserve(6)) == sorted(ids)



async def test_both_engines_follow_redis_time_on_a_cluster(cluster, cluster_client, async_cluster_engines):
    """TIME goes to one node of the cluster: its reading is what both engines pass to the scripts."""
    sync_engine = Engine(cluster_client, clock=RedisClock())
    for _ in range(100):  # a first reading slowed by the client's learning the cluster is tried again
        sync_engine.queue("clock", "sync").put(["m"])
        if sync_engine.clock.script_now():
            break
        time.sleep(0.05)
    async_engine = async_cluster_engines()
    for _ in range(100):  # the same
        await async_engine.queue("clock", "async").put(["m"])
        if async_engine.clock.script_now():
            break
        await asyncio.sleep(0.05)
    seconds, micros = cluster_client.time()
    redis_ms = seconds * 1000 + micros / 1000
    assert abs(int(sync_engine.clock.script_now()) - redis_ms) < 50
    assert abs(int(async_engine.clock.script_now()) - redis_ms) < 50

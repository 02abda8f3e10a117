"""The sync engine's commands on a connection kept from the client's pool (engine/direct.py): a
connection Redis closed between calls is replaced, with or without retries; threads calling at
once each get their own replies; a small pool keeps no connection aside, ``close`` gives the
kept one back; the engines on one pool share one, which goes with the pool; a forked child
keeps its own."""

from __future__ import annotations

import gc
import os
import threading
import weakref

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ferrymq.engine import Engine


@pytest.mark.parametrize("retries", [0, 3])
def test_a_connection_redis_closed_between_calls_is_replaced(redis_url, clock, retries):
    client = redis.Redis.from_url(redis_url, retry=Retry(NoBackoff(), retries), client_name="direct-test")
    client.flushall()
    q = Engine(client, clock=clock).queue("p", "q")
    q.put(["before"])
    killer = redis.Redis.from_url(redis_url)
    for connection in killer.client_list():  # the engine's kept one among them
        if connection["name"] == "direct-test":
            killer.client_kill_filter(_id=connection["id"])
    q.put(["after"])
    assert [m.body for m in q.reserve(10)] == [b"before", b"after"]
    client.close(), killer.close()


def test_threads_calling_at_once_each_get_their_own_replies(redis_url, clock):
    client = redis.Redis.from_url(redis_url)
    client.flushall()
    engine = Engine(client, clock=clock)
    mismatches: list[tuple[str, list[bytes]]] = []

    def work(t: int) -> None:
        q = engine.queue("p", f"q{t}")
        for i in range(100):
            body = f"{t}-{i}"
            q.put([body])
            got = [m.body for m in q.reserve(1)]
            if got != [body.encode()]:
                mismatches.append((body, got))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert mismatches == []
    client.close()


def test_a_small_pool_keeps_no_connection_aside(redis_url, clock):
    pool = redis.BlockingConnectionPool.from_url(redis_url, max_connections=2, timeout=0.5)
    client = redis.Redis(connection_pool=pool)
    q = Engine(client, clock=clock).queue("p", "q")
    q.put(["a"])
    both = [pool.get_connection(), pool.get_connection()]  # the engine holds neither
    assert len(both) == 2
    for connection in both:
        pool.release(connection)
    pool.disconnect()


def test_close_gives_the_kept_connection_back(redis_url, clock):
    pool = redis.BlockingConnectionPool.from_url(redis_url, max_connections=8, timeout=0.2)
    engine = Engine(redis.Redis(connection_pool=pool), clock=clock)
    engine.queue("p", "q").put(["a"])
    others = [pool.get_connection() for _ in range(7)]
    with pytest.raises(redis.ConnectionError):  # the eighth is the engine's
        pool.get_connection()
    engine.close()
    others.append(pool.get_connection())
    for connection in others:
        pool.release(connection)
    assert engine.queue("p", "q").reserve(1)[0].body == b"a"  # usable after: it takes one again
    pool.disconnect()


def test_engines_on_one_pool_share_its_one_kept_connection(redis_url, clock):
    pool = redis.BlockingConnectionPool.from_url(redis_url, max_connections=8, timeout=0.2)
    client = redis.Redis(connection_pool=pool)
    client.flushall()
    engines = [Engine(client, clock=clock) for _ in range(20)]  # each keeping one would take all 8
    for i, engine in enumerate(engines):
        engine.queue("p", "q").put([f"m{i}"])
    others = [pool.get_connection() for _ in range(7)]
    with pytest.raises(redis.ConnectionError):  # the eighth is the one kept for them all
        pool.get_connection()
    engines[0].close()
    others.append(pool.get_connection())
    for connection in others:
        pool.release(connection)
    assert len(engines[1].queue("p", "q").reserve(100)) == 20
    pool.disconnect()


def test_nothing_keeps_a_pool_whose_clients_are_gone(redis_url, clock):
    client = redis.Redis.from_url(redis_url)
    Engine(client, clock=clock).queue("p", "q").put(["a"])
    pool = weakref.ref(client.connection_pool)
    del client
    gc.collect()
    assert pool() is None


def test_a_forked_child_uses_a_connection_of_its_own(redis_url, clock):
    client = redis.Redis.from_url(redis_url)
    client.flushall()
    engine = Engine(client, clock=clock)
    q = engine.queue("p", "q")
    q.put(["parent"])
    pid = os.fork()
    if pid == 0:  # the child: its put and its close must work, on a connection of its own
        try:
            q.put(["child"])
            engine.close()
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert sorted(m.body for m in q.reserve(10)) == [b"child", b"parent"]
    client.close()

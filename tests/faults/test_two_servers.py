"""Two `ferrymq serve` processes on one Redis behave as one broker: a message put through one is
reserved through the other, long polls on one wake on puts through the other, and consumers
racing through both never get one message twice."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor


def test_a_message_put_through_one_server_is_reserved_through_the_other_once(redis_servers, spawn_server, iron):
    redis = redis_servers()
    a, b = (iron(spawn_server("--redis-url", redis.url).url) for _ in range(2))
    [put_id] = a.put("q", "through a").json()["ids"]
    [taken] = b.taken("q", 1, timeout=60)
    assert (taken["id"], taken["body"]) == (put_id, "through a")
    assert a.taken("q", 1) == [] and b.taken("q", 1) == []
    assert a.delete("q", put_id).status_code == 200  # deleted through the server that did not deliver it
    assert b.size("q") == 0


def test_a_long_poll_on_one_server_wakes_on_a_put_through_the_other(redis_servers, spawn_server, iron):
    redis = redis_servers()
    a, b = (iron(spawn_server("--redis-url", redis.url).url, timeout=20) for _ in range(2))
    a.put("q", "warm-up")  # the queue exists, and a's scripts are loaded
    assert len(a.taken("q", 1)) == 1
    with ThreadPoolExecutor(1) as pool:
        for round_ in range(3):
            waiting = pool.submit(a.taken, "q", 1, wait=10)
            time.sleep(0.3)  # let it park
            put_at = time.monotonic()
            b.put("q", f"round {round_}")
            [woken] = waiting.result(timeout=20)
            latency = time.monotonic() - put_at
            assert woken["body"] == f"round {round_}"
            assert latency < 1.5, f"the long poll on a woke {latency:.2f} s after the put through b"


def test_consumers_racing_through_both_servers_get_every_message_exactly_once(redis_servers, spawn_server, iron):
    redis = redis_servers()
    servers = [spawn_server("--redis-url", redis.url).url for _ in range(2)]
    producer = iron(servers[0])
    put_ids = [i for batch in range(4) for i in producer.put("q", *(f"{batch}/{n}" for n in range(50))).json()["ids"]]
    consumers = [iron(servers[k % 2]) for k in range(8)]

    def drain(consumer) -> list[str]:
        got: list[str] = []
        while batch := consumer.taken("q", 7, timeout=60):
            got += [m["id"] for m in batch]
        return got

    with ThreadPoolExecutor(len(consumers)) as pool:
        delivered = [i for ids in pool.map(drain, consumers) for i in ids]
    assert sorted(delivered) == sorted(put_ids), "a message was delivered twice, or never"

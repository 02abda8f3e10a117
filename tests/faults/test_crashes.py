"""Crashes: kill -9 of the embedded Redis under `appendfsync always` loses nothing acknowledged,
and kill -9 of the server in the middle of requests leaves no message half-written (each change
is one script). Loopback only; every wait is bounded."""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import redis

from ferrymq.server.embedded import EmbeddedRedis

WRITERS = 4


def put_until(client, queue: str, stop: threading.Event, writer: int, batch: int = 1) -> tuple[set[str], int]:
    """Put batches of ``batch`` messages until ``stop``: the bodies the server acknowledged, and
    how many attempts failed (5xx, or the connection lost)."""
    acknowledged, failed, n = set(), 0, 0
    while not stop.is_set():
        bodies = [f"{writer}/{n}/{i}" for i in range(batch)]
        n += 1
        try:
            response = client.put(queue, *bodies)
        except Exception:  # the server died mid-request
            failed += 1
            time.sleep(0.01)
            continue
        if response.status_code == 200:
            acknowledged.update(bodies)
        else:
            assert response.status_code == 503, response.text
            failed += 1
            time.sleep(0.01)
    return acknowledged, failed


def wait_for(predicate, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.05)


def drain(client, queue: str) -> list[str]:
    bodies: list[str] = []
    while batch := client.taken(queue, 100, timeout=600):
        bodies += [m["body"] for m in batch]
    return bodies


def test_every_acknowledged_put_survives_kill_9_of_the_embedded_redis(spawn_server, iron, tmp_path):
    data_dir = tmp_path / "data"
    server = spawn_server("--data-dir", str(data_dir), "--appendfsync", "always")
    client = iron(server.url)
    redis_url = EmbeddedRedis(data_dir).running_url()
    assert redis_url is not None
    with redis.Redis.from_url(redis_url) as direct:
        assert direct.config_get("appendfsync") == {"appendfsync": "always"}
        pid = direct.info("server")["process_id"]
    stop = threading.Event()
    with ThreadPoolExecutor(WRITERS) as pool:
        writers = [pool.submit(put_until, iron(server.url), "q", stop, w) for w in range(WRITERS)]
        wait_for(lambda: client.size("q") >= 200, what="200 puts")
        os.kill(pid, signal.SIGKILL)  # the supervisor of `ferrymq serve` restarts it from its AOF
        wait_for(lambda: client.put("q", "after the crash").status_code == 200, what="recovery")
        time.sleep(0.2)  # a few more puts after the restart
        stop.set()
        results = [w.result(timeout=30) for w in writers]
    acknowledged = set().union(*(acked for acked, _ in results))
    present = drain(client, "q")
    assert len(present) == len(set(present)), "a message came back twice"
    assert not acknowledged - set(present), f"{len(acknowledged - set(present))} acknowledged messages lost"
    assert "after the crash" in present


def test_kill_9_of_the_server_mid_request_leaves_no_message_half_written(durable_redis, spawn_server, iron, account):
    queues = ["q-put", "q-take"]
    first = spawn_server("--redis-url", durable_redis.url)
    seed = iron(first.url)
    for _ in range(20):
        assert seed.put("q-take", *(f"seed/{i}" for i in range(100))).status_code == 200
    stop = threading.Event()

    def take_and_delete(client) -> int:
        """Reserve batches and delete them, until stop: how many deletes were acknowledged."""
        deleted = 0
        while not stop.is_set():
            try:
                for message in client.taken("q-take", 50, timeout=600):
                    deleted += client.delete("q-take", message["id"]).status_code == 200
            except Exception:  # the server died mid-request
                time.sleep(0.01)
        return deleted

    with ThreadPoolExecutor(WRITERS + 2) as pool:
        writers = [pool.submit(put_until, iron(first.url), "q-put", stop, w, batch=100) for w in range(WRITERS)]
        takers = [pool.submit(take_and_delete, iron(first.url)) for _ in range(2)]
        wait_for(lambda: seed.size("q-put") >= 1000, what="1000 puts")
        first.kill()
        stop.set()
        [w.result(timeout=30) for w in writers]
        [t.result(timeout=30) for t in takers]

    totals = account(durable_redis.url, queues)
    assert totals["records"] == totals["queued"] == totals["put"] - totals["deleted"]
    second = spawn_server("--redis-url", durable_redis.url)
    client = iron(second.url)
    batches: dict[str, int] = {}
    for body in drain(client, "q-put"):
        writer, n, _ = body.split("/")
        batches[f"{writer}/{n}"] = batches.get(f"{writer}/{n}", 0) + 1
    assert batches and set(batches.values()) == {100}, "a batch of 100 was written in part"

"""A bounded soak: 32 concurrent clients mix put, reserve and delete through HTTP against one
`ferrymq serve` for FERRYMQ_SOAK_SECONDS (default 5; the README gives the full 60 s command).
Every message is accounted for at the end (put = deleted + still queued), no request fails,
and the latency percentiles are reported."""

from __future__ import annotations

import os
import random
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

CLIENTS = 32
QUEUES = [f"soak-{i}" for i in range(4)]


@dataclass
class Tally:
    """One client's count of what the server acknowledged, and how long each request took."""

    put: int = 0
    deleted: int = 0
    failures: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)


def soak_seconds() -> float:
    return float(os.environ.get("FERRYMQ_SOAK_SECONDS", "5"))


def client_loop(client, seed: int, stop: threading.Event) -> Tally:
    rng, tally, held = random.Random(seed), Tally(), []

    def timed(call, *args, **kwargs):
        started = time.perf_counter()
        response = call(*args, **kwargs)
        tally.latencies.append(time.perf_counter() - started)
        if response.status_code != 200:
            tally.failures.append(f"{response.request.method} {response.request.url.path}: {response.status_code} {response.text[:200]}")
            return None
        return response.json()

    while not stop.is_set():
        queue, action = rng.choice(QUEUES), rng.random()
        if action < 0.4:
            bodies = [f"{seed}/{tally.put + i}" for i in range(rng.randint(1, 5))]
            if (done := timed(client.put, queue, *bodies)) is not None:
                tally.put += len(done["ids"])
        elif action < 0.75 or not held:
            if (done := timed(client.reserve, queue, rng.randint(1, 5), timeout=300)) is not None:
                held += [(queue, m["id"]) for m in done["messages"]]
        else:
            queue, message_id = held.pop(rng.randrange(len(held)))
            if timed(client.delete, queue, message_id) is not None:
                tally.deleted += 1
    return tally


def test_a_soak_of_32_clients_accounts_for_every_message(redis_servers, spawn_server, iron, account, capsys):
    redis = redis_servers()
    server = spawn_server("--redis-url", redis.url)
    clients = [iron(server.url, timeout=30) for _ in range(CLIENTS)]
    stop = threading.Event()
    with ThreadPoolExecutor(CLIENTS) as pool:
        running = [pool.submit(client_loop, client, seed, stop) for seed, client in enumerate(clients)]
        time.sleep(soak_seconds())
        stop.set()
        tallies = [r.result(timeout=60) for r in running]

    failures = [f for t in tallies for f in t.failures]
    assert failures == [], f"{len(failures)} requests failed, first: {failures[:3]}"
    put, deleted = sum(t.put for t in tallies), sum(t.deleted for t in tallies)
    totals = account(redis.url, QUEUES)
    assert put > 0 and deleted > 0
    assert (totals["put"], totals["deleted"]) == (put, deleted), "the server counted other puts or deletes than it acknowledged"
    assert totals["queued"] == put - deleted, "put != deleted + still queued"
    assert totals["records"] == totals["queued"]
    latencies = sorted(latency for t in tallies for latency in t.latencies)
    p50, p99 = (latencies[int(q * (len(latencies) - 1))] * 1000 for q in (0.50, 0.99))
    with capsys.disabled():
        print(f"\nsoak: {len(latencies)} requests in {soak_seconds():.0f} s by {CLIENTS} clients "
              f"({len(latencies) / soak_seconds():.0f}/s), put {put}, deleted {deleted}, "
              f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {latencies[-1] * 1000:.1f} ms, "
              f"mean {statistics.fmean(latencies) * 1000:.1f} ms")

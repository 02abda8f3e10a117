"""Redis memory per queued message beyond its 100-byte body: ``used_memory`` after queueing
``n`` messages on an empty Redis, minus before, over ``n``."""

from __future__ import annotations

from collections.abc import Callable

from ferrymq.engine import Engine

from .harness import BODY, RedisServer, Results

SECTION = "memory"


def ferrymq(server: RedisServer, n: int) -> None:
    q = Engine(server.client).queue("bench", "memory")
    q.ensure()
    for _ in range(n // 100):
        q.put([BODY] * 100)


def pipelined(command: Callable[..., object]) -> Callable[[RedisServer, int], None]:
    def fill(server: RedisServer, n: int) -> None:
        for _ in range(n // 100):
            pipe = server.client.pipeline(transaction=False)
            for _ in range(100):
                command(pipe)
            pipe.execute()

    return fill


SYSTEMS = {
    "ferrymq engine": ferrymq,
    "raw list (limit)": pipelined(lambda p: p.lpush("raw", BODY)),
    "Redis Streams": pipelined(lambda p: p.xadd("stream", {"body": BODY})),
}


def run(server: RedisServer, results: Results, n: int) -> None:
    for name, fill in SYSTEMS.items():
        server.flush()
        before = server.client.info("memory")["used_memory"]
        fill(server, n)
        used = server.client.info("memory")["used_memory"] - before
        results.add(f"memory/{name}", SECTION, name, "memory per queued message", f"{n:,} messages",
                    {"bytes_per_msg": used / n - len(BODY)})

"""What replicated acknowledgement costs: put rates with ``min_replicas_ack`` 0 and 1 side by
side, on the bench's Redis with one replica attached for the section (unpinned: a replica is
usually another machine, and this one has two cores). Each N = 1 put is the script and ``WAIT 1``
in one round trip, so what it adds is the replica's confirmation, paid per call: single puts pay
it per message, batches of 100 per 100, and calls in flight overlap their waits."""

from __future__ import annotations

import asyncio
import subprocess
import tempfile
from collections.abc import Callable

import redis
import redis.asyncio as aioredis

from ferrymq.engine import AsyncEngine, Engine

from .cases import Case, Steps, run_rounds
from .harness import BODY, RedisServer, Results, free_port, wait_until

SECTION = "replication"
ACK_TIMEOUT = 5.0
IN_FLIGHT = 16


class Replica:
    """A redis-server replicating the bench's Redis, for as long as the section runs."""

    def __init__(self, primary: RedisServer) -> None:
        self.port = free_port()
        self._dir = tempfile.TemporaryDirectory(prefix="ferrymq-bench-replica-")
        self.process = subprocess.Popen(
            [primary.binary, "--port", str(self.port), "--save", "", "--appendonly", "no", "--dir", self._dir.name,
             "--replicaof", "127.0.0.1", str(primary.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_until(lambda: self._in_sync(primary), 20, "the bench's replica did not sync")

    @staticmethod
    def _in_sync(primary: RedisServer) -> bool:
        replication = primary.client.info("replication")
        return any(isinstance(v, dict) and v.get("state") == "online" for k, v in replication.items()
                   if k.startswith("slave"))

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        self._dir.cleanup()


def sync_puts(acks: int, batch: int) -> Callable[[RedisServer, int], Steps]:
    def run(server: RedisServer, n: int) -> Steps:
        q = Engine(server.client, min_replicas_ack=acks, min_replicas_ack_timeout=ACK_TIMEOUT).queue("bench", "r")

        def put() -> None:
            for _ in range(n // batch):
                q.put([BODY] * batch)

        return {"put": server.timed(n, put)}

    return run


def async_puts(acks: int) -> Callable[[RedisServer, int], Steps]:
    def run(server: RedisServer, n: int) -> Steps:
        async def timed() -> Steps:
            client = aioredis.Redis(port=server.port)
            engine = AsyncEngine(client, min_replicas_ack=acks, min_replicas_ack_timeout=ACK_TIMEOUT)
            q = engine.queue("bench", "r")
            todo = iter(range(n))

            async def worker() -> None:
                for _ in todo:
                    await q.put([BODY])

            async def put() -> None:
                await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))

            try:
                return {"put": await server.timed_async(n, put)}
            finally:
                await engine.aclose()
                await client.aclose()

        return asyncio.run(timed())

    return run


def cases() -> list[Case]:
    found = []
    for acks in (0, 1):
        system = f"ferrymq engine, min_replicas_ack {acks}"
        found += [
            Case(f"replication/single/n{acks}", SECTION, system, "batch 1 (sync)", sync_puts(acks, 1),
                 probe=300, lifecycle=False),
            Case(f"replication/batch100/n{acks}", SECTION, system, "batch 100 (sync)", sync_puts(acks, 100),
                 multiple=100, probe=2000, lifecycle=False),
            Case(f"replication/inflight/n{acks}", SECTION, system, f"batch 1, {IN_FLIGHT} in flight (asyncio)",
                 async_puts(acks), probe=300, lifecycle=False),
        ]
    # Side by side: each kind of put with N = 0, then N = 1.
    return sorted(found, key=lambda case: case.key.split("/")[1])


def run(server: RedisServer, results: Results, rounds: int, seconds: float, log: Callable[[str], None]) -> None:
    replica = Replica(server)
    try:
        run_rounds(server, results, cases(), rounds, seconds, log)
    finally:
        replica.close()
    with redis.Redis(port=server.port) as client:  # the section leaves the server as it found it
        client.flushall()

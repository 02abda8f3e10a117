"""FerryMQ's engine from one Python process: put all, reserve all, delete all (each delete under
its reservation id, as a consumer does), in batches, or single messages with several calls in
flight: through asyncio (the API the HTTP server uses), or pipelined (the engine's verbs stepped
in lockstep, their script calls sent in one pipeline: what Redis costs when the Python client
is not the bottleneck)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Generator, Sequence
from typing import Any

import redis.asyncio as aioredis

try:
    import uvloop
except ImportError:  # where it can't install: the server runs on asyncio's loop there too
    uvloop = None

from ferrymq.engine._facade import translate
from ferrymq.engine import DEFAULTS, LIMITS, AsyncEngine, Engine, Message, RedisClock
from ferrymq.engine.core import Command, Eval
from ferrymq.engine.verbs import Context, QueueVerbs

from .cases import Case, Steps
from .harness import BODY, RedisServer

SECTION = "engine"


def batches(server: RedisServer, n: int, batch: int) -> Steps:
    q = Engine(server.client).queue("bench", f"b{batch}")
    taken: list[Message] = []

    def put() -> None:
        for _ in range(n // batch):
            q.put([BODY] * batch)

    def reserve() -> None:
        while len(taken) < n:
            taken.extend(q.reserve(batch))

    def delete() -> None:
        for i in range(0, n, batch):
            q.settle(deletes=[(m.id, m.reservation_id) for m in taken[i : i + batch]])

    return {"put": server.timed(n, put), "reserve": server.timed(n, reserve), "delete": server.timed(n, delete)}


async def in_flight(calls: int, n: int, op: Callable[[int], Awaitable[Any]]) -> None:
    """``n`` calls of ``op``, ``calls`` of them in flight at any time."""
    todo = iter(range(n))

    async def worker() -> None:
        for i in todo:
            await op(i)

    await asyncio.gather(*(worker() for _ in range(calls)))


def async_engine(server: RedisServer, coalesce: bool = True) -> tuple[aioredis.Redis, AsyncEngine]:
    client = aioredis.Redis(port=server.port)
    return client, AsyncEngine(client, coalesce=coalesce)


def fill(server: RedisServer, project: str, name: str, n: int) -> None:
    """``n`` messages (untimed), put 100 a call with 8 calls in flight: a million in seconds."""

    async def main() -> None:
        client, engine = async_engine(server)
        q = engine.queue(project, name)
        try:
            await in_flight(8, -(-n // 100), lambda _: q.put([BODY] * 100))
        finally:
            await client.aclose()

    asyncio.run(main())


def singles(server: RedisServer, n: int, calls: int, loop: str = "asyncio", coalesce: bool = True) -> Steps:
    """put 1, reserve 1, delete 1 with ``calls`` in flight, on asyncio's own loop or on uvloop
    (the server's loop: ``ferrymq serve`` runs on it where it is installed); ``coalesce``: the
    engine's merging of concurrent single-message calls (engine/coalesce.py), on or off."""

    async def main() -> Steps:
        client, engine = async_engine(server, coalesce=coalesce)
        q = engine.queue("bench", f"c{calls}")
        taken: list[Message] = []

        async def reserve(_: int) -> None:
            while not (got := await q.reserve(1)):
                pass
            taken.extend(got)

        try:
            return {
                "put": await server.timed_async(n, lambda: in_flight(calls, n, lambda _: q.put([BODY]))),
                "reserve": await server.timed_async(n, lambda: in_flight(calls, n, reserve)),
                "delete": await server.timed_async(n, lambda: in_flight(
                    calls, n, lambda i: q.delete_message(taken[i].id, taken[i].reservation_id))),
            }
        finally:
            await engine.aclose()
            await client.aclose()

    return uvloop.run(main()) if loop == "uvloop" else asyncio.run(main())


def bulk_then_consume(server: RedisServer, n: int, calls: int) -> Steps:
    """What BullMQ's addBulk + Worker does: put in batches of 100, then ``calls`` consumers take
    and delete one at a time, each delete handing out the next message in the same script call
    (``delete_and_reserve``, as BullMQ's moveToFinished fetches the next job)."""

    async def main() -> Steps:
        client, engine = async_engine(server)
        q = engine.queue("bench", f"consume{calls}")

        async def put() -> None:
            for _ in range(n // 100):
                await q.put([BODY] * 100)

        async def consumer() -> None:
            taken = await q.reserve(1)
            while taken:
                taken = await q.delete_and_reserve(taken[0].id, taken[0].reservation_id)

        async def consume() -> None:  # every message is in: the consumers stop when it is empty
            await asyncio.gather(*(consumer() for _ in range(calls)))

        try:
            return {"put": await server.timed_async(n, put), "consume": await server.timed_async(n, consume)}
        finally:
            await engine.aclose()
            await client.aclose()

    return asyncio.run(main())


class Lockstep:
    """Runs verbs side by side: each round sends the next step of every verb in one pipeline."""

    def __init__(self, server: RedisServer, name: str) -> None:
        self.client = server.client
        self.engine = Engine(self.client)
        self.engine.load_scripts()
        self.verbs = QueueVerbs(Context("fmq", RedisClock(), LIMITS, DEFAULTS), "bench", name)

    def run(self, verbs: Sequence[Generator[Any, Any, Any]]) -> list[Any]:
        results: list[Any] = [None] * len(verbs)
        replies: dict[int, Any] = {i: None for i in range(len(verbs))}
        while replies:
            pipe, asked = self.client.pipeline(transaction=False), []
            for i, reply in replies.items():
                try:
                    step = verbs[i].throw(translate(reply)) if isinstance(reply, Exception) else verbs[i].send(reply)
                except StopIteration as done:
                    results[i] = done.value
                    continue
                if isinstance(step, Eval):
                    pipe.execute_command(*self.engine.scripts.command(step.verb, step.keys, step.args))
                elif isinstance(step, Command):
                    pipe.execute_command(*step.args)
                else:
                    raise TypeError(step)
                asked.append(i)
            replies = dict(zip(asked, pipe.execute(raise_on_error=False))) if asked else {}
        return results


def pipelined(server: RedisServer, n: int, calls: int) -> Steps:
    """put 1, reserve 1, delete 1, ``calls`` verbs per pipeline."""
    lock = Lockstep(server, f"p{calls}")
    taken: list[Message] = []

    def rounds(make: Callable[[int], Generator[Any, Any, Any]]) -> Callable[[], None]:
        return lambda: [lock.run([make(i + j) for j in range(calls)]) for i in range(0, n, calls)]

    def reserve() -> None:
        while len(taken) < n:
            for got in lock.run([lock.verbs.reserve(1) for _ in range(min(calls, n - len(taken)))]):
                taken.extend(got)

    return {
        "put": server.timed(n, rounds(lambda _: lock.verbs.put([BODY]))),
        "reserve": server.timed(n, reserve),
        "delete": server.timed(n, rounds(lambda i: lock.verbs.delete_message(taken[i].id, taken[i].reservation_id))),
    }


def cases() -> list[Case]:
    found = [
        Case(f"ferrymq/b{b}", SECTION, "ferrymq engine", f"batch {b}", lambda s, n, b=b: batches(s, n, b),
             multiple=b, probe=max(500, 20 * b))
        for b in (1, 10, 100)
    ]
    found.append(Case("ferrymq/c16", SECTION, "ferrymq engine", "1 msg/call, 16 in flight (asyncio)",
                      lambda s, n: singles(s, n, 16), probe=500))
    found.append(Case("ferrymq/c16solo", SECTION, "ferrymq engine", "1 msg/call, 16 in flight (asyncio, calls not merged)",
                      lambda s, n: singles(s, n, 16, coalesce=False), probe=500))
    if uvloop is not None:
        found.append(Case("ferrymq/c16uv", SECTION, "ferrymq engine", "1 msg/call, 16 in flight (asyncio on uvloop)",
                          lambda s, n: singles(s, n, 16, "uvloop"), probe=500))
    found.append(Case("ferrymq/p16", SECTION, "ferrymq engine", "1 msg/call, 16 pipelined",
                      lambda s, n: pipelined(s, n, 16), multiple=16, probe=992))
    return found


def peer_cases() -> list[Case]:
    """FerryMQ as its peers are driven (compared row by row in the peers table)."""
    return [
        Case(f"ferrymq/bulk-c{c}", "peers", "ferrymq engine", f"put x100, consume {c} in flight",
             lambda s, n, c=c: bulk_then_consume(s, n, c), multiple=100, probe=500, sized_by=("consume",))
        for c in (1, 16)
    ]

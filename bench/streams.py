"""Redis Streams with a consumer group, driven as a queue: XADD (pipelined at the batch size),
XREADGROUP COUNT batch, then XACK + XDEL of the batch in one pipeline."""

from __future__ import annotations

from .cases import Case, Steps
from .harness import BODY, RedisServer

STREAM, GROUP = "stream", "workers"


def lifecycle(server: RedisServer, n: int, batch: int) -> Steps:
    r = server.client
    r.xgroup_create(STREAM, GROUP, id="$", mkstream=True)
    taken: list[list[bytes]] = []

    def put() -> None:
        for _ in range(n // batch):
            pipe = r.pipeline(transaction=False)
            for _ in range(batch):
                pipe.execute_command("XADD", STREAM, "*", "body", BODY)
            pipe.execute()

    def reserve() -> None:
        got = 0
        while got < n:
            reply = r.execute_command("XREADGROUP", "GROUP", GROUP, "c1", "COUNT", batch, "STREAMS", STREAM, ">")
            ids = [entry[0] for entry in reply[0][1]]
            taken.append(ids)
            got += len(ids)

    def delete() -> None:
        for ids in taken:
            pipe = r.pipeline(transaction=False)
            pipe.execute_command("XACK", STREAM, GROUP, *ids)
            pipe.execute_command("XDEL", STREAM, *ids)
            pipe.execute()

    return {"put": server.timed(n, put), "reserve": server.timed(n, reserve), "delete": server.timed(n, delete)}


def cases() -> list[Case]:
    return [
        Case(f"streams/b{b}", "engine", "Redis Streams + group", f"batch {b}",
             lambda s, n, b=b: lifecycle(s, n, b), multiple=b, probe=max(500, 20 * b))
        for b in (1, 10, 100)
    ]

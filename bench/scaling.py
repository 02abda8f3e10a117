"""Reserve cost as the backlog grows: queues of 1k, 100k and 1M messages live side by side;
each round reserves from each in turn. The backlog stays put: before every timed slice the
messages reserved by the last one are deleted and as many put back (untimed)."""

from __future__ import annotations

from ferrymq.engine import Engine

from .ferry import fill
from .harness import BODY, RedisServer, Results, Sample

SECTION = "scaling"
SLICE = {1: 500, 100: 1000}
"""Messages reserved per timed slice, by batch size."""


def reserve_slices(server: RedisServer, name: str, batch: int, seconds: float) -> Sample:
    q = Engine(server.client).queue("bench", name)
    total = Sample(0, 0.0, 0.0)
    while total.seconds < seconds:
        taken: list = []
        step = server.timed(SLICE[batch], lambda: [taken.extend(q.reserve(batch)) for _ in range(SLICE[batch] // batch)])
        total = Sample(total.messages + step.messages, total.seconds + step.seconds, total.cpu + step.cpu)
        for i in range(0, len(taken), 100):
            q.settle(deletes=[(m.id, m.reservation_id) for m in taken[i : i + 100]])
        for _ in range(len(taken) // 100):
            q.put([BODY] * 100)
    return total


def run(server: RedisServer, results: Results, backlogs: list[int], rounds: int, seconds: float, log) -> None:
    server.flush()
    for backlog in backlogs:
        fill(server, "bench", f"backlog{backlog}", backlog + max(SLICE.values()))
        log(f"  filled {backlog:,}")
    for _ in range(rounds):
        for batch in SLICE:
            for backlog in backlogs:
                sample = reserve_slices(server, f"backlog{backlog}", batch, seconds)
                results.add(f"scaling/b{batch}/{backlog}", SECTION, "ferrymq engine", f"reserve, batch {batch}",
                            f"{backlog:,} queued", sample.figures())

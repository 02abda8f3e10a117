"""python -m bench.partitions [--seconds S] [--tasks N] [--batch B]

One hot queue on a three-master Redis Cluster, with 1 partition and with 3, under the same load:
asyncio tasks each running the lifecycle (put a batch, reserve it, delete it) through one
AsyncEngine. Reports the lifecycle messages/s and how the Redis CPU spread over the masters
(``used_cpu_user + used_cpu_sys`` of each, around the step), then what N masters would give from
the per-message cost measured. Not part of ``python -m bench`` (it needs a cluster of its own);
its table goes in bench/RESULTS.md, section "Partitioned queues" (issue 19).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import redis.asyncio as aioredis

from ferrymq.engine import AsyncEngine

from .harness import RedisServer, free_port, pin_to_client_core, run, wait_until

MASTERS = 3


class Cluster:
    """Three masters on loopback, no replicas, no persistence (redis-cli --cluster create)."""

    def __init__(self) -> None:
        self.nodes = [RedisServer(extra=("--cluster-enabled", "yes", "--cluster-node-timeout", "5000"),
                                  port=bus_free_port()) for _ in range(MASTERS)]
        run(["redis-cli", "--cluster", "create", *(f"127.0.0.1:{n.port}" for n in self.nodes),
             "--cluster-replicas", "0", "--cluster-yes"])
        wait_until(self._ok, 20, "the cluster did not come up")

    def _ok(self) -> bool:
        return all(n.client.cluster("info")["cluster_state"] == "ok" for n in self.nodes)

    def cpu(self) -> list[float]:
        return [n.cpu() for n in self.nodes]

    def close(self) -> None:
        for node in self.nodes:
            node.close()


def bus_free_port() -> int:
    """A free port whose cluster bus port (port + 10000) exists."""
    while (port := free_port()) > 55_000:
        pass
    return port


async def lifecycle(engine: AsyncEngine, queue: str, tasks: int, batch: int, seconds: float) -> tuple[int, float]:
    """(messages put, reserved and deleted; seconds) of ``tasks`` loops for about ``seconds``."""
    body = b"x" * 100
    deadline = time.monotonic() + seconds
    done = 0

    async def loop() -> None:
        nonlocal done
        q = engine.queue("bench", queue)
        while time.monotonic() < deadline:
            await q.put([body] * batch)
            got = await q.reserve(batch)
            if got:
                await q.settle(deletes=[(m.id, m.reservation_id) for m in got])
                done += len(got)

    started = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(tasks)))
    return done, time.perf_counter() - started


async def measure(cluster: Cluster, partitions: int, args: argparse.Namespace) -> dict[str, Any]:
    client = aioredis.RedisCluster(host="127.0.0.1", port=cluster.nodes[0].port)
    engine = AsyncEngine(client)
    name = f"hot-{partitions}"
    try:
        await engine.queue("bench", name).ensure(partitions=partitions)
        await lifecycle(engine, name, args.tasks, args.batch, 0.5)  # warm: scripts, layouts, connections
        before = cluster.cpu()
        messages, seconds = await lifecycle(engine, name, args.tasks, args.batch, args.seconds)
        spent = [after - b for after, b in zip(cluster.cpu(), before)]
        await engine.queue("bench", name).delete()
    finally:
        await engine.aclose()
        await client.aclose()
    total = sum(spent)
    return {"partitions": partitions, "rate": messages / seconds, "shares": [c / total for c in spent],
            "us": total / messages * 1e6, "busiest_us": max(spent) / messages * 1e6}


def table(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = [
        f"{args.tasks} asyncio tasks in one client process, each: put {args.batch}, reserve {args.batch}, "
        f"delete {args.batch} (one settle); {args.seconds:g} s per queue; 100-byte bodies; 3 masters, no replicas.",
        "",
        "| partitions | lifecycle msgs/s | Redis CPU per master (share of the total) | busiest master | "
        "Redis µs/msg (all masters) | busiest master µs/msg |",
        "|---:|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        shares = " / ".join(f"{s:.0%}" for s in r["shares"])
        lines.append(f"| {r['partitions']} | {r['rate']:,.0f} | {shares} | {max(r['shares']):.0%} | "
                     f"{r['us']:.1f} | {r['busiest_us']:.1f} |")
    one, spread = rows[0], rows[-1]
    lines += [
        "",
        "What N masters would give (one hot queue, P = N partitions, clients not the limit): a master saturates "
        f"at 1 s of CPU per second, so one queue tops at about 1e6 / {one['us']:.1f} µs = "
        f"{1e6 / one['us']:,.0f} lifecycle msgs/s with 1 partition, whatever the cluster; with P partitions the "
        f"busiest master costs {spread['busiest_us']:.1f} µs per message of the queue at P = {spread['partitions']}, "
        f"i.e. the queue tops at {1e6 / spread['busiest_us']:,.0f} msgs/s on {MASTERS} masters, and at about "
        f"N × 1e6 / {spread['us']:.1f} µs = N × {1e6 / spread['us']:,.0f} msgs/s on N masters with an even spread.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.partitions", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--tasks", type=int, default=16)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    pin_to_client_core()
    cluster = Cluster()
    try:
        rows = [asyncio.run(measure(cluster, p, args)) for p in (1, MASTERS)]
    finally:
        cluster.close()
    print(table(rows, args))


if __name__ == "__main__":
    main()

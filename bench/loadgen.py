"""HTTP load generator, run as its own process (``python -m bench.loadgen SPEC``): asyncio +
httpx with a bounded number of requests in flight, for a fixed time. Prints one JSON object:
requests, seconds, and latency percentiles (ms) per kind of request.

Flows (SPEC is JSON: flow, base, token, seconds, concurrency, and the flow's own fields):
  fixed               the same request again and again (method, path, body)
  ironmq-consume      GET n=100 messages, then DELETE them by id (IronMQ "delete many")
  cloudflare-consume  pull a batch of 100, then ack their leases
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import defaultdict
from typing import Any

import httpx

from .harness import percentile

Latencies = dict[str, list[float]]


async def timed(latencies: Latencies, kind: str, request: Any) -> httpx.Response:
    started = time.perf_counter()
    response = await request
    latencies[kind].append((time.perf_counter() - started) * 1000)
    response.raise_for_status()
    return response


async def fixed(client: httpx.AsyncClient, spec: dict[str, Any], latencies: Latencies) -> None:
    body = spec.get("body")
    await timed(latencies, "request", client.request(spec["method"], spec["path"], content=body))


async def ironmq_consume(client: httpx.AsyncClient, spec: dict[str, Any], latencies: Latencies) -> None:
    got = await timed(latencies, "get", client.get(spec["path"], params={"n": 100}))
    ids = [m["id"] for m in got.json()["messages"]]
    if ids:
        await timed(latencies, "delete", client.request("DELETE", spec["path"], json={"ids": ids}))


async def cloudflare_consume(client: httpx.AsyncClient, spec: dict[str, Any], latencies: Latencies) -> None:
    pulled = await timed(latencies, "pull", client.post(
        spec["path"] + "/pull", json={"batch_size": 100, "visibility_timeout_ms": 60_000}))
    leases = [{"lease_id": m["lease_id"]} for m in pulled.json()["result"]["messages"]]
    if leases:
        await timed(latencies, "ack", client.post(spec["path"] + "/ack", json={"acks": leases, "retries": []}))


FLOWS = {"fixed": fixed, "ironmq-consume": ironmq_consume, "cloudflare-consume": cloudflare_consume}


async def main(spec: dict[str, Any]) -> dict[str, Any]:
    flow = FLOWS[spec["flow"]]
    latencies: Latencies = defaultdict(list)
    limits = httpx.Limits(max_connections=spec["concurrency"])
    headers = {"Authorization": spec["auth"], "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=spec["base"], headers=headers, limits=limits, timeout=30) as client:
        await flow(client, spec, defaultdict(list))  # connections warm, routes compiled
        started = time.perf_counter()
        deadline = started + spec["seconds"]

        async def loop() -> None:
            while time.perf_counter() < deadline:
                await flow(client, spec, latencies)

        await asyncio.gather(*(loop() for _ in range(spec["concurrency"])))
        seconds = time.perf_counter() - started
    out: dict[str, Any] = {"requests": sum(len(v) for v in latencies.values()), "seconds": seconds}
    for kind, values in latencies.items():
        out[f"{kind}_p50_ms"] = percentile(values, 50)
        out[f"{kind}_p99_ms"] = percentile(values, 99)
    return out


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(json.loads(sys.argv[1])))))

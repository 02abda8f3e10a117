"""The targets of the benchmark issue, each checked against the medians of one run."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .harness import Results


PEER_NAMES = {"rsmq": "RSMQ", "bullmq": "BullMQ"}
PEER_ROWS = {
    ("rsmq", 1): "ferrymq/b1/lifecycle",
    ("rsmq", 16): "ferrymq/c16/lifecycle",
    ("bullmq", 1): "ferrymq/bulk-c1/lifecycle",
    ("bullmq", 16): "ferrymq/bulk-c16/lifecycle",
}
"""Each peer row, and the FerryMQ row driven the same way (same calls in flight, same batching)."""


@dataclass
class Verdict:
    target: str
    measured: str
    met: bool | None
    """None: not measured in this run."""


def ratio(results: Results, key: str, base: str, figure: str) -> float:
    row, ref = results.get(key), results.get(base)
    if row is None or ref is None:
        return math.nan
    return row.median(figure) / ref.median(figure)


def value(results: Results, key: str, figure: str) -> float:
    row = results.get(key)
    return row.median(figure) if row else math.nan


def at_least(x: float, low: float) -> bool | None:
    return None if math.isnan(x) else x >= low


def at_most(x: float, high: float) -> bool | None:
    return None if math.isnan(x) else x <= high


def flatness(results: Results, batch: int) -> float:
    """Largest reserve cost (Redis µs/msg) over the backlogs, relative to the smallest backlog's."""
    rows = [row for key, row in results.rows.items() if key.startswith(f"scaling/b{batch}/")]
    if len(rows) < 2:
        return math.nan
    return max(r.median("cpu_us") for r in rows) / rows[0].median("cpu_us")


HTTP_RATIOS = [
    ("GET /ping", "ping", "bare-get", 0.7),
    ("IronMQ POST of 1 message", "iron-post1", "bare-post", 0.4),
    ("IronMQ GET n=1 (delete=true)", "iron-get1", "bare-get", 0.35),
    ("Cloudflare push of 1 message", "cf-push", "bare-post", 0.35),
    ("ElasticQueue POST of 1 message", "elastic-post", "bare-post", 0.35),
]
"""(route, its row, the bare Starlette row it is compared with: GETs with GET, POSTs with POST, least ratio)."""
HTTP_RATES = [("IronMQ POST of 100 messages", "iron-post100", 200_000),
              ("IronMQ GET n=100 with delete", "iron-get100", 150_000)]


def latency_spread(results: Results, workers: int, app: str | None = None) -> tuple[float, str]:
    """The largest p99 / p50 of any kind of request of any HTTP row at ``workers`` (medians over
    the rounds); of one server's rows only with ``app`` ("bare" or "ferrymq")."""
    worst, where = math.nan, ""
    for key, row in results.rows.items():
        if not key.startswith("http/") or not key.endswith(f"/w{workers}"):
            continue
        if app is not None and key.startswith("http/bare-") != (app == "bare"):
            continue
        kinds = {f.removesuffix("_p50_ms") for s in row.samples for f in s if f.endswith("_p50_ms")}
        for kind in kinds:
            x = row.median(kind + "_p99_ms") / row.median(kind + "_p50_ms")
            if not x <= worst:  # also replaces nan
                worst, where = x, f"{row.op}, {row.detail}" + ("" if kind == "request" else f" ({kind})")
    return worst, where


P99_SPREAD = 3.0


def latency_target(results: Results) -> Verdict:
    """p99 ≤ 3x p50 on every FerryMQ row (the bare app is the limit the rows are compared with,
    not a row of the product). At 2 workers the two cores also carry Redis and wrk, and the
    scheduler's delays land in a sub-millisecond p99 whatever the server does: a 2-worker row is
    also met when its spread is no wider than the bare app's own worst at 2 workers (measured in
    the same run). Not measured without 1-worker rows."""
    one, one_where = latency_spread(results, 1, app="ferrymq")
    two, two_where = latency_spread(results, 2, app="ferrymq")
    bare, bare_where = latency_spread(results, 2, app="bare")
    allowed = P99_SPREAD if math.isnan(bare) else max(P99_SPREAD, bare)
    met = None if math.isnan(one) else one <= P99_SPREAD and (math.isnan(two) or two <= allowed)
    by_allowance = met and not math.isnan(two) and two > P99_SPREAD
    measured = (f"1 worker: worst {spread(one, one_where)}; 2 workers: worst {spread(two, two_where)}, "
                f"the bare app's worst {spread(bare, bare_where)}" + (" (met by the bare app's allowance)" if by_allowance else ""))
    return Verdict("HTTP: p99 ≤ 3x p50 on every row (at 2 workers: or no wider than the bare app's)", measured, met)


def spread(x: float, where: str) -> str:
    return "not measured" if math.isnan(x) else f"{x:.1f}x ({where})"


def http_targets(results: Results, out: list[Verdict]) -> None:
    """The HTTP layer against a bare Starlette app on the same uvicorn settings (1 worker)."""
    for route, key, bare, low in HTTP_RATIOS:
        x = ratio(results, f"http/{key}/w1", f"http/{bare}/w1", "rate")
        what = "JSON GET" if bare == "bare-get" else "JSON POST"
        out.append(Verdict(f"HTTP: {route} ≥ {low}x the bare app's {what} (1 worker)", f"{x:.2f}x", at_least(x, low)))
    for route, key, low in HTTP_RATES:
        x = value(results, f"http/{key}/w1", "rate")
        out.append(Verdict(f"HTTP: {route} ≥ {low:,} msgs/s (1 worker)", f"{x:,.0f} msgs/s", at_least(x, low)))
    out.append(latency_target(results))
    out.append(second_worker(results))


NO_CORE_TO_SPARE = 0.85
"""How busy (of all cores) the machine must be at 2 workers for the second worker's shortfall to
be the machine's, not the server's: the target's "or where the second core goes"."""


def second_worker(results: Results) -> Verdict:
    """2 workers ≥ 1.5x 1 worker, or the machine had no core to spare during the 2-worker step
    (the split of that core among the workers, Redis and wrk is in bench/RESULTS.md)."""
    x = ratio(results, "http/iron-post1/w2", "http/iron-post1/w1", "rate")
    busy = value(results, "http/iron-post1/w2", "machine_busy")
    target = "HTTP: IronMQ POST of 1 message, 2 workers ≥ 1.5x 1 worker, or no core to spare"
    if at_least(x, 1.5) is False and not math.isnan(busy):
        return Verdict(target, f"{x:.2f}x, the machine {busy:.0%} busy at 2 workers", busy >= NO_CORE_TO_SPARE)
    return Verdict(target, f"{x:.2f}x", at_least(x, 1.5))


ENGINE_VERBS = ("put", "reserve", "delete")


def engine_targets(results: Results, out: list[Verdict]) -> None:
    """The engine's cost per script call against its limits and peers (the engine-cost issue)."""

    def cpu_ratio(target: str, key: str, base: str, high: float) -> None:
        x = ratio(results, key, base, "cpu_us")
        out.append(Verdict(target, f"{x:.2f}x ({value(results, key, 'cpu_us'):.1f} vs {value(results, base, 'cpu_us'):.1f} µs)",
                           at_most(x, high)))

    for verb in ENGINE_VERBS:
        x = value(results, f"profile/cg/ferrymq engine/b1/{verb}", "kinstr_msg")
        out.append(Verdict(f"Single-message {verb}: ≤ 100k instructions per script call (callgrind)",
                           f"{x:,.1f}k", at_most(x, 100)))
    for verb in ENGINE_VERBS:
        x = ratio(results, f"ferrymq/b1/{verb}", "evalsha/c1/call", "rate")
        out.append(Verdict(f"Single-message {verb} ≥ 0.75x bare EVALSHA calls/s", f"{x:.2f}x", at_least(x, 0.75)))
        cpu_ratio(f"Single-message {verb}: Redis CPU per call ≤ 1.6x bare EVALSHA's", f"ferrymq/b1/{verb}",
                  "evalsha/c1/call", 1.6)
    for batch, high in ((100, 9), (10, 20)):
        x = value(results, f"ferrymq/b{batch}/lifecycle", "cpu_us")
        out.append(Verdict(f"Lifecycle, batch {batch}: ≤ {high} µs Redis CPU per message", f"{x:.1f} µs", at_most(x, high)))
    for (peer, calls), mine in PEER_ROWS.items():
        name, theirs = PEER_NAMES[peer], f"{peer}/c{calls}/lifecycle"
        x = ratio(results, mine, theirs, "rate")
        out.append(Verdict(f"Ahead of {name} at {calls} in flight (msgs/s)", f"{x:.2f}x", None if math.isnan(x) else x > 1.0))
        if peer == "rsmq" and calls == 16:
            cpu_ratio(f"≤ 0.8x {name}'s Redis CPU per message at {calls} in flight", mine, theirs, 0.8)
    for batch in (1, 100):
        x = flatness(results, batch)
        out.append(Verdict(f"Reserve (batch {batch}) flat within 20% from 1k to 1M queued (Redis CPU/msg)",
                           f"worst {x:.2f}x the 1k cost", at_most(x, 1.2)))
    x = value(results, "longpoll/wake", "p99_ms")
    out.append(Verdict("Long-poll wake p99 ≤ 20 ms", f"{x:.1f} ms", at_most(x, 20)))
    x = value(results, "longpoll/idle", "ops_per_s")
    out.append(Verdict("1,000 idle long-pollers ≤ 50 Redis ops/s", f"{x:.1f} ops/s", at_most(x, 50)))
    x = value(results, "memory/ferrymq engine", "bytes_per_msg")
    out.append(Verdict("≤ 150 B of Redis memory per queued message beyond the body", f"{x:.0f} B", at_most(x, 150)))


def check(results: Results) -> list[Verdict]:
    out: list[Verdict] = []
    engine_targets(results, out)
    http_targets(results, out)
    return out

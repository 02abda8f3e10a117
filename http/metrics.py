"""Prometheus metrics at ``/metrics``, and the middleware that times every request.

Two sources:

- the queues, read from Redis at scrape time with the engine's ``stats`` verb: a few round trips
  per page of 1000 queues and no maintenance. Measured with 10,000 queues on a busy 2-core
  machine: 42 round trips, 8.4 MB, 1.1 to 1.5 s (mostly redis-py packing 50,000 pipelined
  commands), requests served meanwhile (no stall over 0.15 s). Counts are gauges, the queues'
  own monotonic counters (put, deliveries, deletes, push outcomes, ...) are counters; all are
  labelled (project, queue) and are the same whichever worker process answers. With them, each
  project's quotas and usage (``ferrymq_project_{usage,limit,over}``), in the same round trip
  that counts its queues. These name every tenant: a server listening beyond loopback serves
  them only with FERRYMQ_METRICS_TOKEN, and totals over all queues otherwise (``per_queue``).
- this process: HTTP requests by method, route *template* (``/1/projects/{project_id}/queues/{queue}``,
  never the raw path, which holds queue names and, in queries, tokens) and status. With
  ``--workers N`` each worker counts its own requests (a scrape sees one worker's); failed
  authentications likewise.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import re
import secrets
import time
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ferrymq.engine import AsyncEngine, ProjectUsage, QueueStats
from ferrymq.engine.limits import QUOTA_NAMES

from . import logs
from ._common import JSON, auth, endpoint_routes, engine, hot, settings
from .auth import FailedAuths
from .errors import Problem
from .settings import Settings

STATS_PAGE = 1000
"""Queues per ``stats`` call: one Redis pipeline each."""
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
"""Seconds; up to a minute because long polls hold requests for up to 30 s."""
UNMATCHED = "unmatched"
"""The route label of a request no route matched (its path is not a label: unbounded values)."""
GAUGES = {"size": "Messages in the queue: ready + delayed + reserved",
          "ready": "Messages ready to be delivered",
          "delayed": "Messages waiting for their delay to pass",
          "reserved": "Messages delivered and not yet deleted or released"}
COUNTERS = {"put": ("put", "Messages put on the queue"),
            "reserved": ("deliveries", "Deliveries (reservations) of messages"),
            "deleted": ("deleted", "Messages deleted"),
            "expired": ("expired", "Messages that expired"),
            "dead": ("dead_lettered", "Messages that ran out of deliveries (moved to the dead letter queue or dropped)"),
            "cleared": ("cleared", "Messages removed by clearing the queue")}
"""``QueueStats.counters`` key -> (metric name, help)."""
PUSH_OUTCOMES = {"push_delivered": "delivered", "push_failed": "failed", "push_errors": "error"}
"""``QueueStats.counters`` key -> the ``outcome`` label of ``ferrymq_queue_push_deliveries_total``."""
PUSH_HELP = ("Push deliveries by outcome: delivered (a subscriber took the message), failed (a failed "
             "attempt, retried or final), error (a delivery that ran out of retries)")
STUCK_HELP = ("Transfers set aside because they could not be moved (dead letters, error-queue or alert "
              "messages): `ferrymq queues info` says why, `ferrymq queues retry-stuck` moves them again")
HOPS_HELP = ("Forwarded or error-queue messages dropped because they had gone through too many transfers "
             "(a loop of forwards or error queues)")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}\Z")


class Metrics:
    """One app's process-local metrics, in a registry of its own (a process may build several
    apps, the tests do)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ("method", "route", "status")
        self.requests = Counter("ferrymq_http_requests", "HTTP requests", labels, registry=self.registry)
        self.latency = Histogram("ferrymq_http_request_duration_seconds", "HTTP request duration", labels,
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        """(method, route, status) -> its counter and histogram children: ``labels()`` checks and
        locks on every call (2.6 us a request, against 1.0 for the children alone). As bounded
        as the registry's own children, which it mirrors."""

    def request_done(self, method: str, route: str, status: int, seconds: float) -> None:
        children = self._children.get((method, route, status))
        if children is None:
            labels = (method, route, str(status))
            children = self._children[method, route, status] = (self.requests.labels(*labels),
                                                                self.latency.labels(*labels))
        children[0].inc()
        children[1].observe(seconds)


def of(app: Any) -> Metrics:
    """The app's metrics (created on first use)."""
    found = getattr(app.state, "metrics", None)
    if found is None:
        found = app.state.metrics = Metrics()
    return found


# -- the queues ----------------------------------------------------------------------------------


async def queue_stats(eng: AsyncEngine) -> tuple[list[QueueStats], list[ProjectUsage]]:
    """Every queue of every project, a page of ``STATS_PAGE`` queues per Redis pipeline, and each
    project's quotas and usage (the pipeline that also counts its queues)."""
    found: list[QueueStats] = []
    usages: list[ProjectUsage] = []
    for project in await eng.projects():
        usages.append(await eng.project_usage(project))
        pages = -(-usages[-1].queues // STATS_PAGE)  # a page may come back short
        for page in range(pages):
            found += await eng.stats(project, page=page, per_page=STATS_PAGE)
    return found, usages


def project_exposition(usages: list[ProjectUsage]) -> bytes:
    """Per project: what it uses of each quota (messages and bytes as the sweeper last summed
    them), each limit, and whether it is over one (its puts are refused)."""
    lines = ["# HELP ferrymq_project_usage What a project uses of a quota (messages and bytes: the sweeper's sums)",
             "# TYPE ferrymq_project_usage gauge"]
    for u in usages:
        for quota in ("queues", "messages", "bytes", "subscriptions"):
            lines.append(f'ferrymq_project_usage{{project="{label_value(u.project)}",quota="{quota}"}} {getattr(u, quota)}')
    lines += ["# HELP ferrymq_project_limit A project's quota (its own, else the server's)",
              "# TYPE ferrymq_project_limit gauge"]
    for u in usages:
        for quota in QUOTA_NAMES:
            lines.append(f'ferrymq_project_limit{{project="{label_value(u.project)}",quota="{quota}"}} '
                         f"{getattr(u.limits, quota)}")
    lines += ["# HELP ferrymq_project_over 1 while the project is over its message or byte quota (puts refused)",
              "# TYPE ferrymq_project_over gauge"]
    lines += [f'ferrymq_project_over{{project="{label_value(u.project)}"}} {int(bool(u.over))}' for u in usages]
    return ("\n".join(lines) + "\n").encode()


def queue_exposition(stats: list[QueueStats]) -> bytes:
    """The queues' families in the text format, written here: prometheus_client's generic
    writer takes about 17 us a sample, 2.7 s of blocked event loop for 10,000 queues."""
    labels = [f'project="{label_value(s.project)}",queue="{label_value(s.name)}"' for s in stats]
    lines: list[str] = []
    for name, text in GAUGES.items():
        lines += [f"# HELP ferrymq_queue_{name} {text}", f"# TYPE ferrymq_queue_{name} gauge"]
        lines += [f"ferrymq_queue_{name}{{{tag}}} {getattr(s, name)}" for s, tag in zip(stats, labels)]
    for key, (name, text) in COUNTERS.items():
        metric = f"ferrymq_queue_{name}_total"
        lines += [f"# HELP {metric} {text}", f"# TYPE {metric} counter"]
        lines += [f"{metric}{{{tag}}} {s.counters.get(key, 0)}" for s, tag in zip(stats, labels)]
    lines += push_deliveries(stats, labels)
    lines += stuck_transfers(stats, labels)
    return ("\n".join(lines) + "\n").encode()


def push_deliveries(stats: list[QueueStats], labels: list[str]) -> list[str]:
    """Only queues that ever pushed have samples: pull queues (most) would add three zeros each."""
    metric = "ferrymq_queue_push_deliveries_total"
    lines = [f"# HELP {metric} {PUSH_HELP}", f"# TYPE {metric} counter"]
    for s, tag in zip(stats, labels):
        if any(s.counters.get(key) for key in PUSH_OUTCOMES):
            lines += [f'{metric}{{{tag},outcome="{outcome}"}} {s.counters.get(key, 0)}'
                      for key, outcome in PUSH_OUTCOMES.items()]
    return lines


def stuck_transfers(stats: list[QueueStats], labels: list[str]) -> list[str]:
    """Transfers set aside and forwards dropped in a loop: only queues that have any have a
    sample (both are an operator's alert: any at all), so most queues add nothing to a scrape."""
    lines = [f"# HELP ferrymq_queue_stuck {STUCK_HELP}", "# TYPE ferrymq_queue_stuck gauge"]
    lines += [f"ferrymq_queue_stuck{{{tag}}} {s.stuck}" for s, tag in zip(stats, labels) if s.stuck]
    metric = "ferrymq_queue_hops_dropped_total"
    lines += [f"# HELP {metric} {HOPS_HELP}", f"# TYPE {metric} counter"]
    lines += [f"{metric}{{{tag}}} {s.counters['hops_dropped']}" for s, tag in zip(stats, labels)
              if s.counters.get("hops_dropped")]
    return lines


def label_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def totals_exposition(stats: list[QueueStats]) -> bytes:
    """Server-wide figures only: the number of queues, and each gauge and counter summed over
    every queue of every project (no project or queue name: see ``per_queue``)."""
    lines = ["# HELP ferrymq_queues Queues of all projects", "# TYPE ferrymq_queues gauge",
             f"ferrymq_queues {len(stats)}"]
    for name, text in GAUGES.items():
        metric = f"ferrymq_all_queues_{name}"
        lines += [f"# HELP {metric} {text}, all queues", f"# TYPE {metric} gauge",
                  f"{metric} {sum(getattr(s, name) for s in stats)}"]
    for key, (name, text) in COUNTERS.items():
        metric = f"ferrymq_all_queues_{name}_total"
        lines += [f"# HELP {metric} {text}, all queues", f"# TYPE {metric} counter",
                  f"{metric} {sum(s.counters.get(key, 0) for s in stats)}"]
    return ("\n".join(lines) + "\n").encode()


def per_queue(config: Settings) -> bool:
    """Per-queue (and per-project) series name every tenant's queues. They are served to a
    scraper holding FERRYMQ_METRICS_TOKEN, or by a server only loopback can reach; otherwise
    /metrics serves totals, so monitoring works out of the box and names nothing."""
    return config.metrics_token is not None or is_loopback(config.host)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def auth_exposition(failures: FailedAuths | None) -> bytes:
    """Failed authentications (limited per client address; see ``auth.FailedAuths``)."""
    if failures is None:
        return b""
    lines = ["# HELP ferrymq_auth_failures_total Failed authentications (wrong tokens) seen by this process",
             "# TYPE ferrymq_auth_failures_total counter", f"ferrymq_auth_failures_total {failures.failures}.0",
             "# HELP ferrymq_auth_refused_total Requests refused (429) because their client failed too often",
             "# TYPE ferrymq_auth_refused_total counter", f"ferrymq_auth_refused_total {failures.refused}.0",
             "# HELP ferrymq_auth_blocked_clients Client addresses refused now for failing too often",
             "# TYPE ferrymq_auth_blocked_clients gauge", f"ferrymq_auth_blocked_clients {failures.blocked_clients()}.0"]
    return ("\n".join(lines) + "\n").encode()


async def scrape(request: Request) -> Response:
    check_scraper(request)
    stats, usages = await queue_stats(engine(request))
    # Formatting 10,000 queues takes ~0.1 s of CPU: in a thread, requests keep being served.
    if per_queue(settings(request)):
        queues = await asyncio.to_thread(queue_exposition, stats) + project_exposition(usages)
    else:
        queues = await asyncio.to_thread(totals_exposition, stats)
    body = generate_latest(of(request.app).registry) + auth_exposition(auth(request).failures) + queues
    return Response(body, headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})


def check_scraper(request: Request) -> None:
    expected = settings(request).metrics_token
    if expected is None:
        return
    given = request.headers.get("authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {expected}".encode()):
        raise Problem(401, "Metrics need Authorization: Bearer <FERRYMQ_METRICS_TOKEN>",
                      headers={"WWW-Authenticate": 'Bearer realm="ferrymq-metrics"'})


@hot
async def ping(request: Request) -> JSON:
    """The HTTP stack's own cost (benchmarks compare every route against it)."""
    return JSON({"ok": True})


def routes() -> list[BaseRoute]:
    """/metrics; /ping comes first in the app's routes (each route tried costs 1-2 us)."""
    return [Route("/metrics", scrape, methods=["GET"])]


# -- every request -------------------------------------------------------------------------------


def route_templates(routes: Iterable[BaseRoute]) -> dict[int, str]:
    """Each endpoint route (by id: routes compare by value and do not hash) -> its whole path
    template, mount paths included."""
    return {id(route): template for template, route in endpoint_routes(routes)}


def request_id_of(scope: Scope) -> str:
    """The caller's X-Request-Id if it is a sane one (it goes into logs), else a new one."""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            given = value.decode("latin-1")
            if _REQUEST_ID.match(given):
                return given
    return secrets.token_hex(8)


class Instrument:
    """ASGI middleware: every HTTP request is counted and timed by route template and status,
    logged (JSON mode), and answered with its ``X-Request-Id`` (those the fast lane answers, by
    the lane itself, through the same ``request_id_of`` and ``request_done``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.templates: dict[int, str] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_of(scope)
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", ()), (b"x-request-id", request_id.encode())]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            # An exception escaping here becomes a 500 further out (ServerErrorMiddleware).
            self.done(scope, request_id, status or 500, time.perf_counter() - started)

    def done(self, scope: Scope, request_id: str, status: int, seconds: float) -> None:
        if self.templates is None:  # the app is the same for every request
            self.templates = route_templates(scope["app"].routes)
        request_done(scope, self.templates.get(id(scope.get("route")), UNMATCHED), request_id, status, seconds)


def request_done(scope: Scope, route: str, request_id: str, status: int, seconds: float) -> None:
    """Count, time and log one answered request (``Instrument``, and the fast lane's own)."""
    of(scope["app"]).request_done(scope["method"], route, status, seconds)
    logs.request_done(request_id, scope["method"], route, status, seconds)

"""The Starlette application: one port, four contracts over one engine.

    /1/projects/{project_id}/...          IronMQ v1          (ironmq.py)
    /3/projects/{project_id}/...          IronMQ v3          (ironmq3.py)
    /client/v4/accounts/{account_id}/...  Cloudflare Queues  (cloudflare/)
    /v1/queues/...                        ElasticQueue       (elastic.py)

Serve with ``ferrymq serve`` (or ``uvicorn ferrymq.http.app:create_app --factory``). No app is
built at import time; the lifespan owns the Redis client, the engine, auth, the sweeper and
the pushers.

This module also stands for the package, which has no ``__init__.py`` (it would shadow the
standard library's ``http``, see pyproject.toml). ``ferrymq.http`` holds the HTTP layer: this
app, its settings, auth, the error table, the contract modules (which only translate requests
and responses: the queue logic is the engine's), the fast lane that answers their message verbs
(lane.py), the dashboard, metrics and OpenAPI. It may
import ``ferrymq.engine`` and third-party libraries, never ``ferrymq.server``
(``tests/test_layout.py`` checks it).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from ferrymq.engine import AsyncEngine, Pusher, Sweeper, Unavailable
from ferrymq.engine.egress import EgressPolicy
from ferrymq.engine.clock import Clock

from . import cloudflare, dashboard, elastic, ironmq, ironmq3, logs, metrics, openapi
from ._common import BodyLimit
from ._iron import push_headers
from .auth import Auth, FailedAuths, TokenStore
from .connect import redis_client
from .errors import EXCEPTION_HANDLERS
from .lane import FastLane
from .settings import Settings

log = logging.getLogger("ferrymq.http")


def pusher(engine: AsyncEngine, settings: Settings) -> Pusher:
    """A push delivery loop, sending IronMQ's push headers (push queues are IronMQ's), to the
    addresses the egress policy allows."""
    return Pusher(engine, concurrency=settings.push_concurrency, timeout=settings.push_timeout,
                  headers=push_headers(settings.base_url), egress=EgressPolicy.allowing(settings.push_allow))


def create_app(settings: Settings | None = None, *, clock: Clock | None = None, client: Any = None) -> Starlette:
    settings = settings or Settings.from_env()
    logs.install(settings.log_json, access_log=settings.access_log)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        redis = client if client is not None else redis_client(settings)
        engine = AsyncEngine(redis, clock=clock, command_timeout=settings.command_timeout, coalesce=settings.merge_calls,
                             **settings.engine_options())
        try:
            await engine.load_scripts()
        except Unavailable:
            log.warning("Redis is not reachable yet; answering 503 until it is")
        failures = FailedAuths(settings.auth_failures) if settings.auth_failures else None
        auth = Auth(settings.static_tokens(), TokenStore(redis, settings.prefix), failures)
        sweeper = Sweeper(engine)
        if settings.sweeper:
            sweeper.start()
        pushers = [pusher(engine, settings) for _ in range(settings.pushers)]
        for each in pushers:
            each.start()
        app.state.engine = engine  # for the shutdown hook of `ferrymq serve`
        try:
            yield {"engine": engine, "auth": auth, "settings": settings}
        finally:
            for each in pushers:
                await each.stop()
            await sweeper.stop()
            await engine.aclose()
            if client is None:
                await redis.aclose()

    routes = [Route("/ping", metrics.ping), *ironmq.routes(), *ironmq3.routes(), *cloudflare.routes(), *elastic.routes(),
              *metrics.routes(), *openapi.routes(), *dashboard.routes()]
    middleware = [
        Middleware(FastLane, routes=routes, limit=settings.max_request_bytes),  # the hot routes: lane.py
        Middleware(metrics.Instrument),  # timing, route metrics, request ids: first, so it sees every answer
        Middleware(BodyLimit, limit=settings.max_request_bytes),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=EXCEPTION_HANDLERS, middleware=middleware)
    app.router.redirect_slashes = False  # both spellings are routes; a 307 on POST loses bodies
    app.state.openapi = openapi.document(app.routes)  # raises if a route has no operation
    return app

"""Cloudflare Queues, the parts every route shares: limits, defaults and error codes (notes §3, §4),
the v4 envelope (``{"success", "errors", "messages", "result"}``) and its errors, the account
check and the path's queue, and the request parsing helpers."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any

from starlette.requests import Request

from ferrymq.engine import QueueNotFound
from ferrymq.engine.aio import AsyncQueue
from ferrymq.engine.core import remember_bounded

from .. import errors
from .._common import JSON, auth, bearer, client_address, engine, integer, read_json
from ..errors import CLOUDFLARE, Problem

# Limits (notes §4). Message sizes count the stored body.
MESSAGE_BYTES, BATCH_BYTES, BATCH_MESSAGES = 128_000, 256_000, 100
DELAY = (0, 86_400)
RETENTION = (60, 1_209_600)
VISIBILITY_MS = (1, 43_200_000)
PULL_BATCH = (1, 100)
MAX_RETRIES = (0, 100)
MAX_WAIT_MS = (0, 60_000)
MAX_CONCURRENCY = (1, 250)
LIST_ALL_LIMIT = 10_000

# Defaults (notes §4).
RETENTION_DEFAULT = 345_600
PULL_DEFAULTS = {"batch_size": 5, "max_retries": 3, "retry_delay": 0, "visibility_timeout_ms": 30_000}
WORKER_DEFAULTS = {"batch_size": 10, "max_concurrency": None, "max_retries": 3, "max_wait_time_ms": 5_000, "retry_delay": 0}
CONSUMER_ATTR, PURGE_ATTR, JURISDICTION_ATTR = "cf_consumer", "cf_purge_started", "cf_jurisdiction"
CONTENT_TYPES = ("text", "json", "bytes")
JURISDICTIONS = ("eu", "us", "fedramp")

# Codes (notes §3).
AUTH, BAD_BODY, BAD_NAME, BAD_SETTINGS, BAD_CONSUMER = 10000, 10026, 11003, 100128, 100127
NOT_FOUND, CONSUMER_EXISTS = 11002, 11004
BAD_MESSAGE, BAD_DELAY_OR_TYPE, TOO_BIG, BATCH_TOO_BIG, TOO_MANY = 10207, 10203, 10204, 10205, 10206


def ok(result: Any, *, info: dict[str, int] | None = None) -> JSON:
    body: dict[str, Any] = {"success": True, "errors": [], "messages": [], "result": result}
    if info is not None:
        body["result_info"] = info
    return JSON(body)


def render_error(problem: Problem) -> JSON:
    code = problem.code if isinstance(problem.code, int) else 10000 if problem.status < 500 else 15000
    headers = dict(problem.headers)
    if problem.status in (409, 500) or (400 <= problem.status < 500 and problem.status != 429):
        headers["x-should-retry"] = "false"  # the same request would fail the same way
    body = {"success": False, "errors": [{"code": code, "message": problem.text}], "messages": [], "result": None}
    return JSON(body, status_code=problem.status, headers=headers)


errors.register("/client/v4/", CLOUDFLARE, render_error)


def bad(code: int, text: str, status: int = 400) -> Problem:
    return Problem(status, text, code=code)


# -- requests ------------------------------------------------------------------------------------


async def account(request: Request) -> str:
    """The path's account, which must be the token's project. Tokens come as the SDK sends them."""
    token = (
        bearer(request, "bearer")
        or request.headers.get("x-auth-key")
        or request.headers.get("x-auth-user-service-key")
    )
    project = await auth(request).project_of(token, client_address(request))
    if project is None:
        raise bad(AUTH, "Authentication error", 401)
    if project != request.path_params["account_id"]:
        raise bad(AUTH, "Authentication error", 403)
    return project


class QueueNames:
    """(project, queue id) -> the name the queue was found under. An id names one queue for
    ever (a queue created again gets a new id), so an entry can outlive its queue but never
    point at another: each use still checks the id is current, in one Redis call instead of
    two, or not at all where the engine call checks it itself (push). Per app; cleared when
    it holds ``size`` ids."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._names: dict[tuple[str, str], str] = {}

    def get(self, project: str, queue_id: str) -> str | None:
        return self._names.get((project, queue_id))

    def remember(self, project: str, queue_id: str, name: str) -> None:
        remember_bounded(self._names, (project, queue_id), name, self.size)


def queue_names(request: Request) -> QueueNames:
    found = getattr(request.app.state, "cloudflare_queue_names", None)
    if found is None:
        found = request.app.state.cloudflare_queue_names = QueueNames()
    return found


async def queue_of(request: Request, *, checked: bool = True) -> AsyncQueue:
    """The path's queue. ``checked=False``: a queue whose name is known is not looked up at all,
    for an engine call given the id, which refuses a deleted queue itself (push)."""
    project = await account(request)
    queue_id, names = request.path_params["queue_id"], queue_names(request)
    name = names.get(project, queue_id)
    if name is None or checked:
        ref = await engine(request).find_queue(project, queue_id, name=name)
        if ref is None:
            raise QueueNotFound()
        name = ref.name
        names.remember(project, queue_id, name)
    return engine(request).queue(project, name)


async def body_object(request: Request) -> dict[str, Any]:
    doc = await read_json(request)
    if not isinstance(doc, dict):
        raise bad(BAD_BODY, "Invalid request body")
    return doc


def number(value: Any, name: str, bounds: tuple[int, int], code: int) -> int:
    """A whole number within bounds (the SDK sends floats for numbers: 30.0 is fine)."""
    try:
        return integer(value, name, *bounds)
    except Problem as problem:
        raise bad(code, problem.text) from None


def timestamp(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def seconds(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def now_ms(request: Request) -> int:
    return engine(request).clock.wall_ms()


def page_info(page: int, per_page: int, count: int, total: int) -> dict[str, int]:
    return {"page": page, "per_page": per_page, "count": count, "total_count": total,
            "total_pages": max(1, math.ceil(total / per_page)) if per_page else 1}

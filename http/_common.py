"""Helpers every contract shares: JSON responses, bounded body reading, query parsing, auth
header parsing, and watching for a client that goes away during a long poll."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ferrymq.engine import AsyncEngine

from .auth import Auth
from .errors import Problem, contract_of
from .settings import Settings

T = TypeVar("T")


class JSON(Response):
    """``application/json`` exactly (no charset: the IronMQ Java client compares the header)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def engine(request: Request) -> AsyncEngine:
    return request.state.engine


def auth(request: Request) -> Auth:
    return request.state.auth


def settings(request: Request) -> Settings:
    return request.state.settings


class BodyLimit:
    """ASGI middleware: a request that declares a body over the limit is answered 413 in its
    contract's shape before any route sees it, so the limit holds on every route, also on those
    that ignore their body. Bodies of no declared length are counted while read (read_body)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, declared in scope["headers"]:
                if name == b"content-length" and declared.isdigit() and int(declared) > self.limit:
                    _, render = contract_of(scope["path"])
                    await render(too_large(self.limit))(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def too_large(limit: int) -> Problem:
    return Problem(413, f"Request body is larger than {limit} bytes")


async def read_body(request: Request) -> bytes:
    """The request body, refused with 413 beyond the configured limit (checked while reading;
    a declared length over it never gets here: BodyLimit)."""
    limit = settings(request).max_request_bytes
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, *, empty: Any = None) -> Any:
    """The body parsed as JSON; an empty body is ``empty`` (clients send none, "" or {})."""
    body = await read_body(request)
    if not body.strip():
        return {} if empty is None else empty
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Problem(400, f"Request body is not valid JSON: {exc.msg}", code="malformed_json") from None


def integer(value: Any, name: str, lo: int, hi: int, *, status: int = 400) -> int:
    """A whole number (int, integral float, or decimal string from a query) within [lo, hi]."""
    if isinstance(value, str):
        value = value.strip()
        if not value.lstrip("-").isdigit():
            raise Problem(status, f"{name} must be an integer between {lo} and {hi}", pointer=name)
        value = int(value)
    elif isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise Problem(status, f"{name} must be an integer between {lo} and {hi}", pointer=name)
    if not lo <= value <= hi:
        raise Problem(status, f"{name} must be between {lo} and {hi}", pointer=name)
    return value


def bearer(request: Request, *schemes: str) -> str | None:
    """The token of ``Authorization: <scheme> <token>`` for any of ``schemes`` (any case)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() in schemes and token.strip():
        return token.strip()
    return None


async def unless_disconnected(request: Request, work: Awaitable[T], default: T, *, wait: float) -> T:
    """Run ``work`` (a long poll of ``wait`` seconds) but give up as soon as the client goes
    away, so a message is not reserved for nobody. (If the client leaves after the reservation
    was made, the message comes back when its reservation times out.) Without a wait, ``work``
    is one script call and simply runs: watching costs two tasks, more than the call itself."""
    if not wait:
        return await work
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        done, _ = await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            return task.result()
        task.cancel()
        try:
            return await task  # finished in the meantime after all
        except asyncio.CancelledError:
            return default
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass

"""Helpers every contract shares: JSON responses, bounded body reading, query parsing, auth
header parsing, and watching for a client that goes away during a long poll."""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any, TypeVar

import orjson
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ferrymq.engine import AsyncEngine, DeliveryPaused, Message

from .auth import Auth
from .errors import Problem, contract_of
from .settings import Settings

T = TypeVar("T")
E = TypeVar("E", bound=Callable[..., Awaitable[Response]])

MAX_DIGITS = 18
"""Digits of an integer given as text (a query parameter, a quoted number): every range we
check fits, and int() never meets a 5,000-digit string."""
_DECIMAL = re.compile(r"-?[0-9]{1,%d}\Z" % MAX_DIGITS)  # ASCII only: str.isdigit() also takes "²" and "٣"
MAX_JSON_DEPTH = 32
"""Deepest nesting of a request's JSON document (a Cloudflare ``json`` message body included).
Bounds what we store and re-encode: orjson encodes at most 254 levels, and a deep document is
only a way to spend the server's CPU."""


class JSON(Response):
    """``application/json`` exactly (no charset: the IronMQ Java client compares the header)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def hot(endpoint: E) -> E:
    """Marks an endpoint for the fast lane: answered without Starlette's per-request layers,
    where the routing table allows it (lane.py)."""
    endpoint.hot = True  # type: ignore[attr-defined]
    return endpoint


def query_params(request: Request) -> QueryParams:
    """The request's query parameters: Starlette's own parse, done once per distinct short
    query string (clients send the same few again and again: ``n=1&delete=true``), where
    ``request.query_params`` parses every request's (~5 us of a GET of one message)."""
    query = request.scope["query_string"]
    return _parsed_query(query) if len(query) <= CACHED_QUERY_BYTES else QueryParams(query)


CACHED_QUERY_BYTES = 256
"""Longer query strings are parsed each time: the cache holds at most 1024 of these."""


@functools.lru_cache(maxsize=1024)
def _parsed_query(query: bytes) -> QueryParams:
    return QueryParams(query)  # immutable: one object serves every request that sent the same


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
        if scope["type"] == "http" and declares_over(scope, self.limit):
            _, render = contract_of(scope["path"])
            await render(too_large(self.limit))(scope, receive, send)
            return
        await self.app(scope, receive, send)


def declares_over(scope: Scope, limit: int) -> bool:
    """Whether the request's Content-Length is over ``limit`` bytes."""
    for name, declared in scope["headers"]:
        if name == b"content-length" and declared.isdigit() and int(declared) > limit:
            return True
    return False


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
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Problem(400, f"Request body is not valid JSON: {exc.msg}", code="malformed_json") from None
    # Walked whatever its size: the walk costs per container, where counting the brackets first
    # cost per byte (6 us of a POST of 100, 99 us of one 200 KB body; the walk 10 us and 0.5 us).
    path = too_deep(doc, MAX_JSON_DEPTH)
    if path is not None:
        raise Problem(400, f"{dotted(path)} is nested more than {MAX_JSON_DEPTH} levels deep",
                      code="too_deep", pointer=json_pointer(path))
    return doc


def too_deep(doc: Any, limit: int) -> list[str | int] | None:
    """Where ``doc`` nests containers more than ``limit`` levels deep (its first three keys or
    indexes: that names the field), or None. Level by level, not recursive: a deep document must
    not be a deep stack. (A 100-message batch costs about as much as parsing it again.)"""
    if type(doc) is not dict and type(doc) is not list:
        return None
    level, depth = [doc], 0
    while level:
        depth += 1
        if depth > limit:
            return path_to_depth(doc, limit + 1)
        deeper = []
        for node in level:
            for child in node.values() if type(node) is dict else node:
                if type(child) is dict or type(child) is list:
                    deeper.append(child)
        level = deeper
    return None


def path_to_depth(doc: Any, depth: int) -> list[str | int]:
    """The keys and indexes (the first three) down to the first container at ``depth`` (the
    document is 1). Run only once too_deep found one: the same walk, remembering parents."""
    level: list[tuple[Any, tuple[str | int, ...]]] = [(doc, ())]
    for _ in range(depth - 1):
        level = [(child, path + (key,) if len(path) < 3 else path) for node, path in level
                 for key, child in (node.items() if isinstance(node, dict) else enumerate(node))
                 if isinstance(child, (dict, list))]
    return list(level[0][1])


def dotted(path: list[str | int]) -> str:
    """``["messages", 1, "body"]`` -> ``messages[1].body`` (how the contracts name fields)."""
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    return text or "the document"


def json_pointer(path: list[str | int]) -> str:
    """RFC 6901: ``["a/b", 0]`` -> ``/a~1b/0``."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def integer(value: Any, name: str, lo: int, hi: int, *, status: int = 400) -> int:
    """A whole number within [lo, hi]: an int, an integral float, or ASCII decimal text (a query
    parameter, a quoted number) of at most MAX_DIGITS digits."""
    if isinstance(value, str):
        value = value.strip()
        if not _DECIMAL.match(value):
            raise Problem(status, f"{name} must be an integer between {lo} and {hi}", pointer=name)
        value = int(value)
    elif isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise Problem(status, f"{name} must be an integer between {lo} and {hi}", pointer=name)
    if not lo <= value <= hi:
        raise Problem(status, f"{name} must be between {lo} and {hi}", pointer=name)
    return value


def human_bytes(n: int) -> str:
    """Bytes for people: 1.5MiB, 1GiB, 512B."""
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f}".removesuffix(".0") + unit
    return f"{n}B"


def client_address(request: Request) -> str:
    """The caller's address (uvicorn takes it from X-Forwarded-For when the peer is a trusted
    proxy: --forwarded-allow-ips, loopback by default)."""
    return request.client.host if request.client else ""


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


async def reserved(request: Request, reserve: Awaitable[list[Message]], *, wait: float) -> list[Message]:
    """The messages a reserve (a long poll of ``wait`` seconds) got: none if the client went away
    meanwhile (``unless_disconnected``) or the queue's delivery is paused (the pull contracts
    answer a paused queue as an empty one)."""
    try:
        return await unless_disconnected(request, reserve, [], wait=wait)
    except DeliveryPaused:
        return []


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


def endpoint_routes(routes: Iterable[BaseRoute], prefix: str = "") -> Iterator[tuple[str, Route]]:
    """Every endpoint route with its whole path template, mount paths included, in routing order."""
    for route in routes:
        if isinstance(route, Mount):
            yield from endpoint_routes(route.routes, prefix + route.path)
        elif isinstance(route, Route):
            yield prefix + route.path, route

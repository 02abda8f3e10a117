"""The fast lane: the message verbs, answered without Starlette's per-request layers.

Theory of operation. Before an endpoint runs, Starlette hands the request down six ASGI layers
(Instrument, BodyLimit, ExceptionMiddleware, the app's router, a contract's Mount and its
router, the route's ``request_response``), and the answer goes back up through a send wrapper
in most of them. For a GET of one message that was about a quarter of the worker's time
(bench/RESULTS.md, "HTTP hot path, stop 24"). The lane is one middleware in front of those layers (inside
Starlette's ServerErrorMiddleware, which still turns a bug into a 500). A route whose endpoint
a contract marks ``@hot`` (``_common.hot``) is matched here, with Starlette's own path
matching, and its endpoint is called with a Request, as Starlette calls it. What the skipped layers do for every other
route the lane does itself, reusing their code: the error answers (``errors.handle``),
X-Request-Id, the metrics and the access log (``metrics.request_done``). Every other request
passes through untouched, and so does one whose declared body is over the limit (BodyLimit
answers it).

Which route answers a path stays the routing table's decision. Starlette takes the first route
that matches the path and the method, and a Mount whose prefix matches keeps the request even
when none of its routes does. So the lane answers for a hot route only if nothing before it in
the table could take one of its paths: no earlier route that shares a method and could match
the same path (``may_overlap``: the same segments, literal segments equal), and no other Mount
whose prefix could (``lane_routes``). A hot route that fails this is left to Starlette.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ferrymq.engine import EngineError
from ferrymq.engine.core import remember_bounded

from . import errors, metrics
from ._common import declares_over
from .errors import Problem

CACHED_PATHS, CACHED_PATH_CHARS = 4096, 256
"""How many request paths' matches the lane remembers (then it forgets them all), and the longest
path it remembers (a path is the client's to choose: the memory stays bounded)."""

ANSWERED = (EngineError, Problem, HTTPException)
"""What an endpoint raises as an answer (``errors.handle``, as the app's exception handlers);
anything else is a bug, for ServerErrorMiddleware."""


class LaneRoute(NamedTuple):
    whole: Route  # the route over its whole template, mount paths included: the lane's matching
    route: Route  # the table's own (what ``scope["route"]`` names, as Starlette sets it)
    template: str  # the metrics' and the access log's route


def lane_routes(routes: Iterable[BaseRoute]) -> list[LaneRoute]:
    """The hot routes the lane may answer for, in table order (see the module docstring)."""
    earlier: list[tuple[str, BaseRoute, list[Mount]]] = []
    found = []
    for template, route, mounts in _flattened(routes, "", []):
        if (isinstance(route, Route) and getattr(route.endpoint, "hot", False) and ":path}" not in template
                and inspect.iscoroutinefunction(route.endpoint)  # the lane awaits it: no threadpool
                and not any(_may_take(other, route, template, mounts) for other in earlier)):
            found.append(LaneRoute(Route(template, route.endpoint, methods=route.methods), route, template))
        earlier.append((template, route, mounts))
    return found


def _flattened(routes: Iterable[BaseRoute], prefix: str,
               mounts: list[Mount]) -> Iterator[tuple[str, BaseRoute, list[Mount]]]:
    """Every route in Starlette's order, with its whole template and the mounts it is in; a
    Mount comes before its routes, as the prefix that keeps whatever it matches."""
    for route in routes:
        path = prefix + getattr(route, "path", "")
        if isinstance(route, Mount):
            yield path + "/{path:path}", route, mounts
            yield from _flattened(route.routes, path, [*mounts, route])
        else:
            yield path, route, mounts


def _may_take(other: tuple[str, BaseRoute, list[Mount]], route: Route, template: str, mounts: list[Mount]) -> bool:
    """Whether ``other``, earlier in the table, could take a request meant for ``route``."""
    other_template, other_route, _ = other
    if isinstance(other_route, Mount):
        return other_route not in mounts and may_overlap(other_template, template)
    if not isinstance(other_route, Route):
        return True  # a kind of route we do not reason about: assume the worst
    shared = other_route.methods is None or route.methods is None or other_route.methods & route.methods
    return bool(shared) and may_overlap(other_template, template)


def may_overlap(a: str, b: str) -> bool:
    """Whether some path could match both Starlette path templates. Segment by segment: two
    literal segments meet only if equal; a segment with a parameter meets any but an empty one; a
    segment with a ``{name:path}`` parameter meets all the rest."""
    sa, sb = a.split("/"), b.split("/")
    for x, y in zip(sa, sb):
        if ":path}" in x or ":path}" in y:
            return True
        if "{" not in x and "{" not in y and x != y:
            return False
        if (x == "" and "{" in y) or (y == "" and "{" in x):  # a parameter matches one character at least
            return False
    return len(sa) == len(sb)


class FastLane:
    """ASGI middleware: the hot routes of ``routes`` answered here (see the module docstring);
    ``limit``: the request body limit (BodyLimit's)."""

    def __init__(self, app: ASGIApp, routes: Iterable[BaseRoute], limit: int) -> None:
        self.app, self.limit = app, limit
        # By method and number of slashes: a request looks at the one or two routes of its shape.
        self.shapes: dict[tuple[str, int], list[LaneRoute]] = {}
        self._matched: dict[tuple[str, str, str], tuple[LaneRoute, Any, dict[str, Any]]] = {}
        for lane in lane_routes(routes):
            for method in lane.whole.methods or ():
                self.shapes.setdefault((method, lane.template.count("/")), []).append(lane)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Passed through as well: a path with a newline (a Mount's "{path:path}" stops at one,
        # a whole template's parameters do not) and a declared body over the limit (BodyLimit
        # answers it before routing, as for any route).
        if scope["type"] == "http" and "\n" not in scope["path"] and not declares_over(scope, self.limit):
            found = self.lane_of(scope)
            if found is not None:
                lane, endpoint, path_params = found
                scope["route"], scope["endpoint"] = lane.route, endpoint
                scope["path_params"] = {**scope.get("path_params", {}), **path_params}  # as Route.matches
                await self.answer(lane, scope, receive, send)
                return
        await self.app(scope, receive, send)

    def lane_of(self, scope: Scope) -> tuple[LaneRoute, Any, dict[str, Any]] | None:
        """The lane route a request's method and path match, its endpoint and the parameters the
        path gives (None: none matches). A match is remembered for a short path: clients send
        the same few again and again, and Starlette's match is ~2 us a route tried. Only
        matches: a miss is any path or method a client makes up."""
        key = (scope["method"], scope.get("root_path", ""), scope["path"])
        found = self._matched.get(key)
        if found is None:
            found = self._match(scope)
            if found is not None and len(key[2]) <= CACHED_PATH_CHARS:
                remember_bounded(self._matched, key, found, CACHED_PATHS)
        return found

    def _match(self, scope: Scope) -> tuple[LaneRoute, Any, dict[str, Any]] | None:
        slashes = scope["path"].count("/") - scope.get("root_path", "").count("/")
        for lane in self.shapes.get((scope["method"], slashes), ()):
            match, child_scope = lane.whole.matches(scope)
            if match is Match.FULL:
                own = {name: child_scope["path_params"][name] for name in lane.whole.param_convertors}
                return lane, child_scope["endpoint"], own
        return None

    async def answer(self, lane: LaneRoute, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        request_id = metrics.request_id_of(scope)
        status = 500  # unless answered: an exception escaping here is a 500 further out
        try:
            request = Request(scope, receive)
            response = await self.respond(lane.route.endpoint, request)
            response.raw_headers.append((b"x-request-id", request_id.encode()))
            status = response.status_code
            await response(scope, receive, send)
        finally:
            metrics.request_done(scope, lane.template, request_id, status, time.perf_counter() - started)

    async def respond(self, endpoint: Any, request: Request) -> Response:
        try:
            return await endpoint(request)
        except ANSWERED as exc:
            return await errors.handle(request, exc)

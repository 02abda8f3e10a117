"""Errors, in one place: every engine error and HTTP-level problem, rendered in the envelope of
the contract whose path was called.

``TABLE`` has one row per error and one column per contract: (status, code, text). Contract
modules never build error responses themselves; they raise engine errors or ``Problem``, and
register a renderer for their path prefix.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from ferrymq.engine.errors import AlertNotFound, AlreadyExists, DeliveryPaused, EngineError, InvalidArgument
from ferrymq.engine.errors import MessageNotFound, NotReplicated, NotReserved, QueueNotFound, QuotaExceeded
from ferrymq.engine.errors import TooLarge, Unavailable

log = logging.getLogger("ferrymq.http")

IRONMQ, IRONMQ3, CLOUDFLARE, ELASTIC = "ironmq", "ironmq3", "cloudflare", "elastic"


@dataclass(eq=False)
class Problem(Exception):
    """A rejected request, contract-neutral. ``code`` is the contract's own error code (a
    Cloudflare number, a JSON:API code); ``text`` None means "use the error's own message"."""

    status: int
    text: str
    code: int | str | None = None
    title: str | None = None
    pointer: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


class Cell(NamedTuple):
    status: int
    code: int | str | None
    text: str | None  # None: the engine error's own message (it names the field)
    headers: tuple[tuple[str, str], ...] = ()


NOT_REPLICATED = "Not confirmed by enough replicas in time: the write may not be durable"

# error -> contract -> how it is rendered. Cloudflare codes: see docs/contracts/cloudflare-queues.md §3.
TABLE: dict[type[Exception], dict[str, Cell]] = {
    QueueNotFound: {
        IRONMQ: Cell(404, None, "Queue not found"),
        CLOUDFLARE: Cell(404, 11000, "Queue not found"),
        ELASTIC: Cell(404, "not_found", "Queue not found"),
    },
    MessageNotFound: {
        IRONMQ: Cell(404, None, "Message not found"),
        CLOUDFLARE: Cell(404, 11002, "Message not found"),
        ELASTIC: Cell(404, "not_found", "Message not found"),
    },
    AlertNotFound: {
        IRONMQ: Cell(404, None, "Alert not found"),
        CLOUDFLARE: Cell(404, 11002, "Alert not found"),
        ELASTIC: Cell(404, "not_found", "Alert not found"),
    },
    NotReserved: {
        IRONMQ: Cell(403, None, "Message not reserved"),
        CLOUDFLARE: Cell(409, 10026, "Lease is not current"),
        ELASTIC: Cell(409, "reservation_expired", "The reservation is not current"),
    },
    TooLarge: {
        IRONMQ: Cell(400, None, None),
        CLOUDFLARE: Cell(400, 10204, None),
        ELASTIC: Cell(413, "too_large", None),
    },
    InvalidArgument: {
        IRONMQ: Cell(400, None, None),
        CLOUDFLARE: Cell(400, 10026, None),
        ELASTIC: Cell(422, "invalid_attribute", None),
    },
    AlreadyExists: {
        IRONMQ: Cell(400, None, None),
        CLOUDFLARE: Cell(409, 11009, "Queue name already taken"),
        ELASTIC: Cell(409, "conflict", None),
    },
    DeliveryPaused: {
        IRONMQ: Cell(409, None, "Delivery is paused on this queue"),
        CLOUDFLARE: Cell(409, 10252, "queue_delivery_paused"),
        ELASTIC: Cell(409, "delivery_paused", "Delivery is paused on this queue"),
    },
    QuotaExceeded: {  # IronMQ answers limits with 403; Cloudflare's storage limit is a 429 (10251)
        IRONMQ: Cell(403, None, None),
        CLOUDFLARE: Cell(429, 10251, None, (("x-should-retry", "false"),)),  # retrying changes nothing
        ELASTIC: Cell(403, "quota_exceeded", None),
    },
    Unavailable: {
        IRONMQ: Cell(503, None, "Service unavailable, please retry"),
        CLOUDFLARE: Cell(503, 15001, "Service unavailable, please retry"),
        ELASTIC: Cell(503, "unavailable", "Service unavailable, please retry"),
    },
    # The write was made on the primary, but too few replicas confirmed it: 504 (an upstream did
    # not answer in time), never a success. Retrying a put may store the message twice.
    NotReplicated: {
        IRONMQ: Cell(504, None, NOT_REPLICATED),
        CLOUDFLARE: Cell(504, 15002, NOT_REPLICATED),
        ELASTIC: Cell(504, "not_replicated", NOT_REPLICATED),
    },
}

INTERNAL = {
    IRONMQ: Cell(500, None, "Internal error"),
    CLOUDFLARE: Cell(500, 15000, "Internal error"),
    ELASTIC: Cell(500, "internal_error", "Internal error"),
}
NOT_FOUND = {
    IRONMQ: Cell(404, None, "Not found"),
    CLOUDFLARE: Cell(404, 7003, "No route for the URI"),
    ELASTIC: Cell(404, "not_found", "Not found"),
}
METHOD_NOT_ALLOWED = {
    IRONMQ: Cell(405, None, "Method not allowed"),
    CLOUDFLARE: Cell(405, 7003, "Method not allowed"),
    ELASTIC: Cell(405, "method_not_allowed", "Method not allowed"),
}

# IronMQ v3 answers every error as v1 does (same statuses, same {"msg"} texts), except a reservation
# that is not current: v3's documents name it "Reservation timed out".
for _cells in (*TABLE.values(), INTERNAL, NOT_FOUND, METHOD_NOT_ALLOWED):
    _cells[IRONMQ3] = _cells[IRONMQ]
TABLE[NotReserved][IRONMQ3] = Cell(403, None, "Reservation timed out")

Renderer = Callable[[Problem], Response]
_RENDERERS: list[tuple[str, str, Renderer]] = []  # (path prefix, contract, renderer), longest first


def register(prefix: str, contract: str, renderer: Renderer) -> None:
    """A contract module claims a path prefix and says how its errors look."""
    _RENDERERS.append((prefix, contract, renderer))
    _RENDERERS.sort(key=lambda entry: -len(entry[0]))


def contract_of(path: str) -> tuple[str, Renderer]:
    for prefix, contract, renderer in _RENDERERS:
        if path.startswith(prefix):
            return contract, renderer
    return _RENDERERS[-1][1], _RENDERERS[-1][2]  # the shortest prefix renders the rest


def problem_for(exc: Exception, contract: str) -> Problem:
    if isinstance(exc, Problem):
        return exc
    for cls in type(exc).__mro__:
        if cls in TABLE:
            cell = TABLE[cls][contract]
            break
    else:
        cell = INTERNAL[contract]
    text = cell.text or (exc.message if isinstance(exc, EngineError) else str(exc))
    pointer = getattr(exc, "field", None)
    return Problem(cell.status, text, cell.code, pointer=pointer, headers=dict(cell.headers))


async def handle(request: Request, exc: Exception) -> Response:
    if isinstance(exc, ClientDisconnect):  # gone mid-body (or timed out: timeouts.py); nobody reads this
        return Response(status_code=400)
    contract, render = contract_of(request.url.path)
    if isinstance(exc, HTTPException):
        cells = METHOD_NOT_ALLOWED if exc.status_code == 405 else NOT_FOUND
        cell = cells[contract] if exc.status_code in (404, 405) else Cell(exc.status_code, None, exc.detail)
        return render(Problem(cell.status, cell.text or "", cell.code))
    if not isinstance(exc, (EngineError, Problem)):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
    return render(problem_for(exc, contract))


# Engine errors and problems are answers, not failures; anything else is a bug: rendered as 500
# by Starlette's ServerErrorMiddleware (the Exception entry), which also re-raises it for the logs.
EXCEPTION_HANDLERS = {EngineError: handle, Problem: handle, HTTPException: handle, Exception: handle}

"""ElasticQueue (JSON:API) over the engine. Translation only: parse, one engine call, shape. The
contract as we implement it: docs/contracts/elasticqueue.md (the raw spec is a short Slate page).

Producer side (the spec): ``POST /v1/queues/{queue}/messages`` and ``.../messages/_bulk``, both
answered ``202 Accepted`` with one resource object per message (``type``, ``id``, ``links.self``).
Consumer side (notes §5, our extension): ``POST /v1/queues/{queue}/reservations`` (long poll),
``GET|PATCH|DELETE /v1/queues/{queue}/messages/{id}``, ``GET /v1/queues/{queue}``.

Rules applied here:

- Media types: responses are ``application/vnd.api+json``. A request body must be sent as
  ``application/vnd.api+json`` or, leniently, ``application/json``; anything else is 415. The
  JSON:API type may carry only ``profile`` (``ext`` names extensions: we implement none), else 415;
  an ``Accept`` that lists the JSON:API type only with other parameters is 406.
- Auth: ``Authorization: <token>`` (raw, as in the spec) or ``Bearer <token>``; the queue belongs to
  the token's project. Anything else is 401.
- Errors: ``{"errors": [...]}``, one object per problem found, each with ``source.pointer`` into the
  request document (``/data/3/attributes/body`` in a bulk) or ``source.parameter`` for a query
  parameter. Several problems with different statuses answer 400 (JSON:API: the most general).
- Bulk is all or nothing: every member is validated first, and the batch is stored by ONE engine
  ``put`` (one Lua script), so no failure can leave half a batch.
- ``wait-until`` (and ``reserved-until``) unit: a value >= 10**11 is milliseconds since the epoch,
  a smaller one is seconds. The spec's table says seconds but its examples are milliseconds;
  10**11 s is the year 5138 and 10**11 ms is 1973, so no realistic timestamp is misread in either
  unit. 0 or absent means the queue's default (now, unless the queue was configured otherwise); a
  time in the past means now; negative is 422; a due time more than the engine's longest delay
  (7 days) ahead is 422, not silently clamped. ``reserved-until`` may be at most the engine's
  longest reservation (1 day) ahead; 0 extends a reservation by its own timeout again. The engine
  takes these absolute times as they are (its own clock decides when they are due).
- A reservation id is a fencing token: DELETE and PATCH of a message require the current one
  (``?reservation-id=``, else 400); a stale one is 409 ``reservation_expired``. A PATCH answers
  what changed: a touch its new ``reservation-id`` and ``reserved-until``, a release its
  ``wait-until``. The reservation id is never shown by GET (it is the holder's alone).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ferrymq.engine import Limits, Message, NewMessage, TooLarge
from ferrymq.engine.aio import AsyncQueue
from ferrymq.engine.core import check_body

from . import errors
from ._common import JSON, auth, bearer, client_address, engine, integer, query_params, read_json, reserved
from ._common import hot, settings
from .errors import ELASTIC, Problem

PREFIX = "/v1/"
MEDIA_TYPE = "application/vnd.api+json"
MAX_BULK = 100
MILLISECONDS_FROM = 10**11  # wait-until values from here on are ms since the epoch (module docstring)
COUNT = (1, 100)
VISIBILITY_TIMEOUT = (1, 86_400)
WAIT = (0, 30)
NO_BODY = object()


class JSONAPI(JSON):
    media_type = MEDIA_TYPE


@dataclass(eq=False)
class Problems(Problem):
    """Several problems answered together (JSON:API reports every one it found)."""

    each: list[Problem] = field(default_factory=list)


def all_of(found: list[Problem]) -> Problem:
    if len(found) == 1:
        return found[0]
    statuses = {problem.status for problem in found}
    status = statuses.pop() if len(statuses) == 1 else 400  # JSON:API: the most general status
    return Problems(status, f"{len(found)} problems", each=found)


# Problems raised by the shared helpers (_common.py) carry no JSON:API code: these name them.
DEFAULT_CODES = {400: "invalid_document", 413: "too_large", 422: "invalid_attribute"}


def error_object(problem: Problem) -> dict[str, Any]:
    phrase = HTTPStatus(problem.status).phrase.lower().replace(" ", "_")
    code = problem.code or DEFAULT_CODES.get(problem.status, phrase)
    error = {
        "status": str(problem.status),
        "code": code,
        "title": problem.title or str(code).replace("_", " ").capitalize(),
        "detail": problem.text,
    }
    where = problem.pointer
    if where is not None and where[:1] in ("", "/"):  # "" points at the whole document
        error["source"] = {"pointer": where}
    elif where is not None and where[:1] == "?":
        error["source"] = {"parameter": where[1:]}
    return error  # an engine error's field name is no address in the request: no source


def render_error(problem: Problem) -> JSONAPI:
    each = problem.each if isinstance(problem, Problems) else [problem]
    return JSONAPI({"errors": [error_object(p) for p in each]}, status_code=problem.status, headers=problem.headers)


errors.register(PREFIX, ELASTIC, render_error)


# -- content negotiation and auth ----------------------------------------------------------------


def parse_media_type(value: str) -> tuple[str, dict[str, str]]:
    kind, *params = value.split(";")
    pairs = (param.partition("=") for param in params if param.strip())
    return kind.strip().lower(), {name.strip().lower(): v.strip().strip('"') for name, _, v in pairs}


def plain_jsonapi(params: dict[str, str]) -> bool:
    """JSON:API allows only ``ext`` and ``profile`` on its type; we implement no extension, so
    ``ext`` is refused too. ``q`` is an Accept weight, not a parameter of the type."""
    return set(params) - {"q"} <= {"profile"}


def check_accept(request: Request) -> None:
    offers = [parse_media_type(item) for item in request.headers.get("accept", "").split(",") if item.strip()]
    ours = [params for kind, params in offers if kind == MEDIA_TYPE]
    if ours and not any(plain_jsonapi(params) for params in ours):
        raise Problem(406, f"Accept lists {MEDIA_TYPE} only with parameters this server does not support",
                      code="not_acceptable")


def check_content_type(declared: str) -> None:
    kind, params = parse_media_type(declared)
    if kind == "application/json" or (kind == MEDIA_TYPE and plain_jsonapi(params)):
        return
    raise Problem(415, f"Content-Type must be {MEDIA_TYPE} (without parameters) or application/json",
                  code="unsupported_media_type")


async def project(request: Request) -> str:
    """The token's project; the token comes raw (the spec's example) or as a Bearer token."""
    check_accept(request)
    token = bearer(request, "bearer") or request.headers.get("authorization", "").strip()
    owner = await auth(request).project_of(token, client_address(request))
    if owner is None:
        raise Problem(401, "A valid token is required in the Authorization header", code="unauthorized",
                      headers={"WWW-Authenticate": 'Bearer realm="ferrymq"'})
    return owner


async def queue(request: Request) -> AsyncQueue:
    return engine(request).queue(await project(request), request.path_params["queue"])


# -- documents ----------------------------------------------------------------------------------


async def read_document(request: Request, *, required: bool = True) -> dict[str, Any]:
    """The request's JSON:API document; an empty body is ``{}`` where a document is optional."""
    declared = request.headers.get("content-type")
    if declared is not None:
        check_content_type(declared)
    doc = await read_json(request, empty=NO_BODY)
    if doc is NO_BODY:
        if required:
            raise Problem(400, "The request needs a JSON:API document", code="invalid_document")
        return {}
    if declared is None:
        raise Problem(415, f"Content-Type is missing: send {MEDIA_TYPE}", code="unsupported_media_type")
    if not isinstance(doc, dict):
        raise Problem(400, "The document must be a JSON object", code="invalid_document", pointer="")
    if "data" not in doc:
        raise Problem(400, "The document needs a data member", code="invalid_document", pointer="/data")
    return doc


def attributes_of(
    resource: Any, at: str, kind: str, found: list[Problem], *, resource_id: str | None = None,
    optional: bool = False,
) -> dict[str, Any] | None:
    """The attributes of a resource object at pointer ``at`` (``optional``: may be left out);
    its problems go to ``found``. A new resource must not bring an id; an existing one
    (``resource_id``) must name itself."""
    if not isinstance(resource, dict):
        found.append(Problem(400, f"{at} must be a resource object", code="invalid_document", pointer=at))
        return None
    if "type" not in resource:
        found.append(Problem(400, "type is required", code="invalid_document", pointer=f"{at}/type"))
    elif resource["type"] != kind:
        found.append(Problem(409, f'type must be "{kind}"', code="type_conflict", pointer=f"{at}/type"))
    if resource_id is None and "id" in resource:
        found.append(Problem(403, "Client-generated ids are not supported", code="client_id_unsupported",
                             pointer=f"{at}/id"))
    elif resource_id is not None and resource.get("id") != resource_id:
        status, code = (409, "id_conflict") if "id" in resource else (400, "invalid_document")
        found.append(Problem(status, f'id must be "{resource_id}", the message in the URL', code=code,
                             pointer=f"{at}/id"))
    attributes = resource.get("attributes", {} if optional else None)
    if not isinstance(attributes, dict):
        problem = "attributes is required" if attributes is None else "attributes must be an object"
        found.append(Problem(400, problem, code="invalid_document", pointer=f"{at}/attributes"))
        return None
    return attributes


def whole_number(attributes: dict[str, Any], name: str, at: str, lo: int, hi: int) -> int | None:
    """An integer attribute within [lo, hi]; absent or null is None. Strings are refused (the
    spec types these Integer), integral floats accepted (JavaScript clients)."""
    value = attributes.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        raise Problem(422, f"{name} must be an integer", code="invalid_attribute", pointer=f"{at}/{name}")
    try:
        return integer(value, name, lo, hi, status=422)
    except Problem as problem:
        raise replace(problem, code="invalid_attribute", pointer=f"{at}/{name}") from None


@dataclass(frozen=True)
class Horizon:
    """How far ahead a due time may be: the engine's limits, from the engine's "now"."""

    now_ms: int
    limits: Limits

    def moment(self, attributes: dict[str, Any], name: str, at: str, ahead: float) -> int | None:
        """``name`` as ms since the epoch (unit rule: module docstring); None for absent or 0."""
        value = whole_number(attributes, name, at, 0, 10**13 - 1)  # 10**13 ms: the year 2286
        if not value:
            return None
        ms = value if value >= MILLISECONDS_FROM else value * 1000
        if ms > self.now_ms + ahead * 1000:
            raise Problem(422, f"{name} must be at most {ahead:.0f} seconds ahead", code="invalid_attribute",
                          pointer=f"{at}/{name}")
        return ms


def horizon_of(request: Request) -> Horizon:
    """The engine's limits from its clock's now: checked here too so that every bad member of a
    bulk is reported with its pointer (the engine would stop at the first)."""
    return Horizon(engine(request).clock.wall_ms(), engine(request).limits)


def checked(found: list[Problem], check: Any, *args: Any) -> Any:
    """``check(*args)``, or None with its problems added to ``found`` (to report them all)."""
    try:
        return check(*args)
    except Problem as problem:
        found.extend(problem.each if isinstance(problem, Problems) else [problem])
        return None


def new_message(resource: Any, at: str, horizon: Horizon) -> NewMessage:
    found: list[Problem] = []
    attributes = attributes_of(resource, at, "message", found)
    if attributes is None:
        raise all_of(found)
    body = checked(found, message_body, attributes, f"{at}/attributes", horizon.limits)
    due = checked(found, horizon.moment, attributes, "wait-until", f"{at}/attributes", horizon.limits.max_delay)
    if found:
        raise all_of(found)
    return NewMessage(body, available_at=due)


def message_body(attributes: dict[str, Any], at: str, limits: Limits) -> str:
    body = attributes.get("body")
    if not isinstance(body, str):
        problem = "is required" if body is None else "must be a string"
        raise Problem(422, f"body {problem}", code="invalid_attribute", pointer=f"{at}/body")
    try:
        check_body("body", body, limits)  # the engine's own size rule, here to report every member
    except TooLarge as exc:
        raise replace(errors.problem_for(exc, ELASTIC), pointer=f"{at}/body") from None
    return body


def new_messages(resources: list[Any], horizon: Horizon) -> list[NewMessage]:
    found: list[Problem] = []
    messages = [checked(found, new_message, r, f"/data/{i}", horizon) for i, r in enumerate(resources)]
    if found:
        raise all_of(found)
    return messages


# -- shaping ------------------------------------------------------------------------------------


def queue_link(request: Request) -> str:
    """Under ``--public-url`` when it is set, else the request's own base URL (its Host header);
    the queue name is quoted (url_for would not escape it)."""
    public = settings(request).public_url
    base = public.rstrip("/") + "/" if public else str(request.base_url)
    return f"{base}v1/queues/{quote(request.path_params['queue'], safe='')}"


def message_link(request: Request, message_id: str) -> str:
    """Under our actual route: the spec's ``/v1/api/...`` link has no route."""
    return f"{queue_link(request)}/messages/{message_id}"


def message_resource(request: Request, message_id: str, attributes: dict[str, Any] | None = None) -> dict[str, Any]:
    resource: dict[str, Any] = {"type": "message", "id": message_id}
    if attributes is not None:
        resource["attributes"] = attributes
    resource["links"] = {"self": message_link(request, message_id)}
    return resource


def reserved_view(request: Request, message: Message) -> dict[str, Any]:
    return message_resource(request, message.id, {
        "body": message.text,
        "reserved-count": message.reserved_count,
        "reservation-id": message.reservation_id,
        "reserved-until": message.reserved_until,
    })


def reservation_id(request: Request) -> str:
    rid = query_params(request).get("reservation-id", "")
    if not rid:
        raise Problem(400, "reservation-id is required: the id the reservation returned", code="invalid_parameter",
                      pointer="?reservation-id")
    return rid


# -- producer (the spec) ------------------------------------------------------------------------


@hot
async def post_message(request: Request) -> JSONAPI:
    q = await queue(request)
    data = (await read_document(request))["data"]
    if not isinstance(data, dict):
        raise Problem(400, "data must be one resource object (several go to .../messages/_bulk)",
                      code="invalid_document", pointer="/data")
    message = new_message(data, "/data", horizon_of(request))
    [message_id] = await q.put([message])
    return JSONAPI({"data": message_resource(request, message_id)}, status_code=202)


@hot
async def post_bulk(request: Request) -> JSONAPI:
    q = await queue(request)
    data = (await read_document(request))["data"]
    if not isinstance(data, list) or not data:
        raise Problem(400, "data must be an array of 1 to 100 resource objects", code="invalid_document",
                      pointer="/data")
    if len(data) > MAX_BULK:
        raise Problem(422, f"data holds {len(data)} messages; at most {MAX_BULK} per request", code="too_many",
                      pointer="/data")
    ids = await q.put(new_messages(data, horizon_of(request)))  # one script: all or nothing
    return JSONAPI({"data": [message_resource(request, i) for i in ids]}, status_code=202)


# -- consumer (notes §5) ------------------------------------------------------------------------


@hot
async def reserve(request: Request) -> JSONAPI:
    q = await queue(request)
    doc = await read_document(request, required=False)
    found: list[Problem] = []
    attributes = attributes_of(doc["data"], "/data", "reservation", found, optional=True) if doc else {}
    if attributes is None:
        raise all_of(found)
    at = "/data/attributes"
    count = checked(found, whole_number, attributes, "count", at, *COUNT)
    timeout = checked(found, whole_number, attributes, "visibility-timeout", at, *VISIBILITY_TIMEOUT)
    wait = checked(found, whole_number, attributes, "wait", at, *WAIT)
    if found:
        raise all_of(found)
    got = await reserved(request, q.reserve(count or 1, timeout=timeout, wait=wait or 0), wait=wait or 0)
    return JSONAPI({"data": [reserved_view(request, m) for m in got]})


async def get_message(request: Request) -> JSONAPI:
    q = await queue(request)
    message = await q.get(request.path_params["message_id"])
    return JSONAPI({"data": message_resource(request, message.id, {
        "body": message.text,
        "wait-until": message.available_at or 0,
        "reserved-count": message.reserved_count,
        "state": message.status,
    })})


@hot
async def delete_message(request: Request) -> Response:
    q = await queue(request)
    await q.delete_message(request.path_params["message_id"], reservation_id(request))
    return Response(status_code=204)


async def patch_message(request: Request) -> JSONAPI:
    """``reserved-until`` extends the reservation (touch); ``wait-until`` ends it (release)."""
    q = await queue(request)
    rid = reservation_id(request)
    message_id = request.path_params["message_id"]
    attributes = patch_attributes((await read_document(request))["data"], message_id)
    horizon, at = horizon_of(request), "/data/attributes"
    if "reserved-until" in attributes:
        until = horizon.moment(attributes, "reserved-until", at, horizon.limits.max_timeout)
        lease = await q.touch(message_id, rid, reserved_until=until)
        shown = {"reservation-id": lease.reservation_id, "reserved-until": lease.reserved_until}
    else:
        due = horizon.moment(attributes, "wait-until", at, horizon.limits.max_delay)
        await q.release(message_id, rid, available_at=due)
        shown = {"wait-until": due or 0}
    return JSONAPI({"data": message_resource(request, message_id, shown)})


def patch_attributes(data: Any, message_id: str) -> dict[str, Any]:
    """The attributes of a PATCH; its resource must name this message (JSON:API: id required)."""
    found: list[Problem] = []
    attributes = attributes_of(data, "/data", "message", found, resource_id=message_id)
    if attributes is not None and ("reserved-until" in attributes) == ("wait-until" in attributes):
        found.append(Problem(422, "give reserved-until (to extend the reservation) or wait-until (to release)",
                             code="invalid_attribute", pointer="/data/attributes"))
    if found:
        raise all_of(found)
    return attributes  # type: ignore[return-value]


async def get_queue(request: Request) -> JSONAPI:
    info = await (await queue(request)).info()
    return JSONAPI({"data": {
        "type": "queue",
        "id": info.name,
        "attributes": {
            "size": info.size, "reserved": info.reserved, "delayed": info.delayed,
            "total-messages": info.total_messages,
        },
        "links": {"self": queue_link(request)},
    }})


# -- routing -------------------------------------------------------------------------------------


def routes() -> list[BaseRoute]:
    table = [  # the message routes first: Starlette tries routes in order
        ("/v1/queues/{queue}/messages", post_message, "POST"),
        ("/v1/queues/{queue}/messages/_bulk", post_bulk, "POST"),
        ("/v1/queues/{queue}", get_queue, "GET"),
        ("/v1/queues/{queue}/messages/{message_id}", get_message, "GET"),
        ("/v1/queues/{queue}/messages/{message_id}", patch_message, "PATCH"),
        ("/v1/queues/{queue}/messages/{message_id}", delete_message, "DELETE"),
        ("/v1/queues/{queue}/reservations", reserve, "POST"),
    ]
    return [Route(path, endpoint, methods=[method]) for path, endpoint, method in table]

"""What the IronMQ v1 and v3 contracts share: the project check of the token, the ``{"msg"}``
error envelope, number parsing with IronMQ's "zero means default", the parsing of subscribers
and alerts, the limits, and the headers of pushes (push queues are IronMQ's, in both versions).
The contracts themselves: ironmq.py (v1), ironmq3.py (v3)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from starlette.requests import Request
from starlette.routing import BaseRoute, Mount, Route

from ferrymq.engine import Alert, NewMessage, PushConfig, PushDelivery, Subscriber
from ferrymq.engine.aio import AsyncQueue

from ._common import JSON, auth, bearer, client_address, engine, integer, query_params
from .errors import Problem

MAX_BATCH = 100
TIMEOUT = (1, 86_400)  # message and reservation timeout, seconds (below DOCv1's 30: clients use 2, 10)
DELAY = (0, 604_800)
EXPIRES_IN = (1, 2_592_000)
WAIT = (0, 30)
PER_PAGE = (1, 100)
RETRIES = (0, 100)
RETRIES_DELAY = (3, 86_400)
V1_PREFIX = "/1/projects/"
PUSH_TYPES = ("multicast", "unicast", "pull")


def mount(prefix: str, table: list[tuple[str, Any, str]]) -> list[BaseRoute]:
    """The ``(path, endpoint, method)`` rows under ``prefix``, each path with and without a
    trailing slash (DOCv1 writes both; no redirects: a 307 on a POST or DELETE loses its body in
    some clients)."""
    routes = [Route(path + end, endpoint, methods=[method]) for path, endpoint, method in table for end in ("", "/")]
    return [Mount(prefix, routes=routes)]


def render_error(problem: Problem) -> JSON:
    return JSON({"msg": problem.text}, status_code=problem.status, headers=problem.headers)


# -- requests ------------------------------------------------------------------------------------


async def project(request: Request, *, count: bool = True) -> str:
    """The path's project, if the token (header or ``?oauth=``) belongs to it. ``count``: see
    ``Auth.project_of``."""
    token = bearer(request, "oauth", "bearer") or query_params(request).get("oauth")
    owner = await auth(request).project_of(token, client_address(request), count=count)
    if owner is None or owner != request.path_params["project_id"]:
        raise Problem(401, "Invalid project/token combination")
    return owner


async def queue(request: Request, *, count: bool = True) -> AsyncQueue:
    return engine(request).queue(await project(request, count=count), request.path_params["queue"])


def query_int(request: Request, name: str, bounds: tuple[int, int], default: int) -> int:
    """A query parameter; absent or 0 means the default (iron_go sends zeros on every GET)."""
    raw = query_params(request).get(name, "")
    if raw in ("", "0"):
        return default
    return integer(raw, name, *bounds)


def optional(doc: dict[str, Any], name: str, bounds: tuple[int, int], field: str | None = None) -> int | None:
    """A body field in seconds; absent, null or 0 mean the default (Java sends zero longs)."""
    value = doc.get(name)
    if value is None or value == 0:
        return None
    return integer(value, field or name, *bounds)


def json_object(doc: Any, name: str = "Request body") -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise Problem(400, f"{name} must be a JSON object")
    return doc


# -- messages ------------------------------------------------------------------------------------


def batch(items: Any, name: str) -> list[Any]:
    """A list of 1 to MAX_BATCH items of a request: absent or empty is 406, else 400."""
    if not items:
        raise Problem(406, f"{name} is required")
    if not isinstance(items, list):
        raise Problem(400, f"{name} must be an array")
    if len(items) > MAX_BATCH:
        raise Problem(400, f"{name} must hold at most {MAX_BATCH} {name}")
    return items


def message_items(doc: Any) -> list[Any]:
    """The ``messages`` of a post."""
    return batch(json_object(doc).get("messages"), "messages")


def messages_of(items: list[Any], new_message: Callable[[Any, int], NewMessage],
                max_body_bytes: int) -> list[NewMessage | str]:
    """The messages of a post, in one pass. An item that is a body alone (most of a big batch)
    goes to the engine as its string, no ``NewMessage``, when too short to exceed the engine's
    ``max_body_bytes`` (UTF-8 takes at most 4 bytes a character): no engine error can then name
    it (the engine would say ``messages[i]`` of a bare body, not ``messages[i].body``). Every
    other item goes through ``new_message``, which raises the contract's errors."""
    short = max_body_bytes // 4
    messages: list[NewMessage | str] = []
    for i, item in enumerate(items):
        if type(item) is dict and len(item) == 1:
            body = item.get("body")
            if type(body) is str and len(body) <= short:
                messages.append(body)
                continue
        messages.append(new_message(item, i))
    return messages


def message_body(item: Any, i: int) -> str:
    if not isinstance(item, dict):
        raise Problem(400, f"messages[{i}] must be an object")
    if "body" not in item or item["body"] is None:
        raise Problem(406, f"messages[{i}].body is required")
    if not isinstance(item["body"], str):
        raise Problem(400, f"messages[{i}].body must be a string")
    return item["body"]


# -- subscribers ---------------------------------------------------------------------------------


def required_subscribers(doc: dict[str, Any], *, named: bool = False) -> list[Subscriber]:
    if not doc.get("subscribers"):
        raise Problem(406, "subscribers is required")
    return subscribers_of(doc, named=named)


def subscribers_of(doc: dict[str, Any], *, named: bool = False) -> list[Subscriber]:
    items = doc.get("subscribers")
    if not isinstance(items, list):
        raise Problem(400, "subscribers must be an array")
    return [subscriber(item, i, named=named) for i, item in enumerate(items)]


def subscriber(item: Any, i: int, *, named: bool = False) -> Subscriber:
    """A subscriber object; with ``named`` (v3) its ``name`` too, which identifies it."""
    if not isinstance(item, dict):
        raise Problem(400, f"subscribers[{i}] must be an object")
    url, headers = item.get("url"), item.get("headers") or {}
    if not url:
        raise Problem(406, f"subscribers[{i}].url is required")
    if not isinstance(url, str):
        raise Problem(400, f"subscribers[{i}].url must be a string")
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise Problem(400, f"subscribers[{i}].headers must map header names to strings")
    name = item.get("name") or "" if named else ""
    if not isinstance(name, str):
        raise Problem(400, f"subscribers[{i}].name must be a string")
    return Subscriber(local_target(url, i), headers, name)


def push_config(doc: dict[str, Any], current: PushConfig | None, *, named: bool = False) -> PushConfig | None:
    """The queue's push settings after an update: given keys replace the current ones. None:
    nothing to change (a pull queue updated without subscribers stays a pull queue). With
    ``named`` (v3), subscribers have names."""
    push_type = doc.get("push_type")
    if push_type is not None and push_type not in PUSH_TYPES:
        raise Problem(400, "push_type must be multicast, unicast or pull")
    if push_type == "pull":
        return PushConfig((), type="pull")
    subscribers = subscribers_of(doc, named=named) if doc.get("subscribers") is not None else None
    if current is None and not subscribers:
        if push_type is not None:
            raise Problem(400, "A push queue needs at least one subscriber")
        return None
    base = current or PushConfig(())
    retries = doc.get("retries")
    delay = optional(doc, "retries_delay", RETRIES_DELAY)
    error_queue = doc.get("error_queue", base.error_queue)
    if error_queue is None:
        error_queue = base.error_queue
    if not isinstance(error_queue, str):
        raise Problem(400, "error_queue must be a string")
    return PushConfig(
        tuple(subscribers) if subscribers else base.subscribers,
        type=push_type or base.type,
        retries=base.retries if retries is None else integer(retries, "retries", *RETRIES),
        retries_delay=base.retries_delay if delay is None else delay,
        error_queue=error_queue,
    )


def local_target(url: str, i: int) -> str:
    """``ironmq:///q`` and ``ironmq://project:token@/q`` name a queue of this server; the
    engine knows them as ``ironmq:///q``. Remote hosts and IronWorker targets do not exist in a
    self-hosted server."""
    scheme = url.partition(":")[0].lower()
    if scheme == "ironworker":
        raise Problem(400, f"subscribers[{i}].url: ironworker subscribers are not supported")
    if scheme != "ironmq":
        return url
    parts = urlsplit(url)
    if parts.hostname:
        raise Problem(400, f"subscribers[{i}].url: ironmq subscribers on another host are not supported")
    if parts.username is not None and not parts.password:
        raise Problem(400, f"subscribers[{i}].url: an ironmq subscriber with a project needs its token")
    return "ironmq:///" + unquote(parts.path.lstrip("/"))


def push_headers(public_url: str) -> Callable[[PushDelivery], dict[str, str]]:
    """The headers of IronMQ pushes, v1's and v3's together (a queue is the same queue in both):
    ``Iron-Subscriber-Message-Url`` lets a subscriber that answered 202 acknowledge the delivery
    with a DELETE (v1); v3 clients acknowledge by deleting the message with the
    ``Iron-Reservation-Id`` and ``Iron-Subscriber-Name``. ``public_url`` is where subscribers
    reach us."""
    base = public_url.rstrip("/")

    def headers(delivery: PushDelivery) -> dict[str, str]:
        ack = (f"{base}{V1_PREFIX}{delivery.project}/queues/{quote(delivery.queue, safe='')}"
               f"/messages/{delivery.message_id}/subscribers/{delivery.subscriber_id}?oauth={delivery.token}")
        sent = {
            "Content-Type": "text/plain; charset=utf-8",
            **delivery.headers,
            "User-Agent": "IronMQ Pusherd",
            "Iron-Message-Id": delivery.message_id,
            "Iron-Subscriber-Message-Id": delivery.subscriber_id,
            "Iron-Subscriber-Message-Url": ack,
            "Iron-Reservation-Id": delivery.token,
        }
        if delivery.subscriber_name:
            sent["Iron-Subscriber-Name"] = delivery.subscriber_name
        return sent

    return headers


# -- alerts --------------------------------------------------------------------------------------


def alerts_of(doc: dict[str, Any]) -> list[Alert]:
    items = doc.get("alerts")
    if not items:
        raise Problem(406, "alerts is required")
    if not isinstance(items, list):
        raise Problem(400, "alerts must be an array")
    return [alert(item, i) for i, item in enumerate(items)]


def replacing_alerts(doc: dict[str, Any]) -> list[Alert]:
    """The alerts that replace a queue's (``[]``: none left)."""
    if not isinstance(doc.get("alerts"), list):
        raise Problem(406, "alerts is required")
    return alerts_of(doc) if doc["alerts"] else []


def alert(item: Any, i: int) -> Alert:
    """Types are checked here (the engine checks ranges): a trigger or snooze given as a string,
    even "1234", is refused."""
    if not isinstance(item, dict):
        raise Problem(400, f"alerts[{i}] must be an object")
    for name in ("type", "trigger", "queue"):
        if item.get(name) is None:
            raise Problem(400, f"alerts[{i}].{name} is required")
    if not is_int(item["trigger"]) or item["trigger"] < 1:
        raise Problem(400, f"alerts[{i}].trigger must be a positive integer")
    snooze = item.get("snooze", 0)
    if snooze is None:
        snooze = 0
    if not is_int(snooze) or snooze < 0:
        raise Problem(400, f"alerts[{i}].snooze must be a non-negative integer")
    for name in ("type", "queue", "direction"):
        if name in item and not isinstance(item[name], str):
            raise Problem(400, f"alerts[{i}].{name} must be a string")
    return Alert(item["type"], int(item["trigger"]), item["queue"], item.get("direction") or "asc", int(snooze))


def alert_ids(items: Any) -> list[str]:
    """The ids of alerts to remove: objects with an ``id`` (Java sends whole alert objects), or
    the ids themselves."""
    if not items:
        raise Problem(406, "alerts is required")
    ids = [a.get("id") if isinstance(a, dict) else a for a in items] if isinstance(items, list) else [None]
    if not all(isinstance(i, str) and i for i in ids):
        raise Problem(400, "alerts must be an array of alert ids or objects with an id")
    return ids


def alert_view(alert: Alert) -> dict[str, Any]:
    return {"id": alert.id, "type": alert.type, "direction": alert.direction, "trigger": alert.trigger,
            "queue": alert.queue, "snooze": alert.snooze}


def is_int(value: Any) -> bool:
    return not isinstance(value, bool) and (isinstance(value, int) or (isinstance(value, float) and value.is_integer()))

"""The OpenAPI 3.0 document of the contracts (``GET /openapi.json``) and a page that
renders it (``GET /docs``, self-contained: no CDN, nothing fetched but the document).

The paths come from the app's routes: ``document(app.routes)`` walks them (as Starlette's
``SchemaGenerator`` does) and gives each (endpoint, method) its operation from the tables here,
its path parameters from the route's template, its security from its contract. ``create_app``
builds the document once, so a route without an operation stops the app from being built
(``UndocumentedRoute``): it cannot be served undocumented. Error responses are described from the
error table (``errors.TABLE``) plus the problems each contract module raises itself.

Schemas are built here, in Python, from the contract modules' own constants (limits, media
types, enums), so a limit changed there changes here. The document is exact enough for a fuzzer
(schemathesis) to build requests for every route. Every IronMQ path also answers with a trailing
slash (the clients use both spellings); the document lists each once. The dashboard's routes are
a UI, not part of the API: they say so with ``include_in_schema=False``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from importlib.metadata import version
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import BaseRoute, Route

from ferrymq.engine import LIMITS

from . import _iron, cloudflare, elastic, ironmq, ironmq3, metrics
from ._common import JSON, endpoint_routes
from .errors import CLOUDFLARE, ELASTIC, IRONMQ, IRONMQ3, TABLE

Schema = dict[str, Any]
Operations = dict[tuple[Callable[..., Any], str], Schema]
"""(endpoint, method in lower case) -> its operation; the path is the route's."""
JSON_TYPE = "application/json"
DOCS_PAGE = Path(__file__).with_name("docs.html")


# -- building blocks -----------------------------------------------------------------------------


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(required: tuple[str, ...] = (), **properties: Schema) -> Schema:
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


def array(items: Schema, lo: int | None = None, hi: int | None = None) -> Schema:
    schema: Schema = {"type": "array", "items": items}
    if lo is not None:
        schema["minItems"] = lo
    if hi is not None:
        schema["maxItems"] = hi
    return schema


def integer(bounds: tuple[int, int] | None = None, description: str = "") -> Schema:
    schema: Schema = {"type": "integer"}
    if bounds:
        schema["minimum"], schema["maximum"] = bounds
    if description:
        schema["description"] = description
    return schema


def string(description: str = "", **extra: Any) -> Schema:
    return {"type": "string", **({"description": description} if description else {}), **extra}


STRING, BOOLEAN = string(), {"type": "boolean"}
NULL = {"nullable": True, "enum": [None]}
STRINGS = {"type": "object", "additionalProperties": STRING}
SEGMENT = "^[^/\\u0000-\\u001f\\u007f]+$"
"""One path segment: no slash (it would route elsewhere) and no control characters."""
NAME = string("1 to 255 characters, no control characters", minLength=1, maxLength=LIMITS.max_name_length,
              pattern=SEGMENT)
ID = string(minLength=1, pattern=SEGMENT)


def path_param(name: str, description: str, schema: Schema | None = None) -> Schema:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": schema or NAME}


HEX32 = ID | {"description": "32 lowercase hex characters"}
PATH_PARAMS = {  # every {name} of the routes' templates, whatever the contract
    "project_id": path_param("project_id", "The project (the token's): 24 characters in IronMQ"),
    "queue": path_param("queue", "The queue name (percent-encoded)"),
    "message_id": path_param("message_id", "A message id: a string of digits", ID),
    "subscriber_id": path_param("subscriber_id", "A push status id: the message id and two digits", ID),
    "alert_id": path_param("alert_id", "An alert id: 24 lowercase hex characters", ID),
    "account_id": path_param("account_id", "The account: the token's project"),
    "queue_id": path_param("queue_id", "A queue id", HEX32),
    "consumer_id": path_param("consumer_id", "A consumer id", HEX32),
    "subscription_id": path_param("subscription_id", "An event subscription id", HEX32),
}


def query(name: str, schema: Schema, description: str = "", **extra: Any) -> Schema:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            **({"description": description} if description else {}), **extra}


def body(schema: Schema, media_type: str = JSON_TYPE, *, required: bool = True) -> Schema:
    return {"required": required, "content": {media_type: {"schema": schema}}}


def answer(description: str, schema: Schema | None = None, media_type: str = JSON_TYPE) -> Schema:
    response: Schema = {"description": description}
    if schema is not None:
        response["content"] = {media_type: {"schema": schema}}
    return response


def operation(op_id: str, summary: str, tag: str, responses: Schema, *, request: Schema | None = None,
              params: list[Schema] | None = None, description: str = "") -> Schema:
    """One operation; its path parameters are added from the route's template (``PATH_PARAMS``)."""
    op: Schema = {"operationId": op_id, "summary": summary, "tags": [tag], "responses": responses}
    if description:
        op["description"] = description
    if params:
        op["parameters"] = params
    if request is not None:
        op["requestBody"] = request
    return op


def error_texts(contract: str, http_level: dict[int, str]) -> dict[int, str]:
    """Status -> what it means in ``contract``: the problems its module raises itself
    (``http_level``), then every engine error the error table renders with that status."""
    texts = {status: [text] for status, text in http_level.items()}
    for cells in TABLE.values():
        cell = cells[contract]
        text = cell.text or "the error's own message, which names the field"
        if text not in texts.setdefault(cell.status, []):
            texts[cell.status].append(text)
    return {status: "; ".join(found) for status, found in sorted(texts.items())}


# -- IronMQ v1 -----------------------------------------------------------------------------------

IRON = "IronMQ v1"
ZERO_IS_DEFAULT = "0 or absent: the default"


IRON_HTTP_ERRORS = {400: "Invalid request (the message names the field)", 401: "Invalid project/token combination",
                    406: "A required field is missing", 413: "Request body too large"}


def iron_errors(*statuses: int, contract: str = IRONMQ) -> Schema:
    texts = error_texts(contract, IRON_HTTP_ERRORS)
    return {str(s): answer(texts[s], ref("IronError")) for s in (401, 503, 504, *statuses)}


def iron(op_id: str, summary: str, ok: Schema, *errors: int, request: Schema | None = None,
         extra: list[Schema] | None = None, description: str = "") -> Schema:
    return operation(op_id, summary, IRON, {"200": ok, **iron_errors(*errors)}, request=request, params=extra,
                     description=description)


def iron_msg(text: str) -> Schema:
    return answer(text, ref("IronMsg"))


IRON_SCHEMAS: dict[str, Schema] = {
    "IronMsg": obj(("msg",), msg=STRING),
    "IronError": obj(("msg",), msg=STRING),
    "IronQueueRef": obj(("id", "project_id", "name"), id=STRING, project_id=STRING, name=STRING),
    "IronQueue": obj(("id", "name", "project_id", "size", "total_messages"), id=STRING, name=STRING,
                     project_id=STRING, size=integer(), total_messages=integer(),
                     push_type=string("Push queues only", enum=["multicast", "unicast"]),
                     retries=integer(_iron.RETRIES, "Push queues only"),
                     retries_delay=integer(_iron.RETRIES_DELAY, "Push queues only, seconds"),
                     subscribers=array(ref("IronSubscriber")), error_queue=string("Only when set"),
                     alerts=array(ref("IronAlert"))),
    "IronQueueUpdate": obj(
        push_type=string("multicast (default with subscribers), unicast, or pull to turn push off",
                         enum=list(_iron.PUSH_TYPES)),
        subscribers=array(ref("IronSubscriber")), retries=integer(_iron.RETRIES),
        retries_delay=integer((0, _iron.RETRIES_DELAY[1]), f"Seconds between attempts ({ZERO_IS_DEFAULT}: 60)"),
        error_queue=string("Queue for messages out of retries; \"\" turns it off"),
    ),
    "IronSubscriber": obj(("url",), url=string("http(s) URL, or ironmq:///queue"), headers=STRINGS),
    "IronSubscribers": obj(("subscribers",), subscribers=array(ref("IronSubscriber"), 1)),
    "IronPushStatus": obj(("id", "url", "status", "status_code", "retries_remaining", "retries_delay"),
                          id=STRING, url=STRING,
                          status=string(enum=["queued", "reserved", "retrying", "deleted", "error"]),
                          status_code=integer() | {"nullable": True}, retries_remaining=integer(),
                          retries_delay=integer()),
    "IronAlert": obj(("type", "trigger", "queue"), id=STRING, type=string(enum=["fixed", "progressive"]),
                     trigger=integer((1, 2**31)), queue=NAME, direction=string(enum=["asc", "desc"]),
                     snooze=integer((0, 2**31))),
    "IronAlerts": obj(("alerts",), alerts=array(ref("IronAlert"), 0, 5)),
    "IronNewMessage": obj(
        ("body",), body=STRING,
        timeout=integer((0, _iron.TIMEOUT[1]), f"Reservation timeout, seconds ({ZERO_IS_DEFAULT}: 60)"),
        delay=integer((0, _iron.DELAY[1]), "Seconds before the message can be reserved"),
        expires_in=integer((0, _iron.EXPIRES_IN[1]), f"Seconds the message lives ({ZERO_IS_DEFAULT}: 7 days)"),
    ),
    "IronMessage": obj(("id", "body", "timeout", "reserved_count"), id=STRING, body=STRING,
                       timeout=integer(), reserved_count=integer()),
    "IronMessages": obj(("messages",), messages=array(ref("IronMessage"))),
    "IronPosted": obj(("ids", "msg"), ids=array(STRING), msg=STRING),
}


def iron_operations() -> Operations:
    n = query("n", integer((0, _iron.MAX_BATCH)), f"How many messages ({ZERO_IS_DEFAULT}: 1)")
    empty = body(obj(), required=False)
    v1 = ironmq
    return {
        (v1.list_queues, "get"): iron(
            "ironListQueues", "List queues (name order)", answer("Queues", array(ref("IronQueueRef"))), 400,
            extra=[query("page", integer((0, 2**31)), "Page, from 0"),
                   query("per_page", integer((0, _iron.PER_PAGE[1])), f"{ZERO_IS_DEFAULT}: 30")]),
        (v1.get_queue, "get"): iron("ironGetQueue", "Get a queue", answer("The queue", ref("IronQueue")), 400, 404),
        (v1.update_queue, "post"): iron(
            "ironUpdateQueue", "Create or update a queue (push settings)", answer("The queue", ref("IronQueue")),
            400, 406, request=body(ref("IronQueueUpdate"), required=False),
            description="Creates the queue if missing. Subscribers make it a push queue."),
        (v1.delete_queue, "delete"): iron("ironDeleteQueue", "Delete a queue and its messages", iron_msg("Deleted."),
                                          400, 404),
        (v1.clear_queue, "post"): iron("ironClearQueue", "Remove every message of a queue", iron_msg("Cleared"), 400,
                                       request=empty),
        (v1.post_messages, "post"): iron(
            "ironPostMessages", "Put messages (creates the queue)", answer("Their ids", ref("IronPosted")),
            400, 406, 413, request=body(obj(("messages",), messages=array(ref("IronNewMessage"), 1, _iron.MAX_BATCH)))),
        (v1.get_messages, "get"): iron(
            "ironReserveMessages", "Reserve messages (FIFO), optionally long-polling",
            answer("Reserved messages (none: an empty list)", ref("IronMessages")), 400, extra=[
                n, query("timeout", integer((0, _iron.TIMEOUT[1])), f"Reservation seconds ({ZERO_IS_DEFAULT})"),
                query("wait", integer((0, _iron.WAIT[1])), "Long-poll seconds"),
                query("delete", string(enum=["true", "false"]), "Delete instead of reserving")]),
        (v1.delete_messages, "delete"): iron(
            "ironDeleteMessages", "Delete messages by id (best effort)", iron_msg("Deleted"), 400, 406,
            request=body(obj(("ids",), ids=array(string(minLength=1), 1, _iron.MAX_BATCH)))),
        (v1.post_webhook, "post"): iron(
            "ironPostWebhook", "Put the raw request body as one message", answer("Its id", ref("IronPosted")), 400, 413,
            request=body(string(), "*/*"), description="Usually authenticated with ?oauth=TOKEN."),
        (v1.peek_messages, "get"): iron("ironPeekMessages", "Next ready messages, not reserved",
                                        answer("Messages", ref("IronMessages")), 400, extra=[n]),
        (v1.get_message, "get"): iron("ironGetMessage", "Get a message by id", answer("The message", {"allOf": [
            ref("IronMessage"), obj(("status",), status=string(enum=["queued", "reserved", "deleted"]))]}), 400, 404),
        (v1.delete_message, "delete"): iron("ironDeleteMessage", "Delete a message", iron_msg("Deleted"), 400, 404,
                                            request=empty),
        (v1.touch_message, "post"): iron("ironTouchMessage", "Extend a reservation by its timeout",
                                         iron_msg("Touched"), 400, 403, 404, request=empty),
        (v1.release_message, "post"): iron(
            "ironReleaseMessage", "Put a reserved message back (end of the queue)", iron_msg("Released"), 400, 404,
            request=body(obj(delay=integer((0, _iron.DELAY[1]), "Seconds before it is visible")), required=False)),
        **iron_push_operations(),
    }


def iron_push_operations() -> Operations:
    queue = answer("The queue", ref("IronQueue"))
    v1 = ironmq
    return {
        (v1.add_subscribers, "post"): iron("ironAddSubscribers", "Add subscribers (by url; creates the queue)", queue,
                                           400, 406, request=body(ref("IronSubscribers"))),
        (v1.remove_subscribers, "delete"): iron("ironRemoveSubscribers", "Remove subscribers by url", queue,
                                                400, 404, 406, request=body(ref("IronSubscribers"))),
        (v1.message_subscribers, "get"): iron(
            "ironPushStatuses", "Push status per subscriber", answer("Statuses", obj(
                ("subscribers",), subscribers=array(ref("IronPushStatus")))), 400, 404),
        (v1.acknowledge_push, "delete"): iron(
            "ironAcknowledgePush", "Acknowledge a delivery answered 202", iron_msg("Deleted"), 400, 404,
            description="Authorised by the project's token, or by the delivery's own token in ?oauth= "
                        "(the Iron-Subscriber-Message-Url sent with the push)."),
        (v1.add_alerts, "post"): iron("ironAddAlerts", "Add alerts (creates the queue)", iron_msg("Updated"), 400, 406,
                                      request=body(ref("IronAlerts"))),
        (v1.replace_alerts, "put"): iron("ironReplaceAlerts", "Replace every alert ([] removes them)",
                                         iron_msg("Updated"), 400, 406, request=body(ref("IronAlerts"))),
        (v1.remove_alerts, "delete"): iron("ironRemoveAlerts", "Remove alerts by id", iron_msg("Deleted"), 400, 406,
                                           request=body(obj(("alerts",), alerts=array(obj(("id",), id=STRING), 1)))),
        (v1.remove_alert, "delete"): iron("ironRemoveAlert", "Remove one alert", iron_msg("Deleted"), 400, 404,
                                          request=body(obj(), required=False)),
    }


# -- IronMQ v3 -----------------------------------------------------------------------------------

IRON3 = "IronMQ v3"


def iron3(op_id: str, summary: str, ok: Schema, *errors: int, status: str = "200", request: Schema | None = None,
          extra: list[Schema] | None = None, description: str = "") -> Schema:
    return operation(op_id, summary, IRON3, {status: ok, **iron_errors(*errors, contract=IRONMQ3)},
                     request=request, params=extra, description=description)


IRON3_SCHEMAS: dict[str, Schema] = {
    "Iron3Subscriber": obj(("url",), name=string("Identifies the subscriber (one without a name: its url)"),
                           url=string("http(s) URL, or ironmq:///queue"), headers=STRINGS),
    "Iron3Push": obj(subscribers=array(ref("Iron3Subscriber")), retries=integer(_iron.RETRIES),
                     retries_delay=integer((0, _iron.RETRIES_DELAY[1]), f"Seconds between attempts ({ZERO_IS_DEFAULT}: 60)"),
                     error_queue=string("Queue for messages out of retries; \"\" turns it off")),
    "Iron3DeadLetter": obj(("queue_name",), queue_name=string("The dead letter queue; \"\" removes it"),
                           max_reservations=integer((0, ironmq3.MAX_RESERVATIONS[1]),
                                                    f"Reservations before a message moves ({ZERO_IS_DEFAULT}: 10)")),
    "Iron3QueueInput": obj(queue=obj(
        message_timeout=integer((0, _iron.TIMEOUT[1]), f"Reservation seconds ({ZERO_IS_DEFAULT}: 60)"),
        message_expiration=integer((0, _iron.EXPIRES_IN[1]), f"Seconds a message lives ({ZERO_IS_DEFAULT}: 7 days)"),
        type=string("Set when the queue is created, never changed", enum=list(ironmq3.TYPES)),
        push=ref("Iron3Push"), alerts=array(ref("IronAlert"), 0, 5), dead_letter=ref("Iron3DeadLetter"))),
    "Iron3Queue": obj(("queue",), queue=obj(
        ("id", "project_id", "name", "size", "total_messages", "message_timeout", "message_expiration", "type"),
        id=STRING, project_id=STRING, name=STRING, size=integer(), total_messages=integer(),
        message_timeout=integer(), message_expiration=integer(), type=string(enum=list(ironmq3.TYPES)),
        push=ref("Iron3Push"), alerts=array(ref("IronAlert")), dead_letter=ref("Iron3DeadLetter"))),
    "Iron3NewMessage": obj(("body",), body=STRING,
                           delay=integer((0, _iron.DELAY[1]), "Seconds before the message can be reserved")),
    "Iron3Message": obj(("id", "body", "reserved_count"), id=STRING, body=STRING, reserved_count=integer()),
    "Iron3Reserved": obj(("id", "body", "reserved_count", "reservation_id"), id=STRING, body=STRING,
                         reserved_count=integer(), reservation_id=STRING),
    "Iron3PushStatus": obj(("name", "url", "status", "status_code", "retries_remaining", "retries_delay"),
                           name=STRING, url=STRING,
                           status=string(enum=["queued", "reserved", "retrying", "deleted", "error"]),
                           status_code=integer() | {"nullable": True}, retries_remaining=integer(),
                           retries_delay=integer()),
}


def iron3_operations() -> Operations:
    queue = answer("The queue", ref("Iron3Queue"))
    updated, deleted = iron_msg("Updated"), iron_msg("Deleted")
    reservation = string("The id the reservation answered", minLength=1)
    subscribers = body(obj(("subscribers",), subscribers=array(ref("Iron3Subscriber"), 1)))
    posted = answer("Their ids", ref("IronPosted"))
    v3 = ironmq3
    return {
        (v3.list_queues, "get"): iron3(
            "iron3ListQueues", "List queues (name order)", answer("Queues", obj(
                ("queues",), queues=array(obj(("name",), name=STRING)))), 400, extra=[
                query("per_page", integer((0, _iron.PER_PAGE[1])), f"{ZERO_IS_DEFAULT}: 30"),
                query("previous", STRING, "The last name of the previous page"),
                query("prefix", STRING, "Only names starting with it")]),
        (v3.get_queue, "get"): iron3("iron3GetQueue", "Get a queue", queue, 400, 404),
        (v3.create_queue, "put"): iron3(
            "iron3CreateQueue", "Create a queue, or change an existing one", queue, 400, 406,
            request=body(ref("Iron3QueueInput"), required=False),
            description="Alerts given replace the queue's. A push map or a push type makes a push queue."),
        (v3.update_queue, "patch"): iron3(
            "iron3UpdateQueue", "Change a queue (its type never changes)", queue, 400, 404, 406,
            request=body(ref("Iron3QueueInput"), required=False), description="Alerts given are added to the queue's."),
        (v3.delete_queue, "delete"): iron3("iron3DeleteQueue", "Delete a queue and its messages", deleted, 400, 404,
                                           request=body(obj(), required=False)),
        (v3.post_messages, "post"): iron3(
            "iron3PostMessages", "Put messages (creates the queue)", posted, 400, 406, 413, status="201",
            request=body(obj(("messages",), messages=array(ref("Iron3NewMessage"), 1, _iron.MAX_BATCH)))),
        (v3.peek_messages, "get"): iron3("iron3PeekMessages", "Next ready messages, not reserved", answer(
            "Messages", obj(("messages",), messages=array(ref("Iron3Message")))), 400, 404, extra=[
                query("n", integer((0, _iron.MAX_BATCH)), f"How many messages ({ZERO_IS_DEFAULT}: 1)")]),
        (v3.delete_messages, "delete"): iron3(
            "iron3DeleteMessages", "Delete messages by id, or (without ids) clear the queue",
            answer("Deleted, or Cleared", ref("IronMsg")), 400, 403, 404, 406,
            request=body(obj(ids=array({"oneOf": [string(minLength=1), obj(
                ("id",), id=string(minLength=1), reservation_id=reservation)]}, 1, _iron.MAX_BATCH)), required=False)),
        (v3.post_webhook, "post"): iron3(
            "iron3PostWebhook", "Put the raw request body as one message", posted, 400, 413, status="201",
            request=body(string(), "*/*"), description="Usually authenticated with ?oauth=TOKEN."),
        (v3.reserve_messages, "post"): iron3(
            "iron3Reserve", "Reserve messages (FIFO), optionally long-polling", answer(
                "Reserved messages (none: an empty list)", obj(("messages",), messages=array(ref("Iron3Reserved")))),
            400, 404, request=body(obj(
                n=integer((0, _iron.MAX_BATCH), f"How many messages ({ZERO_IS_DEFAULT}: 1)"),
                timeout=integer((0, _iron.TIMEOUT[1]), f"Reservation seconds ({ZERO_IS_DEFAULT}: the queue's)"),
                wait=integer((0, _iron.WAIT[1]), "Long-poll seconds"), delete=BOOLEAN), required=False)),
        (v3.get_message, "get"): iron3("iron3GetMessage", "Get a message by id", answer("The message", obj(
            ("message",), message=ref("Iron3Message"))), 400, 404),
        (v3.delete_message, "delete"): iron3(
            "iron3DeleteMessage", "Delete a message (under its reservation), or acknowledge a push",
            deleted, 400, 403, 404, 406, request=body(obj(
                reservation_id=reservation, subscriber_name=string(
                    "With the push's Iron-Reservation-Id: acknowledges a delivery answered 202")), required=False)),
        (v3.touch_message, "post"): iron3(
            "iron3TouchMessage", "Renew a reservation (a new reservation id)", answer("The new reservation", obj(
                ("reservation_id", "msg"), reservation_id=STRING, msg=STRING)), 400, 403, 404, 406,
            request=body(obj(("reservation_id",), reservation_id=reservation, timeout=integer(
                (0, _iron.TIMEOUT[1]), f"Seconds ({ZERO_IS_DEFAULT}: the reservation's)")))),
        (v3.release_message, "post"): iron3(
            "iron3ReleaseMessage", "Put a reserved message back (at the front of the queue)", iron_msg("Released"),
            400, 403, 404, 406, request=body(obj(
                ("reservation_id",), reservation_id=reservation,
                delay=integer((0, _iron.DELAY[1]), "Seconds before it is visible")))),
        (v3.message_subscribers, "get"): iron3(
            "iron3PushStatuses", "Push status per subscriber", answer("Statuses", obj(
                ("subscribers",), subscribers=array(ref("Iron3PushStatus")))), 400, 404),
        (v3.add_subscribers, "post"): iron3("iron3AddSubscribers", "Add subscribers (or replace those of the same name)",
                                            updated, 400, 404, 406, request=subscribers),
        (v3.replace_subscribers, "put"): iron3("iron3ReplaceSubscribers", "Replace every subscriber", updated,
                                               400, 404, 406, request=subscribers),
        (v3.remove_subscribers, "delete"): iron3(
            "iron3RemoveSubscribers", "Remove subscribers by name", updated, 400, 404, 406,
            request=body(obj(("subscribers",), subscribers=array(obj(name=STRING, url=STRING), 1)))),
        (v3.add_alerts, "post"): iron3("iron3AddAlerts", "Add alerts", updated, 400, 404, 406,
                                       request=body(ref("IronAlerts"))),
        (v3.replace_alerts, "put"): iron3("iron3ReplaceAlerts", "Replace every alert ([] removes them)", updated,
                                          400, 404, 406, request=body(ref("IronAlerts"))),
        (v3.remove_alerts, "delete"): iron3(
            "iron3RemoveAlerts", "Remove alerts by id", deleted, 400, 404, 406,
            request=body(obj(("alerts",), alerts=array(obj(("id",), id=STRING), 1)))),
        (v3.remove_alert, "delete"): iron3("iron3RemoveAlert", "Remove one alert", deleted, 400, 404,
                                           request=body(obj(), required=False)),
    }


# -- Cloudflare Queues ---------------------------------------------------------------------------

CF = "Cloudflare Queues"


def envelope(result: Schema, *, paged: bool = False) -> Schema:
    schema = obj(("success", "errors", "messages", "result"), success={"type": "boolean", "enum": [True]},
                 errors=array(ref("CfError"), 0, 0), messages=array(STRING), result=result)
    if paged:
        schema["properties"]["result_info"] = ref("CfResultInfo")
    return schema


def cf(op_id: str, summary: str, result: Schema, *, request: Schema | None = None,
       extra: list[Schema] | None = None, paged: bool = False, description: str = "") -> Schema:
    texts = error_texts(CLOUDFLARE, {400: "Invalid request", 401: "Authentication error",
                                     403: "The account is not the token's"})
    responses = {"200": answer("Success (v4 envelope)", envelope(result, paged=paged)),
                 **{str(status): answer(text, ref("CfFailure")) for status, text in texts.items()}}
    return operation(op_id, summary, CF, responses, request=request, params=extra, description=description)


def seconds(bounds: tuple[int, int], description: str) -> Schema:
    return {"type": "number", "minimum": bounds[0], "maximum": bounds[1], "description": description}


CF_SCHEMAS: dict[str, Schema] = {
    "CfError": obj(("code", "message"), code=integer(), message=STRING),
    "CfFailure": obj(("success", "errors", "messages", "result"), success={"type": "boolean", "enum": [False]},
                     errors=array(ref("CfError"), 1), messages=array(STRING), result=NULL),
    "CfResultInfo": obj(("page", "per_page", "count", "total_count", "total_pages"), page=integer(),
                        per_page=integer(), count=integer(), total_count=integer(), total_pages=integer()),
    "CfQueueSettings": obj(
        delivery_delay=seconds(cloudflare.DELAY, "Seconds before a new message can be pulled"), delivery_paused=BOOLEAN,
        message_retention_period=seconds(cloudflare.RETENTION, "Seconds a message is kept")),
    "CfQueueInput": obj(("queue_name",), queue_name=string(minLength=1, maxLength=LIMITS.max_name_length),
                        settings=ref("CfQueueSettings"), jurisdiction=string(enum=list(cloudflare.JURISDICTIONS))),
    "CfQueuePatch": obj(queue_name=string("Must be the current name (no renames)", minLength=1),
                        settings=ref("CfQueueSettings"), jurisdiction=string(enum=list(cloudflare.JURISDICTIONS))),
    "CfQueue": obj(("queue_id", "queue_name", "created_on", "modified_on", "producers", "producers_total_count",
                    "consumers", "consumers_total_count", "settings"),
                   queue_id=STRING, queue_name=STRING, created_on=STRING, modified_on=STRING,
                   producers=array(obj()), producers_total_count=integer(), consumers=array(ref("CfConsumer")),
                   consumers_total_count=integer(), settings=ref("CfQueueSettings"), jurisdiction=STRING),
    "CfConsumerSettings": obj(
        batch_size=integer(cloudflare.PULL_BATCH), max_retries=integer(cloudflare.MAX_RETRIES), retry_delay=integer(cloudflare.DELAY),
        visibility_timeout_ms=integer(cloudflare.VISIBILITY_MS), max_wait_time_ms=integer(cloudflare.MAX_WAIT_MS),
        max_concurrency=integer(cloudflare.MAX_CONCURRENCY)),
    "CfConsumerInput": obj(("type",), type=string(enum=["worker", "http_pull"]),
                           script_name=string("Worker consumers: the script", minLength=1),
                           dead_letter_queue=string("Another queue's name"), settings=ref("CfConsumerSettings")),
    "CfConsumer": obj(("consumer_id", "created_on", "type", "settings", "queue_name", "queue_id", "dead_letter_queue"),
                      consumer_id=STRING, created_on=STRING, type=string(enum=["worker", "http_pull"]),
                      settings=ref("CfConsumerSettings"), queue_name=STRING, queue_id=STRING,
                      dead_letter_queue=STRING, script_name=STRING, script=STRING),
    "CfMetrics": obj(("backlog_count", "backlog_bytes", "oldest_message_timestamp_ms"), backlog_count=integer(),
                     backlog_bytes=integer(), oldest_message_timestamp_ms=integer()),
    "CfPushResult": obj(("metadata",), metadata=obj(("metrics",), metrics=ref("CfMetrics"))),
    "CfNewMessage": obj(("body",), body={"description": "A string (text), any JSON value (json) or base64 (bytes)"},
                        content_type=string(enum=list(cloudflare.CONTENT_TYPES)),
                        delay_seconds=seconds(cloudflare.DELAY, "Seconds before it can be pulled")),
    "CfMessage": obj(("id", "body", "attempts", "timestamp_ms", "metadata"), id=STRING, body=STRING,
                     attempts=integer(), timestamp_ms=integer(), metadata=STRINGS,
                     lease_id=string("Pull only: <message id>.<reservation id>"), ref=string("Peek only")),
    "CfLease": obj(("lease_id",), lease_id=STRING),
    "CfRetry": obj(("lease_id",), lease_id=STRING, delay_seconds=seconds(cloudflare.DELAY, "Seconds before it is retried")),
    "CfSubscriptionSource": obj(("type",), type=string(enum=list(cloudflare.SOURCE_TYPES)),
                                queue_name=string("ferrymq.queue sources: the queue watched")),
    "CfSubscriptionDestination": obj(("type", "queue_id"), type=string(enum=["queues.queue"]), queue_id=STRING),
    "CfSubscriptionInput": obj(("name", "source", "destination", "events"), name=string(minLength=1),
                               enabled=BOOLEAN, source=ref("CfSubscriptionSource"),
                               destination=ref("CfSubscriptionDestination"), events=array(STRING, 1)),
    "CfSubscription": obj(("id", "name", "enabled", "source", "destination", "events", "created_at", "modified_at"),
                          id=STRING, name=STRING, enabled=BOOLEAN, source=ref("CfSubscriptionSource"),
                          destination=ref("CfSubscriptionDestination"), events=array(STRING),
                          created_at=STRING, modified_at=STRING),
}


def cf_operations() -> Operations:
    page = query("page", integer((1, 2**31)))
    per_page = query("per_page", integer((1, 1000)))
    c = cloudflare
    return {
        (c.create_queue, "post"): cf("cfCreateQueue", "Create a queue", ref("CfQueue"), request=body(ref("CfQueueInput"))),
        (c.list_queues, "get"): cf("cfListQueues", "List queues", array(ref("CfQueue")), paged=True, extra=[
            page, per_page, query("name", array(STRING), "Only queues of these names", style="form", explode=True)]),
        (c.get_queue, "get"): cf("cfGetQueue", "Get a queue", ref("CfQueue")),
        (c.update_queue, "put"): cf("cfUpdateQueue", "Replace a queue's configuration", ref("CfQueue"),
                                    request=body(ref("CfQueueInput"))),
        (c.update_queue, "patch"): cf("cfEditQueue", "Change some of a queue's settings", ref("CfQueue"),
                                      request=body(ref("CfQueuePatch"))),
        (c.delete_queue, "delete"): cf("cfDeleteQueue", "Delete a queue", NULL),
        (c.queue_metrics, "get"): cf("cfQueueMetrics", "A queue's backlog", ref("CfMetrics")),
        (c.create_consumer, "post"): cf("cfCreateConsumer", "Add the queue's consumer (one per queue)",
                                        ref("CfConsumer"), request=body(ref("CfConsumerInput"))),
        (c.list_consumers, "get"): cf("cfListConsumers", "List the queue's consumers", array(ref("CfConsumer")),
                                      paged=True),
        (c.get_consumer, "get"): cf("cfGetConsumer", "Get the consumer", ref("CfConsumer")),
        (c.update_consumer, "put"): cf("cfUpdateConsumer", "Replace (or create) the consumer", ref("CfConsumer"),
                                       request=body(ref("CfConsumerInput"))),
        (c.delete_consumer, "delete"): cf("cfDeleteConsumer", "Remove the consumer", NULL),
        (c.push_message, "post"): cf("cfPushMessage", "Push a message", ref("CfPushResult"),
                                     request=body(ref("CfNewMessage"))),
        (c.push_batch, "post"): cf(
            "cfPushBatch", "Push messages (all or nothing)", ref("CfPushResult"),
            request=body(obj(("messages",), messages=array(ref("CfNewMessage"), 1, c.BATCH_MESSAGES),
                             delay_seconds=seconds(c.DELAY, "Default delay of the batch")))),
        (c.pull_messages, "post"): cf(
            "cfPullMessages", "Pull (lease) messages", obj(
                ("message_backlog_count", "messages", "metadata"), message_backlog_count=integer(),
                messages=array(ref("CfMessage")), metadata=obj(("metrics",), metrics=ref("CfMetrics"))),
            request=body(obj(batch_size=integer(c.PULL_BATCH), visibility_timeout_ms=integer(c.VISIBILITY_MS)),
                         required=False)),
        (c.ack_messages, "post"): cf(
            "cfAckMessages", "Acknowledge and retry leased messages",
            obj(("ackCount", "retryCount"), ackCount=integer(), retryCount=integer(), warnings=STRINGS),
            request=body(obj(acks=array(ref("CfLease")), retries=array(ref("CfRetry"))))),
        (c.peek_messages, "post"): cf(
            "cfPeekMessages", "Next ready messages, not leased", obj(("messages",), messages=array(ref("CfMessage"))),
            request=body(obj(batch_size=integer(c.PULL_BATCH)), required=False)),
        (c.purge_messages, "post"): cf(
            "cfPurgeMessages", "Delete messages by ref", obj(warnings=STRINGS),
            request=body(obj(("refs",), refs=array(obj(("ref",), ref=STRING), 1)))),
        (c.start_purge, "post"): cf("cfStartPurge", "Delete every message", ref("CfQueue"), request=body(obj(
            ("delete_messages_permanently",), delete_messages_permanently={"type": "boolean", "enum": [True]}))),
        (c.purge_status, "get"): cf("cfPurgeStatus", "The last purge",
                                    obj(started_at=STRING, completed=STRING, complete=BOOLEAN)),
        (c.create_subscription, "post"): cf("cfCreateSubscription", "Route a queue's events into another queue",
                                            ref("CfSubscription"), request=body(ref("CfSubscriptionInput"))),
        (c.list_subscriptions, "get"): cf(
            "cfListSubscriptions", "List event subscriptions", array(ref("CfSubscription")), paged=True, extra=[
                page, query("per_page", integer((1, 100))), query("order", string(enum=list(c.ORDERS))),
                query("direction", string(enum=["asc", "desc"])), query("queue_id", STRING)]),
        (c.get_subscription, "get"): cf("cfGetSubscription", "Get an event subscription", ref("CfSubscription")),
        (c.update_subscription, "patch"): cf(
            "cfEditSubscription", "Change an event subscription", ref("CfSubscription"), request=body(obj(
                name=string(minLength=1), enabled=BOOLEAN, events=array(STRING, 1),
                destination=ref("CfSubscriptionDestination")))),
        (c.delete_subscription, "delete"): cf("cfDeleteSubscription", "Delete an event subscription",
                                              ref("CfSubscription")),
    }


# -- ElasticQueue (JSON:API) ---------------------------------------------------------------------

EQ = "ElasticQueue (JSON:API)"
API = elastic.MEDIA_TYPE
RESERVATION_ID = {"name": "reservation-id", "in": "query", "required": True, "schema": string(minLength=1),
                  "description": "The id the reservation returned"}
MOMENT = "ms since the epoch if >= 10^11, else seconds; 0 or absent: now; the past: now"


def eq(op_id: str, summary: str, status: str, ok: Schema | None, *, request: Schema | None = None,
       extra: list[Schema] | None = None, description: str = "") -> Schema:
    texts = error_texts(ELASTIC, {400: "Invalid document", 401: "A valid token is required",
                                  403: "Client-generated ids are refused", 406: "Not acceptable",
                                  409: "Type conflict", 413: "Too large", 415: "Unsupported media type"})
    responses = {status: answer("Success", ok, API) if ok else answer("Done"),
                 **{str(code): answer(text, ref("EqErrors"), API) for code, text in texts.items()}}
    return operation(op_id, summary, EQ, responses, request=request, params=extra, description=description)


def resource(kind: str, attributes: Schema | None = None, *, with_id: bool = False) -> Schema:
    required = ("type", "id") if with_id else ("type",)
    props: Schema = {"type": string(enum=[kind])}
    if with_id:
        props["id"] = STRING
    if attributes is not None:
        props["attributes"] = attributes
        required += ("attributes",)
    return obj(required, **props)


EQ_SCHEMAS: dict[str, Schema] = {
    "EqError": obj(("status", "code", "title", "detail"), status=STRING, code=STRING, title=STRING, detail=STRING,
                   source=obj(pointer=STRING, parameter=STRING)),
    "EqErrors": obj(("errors",), errors=array(ref("EqError"), 1)),
    "EqNewMessage": resource("message", obj(("body",), body=STRING, **{"wait-until": integer((0, 10**13 - 1), MOMENT)})),
    "EqMessageRef": obj(("type", "id", "links"), type=string(enum=["message"]), id=STRING,
                        attributes={"type": "object"}, links=obj(("self",), self=STRING)),
}


def eq_operations() -> Operations:
    one_ref = obj(("data",), data=ref("EqMessageRef"))
    reservation = resource("reservation", obj(**{
        "count": integer(elastic.COUNT), "visibility-timeout": integer(elastic.VISIBILITY_TIMEOUT),
        "wait": integer(elastic.WAIT, "Long-poll seconds")}))
    patch = {"oneOf": [
        resource("message", obj(("reserved-until",), **{"reserved-until": integer((0, 10**13 - 1), "Extend: " + MOMENT)}),
                 with_id=True),
        resource("message", obj(("wait-until",), **{"wait-until": integer((0, 10**13 - 1), "Release: " + MOMENT)}),
                 with_id=True)]}
    reservation_id = [RESERVATION_ID]
    return {
        (elastic.get_queue, "get"): eq("eqGetQueue", "A queue's counts", "200", obj(("data",), data=resource(
            "queue", obj(size=integer(), reserved=integer(), delayed=integer(), **{"total-messages": integer()}),
            with_id=True))),
        (elastic.post_message, "post"): eq("eqPostMessage", "Enqueue a message (creates the queue)", "202", one_ref,
                                           request=body(obj(("data",), data=ref("EqNewMessage")), API)),
        (elastic.post_bulk, "post"): eq(
            "eqPostBulk", "Enqueue messages, all or nothing", "202", obj(("data",), data=array(ref("EqMessageRef"))),
            request=body(obj(("data",), data=array(ref("EqNewMessage"), 1, elastic.MAX_BULK)), API)),
        (elastic.get_message, "get"): eq("eqGetMessage", "A message and its state", "200", one_ref),
        (elastic.patch_message, "patch"): eq(
            "eqPatchMessage", "Extend (reserved-until) or release (wait-until) a reservation", "200", one_ref,
            extra=reservation_id, request=body(obj(("data",), data=patch), API)),
        (elastic.delete_message, "delete"): eq("eqDeleteMessage", "Delete a reserved message", "204", None,
                                               extra=reservation_id),
        (elastic.reserve, "post"): eq(
            "eqReserve", "Reserve messages, optionally long-polling", "200",
            obj(("data",), data=array(ref("EqMessageRef"))),
            request=body(obj(("data",), data=reservation), API, required=False),
            description="FerryMQ's consumer extension: the spec has no way to read messages."),
    }


# -- operations ----------------------------------------------------------------------------------

OPS = "Operations"


def ops_operations() -> Operations:
    plain = {"security": []}
    return {
        (metrics.ping, "get"): operation("ping", "Liveness (no Redis call)", OPS,
                                         {"200": answer("Alive", obj(("ok",), ok=BOOLEAN))}) | plain,
        (metrics.scrape, "get"): operation(
            "metrics", "Prometheus metrics", OPS,
            {"200": answer("Text exposition format", STRING, "text/plain"),
             "401": answer("FERRYMQ_METRICS_TOKEN is set and was not given", ref("IronError"))},
            description="Queues by (project, queue) and this process's HTTP requests by route and status.")
        | {"security": [{"metricsToken": []}, {}]},
        (openapi_json, "get"): operation("openapi", "This document", OPS,
                                         {"200": answer("OpenAPI 3.0", {"type": "object"})}) | plain,
        (docs, "get"): operation("docs", "This document, rendered", OPS,
                                 {"200": answer("An HTML page", STRING, "text/html")}) | plain,
    }


# -- the document --------------------------------------------------------------------------------

SECURITY_SCHEMES = {
    "ironOAuth": {"type": "apiKey", "in": "header", "name": "Authorization",
                  "description": "IronMQ: `OAuth TOKEN` (any case of the scheme)"},
    "ironQuery": {"type": "apiKey", "in": "query", "name": "oauth", "description": "IronMQ: `?oauth=TOKEN`"},
    "cfBearer": {"type": "http", "scheme": "bearer", "description": "Cloudflare: `Bearer TOKEN`"},
    "cfAuthKey": {"type": "apiKey", "in": "header", "name": "X-Auth-Key"},
    "cfServiceKey": {"type": "apiKey", "in": "header", "name": "X-Auth-User-Service-Key"},
    "eqToken": {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": "ElasticQueue: the raw token, or `Bearer TOKEN`"},
    "metricsToken": {"type": "http", "scheme": "bearer", "description": "FERRYMQ_METRICS_TOKEN, when set"},
}
SECURITY = {
    IRON: [{"ironOAuth": []}, {"ironQuery": []}],
    IRON3: [{"ironOAuth": []}, {"ironQuery": []}],
    CF: [{"cfBearer": []}, {"cfAuthKey": []}, {"cfServiceKey": []}],
    EQ: [{"eqToken": []}],
}


class UndocumentedRoute(RuntimeError):
    """A route of the app has no operation here: the app refuses to start."""


def operations() -> Operations:
    return {**iron_operations(), **iron3_operations(), **cf_operations(), **eq_operations(), **ops_operations()}


def paths(routes: Iterable[BaseRoute]) -> dict[str, Schema]:
    """The document's paths, by walking the app's routes: each (endpoint, method) gets its
    operation, with its contract's security unless it states its own and a parameter per
    ``{name}`` of the route's template. Routes with ``include_in_schema=False`` (the dashboard, a
    UI) are left out; IronMQ's trailing-slash twins are one path."""
    known, found, missing = operations(), {}, []
    for template, route in endpoint_routes(routes):
        if not route.include_in_schema:
            continue
        path = template.rstrip("/") or "/"
        for method in sorted((route.methods or set()) - {"HEAD"}):
            op = known.get((route.endpoint, method.lower()))
            if op is None:
                missing.append(f"{method} {template}")
                continue
            params = [PATH_PARAMS[name] for name in re.findall(r"{(\w+)}", path)] + op.get("parameters", [])
            security = op["security"] if "security" in op else SECURITY[op["tags"][0]]
            found.setdefault(path, {})[method.lower()] = {
                **op, "security": security, **({"parameters": params} if params else {}),
            }
    if missing:
        raise UndocumentedRoute(f"describe these routes in http/openapi.py: {', '.join(missing)}")
    return found


def document(routes: Iterable[BaseRoute]) -> dict[str, Any]:
    """The OpenAPI document of an app with these routes (``create_app`` builds it once, so an
    undocumented route stops the app from being built)."""
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "FerryMQ",
            "version": version("ferrymq"),
            "description": "One set of queues, four wire contracts: IronMQ v1 and v3, Cloudflare Queues (v4 "
                           "envelope) and ElasticQueue (JSON:API). A token opens one project; Cloudflare's account and "
                           "IronMQ's project are that project. Every IronMQ path also answers with a trailing slash.",
        },
        "tags": [{"name": IRON}, {"name": IRON3}, {"name": CF}, {"name": EQ}, {"name": OPS}],
        "paths": paths(routes),
        "components": {"schemas": {**IRON_SCHEMAS, **IRON3_SCHEMAS, **CF_SCHEMAS, **EQ_SCHEMAS},
                       "securitySchemes": SECURITY_SCHEMES},
    }


async def openapi_json(request: Request) -> JSON:
    return JSON(request.app.state.openapi)


async def docs(request: Request) -> HTMLResponse:
    return HTMLResponse(DOCS_PAGE.read_text())


def routes() -> list[BaseRoute]:
    return [Route("/openapi.json", openapi_json, methods=["GET"]), Route("/docs", docs, methods=["GET"])]

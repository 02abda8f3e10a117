"""What the sync and async engines share, with no I/O: the steps a verb asks its driver to run,
argument validation, and the encoding of records and script replies.

Verbs (``verbs/``) are generators that yield steps and receive their results; ``sync.py`` and
``aio.py`` only run the steps. So a rule written here holds for both APIs, and there is nothing
to keep in step between them.
"""

from __future__ import annotations

import math
import re
import struct

import orjson
from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, Union

from .errors import InvalidArgument, TooLarge
from .limits import Limits, QueueDefaults
from .models import Alert, Message, NewMessage, PushConfig, QueueSettings, Subscriber, reserved_message

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")


def remember_bounded(cache: dict[K, V], key: K, value: V, size: int) -> V:
    """``cache[key] = value``, the cache emptied first when a new key would make it hold more
    than ``size``: a memo whose keys clients choose (queue names, paths, tokens) costs a
    recomputation per forgotten entry, never unbounded memory."""
    if key not in cache and len(cache) >= size:
        cache.clear()
    cache[key] = value
    return value


# -- steps ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Eval:
    """Run the script ``verb`` (one round trip). Result: the script's reply."""

    verb: str
    keys: Sequence[str]
    args: Sequence[Any]
    messages: int = 1
    """How many messages the script may take or change at most: a hint of its cost in Redis,
    which the asyncio engine sends a big call by (``autopipeline.ALONE_MESSAGES``)."""


@dataclass(frozen=True, slots=True)
class Command:
    """Run one plain Redis command. Result: its reply."""

    args: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Batch:
    """Run independent commands in one pipeline (no transaction). Result: the list of replies."""

    commands: tuple[tuple[Any, ...], ...]


@dataclass(frozen=True, slots=True)
class Wait:
    """Long poll: wait up to ``seconds`` for a wake-up on ``channel``. Result: True if woken,
    False if the time ran out, None if the engine is closing (stop waiting)."""

    channel: str
    seconds: float


@dataclass(frozen=True, slots=True)
class Evals:
    """Run several scripts (of different partitions, so on different slots) in one pipelined
    round. Result: per script its reply, or its error as the engine error instance (not raised)."""

    evals: tuple[Eval, ...]


Step = Union[Eval, Command, Batch, Wait, Evals]
Verb = Generator[Step, Any, T]


# -- validation -------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTENT_TYPE = re.compile(r"[A-Za-z0-9._+/-]{0,64}\Z")


def check_name(field: str, value: object, limits: Limits) -> str:
    """Queue and project names: 1..max_name_length characters, no control characters."""
    if (
        not isinstance(value, str)
        or not value
        or len(value) > limits.max_name_length
        or _CONTROL.search(value)
    ):
        raise InvalidArgument(
            field, f"{field} must be 1 to {limits.max_name_length} characters, without control characters"
        )
    return value


def _number(field: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidArgument(field, f"{field} must be a number")
    return value


def check_int(field: str, value: object, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InvalidArgument(field, f"{field} must be an integer between {lo} and {hi}")
    return value


def seconds_to_ms(field: str, value: object, lo: float, hi: float) -> int:
    """Seconds (int or float) within [lo, hi] -> whole milliseconds."""
    seconds = _number(field, value)
    if not lo <= seconds <= hi:
        raise InvalidArgument(field, f"{field} must be between {_fmt(lo)} and {_fmt(hi)} seconds")
    return round(seconds * 1000)


def _fmt(seconds: float) -> str:
    return str(int(seconds)) if seconds == int(seconds) else str(seconds)


def check_body(field: str, body: object, limits: Limits | None) -> bytes:
    """A body as bytes, within ``limits.max_body_bytes`` (None: no size limit, for transfers)."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    elif isinstance(body, (bytearray, memoryview)):
        body = bytes(body)
    elif not isinstance(body, bytes):
        raise InvalidArgument(field, f"{field} must be a string or bytes")
    if limits is not None and len(body) > limits.max_body_bytes:
        raise TooLarge(field, f"{field} is {len(body)} bytes; the limit is {limits.max_body_bytes}")
    return body


def check_content_type(field: str, value: object) -> str:
    if not isinstance(value, str) or not _CONTENT_TYPE.match(value):
        raise InvalidArgument(field, f"{field} must be up to 64 characters of A-Z a-z 0-9 . _ + / -")
    return value


def message_args(
    message: NewMessage | bytes | str, field: str, limits: Limits, now_ms: int, ref: str = "",
    *, transfer: bool = False, hops: int = 0,
) -> tuple[str, bytes]:
    """The two ``put`` script arguments of one message: options, body (see lua/put-12.lua).
    ``now_ms`` is this process's clock, to bound an absolute ``available_at``. A ``transfer``
    (the server moving a message between queues) is not held to the client's body limit: its body
    is already stored, and an error-queue message wraps a body that was within it in JSON.
    ``hops``: the transfers the message went through, kept with it on a push queue."""
    body_limits = None if transfer else limits
    tail = f"|{hops}" if hops else ""
    if not isinstance(message, NewMessage):
        return ("" if not (ref or hops) else f"||||{ref}{tail}", check_body(field, message, body_limits))
    if (message.timeout is None and message.delay is None and message.expires_in is None
            and message.available_at is None and not message.content_type and not ref and not hops):
        return ("", check_body(f"{field}.body", message.body, body_limits))  # every default: most messages
    if message.available_at is not None and message.delay is not None:
        raise InvalidArgument(f"{field}.available_at", "give a delay or an available_at time, not both")
    options = (
        _optional_ms(f"{field}.timeout", message.timeout, 0.001, limits.max_timeout),
        moment(f"{field}.available_at", message.available_at, now_ms, limits.max_delay)
        if message.available_at is not None
        else _optional_ms(f"{field}.delay", message.delay, 0, limits.max_delay),
        _optional_ms(f"{field}.expires_in", message.expires_in, 0.001, limits.max_expires_in),
        check_content_type(f"{field}.content_type", message.content_type),
        ref,
    )
    body = check_body(f"{field}.body", message.body, body_limits)
    return ("" if options == ("", "", "", "", "") and not hops else "|".join(map(str, options)) + tail, body)


def batch_args(batch: Sequence[NewMessage | bytes | str], limits: Limits, now_ms: int) -> list[Any]:
    """The ``put`` script arguments of a batch, two per message (``message_args`` of each, its
    field ``messages[i]``). A bare body (most of a big batch) is checked and packed inline, with
    no call and no field name made unless it is too large: per message that was a third of
    the server's CPU for a POST of 100."""
    args: list[Any] = []
    max_bytes = limits.max_body_bytes
    for i, message in enumerate(batch):
        kind = type(message)
        if kind is str:
            body = message.encode("utf-8")
        elif kind is bytes:
            body = message
        else:
            args += message_args(message, f"messages[{i}]", limits, now_ms)
            continue
        if len(body) > max_bytes:
            check_body(f"messages[{i}]", body, limits)  # raises TooLarge, worded as for one message
        args += ("", body)
    return args


def texts(values: Sequence[bytes | str]) -> list[str]:
    """``text`` of each value (ids in a script's reply): one decode for the lot when they are all
    bytes, as Redis answers (ids never hold a newline); half the time of one ``text`` each."""
    if not values:
        return []
    try:
        return b"\n".join(values).decode("utf-8").split("\n")  # type: ignore[arg-type]
    except TypeError:  # some are text already
        return [text(v) for v in values]


def _optional_ms(field: str, value: float | None, lo: float, hi: float) -> int | str:
    return "" if value is None else seconds_to_ms(field, value, lo, hi)


MOMENT_SLACK_MS = 60_000
"""Tolerance for the clock skew between this process and Redis when bounding absolute times."""


def moment(field: str, ms: object, now_ms: int, ahead: float) -> str:
    """An absolute time (ms since the epoch) as scripts take it: "@<ms>". It may lie in the past
    (meaning now) but at most ``ahead`` seconds in the future, judged by this process's clock
    (the scripts decide with their own now; a minute of skew is tolerated)."""
    value = check_int(field, ms, 0, 10**13 - 1)
    if value > now_ms + ahead * 1000 + MOMENT_SLACK_MS:
        raise InvalidArgument(field, f"{field} may be at most {_fmt(ahead)} seconds ahead")
    return "@" + str(value)


# -- push configuration and alerts ---------------------------------------------------------------

MAX_SUBSCRIBERS = 99
"""Subscribers of a push queue (a subscriber message id ends in a two-digit index)."""
MAX_SUBSCRIBERS_JSON = 64 * 1024
MAX_ALERTS = 5
PUSH_TYPES = ("multicast", "unicast")
_HTTP_URL = re.compile(r"https?://[^\s/?#]+[^\s]*\Z", re.IGNORECASE)
FRAMING_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection", "te", "upgrade",
                             "keep-alive", "trailer"})
"""Hop-by-hop and framing headers (and ``Proxy-*``): the HTTP client sets them; a subscriber's
own would let a tenant smuggle a second request to the target (Content-Length + chunked)."""
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_HEADER_VALUE = re.compile(r"[^\r\n\x00]*\Z")
_QUEUE_URL = re.compile(r"ironmq:///(.+)\Z")


def forward_target(url: str) -> str | None:
    """The queue an ``ironmq:///queue`` subscriber forwards to (same project), else None."""
    found = _QUEUE_URL.match(url)
    return found.group(1) if found else None


def check_push(config: PushConfig, limits: Limits, queue: str) -> dict[str, Any]:
    """A push configuration -> the JSON the scripts read."""
    if config.type not in PUSH_TYPES:
        raise InvalidArgument("push_type", "push_type must be multicast, unicast or pull")
    if not config.subscribers:
        raise InvalidArgument("subscribers", "a push queue needs at least one subscriber")
    if len(config.subscribers) > MAX_SUBSCRIBERS:
        raise InvalidArgument("subscribers", f"at most {MAX_SUBSCRIBERS} subscribers")
    subs = [check_subscriber(s, i, limits, queue) for i, s in enumerate(config.subscribers)]
    refuse_duplicates(config.subscribers)
    if len(orjson.dumps(subs)) > MAX_SUBSCRIBERS_JSON:
        raise InvalidArgument("subscribers", "the subscribers take more than 64 KB")
    check_int("retries", config.retries, 0, 100)
    if config.error_queue:
        check_name("error_queue", config.error_queue, limits)
        if config.error_queue == queue:
            raise InvalidArgument("error_queue", "a queue cannot be its own error queue")
    return {
        "type": config.type, "subs": subs, "retries": config.retries,
        "delay": seconds_to_ms("retries_delay", config.retries_delay, 0, limits.max_delay),
        "errq": config.error_queue,
    }


def refuse_duplicates(subscribers: Sequence[Subscriber]) -> None:
    """Two subscribers that are one: the same name, or (unnamed) the same url, would get every
    message twice. Two forwards into one queue are refused whatever their names: they doubled a
    forwarding loop at each turn."""
    first: dict[tuple[str, str], int] = {}
    for i, sub in enumerate(subscribers):
        target = forward_target(sub.url)
        key = ("url", target) if target else ("name", sub.name) if sub.name else ("url", sub.url)
        j = first.setdefault(key, i)
        if j != i:
            if key[0] == "name":
                raise InvalidArgument("subscribers", "two subscribers have the same name")
            raise InvalidArgument(f"subscribers[{i}].url", f"subscribers[{i}].url repeats subscribers[{j}].url")


def transfer_targets(push: PushConfig | None, alerts: Sequence[Alert]) -> dict[str, str]:
    """The queues a queue moves messages into by itself, each with the setting that makes it
    do so: ``ironmq:///`` subscribers, the error queue, progressive alerts (a fixed alert fires
    once per crossing, and a dead letter moves on only once per failed delivery: neither loops)."""
    targets: dict[str, str] = {}
    for i, alert in enumerate(alerts):
        if alert.type == "progressive":
            targets.setdefault(alert.queue, f"alerts[{i}].queue")
    if push is not None:
        for i, sub in enumerate(push.subscribers):
            target = forward_target(sub.url)
            if target is not None:
                targets.setdefault(target, f"subscribers[{i}].url")
        if push.error_queue:
            targets.setdefault(push.error_queue, "error_queue")
    return targets


def check_subscriber(sub: Subscriber, i: int, limits: Limits, queue: str) -> dict[str, Any]:
    field = f"subscribers[{i}]"
    if not isinstance(sub.url, str) or not (_HTTP_URL.match(sub.url) or forward_target(sub.url)):
        raise InvalidArgument(f"{field}.url", f"{field}.url must be an http(s) URL or ironmq:///queue")
    target = forward_target(sub.url)
    if target is not None:
        check_name(f"{field}.url", target, limits)
        if target == queue:
            raise InvalidArgument(f"{field}.url", "a queue cannot be subscribed to itself")
    if not isinstance(sub.headers, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in sub.headers.items()):
        raise InvalidArgument(f"{field}.headers", f"{field}.headers must map names to strings")
    check_headers(f"{field}.headers", sub.headers)
    doc: dict[str, Any] = {"url": sub.url}
    if sub.headers:
        doc["headers"] = sub.headers
    if sub.name:
        doc["name"] = check_name(f"{field}.name", sub.name, limits)
    return doc


def check_headers(field: str, headers: dict[str, str]) -> None:
    for name, value in headers.items():
        if not _HEADER_NAME.match(name) or not _HEADER_VALUE.match(value):
            raise InvalidArgument(field, f"{field}: {name!r} is not a valid header name and value")
        if framing_header(name):
            raise InvalidArgument(field, f"{field} may not set {name} (hop-by-hop and framing headers are the server's)")


def framing_header(name: str) -> bool:
    lower = name.lower()
    return lower in FRAMING_HEADERS or lower.startswith("proxy-")


def sendable_headers(headers: dict[str, str]) -> dict[str, str]:
    """Subscriber headers without framing ones (a configuration stored before they were refused)."""
    return {k: v for k, v in headers.items() if not framing_header(k)}


def decode_push(raw: str | None) -> PushConfig | None:
    if not raw:
        return None
    doc = orjson.loads(raw)
    subs = tuple(Subscriber(s["url"], s.get("headers", {}), s.get("name", "")) for s in doc["subs"])
    return PushConfig(subs, doc["type"], doc["retries"], doc["delay"] / 1000, doc.get("errq", ""))


def check_alert(alert: Alert, i: int, limits: Limits, queue: str) -> dict[str, Any]:
    """One alert -> the JSON the scripts read (its id already set)."""
    field = f"alerts[{i}]"
    if alert.type not in ("fixed", "progressive"):
        raise InvalidArgument(f"{field}.type", "type must be fixed or progressive")
    _alert_number(field, "trigger", alert.trigger, 1, limits.max_alert_trigger)
    if alert.direction not in ("asc", "desc"):
        raise InvalidArgument(f"{field}.direction", "direction must be asc or desc")
    _alert_number(field, "snooze", alert.snooze, 0, limits.max_alert_snooze, " seconds")
    check_name(f"{field}.queue", alert.queue, limits)
    if alert.type == "progressive" and alert.queue == queue:
        raise InvalidArgument(f"{field}.queue", "a progressive alert cannot post to its own queue")
    return {"id": alert.id, "type": alert.type, "trigger": alert.trigger, "queue": alert.queue,
            "dir": alert.direction, "snooze": alert.snooze}


def _alert_number(field: str, name: str, value: object, least: int, most: int, unit: str = "") -> None:
    """An alert's trigger or snooze: an integer from ``least`` (1 or 0) to ``most``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise InvalidArgument(f"{field}.{name}", f"{name} must be a {'positive' if least else 'non-negative'} integer")
    if value > most:
        raise InvalidArgument(f"{field}.{name}", f"{field}.{name} may be at most {most}{unit}")


def decode_alerts(raw: str | None) -> tuple[Alert, ...]:
    if not raw:
        return ()
    return tuple(Alert(a["type"], a["trigger"], a["queue"], a["dir"], a["snooze"], a["id"]) for a in orjson.loads(raw))


# -- queue settings ---------------------------------------------------------------------------

REQUEUE_PLACES = ("end", "front")
"""Where lapsed and released messages go back (QueueDefaults.requeue)."""

# Python name -> meta field. Durations are stored in ms.
_DURATIONS = {"timeout": "timeout", "delay": "delay", "expires_in": "expires_in", "retry_delay": "retry_delay"}


def encode_settings(settings: dict[str, Any], limits: Limits, queue: str) -> dict[str, str | None]:
    """Validate settings given by name (``None`` = leave unchanged) -> meta fields."""
    bounds = {
        "timeout": (0.001, limits.max_timeout),
        "delay": (0, limits.max_delay),
        "expires_in": (0.001, limits.max_expires_in),
        "retry_delay": (0, limits.max_delay),
    }
    fields: dict[str, str | None] = {}  # None removes the field
    for name, value in settings.items():
        if value is None:
            continue
        if name in _DURATIONS:
            fields[_DURATIONS[name]] = str(seconds_to_ms(name, value, *bounds[name]))
        elif name == "max_deliveries":
            fields["max_deliveries"] = str(check_int(name, value, 0, limits.max_deliveries))
        elif name == "dead_letter_queue":
            if value != "":
                check_name(name, value, limits)
                if value == queue:
                    raise InvalidArgument(name, "a queue cannot be its own dead letter queue")
            fields["dlq"] = value
        elif name == "paused":
            if not isinstance(value, bool):
                raise InvalidArgument(name, "paused must be true or false")
            fields["paused"] = "1" if value else "0"
        elif name == "requeue":
            if value not in REQUEUE_PLACES:
                raise InvalidArgument(name, "requeue must be end or front")
            fields["requeue"] = value
        elif name == "push":  # a PushConfig, or one of type "pull": back to a pull queue
            fields["push"] = None if value.type == "pull" else orjson.dumps(check_push(value, limits, queue)).decode()
        elif name == "alerts":  # the whole list (empty: none)
            docs = [check_alert(a, i, limits, queue) for i, a in enumerate(value)]
            fields["alerts"] = orjson.dumps(docs).decode() if docs else None
        else:
            raise InvalidArgument(name, f"unknown queue setting {name!r}")
    return fields


def default_fields(defaults: QueueDefaults, limits: Limits) -> dict[str, str]:
    """Meta fields of a queue created with no settings."""
    return encode_settings(
        {
            "timeout": defaults.timeout,
            "delay": defaults.delay,
            "expires_in": defaults.expires_in,
            "max_deliveries": defaults.max_deliveries,
            "dead_letter_queue": defaults.dead_letter_queue,
            "retry_delay": defaults.retry_delay,
            "paused": defaults.paused,
            "requeue": defaults.requeue,
        },
        limits,
        queue="",
    )


def decode_settings(meta: dict[str, str]) -> QueueSettings:
    return QueueSettings(
        timeout=int(meta.get("timeout", 0)) / 1000,
        delay=int(meta.get("delay", 0)) / 1000,
        expires_in=int(meta.get("expires_in", 0)) / 1000,
        max_deliveries=int(meta.get("max_deliveries", 0)),
        dead_letter_queue=meta.get("dlq", ""),
        retry_delay=int(meta.get("retry_delay", 0)) / 1000,
        paused=meta.get("paused") == "1",
        push=decode_push(meta.get("push")),
        alerts=decode_alerts(meta.get("alerts")),
        requeue=meta.get("requeue", "end"),
        partitions=parse_layout(meta.get("parts"))[0],
    )


# -- partitions -------------------------------------------------------------------------------

ID_WIDTH = 19
"""Digits of a message id as the scripts make it (13 of ms, 6 of counter)."""


def parse_layout(raw: bytes | str | None) -> tuple[int, tuple[str, ...]]:
    """A queue's meta ``parts`` ("P|tag1|tag2...": puts go to the first P partitions, reads
    cover partition 0 and one per tag) -> (P, tags of partitions 1...); none: (1, ())."""
    if not raw:
        return 1, ()
    count, *tags = text(raw).split("|")
    return int(count), tuple(tags)


def encode_layout(partitions: int, tags: Sequence[str]) -> str:
    return "|".join([str(partitions), *tags])


def partition_of(message_id: str) -> tuple[int, str]:
    """A partitioned queue's message id -> (partition, the id within it). Partition 0's ids are
    the scripts' own (19 digits); partition i's carry i in two more digits."""
    if len(message_id) == ID_WIDTH + 2 and message_id.isdigit():
        return int(message_id[ID_WIDTH:]), message_id[:ID_WIDTH]
    return 0, message_id


def id_suffix(partition: int) -> str:
    return f"{partition:02d}" if partition else ""


# -- records and replies ----------------------------------------------------------------------


def text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def parse_record(record: bytes) -> tuple[int, int, int, str, bytes]:
    """Header ``enq|timeout|expire|ctype\\n`` (fixed widths, see lua/includes/queue.lua) + body ->
    (enqueued ms, timeout ms, expire ms, content type, body)."""
    head, _, body = record.partition(b"\n")
    enq, timeout, expire, ctype = head.split(b"|")[:4]
    return int(enq), int(timeout), int(expire), ctype.decode("ascii"), body


def reserved_messages(rows: Sequence[Any], now: int, token: str, timeout_ms: int) -> list[Message]:
    """The reserve script's rows (id, record, deliveries per message, flat) as reserved messages.
    Each reservation lasts the requested timeout, else the message's own (from its record); it
    started at the script's ``now``. One loop, the ids decoded at once, each record split in
    place (``parse_record``'s format): per message this was half the CPU of a GET of 100."""
    messages = []
    for message_id, record, deliveries in zip(texts(rows[0::3]), rows[1::3], rows[2::3]):
        head, _, body = record.partition(b"\n")
        enqueued, own_timeout, expires, ctype = head.split(b"|")[:4]
        timeout = timeout_ms or int(own_timeout)
        messages.append(reserved_message(message_id, body, timeout / 1000, int(deliveries), int(enqueued),
                                         int(expires), ctype.decode("ascii") if ctype else "", token, now + timeout))
    return messages


def parse_delivery(state: bytes | None) -> tuple[int, str, int]:
    """``count|token|timeout|expire`` -> (deliveries, reservation id, timeout ms); zeros if never delivered."""
    if not state:
        return 0, "", 0
    count, token, timeout = state.split(b"|")[:3]
    return int(count), token.decode("ascii"), int(timeout)


STATE_FIELDS = (
    "timeout", "delay", "expires_in", "max_deliveries", "retry_delay", "flags",
    "id_ms", "id_sfx", "ghosts", "xtail", "front", "due", "pushing", "indexed",
    "total", "c_reserved", "c_deleted",
)
"""The numbers a queue's meta field ``q`` packs, in their order (lua/includes/state.lua)."""
STATE = struct.Struct("<" + "d" * len(STATE_FIELDS))
FLAG_PAUSED, FLAG_TO_FRONT = 1, 8
"""Bits of the ``flags`` number that are settings of their own (the others say which text fields
hold something)."""
FLAG_LIVE_UNCOUNTED = 256
"""Set: ``c_reserved`` counts the deliveries whose reservation ended, not the live ones (``deliveries``)."""


def meta_fields(pairs: Iterable[tuple[bytes | str, bytes | str]]) -> dict[str, str]:
    """A queue's meta hash as text, field by field: ``q`` unpacked into the fields it holds
    (``paused`` and ``requeue`` from its flags), the others as they are. A queue no script has
    opened since the upgrade still has those as fields of their own: read as they are."""
    meta: dict[str, str] = {}
    for name, value in pairs:
        if name in (b"q", "q"):
            meta.update(state_fields(value if isinstance(value, bytes) else value.encode("latin-1")))
        else:
            meta[text(name)] = text(value)
    return meta


def state_fields(raw: bytes) -> dict[str, str]:
    values = raw[1:].decode("ascii").split("|")[:-1] if raw[:1] == b"t" else STATE.unpack(raw)  # text: no struct (fakeredis)
    numbers = dict(zip(STATE_FIELDS, (int(float(v)) for v in values)))
    flags = numbers.pop("flags")
    fields = {name: str(value) for name, value in numbers.items()}
    fields["paused"] = "1" if flags & FLAG_PAUSED else "0"
    fields["requeue"] = "front" if flags & FLAG_TO_FRONT else "end"
    fields["live_uncounted"] = "1" if flags & FLAG_LIVE_UNCOUNTED else "0"
    return fields


DONE_FIELD = "c_done"
"""Meta field counting the messages delete_reserved deleted from their reservations: each both a
delete and an ended delivery, added by readers to ``c_deleted`` and ``c_reserved`` (one HINCRBY
there instead of rewriting ``q``: lua/includes/state.lua)."""


def reported_counters(counters: dict[str, int], fields: Mapping[str, str], reserved: int) -> dict[str, int]:
    """A queue's counters as reported, from those its meta holds by name (``DONE_FIELD`` as
    ``done``): ``done`` folded into ``deleted`` and ``reserved``, and the live
    reservations into ``reserved`` (``deliveries``)."""
    done = counters.pop("done", 0)
    counters["deleted"] = counters.get("deleted", 0) + done
    counters["reserved"] = deliveries(counters.get("reserved", 0) + done, fields, reserved)
    return counters


def deliveries(counted: int, fields: Mapping[str, str], reserved: int) -> int:
    """A queue's deliveries counter: what its ``c_reserved`` ``counted``, plus its ``reserved``
    (live) reservations where its meta ``fields`` (``meta_fields``, ``state_fields``) say the
    state counts each delivery only once its reservation ends, which spares a reserve writing
    a counter (lua/includes/state.lua LIVE_UNCOUNTED). A queue no script has opened since that
    change counted every delivery as it was made."""
    return counted + reserved if fields.get("live_uncounted") == "1" else counted


def pairs(flat: Sequence[bytes]) -> Iterable[tuple[bytes, bytes]]:
    """[a, 1, b, 2] -> (a, 1), (b, 2)."""
    return zip(flat[0::2], flat[1::2])


def parse_outbox(entry: bytes) -> tuple[str, str, str, int, bytes]:
    """``kind\\ttarget\\tref[\\thops]\\n`` + payload -> (kind, target queue, ref, hops, payload)."""
    head, _, payload = entry.partition(b"\n")
    kind, target, ref, *hops = head.decode("utf-8").split("\t")
    return kind, target, ref, int(hops[0]) if hops else 0, payload

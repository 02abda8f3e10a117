"""The engine's verbs, written once for the sync and the async API.

Each verb is a generator: it validates its arguments (before anything is written), yields the
steps of ``core`` (normally one script call), and returns the decoded result. The facades
(``sync.Queue``, ``aio.AsyncQueue``) run those steps with their client.

    queue verbs (QueueVerbs)
      queues        create update ensure info clear delete
      messages      put push reserve pull peek get delete_message delete_messages touch release
                    settle release_reserved forward
      push queues   set_push update_push add_subscribers remove_subscribers replace_subscribers
                    claim_pushes report_push ack_push ack_push_by_token push_status
      alerts        add_alerts remove_alert remove_alerts replace_alerts
      maintenance   maintain retry_stuck
    engine verbs (EngineVerbs)
      registry      list_queues list_details count_queues find_queue projects stats sweep
                    due_push_queues lease
      events        put_subscription get_subscription list_subscriptions delete_subscription emit
      quotas        project_usage set_project_limits

The README's Verbs table lists the same verbs (``tests/engine/test_verbs_table.py``).
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, TypedDict

import orjson

from . import core
from .clock import Clock
from .core import Batch, Command, Eval, Evals, Verb, Wait, text
from .errors import (
    AlertNotFound,
    Changed,
    DeliveryPaused,
    EngineError,
    InvalidArgument,
    MessageNotFound,
    NotReserved,
    QueueNotFound,
    QuotaExceeded,
    TooLarge,
    Unavailable,
)
from .keys import (
    ProjectKeys, QueueKeys, escape, lease_key, partition_tags, project_keys, push_index_key, queue_keys,
)
from .limits import (
    DEDUPE_WINDOW,
    ID_FLOOR_TTL,
    LAYOUT_TTL,
    LIST_PAGE_MAX,
    LOOP_CHECK_QUEUES,
    MAX_TRANSFER_HOPS,
    MIN_IDS_PER_REQUEST,
    QUOTA_NAMES,
    QUOTAS,
    STUCK_KEPT,
    Limits,
    QueueDefaults,
    Quotas,
)
from .replies import (
    MISSING, OUTBOX_PENDING, PUSHED, ClaimReply, ClearReply, GetReply, MaintainReply, PeekReply, PutReply, QueueReply,
    ReportReply, ReserveReply, SettleReply, TouchReply, rows,
)
from .models import (
    RESERVED,
    Alert,
    Backlog,
    Message,
    NewMessage,
    Pulled,
    PushClaim,
    PushConfig,
    PushDelivery,
    Pushed,
    PushStatus,
    ProjectUsage,
    QueueDetails,
    QueueInfo,
    QueueSettings,
    QueueStats,
    QueueRef,
    Settled,
    Subscriber,
    Subscription,
)

log = logging.getLogger("ferrymq.engine")

_STATUS = {1: "ok", 2: "noop", 0: "not_found", -1: "not_reserved"}
STAT_COUNTERS = {"put": "total", "reserved": "c_reserved", "deleted": "c_deleted", "expired": "c_expired",
                 "dead": "c_dead", "cleared": "c_cleared", "push_delivered": "c_push_delivered",
                 "push_failed": "c_push_failed", "push_errors": "c_push_errors", "set_aside": "c_set_aside",
                 "hops_dropped": "c_hops_dropped"}
"""Counter name -> meta field: what ``stats`` reports."""
ID_FLOOR_MS = str(round(ID_FLOOR_TTL * 1000))
REWRITE_ATTEMPTS = 20
"""Tries of a read-modify-write of a setting before ``Changed`` reaches the caller."""
PUSH_RECHECK_MS = 1_000
"""A push queue with deliveries pending is looked at again within this time, whatever else."""
GRAPH_LOCK_TTL = 10.0
"""Seconds a change of a project's transfers (forwards, error queues, progressive alerts) holds
the project's lock at most: a loop check and its write run alone."""
GRAPH_LOCK_WAIT, GRAPH_LOCK_TRIES = 0.05, 200


class Settings(TypedDict, total=False):
    """Queue settings by name (see ``limits.QueueDefaults``); ``None`` leaves one unchanged."""

    timeout: float | None
    delay: float | None
    expires_in: float | None
    max_deliveries: int | None
    dead_letter_queue: str | None
    retry_delay: float | None
    paused: bool | None
    requeue: str | None
    partitions: int | None


@dataclass(frozen=True, slots=True)
class Reservation:
    """A reservation after touch: its new id and deadline."""

    reservation_id: str
    reserved_until: int
    timeout: float


@dataclass(frozen=True, slots=True)
class SweepReport:
    queues: int = 0
    busy: int = 0
    """Queues that hit a maintenance bound (more work left for the next pass)."""
    transfers: int = 0
    failed: tuple[tuple[str, str, Exception], ...] = ()
    """(project, queue, error) of each queue whose maintenance failed; the others were swept."""


class Context:
    """What every verb needs: key prefix, clock, limits, defaults."""

    def __init__(self, prefix: str, clock: Clock, limits: Limits, defaults: QueueDefaults,
                 quotas: Quotas = QUOTAS) -> None:
        self.prefix = prefix
        self.clock = clock
        self.limits = limits
        self.defaults = defaults
        self.quotas = quotas
        self.default_fields = core.default_fields(defaults, limits)
        self.default_fields_json = orjson.dumps(self.default_fields)
        self.dedupe_ms = str(round(DEDUPE_WINDOW * 1000))
        self.k = str(limits.maintenance_batch)
        self._creation_json: dict[tuple[tuple[str, Any], ...], bytes] = {}
        self.layouts: dict[tuple[str, str], Layout] = {}
        """(project, queue) -> its partitions as last read (trusted for LAYOUT_TTL)."""

    def layout(self, project: str, name: str) -> Layout | None:
        found = self.layouts.get((project, name))
        return found if found is not None and found.expires > time.monotonic() else None

    def remember(self, project: str, name: str, raw: bytes | str | None) -> Layout:
        """The layout read from a queue's meta ``parts``, kept for LAYOUT_TTL (a put keeps its
        round-robin turn across reads)."""
        partitions, tags = core.parse_layout(raw)
        old = self.layouts.get((project, name))
        layout = Layout(self, project, name, partitions, tags, time.monotonic() + LAYOUT_TTL)
        if old is not None:
            layout.turn, layout.put_turn = old.turn, old.put_turn
        elif len(self.layouts) >= 10_000:  # bounded: forget them all, each is one HGET away
            self.layouts.clear()
        self.layouts[(project, name)] = layout
        return layout

    def forget(self, project: str, name: str) -> None:
        self.layouts.pop((project, name), None)

    def creation_json(self, settings: Settings | None) -> bytes:
        """The meta fields a queue created by a put starts with: the defaults, then ``settings``
        (a few fixed sets in practice, e.g. a contract's own: encoded once each)."""
        if not settings:
            return self.default_fields_json
        key = tuple(sorted(settings.items()))
        found = self._creation_json.get(key)
        if found is None:
            found = orjson.dumps({**self.default_fields, **core.encode_settings(dict(settings), self.limits, "")})
            if len(self._creation_json) < 64:
                self._creation_json[key] = found
        return found

    def project_keys(self, project: str) -> ProjectKeys:
        return project_keys(self.prefix, project)


class Layout:
    """A queue's partitions as this process knows them: puts go to the first ``partitions``;
    reads cover all of them (``parts``: one QueueVerbs each, partition 0 first), including
    those a lowered count keeps until they drain."""

    __slots__ = ("ctx", "project", "name", "partitions", "tags", "expires", "turn", "put_turn", "_parts")

    def __init__(self, ctx: Context, project: str, name: str, partitions: int, tags: tuple[str, ...],
                 expires: float) -> None:
        self.ctx, self.project, self.name = ctx, project, name
        self.partitions, self.tags, self.expires = partitions, tags, expires
        self.turn = self.put_turn = 0
        self._parts: list[QueueVerbs] | None = None

    @property
    def span(self) -> int:
        return 1 + len(self.tags)

    @property
    def parts(self) -> list[QueueVerbs]:
        if self._parts is None:
            self._parts = [QueueVerbs(self.ctx, self.project, self.name, part=i, tag=tag)
                           for i, tag in enumerate(("", *self.tags))]
        return self._parts

    def next_turn(self, among: int) -> int:
        """Where reserves and push claims start, round-robin over ``among`` partitions, per process."""
        self.turn += 1
        return self.turn % among

    def for_put(self, key: str | None) -> int:
        """The partition a put goes to: by its partition key, else the next in turn (per process)."""
        if key is None:
            self.put_turn += 1
            return self.put_turn % self.partitions
        return zlib.crc32(key.encode("utf-8")) % self.partitions

    def route(self, message_id: str) -> tuple[QueueVerbs | None, str]:
        """The partition a message id names (None: none of this queue's) and the id within it."""
        i, inner = core.partition_of(message_id)
        return (self.parts[i] if i < self.span else None), inner


class QueueVerbs:
    """The verbs of one queue. Cheap to build: it only computes key names."""

    __slots__ = ("ctx", "project", "name", "keys", "_core_keys", "_put_keys", "part")

    def __init__(self, ctx: Context, project: str, name: str, *, part: int | None = None, tag: str = "") -> None:
        self.ctx = ctx
        self.project = core.check_name("project", project, ctx.limits)
        self.name = core.check_name("queue", name, ctx.limits)
        self.keys: QueueKeys = queue_keys(ctx.prefix, project, name, tag)
        self.part = part
        """None: the queue (its verbs look up its partitions); a number: that partition alone."""
        self._core_keys = self.keys.core
        k = self.keys
        self._put_keys = [*self._core_keys, k.dedupe, k.idfloor]

    # -- queues -------------------------------------------------------------------------------

    def create(self, *, attrs: dict[str, str | None] | None = None, **settings: Any) -> Verb[QueueInfo]:
        """Create the queue; ``AlreadyExists`` if it exists."""
        return (yield from self._configure("create", attrs, settings))

    def update(self, *, attrs: dict[str, str | None] | None = None, **settings: Any) -> Verb[QueueInfo]:
        """Change the given settings of an existing queue; ``QueueNotFound`` if missing."""
        return (yield from self._configure("update", attrs, settings))

    def ensure(self, *, attrs: dict[str, str | None] | None = None, **settings: Any) -> Verb[QueueInfo]:
        """Create the queue if needed, then change the given settings."""
        return (yield from self._configure("upsert", attrs, settings))

    def _configure(self, mode: str, attrs: dict[str, str | None] | None, settings: dict[str, Any],
                   expect: dict[str, str | None] | None = None) -> Verb[QueueInfo]:
        """Create and/or change the queue; with ``expect`` (meta field -> value as read), only if
        those fields are unchanged (else ``Changed``)."""
        partitions = settings.pop("partitions", None)
        if partitions is not None:
            core.check_int("partitions", partitions, 1, self.ctx.limits.max_partitions)
        fields = core.encode_settings(settings, self.ctx.limits, self.name)
        if "alerts" in settings:  # partition 0's sum of sizes starts again from fresh reports
            fields["alert_sizes"] = None
        attr_fields = _attr_fields(attrs or {})
        layout = yield from self._read_layout()  # fresh: a change of partitions builds on it
        if partitions is not None:
            fields.update(self._layout_fields(layout, partitions))
        if mode != "update":
            yield from self._admit()
        reply = QueueReply.of((yield Eval(
            "configure",
            [*self._core_keys, self.keys.idfloor],
            [
                self.ctx.clock.script_now(), self.ctx.k, self.keys.notify, mode, new_queue_id(),
                self.ctx.default_fields_json, orjson.dumps(fields), orjson.dumps(attr_fields),
                orjson.dumps(expect or {}),
            ],
        )))
        info = self._info(reply)
        yield from self._register(info.id)  # idempotent: also heals a registration a crash lost
        yield from self._after(reply.flags)
        if info.created and partitions is None and self.ctx.defaults.partitions > 1:
            whole = yield from self._configure("update", None, {"partitions": self.ctx.defaults.partitions})
            info = dataclasses.replace(whole, created=True)
        elif info.settings.partitions > 1 or layout.span > 1:
            info = yield from self._configure_partitions(info)
        if info.created:
            yield from self._emit("queue.created", {"queueId": info.id})
        return info

    # -- partitions ---------------------------------------------------------------------------
    # A queue of P partitions is P sets of the keys of one queue, each under its own hash tag
    # (keys.partition_tags), each with a copy of the queue's settings and the queue's id. Partition
    # 0 is the queue's own keys: it holds the settings of record, the registration, the outbox
    # of transfers into the queue. A verb over the whole queue runs its script on every partition
    # in one pipelined round (``_together``); one that names a message runs on the partition
    # its id names; put goes to one partition, reserve takes from them in turn.

    def _read_layout(self) -> Verb[Layout]:
        raw = yield Command(("HGET", self.keys.meta, "parts"))
        return self.ctx.remember(self.project, self.name, raw)

    def _layout_knowing(self, message_ids: Iterable[str]) -> Verb[Layout]:
        """The layout this process trusts, read again if an id names a partition it does not
        know: partitions added (by another process) since it was read have already handed out
        messages, which a delete or touch must not answer 'not found'."""
        layout = self.ctx.layout(self.project, self.name)
        if layout is None or any(core.partition_of(m)[0] >= layout.span for m in message_ids):
            layout = yield from self._read_layout()
        return layout

    def _routed(self, message_id: str) -> Verb[tuple[QueueVerbs, str] | None]:
        """On a partitioned queue, the partition a message id names and the id within it
        (``MessageNotFound`` if it names none of the queue's); None on a queue of one partition."""
        if self.part is not None:
            return None
        layout = yield from self._layout_knowing((message_id,))
        if layout.span == 1:
            return None
        part, inner = layout.route(message_id)
        if part is None:
            raise MessageNotFound()
        return part, inner

    def _layout_fields(self, layout: Layout, partitions: int) -> dict[str, str]:
        """The meta ``parts`` of a queue going to ``partitions``: existing partitions keep their
        tags (their messages stay where they are and drain: reads cover every partition), new
        ones get theirs."""
        tags = layout.tags
        if partitions > layout.span:
            tags += tuple(partition_tags(self.ctx.prefix, self.project, self.name, layout.span, partitions - layout.span))
        if (partitions, tags) == (layout.partitions, layout.tags):
            return {}
        return {"parts": core.encode_layout(partitions, tags)}

    def _configure_partitions(self, info: QueueInfo) -> Verb[QueueInfo]:
        """Partitions 1... get partition 0's settings (created with its id where missing), in one
        round; then, on a queue with alerts, every partition states its size to partition 0
        (which sums them: see lua/includes/queue.lua); then the queue's info over them all."""
        self.ctx.forget(self.project, self.name)
        layout = yield from self._read_layout()
        fields = _settings_fields(info.settings, self.ctx.limits, self.name)
        args = [self.ctx.clock.script_now(), self.ctx.k, self.keys.notify, "upsert", info.id,
                self.ctx.default_fields_json]
        yield from _together([part._configure_partition([*args, orjson.dumps({**fields, "alerts_part": str(part.part)}),
                                                         b"{}", b"{}"]) for part in layout.parts[1:]])
        if info.settings.alerts:
            yield from _together([part._alert_size("report") for part in layout.parts])
        whole = yield from self._info_partitioned(layout)
        return dataclasses.replace(whole, created=info.created)

    def _configure_partition(self, args: list[Any]) -> Verb[None]:
        reply = QueueReply.of((yield Eval("configure", [*self._core_keys, self.keys.idfloor], args)))
        yield from self._after(reply.flags)

    def _alert_size(self, mode: str, report: bytes = b"") -> Verb[None]:
        """lua/alert_size-10.lua: "report" this partition's size; "apply" (on partition 0) a
        partition's report, taken from its outbox. Then move what it left in the outbox."""
        flags = yield Eval("alert_size", self._core_keys, [self.ctx.clock.script_now(), mode, report])
        yield from self._after(flags)

    def _info_partitioned(self, layout: Layout) -> Verb[QueueInfo]:
        infos = yield from _together([part.info() for part in layout.parts])
        first = infos[0]
        counters: dict[str, int] = {}
        for info in infos:
            for name, value in info.counters.items():
                counters[name] = counters.get(name, 0) + value
        oldest = [i.oldest_at for i in infos if i.oldest_at]
        return dataclasses.replace(
            first, ready=sum(i.ready for i in infos), delayed=sum(i.delayed for i in infos),
            reserved=sum(i.reserved for i in infos), bytes=sum(i.bytes for i in infos),
            oldest_at=min(oldest) if oldest else first.oldest_at,
            total_messages=sum(i.total_messages for i in infos), pushing=sum(i.pushing for i in infos),
            counters=counters, stuck=sum(i.stuck for i in infos),
        )

    def info(self) -> Verb[QueueInfo]:
        """Settings and exact counts; ``QueueNotFound`` if missing."""
        if self.part is None:
            layout = self.ctx.layout(self.project, self.name) or (yield from self._read_layout())
            if layout.span > 1:
                return (yield from self._info_partitioned(layout))
        reply = QueueReply.of((yield Eval("info", self._core_keys, [self.ctx.clock.script_now(), self.ctx.k, self.keys.notify])))
        yield from self._after(reply.flags)
        return self._info(reply)

    def clear(self) -> Verb[int]:
        """Remove every message (ready, delayed, reserved); settings and counters stay. Returns how many."""
        layout = yield from self._read_layout()
        removed = sum((yield from _together([part._clear() for part in layout.parts])))
        yield from self._emit("queue.purged", {"removed": removed})
        return removed

    def _clear(self) -> Verb[int]:
        reply = ClearReply._make((yield Eval("clear", self._core_keys, [self.ctx.clock.script_now()])))
        yield from self._after(reply.flags)  # alert messages the clear fired
        return reply.removed

    def delete(self) -> Verb[None]:
        """Delete the queue and all its data. A queue created again under this name gets a new id."""
        layout = yield from self._read_layout()
        for part in layout.parts:
            yield from part._drain_outbox()  # dead letters already decided still reach their queue
        raw = (yield from _together([part._drop() for part in layout.parts]))[0]
        self.ctx.forget(self.project, self.name)
        pk = self.ctx.project_keys(self.project)
        yield Eval("unregister", [pk.queues, pk.names, pk.ids], [self.name, text(raw)])
        yield from self._emit("queue.deleted", {"queueId": text(raw)})

    def _drop(self) -> Verb[bytes]:
        k = self.keys
        return (yield Eval("drop", [*self._core_keys, k.dedupe, k.idfloor, k.stuck], [ID_FLOOR_MS]))

    # -- messages -----------------------------------------------------------------------------

    def put(self, messages: Iterable[NewMessage | bytes | str], *, create: bool = True,
            new_queue: Settings | None = None, partition_key: str | None = None) -> Verb[list[str]]:
        """Append messages in order (one script call for the batch); returns their ids.
        Creates the queue unless ``create=False`` (then ``QueueNotFound``); a queue it creates gets
        the settings ``new_queue`` (beside the defaults). On a partitioned queue the batch goes to
        one partition: the one ``partition_key`` hashes to, else the next in turn (FIFO holds
        per partition, so per key)."""
        if self.part is None:
            layout = self.ctx.layout(self.project, self.name) or (yield from self._read_layout())
            if layout.span > 1:
                i, reply = yield from self._put_partitioned(layout, partition_key, messages, "existing", create, False)
                return _with_suffix(core.texts(reply.ids), i)
        reply = yield from self._put(messages, "existing", create, backlog=False, new_queue=new_queue)
        return core.texts(reply.ids)

    def _put_partitioned(self, layout: Layout, key: str | None, messages: Iterable[NewMessage | bytes | str],
                         mode: str, create: bool, backlog: bool) -> Verb[tuple[int, PutReply]]:
        """(partition, put script reply). A partition missing means the queue was deleted since
        the layout was read: read it again and put as on any queue (creating it if asked)."""
        i = layout.for_put(key)
        try:
            return i, (yield from layout.parts[i]._put(messages, mode, False, backlog=backlog))
        except QueueNotFound:
            if not create:
                raise
        self.ctx.forget(self.project, self.name)
        layout = yield from self._read_layout()
        if layout.span > 1:
            i = layout.for_put(key)
            return i, (yield from layout.parts[i]._put(messages, mode, create, backlog=backlog))
        return 0, (yield from self._put(messages, mode, create, backlog=backlog))

    def push(
        self, messages: Iterable[NewMessage | bytes | str], *, create: bool = True, queue_id: str | None = None
    ) -> Verb[Pushed]:
        """``put``, also reporting the backlog after it (same script call). With ``queue_id``,
        only into the queue of that id (``QueueNotFound`` once it was deleted, even if it was
        created again since): callers that know the queue by its id need not look it up."""
        mode = "existing" if queue_id is None else "=" + queue_id
        if self.part is None:
            layout = self.ctx.layout(self.project, self.name) or (yield from self._read_layout())
            if layout.span > 1:  # the backlog is the partition's put into
                i, reply = yield from self._put_partitioned(layout, None, messages, mode, create and queue_id is None, True)
                return Pushed(_with_suffix(core.texts(reply.ids), i), reply.backlog)
        reply = yield from self._put(messages, mode, create and queue_id is None, backlog=True)
        return Pushed(core.texts(reply.ids), reply.backlog)

    def _put(self, messages: Iterable[NewMessage | bytes | str], mode: str, create: bool, *,
             backlog: bool, new_queue: Settings | None = None) -> Verb[PutReply]:
        """``mode``: the put script's for an existing queue (lua/put-12.lua); a missing queue is
        created (once its project admits it) if ``create``, with ``new_queue``'s settings."""
        batch = list(messages)
        limits = self.ctx.limits
        if not batch:
            raise InvalidArgument("messages", "at least one message is required")
        if len(batch) > limits.max_batch:
            raise TooLarge("messages", f"at most {limits.max_batch} messages per call")
        args = self._put_args(mode, len(batch), backlog)
        args += core.batch_args(batch, limits, self.ctx.clock.wall_ms())
        reply = yield from self._put_or_create(args, "create" if create else None, new_queue)
        yield from self._after_put(reply)
        return reply

    def _put_or_create(self, args: list[Any], create: str | None, new_queue: Settings | None = None,
                       after: tuple[Any, ...] = ()) -> Verb[PutReply]:
        """The put script on an existing queue (one round trip, the hot path); on a missing one,
        with ``create`` as its mode once the project admitted the new queue (its queue quota),
        and the new queue's id and settings (``new_queue`` beside the defaults). ``after``: the
        arguments that follow those (lua/put-12.lua)."""
        backlog = args[4] == "1"
        try:
            return PutReply.of((yield Eval("put", self._put_keys, [*args, *after])), backlog)
        except QueueNotFound:
            if create is None:
                raise
        if self.part is None and self.ctx.defaults.partitions > 1:  # a partitioned queue: created whole
            yield from self._configure("upsert", None, dict(new_queue or {}))
            return PutReply.of((yield Eval("put", self._put_keys, [*args, *after])), backlog)
        yield from self._admit()
        args[3] = create
        raw = yield Eval("put", self._put_keys, [*args, new_queue_id(), self.ctx.creation_json(new_queue), *after])
        return PutReply.of(raw, backlog)

    def _admit(self) -> Verb[None]:
        """List this queue's name in its project before creating it: ``QuotaExceeded`` at the
        project's queue quota, or while it is over its message or byte quota."""
        pk = self.ctx.project_keys(self.project)
        yield Eval("admit", [pk.queues, pk.limits, pk.usage], [self.name, self.ctx.quotas.queues])

    def _put_args(self, mode: str, n: int, backlog: bool = False) -> list[Any]:
        """The put script's arguments before its messages (lua/put-12.lua)."""
        ctx = self.ctx
        return [ctx.clock.script_now(), ctx.k, self.keys.notify, mode, "1" if backlog else "0", n]

    def _after_put(self, reply: PutReply) -> Verb[None]:
        if reply.created:
            yield from self._register(text(reply.queue_id))
            yield from self._emit("queue.created", {"queueId": text(reply.queue_id)})
        if reply.flags & PUSHED:
            yield from self._list_for_pushers(reply.now)
        yield from self._after(reply.flags)

    def _list_for_pushers(self, when: int, *, exact: bool = False) -> Verb[None]:
        """Where pushers look for work: lower this queue's next look to ``when`` (or set it)."""
        member = f"{self.project}\t{self.name}"
        index = push_index_key(self.ctx.prefix)
        yield Command(("ZADD", index, when, member) if exact else ("ZADD", index, "LT", when, member))

    def reserve(
        self, n: int = 1, *, timeout: float | None = None, delete: bool = False, wait: float = 0.0,
        must_exist: bool = False,
    ) -> Verb[list[Message]]:
        """Take up to ``n`` messages in FIFO order, each reserved for ``timeout`` seconds (default:
        the message's own); with ``delete=True`` they are deleted instead. With ``wait``, long-poll
        up to that many seconds for a first message. A missing queue is an empty one (with
        ``must_exist``: ``QueueNotFound``, at once); ``DeliveryPaused`` while the queue is paused
        (after waiting, if asked to)."""
        messages, _ = yield from self._take(n, timeout, delete, wait, backlog=False, must_exist=must_exist)
        return messages

    def pull(self, n: int = 1, *, timeout: float | None = None, wait: float = 0.0) -> Verb[Pulled]:
        """``reserve``, also reporting the backlog left after the batch (same script call)."""
        messages, reply = yield from self._take(n, timeout, False, wait, backlog=True)
        return Pulled(messages, reply.backlog)

    def _take(
        self, n: int, timeout: float | None, delete: bool, wait: float, *, backlog: bool, must_exist: bool = False
    ) -> Verb[tuple[list[Message], ReserveReply]]:
        if self.part is None:
            layout = self.ctx.layout(self.project, self.name) or (yield from self._read_layout())
            if layout.span > 1:
                return (yield from self._take_partitioned(layout, n, timeout, delete, wait, backlog, must_exist))
        limits = self.ctx.limits
        core.check_int("n", n, 1, limits.max_batch)
        timeout_ms = 0 if timeout is None else core.seconds_to_ms("timeout", timeout, 0.001, limits.max_timeout)
        core.seconds_to_ms("wait", wait, 0, limits.max_wait)
        started = time.monotonic()
        while True:
            token = secrets.token_hex(8)
            args = [
                self.ctx.clock.script_now(), self.ctx.k, self.keys.notify, n, timeout_ms,
                token, "1" if delete else "0", "1" if backlog else "0",
            ]
            try:
                reply = ReserveReply.of((yield Eval("reserve", self._core_keys, args)), backlog)
            except DeliveryPaused:
                left = wait - (time.monotonic() - started)
                if left <= 0 or (yield Wait(self.keys.notify, left)) is None:
                    raise
                continue
            if must_exist and reply.flags & MISSING:
                raise QueueNotFound()
            yield from self._after(reply.flags)
            messages = core.reserved_messages(reply.messages, reply.now, token, timeout_ms)
            left = wait - (time.monotonic() - started)
            if messages or left <= 0:
                return messages, reply
            # Sleep until woken, or until the script's hint (a delayed message due, a reservation
            # lapsing). A wait that simply ran out needs no final look: a put would have woken us.
            hinted = reply.next_at >= 0 and (reply.next_at - reply.now) / 1000 < left
            if hinted:
                left = max((reply.next_at - reply.now) / 1000, 0.001)
            woken = yield Wait(self.keys.notify, left)
            if woken is None or (not woken and not hinted):  # closing, or the wait ran out
                return [], reply

    def _take_partitioned(self, layout: Layout, n: int, timeout: float | None, delete: bool, wait: float,
                          backlog: bool, must_exist: bool) -> Verb[tuple[list[Message], ReserveReply]]:
        """``_take`` over partitions in turn (a rotating first one, per process) until it has n;
        a long poll waits on the queue's one channel, which every partition publishes on. The
        reply as the script's: no flags (each partition's were acted on), now, next hint, and
        the backlog summed over the partitions it read."""
        limits = self.ctx.limits
        core.check_int("n", n, 1, limits.max_batch)
        core.seconds_to_ms("wait", wait, 0, limits.max_wait)
        started = time.monotonic()
        while True:
            messages: list[Message] = []
            now, hint, figures = 0, -1, Backlog(0, 0, 0, 0, 0)
            first = layout.next_turn(layout.span)
            try:
                for j in range(layout.span):
                    i = (first + j) % layout.span
                    got, reply = yield from layout.parts[i]._take(
                        n - len(messages), timeout, delete, 0, backlog=backlog, must_exist=must_exist and i == 0)
                    messages += _messages_with_suffix(got, i)
                    now = reply.now
                    if reply.next_at >= 0:
                        hint = reply.next_at if hint < 0 else min(hint, reply.next_at)
                    if reply.backlog:
                        figures = _add_backlog(figures, reply.backlog)
                    if len(messages) >= n:
                        break
            except DeliveryPaused:
                left = wait - (time.monotonic() - started)
                if left <= 0 or (yield Wait(self.keys.notify, left)) is None:
                    raise
                continue
            reply = ReserveReply(0, now, hint, figures if backlog else None, [])
            left = wait - (time.monotonic() - started)
            if messages or left <= 0:
                return messages, reply
            hinted = hint >= 0 and (hint - now) / 1000 < left
            if hinted:
                left = max((hint - now) / 1000, 0.001)
            woken = yield Wait(self.keys.notify, left)
            if woken is None or (not woken and not hinted):
                return [], reply

    def peek(self, n: int = 1, *, must_exist: bool = False) -> Verb[list[Message]]:
        """The next ``n`` ready messages in FIFO order, not reserved. A missing queue is empty
        (with ``must_exist``: ``QueueNotFound``). On a partitioned queue: the next of every
        partition, oldest put first."""
        core.check_int("n", n, 1, self.ctx.limits.max_batch)
        if self.part is None:
            layout = self.ctx.layout(self.project, self.name) or (yield from self._read_layout())
            if layout.span > 1:
                found = yield from _together([part.peek(n, must_exist=must_exist and i == 0)
                                              for i, part in enumerate(layout.parts)])
                merged = [m for i, got in enumerate(found) for m in _messages_with_suffix(got, i)]
                return sorted(merged, key=lambda m: (m.enqueued_at, m.id))[:n]
        reply = PeekReply.of((yield Eval("peek", self._core_keys, [self.ctx.clock.script_now(), self.ctx.k, self.keys.notify, n])))
        if must_exist and reply.flags & MISSING:
            raise QueueNotFound()
        yield from self._after(reply.flags)
        return [_message(message_id, record, core.parse_delivery(state)[0])
                for message_id, record, state in rows(reply)]

    def get(self, message_id: str) -> Verb[Message]:
        """One message with its status (ready, delayed or reserved)."""
        _check_id(message_id)
        routed = yield from self._routed(message_id)
        if routed is not None:
            part, inner = routed
            return dataclasses.replace((yield from part.get(inner)), id=message_id)
        k = self.keys
        reply = GetReply._make((yield Eval("get", [k.meta, k.delayed, k.reserved, k.msg, k.dlv, k.pstatus],
                                         [self.ctx.clock.script_now(), message_id])))
        status = text(reply.status)
        deliveries, rid, timeout_ms = core.parse_delivery(reply.state)
        if status == RESERVED:
            return _message(message_id, reply.record, deliveries, status, rid, timeout_ms, reserved_until=reply.time)
        return _message(message_id, reply.record, deliveries, status, available_at=reply.time or None)

    def delete_message(self, message_id: str, reservation_id: str | None = None) -> Verb[None]:
        """Delete one message in any state; with ``reservation_id``, only under that reservation."""
        settled = yield from self.settle(deletes=[(message_id, reservation_id)])
        _raise_for(settled.deleted[0])

    def delete_messages(self, message_ids: Sequence[str]) -> Verb[list[bool]]:
        """Delete many (best effort): True per id that was deleted."""
        settled = yield from self.settle(deletes=[(i, None) for i in message_ids])
        return [status == "ok" for status in settled.deleted]

    def touch(
        self, message_id: str, reservation_id: str | None = None, *, timeout: float | None = None,
        reserved_until: int | None = None,
    ) -> Verb[Reservation]:
        """Extend a current reservation to now + ``timeout`` (default: the reservation's own), or
        until ``reserved_until`` (ms since the epoch). The reservation gets a new id.
        ``NotReserved`` if it lapsed or is someone else's."""
        _check_id(message_id)
        if reserved_until is not None:
            limit = self.ctx.limits.max_timeout
            timeout_ms: int | str = core.moment("reserved_until", reserved_until, self.ctx.clock.wall_ms(), limit)
        elif timeout is not None:
            timeout_ms = core.seconds_to_ms("timeout", timeout, 0.001, self.ctx.limits.max_timeout)
        else:
            timeout_ms = ""
        routed = yield from self._routed(message_id)
        if routed is not None:
            part, inner = routed
            return (yield from part.touch(inner, reservation_id, timeout=timeout, reserved_until=reserved_until))
        k = self.keys
        reply = TouchReply._make((yield Eval(
            "touch",
            [k.meta, k.reserved, k.msg, k.dlv],
            [self.ctx.clock.script_now(), message_id, reservation_id or "", timeout_ms, secrets.token_hex(8)],
        )))
        return Reservation(text(reply.reservation_id), reply.deadline, reply.timeout / 1000)

    def release(
        self, message_id: str, reservation_id: str | None = None, *, delay: float | None = None,
        available_at: int | None = None,
    ) -> Verb[bool]:
        """End a reservation: back in the queue (at its end, or at its front if the queue's
        ``requeue`` setting says so) now, after ``delay`` seconds (default: the queue's retry
        delay) or at ``available_at`` (ms since the epoch). A message out of
        deliveries is dead-lettered instead. Releasing a message that is not reserved changes
        nothing and returns False (unless a ``reservation_id`` was given: then ``NotReserved``)."""
        if available_at is None:
            when: float | str | None = delay
        else:
            when = core.moment("available_at", available_at, self.ctx.clock.wall_ms(), self.ctx.limits.max_delay)
        settled = yield from self.settle(releases=[(message_id, reservation_id, when)])
        status = settled.released[0]
        _raise_for(status)
        return status == "ok"

    def settle(
        self,
        deletes: Sequence[tuple[str, str | None]] = (),
        releases: Sequence[tuple[str, str | None, float | str | None]] = (),
    ) -> Verb[Settled]:
        """Deletes and releases, a status per item (none of them raises). A release's delay is
        seconds, None (the queue's retry delay) or ``core.moment(ms)``. One script call per
        ``max_batch`` items; more than one batch must be within the project's ids_per_request
        quota (read only then: one engine batch is always allowed), checked before any change."""
        limits = self.ctx.limits
        if len(deletes) + len(releases) > limits.max_batch:
            yield from self._within_ids_quota(len(deletes) + len(releases))
        checked_deletes = [(_check_id(message_id), _check_rid(rid)) for message_id, rid in deletes]
        checked_releases = []
        for i, (message_id, rid, delay) in enumerate(releases):
            if isinstance(delay, str) and delay.startswith("@"):
                delay_ms: int | str = delay  # an absolute moment, already checked
            else:
                delay_ms = "" if delay is None else core.seconds_to_ms(f"releases[{i}].delay", delay, 0, limits.max_delay)
            checked_releases.append((_check_id(message_id), _check_rid(rid), delay_ms))
        if self.part is None:
            layout = yield from self._layout_knowing(item[0] for item in (*checked_deletes, *checked_releases))
            if layout.span > 1:
                return (yield from self._settle_partitioned(layout, checked_deletes, checked_releases))
        statuses: list[str] = []
        for part in _batches(checked_deletes + checked_releases, limits.max_batch):
            d = [item for item in part if len(item) == 2]
            args: list[Any] = [self.ctx.clock.script_now(), self.ctx.k, self.keys.notify, len(d), len(part) - len(d)]
            args += [value for item in part for value in item]
            reply = SettleReply.of((yield Eval("settle", self._core_keys, args)))
            yield from self._after(reply.flags)
            statuses += [_STATUS[s] for s in reply.statuses]
        return Settled(deleted=statuses[: len(deletes)], released=statuses[len(deletes) :])

    def _settle_partitioned(self, layout: Layout, deletes: list[tuple[str, str]],
                            releases: list[tuple[str, str, int | str]]) -> Verb[Settled]:
        """``settle`` with each item on the partition its id names: one settle per partition
        concerned, in one round. An id that names no partition of the queue is not found."""
        items = [("d", *item) for item in deletes] + [("r", *item) for item in releases]
        groups: dict[int, list[int]] = {}
        statuses = ["not_found"] * len(items)
        for n, item in enumerate(items):
            i, _ = core.partition_of(item[1])
            if i < layout.span:
                groups.setdefault(i, []).append(n)
        order = list(groups)
        verbs = []
        for i in order:
            mine = [items[n] for n in groups[i]]
            inner = [(core.partition_of(item[1])[1], *item[2:]) for item in mine]
            verbs.append(layout.parts[i].settle(
                deletes=[(m, rid or None) for kind, (m, rid, *_) in zip(mine, inner) if kind[0] == "d"],
                releases=[(m, rid or None, _seconds_again(rest[0]))
                          for kind, (m, rid, *rest) in zip(mine, inner) if kind[0] == "r"]))
        for i, settled in zip(order, (yield from _together(verbs))):
            done = iter(settled.deleted + settled.released)
            positions = [n for n in groups[i] if items[n][0] == "d"] + [n for n in groups[i] if items[n][0] == "r"]
            for n in positions:
                statuses[n] = next(done)
        return Settled(deleted=statuses[: len(deletes)], released=statuses[len(deletes):])

    def _within_ids_quota(self, n: int) -> Verb[None]:
        """More than one engine batch in one call: within the project's ids_per_request quota."""
        own = yield Command(("HGET", self.ctx.project_keys(self.project).limits, "ids_per_request"))
        limit = int(own) if own is not None else self.ctx.quotas.ids_per_request
        if n > limit:
            raise QuotaExceeded("ids_per_request", limit)

    def release_reserved(self) -> Verb[int]:
        """Every reserved message back in the queue now (an operator's "release all"), whoever
        holds it; returns how many. A batch per ``settle`` script call, so a message out of
        deliveries is dead-lettered as on any release. The rounds are bounded by the count at the
        start: consumers reserving meanwhile cannot keep it going."""
        if self.part is None:
            layout = yield from self._read_layout()
            if layout.span > 1:
                return sum((yield from _together([part.release_reserved() for part in layout.parts])))
        batch = self.ctx.limits.max_batch
        reserved = yield Command(("ZCARD", self.keys.reserved))
        released = 0
        for _ in range(-(-reserved // batch)):
            ids = yield Command(("ZRANGE", self.keys.reserved, 0, batch - 1))
            if not ids:
                break
            settled = yield from self.settle(releases=[(text(i), None, 0) for i in ids])
            released += settled.released.count("ok")
        return released

    # -- push queues ---------------------------------------------------------------------------

    def set_push(self, config: PushConfig) -> Verb[QueueInfo]:
        """Make this a push queue (creating it if needed), change its push settings, or turn it
        back into a pull queue with ``PushConfig((), type="pull")``. Messages already queued stay
        pullable; those posted while it is a push queue are pushed. A configuration whose
        forwards or error queue would loop back here is refused (``InvalidArgument``)."""
        return (yield from self.update_push(lambda current: config))

    def update_push(self, change: Callable[[PushConfig | None], PushConfig | None], *,
                    create: bool = True) -> Verb[QueueInfo]:
        """Change the push settings from their current value (None: a pull queue) with no lost
        update: if another caller changes them meanwhile, ``change`` runs again on the new value.
        ``change`` returning None changes nothing (the queue is created if ``create``, else
        ``QueueNotFound`` if it is missing)."""

        def write(raw: str | None) -> Verb[QueueInfo]:
            config = change(core.decode_push(raw))
            if config is None:
                return (yield from (self.ensure() if create else self.info()))
            core.encode_settings({"push": config}, self.ctx.limits, self.name)  # before looking elsewhere
            targets = core.transfer_targets(config if config.type != "pull" else None, ())
            return (yield from self._write_transfers(
                targets, lambda: self._configure("upsert", None, {"push": config}, expect={"push": raw})))

        info = yield from self._rewrite("push", write, must_exist=not create)
        if info.settings.push is not None:
            yield from self._list_for_pushers(0)
        return info

    def add_subscribers(self, subscribers: Sequence[Subscriber], *, fixed_type: bool = False) -> Verb[QueueInfo]:
        """Add subscribers (one of the same name, or unnamed with the same url, is replaced); a
        pull queue becomes a multicast push queue, created if needed. With ``fixed_type`` (IronMQ
        v3: a queue's type never changes) the queue must exist and be a push queue."""

        def change(current: PushConfig | None) -> PushConfig:
            if current is None and fixed_type:
                raise InvalidArgument("subscribers", "A pull queue has no subscribers (its type is fixed).")
            base = current or PushConfig(())
            merged = {_identity(s): s for s in base.subscribers} | {_identity(s): s for s in subscribers}
            return dataclasses.replace(base, subscribers=tuple(merged.values()))

        return (yield from self.update_push(change, create=not fixed_type))

    def replace_subscribers(self, subscribers: Sequence[Subscriber]) -> Verb[QueueInfo]:
        """Replace every subscriber of a push queue; its type never changes (a pull queue refuses)."""

        def change(current: PushConfig | None) -> PushConfig:
            if current is None:
                raise InvalidArgument("subscribers", "A pull queue has no subscribers (its type is fixed).")
            return dataclasses.replace(current, subscribers=tuple({_identity(s): s for s in subscribers}.values()))

        return (yield from self.update_push(change, create=False))

    def remove_subscribers(self, keys: Iterable[str], *, fixed_type: bool = False) -> Verb[QueueInfo]:
        """Remove the subscribers whose url or name is among ``keys``; with none left the queue is
        a pull queue again, unless ``fixed_type`` (then the last one cannot be removed)."""
        gone = set(keys) - {""}  # "" is no subscriber's url, nor the name of a named one

        def change(current: PushConfig | None) -> PushConfig | None:
            if current is None:
                if fixed_type:
                    raise InvalidArgument("subscribers", "A pull queue has no subscribers (its type is fixed).")
                return None
            left = tuple(s for s in current.subscribers if s.url not in gone and s.name not in gone)
            if not left and fixed_type:
                raise InvalidArgument("subscribers", "A push queue keeps at least one subscriber (its type is fixed).")
            return dataclasses.replace(current, subscribers=left) if left else PushConfig((), type="pull")

        return (yield from self.update_push(change, create=False))

    def claim_pushes(self, n: int, lease: float) -> Verb[PushClaim]:
        """The push deliveries due now (at most ``n``), each leased to this caller for ``lease``
        seconds. Also keeps the queue's place where pushers look for work up to date. On a
        partitioned queue, from its partitions in turn until it has n."""
        layout = self.ctx.layout(self.project, self.name) or (yield from self._read_layout())
        deliveries: list[PushDelivery] = []
        now, next_at, active = 0, -1, False
        first = layout.next_turn(layout.span)
        for j in range(layout.span):
            i = (first + j) % layout.span
            got, now, due, busy = yield from layout.parts[i]._claim(n - len(deliveries), lease, core.id_suffix(i))
            deliveries += got
            active = active or busy
            if due >= 0:
                next_at = due if next_at < 0 else min(next_at, due)
            if len(deliveries) >= n:
                break
        if active:
            due = next_at if next_at >= 0 else now + PUSH_RECHECK_MS
            yield from self._list_for_pushers(min(due, now + PUSH_RECHECK_MS), exact=True)
        else:
            yield Command(("ZREM", push_index_key(self.ctx.prefix), f"{self.project}\t{self.name}"))
        return PushClaim(deliveries, next_at if next_at >= 0 else None, active)

    def _claim(self, n: int, lease: float, suffix: str) -> Verb[tuple[list[PushDelivery], int, int, bool]]:
        """This partition's due deliveries, ids with the partition's ``suffix``: (deliveries, now,
        next event or -1, whether it has deliveries pending)."""
        token = secrets.token_hex(8)
        args = [self.ctx.clock.script_now(), n, round(lease * 1000), token]
        reply = ClaimReply.of((yield Eval("push_claim", self._core_keys, args)))
        deliveries = []
        for member, message_id, sid, url, tok, record, headers, hops, name in rows(reply):
            _, timeout_ms, _, ctype, body = core.parse_record(record)
            sid = text(sid)
            deliveries.append(PushDelivery(
                self.project, self.name, text(member), text(message_id) + suffix, sid[:-2] + suffix + sid[-2:],
                text(url), text(tok), body, ctype, timeout_ms / 1000, core.sendable_headers(orjson.loads(headers)),
                int(hops), text(name),
            ))
        yield from self._after(reply.flags)
        return deliveries, reply.now, reply.next_at, bool(reply.active)

    def report_push(self, delivery: PushDelivery, status_code: int, error: str = "") -> Verb[bool]:
        """The outcome of a claimed push (``status_code`` 0: no answer; negative: the pusher
        dropped it, a forward past MAX_TRANSFER_HOPS, which is final). False if the lease was
        lost meanwhile (the report then changes nothing)."""
        if self.part is None:
            layout = self.ctx.layout(self.project, self.name) or (yield from self._read_layout())
            if layout.span > 1:
                part, _ = layout.route(delivery.message_id)
                return part is not None and (yield from part.report_push(delivery, status_code, error))
        args = [self.ctx.clock.script_now(), delivery.member, delivery.token, status_code, error[:500]]
        reply = ReportReply._make((yield Eval("push_report", self._core_keys, args)))
        if reply.next_at >= 0:  # a retry or the next unicast subscriber: pushers look again when due
            yield from self._list_for_pushers(reply.next_at)
        yield from self._after(reply.flags)
        return bool(reply.applied)

    def ack_push(self, subscriber_id: str, token: str | None = None) -> Verb[bool]:
        """A subscriber's acknowledgement of a delivery it answered 202. With ``token`` (from the
        acknowledgement URL) it must be that delivery's. True if one was waiting."""
        _check_id(subscriber_id)
        if self.part is None:
            layout = self.ctx.layout(self.project, self.name) or (yield from self._read_layout())
            if layout.span > 1:
                part, inner = layout.route(subscriber_id[:-2])
                return part is not None and (yield from part.ack_push(inner + subscriber_id[-2:], token))
        args = [self.ctx.clock.script_now(), _check_id(subscriber_id), token or ""]
        raw = yield Eval("push_ack", self._core_keys, args)
        return bool(raw)

    def ack_push_by_token(self, message_id: str, token: str) -> Verb[bool]:
        """``ack_push`` named by the message and the delivery's token alone (IronMQ v3's
        acknowledgement: the token went out as ``Iron-Reservation-Id``). A token ends in its
        subscriber's two-digit index, so it names the subscriber message too."""
        _check_id(message_id)
        if not isinstance(token, str) or len(token) < 3 or not token[-2:].isdigit():
            raise MessageNotFound()
        return (yield from self.ack_push(message_id + token[-2:], token))

    def push_status(self, message_id: str) -> Verb[list[PushStatus]]:
        """Per subscriber, the delivery of a push-queue message ([] for a pull message)."""
        _check_id(message_id)
        routed = yield from self._routed(message_id)
        if routed is not None:
            part, inner = routed
            found = yield from part.push_status(inner)
            return [dataclasses.replace(st, id=message_id + st.id[len(inner):]) for st in found]
        k = self.keys
        record, exists = yield Batch((("HGET", k.pstatus, message_id), ("HEXISTS", k.msg, message_id)))
        if not exists:
            raise MessageNotFound()
        if record is None:
            return []
        rec = orjson.loads(record)
        out = []
        for i, sub in enumerate(rec["subs"], start=1):
            remaining = sub.get("r", 0) if rec["t"] == "m" else rec["r"]
            out.append(PushStatus(f"{message_id}{i:02d}", sub["u"], sub["s"], sub["c"] or None, remaining,
                                  rec["d"] / 1000, sub.get("e") or "", sub.get("n", "")))
        return out

    # -- alerts ---------------------------------------------------------------------------------

    def add_alerts(self, alerts: Sequence[Alert], *, create: bool = True) -> Verb[QueueInfo]:
        """Add alerts (creating the queue if needed, unless ``create=False``: ``QueueNotFound``). Refused: a duplicate of an existing alert
        (type, direction and trigger), more than 5 in all, a progressive cycle."""

        def change(current: list[Alert]) -> list[Alert]:
            known = {(c.type, c.direction, c.trigger) for c in current}
            if any((a.type, a.direction, a.trigger) in known for a in alerts):
                raise InvalidArgument("alerts", "At least one new alert duplicates current queue alerts.")
            return [*current, *alerts]

        return (yield from self._change_alerts(change, create=create))

    def replace_alerts(self, alerts: Sequence[Alert], *, create: bool = True) -> Verb[QueueInfo]:
        """Replace every alert ([] removes them all); ``create`` as for add_alerts."""
        return (yield from self._change_alerts(lambda current: list(alerts), create=create))

    def remove_alerts(self, alert_ids: Sequence[str], *, create: bool = True) -> Verb[QueueInfo]:
        """Remove alerts by id (unknown ids are skipped); ``create`` as for add_alerts."""
        gone = set(alert_ids)
        return (yield from self._change_alerts(lambda current: [a for a in current if a.id not in gone], create=create))

    def remove_alert(self, alert_id: str) -> Verb[QueueInfo]:
        """Remove one alert; ``AlertNotFound`` if the queue has none with this id."""

        def change(current: list[Alert]) -> list[Alert]:
            if alert_id not in {a.id for a in current}:
                raise AlertNotFound()
            return [a for a in current if a.id != alert_id]

        return (yield from self._change_alerts(change))

    def _change_alerts(self, change: Callable[[list[Alert]], list[Alert]], *, create: bool = True) -> Verb[QueueInfo]:
        """The alerts after ``change``, written only if nobody changed them meanwhile. Creates the
        queue if needed, unless ``create=False`` (then ``QueueNotFound``)."""

        def write(raw: str | None) -> Verb[QueueInfo]:
            alerts = change(list(core.decode_alerts(raw)))
            if len(alerts) > core.MAX_ALERTS:
                raise InvalidArgument("alerts", f"a queue may have at most {core.MAX_ALERTS} alerts")
            alerts = [a if a.id else dataclasses.replace(a, id=secrets.token_hex(12)) for a in alerts]
            for i, alert in enumerate(alerts):
                core.check_alert(alert, i, self.ctx.limits, self.name)  # before looking at other queues
            mode = "upsert" if create else "update"
            return (yield from self._write_transfers(
                core.transfer_targets(None, alerts),
                lambda: self._configure(mode, None, {"alerts": tuple(alerts)}, expect={"alerts": raw})))

        return (yield from self._rewrite("alerts", write, must_exist=not create))

    def _rewrite(self, field: str, write: Callable[[str | None], Verb[QueueInfo]], *,
                 must_exist: bool = False) -> Verb[QueueInfo]:
        """A read-modify-write of one meta field: ``write`` gets the field as read and must make
        its change conditional on it (``expect``); when another caller won the race, read again.
        With ``must_exist``, a missing queue is ``QueueNotFound`` before ``write`` runs."""
        for attempt in range(REWRITE_ATTEMPTS):
            raw, queue_id = yield Command(("HMGET", self.keys.meta, field, "id"))
            if must_exist and queue_id is None:
                raise QueueNotFound()
            try:
                return (yield from write(None if raw is None else text(raw)))
            except Changed:
                if attempt == REWRITE_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def _write_transfers(self, targets: dict[str, str], write: Callable[[], Verb[QueueInfo]]) -> Verb[QueueInfo]:
        """``write`` a setting that makes this queue move messages into ``targets`` (queue ->
        the setting's field), unless one of them leads back here: a loop of transfers (a
        message forwarded round and round, doubled at each turn by two subscribers). The check
        and the write run under the project's lock, so two changes made at once cannot make a
        loop between them that neither saw."""
        if not targets:
            return (yield from write())
        return (yield from self._under_graph_lock(lambda: self._refuse_loop_then(targets, write)))

    def _refuse_loop_then(self, targets: dict[str, str], write: Callable[[], Verb[QueueInfo]]) -> Verb[QueueInfo]:
        path = yield from self._loop_through(list(targets))
        if path is not None:
            field = targets[path[1]]
            if field.startswith("alerts"):
                raise InvalidArgument(field, "progressive alerts may not form a cycle between queues")
            raise InvalidArgument(field, f"{field} would send messages round in a loop: {' → '.join(path)}")
        return (yield from write())

    def _loop_through(self, targets: list[str]) -> Verb[list[str] | None]:
        """A path of transfers from this queue through one of ``targets`` back to it, if any
        (breadth first, at most LOOP_CHECK_QUEUES queues read, a pipeline per level)."""
        came_from = {t: self.name for t in targets}
        level, read = list(dict.fromkeys(targets)), 0
        while level and read < LOOP_CHECK_QUEUES:
            level = level[: LOOP_CHECK_QUEUES - read]
            read += len(level)
            metas = [queue_keys(self.ctx.prefix, self.project, q).meta for q in level]
            replies = yield Batch(tuple(("HMGET", meta, "push", "alerts") for meta in metas))
            following = []
            for queue, (push, alerts) in zip(level, replies):
                config = core.decode_push(None if push is None else text(push))
                for target in core.transfer_targets(config, core.decode_alerts(None if alerts is None else text(alerts))):
                    if target == self.name:
                        return _path_back(came_from, queue, self.name)
                    if target not in came_from:
                        came_from[target] = queue
                        following.append(target)
            level = following
        return None

    def _under_graph_lock(self, change: Callable[[], Verb[QueueInfo]]) -> Verb[QueueInfo]:
        """``change`` while no other change of this project's transfers runs (a lease in Redis,
        released at the end, or after GRAPH_LOCK_TTL if its holder dies)."""
        key = lease_key(self.ctx.prefix, f"transfers:{escape(self.project)}")
        holder, ttl_ms = secrets.token_hex(8), round(GRAPH_LOCK_TTL * 1000)
        for _ in range(GRAPH_LOCK_TRIES):
            if (yield Eval("lease", [key], [holder, ttl_ms])):
                break
            yield Wait(key, GRAPH_LOCK_WAIT)  # nothing is published there: a short sleep
        else:
            raise Unavailable("the project's forwarding settings are being changed; try again")
        try:
            result = yield from change()
        except Exception:
            yield Eval("lease", [key], [holder, 1])  # released: expires in 1 ms
            raise
        yield Eval("lease", [key], [holder, 1])
        return result

    # -- maintenance --------------------------------------------------------------------------

    def maintain(self) -> Verb[tuple[bool, bool, int]]:
        """One bounded maintenance pass. Returns (exists, more work left, transfers made)."""
        exists, more, moved, _ = yield from self._sweep()
        return exists, more, moved

    def _sweep(self, over: str | None = None) -> Verb[tuple[bool, bool, int, tuple[int, int]]]:
        """``maintain``, also marking the queue with its project's quota state ``over`` ("" none,
        None: left as it is) and measuring it: (..., (messages, bytes))."""
        if self.part is None:
            layout = self.ctx.layout(self.project, self.name) or (yield from self._read_layout())
            if layout.span > 1:
                swept = yield from _together([part._sweep(over) for part in layout.parts])
                return (swept[0][0], any(s[1] for s in swept), sum(s[2] for s in swept),
                        (sum(s[3][0] for s in swept), sum(s[3][1] for s in swept)))
        args = [self.ctx.clock.script_now(), self.ctx.k, self.keys.notify]
        reply = MaintainReply._make((yield Eval("maintain", self._core_keys, args if over is None else [*args, over])))
        if reply.flags & MISSING:
            return False, False, 0, (0, 0)
        moved = yield from self._after(reply.flags)
        return True, bool(reply.more), moved, (reply.messages, reply.bytes)

    def _after(self, flags: int) -> Verb[int]:
        """Work a script left for another slot: move dead letters to their queues."""
        if flags & OUTBOX_PENDING:
            return (yield from self._drain_outbox())
        return 0

    def _drain_outbox(self) -> Verb[int]:
        """Move outbox entries to their target queues. The target remembers each entry's ref, so
        an entry moved twice (a crash between the move and the LREM) is stored once. An entry
        that cannot be moved is set aside (``stuck``) and the next one goes on; only Redis being
        unavailable stops the drain (the entry stays first, for the next try)."""
        moved = 0
        while True:
            entries = yield Command(("LRANGE", self.keys.outbox, 0, 99))
            if not entries:
                return moved
            for entry in entries:
                try:
                    kind, target, ref, hops, payload = core.parse_outbox(entry)
                    if kind == "size":  # a partition's size, for the alerts partition 0 decides: no transfer
                        yield from QueueVerbs(self.ctx, self.project, self.name)._alert_size("apply", payload)
                        yield Command(("LREM", self.keys.outbox, 1, entry))
                        continue
                    if self.part:  # partitions share the queue's id: the ref names the message as the queue does
                        ref = _ref_in_queue(ref, self.part)
                    if hops > MAX_TRANSFER_HOPS:  # an error queue in a loop: this turn is the last
                        yield Eval("stuck", [self.keys.meta, self.keys.outbox, self.keys.stuck], ["drop", entry, "", 0])
                        continue
                    target_queue = QueueVerbs(self.ctx, self.project, target)
                    yield from target_queue._transfer(self._outbox_message(kind, payload), ref, hops)
                except Unavailable:
                    raise
                except Exception as exc:  # retrying will not fix it: the next entries go on
                    yield from self._set_aside(entry, exc)
                    continue
                yield Command(("LREM", self.keys.outbox, 1, entry))
                moved += 1
                if kind == "dlq":
                    yield from self._emit("message.dead_lettered", dead_letter_event(ref, target))

    def _set_aside(self, entry: bytes, exc: Exception) -> Verb[None]:
        """Out of the outbox into the queue's stuck list, with the reason, for an operator."""
        head = entry.partition(b"\n")[0].decode("utf-8", "replace").split("\t")
        what = f"{head[0]} to {head[1]!r}" if len(head) > 1 else "an outbox entry"
        problem = exc.message if isinstance(exc, EngineError) else f"{type(exc).__name__}: {exc}"
        reason = " ".join(f"{what}: {problem}".split())[:500]
        log.warning("queue %r of project %r: %s; set aside (`ferrymq queues info`)", self.name, self.project,
                    reason, exc_info=None if isinstance(exc, EngineError) else exc)
        k = self.keys
        yield Eval("stuck", [k.meta, k.outbox, k.stuck], ["aside", entry, reason, STUCK_KEPT])

    def retry_stuck(self) -> Verb[int]:
        """Move the transfers set aside again (once what stopped them is fixed); one that fails
        again is set aside again. Returns how many were moved."""
        k = self.keys
        if (yield Eval("stuck", [k.meta, k.outbox, k.stuck], ["retry", "", "", STUCK_KEPT])):
            return (yield from self._drain_outbox())
        return 0

    def _outbox_message(self, kind: str, payload: bytes) -> NewMessage:
        """dlq: a dead letter's record (body and content type kept); errq: an error-queue message
        (JSON built by the script); alert: an alert message (built here: the script cannot know
        the queue's name)."""
        if kind == "dlq":
            _, _, _, ctype, body = core.parse_record(payload)
            return NewMessage(body, content_type=ctype)
        if kind == "alert":
            return NewMessage(alert_body(self.name, orjson.loads(payload)))
        if self.part:  # the script knows the message's id within its partition
            doc = orjson.loads(payload)
            doc["source_msg_id"] += core.id_suffix(self.part)
            payload = orjson.dumps(doc)
        return NewMessage(payload)

    def forward(self, message: NewMessage, hops: int) -> Verb[None]:
        """Put a message an ``ironmq:///`` subscriber forwards here (creating the queue if
        needed): the server's own transfer, not held to a client's limits, carrying the number of
        transfers the message has gone through (``hops``, this one included)."""
        yield from self._transfer(message, "", hops)

    def _transfer(self, message: NewMessage, ref: str, hops: int = 0) -> Verb[None]:
        """A move from another queue: never refused by the message or byte quota (a dead letter
        or an error-queue message only moves), but a queue it creates counts (``_admit``)."""
        args = self._put_args("transfer", 1)
        now = self.ctx.clock.wall_ms()
        args.extend(core.message_args(message, "message", self.ctx.limits, now, ref, transfer=True, hops=hops))
        reply = yield from self._put_or_create(args, "transfer-create", after=(self.ctx.dedupe_ms,))
        yield from self._after_put(reply)

    def _emit(self, event: str, payload: dict[str, Any]) -> Verb[int]:
        """Deliver this queue's ``event`` to every enabled subscription that asks for it, as a JSON
        message in its destination queue (which must exist: events never create queues). Best
        effort: an event is sent after the change it reports, so a crash in between loses it."""
        pk = self.ctx.project_keys(self.project)
        delivered = 0
        for doc in (yield Command(("HVALS", pk.subscriptions))):
            sub = decode_subscription(doc)
            if not (sub.enabled and sub.source_queue == self.name and event in sub.events):
                continue
            body = event_body(self.ctx, self.project, self.name, sub.id, event, payload)
            destination = QueueVerbs(self.ctx, self.project, sub.destination_queue)
            try:
                yield from destination.put([NewMessage(body, content_type="json")], create=False)
            except QueueNotFound:
                continue
            delivered += 1
        return delivered

    def _register(self, queue_id: str) -> Verb[None]:
        pk = self.ctx.project_keys(self.project)
        yield Eval("register", [pk.queues, pk.names, pk.ids], [self.name, queue_id])
        yield Command(("SADD", pk.projects, self.project))

    def _info(self, reply: QueueReply) -> QueueInfo:
        meta = core.meta_fields(core.pairs(reply.meta))
        counters = {name[2:]: int(value) for name, value in meta.items() if name.startswith("c_")}
        return QueueInfo(
            project=self.project,
            name=self.name,
            id=meta["id"],
            created_at=int(meta["created"]),
            updated_at=int(meta.get("updated", meta["created"])),
            settings=core.decode_settings(meta),
            ready=reply.backlog.ready,
            delayed=reply.backlog.delayed,
            reserved=reply.backlog.reserved,
            bytes=reply.backlog.bytes,
            oldest_at=reply.backlog.oldest_at,
            total_messages=int(meta.get("total", 0)),
            pushing=int(meta.get("pushing", 0)),
            counters=counters,
            attrs={name[2:]: value for name, value in meta.items() if name.startswith("x:")},
            created=bool(reply.created),
            stuck=int(meta.get("stuck", 0)),
            stuck_reason=meta.get("stuck_reason", ""),
        )


class EngineVerbs:
    """Verbs that span queues: the registry and the sweeper."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def queue(self, project: str, name: str) -> QueueVerbs:
        return QueueVerbs(self.ctx, project, name)

    def list_queues(self, project: str, page: int = 0, per_page: int = 30, *, after: str | None = None,
                    prefix: str = "") -> Verb[list[QueueRef]]:
        """Queues of a project in name order; ``page`` counts from 0. ``after`` starts after that
        name (a queue of that name may or may not exist); ``prefix`` keeps names starting with it."""
        core.check_name("project", project, self.ctx.limits)
        core.check_int("page", page, 0, 2**31)
        core.check_int("per_page", per_page, 1, LIST_PAGE_MAX)
        pk = self.ctx.project_keys(project)
        start = page * per_page
        if after is None and not prefix:
            names = yield Command(("ZRANGE", pk.queues, start, start + per_page - 1))
        else:
            low, high = _name_range(after, prefix)
            names = yield Command(("ZRANGEBYLEX", pk.queues, low, high, "LIMIT", start, per_page))
        if not names:
            return []
        ids = yield Command(("HMGET", pk.names, *names))
        metas = [queue_keys(self.ctx.prefix, project, text(n)).meta for n in names]
        alive = yield Batch(tuple(("EXISTS", meta) for meta in metas))
        # A crash between dropping a queue and unlisting it leaves a name without data: skip it.
        return [
            QueueRef(project, text(name), text(qid))
            for name, qid, live in zip(names, ids, alive)
            if live and qid
        ]

    def list_details(self, project: str, page: int = 0, per_page: int = 100) -> Verb[list[QueueDetails]]:
        """Like ``list_queues``, with each queue's settings and attributes (one pipeline, no counts)."""
        refs = yield from self.list_queues(project, page, per_page)
        if not refs:
            return []
        metas = yield Batch(tuple(("HGETALL", queue_keys(self.ctx.prefix, project, r.name).meta) for r in refs))
        out = []
        for ref, raw in zip(refs, metas):
            meta = core.meta_fields(raw.items())
            if meta.get("id") == ref.id:  # skip a queue deleted (or re-created) since the listing
                out.append(details(project, ref.name, meta))
        return out

    def projects(self) -> Verb[list[str]]:
        """Every project that has (or had) queues."""
        cursor: int | bytes = 0
        found: set[str] = set()
        while True:
            cursor, batch = yield Command(("SSCAN", self.ctx.project_keys("_").projects, cursor, "COUNT", 500))
            found.update(text(p) for p in batch)
            if int(cursor) == 0:
                return sorted(found)

    def stats(self, project: str, page: int = 0, per_page: int = 1000) -> Verb[list[QueueStats]]:
        """Counts and counters of a page of a project's queues, read in one pipeline and without
        maintenance: cheap enough to scrape thousands of queues often."""
        refs = yield from self.list_queues(project, page, per_page)
        if not refs:
            return []
        replies = yield Batch(tuple(c for ref in refs for c in _stats_commands(queue_keys(self.ctx.prefix, project, ref.name))))
        out = [_stats(project, ref.name, replies[4 * i : 4 * i + 4]) for i, ref in enumerate(refs)]
        # Partitioned queues (meta ``parts``): their other partitions, in a second round.
        others = [(i, queue_keys(self.ctx.prefix, project, refs[i].name, tag))
                  for i in range(len(refs)) for tag in core.parse_layout(replies[4 * i + 3][-1])[1]]
        if others:
            more = yield Batch(tuple(c for _, keys in others for c in _stats_commands(keys)))
            for j, (i, _) in enumerate(others):
                out[i] = _add_stats(out[i], _stats(project, refs[i].name, more[4 * j : 4 * j + 4]))
        return out

    def count_queues(self, project: str) -> Verb[int]:
        core.check_name("project", project, self.ctx.limits)
        return (yield Command(("ZCARD", self.ctx.project_keys(project).queues)))

    def find_queue(self, project: str, queue_id: str, *, name: str | None = None) -> Verb[QueueRef | None]:
        """The queue with this id, or None (also for the id of a deleted incarnation). An id
        belongs to one queue name for ever (a queue created again gets a new id): given the
        ``name`` it was found under before, only whether it is still that queue's id is asked,
        one Redis call instead of two."""
        core.check_name("project", project, self.ctx.limits)
        if not isinstance(queue_id, str) or not queue_id:
            return None
        if name is None:
            found = yield Command(("HGET", self.ctx.project_keys(project).ids, queue_id))
            if found is None:
                return None
            name = text(found)
        current = yield Command(("HGET", queue_keys(self.ctx.prefix, project, name).meta, "id"))
        return QueueRef(project, name, queue_id) if current and text(current) == queue_id else None

    # -- event subscriptions (storage; routing is QueueVerbs._emit) ---------------------------

    def put_subscription(self, project: str, subscription: Subscription) -> Verb[Subscription]:
        """Store (create or replace) a subscription. The caller validates it; the engine bounds
        its size (``Limits.max_subscription_bytes``)."""
        core.check_name("project", project, self.ctx.limits)
        doc = encode_subscription(subscription)
        limit = self.ctx.limits.max_subscription_bytes
        if len(doc) > limit:
            raise TooLarge("subscription", f"a subscription takes {len(doc)} bytes; the limit is {limit}")
        pk = self.ctx.project_keys(project)
        yield Eval("subscribe", [pk.subscriptions, pk.limits], [subscription.id, doc, self.ctx.quotas.subscriptions])
        return subscription

    def get_subscription(self, project: str, subscription_id: str) -> Verb[Subscription | None]:
        doc = yield Command(("HGET", self.ctx.project_keys(project).subscriptions, subscription_id))
        return decode_subscription(doc) if doc is not None else None

    def list_subscriptions(self, project: str) -> Verb[list[Subscription]]:
        docs = yield Command(("HVALS", self.ctx.project_keys(project).subscriptions))
        return sorted((decode_subscription(d) for d in docs), key=lambda s: (s.created_at, s.id))

    def delete_subscription(self, project: str, subscription_id: str) -> Verb[Subscription | None]:
        existing = yield from self.get_subscription(project, subscription_id)
        if existing is not None:
            yield Command(("HDEL", self.ctx.project_keys(project).subscriptions, subscription_id))
        return existing

    def emit(self, project: str, queue: str, event: str, payload: dict[str, Any]) -> Verb[int]:
        """Emit an event of a queue (beyond those the engine emits itself); returns deliveries."""
        return (yield from QueueVerbs(self.ctx, project, queue)._emit(event, payload))

    def due_push_queues(self, limit: int = 100) -> Verb[list[tuple[str, str]]]:
        """(project, queue) of push queues pushers should look at now, by the engine's clock."""
        members = yield Command(("ZRANGEBYSCORE", push_index_key(self.ctx.prefix), "-inf",
                                 self.ctx.clock.wall_ms(), "LIMIT", 0, limit))
        return [tuple(text(m).split("\t", 1)) for m in members]  # type: ignore[misc]

    def lease(self, name: str, holder: str, ttl: float) -> Verb[bool]:
        """Take or renew the deployment-wide lease ``name`` for ``ttl`` seconds; True if held."""
        ttl_ms = core.seconds_to_ms("ttl", ttl, 0.001, 86_400)
        return bool((yield Eval("lease", [lease_key(self.ctx.prefix, name)], [holder, ttl_ms])))

    def sweep(self, page: int = 200) -> Verb[SweepReport]:
        """One maintenance pass over every queue of every project (bounded work per call), so
        queues nobody reads still expire messages, requeue lapsed reservations and move dead
        letters. Safe to run from several processes; a lease keeps it to one at a time."""
        queues = busy = transfers = 0
        failed: list[tuple[str, str, Exception]] = []
        projects_key = self.ctx.project_keys("_").projects
        cursor: int | bytes = 0
        while True:
            cursor, projects = yield Command(("SSCAN", projects_key, cursor, "COUNT", 100))
            for project in projects:
                project = text(project)
                pk = self.ctx.project_keys(project)
                usage = yield from self.project_usage(project)
                over = f"{usage.over} {getattr(usage.limits, usage.over)}" if usage.over else ""
                messages = size = start = 0
                while True:
                    names = yield Command(("ZRANGE", pk.queues, start, start + page - 1))
                    if names:  # the page's partitions in one round, not a read per queue
                        layouts = yield Batch(tuple(
                            ("HGET", queue_keys(self.ctx.prefix, project, text(n)).meta, "parts") for n in names))
                        for name, raw in zip(names, layouts):
                            self.ctx.remember(project, text(name), raw)
                    for name in names:
                        try:  # one queue's trouble never stops the sweep of the others
                            queue = QueueVerbs(self.ctx, project, text(name))
                            exists, more, moved, (n, b) = yield from queue._sweep(over)
                        except Unavailable:
                            raise
                        except Exception as exc:
                            failed.append((project, text(name), exc))
                            continue
                        if not exists:  # dropped, but a crash kept it listed
                            qid = yield Command(("HGET", pk.names, name))
                            yield Eval("unregister", [pk.queues, pk.names, pk.ids], [name, qid or b""])
                            continue
                        queues += 1
                        busy += more
                        transfers += moved
                        messages, size = messages + n, size + b
                    if len(names) < page:
                        break
                    start += page
                yield from self._measured(project, usage.limits, messages, size)
            if int(cursor) == 0:
                return SweepReport(queues, busy, transfers, tuple(failed))

    def _measured(self, project: str, limits: Quotas, messages: int, size: int) -> Verb[None]:
        """Record a project's sums; the next pass marks its queues (so puts are refused) while it
        is at or over its message or byte quota. A project is "over" at its limit: one more
        message would pass it."""
        over = ""
        if messages >= limits.messages:
            over = f"messages {limits.messages}"
        elif size >= limits.bytes:
            over = f"bytes {limits.bytes}"
        fields = ("messages", messages, "bytes", size, "measured", self.ctx.clock.wall_ms(), "over", over)
        yield Command(("HSET", self.ctx.project_keys(project).usage, *fields))

    # -- quotas -------------------------------------------------------------------------------

    def set_project_limits(self, project: str, **limits: int | None) -> Verb[ProjectUsage]:
        """Give a project its own limits (``queues=100``); None returns one to the engine's."""
        core.check_name("project", project, self.ctx.limits)
        for name, value in limits.items():
            if name not in QUOTA_NAMES:
                raise InvalidArgument(name, f"unknown quota {name!r}: one of {', '.join(QUOTA_NAMES)}")
            if value is not None:
                low = MIN_IDS_PER_REQUEST if name == "ids_per_request" else 0
                core.check_int(name, value, low, 2**53)
        key = self.ctx.project_keys(project).limits
        given = {name: value for name, value in limits.items() if value is not None}
        if given:
            yield Command(("HSET", key, *(item for pair in given.items() for item in pair)))
        reset = [name for name, value in limits.items() if value is None]
        if reset:
            yield Command(("HDEL", key, *reset))
        return (yield from self.project_usage(project))

    def project_usage(self, project: str) -> Verb[ProjectUsage]:
        """The project's quotas (its own where it has them, else the engine's) and its usage
        (one pipeline)."""
        core.check_name("project", project, self.ctx.limits)
        pk = self.ctx.project_keys(project)
        own, queues, subscriptions, usage = yield Batch((
            ("HGETALL", pk.limits), ("ZCARD", pk.queues), ("HLEN", pk.subscriptions), ("HGETALL", pk.usage)))
        custom = {text(k): int(v) for k, v in own.items() if text(k) in QUOTA_NAMES}
        sums = {text(k): text(v) for k, v in usage.items()}
        return ProjectUsage(
            project=project, limits=dataclasses.replace(self.ctx.quotas, **custom), custom=frozenset(custom),
            queues=queues, subscriptions=subscriptions, messages=int(sums.get("messages", 0)),
            bytes=int(sums.get("bytes", 0)), measured_at=int(sums.get("measured", 0)),
            over=sums.get("over", "").partition(" ")[0],
        )


# -- helpers ----------------------------------------------------------------------------------


def _together(verbs: list[Verb[Any]]) -> Verb[list[Any]]:
    """Runs verbs (of a queue's partitions) side by side: in each round, the scripts they ask
    for go as one ``Evals`` step (one pipelined round); any other step runs alone. Their results
    in order; the first error once every verb has finished."""
    results: list[Any] = [None] * len(verbs)
    errors: list[BaseException | None] = [None] * len(verbs)
    pending: dict[int, Any] = {}

    def advance(i: int, value: Any = None, error: BaseException | None = None) -> None:
        try:
            pending[i] = verbs[i].throw(error) if error is not None else verbs[i].send(value)
        except StopIteration as done:
            results[i] = done.value
        except Exception as exc:
            errors[i] = exc

    for i in range(len(verbs)):
        advance(i)
    while pending:
        evals = [(i, step) for i, step in pending.items() if isinstance(step, Eval)]
        if len(evals) > 1:
            for i, _ in evals:
                del pending[i]
            replies = yield Evals(tuple(step for _, step in evals))
            for (i, _), reply in zip(evals, replies):
                advance(i, error=reply) if isinstance(reply, Exception) else advance(i, reply)
            continue
        i = evals[0][0] if evals else next(iter(pending))  # one script alone: no pipeline
        step = pending.pop(i)
        try:
            value = yield step
        except Exception as exc:
            advance(i, error=exc)
        else:
            advance(i, value)
    for error in errors:
        if error is not None:
            raise error
    return results


def _ref_in_queue(ref: str, partition: int) -> str:
    """An outbox ref "queue id:kind:message id:seq" of a partition, its message id as the queue
    names it (``core.partition_of``): the target remembers refs, and partitions share the queue's
    id and may number two messages alike."""
    head, sep, tail = ref.rpartition(":")
    return f"{head}{core.id_suffix(partition)}{sep}{tail}" if sep else f"{ref}/{partition}"


def _add_backlog(a: Backlog, b: Backlog) -> Backlog:
    """Two partitions' backlogs (oldest enqueue ms, or 0 when empty) as one queue's."""
    oldest = min((x for x in (a.oldest_at, b.oldest_at) if x > 0), default=0)
    return Backlog(a.ready + b.ready, a.delayed + b.delayed, a.reserved + b.reserved, a.bytes + b.bytes, oldest)


def _stats_commands(k: QueueKeys) -> list[tuple[Any, ...]]:
    return [("LLEN", k.ready), ("ZCARD", k.delayed), ("ZCARD", k.reserved),
            ("HMGET", k.meta, "q", "stuck", *STAT_COUNTERS.values(), "parts")]


def _stats(project: str, name: str, replies: list[Any]) -> QueueStats:
    ready, delayed, reserved, meta = replies
    fields = core.state_fields(meta[0]) if meta[0] else {}  # a queue not opened since the upgrade: none
    counters = {name: int(fields.get(field) or v or 0) for (name, field), v in zip(STAT_COUNTERS.items(), meta[2:])}
    return QueueStats(project, name, ready - int(fields.get("ghosts", 0)), delayed, reserved, counters, int(meta[1] or 0))


def _add_stats(a: QueueStats, b: QueueStats) -> QueueStats:
    return dataclasses.replace(
        a, ready=a.ready + b.ready, delayed=a.delayed + b.delayed, reserved=a.reserved + b.reserved,
        counters={name: value + b.counters.get(name, 0) for name, value in a.counters.items()}, stuck=a.stuck + b.stuck)


def _with_suffix(ids: list[str], partition: int) -> list[str]:
    """Ids of a partition as the queue's (``core.partition_of``); "" (a skipped message) stays."""
    suffix = core.id_suffix(partition)
    return [i + suffix if i and suffix else i for i in ids]


def _messages_with_suffix(messages: list[Message], partition: int) -> list[Message]:
    suffix = core.id_suffix(partition)
    return [dataclasses.replace(m, id=m.id + suffix) for m in messages] if suffix else messages


def _seconds_again(delay_ms: int | str) -> float | str | None:
    """A checked release delay (ms, "" or "@moment") as ``settle`` takes it."""
    return delay_ms / 1000 if isinstance(delay_ms, int) else delay_ms or None


def _settings_fields(settings: QueueSettings, limits: Limits, queue: str) -> dict[str, str | None]:
    """Meta fields that give a partition the queue's settings (alerts too: every partition
    reports its size to partition 0 while the queue has them)."""
    return core.encode_settings({
        "timeout": settings.timeout, "delay": settings.delay, "expires_in": settings.expires_in,
        "max_deliveries": settings.max_deliveries, "dead_letter_queue": settings.dead_letter_queue,
        "retry_delay": settings.retry_delay, "paused": settings.paused, "requeue": settings.requeue,
        "push": settings.push or PushConfig((), type="pull"), "alerts": settings.alerts,
    }, limits, queue)


def event_body(ctx: Context, project: str, queue: str, subscription_id: str, event: str, payload: dict[str, Any]) -> bytes:
    """An event as a JSON message, in the shape of Cloudflare's event messages, with FerryMQ's own
    source type (not disguised as one of Cloudflare's)."""
    moment = datetime.fromtimestamp(ctx.clock.wall_ms() / 1000, timezone.utc)
    return orjson.dumps({
        "type": f"ferrymq.queue.{event}",
        "source": {"type": "ferrymq.queue", "queue_name": queue},
        "payload": payload,
        "metadata": {
            "accountId": project, "eventSubscriptionId": subscription_id, "eventSchemaVersion": 1,
            "eventTimestamp": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        },
    })


def alert_body(queue: str, fired: dict[str, Any]) -> bytes:
    """The alert message IronMQ clients expect (a JSON object as the message body)."""
    moment = datetime.fromtimestamp(fired["at"] / 1000, timezone.utc)
    return orjson.dumps({
        "source_queue": queue, "queue_size": fired["size"], "alert_id": fired["id"],
        "alert_type": fired["type"], "alert_direction": fired["dir"], "alert_trigger": fired["trigger"],
        "created_at": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
    })


def dead_letter_event(ref: str, target: str) -> dict[str, Any]:
    """Payload of message.dead_lettered from an outbox ref "source queue id:message id:deliveries"."""
    parts = ref.rsplit(":", 2)
    payload: dict[str, Any] = {"deadLetterQueue": target}
    if len(parts) == 3 and parts[2].isdigit():
        payload.update(messageId=parts[1], attempts=int(parts[2]))
    return payload


def details(project: str, name: str, meta: dict[str, str]) -> QueueDetails:
    return QueueDetails(
        project=project,
        name=name,
        id=meta["id"],
        created_at=int(meta["created"]),
        updated_at=int(meta.get("updated", meta["created"])),
        settings=core.decode_settings(meta),
        attrs={name[2:]: value for name, value in meta.items() if name.startswith("x:")},
    )


def encode_subscription(subscription: Subscription) -> bytes:
    return orjson.dumps(dataclasses.asdict(subscription))


def decode_subscription(doc: bytes) -> Subscription:
    fields = orjson.loads(doc)
    fields["events"] = tuple(fields["events"])
    return Subscription(**fields)


def new_queue_id() -> str:
    """32 lowercase hex characters (Cloudflare's resource id format)."""
    return secrets.token_hex(16)


def _path_back(came_from: dict[str, str], last: str, start: str) -> list[str]:
    """start → ... → last → start, from the parents a breadth-first walk from start noted."""
    chain = [last]
    while came_from[chain[-1]] != start:
        chain.append(came_from[chain[-1]])
    return [start, *reversed(chain), start]


def _name_range(after: str | None, prefix: str) -> tuple[bytes, bytes]:
    """ZRANGEBYLEX bounds of the names after ``after`` that start with ``prefix`` (all the registry's
    scores are 0, so it is ordered by the names' bytes). No UTF-8 string holds the byte 0xff, so the
    names starting with the prefix are exactly those from the prefix up to (not including) prefix + 0xff."""
    if not isinstance(prefix, str) or (after is not None and not isinstance(after, str)):
        raise InvalidArgument("prefix", "after and prefix must be strings")
    low_name, high_name = (after or "").encode(), prefix.encode()
    low = b"(" + low_name if after is not None and low_name >= high_name else b"[" + high_name
    return low, b"(" + high_name + b"\xff" if prefix else b"+"


def _identity(subscriber: Subscriber) -> tuple[str, str]:
    """Which subscriber of a push queue this is: its name, or its url when it has none."""
    return ("name", subscriber.name) if subscriber.name else ("url", subscriber.url)


def _check_id(message_id: object) -> str:
    if not isinstance(message_id, str) or not message_id:
        raise InvalidArgument("id", "message id must be a non-empty string")
    return message_id


def _check_rid(reservation_id: object) -> str:
    if reservation_id is None:
        return ""
    if not isinstance(reservation_id, str) or not reservation_id:
        raise InvalidArgument("reservation_id", "reservation id must be a non-empty string")
    return reservation_id


def _attr_fields(attrs: dict[str, str | None]) -> dict[str, str | None]:
    for name, value in attrs.items():
        if not isinstance(name, str) or not name or (value is not None and not isinstance(value, str)):
            raise InvalidArgument("attrs", "attributes map names to strings (None removes one)")
    return {"x:" + name: value for name, value in attrs.items()}


def _batches(items: list[Any], size: int) -> list[list[Any]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def _raise_for(status: str) -> None:
    if status == "not_found":
        raise MessageNotFound()
    if status == "not_reserved":
        raise NotReserved()


def _message(
    message_id: bytes | str,
    record: bytes,
    deliveries: int,
    status: str = "ready",
    reservation_id: str | None = None,
    timeout_ms: int | None = None,
    reserved_until: int | None = None,
    available_at: int | None = None,
) -> Message:
    enq, own_timeout, expire, ctype, body = core.parse_record(record)
    return Message(
        id=text(message_id),
        body=body,
        timeout=(timeout_ms or own_timeout) / 1000,
        reserved_count=deliveries,
        enqueued_at=enq,
        expires_at=expire,
        content_type=ctype,
        status=status,
        reservation_id=reservation_id or None,
        reserved_until=reserved_until,
        available_at=available_at,
    )

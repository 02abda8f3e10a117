"""Queue settings: create, update, ensure, info, clear, delete; and the safe change of one
setting (a read-modify-write that loses no update, refused when its transfers would loop)."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable
from typing import Any

import orjson

from .. import core
from ..core import Batch, Command, Eval, Verb, Wait, text
from ..errors import Changed, InvalidArgument, QueueNotFound, Unavailable
from ..keys import escape, lease_key, queue_keys
from ..limits import ID_FLOOR_TTL, LOOP_CHECK_QUEUES
from ..models import QueueInfo
from ..replies import ClearReply, QueueReply
from .context import QueueBase
from .partitions import together

ID_FLOOR_MS = str(round(ID_FLOOR_TTL * 1000))
REWRITE_ATTEMPTS = 20
"""Tries of a read-modify-write of a setting before ``Changed`` reaches the caller."""
GRAPH_LOCK_TTL = 10.0
"""Seconds a change of a project's transfers (forwards, error queues, progressive alerts) holds
the project's lock at most: a loop check and its write run alone."""
GRAPH_LOCK_WAIT, GRAPH_LOCK_TRIES = 0.05, 200


class QueueSettings(QueueBase):
    """Create, change, read, clear and delete a queue; change one of its settings safely."""

    __slots__ = ()

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
        removed = sum((yield from together([part._clear() for part in layout.parts])))
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
        raw = (yield from together([part._drop() for part in layout.parts]))[0]
        self.ctx.forget(self.project, self.name)
        pk = self.ctx.project_keys(self.project)
        yield Eval("unregister", [pk.queues, pk.names, pk.ids], [self.name, text(raw)])
        yield from self._emit("queue.deleted", {"queueId": text(raw)})

    def _drop(self) -> Verb[bytes]:
        k = self.keys
        return (yield Eval("drop", [*self._core_keys, k.dedupe, k.idfloor, k.stuck], [ID_FLOOR_MS]))

    def _register(self, queue_id: str) -> Verb[None]:
        pk = self.ctx.project_keys(self.project)
        yield Eval("register", [pk.queues, pk.names, pk.ids], [self.name, queue_id])
        yield Command(("SADD", pk.projects, self.project))

    def _info(self, reply: QueueReply) -> QueueInfo:
        meta = core.meta_fields(core.pairs(reply.meta))
        counters = {name[2:]: int(value) for name, value in meta.items() if name.startswith("c_")}
        counters = core.reported_counters(counters, meta, reply.backlog.reserved)
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

    # -- one setting changed safely -------------------------------------------------------------

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


def new_queue_id() -> str:
    """32 lowercase hex characters (Cloudflare's resource id format)."""
    return secrets.token_hex(16)


def _attr_fields(attrs: dict[str, str | None]) -> dict[str, str | None]:
    for name, value in attrs.items():
        if not isinstance(name, str) or not name or (value is not None and not isinstance(value, str)):
            raise InvalidArgument("attrs", "attributes map names to strings (None removes one)")
    return {"x:" + name: value for name, value in attrs.items()}


def _path_back(came_from: dict[str, str], last: str, start: str) -> list[str]:
    """start → ... → last → start, from the parents a breadth-first walk from start noted."""
    chain = [last]
    while came_from[chain[-1]] != start:
        chain.append(came_from[chain[-1]])
    return [start, *reversed(chain), start]

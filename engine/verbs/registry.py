"""The registry of queues (each project's, in name order) and what reads it: listings, lookup by
id, counts without maintenance, the sweep that maintains idle queues, the pushers' index and
deployment-wide leases."""

from __future__ import annotations

import dataclasses
from typing import Any

from .. import core
from ..core import Batch, Command, Eval, Evals, Verb, text
from ..errors import InvalidArgument, Unavailable
from ..keys import QueueKeys, lease_key, push_index_key, queue_keys
from ..limits import LIST_PAGE_MAX
from ..models import QueueDetails, QueueRef, QueueStats, SweepReport
from ..replies import StatsReply
from .context import EngineBase

STAT_COUNTERS = {"put": "total", "reserved": "c_reserved", "deleted": "c_deleted", "expired": "c_expired",
                 "dead": "c_dead", "cleared": "c_cleared", "push_delivered": "c_push_delivered",
                 "push_failed": "c_push_failed", "push_errors": "c_push_errors", "set_aside": "c_set_aside",
                 "hops_dropped": "c_hops_dropped"}
"""Counter name -> meta field: what ``stats`` reports."""


class Registry(EngineBase):
    """The queues of each project, and the passes over them."""

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
        replies = yield from _read_stats([queue_keys(self.ctx.prefix, project, ref.name) for ref in refs])
        out = [_stats(project, ref.name, reply) for ref, reply in zip(refs, replies)]
        # Partitioned queues (meta ``parts``): their other partitions, in a second round.
        others = [(i, queue_keys(self.ctx.prefix, project, refs[i].name, tag))
                  for i in range(len(refs)) for tag in core.parse_layout(replies[i].meta[-1])[1]]
        if others:
            more = yield from _read_stats([keys for _, keys in others])
            for (i, _), reply in zip(others, more):
                out[i] = _add_stats(out[i], _stats(project, refs[i].name, reply))
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

    def due_push_queues(self, limit: int = 100) -> Verb[list[tuple[str, str]]]:
        """(project, queue) of push queues pushers should look at now, by the scripts' clock
        (which wrote the index's scores; this host's until Redis time has been read). Not by
        this host's: a put's push, indexed at Redis time, waited for the next pass where the
        host's clock was a millisecond behind."""
        clock = self.ctx.clock
        members = yield Command(("ZRANGEBYSCORE", push_index_key(self.ctx.prefix), "-inf",
                                 clock.script_now() or clock.wall_ms(), "LIMIT", 0, limit))
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
                            self.ctx.remember(self.queue_verbs, project, text(name), raw)
                    for name in names:
                        try:  # one queue's trouble never stops the sweep of the others
                            queue = self.queue(project, text(name))
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


_READ_COUNTERS = {**STAT_COUNTERS, "done": core.DONE_FIELD}
"""What ``stats`` reads: its counters, and the one readers fold into two (core.reported_counters)."""
_STATS_FIELDS = ("q", "stuck", *_READ_COUNTERS.values(), "parts")


def _read_stats(queues: list[QueueKeys]) -> Verb[list[StatsReply]]:
    """Each queue's figures read at once (lua/stats-4.lua: the deliveries counter adds two of
    them), the queues in one pipelined round."""
    replies = yield Evals(tuple(Eval("stats", [k.ready, k.delayed, k.reserved, k.meta], _STATS_FIELDS) for k in queues))
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return [StatsReply(*reply) for reply in replies]


def _stats(project: str, name: str, reply: StatsReply) -> QueueStats:
    ready, delayed, reserved, meta = reply
    fields = core.state_fields(meta[0]) if meta[0] else {}  # a queue not opened since the upgrade: none
    counters = {name: int(fields.get(field) or v or 0) for (name, field), v in zip(_READ_COUNTERS.items(), meta[2:])}
    counters = core.reported_counters(counters, fields, reserved)
    return QueueStats(project, name, ready - int(fields.get("ghosts", 0)), delayed, reserved, counters, int(meta[1] or 0))


def _add_stats(a: QueueStats, b: QueueStats) -> QueueStats:
    return dataclasses.replace(
        a, ready=a.ready + b.ready, delayed=a.delayed + b.delayed, reserved=a.reserved + b.reserved,
        counters={name: value + b.counters.get(name, 0) for name, value in a.counters.items()}, stuck=a.stuck + b.stuck)


def _name_range(after: str | None, prefix: str) -> tuple[bytes, bytes]:
    """ZRANGEBYLEX bounds of the names after ``after`` that start with ``prefix`` (all the registry's
    scores are 0, so it is ordered by the names' bytes). No UTF-8 string holds the byte 0xff, so the
    names starting with the prefix are exactly those from the prefix up to (not including) prefix + 0xff."""
    if not isinstance(prefix, str) or (after is not None and not isinstance(after, str)):
        raise InvalidArgument("prefix", "after and prefix must be strings")
    low_name, high_name = (after or "").encode(), prefix.encode()
    low = b"(" + low_name if after is not None and low_name >= high_name else b"[" + high_name
    return low, b"(" + high_name + b"\xff" if prefix else b"+"

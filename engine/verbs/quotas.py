"""A project's quotas: its own limits or the engine's, its usage (the sweep measures messages
and bytes), and the checks of the verbs that add to it (a new queue, many ids in one call)."""

from __future__ import annotations

import dataclasses

from .. import core
from ..core import Batch, Command, Eval, Verb, text
from ..errors import InvalidArgument, QuotaExceeded
from ..limits import MIN_IDS_PER_REQUEST, QUOTA_NAMES, Quotas
from ..models import ProjectUsage
from .context import EngineBase, QueueBase


class QueueQuotas(QueueBase):
    """The project's quotas, checked before a queue's verb adds to the project."""

    __slots__ = ()

    def _admit(self) -> Verb[None]:
        """List this queue's name in its project before creating it: ``QuotaExceeded`` at the
        project's queue quota, or while it is over its message or byte quota."""
        pk = self.ctx.project_keys(self.project)
        yield Eval("admit", [pk.queues, pk.limits, pk.usage], [self.name, self.ctx.quotas.queues])

    def _within_ids_quota(self, n: int) -> Verb[None]:
        """More than one engine batch in one call: within the project's ids_per_request quota."""
        own = yield Command(("HGET", self.ctx.project_keys(self.project).limits, "ids_per_request"))
        limit = int(own) if own is not None else self.ctx.quotas.ids_per_request
        if n > limit:
            raise QuotaExceeded("ids_per_request", limit)


class ProjectQuotas(EngineBase):
    """A project's quotas and usage."""

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

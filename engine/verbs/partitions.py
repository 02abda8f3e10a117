"""A queue's partitions. A queue of P partitions is P sets of the keys of one queue, each under
its own hash tag (``keys.partition_tags``), each with a copy of the queue's settings and the
queue's id. Partition 0 is the queue's own keys: it holds the settings of record, the
registration, the outbox of transfers into the queue. A verb over the whole queue runs its script
on every partition in one pipelined round (``together``); one that names a message runs on the
partition its id names; put goes to one partition, reserve takes from them in turn."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import orjson

from .. import core
from ..core import Command, Eval, Evals, Verb
from ..errors import MessageNotFound
from ..keys import partition_tags
from ..limits import Limits
from ..models import PushConfig, QueueInfo, QueueSettings
from ..replies import QueueReply
from .context import Layout, QueueBase

if TYPE_CHECKING:
    from ferrymq.engine.verbs import QueueVerbs


class Partitions(QueueBase):
    """A queue's layout, the partition a message id names, a whole queue's settings and info."""

    __slots__ = ()

    def _read_layout(self) -> Verb[Layout]:
        raw = yield Command(("HGET", self.keys.meta, "parts"))
        return self.ctx.remember(type(self), self.project, self.name, raw)  # type: ignore[arg-type]  # QueueVerbs

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
        yield from together([part._configure_partition([*args, orjson.dumps({**fields, "alerts_part": str(part.part)}),
                                                         b"{}", b"{}"]) for part in layout.parts[1:]])
        if info.settings.alerts:
            yield from together([part._alert_size("report") for part in layout.parts])
        whole = yield from self._info_partitioned(layout)
        return dataclasses.replace(whole, created=info.created)

    def _configure_partition(self, args: list[Any]) -> Verb[None]:
        reply = QueueReply.of((yield Eval("configure", [*self._core_keys, self.keys.idfloor], args)))
        yield from self._after(reply.flags)

    def _info_partitioned(self, layout: Layout) -> Verb[QueueInfo]:
        infos = yield from together([part.info() for part in layout.parts])
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


def together(verbs: list[Verb[Any]]) -> Verb[list[Any]]:
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


def _settings_fields(settings: QueueSettings, limits: Limits, queue: str) -> dict[str, str | None]:
    """Meta fields that give a partition the queue's settings (alerts too: every partition
    reports its size to partition 0 while the queue has them)."""
    return core.encode_settings({
        "timeout": settings.timeout, "delay": settings.delay, "expires_in": settings.expires_in,
        "max_deliveries": settings.max_deliveries, "dead_letter_queue": settings.dead_letter_queue,
        "retry_delay": settings.retry_delay, "paused": settings.paused, "requeue": settings.requeue,
        "push": settings.push or PushConfig((), type="pull"), "alerts": settings.alerts,
    }, limits, queue)

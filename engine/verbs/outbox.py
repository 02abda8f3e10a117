"""Maintenance and the outbox: a script that leaves work for another queue (a dead letter, an
error-queue or alert message: another slot) writes it to the queue's outbox, and ``_after``
moves it; an entry that cannot be moved is set aside for an operator (``retry_stuck``)."""

from __future__ import annotations

import logging

import orjson

from .. import core
from ..core import Command, Eval, Verb
from ..errors import EngineError, Unavailable
from ..limits import MAX_TRANSFER_HOPS, OUTBOX_PAGE, STUCK_KEPT
from ..models import NewMessage
from ..replies import MISSING, OUTBOX_PENDING, MaintainReply
from .alerts import alert_body
from .context import QueueBase
from .events import dead_letter_event
from .partitions import together

log = logging.getLogger("ferrymq.engine")


class Outbox(QueueBase):
    """Maintenance, and the transfers a script leaves in the outbox."""

    __slots__ = ()

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
                swept = yield from together([part._sweep(over) for part in layout.parts])
                return (swept[0][0], any(s[1] for s in swept), sum(s[2] for s in swept),
                        (sum(s[3][0] for s in swept), sum(s[3][1] for s in swept)))
        args = [self.ctx.clock.script_now(), self.ctx.k, self.keys.notify]
        reply = MaintainReply._make((yield Eval("maintain", self._core_keys, args if over is None else [*args, over])))
        if reply.flags & MISSING:
            return False, False, 0, (0, 0)
        moved = yield from self._after(reply.flags)
        return True, bool(reply.more), moved, (reply.messages, reply.bytes)

    def retry_stuck(self) -> Verb[int]:
        """Move the transfers set aside again (once what stopped them is fixed); one that fails
        again is set aside again. Returns how many were moved."""
        k = self.keys
        if (yield Eval("stuck", [k.meta, k.outbox, k.stuck], ["retry", "", "", STUCK_KEPT])):
            return (yield from self._drain_outbox())
        return 0

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
            entries = yield Command(("LRANGE", self.keys.outbox, 0, OUTBOX_PAGE - 1))
            if not entries:
                return moved
            for entry in entries:
                try:
                    kind, target, ref, hops, payload = core.parse_outbox(entry)
                    if kind == "size":  # a partition's size, for the alerts partition 0 decides: no transfer
                        yield from self._queue(self.name)._alert_size("apply", payload)
                        yield Command(("LREM", self.keys.outbox, 1, entry))
                        continue
                    if self.part:  # partitions share the queue's id: the ref names the message as the queue does
                        ref = _ref_in_queue(ref, self.part)
                    if hops > MAX_TRANSFER_HOPS:  # an error queue in a loop: this turn is the last
                        yield Eval("stuck", [self.keys.meta, self.keys.outbox, self.keys.stuck], ["drop", entry, "", 0])
                        continue
                    target_queue = self._queue(target)
                    yield from target_queue._transfer(self._outbox_message(kind, payload), ref, hops)
                except Unavailable:
                    raise
                except Exception as exc:  # retrying will not fix it: the next entries go on
                    yield from self._set_aside(entry, exc)
                    continue
                if not (yield Command(("LREM", self.keys.outbox, 1, entry))):
                    continue  # another drain (the sweeper's, another request's) moved it meanwhile
                moved += 1
                if kind == "dlq":
                    yield from self._emit("message.dead_lettered", dead_letter_event(ref, target))
            if len(entries) < OUTBOX_PAGE:  # it was the last page: an entry added since was added by a
                return moved                 # script whose caller drains it (its flags say so)

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


def _ref_in_queue(ref: str, partition: int) -> str:
    """An outbox ref "queue id:kind:message id:seq" of a partition, its message id as the queue
    names it (``core.partition_of``): the target remembers refs, and partitions share the queue's
    id and may number two messages alike."""
    head, sep, tail = ref.rpartition(":")
    return f"{head}{core.id_suffix(partition)}{sep}{tail}" if sep else f"{ref}/{partition}"

"""Messages: put (and push, its form that reports the backlog), reserve (and pull), peek, get,
delete, touch, release, settle, release_reserved, and forward (the server's own transfer)."""

from __future__ import annotations

import dataclasses
import secrets
import time
from collections.abc import Iterable, Sequence
from typing import Any

from .. import core
from ..core import Command, Eval, Verb, Wait, text
from ..errors import DeliveryPaused, InvalidArgument, MessageNotFound, NotReserved, QueueNotFound, TooLarge
from ..keys import MESSAGE_SCORES
from ..models import RESERVED, Backlog, Message, NewMessage, Pulled, Pushed, Reservation, Settled
from ..replies import MISSING, PAUSED, PUSHED, DeleteReserveReply, GetReply, PeekReply, PutReply, ReserveReply
from ..replies import SettleReply, TouchReply, rows
from .context import Layout, QueueBase, Settings
from .partitions import together
from .queues import new_queue_id

_STATUS = {1: "ok", 2: "noop", 0: "not_found", -1: "not_reserved"}
RESERVE_READY_DEFAULTS = (1, 0, "0")
"""reserve_ready's optional arguments (n, timeout ms, delete) at the values it assumes when absent."""
RID_LENGTH = 16
"""The length of the reservation ids new_rid() makes (16 hex digits)."""
ANY_RESERVATION = "*"
"""delete_reserved's mark for one delete under whatever reservation (lua/delete_reserved-5.lua)."""


class Messages(QueueBase):
    """The verbs on a queue's messages."""

    __slots__ = ()

    # -- put ------------------------------------------------------------------------------------

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
        messages_args = core.batch_args(batch, limits, self.ctx.clock.wall_ms())
        reply, missing = None, False
        if mode == "existing" and not backlog and self.ctx.common(self.keys.meta, "put_ready") and not _delays(batch):
            try:
                reply = yield from self._put_ready(messages_args)
            except QueueNotFound:
                if not create:
                    raise
                missing = True
        if reply is None:
            args = self._put_args(mode, len(batch), backlog)
            args += messages_args
            reply = yield from self._put_or_create(args, "create" if create else None, new_queue, missing=missing)
        yield from self._after_put(reply)
        return reply

    def _put_ready(self, messages_args: list[Any]) -> Verb[PutReply | None]:
        """The common case first (lua/put_ready-3.lua: three keys where put declares twelve, so
        ~14k fewer instructions a call); None where it needs put, having written nothing
        (maintenance due, a default delay, a push queue, alerts...). ``QueueNotFound`` for a
        missing queue."""
        args = [self.ctx.clock.script_now(), self.keys.notify, *messages_args]
        raw = yield Eval("put_ready", self._ready_keys, args)
        return None if self.ctx.full(self.keys.meta, "put_ready", raw) else PutReply.of(raw, False)

    def _put_or_create(self, args: list[Any], create: str | None, new_queue: Settings | None = None,
                       after: tuple[Any, ...] = (), *, missing: bool = False) -> Verb[PutReply]:
        """The put script on an existing queue (one round trip, the hot path); on a missing one,
        with ``create`` as its mode once the project admitted the new queue (its queue quota),
        and the new queue's id and settings (``new_queue`` beside the defaults). ``after``: the
        arguments that follow those (lua/put-12.lua). ``missing``: the queue was just found missing
        (by put_ready), so the put on an existing queue is not tried."""
        backlog = args[4] == "1"
        if not missing:
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

    # -- reserve --------------------------------------------------------------------------------

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

    def _reserve_call(self, n: int, timeout_ms: int, token: str, delete: bool, backlog: bool) -> Verb[ReserveReply]:
        """One reserve: its common case first (lua/reserve_ready-7.lua, seven of reserve's ten keys),
        unless a backlog is asked for; the reserve script where that answers FULL."""
        ctx = self.ctx
        now = ctx.clock.script_now()
        if not backlog and ctx.common(self.keys.meta, "reserve_ready"):
            optional: list[Any] = [n, timeout_ms, "1" if delete else "0"]
            while optional and optional[-1] == RESERVE_READY_DEFAULTS[len(optional) - 1]:
                optional.pop()  # not sent at its default: an argument costs Redis ~1.2k instructions
            raw = yield Eval("reserve_ready", self._take_keys, [now, ctx.k, token, *optional], messages=n)
            if not ctx.full(self.keys.meta, "reserve_ready", raw):
                return ReserveReply.of(raw, False)
        args = [now, ctx.k, self.keys.notify, n, timeout_ms, token]
        if delete or backlog:  # absent when both are "0": an argument costs Redis ~1.2k instructions
            args += ["1" if delete else "0", "1" if backlog else "0"]
        return ReserveReply.of((yield Eval("reserve", self._core_keys, args, messages=n)), backlog)

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
            token = new_rid()
            try:
                reply = yield from self._reserve_call(n, timeout_ms, token, delete, backlog)
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
                found = yield from together([part.peek(n, must_exist=must_exist and i == 0)
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
        check_id(message_id)
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

    # -- settle: delete, touch, release ----------------------------------------------------------

    def delete_message(self, message_id: str, reservation_id: str | None = None) -> Verb[None]:
        """Delete one message in any state; with ``reservation_id``, only under that reservation."""
        settled = yield from self.settle(deletes=[(message_id, reservation_id)])
        _raise_for(settled.deleted[0])

    def delete_and_reserve(
        self, message_id: str, reservation_id: str | None, n: int = 1, *, timeout: float | None = None,
    ) -> Verb[list[Message]]:
        """A consumer's loop in one script call: delete the message it finished (as
        ``delete_message``: ``NotReserved`` or ``MessageNotFound``, and then nothing is
        reserved), then ``reserve(n, timeout=timeout)``; ``DeliveryPaused`` (the delete done)
        while the queue is paused. One round trip per message where the two verbs take two (a
        consumer with one call in flight runs at the round trip's pace). No long poll: an empty
        list when nothing is ready, and the caller waits with ``reserve(wait=...)``."""
        limits = self.ctx.limits
        core.check_int("n", n, 1, limits.max_batch)
        timeout_ms = 0 if timeout is None else core.seconds_to_ms("timeout", timeout, 0.001, limits.max_timeout)
        deleted = check_id(message_id), _check_rid(reservation_id)
        if self.part is None:
            layout = yield from self._layout_knowing([message_id])
            if layout.span > 1:  # the delete's partition is not the reserve's: two calls
                yield from self.delete_message(message_id, reservation_id)
                return (yield from self.reserve(n, timeout=timeout))
        token = new_rid()
        args = [self.ctx.clock.script_now(), self.ctx.k, self.keys.notify, n, timeout_ms, token, *deleted]
        reply = DeleteReserveReply.of((yield Eval("delete_reserve", self._core_keys, args, messages=n)))
        yield from self._after(reply.flags)
        _raise_for(_STATUS[reply.status])
        if reply.flags & PAUSED:
            raise DeliveryPaused()
        return core.reserved_messages(reply.messages, reply.now, token, timeout_ms)

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
        check_id(message_id)
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
            [self.ctx.clock.script_now(), message_id, reservation_id or "", timeout_ms, new_rid()],
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
        checked_deletes = [(check_id(message_id), _check_rid(rid)) for message_id, rid in deletes]
        checked_releases = []
        for i, (message_id, rid, delay) in enumerate(releases):
            if isinstance(delay, str) and delay.startswith("@"):
                delay_ms: int | str = delay  # an absolute moment, already checked
            else:
                delay_ms = "" if delay is None else core.seconds_to_ms(f"releases[{i}].delay", delay, 0, limits.max_delay)
            checked_releases.append((check_id(message_id), _check_rid(rid), delay_ms))
        if self.part is None:
            layout = yield from self._layout_knowing(item[0] for item in (*checked_deletes, *checked_releases))
            if layout.span > 1:
                return (yield from self._settle_partitioned(layout, checked_deletes, checked_releases))
        statuses: list[str] = []
        for part in _batches(checked_deletes + checked_releases, limits.max_batch):
            reply = yield from self._settle_call(part)
            yield from self._after(reply.flags)
            statuses += [_STATUS[s] for s in reply.statuses]
        return Settled(deleted=statuses[: len(deletes)], released=statuses[len(deletes) :])

    def _settle_call(self, items: list[tuple[Any, ...]]) -> Verb[SettleReply]:
        """One settle of at most max_batch items, the deletes first: where every item is a delete
        under a reservation, their common case first (lua/delete_reserved-5.lua, five keys); the
        settle script where that answers FULL."""
        now = self.ctx.clock.script_now()
        d = [item for item in items if len(item) == 2]
        marked = _marked_deletes(d) if len(d) == len(items) else None
        if marked is not None and self.ctx.common(self.keys.meta, "delete_reserved"):
            raw = yield Eval("delete_reserved", self._delete_keys, [now, *marked])
            if not self.ctx.full(self.keys.meta, "delete_reserved", raw):
                return SettleReply.of(raw)
        args: list[Any] = [now, self.ctx.k, self.keys.notify, len(d), len(items) - len(d)]
        args += [value for item in items for value in item]
        return SettleReply.of((yield Eval("settle", self._core_keys, args)))

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
        for i, settled in zip(order, (yield from together(verbs))):
            done = iter(settled.deleted + settled.released)
            positions = [n for n in groups[i] if items[n][0] == "d"] + [n for n in groups[i] if items[n][0] == "r"]
            for n in positions:
                statuses[n] = next(done)
        return Settled(deleted=statuses[: len(deletes)], released=statuses[len(deletes):])

    def release_reserved(self) -> Verb[int]:
        """Every reserved message back in the queue now (an operator's "release all"), whoever
        holds it; returns how many. A batch per ``settle`` script call, so a message out of
        deliveries is dead-lettered as on any release. The rounds are bounded by the count at the
        start: consumers reserving meanwhile cannot keep it going."""
        if self.part is None:
            layout = yield from self._read_layout()
            if layout.span > 1:
                return sum((yield from together([part.release_reserved() for part in layout.parts])))
        batch = self.ctx.limits.max_batch
        reserved = yield Command(("ZCOUNT", self.keys.reserved, *MESSAGE_SCORES))
        released = 0
        for _ in range(-(-reserved // batch)):
            ids = yield Command(("ZRANGEBYSCORE", self.keys.reserved, *MESSAGE_SCORES, "LIMIT", 0, batch))
            if not ids:
                break
            settled = yield from self.settle(releases=[(text(i), None, 0) for i in ids])
            released += settled.released.count("ok")
        return released


def check_id(message_id: object) -> str:
    if not isinstance(message_id, str) or not message_id:
        raise InvalidArgument("id", "message id must be a non-empty string")
    return message_id


def _delays(batch: list[NewMessage | bytes | str]) -> bool:
    """Whether a message of the batch asks for a delay (the put script's case, not put_ready's)."""
    return any(isinstance(m, NewMessage) and (m.delay or m.available_at is not None) for m in batch)


def _check_rid(reservation_id: object) -> str:
    if reservation_id is None:
        return ""
    if not isinstance(reservation_id, str) or not reservation_id:
        raise InvalidArgument("reservation_id", "reservation id must be a non-empty string")
    return reservation_id


def new_rid() -> str:
    """A new reservation id: unguessable (another consumer of the queue must not delete under
    it), RID_LENGTH hex digits."""
    return secrets.token_hex(RID_LENGTH // 2)


def _marked_deletes(deletes: list[tuple[str, str]]) -> list[str] | None:
    """delete_reserved's arguments after now for these deletes: the reservation id between bars,
    then the ids, where they all share it (a batch from one reserve); else "", then each id and
    its reservation id between bars. The script finds the mark in the delivery state,
    "count|token|timeout|expire", with a plain find: a rid of 16 characters without a bar (at
    least 16 bytes) can only be found as the token, the timeout being 9 digits. This check is what
    makes that exact, whatever a client sends: None where that script may not take them, a
    reservation id of another length or with a bar (not one the engine made, or a client's guess:
    settle answers it), or an id repeated (settle's status for a repeat: not found). One delete
    with no reservation id is sent as ANY_RESERVATION: the script deletes it if it is reserved
    (the common case: a consumer deleting what it took) and leaves the other states to settle;
    several go to settle, which classifies them all in one call."""
    if len(deletes) == 1 and not deletes[0][1]:
        return [ANY_RESERVATION, deletes[0][0]]  # a single delete under whatever reservation
    rids = {rid for _, rid in deletes}
    if any(len(rid) != RID_LENGTH or "|" in rid for rid in rids):
        return None
    ids = [message_id for message_id, _ in deletes]
    if len(ids) > 1 and len(set(ids)) < len(ids):
        return None
    if len(rids) == 1:
        return [f"|{deletes[0][1]}|", *ids]
    return ["", *(value for message_id, rid in deletes for value in (message_id, f"|{rid}|"))]


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



def _with_suffix(ids: list[str], partition: int) -> list[str]:
    """Ids of a partition as the queue's (``core.partition_of``); "" (a skipped message) stays."""
    suffix = core.id_suffix(partition)
    return [i + suffix if i and suffix else i for i in ids]


def _messages_with_suffix(messages: list[Message], partition: int) -> list[Message]:
    suffix = core.id_suffix(partition)
    return [dataclasses.replace(m, id=m.id + suffix) for m in messages] if suffix else messages


def _add_backlog(a: Backlog, b: Backlog) -> Backlog:
    """Two partitions' backlogs (oldest enqueue ms, or 0 when empty) as one queue's."""
    oldest = min((x for x in (a.oldest_at, b.oldest_at) if x > 0), default=0)
    return Backlog(a.ready + b.ready, a.delayed + b.delayed, a.reserved + b.reserved, a.bytes + b.bytes, oldest)


def _seconds_again(delay_ms: int | str) -> float | str | None:
    """A checked release delay (ms, "" or "@moment") as ``settle`` takes it."""
    return delay_ms / 1000 if isinstance(delay_ms, int) else delay_ms or None

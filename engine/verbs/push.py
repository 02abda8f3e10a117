"""Push queues: their settings and subscribers, and the pushers' side (claim the deliveries due,
report each outcome), a subscriber's acknowledgement and each subscriber's delivery status."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable, Iterable, Sequence

import orjson

from .. import core
from ..core import Batch, Command, Eval, Verb, text
from ..errors import InvalidArgument, MessageNotFound
from ..keys import push_index_key
from ..models import PushClaim, PushConfig, PushDelivery, PushStatus, QueueInfo, Subscriber
from ..replies import ClaimReply, ReportReply, rows
from .context import QueueBase
from .messages import check_id

PUSH_RECHECK_MS = 1_000
"""A push queue with deliveries pending is looked at again within this time, whatever else."""


class PushQueues(QueueBase):
    """A push queue's settings and subscribers, and the pushers' side of its deliveries."""

    __slots__ = ()

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

    # -- the pushers' side ----------------------------------------------------------------------

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

    def _list_for_pushers(self, when: int, *, exact: bool = False) -> Verb[None]:
        """Where pushers look for work: lower this queue's next look to ``when`` (or set it)."""
        member = f"{self.project}\t{self.name}"
        index = push_index_key(self.ctx.prefix)
        yield Command(("ZADD", index, when, member) if exact else ("ZADD", index, "LT", when, member))

    def ack_push(self, subscriber_id: str, token: str | None = None) -> Verb[bool]:
        """A subscriber's acknowledgement of a delivery it answered 202. With ``token`` (from the
        acknowledgement URL) it must be that delivery's. True if one was waiting."""
        check_id(subscriber_id)
        if self.part is None:
            layout = self.ctx.layout(self.project, self.name) or (yield from self._read_layout())
            if layout.span > 1:
                part, inner = layout.route(subscriber_id[:-2])
                return part is not None and (yield from part.ack_push(inner + subscriber_id[-2:], token))
        args = [self.ctx.clock.script_now(), check_id(subscriber_id), token or ""]
        raw = yield Eval("push_ack", self._core_keys, args)
        return bool(raw)

    def ack_push_by_token(self, message_id: str, token: str) -> Verb[bool]:
        """``ack_push`` named by the message and the delivery's token alone (IronMQ v3's
        acknowledgement: the token went out as ``Iron-Reservation-Id``). A token ends in its
        subscriber's two-digit index, so it names the subscriber message too."""
        check_id(message_id)
        if not isinstance(token, str) or len(token) < 3 or not token[-2:].isdigit():
            raise MessageNotFound()
        return (yield from self.ack_push(message_id + token[-2:], token))

    def push_status(self, message_id: str) -> Verb[list[PushStatus]]:
        """Per subscriber, the delivery of a push-queue message ([] for a pull message)."""
        check_id(message_id)
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


def _identity(subscriber: Subscriber) -> tuple[str, str]:
    """Which subscriber of a push queue this is: its name, or its url when it has none."""
    return ("name", subscriber.name) if subscriber.name else ("url", subscriber.url)

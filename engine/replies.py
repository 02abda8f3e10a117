"""The scripts' replies by name: one decoder per ``lua/*.lua`` that answers with a table.

A script that reports the queue's flags puts them first, then its own fields; the verbs read
fields by name only (no ``raw[4:9]``). Each class's fields are the names of its script's header
line ``Returns: {...}``, in order, and ``tests/lua/test_scripts.py`` checks the two against each
other. In that line:

    name               one value
    (group: a, b, ...) several values, decoded as one field (the backlog figures)
    [group: a, b, ...] the same, only when the call asked for it (else the field is None)
    name...            the rest of the reply, a flat list of ``ROW`` values per item

A reply of fixed length decodes with ``_make``; the others with ``of``. Decoding is a tuple
built from the list Redis returned: nothing per item, no dict per reply
(put, reserve and settle are the hot path). Scripts that answer a single value (admit, lease,
register, ...) have no decoder.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .models import Backlog

OUTBOX_PENDING, MISSING, PUSHED, PAUSED = 1, 2, 4, 8
"""Bits of ``flags``: outbox work pending (move it: ``_after``), the queue does not exist, push
deliveries were added (list the queue where pushers look), delivery is paused (``delete_reserve``
reserved nothing)."""
FULL = -1
"""``flags`` of a common case's script (``put_ready``, ``reserve_ready``, ``delete_reserved``)
when the call needs its verb's full script (it wrote nothing)."""


BACKLOG_VALUES = 5
"""The values of a reply's backlog group: ready, delayed, reserved, bytes, oldest_at (``Backlog``)."""


class QueueReply(NamedTuple):
    """configure, info: the queue's figures and its whole meta hash (field, value, ...)."""

    flags: int
    created: int
    backlog: Backlog
    meta: list[Any]

    ROW = ("field", "value")

    @classmethod
    def of(cls, raw: list[Any]) -> QueueReply:
        end = 2 + BACKLOG_VALUES
        return cls(raw[0], raw[1], Backlog(*raw[2:end]), raw[end:])


class ClearReply(NamedTuple):
    flags: int
    removed: int


class StatsReply(NamedTuple):
    length: int
    delayed: int
    reserved: int
    meta: list[Any]


class MaintainReply(NamedTuple):
    flags: int
    more: int
    outbox: int
    messages: int
    bytes: int


class PutReply(NamedTuple):
    flags: int
    now: int
    created: int
    queue_id: bytes | str
    backlog: Backlog | None
    ids: list[Any]

    ROW = ("id",)

    @classmethod
    def of(cls, raw: list[Any], backlog: bool) -> PutReply:
        if backlog:
            end = 4 + BACKLOG_VALUES
            return cls(raw[0], raw[1], raw[2], raw[3], Backlog(*raw[4:end]), raw[end:])
        return cls(raw[0], raw[1], raw[2], raw[3], None, raw[4:])


class ReserveReply(NamedTuple):
    flags: int
    now: int
    next_at: int
    backlog: Backlog | None
    messages: list[Any]

    ROW = ("id", "record", "deliveries")

    @classmethod
    def of(cls, raw: list[Any], backlog: bool) -> ReserveReply:
        if backlog:
            end = 3 + BACKLOG_VALUES
            return cls(raw[0], raw[1], raw[2], Backlog(*raw[3:end]), raw[end:])
        return cls(raw[0], raw[1], raw[2], None, raw[3:])


class PeekReply(NamedTuple):
    flags: int
    now: int
    messages: list[Any]

    ROW = ("id", "record", "state")

    @classmethod
    def of(cls, raw: list[Any]) -> PeekReply:
        return cls(raw[0], raw[1], raw[2:])


class SettleReply(NamedTuple):
    flags: int
    statuses: list[int]

    ROW = ("status",)

    @classmethod
    def of(cls, raw: list[Any]) -> SettleReply:
        return cls(raw[0], raw[1:])


class DeleteReserveReply(NamedTuple):
    flags: int
    now: int
    next_at: int
    status: int
    messages: list[Any]

    ROW = ("id", "record", "deliveries")

    @classmethod
    def of(cls, raw: list[Any]) -> DeleteReserveReply:
        return cls(raw[0], raw[1], raw[2], raw[3], raw[4:])


class GetReply(NamedTuple):
    record: bytes
    status: bytes | str
    state: bytes | str
    time: int


class TouchReply(NamedTuple):
    reservation_id: bytes | str
    deadline: int
    timeout: int


class ClaimReply(NamedTuple):
    flags: int
    now: int
    next_at: int
    active: int
    deliveries: list[Any]

    ROW = ("member", "message_id", "subscriber_id", "url", "token", "record", "headers", "hops", "name")

    @classmethod
    def of(cls, raw: list[Any]) -> ClaimReply:
        return cls(raw[0], raw[1], raw[2], raw[3], raw[4:])


class ReportReply(NamedTuple):
    flags: int
    applied: int
    next_at: int


REPLIES: dict[str, type] = {
    "configure": QueueReply, "info": QueueReply, "clear": ClearReply, "maintain": MaintainReply,
    "put": PutReply, "put_ready": PutReply, "reserve": ReserveReply, "reserve_ready": ReserveReply,
    "delete_reserved": SettleReply, "peek": PeekReply, "settle": SettleReply,
    "delete_reserve": DeleteReserveReply,
    "get": GetReply, "touch": TouchReply, "push_claim": ClaimReply, "push_report": ReportReply,
    "stats": StatsReply,
}
"""Script verb -> the decoder of its reply (the header test walks this)."""


def rows(reply: Any) -> zip[tuple[Any, ...]]:
    """A reply's flat tail (its last field) as one tuple of ``ROW`` values per item."""
    it = iter(reply[-1])
    return zip(*[it] * len(reply.ROW))

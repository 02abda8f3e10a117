"""Engine errors: HTTP-agnostic, each with a stable ``code``.

Scripts that act on one item fail with ``redis.error_reply("CODE detail")``; ``from_reply`` turns
such a reply into the matching class. Every contract renders these in its own envelope (one table
in ``ferrymq.http.errors``); nothing here knows about HTTP.
"""

from __future__ import annotations


class EngineError(Exception):
    """Base of every error the engine raises on purpose."""

    code = "ERROR"

    def __init__(self, message: str = "", **details: object) -> None:
        super().__init__(message or self.__class__.__doc__ or self.code)
        self.message = str(self.args[0])
        self.details = details


class QueueNotFound(EngineError):
    """Queue not found."""

    code = "QUEUE_NOT_FOUND"


class MessageNotFound(EngineError):
    """Message not found."""

    code = "NOT_FOUND"


class NotReserved(EngineError):
    """Message is not reserved, or the reservation id is no longer current."""

    code = "NOT_RESERVED"


class InvalidArgument(EngineError):
    """An argument is out of range or of the wrong type. ``field`` names it."""

    code = "BADARG"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, field=field)
        self.field = field


class TooLarge(InvalidArgument):
    """A message or a batch is over a size limit."""

    code = "TOO_LARGE"


class AlertNotFound(EngineError):
    """Alert not found."""

    code = "ALERT_NOT_FOUND"


class AlreadyExists(EngineError):
    """The queue already exists."""

    code = "EXISTS"


class DeliveryPaused(EngineError):
    """Delivery is paused on this queue."""

    code = "PAUSED"


class QuotaExceeded(EngineError):
    """The project is at (or over) one of its quotas; the call wrote nothing. ``quota`` names it
    (queues, messages, bytes, subscriptions, ids_per_request), ``limit`` is its value."""

    code = "QUOTA"

    def __init__(self, quota: str, limit: int) -> None:
        what = {"ids_per_request": "message ids per request"}.get(quota, quota)
        super().__init__(f"The project's quota is exceeded: at most {limit} {what}", quota=quota, limit=limit)
        self.quota, self.limit = quota, limit


class Unavailable(EngineError):
    """Redis cannot be reached (or did not answer in time); the call may be retried."""

    code = "UNAVAILABLE"


class NotReplicated(EngineError):
    """Fewer replicas than asked for (``min_replicas_ack``) confirmed a write in time. The write
    was made on the primary and may well be kept, but it may not survive a failover: the caller
    must not take it as durable (retrying a put may store the message twice)."""

    code = "NOT_REPLICATED"


class Changed(EngineError):
    """A setting changed between the read and the write of a read-modify-write; the engine
    reads it again and retries (callers see it only if that keeps happening)."""

    code = "CHANGED"


class ConfigurationError(EngineError):
    """The engine was set up with something it cannot work with."""

    code = "CONFIG"


_BY_CODE: dict[str, type[EngineError]] = {
    cls.code: cls for cls in (QueueNotFound, MessageNotFound, NotReserved, AlreadyExists, DeliveryPaused, Changed)
}
SCRIPT_ERROR_CODES = frozenset({*_BY_CODE, InvalidArgument.code, QuotaExceeded.code})
"""Codes a script may reply with (checked against every script's ``Errors:`` header)."""


def from_reply(text: str) -> EngineError | None:
    """Map a script's ``"CODE detail"`` error reply to an engine error, or None if it is not ours.
    ``"BADARG <field> <message>"`` becomes an InvalidArgument naming the field."""
    code, _, detail = text.partition(" ")
    if code == InvalidArgument.code:
        field, _, message = detail.partition(" ")
        return InvalidArgument(field, message)
    if code == QuotaExceeded.code:  # "QUOTA <quota> <limit>"
        quota, _, limit = detail.partition(" ")
        return QuotaExceeded(quota, int(limit) if limit.isdigit() else 0)
    cls = _BY_CODE.get(code)
    if cls is None:
        return None
    return cls(detail) if detail else cls()

"""Values the engine takes and returns. Times: seconds (float) for durations, ms since the epoch
for instants, as Redis stores them."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from .limits import Quotas

READY, DELAYED, RESERVED = "ready", "delayed", "reserved"


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message to put. ``None`` means the queue's default. ``available_at`` (ms since the
    epoch, by the engine's clock) schedules it at a moment instead of after a ``delay``."""

    body: bytes | str
    timeout: float | None = None
    delay: float | None = None
    expires_in: float | None = None
    content_type: str = ""
    available_at: int | None = None


@dataclass(frozen=True, slots=True)
class Message:
    """A stored message as reserve, peek and get return it."""

    id: str
    body: bytes
    timeout: float
    """Seconds: the current reservation's timeout, else the message's own."""
    reserved_count: int
    """Deliveries so far (this one included, for reserve)."""
    enqueued_at: int
    expires_at: int
    content_type: str = ""
    status: str = READY
    reservation_id: str | None = None
    reserved_until: int | None = None
    available_at: int | None = None
    """For a delayed message: when it becomes visible."""

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


# The slots' own setters, in field order (a field added to Message breaks this unpacking at import).
(_set_id, _set_body, _set_timeout, _set_reserved_count, _set_enqueued_at, _set_expires_at, _set_content_type,
 _set_status, _set_reservation_id, _set_reserved_until, _set_available_at) = (
    Message.__dict__[f.name].__set__ for f in fields(Message))


def reserved_message(
    id: str, body: bytes, timeout: float, reserved_count: int, enqueued_at: int, expires_at: int,
    content_type: str, reservation_id: str, reserved_until: int,
) -> Message:
    """``Message(..., status=RESERVED, ...)`` in half the time: the frozen ``__init__`` sets each
    field through ``object.__setattr__`` by name, and a reserve of 100 builds 100 (after the
    reply itself, the main cost of a GET of 100). The same object: equal, frozen, hashable."""
    message = object.__new__(Message)
    _set_id(message, id)
    _set_body(message, body)
    _set_timeout(message, timeout)
    _set_reserved_count(message, reserved_count)
    _set_enqueued_at(message, enqueued_at)
    _set_expires_at(message, expires_at)
    _set_content_type(message, content_type)
    _set_status(message, RESERVED)
    _set_reservation_id(message, reservation_id)
    _set_reserved_until(message, reserved_until)
    _set_available_at(message, None)
    return message


@dataclass(frozen=True, slots=True)
class Reservation:
    """A reservation after touch: its new id and deadline."""

    reservation_id: str
    reserved_until: int
    timeout: float


@dataclass(frozen=True, slots=True)
class Subscriber:
    """Where a push queue delivers: an http(s) URL (POSTed the body, with ``headers``), or
    ``ironmq:///queue`` (put into that queue of the same project)."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    name: str = ""
    """IronMQ v3 names its subscribers: a named one is added, replaced and removed by its name,
    an unnamed one by its url."""


@dataclass(frozen=True, slots=True)
class PushConfig:
    """A push queue: messages posted to it go to its subscribers, never to consumers."""

    subscribers: tuple[Subscriber, ...]
    type: str = "multicast"
    """multicast: every subscriber gets each message; unicast: one does (tried in turn)."""
    retries: int = 3
    """Retries after the first attempt (multicast: per subscriber; unicast: rounds)."""
    retries_delay: float = 60.0
    error_queue: str = ""
    """Queue (same project) that receives one message per delivery out of retries."""


@dataclass(frozen=True, slots=True)
class Alert:
    """Posts an alert message to ``queue`` when the size crosses ``trigger`` (fixed) or a
    multiple of it (progressive) in ``direction``; at most once per ``snooze`` seconds."""

    type: str
    trigger: int
    queue: str
    direction: str = "asc"
    snooze: int = 0
    id: str = ""


@dataclass(frozen=True, slots=True)
class QueueSettings:
    """The effective settings of a queue (see ``limits.QueueDefaults`` for their meaning)."""

    timeout: float
    delay: float
    expires_in: float
    max_deliveries: int
    dead_letter_queue: str
    retry_delay: float
    paused: bool
    push: PushConfig | None = None
    alerts: tuple[Alert, ...] = ()
    requeue: str = "end"
    partitions: int = 1


@dataclass(frozen=True, slots=True)
class QueueHead:
    """What ``QueueInfo`` and ``QueueDetails`` start with: the queue, its id, when it was created
    and last changed (ms), its settings."""

    project: str
    name: str
    id: str
    created_at: int
    updated_at: int
    settings: QueueSettings


@dataclass(frozen=True, slots=True)
class QueueInfo(QueueHead):
    """A queue's settings and exact counts (``info``)."""

    ready: int
    delayed: int
    reserved: int
    total_messages: int
    """Messages ever put (clear does not reset it)."""
    pushing: int = 0
    """Push-queue messages whose deliveries are not finished."""
    bytes: int = 0
    """Memory the stored messages take in Redis (Redis's sampled estimate; 0 where unknown)."""
    oldest_at: int = 0
    """When the message at the head of the queue was put (ms; 0 if unknown)."""
    counters: dict[str, int] = field(default_factory=dict)
    """Monotonic counts since creation: reserved, deleted, expired, dead_lettered, cleared."""
    attrs: dict[str, str] = field(default_factory=dict)
    """Opaque values stored for a contract (e.g. a Cloudflare consumer); the engine never reads them."""
    created: bool = False
    """True when this call created the queue."""
    stuck: int = 0
    """Transfers set aside: dead letters, error-queue or alert messages that could not be moved
    to their queue (see ``stuck_reason``; ``retry_stuck`` moves them again)."""
    stuck_reason: str = ""
    """Why the latest of them could not be moved."""

    @property
    def size(self) -> int:
        """Every undeleted, unexpired message: ready + delayed + reserved, and on a push queue
        the messages whose deliveries are not finished."""
        return self.ready + self.delayed + self.reserved + self.pushing


@dataclass(frozen=True, slots=True)
class Backlog:
    """A queue's unacknowledged messages, as pull reports them after taking its batch."""

    ready: int
    delayed: int
    reserved: int
    bytes: int
    oldest_at: int

    @property
    def size(self) -> int:
        return self.ready + self.delayed + self.reserved


@dataclass(frozen=True, slots=True)
class Pulled:
    messages: list[Message]
    backlog: Backlog


@dataclass(frozen=True, slots=True)
class Pushed:
    ids: list[str]
    backlog: Backlog


@dataclass(frozen=True, slots=True)
class QueueRef:
    """A queue as the registry lists it."""

    project: str
    name: str
    id: str


@dataclass(frozen=True, slots=True)
class ProjectUsage:
    """A project's quotas and what it uses of them. Queues and subscriptions are counted now;
    messages and bytes are the sweeper's sums (``measured_at``: when, 0 if never), and ``over``
    names the quota the sweeper found the project over ("" if none): its puts are refused."""

    project: str
    limits: Quotas
    custom: frozenset[str]
    """The quotas the project has its own limit for (the others are the engine's)."""
    queues: int
    subscriptions: int
    messages: int
    bytes: int
    measured_at: int
    over: str


@dataclass(frozen=True, slots=True)
class QueueStats:
    """Counts and counters of a queue read without maintenance (one pipeline for many queues):
    messages that expired since the queue was last maintained may still be counted."""

    project: str
    name: str
    ready: int
    delayed: int
    reserved: int
    counters: dict[str, int] = field(default_factory=dict)
    """put (messages ever put), reserved (deliveries), deleted, expired, dead (dead-lettered or
    dropped out of deliveries), cleared; push queues: push_delivered (a subscriber took the
    message), push_failed (failed attempts, each retried or final), push_errors (deliveries that
    ran out of retries: one per subscriber in multicast, one per message in unicast)."""
    stuck: int = 0
    """Transfers set aside (see ``QueueInfo.stuck``)."""

    @property
    def size(self) -> int:
        return self.ready + self.delayed + self.reserved


@dataclass(frozen=True, slots=True)
class QueueDetails(QueueHead):
    """A queue's configuration without its counts (cheap to list for many queues)."""

    attrs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Settled:
    """Outcome of a batch of deletes and releases: one status per item, in request order."""

    deleted: list[str]
    """``ok``, ``not_found`` or ``not_reserved`` per delete."""
    released: list[str]
    """``ok``, ``noop`` (was not reserved and no reservation id was given), ``not_found`` or
    ``not_reserved`` per release."""


@dataclass(frozen=True, slots=True)
class SweepReport:
    """What one pass of ``sweep`` did."""

    queues: int = 0
    busy: int = 0
    """Queues that hit a maintenance bound (more work left for the next pass)."""
    transfers: int = 0
    failed: tuple[tuple[str, str, Exception], ...] = ()
    """(project, queue, error) of each queue whose maintenance failed; the others were swept."""


QUEUE_EVENTS = ("queue.created", "queue.deleted", "queue.purged", "message.dead_lettered")
"""Events the engine emits by itself; a contract may emit more (e.g. "consumer.created")."""


@dataclass(frozen=True, slots=True)
class Subscription:
    """Routes events of one queue into another queue, as JSON messages (see ``verbs.events.event_body``)."""

    id: str
    name: str
    enabled: bool
    source_queue: str | None
    """The queue whose events are routed; None for a source this server never emits (stored only)."""
    events: tuple[str, ...]
    destination_queue: str
    created_at: int = 0
    modified_at: int = 0
    attrs: dict[str, object] = field(default_factory=dict)
    """The contract's own fields (e.g. Cloudflare's source object), stored verbatim."""


@dataclass(frozen=True, slots=True)
class PushStatus:
    """One subscriber's delivery of a push-queue message."""

    id: str
    """Subscriber message id: the message id and a two-digit subscriber index."""
    url: str
    status: str
    """queued, reserved (being pushed, or answered 202 and waiting for its acknowledgement),
    retrying, deleted (delivered or acknowledged), error (out of retries)."""
    status_code: int | None
    retries_remaining: int
    retries_delay: float
    error: str = ""
    name: str = ""
    """The subscriber's name, if it has one."""


@dataclass(frozen=True, slots=True)
class PushDelivery:
    """A push a pusher claimed: POST ``body`` to ``url`` (or forward it to an ironmq:/// queue),
    then report the outcome with ``member`` and ``token``."""

    project: str
    queue: str
    member: str
    message_id: str
    subscriber_id: str
    url: str
    token: str
    body: bytes
    content_type: str
    timeout: float
    headers: dict[str, str] = field(default_factory=dict)
    hops: int = 0
    """Transfers the message went through (forwards, error queues): a forward adds one."""
    subscriber_name: str = ""


@dataclass(frozen=True, slots=True)
class PushClaim:
    deliveries: list[PushDelivery]
    next_at: int | None
    """When the queue's next delivery event is due (ms), if any."""
    active: bool
    """Still a push queue, or deliveries pending: keep it where pushers look."""

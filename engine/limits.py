"""Every limit and default of the engine, in one place.

Times are seconds in the Python API and milliseconds inside Redis. The HTTP contracts apply their
own, sometimes tighter, ranges on top of these (each contract's notes give them).
"""

from __future__ import annotations

from dataclasses import dataclass

DAY = 86_400


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds the engine enforces before anything is written. Override per engine if needed."""

    max_batch: int = 100
    """Messages per put, reserve, peek or multi-delete call."""

    max_body_bytes: int = 256 * 1024
    """Size of one message body (IronMQ's largest plan; Cloudflare checks its own 128 KB)."""

    max_timeout: float = DAY
    """Longest reservation (IronMQ: 86,400 s; Cloudflare: 12 h)."""

    max_delay: float = 7 * DAY
    """Longest delay before a message becomes visible, on put and on release."""

    max_expires_in: float = 30 * DAY
    """Longest a message may live (IronMQ: 30 days; Cloudflare retention: 14 days)."""

    max_wait: float = 30.0
    """Longest long poll of one reserve call."""

    max_deliveries: int = 10_000
    """Highest delivery limit a queue may set before dead-lettering (0 = unlimited)."""

    max_name_length: int = 255
    """Queue and project names: 1..255 characters, no control characters."""

    max_alert_trigger: int = 1_000_000_000
    """Largest queue size an alert may watch for (stored numbers stay well inside 64 bits)."""

    max_alert_snooze: int = 30 * DAY
    """Longest snooze of an alert, in seconds."""

    max_subscription_bytes: int = 16 * 1024
    """Size of one stored event subscription (its JSON, the contract's own fields included):
    every event reads them all."""

    max_partitions: int = 16
    """Partitions of one queue (each its own hash slot: on a cluster, its own master if there
    are enough). Reads over all partitions cost one script call each, in one pipelined round."""

    maintenance_batch: int = 250
    """Lapsed reservations, due delayed and expired messages handled per step of one script call.
    Bounds the work (and latency) of every call: at most a few K message moves, a few ms."""


LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class QueueDefaults:
    """Settings of a queue that was created without them (e.g. by its first put)."""

    timeout: float = 60.0
    """Reservation timeout of a message that names none (IronMQ: 60 s)."""

    delay: float = 0.0
    """Delay of a message that names none."""

    expires_in: float = 7 * DAY
    """Lifetime of a message that names none (IronMQ: 7 days)."""

    max_deliveries: int = 0
    """Deliveries after which a message is dead-lettered or dropped; 0 = never."""

    dead_letter_queue: str = ""
    """Queue (same project) that receives dead letters; "" = drop them."""

    retry_delay: float = 0.0
    """Delay of a release that names none (Cloudflare: the consumer's retry_delay)."""

    paused: bool = False
    """While paused, reserve delivers nothing (puts are still stored)."""

    requeue: str = "end"
    """Where a lapsed or released message goes back: "end" of the queue (IronMQ v1, Cloudflare)
    or "front" (IronMQ v3: it is the next one handed out)."""

    partitions: int = 1
    """Independent sets of keys (hash slots) a queue's messages spread over; 1 = one slot, FIFO
    over the whole queue. With more, FIFO holds per partition (or per partition key)."""


DEFAULTS = QueueDefaults()


@dataclass(frozen=True, slots=True)
class Quotas:
    """What one project may hold, so that no tenant fills Redis (it runs noeviction) for all.
    These are an engine's defaults (the server's: ``FERRYMQ_QUOTAS``); a project may have its own
    (``Engine.set_project_limits``, ``ferrymq projects set-limits``). How each is enforced:
    SECURITY.md, "Quotas"."""

    queues: int = 10_000
    """Queues (Cloudflare's limit per account). Checked atomically where a queue is created."""

    messages: int = 10_000_000
    """Messages queued in all its queues (ready, delayed, reserved, being pushed). Summed by the
    sweeper; once over, puts are refused until it is under again (a bounded overshoot)."""

    bytes: int = 1024**3
    """Memory of its queued messages as Redis counts it (MEMORY USAGE of the records), likewise."""

    subscriptions: int = 100
    """Event subscriptions (every event of the project reads them all)."""

    ids_per_request: int = 1_000
    """Message ids one call may settle (Cloudflare ack and purge); at least one engine batch."""


QUOTAS = Quotas()
QUOTA_NAMES = tuple(Quotas.__dataclass_fields__)
MIN_IDS_PER_REQUEST = 100
"""A call of one engine batch (``Limits.max_batch``) is one script call: always allowed."""

SWEEP_INTERVAL = 1.0
"""Seconds between two sweeps of the same queue by the background sweeper."""

DEDUPE_WINDOW = 3600.0
"""Seconds a transfer reference is remembered by its target queue (idempotent re-drives)."""

LAYOUT_TTL = 1.0
"""Seconds a process trusts the partitions it read for a queue before reading them again (one
HGET). A change made elsewhere is seen within it: puts go by the old count meanwhile, into
partitions that reads still cover (a queue's partitions are never dropped while it lives); a
message id naming a partition the process does not know reads the layout again at once."""
UNCOMMON_TTL = 10.0
"""Seconds a process sends a queue's puts, reserves and deletes straight to their full scripts
after a common case's script (lua/*_ready-*.lua, delete_reserved) answered that the queue's
settings need them (alerts, a push queue, a default delay, a quota mark): one call each instead
of two. Only speed depends on it: after a change of settings, the common case returns within it."""

STUCK_KEPT = 100
"""Transfers a queue keeps set aside (outbox entries that could not be moved, shown to
operators); past that the oldest are dropped (``counters["set_aside"]`` still counts them)."""

OUTBOX_PAGE = 100
"""Outbox entries a drain reads in one LRANGE. A page shorter than this was the last: the drain
stops without reading the (empty) outbox again."""

MAX_TRANSFER_HOPS = 5
"""Transfers one message may go through: ``ironmq:///`` forwards and error-queue messages (a
client's put is hop 0). A forward or error-queue message past it is dropped and counted
(``counters["hops_dropped"]``): loops are refused when configured, this stops any that a
configuration made elsewhere (another version, a hand edit) lets through."""

LOOP_CHECK_QUEUES = 200
"""Queues read at most when a configuration change looks for a loop of transfers (one HMGET
each, pipelined); a larger graph is not walked further (the hop limit still holds)."""

LIST_PAGE_MAX = 1000
"""Most queues returned by one list call."""

ID_FLOOR_TTL = 7 * DAY
"""Seconds a deleted queue's last message id is kept, so a queue re-created under the same name
never reuses an id even when created again within the same millisecond."""

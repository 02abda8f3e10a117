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


DEFAULTS = QueueDefaults()

SWEEP_INTERVAL = 1.0
"""Seconds between two sweeps of the same queue by the background sweeper."""

DEDUPE_WINDOW = 3600.0
"""Seconds a transfer reference is remembered by its target queue (idempotent re-drives)."""

LIST_PAGE_MAX = 1000
"""Most queues returned by one list call."""

ID_FLOOR_TTL = 7 * DAY
"""Seconds a deleted queue's last message id is kept, so a queue re-created under the same name
never reuses an id even when created again within the same millisecond."""

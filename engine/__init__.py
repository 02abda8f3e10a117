"""FerryMQ's queue engine: every state change of a message is one atomic Lua script over Redis.

    from ferrymq.engine import AsyncEngine, Engine, NewMessage

Holds all the queue logic: the verbs (``verbs/``, a module a concern, one body for the sync and
asyncio facades in ``sync.py`` and ``aio.py``), the key layout (``keys.py``), limits and defaults
(``limits.py``), errors (``errors.py``), the script loader (``scripts.py``, which reads
``ferrymq.lua`` as package data), and the background workers (sweeper, pusher, notifier).

May import: the standard library, redis, orjson, httpx/httpcore (push delivery) and its own
modules. Never ``ferrymq.http`` nor ``ferrymq.server``: the engine is a library that knows nothing
of the wire contracts or of the process running them (``tests/test_layout.py`` checks it).
"""

from ._facade import is_transient
from .aio import AsyncEngine, AsyncQueue
from .clock import FakeClock, RedisClock, SystemClock
from .egress import EgressPolicy
from .errors import (
    AlertNotFound,
    AlreadyExists,
    Changed,
    ConfigurationError,
    DeliveryPaused,
    EngineError,
    InvalidArgument,
    MessageNotFound,
    NotReplicated,
    NotReserved,
    QueueNotFound,
    QuotaExceeded,
    TooLarge,
    Unavailable,
)
from .limits import DEFAULTS, LIMITS, QUOTAS, Limits, QueueDefaults, Quotas
from .models import (
    QUEUE_EVENTS,
    Alert,
    Backlog,
    Message,
    NewMessage,
    Pulled,
    PushClaim,
    PushConfig,
    PushDelivery,
    Pushed,
    PushStatus,
    ProjectUsage,
    QueueDetails,
    QueueInfo,
    QueueRef,
    QueueSettings,
    QueueStats,
    Reservation,
    Settled,
    Subscriber,
    Subscription,
    SweepReport,
)
from .notifier import Notifier
from .pusher import Pusher
from .sweeper import Sweeper
from .sync import Engine, Queue

__all__ = [
    "DEFAULTS", "LIMITS", "QUEUE_EVENTS", "QUOTAS", "ProjectUsage", "QuotaExceeded", "Quotas", "Alert", "AlertNotFound", "AlreadyExists", "AsyncEngine",
    "AsyncQueue", "Backlog", "Changed", "ConfigurationError", "DeliveryPaused", "EgressPolicy", "Engine", "EngineError",
    "FakeClock", "InvalidArgument", "Limits", "Message", "MessageNotFound", "NewMessage",
    "NotReplicated", "NotReserved", "Notifier", "Pulled", "PushClaim", "PushConfig", "PushDelivery", "PushStatus",
    "Pushed", "Pusher", "Queue", "QueueDefaults", "QueueDetails", "QueueInfo", "QueueNotFound",
    "QueueRef", "QueueSettings", "QueueStats", "RedisClock", "Reservation", "Settled", "Subscriber",
    "Subscription", "SweepReport", "Sweeper", "SystemClock", "TooLarge", "Unavailable", "is_transient",
]

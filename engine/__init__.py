"""FerryMQ's queue engine: every state change of a message is one atomic Lua script over Redis.

    from ferrymq.engine import AsyncEngine, Engine, NewMessage

See ``verbs.py`` for the verbs, ``keys.py`` for the key layout, ``lua/`` for the scripts.
"""

from .aio import AsyncEngine, AsyncQueue
from .clock import FakeClock, RedisClock, SystemClock
from .errors import (
    AlreadyExists,
    ConfigurationError,
    DeliveryPaused,
    EngineError,
    InvalidArgument,
    MessageNotFound,
    NotReserved,
    QueueNotFound,
    TooLarge,
    Unavailable,
)
from .limits import DEFAULTS, LIMITS, Limits, QueueDefaults
from .models import (
    QUEUE_EVENTS,
    Backlog,
    Message,
    NewMessage,
    Pulled,
    Pushed,
    QueueDetails,
    QueueInfo,
    QueueRef,
    QueueSettings,
    QueueStats,
    Settled,
    Subscription,
)
from .notifier import Notifier
from .sweeper import Sweeper
from .sync import Engine, Queue
from .verbs import Reservation, SweepReport

__all__ = [
    "DEFAULTS", "LIMITS", "QUEUE_EVENTS", "Subscription", "AlreadyExists", "Backlog", "Pulled", "Pushed", "AsyncEngine", "AsyncQueue", "ConfigurationError",
    "DeliveryPaused", "Engine", "EngineError", "FakeClock", "InvalidArgument", "Limits", "Message",
    "MessageNotFound", "NewMessage", "NotReserved", "Notifier", "Queue", "QueueDefaults",
    "QueueDetails", "QueueInfo", "QueueNotFound", "QueueRef", "QueueSettings", "QueueStats", "RedisClock", "Reservation",
    "Settled", "SweepReport", "Sweeper", "SystemClock", "TooLarge", "Unavailable",
]

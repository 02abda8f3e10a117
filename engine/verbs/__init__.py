"""The engine's verbs, written once for the sync and the async API.

Each verb is a generator: it validates its arguments (before anything is written), yields the
steps of ``core`` (normally one script call), and returns the decoded result. The facades
(``sync.Queue``, ``aio.AsyncQueue``, ``sync.Engine``, ``aio.AsyncEngine``) run those steps with
their client. Each module holds one concern, as a mixin; the two classes here compose them (the
mixins call one another through ``self``):

    QueueVerbs (one queue)
      queues.py      create update ensure info clear delete    (and safe changes of settings)
      messages.py    put push reserve pull peek get delete_message delete_messages touch release
                     settle delete_and_reserve release_reserved forward
      push.py        set_push update_push add_subscribers remove_subscribers replace_subscribers
                     claim_pushes report_push ack_push ack_push_by_token push_status
      alerts.py      add_alerts remove_alert remove_alerts replace_alerts
      outbox.py      maintain retry_stuck                       (transfers to other queues)
      partitions.py  a queue's partitions: layout, routing, one round over them all
      events.py      the events a queue emits
      quotas.py      a project's quotas, checked by the verbs that add to it
    EngineVerbs (across queues)
      registry.py    list_queues list_details count_queues find_queue projects stats sweep
                     due_push_queues lease
      events.py      put_subscription get_subscription list_subscriptions delete_subscription emit
      quotas.py      project_usage set_project_limits
    context.py       what every verb needs: Context (prefix, clock, limits), Layout, the bases

The README's Verbs table lists the same verbs (``tests/engine/test_verbs_table.py``).
"""

from __future__ import annotations

from .alerts import Alerts
from .context import Context, Settings
from .events import QueueEvents, Subscriptions
from .messages import Messages
from .outbox import Outbox
from .partitions import Partitions
from .push import PushQueues
from .queues import QueueSettings
from .quotas import ProjectQuotas, QueueQuotas
from .registry import Registry

__all__ = ["Context", "EngineVerbs", "QueueVerbs", "Settings"]


class QueueVerbs(QueueSettings, Messages, PushQueues, Alerts, Outbox, Partitions, QueueEvents, QueueQuotas):
    """The verbs of one queue. Cheap to build: it only computes key names."""

    __slots__ = ()


class EngineVerbs(Registry, Subscriptions, ProjectQuotas):
    """Verbs that span queues: the registry and the sweeper, event subscriptions, quotas."""

    queue_verbs = QueueVerbs

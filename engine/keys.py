"""Every Redis key name FerryMQ uses, in one place.

All keys of one queue share the hash tag ``{project/queue}`` so that every script touching a
queue runs in one Redis Cluster slot. Project and queue names are percent-escaped inside the tag
(``%``, ``{``, ``}`` and ``/``): a ``}`` in a name would otherwise end the tag early, and an
unescaped ``/`` would make ``a/b`` + ``c`` and ``a`` + ``b/c`` the same queue.

Per-project keys (the queue registry) carry the tag ``{project}``; the only global key is the
set of projects, read by the sweeper.
"""

from __future__ import annotations

import functools
from typing import NamedTuple, TypeVar

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

_ESCAPES = str.maketrans({"%": "%25", "{": "%7B", "}": "%7D", "/": "%2F"})


def escape(name: str) -> str:
    """Escape a project or queue name for use inside a hash tag."""
    return name.translate(_ESCAPES)


class QueueKeys(NamedTuple):
    """The keys of one queue, in the order most scripts take them (see lua/*.lua headers); each
    named after its field (``queue_keys``)."""

    meta: str  # hash: settings, counters, id
    ready: str  # list: ids in FIFO order (may hold ids of deleted messages: "ghosts")
    delayed: str  # zset: id -> due time (ms); and a member at +inf that is no id (MESSAGE_SCORES)
    reserved: str  # zset: id -> reservation deadline (ms); the same
    expiry: str  # zset: id -> expire-at (ms), only for messages the FIFO order cannot expire; the same
    msg: str  # hash: id -> immutable record "enq|timeout|expire|ctype\n" .. body
    dlv: str  # hash: id -> delivery state "count|token|timeout|expire" once delivered
    outbox: str  # list: pending cross-queue work (dead letters, error-queue and alert messages)
    stuck: str  # list: outbox entries that could not be moved, set aside for an operator
    push: str  # zset: push delivery ("<id>|<n>", "<id>|u" for unicast) -> next event (ms)
    pstatus: str  # hash: message id -> push status record (JSON), for push-queue messages
    dedupe: str  # zset: outbox reference -> time, makes transfers into this queue idempotent
    idfloor: str  # string: last message id of a deleted incarnation (expires), so ids never repeat
    notify: str  # pub/sub channel: "messages became ready"

    @property
    def core(self) -> list[str]:
        """The ten keys of every script that changes message state."""
        return [self.meta, self.ready, self.delayed, self.reserved, self.expiry, self.msg, self.dlv, self.outbox,
                self.push, self.pstatus]


# The score range of the messages in `delayed`, `reserved` and `expiry`: below +inf, where each holds
# a member that keeps it a skip list (lua/includes/queue.lua TABLE_MEMBER). For ZCOUNT and
# ZRANGEBYSCORE.
MESSAGE_SCORES = ("-inf", "(+inf")
# The field of `msg` and `dlv` that is no message: it keeps them hash tables (lua/includes/record.lua).
TABLE_FIELD = b""


def tokens_key(prefix: str) -> str:
    """hash: sha256(token) hex -> project (random tokens made by `ferrymq tokens add`)."""
    return f"{prefix}:tokens"


def chosen_tokens_key(prefix: str) -> str:
    """hash: scrypt(token, salt) hex -> project (tokens a person chose: `tokens add --token`)."""
    return f"{prefix}:tokens:chosen"


def token_salt_key(prefix: str) -> str:
    """string: the deployment's scrypt salt (hex) for chosen tokens, set once."""
    return f"{prefix}:tokens:salt"


def push_index_key(prefix: str) -> str:
    """zset: "project\tqueue" -> when pushers should look at that push queue next (ms). Best
    effort (updated after the queue's own scripts, which cannot touch another slot)."""
    return f"{prefix}:pushq"


def lease_key(prefix: str, name: str) -> str:
    """A deployment-wide lease (e.g. which process runs the sweeper)."""
    return f"{prefix}:lease:{name}"


class ProjectKeys(NamedTuple):
    queues: str  # zset: queue name (score 0, so ordered by name)
    names: str  # hash: queue name -> queue id
    ids: str  # hash: queue id -> queue name
    subscriptions: str  # hash: subscription id -> JSON (events routed to queues)
    projects: str  # set: every project that has queues (global)
    limits: str  # hash: quota name -> the project's own limit (absent: the engine's default)
    usage: str  # hash: messages, bytes, measured (ms), over ("" or "<quota> <limit>"): the sweeper's sums


K = TypeVar("K", QueueKeys, ProjectKeys)


@functools.lru_cache(maxsize=4096)  # a queue's keys never change; building them is ~5 µs a request
def queue_keys(prefix: str, project: str, queue: str, partition: str = "") -> QueueKeys:
    """A queue's keys; with ``partition`` (a tag suffix from ``partition_tags``), those of that
    partition of a partitioned queue. Partition 0 is the queue's own keys, so a queue of one
    partition has the same keys as before partitions existed. Every partition publishes on the
    queue's one channel (a channel is no key: any node may publish it), so a long poll on the
    queue wakes on any partition."""
    tag = f"{escape(project)}/{escape(queue)}"
    base = f"{prefix}:{{{tag}/{partition}}}:" if partition else f"{prefix}:{{{tag}}}:"
    return _named(QueueKeys, base, notify=f"{prefix}:{{{tag}}}:notify")


def partition_tags(prefix: str, project: str, queue: str, first: int, count: int) -> list[str]:
    """Tag suffixes of partitions ``first`` .. ``first + count - 1`` of a queue that gets
    ``first + count`` = P partitions. Cut the slot ring into P equal arcs; partition 0's slot
    (the queue's own keys) lies in one, and partition i's suffix "i.n" takes the smallest n whose
    slot lies near the middle of the i-th arc after it. A cluster's masters hold contiguous slot
    ranges (``redis-cli --cluster create`` cuts the ring evenly), so with P masters each gets
    one partition, and with more or fewer the partitions still spread evenly over the ring.
    The suffixes are stored with the queue (meta ``parts``): a partition keeps its keys when
    the count changes."""
    total = first + count
    arc = REDIS_CLUSTER_HASH_SLOTS / total
    keys = queue_keys.__wrapped__  # ~128 candidate tags a partition: not for the cache
    home = int(key_slot(keys(prefix, project, queue).meta.encode()) // arc)
    window = max(1, int(arc // 8))
    tags = []
    for i in range(first, total):
        low = int(((home + i) % total + 0.5) * arc) - window // 2
        n = 0
        while (key_slot(keys(prefix, project, queue, f"{i}.{n}").meta.encode()) - low) % \
                REDIS_CLUSTER_HASH_SLOTS >= window:
            n += 1
        tags.append(f"{i}.{n}")
    return tags


def project_keys(prefix: str, project: str) -> ProjectKeys:
    return _named(ProjectKeys, f"{prefix}:{{{escape(project)}}}:", projects=f"{prefix}:projects")


def _named(keys: type[K], base: str, **own: str) -> K:
    """The keys of a ``QueueKeys`` or ``ProjectKeys``: each ``base`` + its field's name, but those
    named in ``own``."""
    return keys._make([own[name] if name in own else base + name for name in keys._fields])

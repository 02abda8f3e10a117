"""What every verb needs: the engine's ``Context`` (key prefix, clock, limits, defaults, quotas),
the ``Layout`` of a partitioned queue, and the bases the verb mixins share."""

from __future__ import annotations

import time
import zlib
from typing import TYPE_CHECKING, Any, TypedDict

import orjson

from .. import core
from ..clock import Clock
from ..keys import ProjectKeys, QueueKeys, project_keys, queue_keys
from ..replies import FULL
from ..limits import DEDUPE_WINDOW, LAYOUT_TTL, QUOTAS, UNCOMMON_TTL, Limits, QueueDefaults, Quotas

if TYPE_CHECKING:
    from ferrymq.engine.verbs import QueueVerbs


class Settings(TypedDict, total=False):
    """Queue settings by name (see ``limits.QueueDefaults``); ``None`` leaves one unchanged."""

    timeout: float | None
    delay: float | None
    expires_in: float | None
    max_deliveries: int | None
    dead_letter_queue: str | None
    retry_delay: float | None
    paused: bool | None
    requeue: str | None
    partitions: int | None


class Context:
    """What every verb needs: key prefix, clock, limits, defaults."""

    def __init__(self, prefix: str, clock: Clock, limits: Limits, defaults: QueueDefaults,
                 quotas: Quotas = QUOTAS) -> None:
        self.prefix = prefix
        self.clock = clock
        self.limits = limits
        self.defaults = defaults
        self.quotas = quotas
        self.default_fields = core.default_fields(defaults, limits)
        self.default_fields_json = orjson.dumps(self.default_fields)
        self.dedupe_ms = str(round(DEDUPE_WINDOW * 1000))
        self.k = str(limits.maintenance_batch)
        self._creation_json: dict[tuple[tuple[str, Any], ...], bytes] = {}
        self.layouts: dict[tuple[str, str], Layout] = {}
        """(project, queue) -> its partitions as last read (trusted for LAYOUT_TTL)."""
        self._uncommon: dict[tuple[str, str], float] = {}
        """(a queue's meta key, a common case's script) -> until when the queue's calls skip it:
        it answered FULL for a reason that lasts (alerts, a push queue...; UNCOMMON_TTL)."""

    def layout(self, project: str, name: str) -> Layout | None:
        found = self.layouts.get((project, name))
        return found if found is not None and found.expires > time.monotonic() else None

    def remember(self, verbs: type[QueueVerbs], project: str, name: str, raw: bytes | str | None) -> Layout:
        """The layout read from a queue's meta ``parts``, kept for LAYOUT_TTL (a put keeps its
        round-robin turn across reads); its parts are ``verbs`` of each partition."""
        partitions, tags = core.parse_layout(raw)
        old = self.layouts.get((project, name))
        layout = Layout(self, verbs, project, name, partitions, tags, time.monotonic() + LAYOUT_TTL)
        if old is not None:
            layout.turn, layout.put_turn = old.turn, old.put_turn
        return core.remember_bounded(self.layouts, (project, name), layout, 10_000)  # each is one HGET away

    def forget(self, project: str, name: str) -> None:
        self.layouts.pop((project, name), None)

    def common(self, meta: str, script: str) -> bool:
        """Whether the queue of this meta key tries the common case's ``script`` first."""
        until = self._uncommon.get((meta, script))
        return until is None or until < time.monotonic()

    def full(self, meta: str, script: str, reply: list[Any]) -> bool:
        """Whether the common case's ``script`` answered FULL (its verb's full script must run);
        remembers that for the queue for UNCOMMON_TTL when the reason lasts."""
        if reply[0] != FULL:
            return False
        if reply[1]:  # each forgotten costs one more call
            core.remember_bounded(self._uncommon, (meta, script), time.monotonic() + UNCOMMON_TTL, 10_000)
        return True

    def creation_json(self, settings: Settings | None) -> bytes:
        """The meta fields a queue created by a put starts with: the defaults, then ``settings``
        (a few fixed sets in practice, e.g. a contract's own: encoded once each)."""
        if not settings:
            return self.default_fields_json
        key = tuple(sorted(settings.items()))
        found = self._creation_json.get(key)
        if found is None:
            found = orjson.dumps({**self.default_fields, **core.encode_settings(dict(settings), self.limits, "")})
            if len(self._creation_json) < 64:
                self._creation_json[key] = found
        return found

    def project_keys(self, project: str) -> ProjectKeys:
        return project_keys(self.prefix, project)


class Layout:
    """A queue's partitions as this process knows them: puts go to the first ``partitions``;
    reads cover all of them (``parts``: one QueueVerbs each, partition 0 first), including
    those a lowered count keeps until they drain."""

    __slots__ = ("ctx", "verbs", "project", "name", "partitions", "tags", "expires", "turn", "put_turn", "_parts")

    def __init__(self, ctx: Context, verbs: type[QueueVerbs], project: str, name: str, partitions: int,
                 tags: tuple[str, ...], expires: float) -> None:
        self.ctx, self.verbs, self.project, self.name = ctx, verbs, project, name
        self.partitions, self.tags, self.expires = partitions, tags, expires
        self.turn = self.put_turn = 0
        self._parts: list[QueueVerbs] | None = None

    @property
    def span(self) -> int:
        return 1 + len(self.tags)

    @property
    def parts(self) -> list[QueueVerbs]:
        if self._parts is None:
            self._parts = [self.verbs(self.ctx, self.project, self.name, part=i, tag=tag)
                           for i, tag in enumerate(("", *self.tags))]
        return self._parts

    def next_turn(self, among: int) -> int:
        """Where reserves and push claims start, round-robin over ``among`` partitions, per process."""
        self.turn += 1
        return self.turn % among

    def for_put(self, key: str | None) -> int:
        """The partition a put goes to: by its partition key, else the next in turn (per process)."""
        if key is None:
            self.put_turn += 1
            return self.put_turn % self.partitions
        return zlib.crc32(key.encode("utf-8")) % self.partitions

    def route(self, message_id: str) -> tuple[QueueVerbs | None, str]:
        """The partition a message id names (None: none of this queue's) and the id within it."""
        i, inner = core.partition_of(message_id)
        return (self.parts[i] if i < self.span else None), inner


class QueueBase:
    """What every queue mixin shares: the queue's names and keys, and which partition it is."""

    __slots__ = ("ctx", "project", "name", "keys", "_core_keys", "_put_keys", "_ready_keys", "_take_keys",
                 "_delete_keys", "part")

    def __init__(self, ctx: Context, project: str, name: str, *, part: int | None = None, tag: str = "") -> None:
        self.ctx = ctx
        self.project = core.check_name("project", project, ctx.limits)
        self.name = core.check_name("queue", name, ctx.limits)
        self.keys: QueueKeys = queue_keys(ctx.prefix, project, name, tag)
        self.part = part
        """None: the queue (its verbs look up its partitions); a number: that partition alone."""
        self._core_keys = self.keys.core
        k = self.keys
        self._put_keys = [*self._core_keys, k.dedupe, k.idfloor]
        # The common cases' scripts (lua/put_ready-3.lua, reserve_ready-7.lua, delete_reserved-5.lua)
        self._ready_keys = [k.meta, k.ready, k.msg]
        self._take_keys = [k.meta, k.ready, k.delayed, k.reserved, k.expiry, k.msg, k.dlv]
        self._delete_keys = [k.meta, k.reserved, k.msg, k.dlv, k.expiry]

    if TYPE_CHECKING:  # a mixin calls the others' methods, which QueueVerbs composes: Any to a checker

        def __getattr__(self, name: str) -> Any: ...

    def _queue(self, name: str) -> QueueVerbs:
        """The verbs of another queue of this project (or of this queue as a whole, from a partition)."""
        return type(self)(self.ctx, self.project, name)  # type: ignore[return-value]


HELD_QUEUES, HELD_NAME_CHARS = 4096, 128
"""How many queues' verbs an engine holds, and the longest project and queue names together it
holds them for."""


class EngineBase:
    """The state of the verbs across queues (every engine mixin's base)."""

    queue_verbs: type[QueueVerbs]
    """The class of one queue's verbs (``verbs.QueueVerbs``)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._queues: dict[tuple[str, str], QueueVerbs] = {}

    def queue(self, project: str, name: str) -> QueueVerbs:
        """One queue's verbs, built once per (project, name) while at most ``HELD_QUEUES`` are held
        (then all are let go): they are immutable, and building them (the name checks, the key
        lists) was ~2 us of every HTTP request. Only short names are held (any client may name
        a queue in a path), and a refused name never is."""
        if type(project) is not str or type(name) is not str or len(project) + len(name) > HELD_NAME_CHARS:
            return self.queue_verbs(self.ctx, project, name)
        found = self._queues.get((project, name))
        if found is None:
            found = core.remember_bounded(self._queues, (project, name), self.queue_verbs(self.ctx, project, name),
                                          HELD_QUEUES)
        return found

    if TYPE_CHECKING:  # as in QueueBase: the other mixins' methods

        def __getattr__(self, name: str) -> Any: ...

"""Replicated acknowledgement: a write is acknowledged only once N replicas have it.

Redis replicates asynchronously: a primary answers a script before its replicas have its
effects, so a failover right after can lose a write the caller was told about. With
``min_replicas_ack`` N > 0 the engines send an acknowledged write and ``WAIT N timeout`` in one
pipeline (one round trip, no MULTI). WAIT covers every write made before it *on its own
connection*, so it must ride with the write, never on another pooled connection; one WAIT after
a pipeline of several writes covers them all (``wait_command`` + ``check``). If fewer than N
replicas confirm in time the caller gets ``NotReplicated``, never a success: the write was made
on the primary, but may be lost in a failover.

On Redis 7.2+ (``WAITAOF``) whose primary runs with ``appendonly yes``, ``WAITAOF 0 N timeout``
stands in for WAIT: N replicas have the write fsynced to their append-only files, so it survives
their restart too. The replicas must then run AOF as well (a replica without it never confirms).
Which of the two is learned once per engine, from ``INFO``, at the first acknowledged write.

With N = 0 none of this runs: the engines check one attribute per step. Otherwise each engine
drives ``write_and_wait``, which says what to send (as the verbs do: sans-IO, one body for the
sync and the asyncio engine).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._facade import is_cluster
from .core import Command, Eval
from .errors import ConfigurationError, NotReplicated

if TYPE_CHECKING:
    from .scripts import Scripts

Pipeline = tuple[tuple[Any, ...], ...]
"""Commands the engine sends in one pipeline (no MULTI), sending back every reply, an error reply
as the exception instance."""

ACKNOWLEDGED_SCRIPTS = frozenset({
    "put", "put_ready", "reserve", "reserve_ready", "settle", "delete_reserved", "delete_reserve", "touch", "configure", "clear", "drop", "register", "unregister",
    "push_ack", "push_report", "admit", "subscribe", "stuck",
})
"""Scripts whose effect the caller is told about: each waits for the replicas."""
UNACKNOWLEDGED_SCRIPTS = frozenset({"info", "peek", "get", "maintain", "lease", "push_claim", "alert_size", "stats"})
"""Reads, and writes a failover may lose without breaking a promise: maintenance the next call
redoes (expiry, lapsed reservations, due messages), leases and push claims that run out by
themselves, a partition's size for a partitioned queue's alerts (its next change reports again). Every script is in exactly one of the two sets (a test checks it)."""
ACKNOWLEDGED_COMMANDS = frozenset({"HSET", "HDEL"})
"""Plain commands that store what a caller is told about: project limits, the removal of an event
subscription (the ``subscribe`` script stores one). (The others verbs send are indexes and
bookkeeping that the scripts' state rebuilds.)"""

PROBE = (("INFO", "server"), ("INFO", "persistence"))
"""Commands whose replies tell WAIT from WAITAOF (see ``ReplicaAcks.learn``)."""
WAITAOF_SINCE = (7, 2)


def acknowledged(step: Any) -> bool:
    """Whether ``step`` is a write whose acknowledgement must wait for the replicas."""
    if isinstance(step, Eval):
        return step.verb in ACKNOWLEDGED_SCRIPTS
    if isinstance(step, Command):
        return str(step.args[0]).upper() in ACKNOWLEDGED_COMMANDS
    return False


@dataclass
class ReplicaAcks:
    """How many replicas must confirm each acknowledged write, and within how long."""

    replicas: int
    timeout: float
    """Seconds (WAIT takes whole milliseconds; at least 1)."""
    _wait: tuple[Any, ...] | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, replicas: int, timeout: float, client: Any) -> ReplicaAcks | None:
        """None when N = 0 (nothing to wait for); ConfigurationError for what cannot work."""
        if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
            raise ConfigurationError("min_replicas_ack must be a whole number, 0 or more")
        if not replicas:
            return None
        if not timeout > 0:  # WAIT 0 would block for ever
            raise ConfigurationError("min_replicas_ack_timeout must be more than 0 seconds")
        if is_cluster(client):
            raise ConfigurationError("min_replicas_ack needs one primary (a single Redis or a Sentinel "
                                     "service); Redis Cluster is not supported")
        return cls(replicas, timeout)

    @property
    def learned(self) -> bool:
        return self._wait is not None

    def learn(self, replies: list[Any]) -> None:
        """From the replies to ``PROBE``: WAITAOF if Redis has it and the primary runs AOF."""
        server, persistence = replies
        version = tuple(int(part) for part in str(server.get("redis_version", "0")).split(".")[:2])
        timeout_ms = max(1, round(self.timeout * 1000))
        if version >= WAITAOF_SINCE and int(persistence.get("aof_enabled", 0)) == 1:
            self._wait = ("WAITAOF", 0, self.replicas, timeout_ms)
        else:
            self._wait = ("WAIT", self.replicas, timeout_ms)

    @property
    def wait_command(self) -> tuple[Any, ...]:
        """The WAIT (or WAITAOF) that confirms the writes sent before it on its connection."""
        assert self._wait is not None, "learn() first"
        return self._wait

    def check(self, reply: Any) -> None:
        """Raise ``NotReplicated`` unless the reply to ``wait_command`` counts enough
        replicas (WAIT: a count; WAITAOF: [local fsyncs, replica fsyncs])."""
        if isinstance(reply, Exception):
            raise reply
        confirmed = int(reply[1] if isinstance(reply, list) else reply)
        if confirmed < self.replicas:
            command = str(self._wait[0]) if self._wait else "WAIT"
            hint = " (WAITAOF: the replicas must run with appendonly yes)" if command == "WAITAOF" else ""
            raise NotReplicated(
                f"{confirmed} of {self.replicas} replica(s) confirmed the write within {self.timeout:g} s{hint}: "
                "it was made on the primary but may not survive a failover",
                confirmed=confirmed, wanted=self.replicas,
            )


def write_and_wait(acks: ReplicaAcks, step: Eval | Command, scripts: Scripts) -> Generator[Pipeline, list[Any], Any]:
    """An acknowledged ``step``: the write and its WAIT in one pipeline (each command of a script
    call, whose library load goes alone); returns the write's reply once enough replicas have
    it. Yields the pipelines to send; the engine sends each and sends back its replies."""
    if not acks.learned:
        probed = yield PROBE
        for reply in probed:
            if isinstance(reply, Exception):
                raise reply
        acks.learn(probed)
    if isinstance(step, Command):
        reply, confirmed = yield (step.args, acks.wait_command)
        if isinstance(reply, Exception):
            raise reply
        acks.check(confirmed)
        return reply
    call, reply = scripts.call(step.verb, step.keys, step.args), None
    while True:
        try:
            command = call.send(reply)
        except StopIteration as done:
            acks.check(confirmed)
            return done.value
        if command[0] == "FUNCTION LOAD":
            [reply] = yield (command,)
        else:
            reply, confirmed = yield (command, acks.wait_command)

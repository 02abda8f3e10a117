"""The synchronous engine, for programs without an event loop. Same scripts, keys and rules as
``aio.AsyncEngine``; long polls poll with backoff instead of waiting on pub/sub."""

from __future__ import annotations

import time
from collections.abc import Generator, Iterable
from typing import Any, TypeVar

import redis
from redis.exceptions import RedisError

from ._facade import (
    EngineMethods, QueueMethods, check_client, drive, is_cluster, is_transient, pipeline_replies, translate,
)
from .clock import Clock, RedisClock
from .core import Batch, Command, Eval, Evals, Step, Wait
from .direct import DirectCalls
from .limits import DEFAULTS, LIMITS, QUOTAS, Limits, QueueDefaults, Quotas
from .replication import ReplicaAcks, acknowledged, write_and_wait
from .scripts import Call, Scripts
from .verbs import Context, EngineVerbs

R = TypeVar("R")
_POLL_START, _POLL_MAX = 0.02, 0.5


class Engine(EngineMethods):
    """FerryMQ over a ``redis.Redis`` or ``redis.RedisCluster`` client you supply.

    >>> engine = Engine(redis.Redis())
    >>> orders = engine.queue("my-project", "orders")
    >>> orders.put(["hello"])
    """

    def __init__(
        self,
        client: redis.Redis | redis.RedisCluster,
        *,
        prefix: str = "fmq",
        clock: Clock | None = None,
        limits: Limits = LIMITS,
        defaults: QueueDefaults = DEFAULTS,
        quotas: Quotas = QUOTAS,
        min_replicas_ack: int = 0,
        min_replicas_ack_timeout: float = 1.0,
    ) -> None:
        check_client(client)
        self.client = client
        self.scripts = Scripts(functions=not is_cluster(client))
        self._direct = None if is_cluster(client) else DirectCalls.of(client)
        """Commands on the connection kept from the client's pool (see ``direct.py``), shared with
        the other engines on that pool; None: through the client."""
        self._acks = ReplicaAcks.from_settings(min_replicas_ack, min_replicas_ack_timeout, client)
        """None unless writes wait for replicas (see ``replication.py``)."""
        self.clock = clock or RedisClock()
        self.limits = limits
        self.quotas = quotas
        self._verbs = EngineVerbs(Context(prefix, self.clock, limits, defaults, quotas))

    def queue(self, project: str, name: str) -> Queue:
        return Queue(self, self._verbs.queue(project, name))

    def close(self) -> None:
        """Gives back to the client's pool the connection kept from it (``direct.py``; shared by
        the engines on that pool). The engine stays usable: its next call takes one again."""
        if self._direct is not None:
            self._direct.close()

    def load_scripts(self) -> None:
        """Load the scripts now (startup) rather than on first use, so a broken one stops the
        start: the function library (every master of a cluster), else each script by SHA."""
        try:
            if self.scripts.functions is not False:
                self.scripts.loaded(self._reply(self.scripts.load_command()), strict=True)
            if not self.scripts.functions:
                for text in self.scripts.texts():
                    self.client.script_load(text)
        except Exception as exc:
            raise translate(exc) from exc

    def _run(self, verb: Generator[Step, Any, R]) -> R:
        if isinstance(self.clock, RedisClock) and self.clock.reading_due():
            self._read_clock(self.clock)
        result: Any = None
        error: BaseException | None = None
        poll = _POLL_START
        while True:
            try:
                step = verb.throw(error) if error else verb.send(result)
            except StopIteration as done:
                return done.value
            if isinstance(step, Wait):
                # No event loop to park on: sleep a little, longer each time, then look again.
                time.sleep(min(step.seconds, poll))
                poll = min(poll * 2, _POLL_MAX)
                result, error = True, None
                continue
            try:
                result, error = self._execute(step), None
            except Exception as exc:  # handed to the verb, which may handle it
                result, error = None, translate(exc)

    def _read_clock(self, clock: RedisClock) -> None:
        """Reads Redis TIME for the clock (see clock.py); a failure is the clock's to handle."""
        sent_at = clock.reading_sent()
        try:
            reply = self._reply(("TIME",))
        except Exception as exc:  # a transient error: the verb finds out for itself
            reply = exc
        clock.read(reply, sent_at)

    def _execute(self, step: Step) -> Any:
        if self._acks is not None and acknowledged(step):
            return self._acknowledged(step)  # type: ignore[arg-type]
        if isinstance(step, Eval):
            return self._script(step)
        if isinstance(step, Command):
            return self._command(step.args)
        if isinstance(step, Batch):
            return self._pipelined(step.commands)
        if isinstance(step, Evals):
            return self._evals(step.evals)
        raise TypeError(step)

    def _script(self, step: Eval) -> Any:
        """``step``'s script reply. Once Redis is known to have the function library, its FCALL
        goes out at once; only an error reply goes through the sans-IO call (``Scripts.call``),
        which mends what it can (a library to load again, Redis before 7). Skipping that call's
        layers saved ~1 us of engine Python a call with replies replayed, ~2-5 us of the client's
        CPU with Redis (bench machine, stop 32)."""
        scripts = self.scripts
        if not scripts.functions or self._direct is None:
            return self._call(scripts.call(step.verb, step.keys, step.args))
        command = scripts.command(step.verb, step.keys, step.args)
        try:
            return self._direct.execute(self.client, command)
        except RedisError as exc:
            if is_transient(exc):
                raise
            return self._call(scripts.call(step.verb, step.keys, step.args, sent=(command, exc)))

    def _evals(self, evals: tuple[Eval, ...]) -> list[Any]:
        """Scripts of several partitions in one pipeline; each reply, or its error as a value.
        Alone each while which command runs a script is not known yet, or writes wait for
        replicas (each write carries its own WAIT)."""
        if self._acks is not None or self.scripts.functions is None:
            return [self._reply_or_error(e) for e in evals]
        commands = [self.scripts.command(e.verb, e.keys, e.args) for e in evals]
        firsts = self._pipelined(commands, raise_on_error=False)
        out = []
        for e, command, first in zip(evals, commands, firsts):
            try:
                out.append(self._call(self.scripts.call(e.verb, e.keys, e.args, sent=(command, first))))
            except Exception as exc:
                out.append(translate(exc))
        return out

    def _reply_or_error(self, step: Eval) -> Any:
        try:
            return self._execute(step)
        except Exception as exc:
            return translate(exc)

    def _reply(self, command: tuple[Any, ...]) -> Any:
        """``command``'s reply; an error reply as the exception instance (not raised)."""
        try:
            return self._command(command)
        except RedisError as exc:
            if is_transient(exc) and command[0] != "FUNCTION LOAD":
                raise
            return exc

    def _command(self, command: tuple[Any, ...]) -> Any:
        if self._direct is not None:
            return self._direct.execute(self.client, command)
        return self.client.execute_command(*command)

    def _pipelined(self, commands: Iterable[tuple[Any, ...]], raise_on_error: bool = True) -> list[Any]:
        """The commands in one round trip: on the kept connection, at most once each (see
        direct.py; a redis-py pipeline sends them all again as the client's retry policy says)."""
        if self._direct is not None:
            return pipeline_replies(self._direct.execute_many(self.client, list(commands)), raise_on_error)
        pipe = self.client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        return pipe.execute(raise_on_error=raise_on_error)

    def _call(self, call: Call) -> Any:
        """Runs a script call's commands (see ``Scripts.call``), each alone."""
        return drive(call, self._reply)

    def _acknowledged(self, step: Eval | Command) -> Any:
        """Runs ``replication.write_and_wait``: its reply once enough replicas have the write."""
        assert self._acks is not None
        return drive(write_and_wait(self._acks, step, self.scripts),
                     lambda commands: self._pipelined(commands, raise_on_error=False))


class Queue(QueueMethods):
    """One queue of an ``Engine``; its verbs are ``_facade.QueueMethods`` (see ``verbs.QueueVerbs``
    for what each does)."""


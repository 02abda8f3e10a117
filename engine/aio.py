"""The asyncio engine (the primary API; the HTTP server uses it). Same scripts, keys and rules as
``sync.Engine``; long polls park on the process's ``Notifier`` instead of polling."""

from __future__ import annotations

import asyncio
from collections.abc import Generator, Iterable
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from . import coalesce
from ._facade import (
    AsyncFacade, EngineMethods, QueueMethods, check_client, drive_async, is_cluster, is_transient, pipeline_replies,
    translate,
)
from .autopipeline import ALONE_MESSAGES, SEND_EVERY, AutoPipeline
from .clock import Clock, RedisClock
from .core import Batch, Command, Eval, Evals, Step, Wait
from .limits import DEFAULTS, LIMITS, QUOTAS, Limits, QueueDefaults, Quotas
from .notifier import Notifier
from .replication import ReplicaAcks, acknowledged, write_and_wait
from .scripts import Call, Scripts
from .verbs import Context, EngineVerbs

R = TypeVar("R")
_CLOCK_READING_SECONDS = 1.0
MERGE_AT_MOST = SEND_EVERY
"""Calls merged into one at most (coalesce.py), sent as soon as there are this many, as the
auto-pipeline sends a turn's commands in groups: Redis works on the first while the worker
handles the rest of the turn. Single-message lifecycle at 16 in flight, side by side: merging up
to 16 left the worker waiting on Redis (~9% fewer msgs/s than 8, ~1.5 µs less Redis CPU a
message)."""


class AsyncEngine(AsyncFacade, EngineMethods):
    """FerryMQ over a ``redis.asyncio`` client you supply.

    >>> engine = AsyncEngine(redis.asyncio.Redis())
    >>> orders = engine.queue("my-project", "orders")
    >>> await orders.put(["hello"])
    >>> [message] = await orders.reserve(wait=20)
    """

    def __init__(
        self,
        client: aioredis.Redis | aioredis.RedisCluster,
        *,
        prefix: str = "fmq",
        clock: Clock | None = None,
        limits: Limits = LIMITS,
        defaults: QueueDefaults = DEFAULTS,
        quotas: Quotas = QUOTAS,
        notifier: Notifier | None = None,
        command_timeout: float | None = None,
        min_replicas_ack: int = 0,
        min_replicas_ack_timeout: float = 1.0,
        coalesce: bool = True,
    ) -> None:
        check_client(client)
        self.client = client
        self._acks = ReplicaAcks.from_settings(min_replicas_ack, min_replicas_ack_timeout, client)
        """None unless writes wait for replicas (see ``replication.py``). Keep
        ``min_replicas_ack_timeout`` below ``command_timeout``, which bounds the wait too."""
        self.command_timeout = command_timeout
        """Seconds one Redis call may take before it fails as ``Unavailable`` (None: no limit);
        for calls that share a round trip (autopipeline.py), the round trip's seconds.
        Use this rather than the client's ``socket_timeout``: on Python 3.11 redis-py wraps every
        send in ``asyncio.wait_for`` when that is set, and ``wait_for`` there can swallow a task's
        cancellation (tests/engine/test_cancellation.py)."""
        self.scripts = Scripts(functions=not is_cluster(client))
        self._pipeline = AutoPipeline(client, direct=not is_cluster(client), timeout=command_timeout)
        self.coalesce = coalesce
        """Whether single-message puts, reserves and deletes on one queue made in the same turn of
        the event loop go to Redis as one script call (coalesce.py)."""
        self._merging: dict[tuple[Any, ...], list[_Call]] = {}
        self._held: list[list[_Call]] = []
        """Full groups of this turn that could not go early (``_merged``): sent first at its end."""
        self._loading: asyncio.Future[Any] | None = None
        self._clock_reading: asyncio.Future[None] | None = None
        self.notifier = notifier or Notifier(client)
        self.clock = clock or RedisClock()
        self.limits = limits
        self.quotas = quotas
        self._verbs = EngineVerbs(Context(prefix, self.clock, limits, defaults, quotas))

    def queue(self, project: str, name: str) -> AsyncQueue:
        return AsyncQueue(self, self._verbs.queue(project, name))

    async def load_scripts(self) -> None:
        """Load the scripts now (startup) rather than on first use, so a broken one stops the
        start: the function library (every master of a cluster), else each script by SHA."""
        try:
            if self.scripts.functions is not False:
                self.scripts.loaded(await self._reply(self.scripts.load_command()), strict=True)
            if not self.scripts.functions:
                for text in self.scripts.texts():
                    await self.client.script_load(text)
        except Exception as exc:
            raise translate(exc) from exc

    async def aclose(self) -> None:
        """End long polls (they return what they have), finish sending what is being sent, and
        close the notifier's connection."""
        await self.notifier.close()
        if self._clock_reading is not None:
            self._clock_reading.cancel()
        await self._pipeline.aclose()

    async def _run(self, verb: Generator[Step, Any, R]) -> R:
        if isinstance(self.clock, RedisClock) and self.clock.reading_due():
            # In the background: this verb's scripts read TIME themselves meanwhile, if need be.
            # Marked sent now, so the other verbs of this turn start no reading of their own.
            sent_at = self.clock.reading_sent()
            self._clock_reading = asyncio.ensure_future(self._read_clock(self.clock, sent_at))
        result: Any = None
        error: BaseException | None = None
        while True:
            try:
                step = verb.throw(error) if error else verb.send(result)
            except StopIteration as done:
                return done.value
            try:
                if self.command_timeout is None or self._bounded_by_pipeline(step):
                    result = await self._execute(step)
                else:
                    async with asyncio.timeout(self.command_timeout):
                        result = await self._execute(step)
                error = None
            except Exception as exc:  # handed to the verb, which may handle it
                result, error = None, translate(exc)

    async def _read_clock(self, clock: RedisClock, sent_at: float) -> None:
        """Reads Redis TIME for the clock (see clock.py); a failure is the clock's to handle. A
        reading slower than a second is worthless: it is given up then."""
        try:
            async with asyncio.timeout(_CLOCK_READING_SECONDS):
                reply: Any = await self._send(("TIME",))
        except Exception as exc:  # a transient error or the timeout: the next reading in a second
            reply = exc
        clock.read(reply, sent_at)

    def _bounded_by_pipeline(self, step: Step) -> bool:
        """Whether ``step`` needs no timer of its own: a Wait is not a Redis call, and the
        auto-pipeline bounds each round trip on a pool connection by ``command_timeout`` (one
        timer for a turn's calls). Batches and acknowledged writes (``AutoPipeline.together``,
        bounded too on a pool connection, keep a timer of their own as well), and a cluster's
        calls through its client, need one."""
        if isinstance(step, Wait):
            return True
        calls = isinstance(step, (Eval, Command)) or isinstance(step, Evals) and not _many(step)
        return self._pipeline.bounds_calls and calls and self._acks is None

    async def _execute(self, step: Step) -> Any:
        if self._acks is not None and acknowledged(step):
            return await self._acknowledged(step)  # type: ignore[arg-type]
        if isinstance(step, Eval):
            scripts = self.scripts
            if scripts.functions is None:  # not known yet: the sans-IO call finds out
                return await self._call(scripts.call(step.verb, step.keys, step.args))
            group = coalesce.group(step) if self.coalesce else None
            if group is not None:
                call = self._merged(group, step)
                reply = await call.future
                if not isinstance(reply, Exception):
                    return reply
                # The error decides from this call's own command as it was sent (merged or not:
                # a missing library is loaded and this call sent again, alone).
                command = scripts.command(step.verb, step.keys, step.args, by_sha=call.by_sha)
            else:
                command = scripts.command(step.verb, step.keys, step.args)
                reply = await self._send(command, alone=step.messages >= ALONE_MESSAGES)
                if not isinstance(reply, Exception):  # the common case, without the generator's turns
                    return reply
            return await self._call(scripts.call(step.verb, step.keys, step.args, sent=(command, reply)))
        if isinstance(step, Command):
            reply = await self._reply(step.args)
            if isinstance(reply, Exception):
                raise reply
            return reply
        if isinstance(step, Wait):
            return await self.notifier.wait(step.channel, step.seconds)
        if isinstance(step, Batch):
            return await self._pipelined(step.commands)
        if isinstance(step, Evals):
            if _many(step):
                return await self._evals(step.evals)
            # A few (a queue's partitions): sent with the turn's other calls (autopipeline.py).
            return await asyncio.gather(*(self._reply_or_error(e) for e in step.evals))
        raise TypeError(step)

    def _merged(self, group: tuple[Any, ...], step: Eval) -> _Call:
        """``step``'s call, to be merged with the others of its ``group`` made in this turn of the
        loop (coalesce.py): sent once the turn ends, or as soon as ``MERGE_AT_MOST`` wait if the
        auto-pipeline sends a group early. A group is built into one command only as it is sent:
        callers that gave up before are left out (a command not sent is dropped, as alone)."""
        loop = asyncio.get_running_loop()
        call = _Call(step, loop.create_future())
        if not self._merging and not self._held:
            loop.call_soon(self._send_merged)
        calls = self._merging.setdefault(group, [])
        calls.append(call)
        if len(calls) >= MERGE_AT_MOST:
            full = self._merging.pop(group)
            if self._pipeline.sends_early():
                self._send_group(full)
                self._pipeline.flush()
            else:  # a burst: held for the turn's end, when callers that gave up meanwhile are left out
                self._held.append(full)
        return call

    def _send_merged(self) -> None:
        held, self._held = self._held, []
        merging, self._merging = self._merging, {}
        for calls in (*held, *merging.values()):
            self._send_group(calls)
        self._pipeline.flush()  # now: the auto-pipeline's own flush would wait for the next turn

    def _send_group(self, calls: list[_Call]) -> None:
        """One group's calls sent as one (each alone where they cannot merge), each caller's future
        getting its share of the reply. A caller that gave up before the send is left out."""
        calls = [call for call in calls if not call.future.done()]
        by_sha = self.scripts.functions is False
        try:
            for call in calls:
                call.by_sha = by_sha
            if len(calls) > 1 and coalesce.mergeable(steps := [call.step for call in calls]):
                merged = coalesce.merge(steps)
                self._pipeline.send(self.scripts.command(merged.verb, merged.keys, merged.args), into=_SharedReply(calls))
                return
            for call in calls:
                self._pipeline.send(self.scripts.command(call.step.verb, call.step.keys, call.step.args), into=call.future)
        except Exception as exc:  # never, but its callers must not wait for ever
            _SharedReply(calls).set_exception(exc)

    async def _evals(self, evals: tuple[Eval, ...]) -> list[Any]:
        """Many scripts (a page of queues' stats) in one pipeline, as a Batch goes: the
        auto-pipeline sent a thousand in ~50 round trips. Each reply, or its error as a value;
        each alone while which command runs a script is not known yet, or writes wait for
        replicas (as the sync engine's _evals)."""
        if self._acks is not None or self.scripts.functions is None:
            return await asyncio.gather(*(self._reply_or_error(e) for e in evals))
        commands = [self.scripts.command(e.verb, e.keys, e.args) for e in evals]
        firsts = await self._pipelined(commands, raise_on_error=False)
        out = []
        for e, command, first in zip(evals, commands, firsts):
            try:
                out.append(await self._call(self.scripts.call(e.verb, e.keys, e.args, sent=(command, first))))
            except Exception as exc:
                out.append(translate(exc))
        return out

    async def _reply_or_error(self, step: Eval) -> Any:
        try:
            return await self._execute(step)
        except Exception as exc:
            return translate(exc)

    async def _reply(self, command: tuple[Any, ...]) -> Any:
        """``command``'s reply, sent with whatever else this turn of the loop sends (see
        ``autopipeline.py``); an error reply as the exception instance (not raised). Concurrent
        calls that find the library missing (the first calls, or after a restart) share one load."""
        if command[0] == "FUNCTION LOAD":
            if self._loading is None or self._loading.done():
                self._loading = asyncio.ensure_future(self._send(command))
            return await asyncio.shield(self._loading)
        return await self._send(command)

    async def _send(self, command: tuple[Any, ...], *, alone: bool = False) -> Any:
        try:
            return await self._pipeline.call(command, alone=alone)
        except RedisError as exc:
            if is_transient(exc) and command[0] != "FUNCTION LOAD":
                raise
            return exc

    async def _pipelined(self, commands: Iterable[tuple[Any, ...]], raise_on_error: bool = True) -> list[Any]:
        return pipeline_replies(await self._pipeline.together(list(commands)), raise_on_error)

    async def _call(self, call: Call) -> Any:
        """Runs a script call's commands (see ``Scripts.call``), each alone."""
        return await drive_async(call, self._reply)

    async def _acknowledged(self, step: Eval | Command) -> Any:
        """Runs ``replication.write_and_wait``: its reply once enough replicas have the write."""
        assert self._acks is not None
        return await drive_async(write_and_wait(self._acks, step, self.scripts),
                                 lambda commands: self._pipelined(commands, raise_on_error=False))


class AsyncQueue(AsyncFacade, QueueMethods):
    """One queue of an ``AsyncEngine``; its verbs are ``_facade.QueueMethods`` (see ``verbs.QueueVerbs``
    for what each does)."""


class _Call:
    """A caller's script call to be merged (coalesce.py): its step, the future of its reply, and
    whether it went as an EVALSHA (known once sent: its error reply is handled from that)."""

    __slots__ = ("step", "future", "by_sha")

    def __init__(self, step: Eval, future: asyncio.Future[Any]) -> None:
        self.step, self.future, self.by_sha = step, future, False


class _SharedReply:
    """Receives the reply of merged calls in the auto-pipeline, as a future would, and hands each
    caller its share at once (or the connection error)."""

    __slots__ = ("calls",)

    def __init__(self, calls: list[_Call]) -> None:
        self.calls = calls

    def done(self) -> bool:
        """Every caller gave up: nothing to send."""
        return all(call.future.done() for call in self.calls)

    def set_result(self, reply: Any) -> None:
        try:
            waiting = [not call.future.done() for call in self.calls]
            shares = coalesce.split([call.step for call in self.calls], reply, waiting)
            if len(shares) != len(self.calls):
                raise RuntimeError(f"a merged call's reply has {len(shares)} shares for {len(self.calls)} calls")
        except Exception as exc:  # never, but its callers must not wait for ever
            self.set_exception(exc)
            return
        for call, share in zip(self.calls, shares):
            if not call.future.done():
                call.future.set_result(share)

    def set_exception(self, error: BaseException) -> None:
        for call in self.calls:
            if not call.future.done():
                call.future.set_exception(error)


def _many(step: Evals) -> bool:
    """Whether ``step`` holds more scripts than the auto-pipeline sends in one group."""
    return len(step.evals) > SEND_EVERY

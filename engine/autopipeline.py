"""Auto-pipelining for the asyncio engine: the commands that concurrent verbs send in the same
turn of the event loop go to Redis together, as one pipeline (no MULTI: each script stays
atomic on its own, and none waits for another). Sixteen requests in flight then cost one round
trip and one read and write each side instead of sixteen (ioredis calls this auto-pipelining).

Theory of operation: a verb's command is queued with a future and, if it is the first of this
turn, a flush is scheduled with ``call_soon``, which runs after every task already woken in this
turn has queued its own. The flush sends what is queued on a connection of the pool, in a task of
its own, and sets each future from its reply; the next turn's commands can go on another
connection meanwhile. Cancelling a verb cancels only its future: a command not yet sent is
dropped, one already sent runs (as with any command whose reply nobody waits for).

A turn's commands go in groups of ``SEND_EVERY``, each sent as soon as it is full, while fewer
round trips are under way than connections are kept (a burst of hundreds of calls in one turn
goes as before, in one round trip, rather than taking a connection per group). Sixteen calls
in flight otherwise moved as one group: their replies came back together, the worker handled all
sixteen and sent all sixteen, and only then did Redis start on them, so the two took turns
(single-message put at 16 in flight: the worker 58% busy, Redis 33%). In groups of 8 each side
works while the other does: put 33k -> 51k calls/s, reserve 24k -> 39k, delete 30k -> 45k, the
worker's CPU per call unchanged (groups of 4 cost it a third more per call; of 12, the gain halves).

A big command (more than ``ALONE_WORDS`` words: a put of dozens of messages; or a script call
of ``ALONE_MESSAGES`` messages or more, such as a reserve of 100) is not held for
the turn: ``call`` sends it at once, alone, on a connection of its own. Redis answers a
pipeline when it has run all of it, so a turn's big commands went out after every request of
the turn was parsed and came back together: the worker and Redis took turns instead of working
at once (POST of 100 messages, 1 worker: the worker 0.6 of a core, Redis 0.5, the rest idle).

The flush writes to the pool's connection itself rather than through redis-py's Pipeline: it
packs with hiredis (redis-py's asyncio connections pack in Python, which cost more than half of
the client's time per script call with two dozen keys and arguments) and skips the Pipeline's
per-command bookkeeping. Nothing is retried: a script call may have run when the connection
fails, and running it again could put a message twice, so the caller gets the ConnectionError
(and the connection is dropped). A connection whose replies were all read is kept for the next
round trip rather than given back to the pool: the pool's lock, timer and check that nothing is
left to read on it cost a third of a round trip's client time. On a cluster, redis-py's cluster
client and pipeline route the commands to their nodes, and send them again as the client's
``retry`` says: the server builds its own with none (http/connect.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from redis.exceptions import ConnectionError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from redis.asyncio.connection import AbstractConnection

try:
    from redis._parsers.hiredis import _AsyncHiredisParser
except ImportError:  # pragma: no cover - another redis-py layout: replies through the connection
    _AsyncHiredisParser = None

try:
    from hiredis import pack_command
except ImportError:  # pragma: no cover - hiredis is a dependency; redis-py packs without it
    pack_command = None


_UNKNOWN = object()
SEND_EVERY = 8
"""A turn's commands go out in groups of this many, as they come, not all at its end: Redis
works on the first group while the worker still handles the rest of the turn (see the module
docstring)."""
ALONE_WORDS = 64
"""A command of more words goes alone and at once (``call``): its Redis time (~280 µs for a put
of 100 messages) dwarfs what sharing a round trip saves."""
ALONE_MESSAGES = 25
"""The same for a script call that may take or change this many messages or more, however few
its words (``Eval.messages``: a reserve of 100 is 21 words and ~250 µs of Redis)."""
KEPT_CONNECTIONS = 16
"""Pool connections kept between round trips, at most: as many as a worker's round trips may
overlap (a turn's flush; a big command per request in flight, such as 16 clients' puts of 100),
the rest go back to the pool. Never more than a quarter of a bounded pool (the server's default
of 64 keeps 16)."""


class AutoPipeline:
    def __init__(self, client: Any, direct: bool = True, timeout: float | None = None) -> None:
        """``direct``: write to the pool's connections (see the module docstring); False for a
        cluster client, whose commands redis-py must route. ``timeout``: seconds a round trip
        on a pool connection may take (getting the connection, the send, every reply) before
        each of its commands fails with ``TimeoutError``: one timer per round trip, where a timer
        per command cost ~7% of a GET of one message in the server (bench/RESULTS.md, "HTTP hot
        path, stop 24"). Not on a cluster, whose pipelines redis-py must not have cancelled
        under it: there each caller keeps its own timer (``bounds_calls``)."""
        self._client = client
        self._timeout = timeout
        self._direct = direct and getattr(client, "connection", None) is None  # not single-connection
        self._queued: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        self._sending: set[asyncio.Task[None]] = set()
        self._kept: list[Any] = []
        # The client's response callback of each command name sent (None: none), looked up once:
        # its case-insensitive lookup cost ~2% of a script call's client time.
        self._callbacks: dict[str, Any] = {}
        self._closed = False
        # At most a quarter of a bounded pool is kept, so that its other users (redis-py
        # pipelines, the notifier's connection) are never starved by idle kept connections.
        pool_size = getattr(getattr(client, "connection_pool", None), "max_connections", None) or KEPT_CONNECTIONS * 4
        self._keep_at_most = min(KEPT_CONNECTIONS, pool_size // 4)

    async def call(self, command: tuple[Any, ...], *, alone: bool = False) -> Any:
        """``command``'s reply, as ``send``'s future gives it; a big command (``alone``: the
        caller knows it is, or more than ``ALONE_WORDS`` words) without waiting for the turn to
        end (the module docstring). Measured side by side (bench/RESULTS.md, "HTTP hot
        path on the final commit"): IronMQ POST of 100 messages, 1 worker, 172,032 -> 210,234
        msgs/s, though the worker spends ~20% more CPU per request on its own connection."""
        if self._direct and (alone or len(command) > ALONE_WORDS):
            return (await self._on_connection([command]))[0]
        return await self.send(command)

    async def together(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """``commands`` in one round trip of their own, at once (a batch of reads, a write and its
        WAIT): each reply, an error reply as its value. On a pool's connection they are sent at
        most once, as every call here; a redis-py pipeline sends them all again as the client's
        retry policy says (on a cluster, the only way to route them)."""
        if self._direct:
            return await self._on_connection(commands)
        async with self._client.pipeline(transaction=False) as pipe:
            for command in commands:
                pipe.execute_command(*command)
            return await pipe.execute(raise_on_error=False)

    @property
    def bounds_calls(self) -> bool:
        """Whether every round trip is bounded here by ``timeout`` (the callers need no timer)."""
        return self._direct and self._timeout is not None

    def send(self, command: tuple[Any, ...], into: Any = None) -> Any:
        """The future of ``command``'s reply: an error reply as its value (the exception
        instance, not raised), a connection failure as its exception. ``into``: what receives
        the reply instead of a new future, anything with a future's ``done``, ``set_result`` and
        ``set_exception`` (aio.py's shared reply of merged calls, which hands each caller its
        share at once rather than a turn of the loop later)."""
        loop = asyncio.get_running_loop()
        future = loop.create_future() if into is None else into
        if not self._queued:
            loop.call_soon(self.flush)
        self._queued.append((command, future))
        if len(self._queued) >= SEND_EVERY:
            self.flush_early()
        return future

    def flush_early(self) -> None:
        """Sends what is queued now, before the turn ends, if ``sends_early``."""
        if self.sends_early():
            self.flush()

    def sends_early(self) -> bool:
        """Whether a group may go before the turn ends: not while as many round trips are under
        way as connections are kept (a burst: its commands wait for the turn's end and go
        together, rather than taking a connection per group)."""
        return len(self._sending) < self._keep_at_most

    def flush(self) -> None:
        """Sends what is queued now, rather than at the end of the turn."""
        queued = [(command, future) for command, future in self._queued if not future.done()]
        self._queued = []
        if queued:
            self._in_background(self._send(queued))

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        """``work`` in a task of its own, which ``aclose`` waits for."""
        task = asyncio.get_running_loop().create_task(work)
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, queued: list[tuple[tuple[Any, ...], asyncio.Future[Any]]]) -> None:
        try:
            replies = await self._round_trip([command for command, _ in queued])
        except BaseException as exc:  # the connection, not a command: every caller gets it
            for _, future in queued:
                if not future.done():
                    future.set_exception(exc if isinstance(exc, Exception) else asyncio.CancelledError())
            if not isinstance(exc, Exception):
                raise
            return
        for (_, future), reply in zip(queued, replies):
            if not future.done():
                future.set_result(reply)

    async def _round_trip(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        if self._direct:
            return await self._on_connection(commands)
        if len(commands) == 1:  # alone in its turn: no pipeline to build
            return [await self._one(commands[0])]
        return await self.together(commands)

    async def _on_connection(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        pool = self._client.connection_pool
        connection = await self._kept_connection()
        try:
            # The timer stops before any release: cancelled in the pool's lock, the connection
            # would stay taken for ever.
            async with asyncio.timeout(self._timeout):
                if connection is None:
                    connection = await pool.get_connection()
                if pack_command is None:
                    packed = connection.pack_commands(commands)
                else:
                    packed = [b"".join([pack_command(_words(command)) for command in commands])]
                await connection.send_packed_command(packed, check_health=False)
                replies = await self._replies(connection, commands)
        except BaseException:
            if connection is not None:
                await connection.disconnect(nowait=True)  # replies may be left unread on it
                await _release(pool, connection)
            raise
        if not self._closed and len(self._kept) < self._keep_at_most:
            self._kept.append(connection)
        else:  # the replies need not wait for the pool's lock: back to the pool meanwhile
            self._in_background(pool.release(connection))
        return replies

    async def _kept_connection(self) -> Any:
        """A connection this pipeline kept from an earlier round trip, if nothing happened to it
        since (``_reusable``): no trip through the pool (its lock, its timer and its check that
        nothing is left to read, which cost ~1/3 of a round trip's client time)."""
        while self._kept:
            connection = self._kept.pop()
            if _reusable(connection):
                return connection
            await connection.disconnect(nowait=True)
            await _release(self._client.connection_pool, connection)  # the pool connects it again
        return None

    async def _replies(self, connection: Any, commands: list[tuple[Any, ...]]) -> list[Any]:
        """The replies to ``commands``, just sent on ``connection``: an error reply as its value.
        With redis-py's hiredis parser they are read from the parser itself (redis-py's own
        attribute): the connection's read_response formats an error message for each reply
        before reading it, and raises an error reply that is then caught here. Side by side,
        single-message lifecycle at 16 in flight: +5% msgs/s (put +12%). Not where the
        connection's ``socket_timeout`` is the only bound on the wait (no ``timeout`` here):
        its read_response enforces that one."""
        parser = _hiredis_parser(connection)
        if parser is None or (self._timeout is None and connection.socket_timeout is not None):
            return [await self._read(connection, command[0]) for command in commands]
        replies = []
        try:
            for command in commands:
                reply = await parser.read_response()
                replies.append(reply if isinstance(reply, ResponseError) else self._parsed(command[0], reply))
        except TimeoutError as exc:  # the socket's (ETIMEDOUT), as the connection's read_response says it
            raise RedisTimeoutError(f"Timeout reading from Redis: {exc.args}") from exc
        except OSError as exc:
            raise ConnectionError(f"Error while reading from Redis: {exc.args}") from exc
        if connection.health_check_interval:  # as read_response stamps it: no needless PING later
            next_check = asyncio.get_running_loop().time() + connection.health_check_interval
            connection.next_health_check = next_check
        return replies

    def _parsed(self, name: str, reply: Any) -> Any:
        """``reply`` through the client's response callback for ``name``, looked up once (a
        callback set on the client after its first use is not seen)."""
        callback = self._callbacks.get(name, _UNKNOWN)
        if callback is _UNKNOWN:
            callback = self._callbacks[name] = self._client.response_callbacks.get(name)
        return reply if callback is None else callback(reply)

    async def _read(self, connection: Any, name: str) -> Any:
        try:
            reply = await connection.read_response()
        except ResponseError as error:  # an error reply: the command's, not the connection's
            return error
        return self._parsed(name, reply)

    async def _one(self, command: tuple[Any, ...]) -> Any:
        try:
            return await self._client.execute_command(*command)
        except RedisError as exc:
            from ._facade import is_transient

            if is_transient(exc):
                raise
            return exc

    async def aclose(self) -> None:
        """Wait for what is being sent (shutdown), and give the kept connections back. On a
        cluster a round trip has no timer of its own (its callers have theirs: a cancelled
        redis-py cluster pipeline leaks its connection), so what is still under way after
        ``timeout`` is cancelled: a node that stopped answering held the shutdown until it came
        back. (On a pool's connections every round trip is bounded, and a connection given back
        must not be cancelled on its way: see ``_release``.)"""
        if self._sending and not self._direct:
            _, late = await asyncio.wait(self._sending, timeout=self._timeout)
            for task in late:
                task.cancel()
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
        self._closed = True  # a round trip still running gives its connection back
        kept, self._kept = self._kept, []
        for connection in kept:
            await _release(self._client.connection_pool, connection)


def _reusable(connection: Any) -> bool:
    """Whether a kept connection is as its last round trip left it: open, not closed by Redis
    (EOF) nor reset (its transport closing), nothing unread on it (Redis sends nothing unasked).
    The pool's own check reads the socket for this; these are the stream's flags, set by the loop.
    A connection that fails it is dropped, and the pool connects it again."""
    reader, writer = connection._reader, connection._writer
    return (reader is not None and writer is not None and not reader.at_eof()
            and not writer.transport.is_closing()  # a reset closes the transport, with no EOF
            and not getattr(reader, "_buffer", None))  # (fakeredis's reader keeps none)


def _hiredis_parser(connection: Any) -> Any:
    """The hiredis parser a connection of redis-py's reads its replies with, or None: another
    parser, or a connection that reads them its own way (fakeredis's, Sentinel's). What the
    connection's read_response adds around the parser (a timer, error mapping, the health-check
    stamp) is as in redis-py 5.2 to 7.4, which pyproject.toml admits; a new major must be
    checked against ``_replies`` before the pin moves."""
    parser = getattr(connection, "_parser", None)
    if (_AsyncHiredisParser is None or not isinstance(parser, _AsyncHiredisParser)
            or type(connection).read_response is not AbstractConnection.read_response):
        return None
    return parser


async def _release(pool: Any, connection: Any) -> None:
    """``connection`` back to ``pool``, even if the caller is cancelled while the pool's lock
    makes it wait: one not given back is lost to the pool for good."""
    await asyncio.shield(pool.release(connection))


def _words(command: tuple[Any, ...]) -> tuple[Any, ...]:
    """A command as Redis reads it: a two-word name ("FUNCTION LOAD", as redis-py spells it to
    route it) split in two, as redis-py's own packing does."""
    name = command[0]
    return (*name.split(), *command[1:]) if " " in name else command

"""The synchronous engine's commands on a connection it keeps, rather than through the client.

redis-py's ``execute_command`` takes a connection from the pool and gives it back on every call:
the pool's lock, its check that nothing is left to read on the connection, and its observability
and event hooks. With one call in flight that was a quarter of a script call's wall time on the
benchmark machine (``EVALSHA`` of ``return 1``: 91 -> 69 µs a call, the client's CPU 54 -> 31 µs).

Theory of operation: one connection of a pool is kept aside (one for all the engines on that
pool: ``DirectCalls.of``), and the engines' commands go on it under a lock taken without
waiting. A thread that finds the lock taken (another thread's call is on the connection) sends
on a connection of the pool, as the client would, so threads never queue behind each other.
Before each use the kept connection is checked as the pool checks it (closed by Redis, or
something left to read: it is connected again). A failure to send is retried as the client's
retry policy says; a failure once the command was sent never is (``execute_command`` retries
both, and a put whose reply was lost was stored twice), and a connection that failed mid-reply
is dropped before anything else uses it. After a fork the child forgets the parent's connection
and lock before any thread of its own runs (the pool starts afresh there). Nothing holds the
pool: once its clients are gone, the kept connection goes with it (no finalizer gives it back
from inside a garbage collection, which could run in the pool's own lock).

The client is used as it uses itself wherever a connection must go back to the pool for redis-py
to act on it, or the check before use is not the pool's: a pool too small to spare one for good
(``max_connections`` under ``KEEP_FROM_POOL_SIZE``), Sentinel's (a failover only moves the idle
connections), a client-side cache, maintenance notifications, a credential provider (re-auth
happens on release), and redis-py before 6 (another retry rule, another pool API); there the
client's retry policy decides what is sent again. Commands on the kept connection are not in
redis-py's own OpenTelemetry metrics.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import redis
from redis.exceptions import ConnectionError, ResponseError
from redis.sentinel import SentinelConnectionPool

R = TypeVar("R")
KEEP_FROM_POOL_SIZE = 8
"""A pool of fewer connections than this keeps none aside: its other users (pipelines, other
threads) would wait for it."""
_REDIS_PY = int(redis.__version__.split(".")[0])
_RECONNECTS = hasattr(redis.Connection, "should_reconnect")
"""Whether connections can be marked for reconnection (maintenance notifications, redis-py 7)."""


class DirectCalls:
    """Commands of ``redis.Redis`` clients (not a cluster's, not a single-connection one) on one
    connection kept from their pool; ``execute`` raises what ``execute_command`` would."""

    _of_pool: weakref.WeakKeyDictionary[Any, DirectCalls] = weakref.WeakKeyDictionary()

    def __init__(self, pool: Any) -> None:
        self._pool = weakref.ref(pool)
        self._lock = threading.Lock()
        self._kept: Any = None

    @classmethod
    def of(cls, client: Any) -> DirectCalls | None:
        """The kept connection of ``client``'s pool, or None where it is not to be kept (see the
        module docstring)."""
        if not cls.usable(client):
            return None
        pool = client.connection_pool
        found = cls._of_pool.get(pool)
        if found is None:
            found = cls._of_pool.setdefault(pool, cls(pool))
        return found

    @staticmethod
    def usable(client: Any) -> bool:
        """Whether ``client`` is one whose connection may be kept (see the module docstring)."""
        pool = getattr(client, "connection_pool", None)
        if _REDIS_PY < 6 or getattr(client, "connection", None) is not None or pool is None:
            return False
        maintained = getattr(pool, "maint_notifications_enabled", lambda: False)()
        size = getattr(pool, "max_connections", 0)  # None: unbounded; absent: a pool we don't know
        return ((size is None or size >= KEEP_FROM_POOL_SIZE) and not isinstance(pool, SentinelConnectionPool)
                and getattr(pool, "cache", None) is None and not maintained
                and getattr(pool, "connection_kwargs", {}).get("credential_provider") is None)

    def execute(self, client: Any, command: tuple[Any, ...]) -> Any:
        lock = self._lock
        if lock.acquire(blocking=False):  # (``_on_a_connection``, inline: this is every call's path)
            try:
                reply = _at_most_once(self._connection(), command)
            finally:
                lock.release()
        else:
            reply = self._on_a_connection(client, _at_most_once, command)
        callback = client.response_callbacks.get(command[0])
        return callback(reply) if callback else reply

    def execute_many(self, client: Any, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        """``commands`` in one round trip, at most once each as ``execute`` sends one: each reply,
        an error reply as its value (a pipeline's ``execute(raise_on_error=False)``)."""
        replies = self._on_a_connection(client, _all_at_most_once, commands)
        for i, (command, reply) in enumerate(zip(commands, replies)):
            callback = client.response_callbacks.get(command[0])
            if callback and not isinstance(reply, ResponseError):
                replies[i] = callback(reply)
        return replies

    def _on_a_connection(self, client: Any, round_trip: Callable[[Any, Any], R], what: Any) -> R:
        lock = self._lock
        if lock.acquire(blocking=False):
            try:
                return round_trip(self._connection(), what)
            finally:
                lock.release()
        # Another thread's call is on the kept connection: one of the pool's, as the client would.
        pool = client.connection_pool
        connection = pool.get_connection()
        try:
            return round_trip(connection, what)
        finally:
            pool.release(connection)

    def close(self) -> None:
        """Gives the kept connection back to the pool (the next call takes one again)."""
        with self._lock:
            kept, self._kept = self._kept, None
            pool = self._pool()
            if kept is not None and pool is not None:
                pool.release(kept)

    def _connection(self) -> Any:
        connection = self._kept
        if connection is None:
            pool = self._pool()
            if pool is None:  # (its clients are gone: no call can come from them)
                raise ConnectionError("the connection pool was closed")
            connection = self._kept = pool.get_connection()
            return connection
        try:
            stale = connection.can_read()  # as the pool checks a connection it hands out
        except (ConnectionError, OSError):  # closed by Redis since: connected again at the send
            stale = True
        if stale:
            connection.disconnect()
        return connection

    def _forked(self) -> None:
        """In a forked child, before any thread of its own runs: the parent's connection is not
        ours, and the lock may have been held by a thread that does not exist here."""
        self._lock, self._kept = threading.Lock(), None


def _at_most_once(connection: Any, command: tuple[Any, ...]) -> Any:
    """``command``'s reply on ``connection``: sending is retried as the client's retry policy
    says (Redis runs no command it did not receive whole), reading the reply never (the script
    may have run: a put sent again was stored twice; execute_command retries both)."""
    connection.retry.call_with_retry(lambda: _send(connection, command), lambda _: connection.disconnect())
    try:
        reply = connection.read_response()
    except ResponseError:  # a reply: the connection is as good as before
        raise
    except BaseException:  # (a timeout, a reset or an interrupt mid-reply): what is unread is lost
        connection.disconnect()
        raise
    _after_use(connection)
    return reply


def _all_at_most_once(connection: Any, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
    """``_at_most_once`` for several commands sent together: their replies, errors as values."""
    packed = connection.pack_commands(commands)
    connection.retry.call_with_retry(lambda: _send(connection, packed, packed=True), lambda _: connection.disconnect())
    replies: list[Any] = []
    try:
        for _ in commands:
            try:
                replies.append(connection.read_response())
            except ResponseError as error:
                replies.append(error)
    except BaseException:
        connection.disconnect()
        raise
    _after_use(connection)
    return replies


def _send(connection: Any, command: Any, packed: bool = False) -> None:
    try:
        if packed:
            connection.send_packed_command(command)
        else:
            connection.send_command(*command)
    except BaseException:  # sent in part at most: dropped with the connection, never run
        connection.disconnect()
        raise


def _after_use(connection: Any) -> None:
    if _RECONNECTS and connection.should_reconnect():  # as execute_command does after a call
        connection.disconnect()


def _after_fork_in_child() -> None:
    for direct in list(DirectCalls._of_pool.values()):
        direct._forked()


os.register_at_fork(after_in_child=_after_fork_in_child)

"""The synchronous engine's commands on a connection it keeps, rather than through the client.

redis-py's ``execute_command`` takes a connection from the pool and gives it back on every call:
the pool's lock, its check that nothing is left to read on the connection, and its observability
and event hooks. With one call in flight that was a quarter of a script call's wall time on the
benchmark machine (``EVALSHA`` of ``return 1``: 91 -> 69 µs a call, the client's CPU 54 -> 31 µs).

Theory of operation: the engine keeps one connection of the client's pool for itself and sends
its commands on it, under a lock taken without waiting. A thread that finds the lock taken (another
thread's call is on the connection) sends through the client as before, so threads never queue
behind each other. Before each use the connection is checked as the pool checks it (closed by
Redis, or something left to read: it is connected again); a failure during a call is retried as
the client's retry policy says, as ``execute_command`` retries it, and a connection that failed
mid-reply is dropped before anything else uses it. After a fork the child forgets the parent's
connection (the pool starts afresh there). A pool too small to spare a connection for good
(``max_connections`` under ``KEEP_FROM_POOL_SIZE``) is used as the client uses it.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from redis.exceptions import ConnectionError, ResponseError

KEEP_FROM_POOL_SIZE = 8
"""A pool of fewer connections than this keeps none aside: its other users (pipelines, other
threads) would wait for it."""


class DirectCalls:
    """Commands of a ``redis.Redis`` client (not a cluster's, not a single-connection one) on
    one connection kept from its pool; ``execute`` raises what ``execute_command`` would."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._pool = client.connection_pool
        self._keeps = (self._pool.max_connections or KEEP_FROM_POOL_SIZE) >= KEEP_FROM_POOL_SIZE
        self._lock = threading.Lock()
        self._kept: Any = None
        self._pid = os.getpid()

    @staticmethod
    def usable(client: Any) -> bool:
        """Whether ``client`` is one this applies to: a pool of plain connections to one Redis."""
        return getattr(client, "connection", None) is None and hasattr(client, "connection_pool")

    def execute(self, command: tuple[Any, ...]) -> Any:
        if not self._keeps or not self._lock.acquire(blocking=False):
            return self._client.execute_command(*command)
        try:
            connection = self._connection()
            reply = connection.retry.call_with_retry(
                lambda: self._round_trip(connection, command), lambda _: connection.disconnect())
        finally:
            self._lock.release()
        callback = self._client.response_callbacks.get(command[0])
        return callback(reply) if callback else reply

    def close(self) -> None:
        """Gives the kept connection back to the pool."""
        with self._lock:
            kept, self._kept = self._kept, None
            if kept is not None and self._pid == os.getpid():
                self._pool.release(kept)

    def _connection(self) -> Any:
        if self._pid != os.getpid():  # a forked child: the parent's connection is not ours
            self._kept, self._pid = None, os.getpid()
        connection = self._kept
        if connection is None:
            connection = self._kept = self._pool.get_connection()
            return connection
        try:
            stale = connection.can_read()  # as the pool checks a connection it hands out
        except (ConnectionError, OSError):  # closed by Redis since: connected again at the send
            stale = True
        if stale:
            connection.disconnect()
        return connection

    @staticmethod
    def _round_trip(connection: Any, command: tuple[Any, ...]) -> Any:
        try:
            connection.send_command(*command)
            return connection.read_response()
        except ResponseError:  # a reply: the connection is as good as before
            raise
        except BaseException:  # (a timeout or an interrupt mid-reply): what is unread is lost
            connection.disconnect()
            raise

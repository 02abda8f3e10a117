"""Redis clients from a URL, in one place: the server, ``ferrymq pusher``, the queue and token
commands all build theirs here (the notifier uses the server's client).

    redis://[[user]:password@]host[:port][/db]          a single Redis, or any node of a Redis Cluster
    rediss://...  unix:///path/to/redis.sock             (TLS; a unix socket), as redis-py reads them
    redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/service[/db][?option=value...]
    rediss+sentinel://...                                the same over TLS, to the sentinels and the data nodes

A Sentinel URL names the sentinels (port 26379 unless given) and the service (``sentinel
monitor <service> ...``); the clients ask the sentinels for the service's primary whenever they
connect, so they follow it through a failover (redis-py's Sentinel support: a connection to a
primary that was demoted fails with READONLY, is dropped, and the next one asks again). The user
and password are those of the data nodes; ``sentinel_username`` and ``sentinel_password`` in the
query are the sentinels' own (none by default). Other query options are redis-py's URL options
(``ssl_cert_reqs``, ``ssl_ca_certs``, ``socket_connect_timeout``, ...); ``ssl_*`` ones apply to
the sentinels too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.asyncio.sentinel import SentinelConnectionPool as AsyncSentinelPool
from redis.backoff import NoBackoff
from redis.connection import HiredisRespSerializer, parse_url
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelConnectionPool
from redis.utils import HIREDIS_AVAILABLE

from .settings import Settings

log = logging.getLogger("ferrymq.http")

SENTINEL_SCHEMES = {"redis+sentinel": "redis", "rediss+sentinel": "rediss"}
SENTINEL_PORT = 26379
SENTINEL_SOCKET_TIMEOUT = 2.0
"""Seconds a sentinel gets to answer where the primary is: one that hangs must not stall every
new connection (the next sentinel is asked instead)."""


@dataclass(frozen=True)
class SentinelTarget:
    """What a ``redis+sentinel://`` URL says: where the sentinels are, which service, and how to
    connect to the sentinels and to the data nodes."""

    sentinels: list[tuple[str, int]]
    service: str
    connection: dict[str, Any] = field(default_factory=dict)
    """Options of the connections to the primary (user, password, db, TLS, timeouts)."""
    sentinel: dict[str, Any] = field(default_factory=dict)
    """Options of the connections to the sentinels."""


def is_sentinel_url(url: str) -> bool:
    return url.partition("://")[0].lower() in SENTINEL_SCHEMES


def parse_sentinel_url(url: str) -> SentinelTarget:
    """A ``redis+sentinel://`` URL -> its sentinels, service and connection options. ValueError
    (never quoting the password) if it is malformed."""
    scheme, _, rest = url.partition("://")
    plain_scheme = SENTINEL_SCHEMES.get(scheme.lower())
    if plain_scheme is None:
        raise ValueError(f"a Sentinel URL starts with {' or '.join(f'{s}://' for s in SENTINEL_SCHEMES)}")
    parts = urlsplit("//" + rest)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    sentinels = [_address(item) for item in hosts.split(",") if item]
    if not sentinels:
        raise ValueError("a Sentinel URL names at least one sentinel: redis+sentinel://HOST:PORT/SERVICE")
    service, _, db = parts.path.strip("/").partition("/")
    if not service:
        raise ValueError("a Sentinel URL names the service after the sentinels: redis+sentinel://HOST:PORT/SERVICE")
    if db and not db.isdigit():
        raise ValueError("a Sentinel URL's database follows the service as a number: .../SERVICE/DB")
    query = dict(parse_qsl(parts.query))
    sentinel_auth = {name.removeprefix("sentinel_"): query.pop(name)
                     for name in ("sentinel_username", "sentinel_password") if name in query}
    # The data nodes' options, read the way redis-py reads a plain URL of the same form.
    plain = f"{plain_scheme}://{userinfo + '@' if userinfo else ''}localhost/{db}?{urlencode(query)}"
    connection = parse_url(plain)
    for name in ("host", "port"):
        connection.pop(name, None)
    if connection.pop("connection_class", None) is not None:  # rediss: TLS
        connection["ssl"] = True
    sentinel = {name: value for name, value in connection.items()
                if name.startswith(("ssl", "socket_connect_timeout", "socket_keepalive"))}
    sentinel["socket_timeout"] = SENTINEL_SOCKET_TIMEOUT
    sentinel.update(sentinel_auth)
    return SentinelTarget(sentinels, unquote(service), connection, sentinel)


def _address(item: str) -> tuple[str, int]:
    parts = urlsplit("//" + item)
    if not parts.hostname:
        raise ValueError(f"no host in the sentinel address {item!r}")
    return unquote(parts.hostname), parts.port or SENTINEL_PORT  # .port raises ValueError if bad


def check_url(url: str) -> None:
    """ValueError if ``url`` is no Redis URL we can use (its text names the schemes we take)."""
    if is_sentinel_url(url):
        parse_sentinel_url(url)
        return
    try:
        parse_url(url)
    except ValueError as exc:
        raise ValueError(f"{exc}; or redis+sentinel:// (rediss+sentinel://) for Redis Sentinel") from None


# -- clients ---------------------------------------------------------------------------------------


class _SentinelPool(AsyncSentinelPool):
    """Connections to the service's current primary. Closing the client closes the connections to
    the sentinels too (redis-py leaves them open)."""

    async def disconnect(self, inuse_connections: bool = True) -> None:
        await super().disconnect(inuse_connections)
        for sentinel in self.sentinel_manager.sentinels:
            await sentinel.connection_pool.disconnect(inuse_connections)


class _BlockingSentinelPool(_SentinelPool, aioredis.BlockingConnectionPool):
    """The same, and when all connections are in use, callers wait for one instead of failing (as
    the server's pool does for a single Redis)."""


class _SyncSentinelPool(SentinelConnectionPool):
    """``_SentinelPool`` for synchronous clients."""

    def disconnect(self, inuse_connections: bool = True) -> None:
        super().disconnect(inuse_connections)
        for sentinel in self.sentinel_manager.sentinels:
            sentinel.connection_pool.disconnect(inuse_connections)


def redis_client(settings: Settings) -> aioredis.Redis | aioredis.RedisCluster:
    """The server's (and ``ferrymq pusher``'s) client. The URL of any node of a Redis Cluster gives
    a cluster client (it learns the other nodes from that one); a Sentinel URL one that follows
    the primary; anything else a client whose pool makes requests wait for a free connection
    rather than fail."""
    url = settings.redis_url
    if not url:
        raise ValueError("no Redis URL: `ferrymq serve` starts an embedded Redis and sets one")
    # No socket_timeout in any: see AsyncEngine.command_timeout, which bounds every call instead.
    if is_sentinel_url(url):
        client = async_client(url, connection_pool_class=_BlockingSentinelPool,
                              max_connections=settings.redis_max_connections, timeout=10,
                              socket_connect_timeout=2, health_check_interval=30)
        client.connection_pool.connection_class = packing_with_hiredis(client.connection_pool.connection_class)
        return client
    if is_cluster_node(url):
        # redis-py's cluster client has no blocking pool (a capped one fails when full), so the
        # connections to each node follow the number of requests in flight. No retries: it sent a
        # call again when its connection failed, after the script may have run (a put stored
        # twice); a failed node is looked up afresh by the next call all the same.
        return aioredis.RedisCluster.from_url(url, socket_connect_timeout=2, health_check_interval=30,
                                              retry=AsyncRetry(NoBackoff(), 0))
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=settings.redis_max_connections, timeout=10,
        socket_connect_timeout=2, health_check_interval=30,
    )
    pool.connection_class = packing_with_hiredis(pool.connection_class)
    return aioredis.Redis.from_pool(pool)


def packing_with_hiredis(connection_class: type) -> type:
    """redis-py's asyncio connections pack every command in Python (its synchronous ones use
    hiredis): 13 us for a put script call's two dozen keys and arguments, 2 us with hiredis.
    The same class, packing with redis-py's own hiredis serializer."""
    if not HIREDIS_AVAILABLE:
        return connection_class
    serializer = HiredisRespSerializer()

    def pack_command(self: Any, *args: Any) -> list[bytes]:
        return serializer.pack(*args)

    return type(f"Hiredis{connection_class.__name__}", (connection_class,), {"pack_command": pack_command})


def async_client(url: str, **options: Any) -> aioredis.Redis:
    """A ``redis.asyncio`` client of a single Redis or of a Sentinel service's primary."""
    if not is_sentinel_url(url):
        return aioredis.Redis.from_url(url, **options)
    target = parse_sentinel_url(url)
    pool_class = options.pop("connection_pool_class", _SentinelPool)
    sentinels = AsyncSentinel(target.sentinels,
                              sentinel_kwargs=_sentinel_options(target, options, AsyncRetry(NoBackoff(), 0)))
    return sentinels.master_for(target.service, connection_pool_class=pool_class, **{**target.connection, **options})


def sync_client(url: str, **options: Any) -> redis.Redis:
    """A synchronous client of a single Redis or of a Sentinel service's primary."""
    if not is_sentinel_url(url):
        return redis.Redis.from_url(url, **options)
    target = parse_sentinel_url(url)
    sentinels = Sentinel(target.sentinels, sentinel_kwargs=_sentinel_options(target, options, Retry(NoBackoff(), 0)))
    return sentinels.master_for(target.service, connection_pool_class=_SyncSentinelPool,
                                **{**target.connection, **options})


def _sentinel_options(target: SentinelTarget, options: dict[str, Any], retry: Any) -> dict[str, Any]:
    """The sentinels' connection options: the URL's, with the caller's connect timeout, and no
    retries (redis-py's clients retry with seconds of backoff by default): a sentinel that does
    not answer is skipped for the next one at once."""
    extra = {name: options[name] for name in ("socket_connect_timeout",) if name in options}
    return {**target.sentinel, **extra, "retry": retry}


def is_cluster_node(url: str) -> bool:
    """Whether the Redis at ``url`` runs in cluster mode. Asked once, at startup; a Redis that
    does not answer yet is taken for a single server (restart the server once a cluster is up).
    A Sentinel service is never a cluster."""
    if is_sentinel_url(url):
        return False
    try:
        with sync_client(url, socket_connect_timeout=2, socket_timeout=5) as probe:
            return str(probe.info("cluster").get("cluster_enabled", 0)) == "1"
    except (redis.RedisError, OSError):
        log.warning("Redis does not answer at startup; taking it for a single server, not a cluster")
        return False

"""Turns generator verbs into methods of the sync and async facades (one line per verb there)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Generator
from typing import Any, Concatenate, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")
Gen = Generator[Any, Any, R]


def sync_verb(verb: Callable[Concatenate[Any, P], Gen[R]]) -> Callable[Concatenate[Any, P], R]:
    @functools.wraps(verb)
    def method(self: Any, *args: P.args, **kwargs: P.kwargs) -> R:
        return self._run(verb(self._verbs, *args, **kwargs))

    return method


def async_verb(verb: Callable[Concatenate[Any, P], Gen[R]]) -> Callable[Concatenate[Any, P], Awaitable[R]]:
    @functools.wraps(verb)
    async def method(self: Any, *args: P.args, **kwargs: P.kwargs) -> R:
        return await self._run(verb(self._verbs, *args, **kwargs))

    return method


def is_cluster(client: Any) -> bool:
    """A ``redis.RedisCluster`` or ``redis.asyncio.RedisCluster``."""
    return hasattr(client, "get_nodes")


def check_client(client: Any) -> None:
    """Replies must stay bytes: bodies are binary-safe and ids are parsed from them."""
    from .errors import ConfigurationError

    get_encoder = getattr(client, "get_encoder", None)
    if get_encoder is not None and get_encoder().decode_responses:
        raise ConfigurationError("pass a Redis client created with decode_responses=False")


def translate(exc: Exception) -> Exception:
    """Redis errors -> engine errors (script replies by code; connection trouble -> Unavailable)."""
    from redis.exceptions import ResponseError

    from .errors import Unavailable, from_reply

    if is_transient(exc):
        return Unavailable(f"Redis is unavailable: {exc or type(exc).__name__}")
    if isinstance(exc, ResponseError):
        return from_reply(str(exc)) or exc
    return exc


def is_transient(exc: Exception) -> bool:
    """Whether ``exc`` says Redis cannot answer now (and may later), rather than what it answered.

    On a cluster, a master that is down shows as CLUSTERDOWN (the cluster stops serving), TRYAGAIN
    (slots moving), READONLY (a replica not yet promoted) or an uncovered slot: all pass with
    time, like a lost connection."""
    import builtins

    from redis.exceptions import (
        ClusterDownError, ConnectionError, ReadOnlyError, RedisClusterException, SlotNotCoveredError,
        TimeoutError, TryAgainError,
    )

    transient = (ConnectionError, TimeoutError, builtins.TimeoutError, ClusterDownError, TryAgainError,
                 ReadOnlyError, SlotNotCoveredError)
    return isinstance(exc, transient) or _cluster_unreachable(exc, RedisClusterException)


def _cluster_unreachable(exc: Exception, cluster_exception: type[Exception]) -> bool:
    """redis-py's cluster client says "no node answers" and "slots not covered" (while it learns
    the layout again) with its generic exception, which also reports misuse: tell them by text."""
    text = str(exc)
    return isinstance(exc, cluster_exception) and text.startswith(
        ("Redis Cluster cannot be connected", "All slots are not covered"))

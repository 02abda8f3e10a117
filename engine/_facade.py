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


def check_client(client: Any) -> None:
    """Replies must stay bytes: bodies are binary-safe and ids are parsed from them."""
    from .errors import ConfigurationError

    get_encoder = getattr(client, "get_encoder", None)
    if get_encoder is not None and get_encoder().decode_responses:
        raise ConfigurationError("pass a Redis client created with decode_responses=False")


def translate(exc: Exception) -> Exception:
    """Redis errors -> engine errors (script replies by code; connection trouble -> Unavailable)."""
    import builtins

    from redis.exceptions import ConnectionError, ResponseError, TimeoutError

    from .errors import Unavailable, from_reply

    if isinstance(exc, ResponseError):
        return from_reply(str(exc)) or exc
    if isinstance(exc, (ConnectionError, TimeoutError, builtins.TimeoutError)):
        return Unavailable(f"Redis is unavailable: {exc or 'no answer in time'}")
    return exc

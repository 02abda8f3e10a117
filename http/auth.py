"""Tokens: each maps to one project and grants access to that project only.

Static tokens come from the settings (``--token`` / ``FERRYMQ_TOKENS``); tokens added with
``ferrymq tokens add`` live in Redis as sha256 digests, never in clear. Lookups go by digest, so
no comparison ever runs over a token's characters (the constant-time concern), and a digest
that leaks from Redis does not give the token. Tokens are never logged.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from typing import Any

from ferrymq.engine.keys import tokens_key

_CACHE_TTL = 5.0
"""Seconds a Redis lookup is remembered: a revoked token stops working within this time."""


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenStore:
    """Tokens kept in Redis (``ferrymq tokens add|list|revoke``)."""

    def __init__(self, client: Any, prefix: str = "fmq") -> None:
        self.client = client
        self.key = tokens_key(prefix)

    async def add(self, project: str, token: str | None = None) -> str:
        token = token or secrets.token_urlsafe(24)
        await self.client.hset(self.key, digest(token), project)
        return token

    async def list(self) -> list[tuple[str, str]]:
        """(token id, project) pairs; the id is the first 12 characters of the digest."""
        entries = await self.client.hgetall(self.key)
        return sorted((d.decode()[:12], p.decode()) for d, p in entries.items())

    async def revoke(self, token_or_id: str) -> int:
        """Revoke a token, given in full or by its id (digest prefix). Returns how many."""
        entries = await self.client.hkeys(self.key)
        targets = [d for d in entries if d.decode() == digest(token_or_id)]
        if not targets and len(token_or_id) >= 8:
            targets = [d for d in entries if d.decode().startswith(token_or_id)]
        return await self.client.hdel(self.key, *targets) if targets else 0

    async def project_of(self, token: str) -> str | None:
        project = await self.client.hget(self.key, digest(token))
        return project.decode() if project is not None else None


class Verdicts:
    """What each token recently turned out to be (its project, or None), kept ``ttl`` seconds:
    a request's token is answered without hashing it again or asking Redis. Revoking a token
    in Redis therefore takes effect within ``ttl``. Keyed by the token itself (a string hashed
    with Python's randomized hash), in this process's memory only; cleared when it holds
    ``size`` tokens, so a flood of made-up tokens costs lookups, never memory."""

    def __init__(
        self, ttl: float = _CACHE_TTL, size: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl, self.size, self.clock = ttl, size, clock
        self._known: dict[str, tuple[float, str | None]] = {}

    def get(self, token: str) -> str | None | object:
        """The project, None, or ``UNKNOWN`` (never seen, or too long ago)."""
        found = self._known.get(token)
        if found is None or found[0] <= self.clock():
            return UNKNOWN
        return found[1]

    def remember(self, token: str, project: str | None) -> None:
        if len(self._known) >= self.size:
            self._known.clear()
        self._known[token] = (self.clock() + self.ttl, project)


UNKNOWN = object()


class Auth:
    def __init__(self, static: dict[str, str], store: TokenStore, verdicts: Verdicts | None = None) -> None:
        self._static = {digest(token): project for token, project in static.items()}
        self._store = store
        self._verdicts = verdicts or Verdicts()

    @property
    def has_static_tokens(self) -> bool:
        return bool(self._static)

    async def project_of(self, token: str | None) -> str | None:
        """The project a token belongs to, or None. May raise ``Unavailable`` (Redis down)."""
        if not token:
            return None
        known = self._verdicts.get(token)
        if known is not UNKNOWN:
            return known  # type: ignore[return-value]
        project = await self._verdict(token)
        self._verdicts.remember(token, project)
        return project

    async def _verdict(self, token: str) -> str | None:
        key = digest(token)
        if key in self._static:
            return self._static[key]
        return await self._lookup(token)

    async def _lookup(self, token: str) -> str | None:
        from redis.exceptions import ConnectionError, TimeoutError

        from ferrymq.engine.errors import Unavailable

        try:
            return await self._store.project_of(token)
        except (ConnectionError, TimeoutError) as exc:
            raise Unavailable(f"Redis is unavailable: {exc}") from exc

"""Tokens: each maps to one project and grants access to that project only.

Static tokens come from the settings (``--token``, ``--token-file``, ``FERRYMQ_TOKENS``); tokens
added with ``ferrymq tokens add`` live in Redis as digests, never in clear. Lookups go by digest,
so no comparison ever runs over a token's characters (the constant-time concern). Tokens are
never logged.

Two kinds of stored digests:

- a random token (``tokens add`` makes one: 192 bits) is stored as its sha256: guessing it from
  a leaked digest is hopeless, and the lookup costs one hash;
- a token a person chose (``tokens add --token``) may be guessable, so it is stored as a slow,
  salted hash (scrypt, 16 MiB, ~50 ms, with a random salt of the deployment): a leaked Redis
  dump does not let anyone test guesses at GPU speed. The salt is one per deployment, not one
  per token, so that the digest stays a lookup key (no scan of every stored token).

Verification stays cheap on the hot path: a verdict is cached per process for ``_CACHE_TTL``
seconds (so a revoked token stops working within that time), and a chosen token's slow digest
is remembered once computed, so checking it again is one ``HGET``, never a second scrypt. Only a
token that is in neither store costs a scrypt, at most ``_SLOW_AT_ONCE`` at a time, in a thread,
and only while chosen tokens exist; failed authentications are limited per client address
(``FailedAuths``), which bounds that work per client.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import ipaddress
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from ferrymq.engine.core import remember_bounded
from ferrymq.engine.keys import chosen_tokens_key, token_salt_key, tokens_key

from .errors import Problem

_CACHE_TTL = 5.0
"""Seconds a Redis lookup is remembered: a revoked token stops working within this time."""
_CACHE_MAX = 10_000
"""Verdicts (and slow digests) remembered per process; more and the oldest are forgotten."""
_SLOW_AT_ONCE = 2
"""scrypt computations at once per process (16 MiB each)."""
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "maxmem": 64 * 1024 * 1024, "dklen": 32}


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def slow_digest(token: str, salt: bytes) -> str:
    return hashlib.scrypt(token.encode("utf-8"), salt=salt, **_SCRYPT).hex()


class TokenStore:
    """Tokens kept in Redis (``ferrymq tokens add|list|revoke``): random ones by sha256 in one
    hash, chosen ones by scrypt in another (see the module docstring)."""

    def __init__(self, client: Any, prefix: str = "fmq") -> None:
        self.client = client
        self.key = tokens_key(prefix)
        self.chosen_key = chosen_tokens_key(prefix)
        self.salt_key = token_salt_key(prefix)
        self._salt: bytes | None = None
        self._slow_at_once = asyncio.Semaphore(_SLOW_AT_ONCE)

    async def add(self, project: str, token: str | None = None) -> str:
        """Store a token for ``project``: the given one (slow digest), else a new random one."""
        if token is None:
            token = secrets.token_urlsafe(24)
            await self.client.hset(self.key, digest(token), project)
        else:
            await self.client.hset(self.chosen_key, await self.slow(token), project)
        return token

    async def list(self) -> list[tuple[str, str, bool]]:
        """(token id, project, chosen by a person) triples; the id is the first 12 characters of
        the digest."""
        random_ = await self.client.hgetall(self.key)
        chosen = await self.client.hgetall(self.chosen_key)
        entries = [(d.decode()[:12], p.decode(), False) for d, p in random_.items()]
        entries += [(d.decode()[:12], p.decode(), True) for d, p in chosen.items()]
        return sorted(entries)

    async def revoke(self, token_or_id: str) -> int:
        """Revoke a token, given in full or by its id (digest prefix). Returns how many."""
        revoked = 0
        for key, whole in ((self.key, digest(token_or_id)), (self.chosen_key, None)):
            entries = await self.client.hkeys(key)
            if whole is None and entries:  # only hash a chosen token when there are some
                whole = await self.slow(token_or_id)
            targets = [d for d in entries if d.decode() == whole]
            if not targets and len(token_or_id) >= 8:
                targets = [d for d in entries if d.decode().startswith(token_or_id)]
            revoked += await self.client.hdel(key, *targets) if targets else 0
        return revoked

    async def project_of(self, token: str, remembered: dict[str, str] | None = None) -> str | None:
        """The project of a stored token, or None. ``remembered`` maps sha256 digests to the
        slow digests already computed (filled here), so a chosen token is scrypted once."""
        fast = digest(token)
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hget(self.key, fast)
            pipe.exists(self.chosen_key)
            project, any_chosen = await pipe.execute()
        if project is None and any_chosen:
            slow = (remembered or {}).get(fast) or await self.slow(token)
            project = await self.client.hget(self.chosen_key, slow)
            if project is not None and remembered is not None:
                remembered[fast] = slow
        return project.decode() if project is not None else None

    async def slow(self, token: str) -> str:
        """The slow digest of a chosen token (in a thread: ~50 ms of CPU)."""
        salt = await self.salt()
        async with self._slow_at_once:
            return await asyncio.to_thread(slow_digest, token, salt)

    async def salt(self) -> bytes:
        """The deployment's salt, made by the first chosen token and never changed."""
        if self._salt is None:
            await self.client.set(self.salt_key, secrets.token_hex(16), nx=True)
            self._salt = bytes.fromhex((await self.client.get(self.salt_key)).decode())
        return self._salt


class FailedAuths:
    """Failed authentications per client, in fixed windows of ``window`` seconds: a client with
    ``limit`` failures in its window is refused until the window ends. A client is an IPv4
    address, or an IPv6 /64 (whoever has one address of a /64 usually has them all). Memory is
    bounded: at most ``capacity`` clients are remembered, the least recently failing forgotten
    first (which at worst gives a forgotten client a fresh window)."""

    def __init__(self, limit: int, window: float = 60.0, capacity: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window, self.capacity, self.clock = limit, window, capacity, clock
        self._clients: OrderedDict[str, tuple[float, int]] = OrderedDict()  # client -> (window start, failures)
        self.failures = 0
        """Failed authentications seen (for /metrics)."""
        self.refused = 0
        """Requests refused because their client had failed too often (for /metrics)."""

    def __len__(self) -> int:
        return len(self._clients)

    def retry_after(self, address: str) -> int:
        """Whole seconds until ``address`` may try again; 0 if it may now."""
        if not self._clients:  # no failure to count (nearly always): no address to parse
            return 0
        entry = self._clients.get(client_key(address))
        if entry is None or entry[1] < self.limit:
            return 0
        left = entry[0] + self.window - self.clock()
        return max(0, int(-(-left // 1)))

    def failed(self, address: str) -> None:
        self.failures += 1
        client, now = client_key(address), self.clock()
        start, count = self._clients.pop(client, (now, 0))
        if now >= start + self.window:
            start, count = now, 0
        self._clients[client] = (start, count + 1)
        while len(self._clients) > self.capacity:
            self._clients.popitem(last=False)

    def blocked_clients(self) -> int:
        now = self.clock()
        return sum(1 for start, count in self._clients.values() if count >= self.limit and now < start + self.window)


@functools.lru_cache(maxsize=4096)  # clients come back; parsing an address is ~6 µs
def client_key(address: str) -> str:
    """The unit failures are counted by: the address, or its /64 for IPv6."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


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
        remember_bounded(self._known, token, (self.clock() + self.ttl, project), self.size)


UNKNOWN = object()


class Auth:
    def __init__(self, static: dict[str, str], store: TokenStore, failures: FailedAuths | None = None,
                 verdicts: Verdicts | None = None) -> None:
        self._static = {digest(token): project for token, project in static.items()}
        self._store = store
        self._verdicts = verdicts or Verdicts()
        self._slow: dict[str, str] = {}
        self.failures = failures

    @property
    def has_static_tokens(self) -> bool:
        return bool(self._static)

    async def project_of(self, token: str | None, client: str | None = None, *, count: bool = True) -> str | None:
        """The project a token belongs to, or None. With the caller's ``client`` address, a
        client that failed too often is refused (``Problem`` 429) whatever it sends, and a wrong
        token counts as a failure of that client (unless ``count`` is false: the caller may still
        accept the token otherwise, then reports with ``failed``). May raise ``Unavailable``."""
        if not token:
            return None  # no token is no guess: never counted
        if client is not None and self.failures is not None:
            wait = self.failures.retry_after(client)
            if wait:
                self.failures.refused += 1
                raise Problem(429, f"Too many failed authentications from this address: retry in {wait} s",
                              headers={"Retry-After": str(wait)})
        project = self._verdicts.get(token)
        if project is UNKNOWN:
            project = await self._verdict(token)
            self._verdicts.remember(token, project)  # type: ignore[arg-type]
        if project is None and client is not None and count:
            self.failed(client)
        return project  # type: ignore[return-value]

    def failed(self, client: str) -> None:
        """An authentication of ``client`` failed."""
        if self.failures is not None:
            self.failures.failed(client)

    async def _verdict(self, token: str) -> str | None:
        key = digest(token)
        if key in self._static:
            return self._static[key]
        if len(self._slow) > _CACHE_MAX:
            self._slow.clear()
        return await self._lookup(token)

    async def _lookup(self, token: str) -> str | None:
        from ferrymq.engine import Unavailable, is_transient

        try:
            return await self._store.project_of(token, self._slow)
        except Exception as exc:  # Redis moving (a failover, a cluster resharding) is a 503, as for the engine
            if is_transient(exc):
                raise Unavailable(f"Redis is unavailable: {exc or type(exc).__name__}") from exc
            raise

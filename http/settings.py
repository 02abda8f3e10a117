"""Server settings: one dataclass, filled from the command line or the environment.

Settings flow one way: ``Settings.from_env()`` (or the CLI) -> ``create_app(settings)``. Nothing
reads the environment at import time; tests build ``Settings(...)`` directly.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ferrymq.engine.limits import LIMITS, QUOTA_NAMES, QueueDefaults, Quotas


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "ferrymq"


def read_tokens_file(path: Path) -> dict[str, str]:
    """``TOKEN:PROJECT`` lines (blank lines and ``#`` comments skipped) -> {token: project}.
    Errors name the line, never its text (it may hold a token)."""
    try:
        lines = path.read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read the token file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    tokens: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            tokens.update(parse_tokens(line))
        except ValueError:
            raise ValueError(f"the token file {path}, line {number}: a token must look like TOKEN:PROJECT") from None
    return tokens


def parse_quotas(text: str) -> Quotas:
    """``queues=100,messages=1000000,bytes=1073741824`` -> Quotas (the others: the defaults)."""
    values: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in QUOTA_NAMES or not value.strip().isdecimal():
            raise ValueError(f"FERRYMQ_QUOTAS: {item!r} is not NAME=N, NAME one of {', '.join(QUOTA_NAMES)}")
        values[name] = int(value)
    return Quotas(**values)


def parse_partitions(text: str) -> int:
    """``FERRYMQ_DEFAULT_PARTITIONS``: a whole number from 1 to the engine's limit."""
    value = text.strip()
    if not value.isdecimal() or not 1 <= int(value) <= LIMITS.max_partitions:
        raise ValueError(f"FERRYMQ_DEFAULT_PARTITIONS must be a whole number from 1 to {LIMITS.max_partitions}, "
                         f"not {text!r}")
    return int(value)


def parse_tokens(text: str) -> dict[str, str]:
    """``tok1:proj1,tok2:proj2`` -> {token: project}."""
    tokens = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        token, sep, project = item.rpartition(":")
        if not sep or not token or not project:  # the message never repeats what may be a token
            raise ValueError("a token must look like TOKEN:PROJECT")
        tokens[token] = project
    return tokens


def flag(text: str) -> bool:
    """An on/off variable: "", 0, false and no are off."""
    return text not in ("", "0", "false", "no")


def parse_list(text: str) -> tuple[str, ...]:
    """``a, b,c`` -> ("a", "b", "c")."""
    return tuple(filter(None, (part.strip() for part in text.split(","))))


# How ``Settings.from_env`` reads each field from its variable FERRYMQ_<FIELD>. Set to "", these
# variables still count (FERRYMQ_PORT="" is an error, FERRYMQ_LOG_JSON="" is off)...
FROM_ENV: dict[str, Callable[[str], object]] = {
    "host": str, "port": int, "workers": int, "max_request_bytes": int, "appendfsync": str,
    "command_timeout": float, "pushers": int, "push_concurrency": int, "push_timeout": float,
    "sweeper": lambda text: text not in ("0", "false", "no"),
    "merge_calls": lambda text: text not in ("0", "false", "no"),
    "log_json": flag,
    "access_log": flag,
    "auth_failures": int, "header_timeout": float, "body_timeout": float, "keep_alive_timeout": float,
    "limit_concurrency": lambda text: int(text) or None,  # 0: no limit
}
# ...while these, set to "", are as good as unset.
FROM_ENV_UNLESS_EMPTY: dict[str, Callable[[str], object]] = {
    "redis_url": str, "data_dir": Path, "tokens": parse_tokens, "prefix": str, "public_url": str,
    "push_allow": parse_list, "metrics_token": str, "project": str, "min_replicas_ack": int,
    "min_replicas_ack_timeout": float, "tokens_file": Path, "quotas": parse_quotas,
    "default_partitions": parse_partitions,
}


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    redis_url: str | None = None
    """None: start an embedded redis-server with its data in ``data_dir``."""
    data_dir: Path = field(default_factory=default_data_dir)
    workers: int = 1
    tokens: dict[str, str] = field(default_factory=dict)
    """Static tokens (token -> project), besides those added with ``ferrymq tokens add``."""
    prefix: str = "fmq"
    """Prefix of every Redis key (several deployments can share one Redis)."""
    max_request_bytes: int = 4 * 1024 * 1024
    """Largest request body; more is answered 413 (a 256 KB message JSON-escaped fits)."""
    redis_max_connections: int = 64
    """Connections per worker process; requests wait for a free one instead of failing."""
    command_timeout: float = 10.0
    """Seconds one Redis call may take; longer is answered 503 (a hung or unreachable Redis)."""
    appendfsync: str = "everysec"
    """Embedded Redis only: "always" makes every acknowledged write durable (slower)."""
    pushers: int = 1
    """Push-queue delivery loops per worker process (0: none here; run ``ferrymq pusher``)."""
    push_concurrency: int = 64
    """Pushes in flight per delivery loop."""
    push_timeout: float = 60.0
    """Seconds a subscriber gets to answer a push."""
    public_url: str | None = None
    """Where push subscribers reach this server to acknowledge a 202 (default http://host:port)."""
    push_allow: tuple[str, ...] = ()
    """Networks (CIDR) and host names pushes may reach beyond global addresses: by default no
    loopback, private, link-local, multicast or otherwise special address (``engine/egress.py``)."""
    sweeper: bool = True
    """Run the background sweeper (expiry and dead letters of idle queues) in this server."""
    merge_calls: bool = True
    """Merge the single-message puts, reserves and deletes that concurrent requests make on one
    queue into one script call (``ferrymq.engine.coalesce``): about half of Redis's CPU per
    message at 16 requests in flight. Off: each request's calls go on their own."""
    graceful_timeout: float = 35.0
    """Seconds in-flight requests get to finish at shutdown (long polls end at once)."""
    log_json: bool = False
    """Log JSON lines (and the access log's: id, route, status, duration) instead of uvicorn's text."""
    access_log: bool = False
    """A log line per request (uvicorn's, or ours in JSON). Off by default: at thousands of
    requests a second it fills disks, and without it a single-message POST is answered 1.22x
    as fast (bench/RESULTS.md, "issue 14, access log"); /metrics counts requests by route and
    status either way."""
    metrics_token: str | None = None
    """If set, ``/metrics`` asks for ``Authorization: Bearer <metrics_token>`` (it lists every
    project's queue names); None leaves it open, for a scraper on a private network."""
    project: str | None = None
    """The project the queue commands of the CLI work on (``--project``)."""
    min_replicas_ack: int = 0
    """Acknowledge a write only once this many replicas have it (``WAIT``); 0: as soon as the
    primary has it. See ferrymq.engine.replication."""
    min_replicas_ack_timeout: float = 1.0
    """Seconds the replicas get to confirm a write; later, the request fails (504), never a false
    success. Keep it below ``command_timeout``."""
    tokens_file: Path | None = None
    """A file of ``TOKEN:PROJECT`` lines (``--token-file``): static tokens that, unlike
    ``--token``, neither ``ps`` nor the process environment shows. Read by every worker."""
    auth_failures: int = 30
    """Failed authentications a client address may make per minute; then every request it makes
    is answered 429 until the minute ends (0: no limit)."""
    header_timeout: float = 10.0
    """Seconds a client gets to send a request's head (from connecting, or from the first byte
    after the previous response); then 408 and the connection is closed (0: no limit)."""
    body_timeout: float = 60.0
    """Seconds a client gets to send a request's body after its head; then 408 and close."""
    keep_alive_timeout: float = 5.0
    """Seconds an idle keep-alive connection is kept open between requests."""
    limit_concurrency: int | None = 1000
    """Connections (and requests) a worker serves at once; beyond, requests are answered 503.
    Long polls hold theirs for up to 30 s. None: no limit (raise ``ulimit -n`` with it)."""
    quotas: Quotas = field(default_factory=Quotas)
    """Every project's quotas, unless it has its own (``ferrymq projects set-limits``)."""
    default_partitions: int = 1
    """Partitions of the queues created without a ``partitions`` setting (``QueueDefaults``):
    more than 1 spreads each new queue over that many hash slots (README "Partitioned queues")."""

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: object) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for name, read in {**FROM_ENV, **FROM_ENV_UNLESS_EMPTY}.items():
            text = env.get(f"FERRYMQ_{name.upper()}")
            if text is not None and (text or name in FROM_ENV):
                values[name] = read(text)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    def to_env(self) -> dict[str, str]:
        """The variables ``from_env`` reads back into these settings: how ``ferrymq serve`` hands
        them to the app, which uvicorn builds from an import string in every worker."""
        return {
            "FERRYMQ_HOST": self.host,
            "FERRYMQ_PORT": str(self.port),
            "FERRYMQ_REDIS_URL": self.redis_url or "",
            "FERRYMQ_DATA_DIR": str(self.data_dir),
            "FERRYMQ_WORKERS": str(self.workers),
            "FERRYMQ_TOKENS": ",".join(f"{token}:{project}" for token, project in self.tokens.items()),
            "FERRYMQ_PREFIX": self.prefix,
            "FERRYMQ_MAX_REQUEST_BYTES": str(self.max_request_bytes),
            "FERRYMQ_APPENDFSYNC": self.appendfsync,
            "FERRYMQ_COMMAND_TIMEOUT": str(self.command_timeout),
            "FERRYMQ_PUSHERS": str(self.pushers),
            "FERRYMQ_PUSH_CONCURRENCY": str(self.push_concurrency),
            "FERRYMQ_PUSH_TIMEOUT": str(self.push_timeout),
            "FERRYMQ_PUBLIC_URL": self.public_url or "",
            "FERRYMQ_PUSH_ALLOW": ",".join(self.push_allow),
            "FERRYMQ_SWEEPER": "1" if self.sweeper else "0",
            "FERRYMQ_MERGE_CALLS": "1" if self.merge_calls else "0",
            "FERRYMQ_LOG_JSON": "1" if self.log_json else "0",
            "FERRYMQ_ACCESS_LOG": "1" if self.access_log else "0",
            "FERRYMQ_METRICS_TOKEN": self.metrics_token or "",
            "FERRYMQ_PROJECT": self.project or "",
            "FERRYMQ_MIN_REPLICAS_ACK": str(self.min_replicas_ack),
            "FERRYMQ_MIN_REPLICAS_ACK_TIMEOUT": str(self.min_replicas_ack_timeout),
            "FERRYMQ_TOKENS_FILE": str(self.tokens_file or ""),
            "FERRYMQ_AUTH_FAILURES": str(self.auth_failures),
            "FERRYMQ_HEADER_TIMEOUT": str(self.header_timeout),
            "FERRYMQ_BODY_TIMEOUT": str(self.body_timeout),
            "FERRYMQ_KEEP_ALIVE_TIMEOUT": str(self.keep_alive_timeout),
            "FERRYMQ_LIMIT_CONCURRENCY": str(self.limit_concurrency or 0),
            "FERRYMQ_QUOTAS": ",".join(f"{name}={getattr(self.quotas, name)}" for name in QUOTA_NAMES),
            "FERRYMQ_DEFAULT_PARTITIONS": str(self.default_partitions),
        }

    def static_tokens(self) -> dict[str, str]:
        """Tokens of ``--token``/``FERRYMQ_TOKENS`` and of the token file (read now: ValueError
        if it is unreadable or malformed)."""
        return {**(read_tokens_file(self.tokens_file) if self.tokens_file else {}), **self.tokens}

    @property
    def base_url(self) -> str:
        """This server's address as push subscribers should use it."""
        return self.public_url or f"http://{self.host}:{self.port}"

    def engine_options(self) -> dict[str, Any]:
        """What every engine the server and the CLI build takes from these settings."""
        return {"prefix": self.prefix, "quotas": self.quotas, "min_replicas_ack": self.min_replicas_ack,
                "min_replicas_ack_timeout": self.min_replicas_ack_timeout,
                "defaults": QueueDefaults(partitions=self.default_partitions)}

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

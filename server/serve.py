"""``ferrymq serve``: the app under uvicorn, in one process or several, with a shutdown that
does not wait for long polls.

uvicorn builds the app in every worker from ``create_app`` (an import string, as its
multiprocess supervisor requires), so the settings travel through the environment
(``Settings.to_env`` / ``Settings.from_env``). The embedded Redis, when there is one, runs in
this (parent) process and outlives the workers.

On SIGTERM or SIGINT uvicorn stops accepting connections and waits up to
``settings.graceful_timeout`` for requests in flight. A long poll could hold that for 30 s, so
``GracefulServer`` first closes the engine's notifier: every waiting request returns what it
has at once.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import math
import os
import re
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from functools import cached_property
from typing import Any, TypeVar
from unittest import mock
from urllib.parse import urlsplit

import redis
import uvicorn
from starlette.applications import Starlette
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import multiprocess

from ferrymq.engine import AsyncEngine
from ferrymq.http.auth import TokenStore
from ferrymq.http.connect import async_client
from ferrymq.http.settings import Settings

from . import timeouts
from .embedded import redis_for
from .timeouts import ServerConfig

T = TypeVar("T")

APP = "ferrymq.http.app:create_app"


class GracefulServer(uvicorn.Server):
    """A uvicorn server whose shutdown first ends the long polls (they answer what they have)."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        freeze_startup_objects()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await self.end_long_polls()
        await super().shutdown(sockets)

    async def end_long_polls(self) -> None:
        engine = getattr(starlette_app(self.config.loaded_app).state, "engine", None)
        if engine is not None:  # None: the lifespan never started
            await engine.aclose()


def freeze_startup_objects() -> None:
    """Move every object alive once the app has started (modules, classes, the routing table, the
    engine's scripts: tens of thousands, kept until exit) out of the garbage collector's reach.
    Under load, objects of requests in flight keep reaching the oldest generation, and each full
    collection then walked all of them too: 20-35 ms with the loop stopped, every ~0.5 s, the p99
    of every Redis-bound route (bench/RESULTS.md, "HTTP hot path, continued")."""
    gc.collect()  # what is garbage now is not frozen
    gc.freeze()
    say(f"{gc.get_freeze_count():,} objects of startup frozen (garbage collections skip them)")


def starlette_app(app: Any) -> Any:
    """The factory's app under uvicorn's middleware (each wrapper keeps the next in ``.app``)."""
    while not isinstance(app, Starlette) and hasattr(app, "app"):
        app = app.app
    return app


class GracefulWorker(multiprocess.Process):
    """A worker process of uvicorn's supervisor that runs a ``GracefulServer``."""

    @cached_property
    def server(self) -> uvicorn.Server:  # type: ignore[override]
        return GracefulServer(config=self.config)


class OwnSocketWorker(GracefulWorker):
    """A worker that listens on a socket of its own, bound with SO_REUSEPORT beside its
    siblings' (``run``), instead of the supervisor's shared one."""

    def target(self, sockets: list[socket.socket] | None = None) -> None:  # runs in the worker
        super().target([reuse_port_listener(self.config)])


def serve(settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT. Without a Redis URL, start the data directory's embedded
    Redis first (or reuse the running one) and stop it after the server has exited."""
    # SIGTERM unwinds like Ctrl+C, so the embedded Redis is stopped however the server ends;
    # uvicorn re-raises the signal once it has shut down, which lands here as KeyboardInterrupt.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        with redis_for(settings) as ready:
            announce(ready, embedded=settings.redis_url is None)
            os.environ.update(ready.to_env())
            config = uvicorn_config(ready)
            say("event loop {}, HTTP parser {}".format(*event_loop_and_parser()))
            run(config)
    except KeyboardInterrupt:
        pass


def push(settings: Settings) -> None:
    """``ferrymq pusher``: push-queue delivery loops without an HTTP server, until SIGTERM or
    SIGINT (pushes in flight get a few seconds; an unfinished one is pushed again later)."""
    # Until the loop runs (starting the embedded Redis), a signal unwinds like Ctrl+C.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        with redis_for(settings) as ready:
            say(f"pushing from the Redis at {redacted(ready.redis_url or '')} "
                f"({max(1, ready.pushers)} loop(s) of {ready.push_concurrency} pushes)")
            try:
                asyncio.run(push_until_stopped(ready))
            finally:  # the loop's close reset it; the embedded Redis is still to be stopped
                signal.signal(signal.SIGTERM, signal.default_int_handler)
    except KeyboardInterrupt:
        pass


async def push_until_stopped(settings: Settings) -> None:
    # The app module builds the server's client and pushers; imported here, not by every command.
    from ferrymq.http.app import pusher, redis_client

    # The loop's own handlers, not KeyboardInterrupt: raised at whatever line runs when the signal
    # lands, that can be inside a library that swallows it (anyio's connect in a push did), and the
    # process went on pushing.
    stopped = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stopped.set)
    client = redis_client(settings)
    engine = AsyncEngine(client, command_timeout=settings.command_timeout, **settings.engine_options())
    pushers = [pusher(engine, settings) for _ in range(max(1, settings.pushers))]
    for each in pushers:
        each.start()
    try:
        await stopped.wait()
    finally:
        await asyncio.gather(*(each.stop() for each in pushers))  # each gives its pushes a few seconds
        await engine.aclose()
        await client.aclose()
        say(f"stopped after {sum(each.delivered for each in pushers)} successful pushes")


def uvicorn_config(settings: Settings, app: str = APP) -> uvicorn.Config:
    """How ``ferrymq serve`` runs uvicorn (``app``: another factory, for the benchmark's bare app)."""
    loop, http = event_loop_and_parser()
    return ServerConfig(
        app, factory=True, host=settings.host, port=settings.port, workers=settings.workers,
        lifespan="on", access_log=settings.access_log, loop=loop,
        timeout_graceful_shutdown=math.ceil(settings.graceful_timeout), **client_limits(settings, http),
    )


def event_loop_and_parser() -> tuple[str, str]:
    """uvloop and httptools (dependencies: the bare stack answers twice the requests with them),
    or asyncio and h11 where they could not be installed (a platform without wheels for them)."""
    return ("uvloop" if importable("uvloop") else "asyncio", "httptools" if importable("httptools") else "h11")


def importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def client_limits(settings: Settings, http: str = "auto") -> dict[str, Any]:
    """The ServerConfig options that bound what one client can hold (see timeouts.py), for the
    HTTP protocol ``http`` (uvicorn's names: httptools, h11, auto)."""
    return {
        "http": timeouts.protocol(http), "header_timeout": settings.header_timeout,
        "body_timeout": settings.body_timeout, "timeout_keep_alive": settings.keep_alive_timeout,
        "limit_concurrency": settings.limit_concurrency,
    }


def run(config: uvicorn.Config) -> None:
    """Serve ``config``: in this process, or in ``config.workers`` worker processes.

    Several workers each listen on a socket of their own (SO_REUSEPORT), where the platform
    has it: the kernel then spreads new connections over the workers by their addresses. On
    one shared socket the first worker to wake accepted every connection pending, so a client
    opening its 16 keep-alive connections at once often had all of them served by one worker
    while the other idled (bench/RESULTS.md: 2 of 3 rounds of the 2-worker /ping). This
    process binds the address first without the option, so an address in use (another
    server, a second `ferrymq serve`) still stops the start. The cost: connections still
    waiting in a worker's queue when it stops are refused rather than left to its siblings."""
    if config.workers == 1:
        GracefulServer(config).run()
        return
    sock = tcp_listener(config.bind_socket())
    worker, sockets = GracefulWorker, [sock]
    if own_sockets(config):
        sock.close()  # it proved the address free; each worker now binds its own
        worker, sockets = OwnSocketWorker, []
    try:
        # uvicorn's supervisor creates (and re-creates) its workers by this module-level name
        # and has no other hook for a Server subclass.
        with mock.patch.object(multiprocess, "Process", worker):
            multiprocess.Multiprocess(config, sockets=sockets).run()
    finally:
        sock.close()


def own_sockets(config: uvicorn.Config) -> bool:
    """Whether the workers can each have a socket of their own: TCP on a port chosen (not 0, which
    would give each its own port), and SO_REUSEPORT exists."""
    return hasattr(socket, "SO_REUSEPORT") and config.uds is None and config.fd is None and config.port != 0


def reuse_port_listener(config: uvicorn.Config) -> socket.socket:
    """A worker's own listening socket on ``config``'s address (``run``)."""
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((config.host, config.port))
    except OSError as exc:
        say(f"error: cannot listen on {config.host}:{config.port}: {exc}")
        sys.exit(STARTUP_FAILURE)
    return sock


def tcp_listener(sock: socket.socket) -> socket.socket:
    """The same listening socket, marked as TCP. uvicorn binds the workers' shared socket with
    its protocol left at 0, and asyncio turns TCP_NODELAY on only for connections accepted from
    a socket that says IPPROTO_TCP: without it, Nagle's algorithm and the client's delayed ACK
    stall every keep-alive response by ~40 ms (measured: 8x fewer requests/s with 2 workers
    than with 1; uvicorn issue #3149)."""
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return sock
    return socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())


def announce(settings: Settings, *, embedded: bool) -> None:
    """Say where the data lives, and warn when no token can open any project."""
    if embedded:
        say(f"data: {settings.data_dir} (embedded Redis at {redacted(settings.redis_url or '')}, "
            f"appendfsync {settings.appendfsync})")
    else:
        say(f"data: in the Redis at {redacted(settings.redis_url or '')}")
    if settings.tokens_file and settings.tokens_file.stat().st_mode & 0o077:
        say(f"warning: the token file {settings.tokens_file} can be read by other users: chmod 600 it")
    if settings.static_tokens():
        return
    try:
        stored = with_token_store(settings, TokenStore.list)
    except (redis.RedisError, OSError):
        say("warning: Redis does not answer yet; requests are answered 503 until it does")
        return
    if not stored:
        say("warning: no token is configured, so every request is refused (401). "
            "Add one with `ferrymq tokens add PROJECT`, or start with --token TOKEN:PROJECT.")


def redacted(url: str) -> str:
    """``url`` without its passwords (it ends up in terminals and logs): the user's, and the
    sentinels' of a Sentinel URL."""
    url = re.sub(r"(sentinel_password=)[^&#]*", r"\1***", url)
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    return parts._replace(netloc=f"{user}:***@{parts.netloc.rpartition('@')[2]}").geturl()


def say(text: str) -> None:
    print(f"ferrymq: {text}", file=sys.stderr, flush=True)


def with_token_store(settings: Settings, action: Callable[[TokenStore], Awaitable[T]]) -> T:
    """Run one TokenStore call to completion over a client of its own (the CLI is synchronous)."""

    async def run_action() -> T:
        client = async_client(settings.redis_url or "", socket_connect_timeout=5, socket_timeout=10)
        try:
            return await action(TokenStore(client, settings.prefix))
        finally:
            await client.aclose()

    return asyncio.run(run_action())

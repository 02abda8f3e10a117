"""Push-queue fixtures: subscriber HTTP servers on loopback whose answers the tests script, and a
FerryMQ server with a pusher running (the shared live server has none)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import redis

from ferrymq.engine import FakeClock
from ferrymq.http.app import create_app
from ferrymq.http.settings import Settings

PUSH_TIMEOUT = 0.5
"""Seconds the test pushers give a subscriber: a hanging subscriber costs the tests this much."""

HANG = -1
"""An answer that never comes (the subscriber holds the request past the push timeout)."""

LOOPBACK = ("127.0.0.1",)
"""What the test pushers may reach beyond global addresses: the subscribers here, on loopback."""


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Subscriber:
    """A loopback HTTP server. Each POST gets the next of ``answers`` (status codes, or HANG),
    then ``otherwise``; every request is recorded."""

    url: str
    answers: list[int] = field(default_factory=list)
    otherwise: int = 200
    pause: float = 0.0
    """Seconds each answer takes (a slow subscriber)."""
    received: list[Received] = field(default_factory=list)
    released: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, request: Received) -> int:
        with self.lock:
            self.received.append(request)
            return self.answers.pop(0) if self.answers else self.otherwise

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.url} got {len(self.received)} pushes, expected {count}")
            time.sleep(0.01)
        return self.received


def serve_subscriber() -> tuple[Subscriber, ThreadingHTTPServer]:
    holder: list[Subscriber] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            sub = holder[0]
            status = sub.answer(Received(self.path, dict(self.headers), body, time.monotonic()))
            if status == HANG:
                sub.released.wait(PUSH_TIMEOUT * 4)
                status = 200
            elif sub.pause:
                time.sleep(sub.pause)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    holder.append(Subscriber(f"http://127.0.0.1:{httpd.server_port}/hook"))
    threading.Thread(target=httpd.serve_forever, name="subscriber", daemon=True).start()
    return holder[0], httpd


@pytest.fixture
def subscribers() -> Iterator[Callable[..., Subscriber]]:
    """``subscribers(answers=[500, 200], otherwise=200)`` starts one more subscriber server."""
    servers: list[tuple[Subscriber, ThreadingHTTPServer]] = []

    def start(answers: list[int] | None = None, otherwise: int = 200, pause: float = 0.0) -> Subscriber:
        sub, httpd = serve_subscriber()
        sub.answers, sub.otherwise, sub.pause = list(answers or []), otherwise, pause
        servers.append((sub, httpd))
        return sub

    yield start
    for sub, httpd in servers:
        sub.released.set()
        httpd.shutdown()
        httpd.server_close()


@dataclass
class PushServer:
    url: str
    clock: FakeClock
    http: httpx.Client


@pytest.fixture
def push_servers(redis_url: str, serve_app: Callable, test_tokens: dict[str, str]) -> Iterator[Callable[..., PushServer]]:
    """``push_servers(push_allow=...)``: a server over an empty Redis with a pusher whose
    subscribers get PUSH_TIMEOUT to answer. Retry delays and 202 waits run on its FakeClock
    (``server.clock.advance``). Stopped after the test."""
    with contextlib.ExitStack() as stack:

        def start(push_allow: tuple[str, ...]) -> PushServer:
            with redis.Redis.from_url(redis_url) as client:
                client.flushall()
            clock = FakeClock(start_ms=1_800_000_000_000)
            settings = Settings(redis_url=redis_url, tokens=test_tokens, sweeper=False, pushers=1,
                                push_timeout=PUSH_TIMEOUT, public_url="http://public.example:9999",
                                push_allow=push_allow)
            url = stack.enter_context(serve_app(create_app(settings, clock=clock)))
            return PushServer(url, clock, stack.enter_context(httpx.Client(base_url=url, timeout=10)))

        yield start


@pytest.fixture
def push_server(push_servers: Callable[..., PushServer]) -> PushServer:
    """A push server allowed to push to the loopback subscribers of ``subscribers``."""
    return push_servers(LOOPBACK)

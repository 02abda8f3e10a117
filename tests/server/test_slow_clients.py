"""Slow clients over raw sockets, against uvicorn with both HTTP parsers (httptools, the default,
and h11, the fallback): a connection that sends nothing, a partial head (all at once or a byte at
a time), or a partial body gets a 408 or is closed within its timeout, an idle keep-alive
connection is closed, connections beyond the cap are answered 503, and other clients are served
all along. One `ferrymq serve` shows that the options reach the server."""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from ferrymq.http.app import create_app
from ferrymq.server.serve import client_limits

TIMEOUT = 1.0
"""The header, body and keep-alive timeouts of these servers, in seconds."""
SLACK = 1.5
"""How much later than its timeout a connection may end (a loaded CI machine)."""
PROJECT, TOKEN = "000000000000000000000001", "token-a"


@pytest.fixture(params=["httptools", "h11"])
def guarded(request, serve_app, server) -> Iterator[str]:
    settings = server.settings.with_(header_timeout=TIMEOUT, body_timeout=TIMEOUT, keep_alive_timeout=TIMEOUT,
                                     limit_concurrency=20)
    with serve_app(create_app(settings), **client_limits(settings, request.param)) as url:
        yield url


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=TIMEOUT + SLACK + 2)


def ending(sock: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took."""
    started, received = time.monotonic(), b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:  # closed while we were still sending
        pass
    return received, time.monotonic() - started


def assert_timed_out(received: bytes, took: float, timeout: float = TIMEOUT) -> None:
    assert received == b"" or received.startswith(b"HTTP/1.1 408 "), received[:200]
    assert timeout - 0.2 <= took <= timeout + SLACK, took


class Bystander:
    """Another client, pinging throughout: the slowest answer it got."""

    def __init__(self, url: str) -> None:
        self.url, self.worst, self.failures = url, 0.0, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=5) as http:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    assert http.get("/ping").status_code == 200
                except Exception as exc:  # noqa: BLE001 - recorded for the assertion below
                    self.failures.append(repr(exc))
                self.worst = max(self.worst, time.monotonic() - started)
                time.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        assert not self.failures and self.worst < 0.5, (self.failures, self.worst)


def test_a_connection_that_sends_nothing_is_closed(guarded):
    bystander = Bystander(guarded)
    with connect(guarded) as silent:
        assert_timed_out(*ending(silent))
    bystander.stop()


def test_a_partial_head_is_answered_408_even_when_it_trickles(guarded):
    bystander = Bystander(guarded)
    with connect(guarded) as partial:
        partial.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n")
        assert_timed_out(*ending(partial))
    with connect(guarded) as trickle:
        started = time.monotonic()
        received = trickle_until_answered(trickle, b"X-Slow: " + b"a" * 1000)
        assert_timed_out(received, time.monotonic() - started)
    bystander.stop()


def trickle_until_answered(sock: socket.socket, more: bytes) -> bytes:
    """A head that never ends, a byte every 0.1 s (never idle for long), until the server
    answers or closes; what it sent."""
    sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n")
    for byte in more:
        readable, _, _ = select.select([sock], [], [], 0.1)
        if readable:
            return ending(sock)[0]
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            return b""
    raise AssertionError("the connection is still open")


def test_a_partial_body_is_answered_408(guarded):
    bystander = Bystander(guarded)
    with connect(guarded) as slow:
        slow.sendall(f"POST /1/projects/{PROJECT}/queues/q/messages HTTP/1.1\r\nHost: x\r\n"
                     f"Authorization: OAuth {TOKEN}\r\nContent-Type: application/json\r\n"
                     "Content-Length: 100\r\n\r\n{\"messages\": [".encode())
        assert_timed_out(*ending(slow))
    bystander.stop()
    with httpx.Client(base_url=guarded) as http:  # nothing of the partial request was stored
        assert http.get(f"/1/projects/{PROJECT}/queues/q", headers={"Authorization": f"OAuth {TOKEN}"}).status_code == 404


def test_an_idle_keep_alive_connection_is_closed_and_a_busy_one_is_not(guarded):
    with connect(guarded) as idle:
        ping(idle)
        received, took = ending(idle)
        assert received == b"" and TIMEOUT - 0.2 <= took <= TIMEOUT + SLACK, took
    with connect(guarded) as busy:  # a request every half timeout keeps its connection
        for _ in range(4):
            ping(busy)
            time.sleep(TIMEOUT / 2)


def ping(sock: socket.socket) -> None:
    """GET /ping on a kept-alive connection, and its whole answer."""
    sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = b""
    while not answer.endswith(b'{"ok":true}'):
        chunk = sock.recv(65536)
        assert chunk, f"closed after {answer!r}"
        answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 "), answer


def test_connections_beyond_the_cap_are_answered_503_until_some_close(guarded):
    idle = [connect(guarded) for _ in range(20)]
    try:
        time.sleep(0.2)
        with httpx.Client(base_url=guarded) as http:
            assert http.get("/ping").status_code == 503
    finally:
        for sock in idle:
            sock.close()
    time.sleep(0.2)
    with httpx.Client(base_url=guarded) as http:
        assert http.get("/ping").status_code == 200


def test_serve_takes_the_timeouts_and_the_connection_cap(serve, redis_client, redis_url):
    served = serve("--redis-url", redis_url, "--header-timeout", "1", "--body-timeout", "1",
                   "--keep-alive-timeout", "1", "--limit-concurrency", "50")
    with connect(served.url) as silent:
        assert_timed_out(*ending(silent))
    assert httpx.get(served.url + "/ping").status_code == 200

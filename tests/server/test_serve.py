"""`ferrymq serve` as a subprocess: auth, the embedded Redis, graceful shutdown, workers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import redis
import uvicorn

from ferrymq.engine.keys import queue_keys
from ferrymq.http.embedded import EmbeddedRedis
from ferrymq.http.server import tcp_listener
from ferrymq.http.settings import Settings

PROJECT = "000000000000000000000001"
QUEUES = f"/1/projects/{PROJECT}/queues"
AUTH = {"Authorization": "OAuth t"}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def spawned_workers(pid: int) -> list[int]:
    """Child processes of ``pid`` that are multiprocessing workers (not its resource tracker)."""
    workers = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rpartition(")")[2].split()[1])
        if parent == pid and b"spawn_main" in cmdline:
            workers.append(int(entry.name))
    return workers


def test_serve_answers_a_static_token_and_refuses_others(serve, redis_client, redis_url):
    served = serve("--redis-url", redis_url, "--token", f"t:{PROJECT}")
    with httpx.Client(base_url=served.url, timeout=5) as http:
        listed = http.get(QUEUES, headers=AUTH)
        refused = http.get(QUEUES, headers={"Authorization": "OAuth wrong"})
    assert (listed.status_code, listed.json()) == (200, [])
    assert refused.status_code == 401
    assert served.stop() == 0


def test_serve_never_prints_a_token(serve, redis_client, redis_url):
    served = serve("--redis-url", redis_url, "--token", f"s3cret-token-value:{PROJECT}")
    response = httpx.get(served.url + QUEUES, headers={"Authorization": "OAuth s3cret-token-value"}, timeout=5)
    assert response.status_code == 200
    # a webhook authenticates in its query string, which the access log prints
    hook = httpx.post(served.url + QUEUES + "/hooks/messages/webhook?oauth=s3cret-token-value", content=b"x", timeout=5)
    assert hook.status_code == 200
    assert served.stop() == 0
    log = served.log()
    assert "/hooks/messages/webhook?oauth=[redacted]" in log
    assert "s3cret-token-value" not in log


def test_serve_accepts_tokens_added_with_the_tokens_command(serve, ferrymq, redis_client, redis_url):
    token = ferrymq("tokens", "add", PROJECT, "--redis-url", redis_url).stdout.strip()
    served = serve("--redis-url", redis_url)
    response = httpx.get(served.url + QUEUES, headers={"Authorization": f"OAuth {token}"}, timeout=5)
    assert (response.status_code, response.json()) == (200, [])
    assert "warning: no token" not in served.log()


def test_serve_with_embedded_redis_answers_and_sigterm_stops_both(serve, ferrymq, tmp_path):
    data_dir = tmp_path / "data"
    served = serve("--data-dir", str(data_dir))
    assert f"data: {data_dir}" in served.log()
    assert "ferrymq tokens add PROJECT" in served.log()  # no token yet: the warning says how
    redis_url = EmbeddedRedis(data_dir).running_url()
    assert redis_url is not None
    with redis.Redis.from_url(redis_url) as client:
        redis_pid = int(client.info("server")["process_id"])
    # The tokens command reaches the running server's Redis through the data dir's socket.
    token = ferrymq("tokens", "add", PROJECT, "--data-dir", str(data_dir)).stdout.strip()
    response = httpx.get(served.url + QUEUES, headers={"Authorization": f"OAuth {token}"}, timeout=5)
    assert (response.status_code, response.json()) == (200, [])
    assert alive(redis_pid)
    assert served.stop() == 0
    assert not alive(redis_pid), "the embedded redis-server outlived ferrymq serve"


@contextlib.contextmanager
def long_poll(served, redis_client, wait_until) -> Iterator[queue.Queue[tuple[int, object]]]:
    """A GET with wait=30 on an empty queue, parked in the server for the block's duration;
    on exit, its answer (status, JSON) must have arrived within 2 s. The queue's name is its own:
    the session's live server may still listen on the channel of a queue another test polled."""
    name = f"sigterm-{uuid.uuid4().hex}"
    channel = queue_keys("fmq", PROJECT, name).notify
    answers: queue.Queue[tuple[int, object]] = queue.Queue()

    def get() -> None:
        with httpx.Client(timeout=40) as http:
            response = http.get(f"{served.url}{QUEUES}/{name}/messages?wait=30", headers=AUTH)
            answers.put((response.status_code, response.json()))

    poller = threading.Thread(target=get)
    poller.start()
    wait_until(lambda: redis_client.pubsub_numsub(channel)[0][1] > 0)  # parked on the notifier
    started = time.monotonic()
    try:
        yield answers
    finally:
        poller.join(10)
    held = time.monotonic() - started
    assert held < 2, f"the long poll held the shutdown for {held:.1f} s"


def test_sigterm_ends_a_long_poll_at_once_and_exits_0(serve, redis_client, redis_url, wait_until):
    served = serve("--redis-url", redis_url, "--token", f"t:{PROJECT}")
    with long_poll(served, redis_client, wait_until) as answers:
        assert served.stop(signal.SIGTERM) == 0
    assert answers.get(timeout=0) == (200, {"messages": []})


def test_two_workers_serve_one_queue(serve, redis_client, redis_url, wait_until):
    served = serve("--redis-url", redis_url, "--token", f"t:{PROJECT}", "--workers", "2")
    wait_until(lambda: len(spawned_workers(served.process.pid)) == 2)
    workers = spawned_workers(served.process.pid)
    posted = httpx.post(f"{served.url}{QUEUES}/q/messages", headers=AUTH, timeout=5,
                        json={"messages": [{"body": "across workers"}]})
    assert posted.status_code == 200
    # A new connection per request: the kernel hands each to whichever worker accepts first.
    bodies = [httpx.get(f"{served.url}{QUEUES}/q/messages", headers=AUTH, timeout=5).json()["messages"]
              for _ in range(3)]
    assert [m["body"] for batch in bodies for m in batch] == ["across workers"]
    with long_poll(served, redis_client, wait_until) as answers:
        assert served.stop() == 0
    assert answers.get(timeout=0) == (200, {"messages": []})
    assert not any(alive(pid) for pid in workers)


def test_connections_to_the_workers_shared_socket_get_tcp_nodelay(run_async):
    """Without TCP_NODELAY every keep-alive response of a multi-worker server waits ~40 ms."""
    sock = tcp_listener(uvicorn.Config("x:y", host="127.0.0.1", port=0).bind_socket())

    async def accepted_nodelay() -> int:
        accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        class Report(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                peer = transport.get_extra_info("socket")
                accepted.set_result(peer.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

        server = await asyncio.get_running_loop().create_server(Report, sock=sock)
        async with server:
            _, writer = await asyncio.open_connection(*sock.getsockname())
            writer.close()
            return await asyncio.wait_for(accepted, 10)

    assert sock.proto == socket.IPPROTO_TCP and sock.get_inheritable()
    assert run_async(accepted_nodelay(), timeout=20) == 1


def test_settings_travel_to_the_workers_through_the_environment():
    settings = Settings(
        host="0.0.0.0", port=9000, redis_url="unix:///tmp/r.sock", data_dir=Path("/tmp/d"), workers=3,
        tokens={"a": "p1", "b:c": "p2"}, prefix="x", max_request_bytes=1000, appendfsync="always", sweeper=False,
        pushers=2, push_concurrency=8, push_timeout=5.5, public_url="https://mq.example",
        push_allow=("10.0.0.0/8", "hooks.internal"),
    )
    assert Settings.from_env(settings.to_env()) == settings

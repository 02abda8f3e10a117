"""`ferrymq serve` as a subprocess: auth, the embedded Redis, graceful shutdown, workers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import re
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
import redis.asyncio as aioredis
import uvicorn

from ferrymq.engine import Engine
from ferrymq.engine.keys import queue_keys
from ferrymq.http.app import create_app, redis_client
from ferrymq.server.embedded import EmbeddedRedis
from ferrymq.server.serve import tcp_listener, uvicorn_config
from ferrymq.http.settings import Settings
from ferrymq.server.timeouts import GuardedH11Protocol

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


def test_serve_creates_queues_with_the_default_partitions_it_is_given(serve, redis_client, redis_url):
    served = serve("--redis-url", redis_url, "--token", f"t:{PROJECT}", "--default-partitions", "3", "--workers", "2")
    with httpx.Client(base_url=served.url, timeout=5) as http:
        posted = [http.post(f"{QUEUES}/q{i}/messages", headers=AUTH, json={"messages": [{"body": "x"}]})
                  for i in range(4)]
    assert [p.status_code for p in posted] == [200] * 4
    for i in range(4):  # whichever worker created it
        assert Engine(redis_client).queue(PROJECT, f"q{i}").info().settings.partitions == 3
    assert served.stop() == 0


def test_serve_runs_uvloop_and_httptools_and_says_so(serve, redis_url):
    served = serve("--redis-url", redis_url, "--token", f"t:{PROJECT}")
    assert served.stop() == 0
    assert "event loop uvloop, HTTP parser httptools" in served.log()


def test_serve_freezes_what_startup_built_so_full_collections_skip_it(serve, redis_url):
    """Full collections over the startup objects stopped the loop 20-35 ms: the p99 of every route."""
    served = serve("--redis-url", redis_url, "--token", f"t:{PROJECT}")
    with httpx.Client(base_url=served.url, timeout=5) as http:
        assert http.get(QUEUES, headers=AUTH).status_code == 200
    assert served.stop() == 0
    frozen = re.search(r"ferrymq: ([\d,]+) objects of startup frozen", served.log())
    assert frozen and int(frozen[1].replace(",", "")) > 10_000


def test_without_uvloop_and_httptools_serve_falls_back_to_asyncio_and_h11(monkeypatch):
    monkeypatch.setitem(sys.modules, "uvloop", None)  # a None entry makes the import fail
    monkeypatch.setitem(sys.modules, "httptools", None)
    config = uvicorn_config(Settings(port=0))
    assert (config.loop, config.http) == ("asyncio", GuardedH11Protocol)  # h11, with the slow-client guard


def test_serve_never_prints_a_token(serve, redis_client, redis_url):
    served = serve("--redis-url", redis_url, "--token", f"s3cret-token-value:{PROJECT}", "--access-log")
    response = httpx.get(served.url + QUEUES, headers={"Authorization": "OAuth s3cret-token-value"}, timeout=5)
    assert response.status_code == 200
    # a webhook authenticates in its query string, which the access log prints
    hook = httpx.post(served.url + QUEUES + "/hooks/messages/webhook?oauth=s3cret-token-value", content=b"x", timeout=5)
    assert hook.status_code == 200
    assert served.stop() == 0
    log = served.log()
    assert "/hooks/messages/webhook?oauth=[redacted]" in log
    assert "s3cret-token-value" not in log


def test_serve_reads_tokens_from_a_file_and_shows_them_neither_in_ps_nor_in_its_environment(serve, tmp_path,
                                                                                           redis_client, redis_url):
    tokens = tmp_path / "tokens"
    tokens.write_text(f"# one TOKEN:PROJECT a line\n\nfile-token-1:{PROJECT}\n  file-token-2:{PROJECT}  \n")
    tokens.chmod(0o600)
    served = serve("--redis-url", redis_url, "--token-file", str(tokens))
    for token in ("file-token-1", "file-token-2"):
        response = httpx.get(served.url + QUEUES, headers={"Authorization": f"OAuth {token}"}, timeout=5)
        assert response.status_code == 200
        for view in ("cmdline", "environ"):
            assert token.encode() not in Path(f"/proc/{served.process.pid}/{view}").read_bytes(), view
    by_env = serve("--redis-url", redis_url, env={"FERRYMQ_TOKENS_FILE": str(tokens)})
    assert httpx.get(by_env.url + QUEUES, headers={"Authorization": "OAuth file-token-2"}, timeout=5).status_code == 200
    assert "warning" not in served.log()


def test_a_token_file_others_can_read_is_warned_about_and_a_bad_one_refused(serve, ferrymq, tmp_path, redis_url):
    tokens = tmp_path / "tokens"
    tokens.write_text(f"shared-token:{PROJECT}\n")
    tokens.chmod(0o644)
    served = serve("--redis-url", redis_url, "--token-file", str(tokens))
    assert "warning: the token file" in served.log() and "shared-token" not in served.log()
    tokens.write_text("no-project-here\n")
    refused = ferrymq("serve", "--redis-url", redis_url, "--token-file", str(tokens))
    assert refused.returncode == 2 and "line 1" in refused.stderr and "no-project-here" not in refused.stderr
    missing = ferrymq("serve", "--redis-url", redis_url, "--token-file", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "token file" in missing.stderr


def test_serve_accepts_tokens_added_with_the_tokens_command(serve, ferrymq, redis_client, redis_url):
    token = ferrymq("tokens", "add", PROJECT, "--redis-url", redis_url).stdout.strip()
    chosen = ferrymq("tokens", "add", PROJECT, "--token", "a-person-chose-this", "--redis-url", redis_url).stdout.strip()
    served = serve("--redis-url", redis_url)
    for given in (token, chosen):
        response = httpx.get(served.url + QUEUES, headers={"Authorization": f"OAuth {given}"}, timeout=5)
        assert (response.status_code, response.json()) == (200, [])
    wrong = httpx.get(served.url + QUEUES, headers={"Authorization": "OAuth a-person-chose-thiz"}, timeout=5)
    assert wrong.status_code == 401
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


def tcp_sockets_of(pid: int) -> set[str]:
    """The socket inodes ``pid`` holds."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    return inodes


def tcp_on_port(port: int, state: str) -> set[str]:
    """Inodes of the TCP sockets on local ``port`` in ``state`` (0A: listening, 01: established)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[1].rpartition(":")[2], 16) == port and fields[3] == state:
                    found.add(fields[9])
    return found


def test_each_worker_listens_on_its_own_socket_so_a_burst_of_connections_reaches_both(serve, redis_url,
                                                                                       wait_until):
    # On one shared socket the first worker awake accepted a client's whole burst of keep-alive
    # connections; with SO_REUSEPORT the kernel spreads them (all 16 on one: p = 2**-15).
    served = serve("--redis-url", redis_url, "--token", f"t:{PROJECT}", "--workers", "2")
    port = int(served.url.rpartition(":")[2])
    wait_until(lambda: len(spawned_workers(served.process.pid)) == 2 and len(tcp_on_port(port, "0A")) == 2, timeout=30)
    workers = spawned_workers(served.process.pid)
    assert all(len(tcp_sockets_of(pid) & tcp_on_port(port, "0A")) == 1 for pid in workers)
    connections = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(16)]
    try:
        for conn in connections:
            conn.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        assert all(conn.recv(64).startswith(b"HTTP/1.1 200") for conn in connections)
        established = tcp_on_port(port, "01")
        held = [len(tcp_sockets_of(pid) & established) for pid in workers]
        assert sum(held) == 16 and min(held) >= 1, held
    finally:
        for conn in connections:
            conn.close()


def test_a_second_server_on_a_port_in_use_does_not_start(serve, ferrymq, redis_url):
    served = serve("--redis-url", redis_url, "--token", f"t:{PROJECT}", "--workers", "2")
    port = served.url.rpartition(":")[2]
    second = ferrymq("serve", "--port", port, "--redis-url", redis_url, "--token", f"t:{PROJECT}", "--workers", "2")
    assert second.returncode != 0 and "address already in use" in second.stderr.lower() + second.stdout.lower()
    assert httpx.get(served.url + "/ping", timeout=5).status_code == 200  # the first one still serves


def test_a_killed_worker_is_replaced_with_a_socket_of_its_own(serve, redis_url, wait_until):
    served = serve("--redis-url", redis_url, "--token", f"t:{PROJECT}", "--workers", "2")
    port = int(served.url.rpartition(":")[2])
    wait_until(lambda: len(spawned_workers(served.process.pid)) == 2 and len(tcp_on_port(port, "0A")) == 2, timeout=30)
    victim = spawned_workers(served.process.pid)[0]
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: victim not in spawned_workers(served.process.pid)
               and len(spawned_workers(served.process.pid)) == 2 and len(tcp_on_port(port, "0A")) == 2, timeout=30)
    # every new connection lands on a live worker's socket (the dead one's left the group)
    assert [httpx.get(served.url + "/ping", timeout=5).status_code for _ in range(20)] == [200] * 20


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
        push_allow=("10.0.0.0/8", "hooks.internal"), default_partitions=3, log_json=True, access_log=True,
        merge_calls=False,
    )
    assert Settings.from_env(settings.to_env()) == settings


def test_the_servers_redis_connections_pack_commands_with_hiredis_exactly_as_redis_py_does(redis_url):
    connection = redis_client(Settings(redis_url=redis_url)).connection_pool.make_connection()  # not connected
    args = ("EVALSHA", "f" * 40, 2, b"fmq:{p/q}:meta\x00", "\u00e9t\u00e9", 1.5, -3, 2**70, memoryview(b"body"))
    assert type(connection).__name__ == "HiredisConnection"
    assert b"".join(connection.pack_command(*args)) == b"".join(aioredis.Connection().pack_command(*args))
    with pytest.raises(redis.DataError):
        connection.pack_command("SET", "k", True)  # redis-py refuses booleans; so do we


@pytest.mark.parametrize("merge", [True, False])
def test_the_apps_engine_merges_calls_as_the_settings_say(redis_url, run_async, merge):
    """FERRYMQ_MERGE_CALLS reaches the app's engine (engine/coalesce.py)."""
    app = create_app(Settings(redis_url=redis_url, sweeper=False, pushers=0, merge_calls=merge))

    async def engine_merges() -> bool:
        async with app.router.lifespan_context(app) as state:
            return state["engine"].coalesce

    assert run_async(engine_merges()) is merge

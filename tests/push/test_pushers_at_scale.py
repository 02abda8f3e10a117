"""Several `ferrymq pusher` processes on one Redis share the deliveries: every delivery is pushed
exactly once, however the pushers race for them."""

from __future__ import annotations

import collections
import re
import signal
import subprocess
import time
from pathlib import Path

import redis

from ferrymq.engine import Engine, PushConfig, Subscriber

QUEUES, MESSAGES = 3, 150


def start_pusher(ferrymq: Path, redis_url: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([str(ferrymq), "pusher", "--redis-url", redis_url, "--push-concurrency", "16",
                             "--push-timeout", "5", "--push-allow", "127.0.0.1"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def stopped(process: subprocess.Popen[bytes]) -> str:
    """The stderr of a pusher sent SIGTERM; one still running 15 s later is killed and reported
    (so its pipe is closed here, not by the garbage collector in a later test)."""
    try:
        return process.communicate(timeout=15)[1].decode()
    except subprocess.TimeoutExpired:
        process.kill()
        error = process.communicate()[1].decode()
        return f"still running 15 s after SIGTERM; killed. Its stderr:\n{error}"


def test_two_pusher_processes_never_push_a_delivery_twice(redis_url, subscribers, ferrymq_script, clean_env):
    with redis.Redis.from_url(redis_url) as client:
        client.flushall()
        engine = Engine(client)
        a, b = subscribers(pause=0.005), subscribers(pause=0.005)  # slow enough that both pushers work
        queues = [engine.queue("000000000000000000000001", f"pq{i}") for i in range(QUEUES)]
        for q in queues:
            q.set_push(PushConfig((Subscriber(a.url), Subscriber(b.url))))
        pushers = [start_pusher(ferrymq_script, redis_url, clean_env) for _ in range(2)]
        try:
            for q in queues:
                for start in range(0, MESSAGES, 50):
                    q.put([f"{q.name}-{n}" for n in range(start, start + 50)])
            a.wait_for(QUEUES * MESSAGES, timeout=60)
            b.wait_for(QUEUES * MESSAGES, timeout=60)
            time.sleep(0.5)  # a late double push would arrive now
        finally:
            for process in pushers:
                process.send_signal(signal.SIGTERM)
            errors = [stopped(process) for process in pushers]
        for sub in (a, b):
            # By body ("pq1-7"): ids are unique within a queue, and the three queues' puts of one
            # millisecond share theirs.
            pushed = collections.Counter((r.body, r.headers["Iron-Message-Id"]) for r in sub.received)
            assert len(pushed) == QUEUES * MESSAGES and set(pushed.values()) == {1}
        assert all(q.info().size == 0 for q in queues)
        assert all(process.returncode == 0 for process in pushers), errors
        assert not any("Traceback" in text for text in errors), errors
        shares = [int(re.search(r"after (\d+) successful pushes", text).group(1)) for text in errors]
        assert sum(shares) == 2 * QUEUES * MESSAGES and min(shares) > 0, shares  # both took part

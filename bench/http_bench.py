"""HTTP: ``ferrymq serve`` with 1 and 2 workers on the benchmark's Redis, beside a bare Starlette
app served the same way (``bare.py``: the limit every route is compared with), loaded by a
separate process: ``wrk`` with ``wrk.lua`` (16 connections, one thread), or where wrk is not
installed the asyncio + httpx load generator (``loadgen.py``). Both run the consumer loops too,
whose acknowledgements carry the ids just received. wrk is the one to read latencies from: the
Python generator's own turns of its event loop land in its figures (measured in RESULTS.md).

Messages per row come from the queue's own counters (put, reserved, deleted), so a request that
found the queue empty never counts. The workers float over both cores (two workers pinned to
the client core could not beat one); the load generator stays on the client core.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx

from ferrymq.engine import Engine

from .ferry import fill
from .harness import BODY_TEXT, RedisServer, Results, Sample, free_port, machine_cpu, run, unpin, wait_until

SECTION = "http"
PROJECT = "000000000000000000000001"
AUTH = "Bearer ferrymq-bench"
CONNECTIONS = {"wrk": 16, "loadgen": 8}
HERE = Path(__file__).parent


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    method: str
    path: str
    """{q} is the queue's name (IronMQ) or id (Cloudflare)."""
    body: str = ""
    flow: str = "fixed"
    counter: str = "requests"
    """Where the messages come from: requests, total (put), reserved, deleted."""
    prefill: int = 0
    """Messages queued before the step, per second of it (a first guess; later rounds go by the
    rate seen)."""
    app: str = "ferrymq"
    """The server: "ferrymq" (``ferrymq serve``) or "bare" (the bare Starlette app)."""


IRON = f"/1/projects/{PROJECT}/queues/{{q}}/messages"
CF = f"/client/v4/accounts/{PROJECT}/queues/{{q}}/messages"
ELASTIC = "/v1/queues/{q}/messages"
ONE = json.dumps({"messages": [{"body": BODY_TEXT}]})
HUNDRED = json.dumps({"messages": [{"body": BODY_TEXT}] * 100})
SYSTEMS = {"ferrymq": "ferrymq serve", "bare": "bare Starlette (limit)"}
SCENARIOS = [
    Scenario("bare-get", "JSON GET", "GET", "/", app="bare"),
    Scenario("bare-post", "JSON POST of 1 message, parsed", "POST", "/", ONE, app="bare"),
    Scenario("ping", "GET /ping", "GET", "/ping"),
    Scenario("iron-post1", "IronMQ POST 1 message", "POST", IRON, ONE, counter="total"),
    Scenario("iron-post100", "IronMQ POST 100 messages", "POST", IRON, HUNDRED, counter="total"),
    Scenario("iron-get1", "IronMQ GET n=1 delete=true", "GET", IRON + "?n=1&delete=true", counter="reserved",
             prefill=20_000),
    Scenario("iron-get100", "IronMQ GET n=100 delete=true", "GET", IRON + "?n=100&delete=true", counter="reserved",
             prefill=300_000),
    Scenario("iron-consume", "IronMQ GET n=100 + DELETE many", "GET", IRON, flow="ironmq-consume",
             counter="deleted", prefill=120_000),
    Scenario("cf-push", "Cloudflare push 1 message", "POST", CF, json.dumps({"body": BODY_TEXT, "content_type": "text"}),
             counter="total"),
    Scenario("cf-consume", "Cloudflare pull 100 + ack", "POST", CF, flow="cloudflare-consume",
             counter="deleted", prefill=120_000),
    Scenario("elastic-post", "ElasticQueue POST 1 message", "POST", ELASTIC,
             json.dumps({"data": {"type": "message", "attributes": {"body": BODY_TEXT}}}), counter="total"),
]


class Server:
    """``ferrymq serve`` (or the bare app, served the same way) on a free port, until closed."""

    def __init__(self, app: str, workers: int, redis_url: str) -> None:
        self.app, self.workers = app, workers
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        if app == "bare":
            command, cwd, self.probe = [sys.executable, "-m", "bench.bare", str(self.port), str(workers)], HERE.parent, "/"
        else:
            command = [sys.executable, "-m", "ferrymq.server.cli", "serve", "--workers", str(workers), "--port",
                       str(self.port), "--redis-url", redis_url, "--token", f"{AUTH.split()[1]}:{PROJECT}"]
            cwd, self.probe = Path(tempfile.gettempdir()), "/ping"
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        preexec_fn=unpin, cwd=cwd)
        wait_until(self._answers, 30, f"{SYSTEMS[app]} --workers {workers} did not start")
        if workers > 1 and Path("/proc/net/tcp").exists():
            # Each worker listens on its own socket (SO_REUSEPORT): a step begun while one is still
            # starting would have all of wrk's connections on the others for the whole step.
            wait_until(lambda: listeners(self.port) >= workers, 30, f"not every worker of {SYSTEMS[app]} listens")

    def _answers(self) -> bool:
        try:
            return httpx.get(self.base + self.probe, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def listeners(port: int) -> int:
    """Listening TCP sockets on ``port`` (/proc/net/tcp; 1 where the workers share one)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        count += sum(1 for line in lines if int(line.split()[1].rpartition(":")[2], 16) == port
                     and line.split()[3] == "0A")
    return count


def counted(server: RedisServer, name: str, counter: str) -> int:
    info = Engine(server.client).queue(PROJECT, name).info()
    return info.total_messages if counter == "total" else info.counters.get(counter, 0)


def load(scenario: Scenario, base: str, path: str, seconds: float) -> dict[str, float]:
    """One load step from a separate process; its figures (requests, seconds, latencies)."""
    if shutil.which("wrk"):
        with tempfile.NamedTemporaryFile("w", suffix=".json") as body:
            body.write(scenario.body)
            body.flush()
            env = {**os.environ, "WRK_METHOD": scenario.method, "WRK_AUTH": AUTH, "WRK_FLOW": scenario.flow, "WRK_BODY": body.name if scenario.body else ""}
            out = run(["wrk", "-t1", f"-c{CONNECTIONS['wrk']}", f"-d{max(1, round(seconds))}s",
                       "-s", str(HERE / "wrk.lua"), base + path], env=env, timeout=120)
        figures = json.loads(out.strip().splitlines()[-1])
        if figures.pop("non2xx") or figures.pop("socket_errors"):
            raise RuntimeError(f"{scenario.key}: wrk saw failed requests: {figures}")
        return figures
    spec = {"flow": scenario.flow, "base": base, "auth": AUTH, "seconds": seconds, "method": scenario.method,
            "path": path, "body": scenario.body, "concurrency": CONNECTIONS["loadgen"]}
    out = run([sys.executable, "-m", "bench.loadgen", json.dumps(spec)], cwd=HERE.parent, timeout=120)
    return json.loads(out)


class HttpBench:
    def __init__(self, server: RedisServer, results: Results, seconds: float) -> None:
        self.redis = server
        self.results = results
        self.seconds = seconds
        self.rates: dict[str, float] = {}
        self.serial = 0

    def step(self, http: Server, scenario: Scenario) -> None:
        if scenario.app == "bare":
            self.record(http, scenario, self.timed(http, scenario, scenario.path, None))
            return
        self.serial += 1
        name = f"{scenario.key}-{self.serial}"
        ref = Engine(self.redis.client).queue(PROJECT, name).ensure()
        prefill = scenario.prefill * math.ceil(self.seconds)
        if prefill and scenario.key + str(http.workers) in self.rates:
            prefill = int(self.rates[scenario.key + str(http.workers)] * self.seconds * 3) + 5000
        if prefill:
            fill(self.redis, PROJECT, name, prefill)
        path = scenario.path.format(q=ref.id if scenario.key.startswith("cf") else name)
        sample = self.timed(http, scenario, path, name)
        if prefill and not Engine(self.redis.client).queue(PROJECT, name).info().ready:
            self.results.notes.append(f"{scenario.label}: the queue ran empty during a step (rate understated)")
        self.record(http, scenario, sample)
        Engine(self.redis.client).queue(PROJECT, name).delete()

    def timed(self, http: Server, scenario: Scenario, path: str, queue: str | None) -> Sample:
        """One load step; its messages from the queue's counters, or its requests (no queue)."""
        counter = scenario.counter if queue is not None else "requests"
        before = 0 if counter == "requests" else counted(self.redis, queue, counter)
        cpu, machine = self.redis.cpu(), machine_cpu()
        figures = load(scenario, http.base, path, self.seconds)
        used = self.redis.cpu() - cpu
        (total, idle), (total_0, idle_0) = machine_cpu(), machine
        extra = {k: v for k, v in figures.items() if k.endswith("_ms")}
        extra["machine_busy"] = 1 - (idle - idle_0) / (total - total_0) if total > total_0 else math.nan
        messages = figures["requests"] if counter == "requests" else counted(self.redis, queue, counter) - before
        return Sample(messages, figures.pop("seconds"), used, extra)

    def record(self, http: Server, scenario: Scenario, sample: Sample) -> None:
        self.rates[scenario.key + str(http.workers)] = sample.figures()["rate"]
        self.results.add(f"http/{scenario.key}/w{http.workers}", SECTION, SYSTEMS[scenario.app],
                         scenario.label, f"{http.workers} worker{'s' * (http.workers > 1)}", sample.figures())


def run_http(server: RedisServer, results: Results, rounds: int, seconds: float, log) -> None:
    server.flush()
    servers = {(app, workers): Server(app, workers, server.url) for app in SYSTEMS for workers in (1, 2)}
    bench = HttpBench(server, results, seconds)
    try:
        for round_no in range(rounds):
            for scenario in SCENARIOS:
                for workers in (1, 2):
                    bench.step(servers[scenario.app, workers], scenario)
            log(f"  round {round_no + 1}/{rounds} done")
    finally:
        for http in servers.values():
            http.close()
    results.notes.append("HTTP load: " + ("wrk, 16 connections" if shutil.which("wrk") else
                                          "the asyncio + httpx load generator (wrk is not installed)"))

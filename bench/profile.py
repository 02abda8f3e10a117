"""Where FerryMQ's Redis CPU goes, measured on the benchmark's Redis:

- per step of the lifecycle (batches of 1 and 100, and the minimal Lua queue at 100), from
  ``INFO commandstats``: EVALSHA time split into the Redis commands the scripts call and the
  rest (Lua itself: interpreting, building tables and strings, calling into Redis), with the
  number of ``redis.call``s per message;
- Lua micro-benchmarks: an empty EVALSHA, the cost of one ``redis.call``, and the cost of
  defining the shared helpers (``lua/includes/queue.lua``) that every script does on every call;
- the put script stopped at successive stages (cumulative cost per call, batch of 1).

The last two count instructions in a redis-server under callgrind when valgrind is installed
(repeatable on a busy machine), else Redis CPU µs per call, round trip included.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

from ferrymq.engine import Engine
from ferrymq.engine.scripts import sources

from .harness import BODY, RedisServer, Results
from .harness import run as command
from .limit import MINIMAL_DELETE, MINIMAL_PUT, MINIMAL_RESERVE

SECTION = "profile"
CALLS = 2000
CALLGRIND_CALLS = 300
Measure = Callable[[str, list[Any], list[Any]], float]
NOT_COMMANDS = ("cmdstat_evalsha", "cmdstat_info", "cmdstat_config|resetstat")
PUT_STAGES = (
    ("the helpers defined, nothing read", "local Q = open_queue"),
    ("+ open_queue (settings: one HMGET)", "maintain(Q, tonumber(ARGV[2]))"),
    ("+ maintain (lapsed, due, expired, head)", "local n = tonumber(ARGV[9])"),
    ("+ ids and records built", "if #records > 0 then"),
    ("+ records, id counter and totals written", "flush(Q)\nreply[2]"),
    ("+ flush (RPUSH, PUBLISH, meta) = whole script", "return reply"),
)


def commandstats(server: RedisServer, messages: int) -> dict[str, float]:
    stats = server.client.info("commandstats")
    evalsha = stats.get("cmdstat_evalsha", {}).get("usec", 0)
    inner = [v for k, v in stats.items() if k not in NOT_COMMANDS]
    commands = sum(v["usec"] for v in inner)
    return {"script_us": evalsha / messages, "commands_us": commands / messages,
            "lua_us": (evalsha - commands) / messages, "calls_per_msg": sum(v["calls"] for v in inner) / messages}


def steps(server: RedisServer, results: Results, system: str, batch: int, n: int, run_step: Any) -> None:
    for step, action in run_step(n, batch):
        server.client.config_resetstat()
        action()
        results.add(f"profile/{system}/b{batch}/{step}", SECTION, system, step, f"batch {batch}",
                    commandstats(server, n))


def ferrymq_steps(server: RedisServer):
    def make(n: int, batch: int):
        q = Engine(server.client).queue("bench", f"profile{batch}")
        taken: list = []
        yield "put", lambda: [q.put([BODY] * batch) for _ in range(n // batch)]
        yield "reserve", lambda: [taken.extend(q.reserve(batch)) for _ in range(n // batch)]
        yield "delete", lambda: [q.settle(deletes=[(m.id, m.reservation_id) for m in taken[i : i + batch]])
                                 for i in range(0, n, batch)]
    return make


def minimal_steps(server: RedisServer):
    def make(n: int, batch: int):
        r = server.client
        put, reserve, delete = (r.register_script(s) for s in (MINIMAL_PUT, MINIMAL_RESERVE, MINIMAL_DELETE))
        taken: list = []
        yield "put", lambda: [put(keys=["m:meta", "m:ready", "m:body"], args=[BODY] * batch) for _ in range(n // batch)]
        yield "reserve", lambda: [taken.append(reserve(keys=["m:ready", "m:reserved", "m:body"], args=[batch])[0::2])
                                  for _ in range(n // batch)]
        yield "delete", lambda: [delete(keys=["m:reserved", "m:body"], args=ids) for ids in taken]
    return make


class Callgrind:
    """A second redis-server under ``valgrind --tool=callgrind``: instructions per call, the
    same whatever else the machine is doing (seconds here are not)."""

    def __init__(self) -> None:
        self._out = tempfile.TemporaryDirectory(prefix="ferrymq-callgrind-")
        self.server = RedisServer(("valgrind", "--tool=callgrind", f"--callgrind-out-file={self._out.name}/cg.%p"),
                                  start_seconds=60)
        self.pid = str(self.server.process.pid)  # taskset and valgrind exec: the same process
        self.server.client.config_set("hz", 1)  # its timer's work, counted too, drops to noise

    @staticmethod
    def available() -> bool:
        return bool(shutil.which("valgrind") and shutil.which("callgrind_control"))

    def instructions(self, action: Callable[[], Any]) -> int:
        """Instructions redis-server executed during ``action``."""
        command(["callgrind_control", "--zero", self.pid])
        action()
        command(["callgrind_control", "--dump", self.pid])
        newest = max(Path(self._out.name).glob(f"cg.{self.pid}.*"), key=lambda p: p.stat().st_mtime)
        totals = next(line for line in newest.read_text().splitlines() if line.startswith(("totals:", "summary:")))
        return int(totals.split()[1])

    def per_call(self, text: str, keys: list[Any], args: list[Any]) -> float:
        """Thousands of instructions per EVALSHA of ``text`` (network handling included)."""
        script = self.server.client.register_script(text)
        script(keys=keys, args=args)
        return self.instructions(lambda: [script(keys=keys, args=args) for _ in range(CALLGRIND_CALLS)]) / CALLGRIND_CALLS / 1000

    def steps(self, results: Results, system: str, batch: int, n: int, make: Any) -> None:
        """Thousands of instructions per message of each lifecycle step."""
        for step, action in make(n, batch):
            results.add(f"profile/cg/{system}/b{batch}/{step}", SECTION, system, step, f"batch {batch}",
                        {"kinstr_msg": self.instructions(action) / n / 1000})

    def close(self) -> None:
        self.server.close()
        self._out.cleanup()


def per_call_cpu(server: RedisServer) -> Measure:
    """µs of Redis CPU per EVALSHA of a script, round trip included (when callgrind is missing)."""

    def measure(text: str, keys: list[Any], args: list[Any]) -> float:
        script = server.client.register_script(text)
        script(keys=keys, args=args)  # loaded
        return server.timed(CALLS, lambda: [script(keys=keys, args=args) for _ in range(CALLS)]).cpu / CALLS * 1e6

    return measure


def micro(client: Any, measure: Measure, figure: str, results: Results) -> None:
    include = files("ferrymq.lua").joinpath("includes", "queue.lua").read_text("utf-8")
    hundred_calls = "for i = 1, 100 do redis.call('EXISTS', KEYS[1]) end return 1"
    hundred_noops = "local x = 0 for i = 1, 100 do x = x + #KEYS[1] end return 1"
    empty = measure("return 1", [], [])
    figures = {
        "EVALSHA of `return 1`": empty,
        "one redis.call (EXISTS of a missing key)": (measure(hundred_calls, ["nokey"], [])
                                                      - measure(hundred_noops, ["nokey"], [])) / 100,
        "defining queue.lua's helpers (every call does)": measure(include + "\nreturn 1", [], []) - empty,
    }
    for label, value in figures.items():
        results.add(f"profile/micro/{label}", SECTION, "Lua micro-benchmark", label, "", {figure: value})
    engine = Engine(client)
    engine.queue("bench", "stages").put([BODY])
    step = engine._verbs.queue("bench", "stages").put([BODY]).send(None)  # the script call put makes
    text = sources()["put"].text
    for label, marker in PUT_STAGES:
        at = text.rfind(marker)
        if at < 0:
            continue  # the script changed: this stage is gone
        cut = text[:at] + "do return 1 end\n" + text[at:]
        results.add(f"profile/put-stage/{label}", SECTION, "put script, batch 1", label, "",
                    {figure: measure(cut, step.keys, step.args)})


def run(server: RedisServer, results: Results, n: int) -> None:
    for system, make in (("ferrymq engine", ferrymq_steps(server)), ("minimal Lua queue", minimal_steps(server))):
        for batch in (1, 100) if system == "ferrymq engine" else (100,):
            server.flush()
            steps(server, results, system, batch, n if batch > 1 else n // 10, make)
    if not Callgrind.available():
        server.flush()
        micro(server.client, per_call_cpu(server), "us", results)
        return
    callgrind = Callgrind()
    try:
        for system, make in (("ferrymq engine", ferrymq_steps(callgrind.server)), ("minimal Lua queue", minimal_steps(callgrind.server))):
            for batch in (1, 100):
                callgrind.steps(results, system, batch, 200 if batch == 1 else 2000, make)
        micro(callgrind.server.client, callgrind.per_call, "kinstr", results)
    finally:
        callgrind.close()

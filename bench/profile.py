"""Where FerryMQ's Redis CPU goes, measured on the benchmark's Redis:

- per step of the lifecycle (batches of 1 and 100, and the minimal Lua queue at 100), from
  ``INFO commandstats``: EVALSHA time split into the Redis commands the scripts call and the
  rest (Lua itself: interpreting, building tables and strings, calling into Redis), with the
  number of ``redis.call``s per message;
- Lua micro-benchmarks: an empty EVALSHA, the cost of one ``redis.call``, and the cost of
  defining the shared helpers (``lua/includes/queue.lua``) that every script does on every call;
- the hot scripts (put_ready, reserve_ready, delete_reserved) stopped at successive stages (cumulative cost per
  call, batch of 1).

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
from ferrymq.engine.core import Command, Eval
from ferrymq.engine.scripts import Library, build, sources

from .harness import BODY, RedisServer, Results
from .harness import run as command
from .limit import MINIMAL_DELETE, MINIMAL_PUT, MINIMAL_RESERVE

SECTION = "profile"
CALLS = 2000
CALLGRIND_CALLS = 300
SINGLE_CALLS, STAGE_CALLS = 1500, 500
"""Calls per single-message figure under callgrind: Redis's Lua collects its garbage in steps, and
where they fell in a sample of 100-200 calls moved one script's figure by up to 3k instructions;
1,500 calls repeated to 0.1k (bench/RESULTS.md, stop 31)."""
Measure = Callable[[str, list[Any], list[Any]], float]
SCRIPT_CALLS = ("cmdstat_fcall", "cmdstat_evalsha", "cmdstat_eval")
NOT_COMMANDS = (*SCRIPT_CALLS, "cmdstat_info", "cmdstat_config|resetstat")
STAGES = {
    "put_ready": (  # a put's common case (lua/put_ready-3.lua; lua/put-12.lua handles the rest)
        ("FCALL, its 3 keys and 4 arguments", "local now, now_s = now_from"),
        ("+ now (ARGV[1]), HGET q, struct.unpack, the checks", "local n = (#ARGV - 2) / 2"),
        ("+ default record header", "local records, ids = {}, {}"),
        ("+ id and record of the message", "if n > 0 then"),
        ("+ HSET msg, RPUSH, PUBLISH, HSET q = whole", None),
    ),
    "reserve_ready": (  # a reserve's common case (lua/reserve_ready-7.lua)
        ("FCALL, its 7 keys and 3 arguments", "local now, now_s = now_from"),
        ("+ now (ARGV[1]), open_queue, the checks", "local reply = {0, now, -1}"),
        ("+ take (include: LPOP, HGET msg, ZADD reserved, HSETNX dlv)", "if taken == 0 then"),
        ("+ the reply (the state written only if changed) = whole", None),
    ),
    "delete_reserved": (  # a delete's common case (lua/delete_reserved-5.lua)
        ("FCALL, its 5 keys and 3 arguments", "local now, now_s = now_from"),
        ("+ now (ARGV[1]), open_queue, the checks", "local shared, reply"),
        ("+ delete (include: HGET dlv, find, ZREM, HDEL msg and dlv)", "if done > 0"),
        ("+ HINCRBY c_done = whole", None),
    ),
}
"""Per verb: the script's cost stopped at successive points (a label, and the text before which
it returns), cumulative: where a single-message call's instructions go."""


def commandstats(server: RedisServer, messages: int) -> dict[str, float]:
    stats = server.client.info("commandstats")
    evalsha = sum(stats.get(name, {}).get("usec", 0) for name in SCRIPT_CALLS)
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
        engine = Engine(server.client)
        engine.load_scripts()  # loading the library is not a call's cost
        q = engine.queue("bench", f"profile{batch}")
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
    hundred_calls = "for i = 1, 100 do redis.call('EXISTS', KEYS[1]) end return 1"
    hundred_noops = "local x = 0 for i = 1, 100 do x = x + #KEYS[1] end return 1"
    empty = measure("return 1", [], [])
    figures = {
        "EVALSHA of `return 1`": empty,
        "one redis.call (EXISTS of a missing key)": (measure(hundred_calls, ["nokey"], [])
                                                      - measure(hundred_noops, ["nokey"], [])) / 100,
        "defining the includes' helpers (EVALSHA only: a function library defines them once)":
            measure(sources()["put"].text.split("local now, now_s = now_from")[0] + "\nreturn 1", [], []) - empty,
    }
    for label, value in figures.items():
        results.add(f"profile/micro/{label}", SECTION, "Lua micro-benchmark", label, "", {figure: value})


def stages(callgrind: Callgrind, results: Results) -> None:
    """Each hot script stopped at successive points (STAGES), one message a call: thousands of
    instructions per FCALL, cumulative."""
    client = callgrind.server.client
    engine = Engine(client)
    engine.load_scripts()
    q = engine.queue("bench", "stages")
    q.put([BODY])
    for _ in range(8 * STAGE_CALLS // 100 + 2):
        q.put([BODY] * 100)  # enough for the deletes' reservations and every reserve below
    taken = iter([m for _ in range(4 * STAGE_CALLS // 100 + 1) for m in q.reserve(100)])
    def script_step(verb: Any) -> Eval:
        """The verb's script call (plain commands before it, such as a partition layout read,
        are run here)."""
        step = verb.send(None)
        while isinstance(step, Command):
            step = verb.send(client.execute_command(*step.args))
        return step

    steps = {"put_ready": lambda: script_step(q._verbs.put([BODY])),
             "reserve_ready": lambda: script_step(q._verbs.reserve(1)),
             "delete_reserved": lambda: (lambda m: script_step(q._verbs.settle(deletes=[(m.id, m.reservation_id)])))(next(taken))}
    for verb, points in STAGES.items():
        for label, marker in points:
            library = cut_library(verb, marker)
            client.function_load(library.code, replace=True)
            name = library.functions[verb]
            commands = []
            for _ in range(STAGE_CALLS):  # settle consumes a reservation per call
                step = steps[verb]()
                commands.append(("FCALL", name, len(step.keys), *step.keys, *step.args))
            kinstr = callgrind.instructions(lambda: [client.execute_command(*c) for c in commands]) / len(commands) / 1000
            results.add(f"profile/stage/{verb}/{label}", SECTION, f"{verb} script, batch 1", label, "",
                        {"kinstr": kinstr})


def cut_library(verb: str, marker: str | None) -> Library:
    """The function library with ``verb``'s script returning 1 just before ``marker`` (a
    marker the script no longer has is an error: a silently missing stage merged its cost into
    the next row)."""
    root = files("ferrymq.lua")
    includes = {f.name.removesuffix(".lua"): f.read_text("utf-8") for f in root.joinpath("includes").iterdir()
                if f.name.endswith(".lua")}
    scripts = {f.name: f.read_text("utf-8") for f in root.iterdir() if f.name.endswith(".lua")}
    name = next(n for n in scripts if n.rsplit("-", 1)[0] == verb)
    if marker is not None:
        at = scripts[name].rfind(marker)
        if at < 0:
            raise LookupError(f"lua/{name} has no {marker!r}: update STAGES in bench/profile.py")
        scripts[name] = scripts[name][:at] + "do return 1 end\n" + scripts[name][at:]
    return build(scripts, includes)[1]


def empty_poll(callgrind: Callgrind, results: Results) -> None:
    """A reserve of 1 that finds the queue empty, a reservation pending (a polling consumer's
    call, made all day on an idle queue): thousands of instructions per call."""
    q = Engine(callgrind.server.client).queue("bench", "idle")
    q.put([BODY])
    q.reserve(1)
    kinstr = callgrind.instructions(lambda: [q.reserve(1) for _ in range(CALLGRIND_CALLS)]) / CALLGRIND_CALLS / 1000
    results.add("profile/cg/ferrymq engine/empty/reserve", SECTION, "ferrymq engine", "reserve, empty queue", "batch 1",
                {"kinstr": kinstr})


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
                callgrind.steps(results, system, batch, SINGLE_CALLS if batch == 1 else 2000, make)
        micro(callgrind.server.client, callgrind.per_call, "kinstr", results)
        stages(callgrind, results)
        empty_poll(callgrind, results)
    finally:
        callgrind.close()

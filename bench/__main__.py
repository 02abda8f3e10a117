"""python -m bench [--quick] [--only SECTIONS] [--out FILE]

FerryMQ side by side with the limit (bare EVALSHA, a raw Redis list) and its peers (Redis
Streams, RSMQ, BullMQ, PyRSMQ) on one dedicated redis-server, then over HTTP, as the backlog
grows, with long polls, and per message in memory; profiles where the Redis CPU goes. Writes
bench/RESULTS.md (the run's part of it) and bench/results.png. See bench/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.metadata
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import ferry, http_bench, limit, longpoll, memory, peers, profile, replication, report, scaling, streams
from .cases import run_rounds
from .harness import RedisServer, Results, pin_to_client_core

HERE = Path(__file__).parent
SECTIONS = ("engine", "peers", "scaling", "longpoll", "memory", "http", "profile", "replication")


@dataclass(frozen=True)
class Plan:
    rounds: int
    seconds: float
    backlogs: tuple[int, ...]
    wake_samples: int
    idle_seconds: float
    memory_messages: int
    http_seconds: float
    profile_messages: int


FULL = Plan(3, 1.0, (1_000, 100_000, 1_000_000), 200, 3.0, 100_000, 1.0, 20_000)
QUICK = Plan(1, 0.2, (1_000, 10_000), 30, 1.0, 10_000, 1.0, 2_000)


def log(text: str) -> None:
    print(text, flush=True)


def sections(plan: Plan) -> dict[str, Callable[[RedisServer, Results], None]]:
    return {
        "engine": lambda s, r: run_rounds(s, r, [*ferry.cases(), *limit.cases(), *streams.cases()],
                                          plan.rounds, plan.seconds, log),
        "peers": lambda s, r: run_rounds(s, r, [*peers.cases(), *ferry.peer_cases()], plan.rounds, plan.seconds, log),
        "scaling": lambda s, r: scaling.run(s, r, list(plan.backlogs), plan.rounds, plan.seconds, log),
        "longpoll": lambda s, r: longpoll.run(s, r, plan.rounds, plan.wake_samples, plan.idle_seconds),
        "memory": lambda s, r: memory.run(s, r, plan.memory_messages),
        "http": lambda s, r: http_bench.run_http(s, r, plan.rounds, plan.http_seconds, log),
        "profile": lambda s, r: profile.run(s, r, plan.profile_messages),
        "replication": lambda s, r: replication.run(s, r, plan.rounds, plan.seconds, log),
    }


def version_of(command: list[str]) -> str:
    if not shutil.which(command[0]):
        return "not installed"
    done = subprocess.run(command, capture_output=True, text=True)
    return (done.stdout or done.stderr).strip().splitlines()[0]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def header(server: RedisServer, args: argparse.Namespace, started: float, load_before: str) -> list[str]:
    packages = {name: importlib.metadata.version(name) for name in ("redis", "hiredis", "uvicorn", "starlette", "httpx")}
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE).stdout.strip()
    peer_versions = peers.versions()
    return [
        f"## Run of {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC"
        f" (`python -m bench{' ' + ' '.join(sys.argv[1:]) if sys.argv[1:] else ''}`, {time.time() - started:.0f} s)",
        "",
        f"- Machine: {cpu_model()}, {os.cpu_count()} cores, Linux {platform.release()}; "
        f"load average {load_before} at the start, {load_text()} at the end (other work shares this machine)",
        f"- redis-server {server.version()} ({server.binary}), no persistence, pinned to core 0; clients on core 1 "
        "(HTTP workers float over both cores)",
        f"- Python {platform.python_version()}, redis-py {packages['redis']} + hiredis {packages['hiredis']}, "
        f"uvicorn {packages['uvicorn']}, starlette {packages['starlette']}, httpx {packages['httpx']}; FerryMQ {commit}",
        "- Peers: " + ", ".join(f"{k} {v}" for k, v in peer_versions.items()) + f"; wrk: {version_of(['wrk', '-v'])}",
        f"- {args.plan.rounds} round(s), systems interleaved within each; cells: median (min–max); "
        f"100-byte bodies; timed steps ≥ {args.plan.seconds:g} s, HTTP steps {args.plan.http_seconds:g} s",
    ]


def load_text() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1 round, short steps, small backlogs")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections ({', '.join(SECTIONS)})")
    parser.add_argument("--out", type=Path, help="results file (default bench/RESULTS.md; a quick run writes none)")
    parser.add_argument("--http-seconds", type=float, metavar="S",
                        help="seconds of each HTTP load step (default 1; issue 14's figures use 5)")
    args = parser.parse_args()
    args.plan = QUICK if args.quick else FULL
    if args.http_seconds:
        args.plan = dataclasses.replace(args.plan, http_seconds=args.http_seconds)
    chosen = [s for s in args.only.split(",") if s]
    unknown = set(chosen) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    out = args.out or (None if args.quick else HERE / "RESULTS.md")
    started, load_before = time.time(), load_text()
    if "peers" in chosen or out:
        peers.ensure_python_peers()
    pin_to_client_core()
    server = RedisServer()
    results = Results()
    try:
        runners = sections(args.plan)
        for name in chosen:
            log(f"{name} ...")
            section_started = time.time()
            runners[name](server, results)
            log(f"{name}: {time.time() - section_started:.0f} s")
        head = header(server, args, started, load_before)
    finally:
        server.close()
    chart = None
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
    if out and report.chart(out.parent / "results.png", results):
        chart = "results.png"
    text = report.markdown(results, head, chart)
    print(text)
    if out:
        report.write(out, results, head, chart)
        log(f"wrote {out}" + (f" and {out.parent / chart}" if chart else ""))


if __name__ == "__main__":
    main()

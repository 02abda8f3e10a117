"""Where one request's time goes in the server process: ``python -m bench.http_profile [ROUTE ...]``
(ROUTE: a fixed-request key of ``http_bench.SCENARIOS``; default ``bare-post ping iron-post1``).

For each route, one server (``ferrymq serve`` with 1 worker, or the bare app) on a Redis of its
own, loaded by wrk (16 connections) in two windows after a warm-up:

- unprofiled: the server process's CPU time (user + system, from /proc) per request answered,
  the figure throughput follows, less noisy than requests/s on a shared machine;
- under cProfile, timed by the process's CPU clock (so neither waiting nor being descheduled on
  a busy machine counts): function calls per request (cProfile counts each resumption of a
  coroutine as a call; deterministic for a given code path), CPU time per request (inflated by
  the profiler itself), and the functions that cost most.

Not part of ``python -m bench``: a tool for the HTTP layer's hot path (issue 14).
"""

from __future__ import annotations

import argparse
import cProfile
import math
import os
import pstats
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from ferrymq.engine import Engine

from .harness import RedisServer, free_port, unpin, wait_until
from .http_bench import AUTH, HERE, PROJECT, SCENARIOS, Scenario, load



def serve(app: str, port: int, redis_url: str, stats_path: str) -> None:
    """The child: a server that profiles itself between SIGUSR1 and SIGUSR2 (then writes the stats)."""
    profiler = cProfile.Profile(time.process_time)
    signal.signal(signal.SIGUSR1, lambda *_: profiler.enable())

    def stop(*_: object) -> None:
        profiler.disable()
        profiler.dump_stats(stats_path)

    signal.signal(signal.SIGUSR2, stop)
    from ferrymq.server.serve import run, serve as serve_ferrymq, uvicorn_config
    from ferrymq.http.settings import Settings

    if app == "bare":
        run(uvicorn_config(Settings(port=port), app="bench.bare:create_app"))
    else:
        serve_ferrymq(Settings(port=port, redis_url=redis_url, tokens={AUTH.split()[1]: PROJECT}))


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def profile(redis: RedisServer, scenario: Scenario, seconds: float, top: int, keep: Path | None) -> dict[str, object]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    stats_path = os.path.join(tempfile.gettempdir(), f"ferrymq-http-profile-{os.getpid()}-{scenario.key}.prof")
    command = [sys.executable, "-m", "bench.http_profile", "--serve", scenario.app, str(port), redis.url, stats_path]
    child = subprocess.Popen(command, cwd=HERE.parent, preexec_fn=unpin,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        probe = "/" if scenario.app == "bare" else "/ping"
        wait_until(lambda: _answers(base + probe), 30, "the server did not start")
        path = scenario.path
        if scenario.app != "bare":
            ref = Engine(redis.client).queue(PROJECT, scenario.key).ensure()
            path = path.format(q=ref.id if scenario.key.startswith("cf") else scenario.key)
            if scenario.prefill:
                from .ferry import fill
                fill(redis, PROJECT, scenario.key, scenario.prefill * math.ceil(1 + 2 * seconds))  # never empty
        load(scenario, base, path, 1)  # warm-up
        before = cpu_seconds(child.pid)
        plain = load(scenario, base, path, seconds)
        cpu_us = (cpu_seconds(child.pid) - before) / plain["requests"] * 1e6
        child.send_signal(signal.SIGUSR1)
        time.sleep(0.2)
        profiled = load(scenario, base, path, seconds)
        child.send_signal(signal.SIGUSR2)
        wait_until(lambda: os.path.exists(stats_path) and os.path.getsize(stats_path) > 0, 30, "no profile written")
        time.sleep(0.5)  # the dump may still be being written
        stats = pstats.Stats(stats_path)
    finally:
        child.terminate()
        child.wait(30)
        if os.path.exists(stats_path):
            if keep:
                os.replace(stats_path, keep / f"{scenario.key}.prof")
            else:
                os.unlink(stats_path)
        if scenario.app != "bare":
            Engine(redis.client).queue(PROJECT, scenario.key).delete()
    return summary(stats, scenario, plain, cpu_us, int(profiled["requests"]), top)


def _answers(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def summary(stats: pstats.Stats, scenario: Scenario, plain: dict[str, float], cpu_us: float, requests: int,
            top: int) -> dict[str, object]:
    entries = stats.stats  # type: ignore[attr-defined]
    total_tt = sum(tt for (_, _, tt, *_rest) in entries.values())
    calls = sum(nc for (_, nc, *_rest) in entries.values())
    ranked = sorted(entries.items(), key=lambda item: -item[1][2])[:top]
    costs = [{"function": f"{short(file)}:{line}({name})" if file != "~" else name,
              "calls": round(nc / requests, 2), "own_us": round(tt / requests * 1e6, 1),
              "cumulative_us": round(ct / requests * 1e6, 1)}
             for (file, line, name), (cc, nc, tt, ct, _) in ranked]
    by_package: dict[str, float] = {}
    for (file, _, name), (_, _, tt, _, _) in entries.items():
        by_package[package(file, name)] = by_package.get(package(file, name), 0.0) + tt
    shares = sorted(by_package.items(), key=lambda item: -item[1])
    return {
        "route": scenario.label, "requests/s (unprofiled)": round(plain["requests"] / plain["seconds"]),
        "server CPU µs per request (unprofiled)": round(cpu_us, 1),
        "function calls per request": round(calls / requests, 1),
        "profiled CPU µs per request": round(total_tt / requests * 1e6, 1),
        "requests profiled": requests,
        "own CPU µs per request by package": ", ".join(f"{p} {tt / requests * 1e6:.0f}" for p, tt in shares if tt / requests > 1e-6),
        "top (per request)": costs,
    }


def report(found: dict[str, object]) -> str:
    lines = [f"{name}: {value}" for name, value in found.items() if not isinstance(value, list)]
    lines += [f"  {c['own_us']:7.1f} own {c['cumulative_us']:8.1f} cum {c['calls']:6.2f} calls  {c['function']}"
              for c in found["top (per request)"]]  # type: ignore[attr-defined]
    return "\n".join(lines) + "\n"


def package(file: str, name: str) -> str:
    """Where a function's own time goes: a library, FerryMQ's engine or HTTP layer, or builtins."""
    if file == "~":
        return "builtins"
    path = short(file)
    if path.startswith(("http/", "engine/", "bench/")):
        return "ferrymq " + path.split("/", 1)[0]
    first = path.split("/", 1)[0]
    return first.removesuffix(".py") if "/" in path else "stdlib"


def short(file: str) -> str:
    for marker in ("site-packages/", f"{HERE.parent}/", sysconfig.get_paths()["stdlib"] + "/"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.http_profile", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("routes", nargs="*", default=["bare-post", "ping", "iron-post1"])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--keep", type=Path, help="a folder to keep each route's cProfile stats in (ROUTE.prof)")
    parser.add_argument("--serve", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        app, port, url, path = args.serve
        serve(app, int(port), url, path)
        return
    by_key = {s.key: s for s in SCENARIOS if s.flow == "fixed"}
    redis = RedisServer()
    try:
        for key in args.routes:
            print(report(profile(redis, by_key[key], args.seconds, args.top, args.keep)), flush=True)
    finally:
        redis.close()


if __name__ == "__main__":
    main()

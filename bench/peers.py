"""FerryMQ's peers on the same Redis, same counts and 100-byte bodies:

- RSMQ (npm ``rsmq``): sendMessage, receiveMessage, deleteMessage with 1 and 16 calls in flight;
- BullMQ (npm ``bullmq`` over ioredis): addBulk of 100, then a Worker at concurrency 1 and 16;
- PyRSMQ (PyPI): the same three calls, one at a time.

The Node packages are installed from ``bench/node/package.json`` into a cache directory
(``~/.cache/ferrymq-bench/node``, or ``$FERRYMQ_BENCH_CACHE``), never into the repository.
The Python peer and matplotlib come with the ``bench`` extra (installed here if missing).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from .cases import Case, Steps
from .harness import BODY_TEXT, RedisServer, Sample, run

SECTION = "peers"
HERE = Path(__file__).parent
NODE_FILES = ("package.json", "peers.js")


def cache_dir() -> Path:
    base = os.environ.get("FERRYMQ_BENCH_CACHE") or Path.home() / ".cache" / "ferrymq-bench"
    return Path(base)


def node_dir() -> Path:
    """The Node peers, installed (once per change of package.json) into the cache."""
    npm = shutil.which("npm")
    if not shutil.which("node") or not npm:
        raise SystemExit("node and npm are needed for the Node peers (Debian: apt-get install nodejs npm)")
    target = cache_dir() / "node"
    target.mkdir(parents=True, exist_ok=True)
    wanted = (HERE / "node" / "package.json").read_text()
    installed = target / "package.json"
    fresh = installed.exists() and installed.read_text() == wanted and (target / "node_modules").is_dir()
    for name in NODE_FILES:
        shutil.copyfile(HERE / "node" / name, target / name)
    if not fresh:
        print(f"installing the Node peers into {target} ...", flush=True)
        run([npm, "install", "--no-audit", "--no-fund", "--no-package-lock"], cwd=target, timeout=600)
    return target


def bench_requirements() -> list[str]:
    """The ``bench`` extra of the installed ferrymq (one list of what the benchmarks need)."""
    marker = re.compile(r"""extra\s*==\s*["']bench["']""")
    return [r.split(";")[0].strip() for r in importlib.metadata.requires("ferrymq") or [] if marker.search(r)]


def ensure_python_peers() -> None:
    """Install the bench extra into this environment when its modules are missing."""
    if all(importlib.util.find_spec(m) for m in ("rsmq", "matplotlib")):
        return
    wanted = bench_requirements()
    if not wanted:
        raise SystemExit("reinstall ferrymq with the bench extra: pip install -e '.[bench]'")
    print(f"installing {', '.join(wanted)} ...", flush=True)
    run([sys.executable, "-m", "pip", "install", "-q", *wanted], timeout=600)
    importlib.invalidate_caches()


def node_peer(directory: Path, system: str, server: RedisServer, n: int, calls: int) -> Steps:
    spec = json.dumps({"system": system, "port": server.port, "n": n, "inflight": calls, "body": len(BODY_TEXT)})
    out = run(["node", str(directory / "peers.js"), spec], cwd=directory, timeout=300)
    return {step: Sample(s["messages"], s["seconds"], s["cpu"]) for step, s in json.loads(out).items()}


def pyrsmq(server: RedisServer, n: int) -> Steps:
    from rsmq import RedisSMQ

    q = RedisSMQ(host="127.0.0.1", port=server.port, qname="bench", ns="pyrsmq")
    q.createQueue().execute()
    ids: list[str] = []

    def put() -> None:
        for _ in range(n):
            q.sendMessage(message=BODY_TEXT).execute()

    def reserve() -> None:
        while len(ids) < n:
            message = q.receiveMessage().exceptions(False).execute()
            if message:
                ids.append(message["id"])

    def delete() -> None:
        for message_id in ids:
            q.deleteMessage(id=message_id).execute()

    return {"put": server.timed(n, put), "reserve": server.timed(n, reserve), "delete": server.timed(n, delete)}


def cases() -> list[Case]:
    directory = node_dir()
    found = [
        Case(f"{system}/c{c}", SECTION, label, f"{c} in flight",
             lambda s, n, system=system, c=c: node_peer(directory, system, s, n, c), multiple=100, probe=500)
        for system, label in (("rsmq", "RSMQ (npm)"), ("bullmq", "BullMQ (npm)"))
        for c in (1, 16)
    ]
    found.append(Case("pyrsmq/c1", SECTION, "PyRSMQ", "1 in flight", pyrsmq, probe=300))
    return found


def versions() -> dict[str, str]:
    """Versions of the peers as installed."""
    out = {}
    modules = cache_dir() / "node" / "node_modules"
    for name in ("rsmq", "bullmq", "ioredis"):
        package = modules / name / "package.json"
        if package.exists():
            out[f"{name} (npm)"] = json.loads(package.read_text())["version"]
    for name in ("PyRSMQ", "matplotlib"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    node = shutil.which("node")
    if node:
        out["node"] = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    return out

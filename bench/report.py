"""RESULTS.md and results.png from one run.

The run's part of RESULTS.md sits between two markers and is replaced by each run; text outside
them (the analysis of a run, written by hand) stays.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from .harness import Results, Row
from .targets import Verdict, check

BEGIN, END = "<!-- bench:begin (written by python -m bench) -->", "<!-- bench:end -->"
FIGURES = {
    "rate": ("msgs/s", "{:,.0f}"),
    "cpu_us": ("Redis µs/msg", "{:.1f}"),
    "p50_ms": ("p50 ms", "{:.2f}"), "p99_ms": ("p99 ms", "{:.2f}"),
    "ops_per_s": ("Redis ops/s", "{:.1f}"),
    "bytes_per_msg": ("bytes/msg beyond body", "{:.0f}"),
    "script_us": ("EVALSHA µs/msg", "{:.1f}"), "commands_us": ("in commands", "{:.1f}"),
    "lua_us": ("in Lua", "{:.1f}"), "calls_per_msg": ("redis.calls/msg", "{:.1f}"),
    "us": ("Redis µs per call", "{:.1f}"),
    "kinstr_msg": ("k instructions per message (callgrind)", "{:.1f}"),
    "kinstr": ("k instructions per call (callgrind)", "{:.1f}"),
}
TITLES = {
    "engine": "Engine and limits, one Python process",
    "peers": "Peers on the same Redis (lifecycle = all put, all taken, all deleted)",
    "http": "HTTP: `ferrymq serve`",
    "scaling": "Reserve cost as the backlog grows",
    "longpoll": "Long polls",
    "memory": "Memory",
    "profile": "Profile: where the Redis CPU goes",
    "replication": "Replicated acknowledgement: puts with min_replicas_ack 0 and 1, one replica",
}


def cell(row: Row, figure: str) -> str:
    found = row.stat(figure)
    if found is None:
        return ""
    label, fmt = FIGURES.get(figure, (figure, "{:.2f}"))
    median, low, high = found
    if len(row.samples) == 1 or math.isclose(low, high):
        return fmt.format(median)
    return f"{fmt.format(median)} ({fmt.format(low)}–{fmt.format(high)})"


def latency_cell(row: Row) -> str:
    """"p50 / p99" in ms of each kind of request the row timed (median over the rounds)."""
    kinds = dict.fromkeys(k.removesuffix("_p50_ms") for s in row.samples for k in s if k.endswith("_p50_ms"))
    parts = [f"{'' if kind == 'request' else kind + ' '}{row.median(kind + '_p50_ms'):.1f} / {row.median(kind + '_p99_ms'):.1f}"
             for kind in kinds]
    return "; ".join(parts)


def table(rows: list[Row]) -> list[str]:
    present = {f for r in rows for s in r.samples for f in s}
    figures = [f for f in FIGURES if f in present and not f.endswith(("_p50_ms", "_p99_ms"))]
    latencies = any(f.endswith("_p50_ms") for f in present)
    head = ["system", "what", "", *(FIGURES[f][0] for f in figures), *(["latency p50 / p99 ms"] if latencies else [])]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [row.system, row.op, row.detail, *(cell(row, f) for f in figures)]
        lines.append("| " + " | ".join(cells + ([latency_cell(row)] if latencies else [])) + " |")
    return lines


def verdicts(found: list[Verdict]) -> list[str]:
    lines = ["| target | measured (medians) | |", "|---|---|---|"]
    for v in found:
        if v.met is None:
            lines.append(f"| {v.target} | — | not run |")
        else:
            lines.append(f"| {v.target} | {v.measured} | {'**met**' if v.met else '**missed**'} |")
    return lines


def section_rows(results: Results, section: str) -> list[Row]:
    rows = results.section(section)
    if section == "engine":  # lifecycle first, then the steps, each by system
        order = {"lifecycle": 0, "put": 1, "reserve": 2, "delete": 3, "call": 4}
        rows.sort(key=lambda r: order.get(r.op, 9))
    return rows


def markdown(results: Results, header: list[str], chart: str | None) -> str:
    lines = [BEGIN, *header, ""]
    lines += ["### Targets", "", *verdicts(check(results)), ""]
    if chart:
        lines += [f"![results]({chart})", ""]
    for section, title in TITLES.items():
        rows = section_rows(results, section)
        if rows:
            lines += [f"### {title}", "", *table(rows), ""]
    if results.notes:
        lines += ["Notes:", "", *(f"- {n}" for n in dict.fromkeys(results.notes)), ""]
    lines.append(END)
    return "\n".join(lines)


def write(path: Path, results: Results, header: list[str], chart: str | None) -> None:
    generated = markdown(results, header, chart)
    old = path.read_text() if path.exists() else "# Benchmark results\n\n" + BEGIN + END + "\n"
    if BEGIN in old and END in old:
        text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: generated, old, count=1, flags=re.S)
    else:
        text = old.rstrip() + "\n\n" + generated + "\n"
    path.write_text(text)


def chart(path: Path, results: Results) -> bool:
    """Four panels: engine lifecycle rates and Redis CPU by batch, peers, HTTP. False if no
    matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(2, 2, figsize=(14, 9))
    systems = {"ferrymq": "FerryMQ", "rawlist": "raw list (limit)", "streams": "Redis Streams"}
    batches = (1, 10, 100)
    for ax, figure, label in ((axes[0][0], "rate", "lifecycle msgs/s"), (axes[0][1], "cpu_us", "Redis CPU µs per message")):
        for i, (key, name) in enumerate(systems.items()):
            values = [results.get(f"{key}/b{b}/lifecycle") for b in batches]
            ax.bar([j + i * 0.27 for j in range(len(batches))], [r.median(figure) if r else 0 for r in values], 0.27, label=name)
        ax.set_xticks([j + 0.27 for j in range(len(batches))], [f"batch {b}" for b in batches])
        ax.set_title(f"Engine: {label}")
        ax.set_yscale("log")
        ax.legend()
    peers = [("ferrymq/b1", "RSMQ/FerryMQ c1", "rsmq/c1"), ("ferrymq/c16", "c16", "rsmq/c16"),
             ("ferrymq/bulk-c1", "BullMQ/FerryMQ c1", "bullmq/c1"), ("ferrymq/bulk-c16", "c16", "bullmq/c16"),
             ("ferrymq/b1", "PyRSMQ/FerryMQ c1", "pyrsmq/c1")]
    ax = axes[1][0]
    for i, (ours, label, theirs) in enumerate(peers):
        for j, (key, color) in enumerate(((theirs, "tab:gray"), (ours, "tab:blue"))):
            row = results.get(f"{key}/lifecycle")
            rate = row.median("rate") if row else 0
            ax.bar(i + j * 0.4, rate, 0.4, color=color, label=("peer" if j == 0 else "FerryMQ") if i == 0 else None)
            if row:  # the Redis CPU per message on top of each bar
                ax.text(i + j * 0.4, rate, f"{row.median('cpu_us'):.0f} µs", ha="center", va="bottom", fontsize=8)
    ax.set_xticks([i + 0.2 for i in range(len(peers))], [p[2] for p in peers])
    ax.set_title("Peers: lifecycle msgs/s, Redis CPU µs/msg on top\n(gray: peer, blue: FerryMQ driven the same way)")
    ax.legend()
    ax = axes[1][1]
    http = [r for r in results.section("http")]
    labels = list(dict.fromkeys(r.op for r in http))
    for j, workers in enumerate(("1 worker", "2 workers")):
        values = [next((r.median("rate") for r in http if r.op == op and r.detail == workers), 0) for op in labels]
        ax.barh([i + j * 0.4 for i in range(len(labels))], values, 0.4, label=workers)
    ax.set_yticks([i + 0.2 for i in range(len(labels))], labels)
    ax.set_xscale("log")
    ax.set_title("HTTP: msgs/s (requests/s for /ping)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True

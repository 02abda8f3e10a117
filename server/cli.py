"""The ``ferrymq`` command: ``serve``; ``pusher``; ``tokens add|list|revoke``; and, straight on
the engine (no server needed), ``queues list|info|create|update|delete|clear``, ``put``, ``get``, ``peek``
and ``projects list|set-limits`` (quotas).

Options fall back to the environment (``Settings.from_env``: FERRYMQ_REDIS_URL, FERRYMQ_TOKENS,
FERRYMQ_DATA_DIR, FERRYMQ_PROJECT, ...), then to the defaults. Without a Redis URL every command
uses the embedded Redis of the data directory: the running one if ``ferrymq serve`` has it up,
else one started for the command. Exit codes: 0 done, 1 failed, 2 bad usage. Tokens are never
printed, except the new one by ``tokens add``. Results go to stdout (tables, or JSON with
``--json``), everything said about them to stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path
from typing import IO, Any, TypeVar

import orjson
import redis

from ferrymq.engine import (
    AlreadyExists, Engine, EngineError, InvalidArgument, Message, NewMessage, ProjectUsage, QueueNotFound,
)
from ferrymq.engine.egress import EgressPolicy
from ferrymq.engine.limits import LIMITS, QUOTA_NAMES

from ferrymq.http._common import human_bytes
from ferrymq.http.auth import TokenStore
from ferrymq.http.connect import check_url, sync_client
from ferrymq.http.settings import Settings, default_data_dir, parse_list, parse_tokens

from .embedded import APPENDFSYNC, EmbeddedRedisError, redis_for
from .serve import push, serve, with_token_store

T = TypeVar("T")


class UsageError(Exception):
    """Bad usage found once a command runs (exit code 2, like argparse's own)."""


OPTIONS = ("host", "port", "redis_url", "data_dir", "workers", "appendfsync", "log_json", "access_log", "project",
           "pushers", "push_concurrency", "push_timeout", "public_url", "min_replicas_ack", "min_replicas_ack_timeout",
           "tokens_file", "header_timeout", "body_timeout", "keep_alive_timeout", "limit_concurrency",
           "default_partitions")
"""Command-line options that override a ``Settings`` field of the same name."""


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        print(version("ferrymq"))
        return 0
    if args.command is None:
        parser.print_help()
        return 0
    try:
        settings = settings_from(args)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        code: int = args.command(settings, args)
    except UsageError as exc:
        parser.error(str(exc))
    except (EmbeddedRedisError, redis.RedisError, OSError) as exc:
        print(f"ferrymq: error: {exc}", file=sys.stderr)
        return 1
    except EngineError as exc:
        print(f"ferrymq: error: {engine_problem(exc, settings, args)}", file=sys.stderr)
        return 2 if isinstance(exc, InvalidArgument) else 1
    return code


def engine_problem(exc: EngineError, settings: Settings, args: argparse.Namespace) -> str:
    """The engine's error, naming the queue and project where the engine's text does not."""
    queue = getattr(args, "queue", None)
    if isinstance(exc, QueueNotFound):
        return f"no queue {queue!r} in project {settings.project}"
    if isinstance(exc, AlreadyExists):
        return f"queue {queue!r} already exists in project {settings.project}"
    return exc.message


def settings_from(args: argparse.Namespace) -> Settings:
    """The environment's settings, overridden by the options given."""
    overrides = {name: getattr(args, name, None) for name in OPTIONS}
    if getattr(args, "tokens", None):
        overrides["tokens"] = {token: project for pair in args.tokens for token, project in pair.items()}
    if getattr(args, "push_allow", None):
        overrides["push_allow"] = tuple(entry for given in args.push_allow for entry in parse_list(given))
    settings = Settings.from_env(**overrides)
    if settings.appendfsync not in APPENDFSYNC:
        raise ValueError(f"FERRYMQ_APPENDFSYNC must be one of {', '.join(APPENDFSYNC)}")
    if settings.redis_url:
        check_url(settings.redis_url)  # its ValueError names the schemes we take
    if settings.min_replicas_ack and not 0 < settings.min_replicas_ack_timeout < settings.command_timeout:
        raise ValueError(f"the replicas' acknowledgement timeout must be more than 0 and less than the "
                         f"command timeout ({settings.command_timeout:g} s)")
    if args.command is run_serve:
        settings.static_tokens()  # a token file that cannot be used stops here (exit 2)
    EgressPolicy.allowing(settings.push_allow)  # its ValueError names a value that is no network nor host
    if getattr(args, "needs_project", False) and not settings.project:
        raise ValueError("no project: give --project PROJECT or set FERRYMQ_PROJECT")
    return settings


# -- commands ------------------------------------------------------------------------------------


def run_serve(settings: Settings, args: argparse.Namespace) -> int:
    serve(settings)
    return 0


def run_pusher(settings: Settings, args: argparse.Namespace) -> int:
    push(settings)
    return 0


def run_tokens_add(settings: Settings, args: argparse.Namespace) -> int:
    with redis_for(settings) as ready:
        token = with_token_store(ready, lambda store: store.add(args.project, args.token))
    print(token)
    say(f"a new token for project {args.project}: this is the only time it is shown")
    return 0


def run_tokens_list(settings: Settings, args: argparse.Namespace) -> int:
    with redis_for(settings) as ready:
        entries = with_token_store(ready, TokenStore.list)
    for token_id, project, chosen in entries:
        print(f"{token_id}  {project}" + ("  (chosen)" if chosen else ""))
    if not entries:
        say("no tokens; add one with `ferrymq tokens add PROJECT`")
    return 0


def run_tokens_revoke(settings: Settings, args: argparse.Namespace) -> int:
    with redis_for(settings) as ready:
        count = with_token_store(ready, lambda store: store.revoke(args.token_or_id))
    if not count:
        say("error: no token matches (give a whole token, or an id from `ferrymq tokens list`)")
        return 1
    say(f"revoked {count} token(s); running servers refuse them within 5 seconds")
    return 0


def say(text: str) -> None:
    print(f"ferrymq: {text}", file=sys.stderr)


# -- queues and messages (on the engine, no server) ----------------------------------------------

QUEUE_SETTINGS = ("timeout", "delay", "expires_in", "max_deliveries", "dead_letter_queue", "retry_delay", "paused",
                  "partitions")
"""Options of ``queues create`` that are engine queue settings of the same name."""
BODY_SHOWN = 60
"""Characters of a message body a table shows (``--json`` gives it whole)."""


def with_engine(settings: Settings, action: Callable[[Engine], T]) -> T:
    """Run ``action`` on a synchronous engine over a Redis client of its own."""
    with redis_for(settings) as ready:
        client = sync_client(ready.redis_url or "", socket_connect_timeout=5)
        try:
            return action(Engine(client, **ready.engine_options()))
        finally:
            client.close()


def run_queues_list(settings: Settings, args: argparse.Namespace) -> int:
    project = settings.project or ""
    stats, usage = with_engine(settings, lambda engine: (all_stats(engine, project), engine.project_usage(project)))
    if args.json:
        emit([{"name": s.name, "size": s.size, "ready": s.ready, "delayed": s.delayed, "reserved": s.reserved,
               "counters": s.counters} for s in stats])
        return 0
    if stats:
        print(table(("QUEUE", "SIZE", "READY", "DELAYED", "RESERVED"),
                    [(s.name, s.size, s.ready, s.delayed, s.reserved) for s in stats]))
    else:
        say(f"project {project} has no queues")
    say(quota_line(usage))
    return 0


def quota_line(usage: ProjectUsage) -> str:
    """The project's usage and limits on one line (for people: stderr)."""
    limits = usage.limits
    line = (f"project {usage.project}: {usage.queues} of {limits.queues} queues, {usage.messages} of "
            f"{limits.messages} messages, {human_bytes(usage.bytes)} of {human_bytes(limits.bytes)}, "
            f"{usage.subscriptions} of {limits.subscriptions} subscriptions")
    if not usage.measured_at:
        line += " (messages and bytes not measured yet: the sweeper of a running server measures them)"
    if usage.over:
        line += f"; over its {usage.over} quota: new messages are refused"
    return line


# -- projects and quotas -------------------------------------------------------------------------


def run_projects_list(settings: Settings, args: argparse.Namespace) -> int:
    usages = with_engine(settings, lambda engine: [engine.project_usage(p) for p in engine.projects()])
    if args.json:
        emit([usage_view(u) for u in usages])
        return 0
    if not usages:
        say("no project has queues yet")
        return 0

    def cell(u: ProjectUsage, name: str, used: int, shown: Callable[[int], str] = str) -> str:
        return f"{shown(used)}/{shown(getattr(u.limits, name))}" + ("*" if name in u.custom else "")

    print(table(("PROJECT", "QUEUES", "MESSAGES", "BYTES", "SUBSCRIPTIONS", "OVER"),
                [(u.project, cell(u, "queues", u.queues), cell(u, "messages", u.messages),
                  cell(u, "bytes", u.bytes, human_bytes), cell(u, "subscriptions", u.subscriptions), u.over or "-")
                 for u in usages]))
    say("used/limit; * marks a project's own limit, the others are the server's (FERRYMQ_QUOTAS)")
    return 0


def run_projects_set_limits(settings: Settings, args: argparse.Namespace) -> int:
    given = {name: getattr(args, name) for name in QUOTA_NAMES if getattr(args, name) is not None}
    if not given:
        raise UsageError("give at least one limit, e.g. --queues 100 (or --queues default)")
    limits = {name: None if value == "default" else value for name, value in given.items()}
    usage = with_engine(settings, lambda engine: engine.set_project_limits(args.project, **limits))
    if args.json:
        emit(usage_view(usage))
    say(quota_line(usage))
    return 0


def usage_view(usage: ProjectUsage) -> dict[str, Any]:
    return {**dataclasses.asdict(usage), "custom": sorted(usage.custom)}


def limit_value(text: str) -> int | str:
    """A quota on the command line: a whole number, or "default" (the server's)."""
    if text == "default":
        return text
    if not text.isdecimal():
        raise argparse.ArgumentTypeError(f"not a whole number or 'default': {text!r}")
    return int(text)


def all_stats(engine: Engine, project: str) -> list[Any]:
    found: list[Any] = []
    for page in range(-(-engine.count_queues(project) // 1000)):  # a page may come back short
        found += engine.stats(project, page=page, per_page=1000)
    return found


def run_queues_info(settings: Settings, args: argparse.Namespace) -> int:
    show_info(with_engine(settings, lambda engine: engine.queue(settings.project or "", args.queue).info()), args)
    return 0


def settings_given(args: argparse.Namespace) -> dict[str, Any]:
    """The queue settings a create or update command was given."""
    return {name: getattr(args, name) for name in QUEUE_SETTINGS if getattr(args, name) is not None}


def run_queues_create(settings: Settings, args: argparse.Namespace) -> int:
    given = settings_given(args)
    info = with_engine(settings, lambda engine: engine.queue(settings.project or "", args.queue).create(**given))
    show_info(info, args)
    say(f"created queue {args.queue}")
    return 0


def run_queues_update(settings: Settings, args: argparse.Namespace) -> int:
    given = settings_given(args)
    if not given:
        raise UsageError("nothing to change: give a setting, e.g. --partitions N")
    info = with_engine(settings, lambda engine: engine.queue(settings.project or "", args.queue).update(**given))
    show_info(info, args)
    say(f"updated queue {args.queue}")
    return 0


def show_info(info: Any, args: argparse.Namespace) -> None:
    if args.json:
        emit({**dataclasses.asdict(info), "size": info.size})
        return
    s = info.settings
    rows = [("name", info.name), ("id", info.id), ("project", info.project), ("created", moment(info.created_at)),
            ("size", info.size), ("ready", info.ready), ("delayed", info.delayed), ("reserved", info.reserved),
            ("total put", info.total_messages),
            *((f"counter: {name}", count) for name, count in sorted(info.counters.items())),
            ("timeout", f"{s.timeout:g} s"), ("delay", f"{s.delay:g} s"), ("expires in", f"{s.expires_in:g} s"),
            ("max deliveries", s.max_deliveries or "unlimited"), ("dead letter queue", s.dead_letter_queue or "-"),
            ("retry delay", f"{s.retry_delay:g} s"), ("paused", "yes" if s.paused else "no"),
            ("partitions", s.partitions),
            ("stuck transfers", f"{info.stuck} (latest: {info.stuck_reason})" if info.stuck else 0)]
    print(table(("FIELD", "VALUE"), rows, header=False))


def run_queues_delete(settings: Settings, args: argparse.Namespace) -> int:
    with_engine(settings, lambda engine: engine.queue(settings.project or "", args.queue).delete())
    say(f"deleted queue {args.queue} and its messages")
    return 0


def run_queues_retry_stuck(settings: Settings, args: argparse.Namespace) -> int:
    def retry(engine: Engine) -> tuple[int, int]:
        queue = engine.queue(settings.project or "", args.queue)
        return queue.info().stuck, queue.retry_stuck()

    stuck, moved = with_engine(settings, retry)
    if args.json:
        emit({"queue": args.queue, "stuck": stuck, "moved": moved})
    say(f"queue {args.queue}: {moved} of {stuck} stuck transfer(s) moved")
    return 0 if moved == stuck else 1


def run_queues_clear(settings: Settings, args: argparse.Namespace) -> int:
    # One O(1) script whatever the queue's size (its keys are unlinked): nothing to show progress of.
    removed = with_engine(settings, lambda engine: engine.queue(settings.project or "", args.queue).clear())
    if args.json:
        emit({"queue": args.queue, "removed": removed})
    say(f"cleared queue {args.queue}: {removed} message(s) removed")
    return 0


def run_put(settings: Settings, args: argparse.Namespace) -> int:
    source, total = body_source(args)
    progress = Progress(args.progress, total, "put")
    options = {"delay": args.delay, "timeout": args.timeout, "expires_in": args.expires_in}

    def put_all(engine: Engine) -> list[str]:
        queue, ids = engine.queue(settings.project or "", args.queue), []
        for batch in batches(source, engine.limits.max_batch):
            ids += queue.put([NewMessage(body, **options) for body, _ in batch])
            progress.update(len(ids), batch[-1][1])
        return ids

    try:
        ids = with_engine(settings, put_all)
    finally:
        progress.close()
    if args.json:
        emit({"queue": args.queue, "ids": ids})
    elif ids:
        print("\n".join(ids))
    say(f"put {len(ids)} message(s) on queue {args.queue}")
    return 0


def body_source(args: argparse.Namespace) -> tuple[Iterator[tuple[str | bytes, int]], int | None]:
    """(body, bytes read so far) pairs from the arguments, the file or stdin (one message a line,
    empty lines skipped), and the input's size in bytes when it is known (for the progress bar)."""
    if args.bodies:
        return ((body, 0) for body in args.bodies), None
    if args.file is not None:
        stream: IO[bytes] = open(args.file, "rb")  # closed when the lines run out
        return lines(stream), Path(args.file).stat().st_size
    if sys.stdin.isatty():
        raise UsageError("nothing to put: give BODY arguments, --file FILE, or pipe messages (one a line) on stdin")
    return lines(sys.stdin.buffer), None


def lines(stream: IO[bytes]) -> Iterator[tuple[bytes, int]]:
    read = 0
    with stream:
        for raw in stream:
            read += len(raw)
            body = raw.rstrip(b"\r\n")  # bytes: a line need not be UTF-8
            if body:
                yield body, read


def batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def run_get(settings: Settings, args: argparse.Namespace) -> int:
    def reserve(engine: Engine) -> list[Message]:
        queue = engine.queue(settings.project or "", args.queue)
        return queue.reserve(args.n, timeout=args.timeout, delete=args.delete, wait=args.wait)

    show_messages(with_engine(settings, reserve), args, "no message was ready")
    return 0


def run_peek(settings: Settings, args: argparse.Namespace) -> int:
    peeked = with_engine(settings, lambda engine: engine.queue(settings.project or "", args.queue).peek(args.n))
    show_messages(peeked, args, "no message is ready")
    return 0


def show_messages(messages: list[Message], args: argparse.Namespace, none: str) -> None:
    if args.json:
        emit([message_view(m) for m in messages])
    elif messages:
        print(table(("ID", "DELIVERIES", "RESERVATION", "BODY"),
                    [(m.id, m.reserved_count, m.reservation_id or "-", shown(m.text)) for m in messages]))
    if not messages:
        say(none)


def message_view(message: Message) -> dict[str, Any]:
    view = {name: getattr(message, name) for name in (
        "id", "status", "reserved_count", "reservation_id", "reserved_until", "timeout", "enqueued_at",
        "expires_at", "content_type")}
    return {**view, "body": message.text}


# -- output --------------------------------------------------------------------------------------


def emit(value: Any) -> None:
    print(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


def table(headers: tuple[str, ...], rows: list[tuple[Any, ...]], *, header: bool = True) -> str:
    """Columns padded to their widest cell; numbers right-aligned."""
    cells = [tuple(str(c) for c in row) for row in ([headers] if header else []) + rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    right = [all(isinstance(row[i], int) for row in rows) for i in range(len(headers))]
    return "\n".join(
        "  ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(row, widths, right)).rstrip() for row in cells
    )


def shown(text: str) -> str:
    """A body on one table line: control characters escaped, cut at BODY_SHOWN."""
    flat = text.encode("unicode_escape").decode("ascii") if not text.isprintable() else text
    return flat if len(flat) <= BODY_SHOWN else flat[: BODY_SHOWN - 1] + "…"


def moment(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


class Progress:
    """A progress bar on stderr (with a percentage when the input's size is known). ``mode``
    None shows it only on a terminal; True and False force it on or off."""

    WIDTH, EVERY = 30, 0.1  # characters; seconds between two redraws

    def __init__(self, mode: bool | None, total: int | None, verb: str, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr
        self.on = mode if mode is not None else self.stream.isatty()
        self.total, self.verb = total, verb
        self.drawn_at, self.count, self.done = 0.0, 0, 0

    def update(self, count: int, done: int) -> None:
        self.count, self.done = count, done
        if self.on and time.monotonic() - self.drawn_at >= self.EVERY:
            self.draw()

    def draw(self) -> None:
        self.drawn_at = time.monotonic()
        line = f"{self.verb} {self.count} message(s)"
        if self.total:
            part = min(self.done / self.total, 1.0)
            filled = round(part * self.WIDTH)
            line = f"{self.verb} [{'#' * filled}{'.' * (self.WIDTH - filled)}] {part:4.0%}  {self.count} message(s)"
        self.stream.write(f"\r{line}")
        self.stream.flush()

    def close(self) -> None:
        if self.on and self.count:
            self.draw()
            self.stream.write("\n")


# -- parser --------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ferrymq", description="FerryMQ, a message queue server over Redis.",
        epilog="Run `ferrymq COMMAND --help` for a command's options.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.set_defaults(command=None)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    add_serve(commands)
    add_pusher(commands)
    add_tokens(commands)
    add_queues(commands)
    add_messages(commands)
    add_projects(commands)
    return parser


def add_projects(commands: Commands) -> None:
    projects_parser = commands.add_parser(
        "projects", help="list projects with their quotas and usage, or set a project's limits",
        description="Every project's quotas (queues, messages, bytes, subscriptions, ids per request) and usage. "
                    "A project's own limits override the server's (FERRYMQ_QUOTAS).",
    )
    projects = projects_parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    listing = projects.add_parser("list", help="projects with their usage and limits",
                                  description="Projects with their usage and limits (messages and bytes as "
                                              "the sweeper last measured them).")
    listing.set_defaults(command=run_projects_list)
    limits = projects.add_parser("set-limits", help="give a project its own limits",
                                 description="Give PROJECT its own limits; 'default' returns one to the server's.")
    limits.add_argument("project", metavar="PROJECT")
    for name in QUOTA_NAMES:
        limits.add_argument(f"--{name.replace('_', '-')}", dest=name, type=limit_value, metavar="N|default",
                            help=QUOTA_HELP[name])
    limits.set_defaults(command=run_projects_set_limits)
    for leaf in (listing, limits):
        add_json_option(leaf)
        add_redis_options(leaf)


QUOTA_HELP = {"queues": "queues", "messages": "messages queued in all its queues",
              "bytes": "bytes of those messages, as Redis counts them", "subscriptions": "event subscriptions",
              "ids_per_request": "message ids one request may acknowledge or delete (at least 100)"}


def add_serve(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve_parser = commands.add_parser(
        "serve", help="run the HTTP server", description=(
            "Run the HTTP server until SIGTERM or Ctrl+C (requests in flight finish; long polls "
            "answer at once). Without a Redis URL it runs an embedded redis-server with its data "
            "in --data-dir."
        ),
    )
    serve_parser.add_argument("--host", help="address to listen on (env FERRYMQ_HOST; default 127.0.0.1)")
    serve_parser.add_argument("--port", type=bounded(0, 65535), help="port (env FERRYMQ_PORT; default 8080)")
    serve_parser.add_argument("--workers", type=bounded(1, 1024), metavar="N",
                              help="worker processes (env FERRYMQ_WORKERS; default 1)")
    serve_parser.add_argument(
        "--token", dest="tokens", action="append", type=token_pair, metavar="TOKEN:PROJECT",
        help="a token that opens PROJECT; repeat for more (env FERRYMQ_TOKENS=tok1:proj1,tok2:proj2). "
             "Tokens added with `ferrymq tokens add` work too. `ps` shows these: prefer --token-file.",
    )
    serve_parser.add_argument(
        "--token-file", dest="tokens_file", type=Path, metavar="FILE",
        help="read tokens from FILE, one TOKEN:PROJECT a line (# comments); keep it chmod 600 "
             "(env FERRYMQ_TOKENS_FILE)",
    )
    serve_parser.add_argument("--appendfsync", choices=APPENDFSYNC,
                              help="embedded Redis: fsync the append-only file every second (default) "
                                   "or on every write (env FERRYMQ_APPENDFSYNC)")
    serve_parser.add_argument("--log-json", action="store_const", const=True,
                              help="log JSON lines, the access log's with each request's id, route, "
                                   "status and duration (env FERRYMQ_LOG_JSON=1)")
    serve_parser.add_argument("--access-log", action="store_const", const=True,
                              help="log a line per request (env FERRYMQ_ACCESS_LOG=1; off by default: "
                                   "at thousands of requests a second it fills disks)")
    serve_parser.add_argument("--default-partitions", type=bounded(1, LIMITS.max_partitions), metavar="N",
                              help="partitions of the queues created without a setting of their own "
                                   "(env FERRYMQ_DEFAULT_PARTITIONS; default 1); see README, Partitioned queues")
    serve_parser.add_argument("--pushers", type=bounded(0, 64), metavar="N",
                              help="push delivery loops per worker (env FERRYMQ_PUSHERS; default 1; "
                                   "0: deliver with `ferrymq pusher` elsewhere)")
    add_client_limits(serve_parser)
    add_push_options(serve_parser)
    add_redis_options(serve_parser)
    add_replication_options(serve_parser)
    serve_parser.set_defaults(command=run_serve)


def add_client_limits(parser: argparse.ArgumentParser) -> None:
    """What one client can hold: slow clients get 408 or are closed (server/timeouts.py)."""
    parser.add_argument("--header-timeout", type=float, metavar="SECONDS",
                        help="seconds to send a request's head (env FERRYMQ_HEADER_TIMEOUT; default 10)")
    parser.add_argument("--body-timeout", type=float, metavar="SECONDS",
                        help="seconds to send a request's body (env FERRYMQ_BODY_TIMEOUT; default 60)")
    parser.add_argument("--keep-alive-timeout", type=float, metavar="SECONDS",
                        help="seconds an idle connection stays open (env FERRYMQ_KEEP_ALIVE_TIMEOUT; default 5)")
    parser.add_argument("--limit-concurrency", type=bounded(1, 1_000_000), metavar="N",
                        help="connections a worker serves at once, beyond which requests get 503 "
                             "(env FERRYMQ_LIMIT_CONCURRENCY; default 1000)")


def add_pusher(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    pusher_parser = commands.add_parser(
        "pusher", help="deliver push-queue messages (no HTTP server)", description=(
            "Deliver push-queue messages to their subscribers until SIGTERM or Ctrl+C, so that "
            "delivery scales apart from the HTTP servers. Any number of pushers on any number of "
            "machines share the work: each delivery is claimed by one of them at a time."
        ),
    )
    pusher_parser.add_argument("--pushers", type=bounded(1, 64), metavar="N",
                               help="delivery loops in this process (env FERRYMQ_PUSHERS; default 1)")
    add_push_options(pusher_parser)
    add_redis_options(pusher_parser)
    add_replication_options(pusher_parser)
    pusher_parser.set_defaults(command=run_pusher)


def add_push_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--push-concurrency", type=bounded(1, 10_000), metavar="N",
                        help="pushes in flight per loop (env FERRYMQ_PUSH_CONCURRENCY; default 64)")
    parser.add_argument("--push-timeout", type=float, metavar="SECONDS",
                        help="seconds a subscriber gets to answer (env FERRYMQ_PUSH_TIMEOUT; default 60)")
    parser.add_argument("--public-url", metavar="URL",
                        help="this server's address for subscribers' acknowledgements of 202 answers "
                             "(env FERRYMQ_PUBLIC_URL; default http://HOST:PORT)")
    parser.add_argument("--push-allow", action="append", metavar="NETWORK_OR_HOST",
                        help="let pushes reach this network (CIDR, e.g. 10.1.0.0/16) or host name beyond "
                             "global addresses; repeat for more (env FERRYMQ_PUSH_ALLOW=a,b). By default "
                             "loopback, private, link-local and other special addresses are refused")


def add_tokens(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tokens_parser = commands.add_parser(
        "tokens", help="add, list or revoke API tokens",
        description="Tokens stored in Redis (as digests); each opens one project.",
    )
    tokens = tokens_parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    add = tokens.add_parser("add", help="create a token for a project and print it (once)",
                            description="Create a token for PROJECT and print it: the only time it is shown. "
                                        "A random token is stored as its sha256; one you give with --token, "
                                        "as a slow salted hash (scrypt), since it may be guessable.")
    add.add_argument("project", metavar="PROJECT", help="the project id the token opens")
    add.add_argument("--token", help="use this token instead of a random one (prefer a random one)")
    add.set_defaults(command=run_tokens_add)
    listing = tokens.add_parser("list", help="list token ids and their projects",
                                description="List token ids (digest prefixes, not tokens) and their projects.")
    listing.set_defaults(command=run_tokens_list)
    revoke = tokens.add_parser("revoke", help="revoke a token", description=(
        "Revoke a token, given whole or by its id from `ferrymq tokens list`. Exits 1 if none matches."
    ))
    revoke.add_argument("token_or_id", metavar="TOKEN_OR_ID", help="the token, or its id")
    revoke.set_defaults(command=run_tokens_revoke)
    for leaf in (add, listing, revoke):
        add_redis_options(leaf)


Commands = argparse._SubParsersAction  # type: ignore[type-arg]


def add_queues(commands: Commands) -> None:
    queues_parser = commands.add_parser(
        "queues", help="list, inspect, create, delete or clear queues",
        description="Queues of one project (--project or FERRYMQ_PROJECT), straight on the engine: no server needed.",
    )
    queues = queues_parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    listing = queue_command(queues, "list", run_queues_list, "list the project's queues with their counts",
                            named=False)
    info = queue_command(queues, "info", run_queues_info, "a queue's settings, counts and counters")
    create = queue_command(queues, "create", run_queues_create, "create a queue (exits 1 if it exists)")
    add_queue_settings(create)
    update = queue_command(queues, "update", run_queues_update, "change settings of a queue (exits 1 if it is missing)")
    add_queue_settings(update)
    delete = queue_command(queues, "delete", run_queues_delete, "delete a queue and all its messages")
    clear = queue_command(queues, "clear", run_queues_clear, "remove every message of a queue (keeps its settings)")
    retry = queue_command(queues, "retry-stuck", run_queues_retry_stuck,
                          "move a queue's stuck transfers again (exits 1 if some are still stuck)")
    for leaf in (listing, info, create, update, delete, clear, retry):
        add_json_option(leaf)


def add_messages(commands: Commands) -> None:
    put = queue_command(commands, "put", run_put, "put messages on a queue (created if missing)", description=(
        "Put the BODY arguments, or else each line of --file or of stdin, as messages (empty lines "
        "are skipped), 100 per engine call. Prints the new ids, one a line."))
    put.add_argument("bodies", nargs="*", metavar="BODY", help="message bodies")
    put.add_argument("--file", type=Path, metavar="FILE", help="put each line of FILE")
    put.add_argument("--delay", type=float, metavar="S", help="seconds before the messages can be reserved")
    put.add_argument("--timeout", type=float, metavar="S", help="their reservation timeout (default: the queue's)")
    put.add_argument("--expires-in", type=float, metavar="S", help="seconds they live (default: the queue's)")
    put.add_argument("--progress", action=argparse.BooleanOptionalAction,
                     help="show a progress bar on stderr (default: when stderr is a terminal)")
    get = queue_command(commands, "get", run_get, "reserve the next messages (or delete them with --delete)",
                        description="Reserve up to N messages in FIFO order; each comes back after its "
                                    "timeout unless deleted.")
    get.add_argument("--timeout", type=float, metavar="S", help="reservation seconds (default: each message's)")
    get.add_argument("--wait", type=float, default=0.0, metavar="S", help="long-poll up to S seconds (at most 30)")
    get.add_argument("--delete", action="store_true", help="delete the messages instead of reserving them")
    peek = queue_command(commands, "peek", run_peek, "show the next ready messages without reserving them")
    for leaf in (get, peek):
        leaf.add_argument("-n", type=bounded(1, 100), default=1, metavar="N", help="how many (1 to 100; default 1)")
    for leaf in (put, get, peek):
        add_json_option(leaf)


def queue_command(commands: Commands, name: str, run: Callable[[Settings, argparse.Namespace], int], text: str,
                  *, named: bool = True, description: str | None = None) -> argparse.ArgumentParser:
    """A command on one project's queues, with the Redis and project options."""
    parser: argparse.ArgumentParser = commands.add_parser(name, help=text, description=description or text[0].upper() + text[1:] + ".")
    if named:
        parser.add_argument("queue", metavar="QUEUE", help="the queue's name")
    parser.add_argument("--project", metavar="PROJECT", help="the project (env FERRYMQ_PROJECT)")
    add_redis_options(parser)
    add_replication_options(parser)
    parser.set_defaults(command=run, needs_project=True)
    return parser


def add_queue_settings(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout", type=float, metavar="S", help="reservation timeout of its messages (default 60)")
    parser.add_argument("--delay", type=float, metavar="S", help="delay of its new messages (default 0)")
    parser.add_argument("--expires-in", type=float, metavar="S", help="lifetime of its messages (default 7 days)")
    parser.add_argument("--max-deliveries", type=int, metavar="N",
                        help="deliveries before a message is dead-lettered (default 0: never)")
    parser.add_argument("--dead-letter-queue", metavar="QUEUE", help="where dead letters go (default: dropped)")
    parser.add_argument("--retry-delay", type=float, metavar="S", help="delay of a release that names none")
    parser.add_argument("--paused", action="store_const", const=True, help="pause its delivery")
    parser.add_argument("--partitions", type=bounded(1, LIMITS.max_partitions), metavar="N",
                        help=f"hash slots its messages spread over (1 to {LIMITS.max_partitions}; default 1 or "
                             "the deployment's FERRYMQ_DEFAULT_PARTITIONS); FIFO then holds per partition")


def add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON (for scripts) instead of a table")


def add_redis_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--redis-url", metavar="URL",
                        help="the Redis to use: redis://, rediss://, unix:// or, for Redis Sentinel, "
                             "redis+sentinel://HOST:PORT[,HOST:PORT...]/SERVICE (env FERRYMQ_REDIS_URL); "
                             "default: the embedded one of --data-dir")
    parser.add_argument("--data-dir", type=Path, metavar="DIR",
                        help=f"data directory of the embedded Redis (env FERRYMQ_DATA_DIR; default {default_data_dir()})")


def add_replication_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--min-replicas-ack", type=bounded(0, 100), metavar="N",
                        help="acknowledge a write only once N replicas have it (WAIT; env "
                             "FERRYMQ_MIN_REPLICAS_ACK; default 0: once the primary has it)")
    parser.add_argument("--min-replicas-ack-timeout", type=float, metavar="SECONDS",
                        help="seconds the replicas get to confirm a write, else it fails (504), "
                             "never a false success (env FERRYMQ_MIN_REPLICAS_ACK_TIMEOUT; default 1)")


def token_pair(text: str) -> dict[str, str]:
    """``TOKEN:PROJECT`` (errors do not repeat the text: it may be a real token)."""
    try:
        tokens = parse_tokens(text)
    except ValueError:
        tokens = {}
    if not tokens:
        raise argparse.ArgumentTypeError("a token must look like TOKEN:PROJECT")
    return tokens


def bounded(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}")
        return value

    return parse


if __name__ == "__main__":
    sys.exit(main())

"""The ``ferrymq`` command: ``serve``, and ``tokens add|list|revoke``.

Options fall back to the environment (``Settings.from_env``: FERRYMQ_REDIS_URL, FERRYMQ_TOKENS,
FERRYMQ_DATA_DIR, ...), then to the defaults. Without a Redis URL every command uses the
embedded Redis of the data directory: the running one if ``ferrymq serve`` has it up, else one
started for the command. Exit codes: 0 done, 1 failed, 2 bad usage. Tokens are never printed,
except the new one by ``tokens add``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import redis
from redis.connection import parse_url

from .auth import TokenStore
from .embedded import APPENDFSYNC, EmbeddedRedisError, redis_for
from .server import serve, with_token_store
from .settings import Settings, default_data_dir, parse_tokens

OPTIONS = ("host", "port", "redis_url", "data_dir", "workers", "appendfsync", "log_json")
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
    except (EmbeddedRedisError, redis.RedisError, OSError) as exc:
        print(f"ferrymq: error: {exc}", file=sys.stderr)
        return 1
    return code


def settings_from(args: argparse.Namespace) -> Settings:
    """The environment's settings, overridden by the options given."""
    overrides = {name: getattr(args, name, None) for name in OPTIONS}
    if getattr(args, "tokens", None):
        overrides["tokens"] = {token: project for pair in args.tokens for token, project in pair.items()}
    settings = Settings.from_env(**overrides)
    if settings.appendfsync not in APPENDFSYNC:
        raise ValueError(f"FERRYMQ_APPENDFSYNC must be one of {', '.join(APPENDFSYNC)}")
    if settings.redis_url:
        parse_url(settings.redis_url)  # its ValueError names the schemes redis-py takes
    return settings


# -- commands ------------------------------------------------------------------------------------


def run_serve(settings: Settings, args: argparse.Namespace) -> int:
    serve(settings)
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
    for token_id, project in entries:
        print(f"{token_id}  {project}")
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
    add_tokens(commands)
    return parser


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
             "Tokens added with `ferrymq tokens add` work too.",
    )
    serve_parser.add_argument("--appendfsync", choices=APPENDFSYNC,
                              help="embedded Redis: fsync the append-only file every second (default) "
                                   "or on every write (env FERRYMQ_APPENDFSYNC)")
    serve_parser.add_argument("--log-json", action="store_const", const=True,
                              help="log JSON lines: one per request with its id, route, status and "
                                   "duration (env FERRYMQ_LOG_JSON=1)")
    add_redis_options(serve_parser)
    serve_parser.set_defaults(command=run_serve)


def add_tokens(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tokens_parser = commands.add_parser(
        "tokens", help="add, list or revoke API tokens",
        description="Tokens stored in Redis (as digests); each opens one project.",
    )
    tokens = tokens_parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    add = tokens.add_parser("add", help="create a token for a project and print it (once)",
                            description="Create a token for PROJECT and print it: the only time it is shown.")
    add.add_argument("project", metavar="PROJECT", help="the project id the token opens")
    add.add_argument("--token", help="use this token instead of a random one")
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


def add_redis_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--redis-url", metavar="URL",
                        help="the Redis to use (env FERRYMQ_REDIS_URL); default: the embedded one of --data-dir")
    parser.add_argument("--data-dir", type=Path, metavar="DIR",
                        help=f"data directory of the embedded Redis (env FERRYMQ_DATA_DIR; default {default_data_dir()})")


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

"""The Lua scripts: read from ``lua/``, run as one library of Redis Functions where Redis has
them (7.0+), else as scripts by SHA (Redis 6.2, fakeredis).

Theory of operation
-------------------
A file ``lua/<verb>-<numkeys>.lua`` is one script. A line ``-- @include "name"`` names a helper
file ``lua/includes/name.lua`` it needs; includes may include others. A script's text is its
includes, each emitted once and after the includes it needs (an include cycle is an error), then
its own body.

Defining the helpers costs Redis on every EVAL/EVALSHA (about 20 thousand instructions per call:
each script call runs its whole text). A function library defines them once, when it is loaded:
the library is every include once, then one ``redis.register_function`` per script whose body is
the script's own. ``FCALL`` then runs only the body. The library and its functions are named
after a hash of their text (``ferrymq_<hash>``), so two FerryMQ versions side by side (a rolling
upgrade) each call their own, and loading is idempotent.

Calls are FCALL while Redis has functions, and EVALSHA otherwise. Which one is learned from the
answer to ``FUNCTION LOAD``, sent at startup (``load_scripts``) or before the first call. Every
way a call can find its code missing is mended on the spot, then the call is sent again:

- "unknown command" to FCALL (a Redis before 7 behind a proxy that said otherwise): EVALSHA;
- "Function not found" (a Redis restarted without persistence, a new cluster node): load the
  library there (FUNCTION LOAD goes to every master of a cluster), then FCALL again; if the
  load cannot reach every master, EVAL the script's text this once (it goes to the key's node);
- NOSCRIPT to EVALSHA: EVAL with the text, which also caches it.

On Redis Cluster the scripts run by SHA: redis-py's cluster client learns an FCALL's keys (to
find its node) by asking a node with COMMAND GETKEYS first, a round trip per call, and fails
the call when that node is down; it reads EVALSHA's keys from the command itself.

Nothing here does I/O: ``Scripts`` says which command to send and what to send instead after an
error; the engines' drivers (``sync.py``, ``aio.py``) send them, alone or in pipelines.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Generator
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

from redis.exceptions import NoScriptError, RedisError, ResponseError

_INCLUDE = re.compile(r'^-- @include "([a-z_]+)"\n', re.MULTILINE)


@dataclass(frozen=True, slots=True)
class ScriptSource:
    verb: str
    numkeys: int
    raw: str
    """The file as written."""
    includes: tuple[str, ...]
    """Every include the script needs, in the order they are emitted."""
    body: str
    """The file without its include lines: what the script itself runs."""
    text: str
    """The includes' texts, then the body: what EVAL runs."""


@dataclass(frozen=True, slots=True)
class Library:
    name: str
    code: str
    """What FUNCTION LOAD takes."""
    functions: dict[str, str]
    """verb -> function name."""


def _includes_of(text: str) -> list[str]:
    return _INCLUDE.findall(text)


def _ordered(names: list[str], includes: dict[str, str]) -> list[str]:
    """``names`` and everything they include, each once, every include before its includers."""
    done: list[str] = []
    visiting: list[str] = []

    def visit(name: str) -> None:
        if name in done:
            return
        if name in visiting:
            raise ValueError("include cycle: " + " -> ".join([*visiting[visiting.index(name):], name]))
        if name not in includes:
            raise ValueError(f"no include named {name!r} (lua/includes/{name}.lua)")
        visiting.append(name)
        for needed in _includes_of(includes[name]):
            visit(needed)
        visiting.pop()
        done.append(name)

    for name in names:
        visit(name)
    return done


def build(files_: dict[str, str], includes: dict[str, str]) -> tuple[dict[str, ScriptSource], Library]:
    """The scripts and their library from file texts (``<verb>-<n>.lua`` -> text, include name ->
    text)."""
    bodies = {name: _INCLUDE.sub("", text) for name, text in includes.items()}
    scripts = {}
    for filename, raw in files_.items():
        verb, numkeys = filename.removesuffix(".lua").rsplit("-", 1)
        needed = tuple(_ordered(_includes_of(raw), includes))
        body = _INCLUDE.sub("", raw)
        text = "".join(bodies[name] + "\n" for name in needed) + body
        scripts[verb] = ScriptSource(verb, int(numkeys), raw, needed, body, text)
    every = _ordered(sorted({name for s in scripts.values() for name in s.includes}), includes)
    shared = "".join(bodies[name] + "\n" for name in every)
    registrations = "".join(
        f"redis.register_function('{{name}}_{verb}', function(KEYS, ARGV)\n{src.body}\nend)\n"
        for verb, src in sorted(scripts.items())
    )
    digest = hashlib.sha1((shared + registrations).encode("utf-8")).hexdigest()[:16]
    name = f"ferrymq_{digest}"
    code = f"#!lua name={name}\n" + shared + registrations.replace("{name}", name)
    return scripts, Library(name, code, {verb: f"{name}_{verb}" for verb in scripts})


@cache
def _loaded() -> tuple[dict[str, ScriptSource], Library]:
    root = files("ferrymq.lua")
    includes = {
        f.name.removesuffix(".lua"): f.read_text("utf-8")
        for f in root.joinpath("includes").iterdir()
        if f.name.endswith(".lua")
    }
    scripts = {f.name: f.read_text("utf-8") for f in root.iterdir() if f.name.endswith(".lua")}
    return build(scripts, includes)


def sources() -> dict[str, ScriptSource]:
    """Every script, by verb."""
    return _loaded()[0]


def library() -> Library:
    """The function library of every script."""
    return _loaded()[1]


LOAD = ("LOAD",)
"""``Scripts.instead`` asks for the library to be loaded, then the call sent again."""
Call = Generator[tuple[Any, ...], Any, Any]


class Scripts:
    """Which command runs a verb's script on one client (a single Redis or a cluster), and what to
    send instead when Redis answers that the code is missing. Shared by the sync and the asyncio
    engine (their drivers do the I/O)."""

    def __init__(self, *, functions: bool = True) -> None:
        self.library = library()
        self.functions: bool | None = None if functions else False
        """Whether calls are FCALL (None: unknown until Redis answers; False from the start with
        ``functions=False``)."""
        self._shas = {verb: _sha1(src.text) for verb, src in sources().items()}

    def command(self, verb: str, keys: list[str] | tuple[str, ...], args: list[Any] | tuple[Any, ...],
                by_sha: bool | None = None) -> tuple[Any, ...]:
        """The command that runs ``verb``'s script; ``by_sha``: as an EVALSHA or not, whatever is
        known now (as it was known when a call was sent)."""
        if by_sha is None:
            by_sha = self.functions is False
        if by_sha:
            return ("EVALSHA", self._shas[verb], len(keys), *keys, *args)
        return ("FCALL", self.library.functions[verb], len(keys), *keys, *args)

    def call(self, verb: str, keys: list[str] | tuple[str, ...], args: list[Any] | tuple[Any, ...],
             sent: tuple[tuple[Any, ...], Any] | None = None) -> Call:
        """Runs ``verb``'s script, sans-IO: yields each command to send and receives its reply (an
        error reply as the exception instance); returns the script's reply, or raises its error.
        ``sent``: the first command and its reply, when the caller already sent it (alone or in a
        pipeline): what to send instead is decided from that command, whatever another thread
        or task has learnt about Redis since."""
        if sent is None:
            if self.functions is None:  # the first call: learn which
                self.loaded((yield self.load_command()))
            command = self.command(verb, keys, args)
            reply = yield command
        else:
            command, reply = sent
        tried_load = False
        for _ in range(3):
            if not isinstance(reply, Exception):
                return reply
            instead = self.instead(reply, command, tried_load)
            if instead is None:
                raise reply
            if instead is LOAD:
                tried_load = True
                self.loaded((yield self.load_command()))
                command = self.command(verb, keys, args)
            else:
                command = instead
            reply = yield command
        if isinstance(reply, Exception):
            raise reply
        return reply

    def instead(self, error: Exception, command: tuple[Any, ...], tried_load: bool = False) -> tuple[Any, ...] | None:
        """After ``error`` in reply to ``command``: the command to send instead, ``LOAD`` (load the
        library, then send ``command`` again), or None (the error is the script's own)."""
        if not isinstance(error, RedisError):
            return None
        kind, name = command[0], command[1]
        if kind == "EVALSHA" and isinstance(error, NoScriptError):
            return ("EVAL", self._text_of_sha(name), *command[2:])
        if kind != "FCALL":
            return None
        message = str(error)
        if _unknown_command(message):  # Redis before 7: no functions
            self.functions = False
            return self.command(self._verb_of_function(name), *self._split(command))
        if message.startswith("Function not found"):
            if not tried_load:
                return LOAD
            return ("EVAL", sources()[self._verb_of_function(name)].text, *command[2:])
        return None

    def loaded(self, reply: Any, *, strict: bool = False) -> None:
        """The reply to ``load_command`` (an error as the exception instance): learns whether Redis
        has functions. A load that could not reach Redis (or every master of a cluster) leaves
        FCALL to find out (``instead`` mends its errors), unless ``strict``: then it raises, as any
        error Redis answered does."""
        if isinstance(reply, Exception):
            if isinstance(reply, RedisError) and _unknown_command(str(reply)):
                self.functions = False
                return
            if strict or isinstance(reply, ResponseError):
                raise reply
        self.functions = True

    def load_command(self) -> tuple[str, ...]:
        """Loads the library (REPLACE: the same name always holds the same code, and a cluster
        node that has it already must not stop the others from getting it)."""
        return ("FUNCTION LOAD", "REPLACE", self.library.code)  # one word: how redis-py routes it

    def texts(self) -> list[str]:
        """Every script's text (SCRIPT LOAD where Redis has no functions)."""
        return [src.text for src in sources().values()]

    def _split(self, command: tuple[Any, ...]) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        n = command[2]
        return command[3 : 3 + n], command[3 + n :]

    def _verb_of_function(self, name: str) -> str:
        return name.removeprefix(self.library.name + "_")

    def _text_of_sha(self, sha: str) -> str:
        for verb, known in self._shas.items():
            if known == sha:
                return sources()[verb].text
        raise KeyError(sha)


def _unknown_command(message: str) -> bool:
    """Redis's "unknown command" (Redis 6.2 has no FCALL nor FUNCTION), or redis-py's cluster
    client saying the same before sending (it looks commands up to find their keys)."""
    return message.lower().startswith("unknown command") or message.endswith("command doesn't exist in Redis commands")


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()

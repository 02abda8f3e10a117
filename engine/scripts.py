"""Loads ``lua/*.lua`` once and registers each script with a Redis client.

A file is named ``<verb>-<numkeys>.lua``. A line ``-- @include "name"`` is replaced by
``lua/includes/name.lua`` (one level: an include may not include). A call is EVALSHA, and on
NOSCRIPT (Redis restarted, or a master failed over) EVAL with the text, which also caches it.
Not redis-py's ``Script`` (SCRIPT LOAD, then EVALSHA again): on a cluster its SCRIPT LOAD goes
to every master and fails while any one of them is down, whereas EVAL goes to the master that
owns the keys; and it is one round trip instead of two. The engines' ``load_scripts`` runs
SCRIPT LOAD for every script at startup (on every master of a cluster), so a broken script stops
the server before its first request.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

from redis.exceptions import NoScriptError

_INCLUDE = re.compile(r'^-- @include "([a-z_]+)"$', re.MULTILINE)


@dataclass(frozen=True, slots=True)
class ScriptSource:
    verb: str
    numkeys: int
    text: str
    """The script with its includes expanded: what Redis runs."""
    raw: str
    """The file as written."""


def _expand(text: str, includes: dict[str, str]) -> str:
    def include(match: re.Match[str]) -> str:
        name = match.group(1)
        body = includes[name]
        if _INCLUDE.search(body):
            raise ValueError(f"include {name!r} includes another file; one level only")
        return body

    return _INCLUDE.sub(include, text)


@cache
def sources() -> dict[str, ScriptSource]:
    """Every script, by verb."""
    root = files("ferrymq.lua")
    includes = {
        f.name.removesuffix(".lua"): f.read_text("utf-8")
        for f in root.joinpath("includes").iterdir()
        if f.name.endswith(".lua")
    }
    found = {}
    for f in root.iterdir():
        if not f.name.endswith(".lua"):
            continue
        verb, numkeys = f.name.removesuffix(".lua").rsplit("-", 1)
        raw = f.read_text("utf-8")
        found[verb] = ScriptSource(verb, int(numkeys), _expand(raw, includes), raw)
    return found


class Scripts:
    """The scripts, run over one synchronous client (a single Redis or a cluster)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._by_verb = {verb: (_sha1(src.text), src.text) for verb, src in sources().items()}

    def run(self, verb: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        sha, text = self._by_verb[verb]
        try:
            return self._client.evalsha(sha, len(keys), *keys, *args)
        except NoScriptError:
            return self._client.eval(text, len(keys), *keys, *args)

    def sha(self, verb: str) -> str:
        """The SHA1 a verb's script runs by (for callers that pipeline EVALSHA themselves; the
        scripts must be loaded first)."""
        return self._by_verb[verb][0]

    def texts(self) -> list[str]:
        return [text for _, text in self._by_verb.values()]


class AsyncScripts(Scripts):
    """The scripts, run over one ``redis.asyncio`` client (a single Redis or a cluster)."""

    async def run(self, verb: str, keys: Sequence[str], args: Sequence[Any]) -> Any:  # type: ignore[override]
        sha, text = self._by_verb[verb]
        try:
            return await self._client.evalsha(sha, len(keys), *keys, *args)
        except NoScriptError:
            return await self._client.eval(text, len(keys), *keys, *args)


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()

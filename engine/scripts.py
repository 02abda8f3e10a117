"""Loads ``lua/*.lua`` once and registers each script with a Redis client.

A file is named ``<verb>-<numkeys>.lua``. A line ``-- @include "name"`` is replaced by
``lua/includes/name.lua`` (one level: an include may not include). Calls go through redis-py's
``Script``/``AsyncScript`` objects: EVALSHA, and on NOSCRIPT (Redis restarted or failed over)
load and retry. ``load_all`` runs SCRIPT LOAD for every script at startup, so a broken script
stops the server before its first request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

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
    """The scripts registered with one client (sync or asyncio, single Redis or cluster)."""

    def __init__(self, client: Any) -> None:
        self._by_verb = {verb: client.register_script(src.text) for verb, src in sources().items()}

    def __getitem__(self, verb: str) -> Any:
        return self._by_verb[verb]

    def texts(self) -> list[str]:
        return [src.text for src in sources().values()]

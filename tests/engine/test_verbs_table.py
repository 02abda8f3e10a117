"""The README's Verbs table lists every public verb of the sync and async facades, and nothing else."""

from __future__ import annotations

import inspect
import re

from ferrymq.engine import AsyncEngine, AsyncQueue, Engine
from ferrymq.engine.sync import Queue

NOT_VERBS = {"queue", "load_scripts", "aclose"}
"""Public methods that are not verbs: the queue handle, the startup load, the async close."""


def public_methods(cls: type) -> set[str]:
    return {name for name, member in inspect.getmembers(cls, callable) if not name.startswith("_")}


def readme_verbs(readme: str) -> set[str]:
    """The names in the first column of the table under ``### Verbs``."""
    section = readme.split("### Verbs\n", 1)[1].split("\n###", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| Verb ")]
    return {name for row in rows for name in re.findall(r"`(\w+)`", row.split(" | ", 1)[0])}


def test_the_sync_and_async_facades_have_the_same_verbs():
    assert public_methods(Engine) == public_methods(AsyncEngine) - {"aclose"}
    assert public_methods(Queue) == public_methods(AsyncQueue)


def test_the_readme_verbs_table_lists_every_public_verb_and_only_those(repo_root):
    documented = readme_verbs((repo_root / "README.md").read_text("utf-8"))
    verbs = (public_methods(Engine) | public_methods(Queue)) - NOT_VERBS
    assert sorted(verbs - documented) == [], "public verbs missing from the README's Verbs table"
    assert sorted(documented - verbs) == [], "README rows naming no public verb"


def test_the_table_reader_sees_only_the_first_column():
    table = "### Verbs\n\n| Verb | What |\n|---|---|\n| push: `a`, `b` | like `put` |\n\n### Next\n| `c` | x |\n"
    assert readme_verbs(table) == {"a", "b"}

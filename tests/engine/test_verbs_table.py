"""The README's Verbs table lists every public verb of the sync and async facades, and nothing else;
the verbs package's docstring lists each verb beside the module that holds it."""

from __future__ import annotations

import inspect
import re

import ferrymq.engine.verbs
from ferrymq.engine import AsyncEngine, AsyncQueue, Engine
from ferrymq.engine.sync import Queue

NOT_VERBS = {"queue", "load_scripts", "aclose", "close"}
"""Public methods that are not verbs: the queue handle, the startup load, the closes."""


def public_methods(cls: type) -> set[str]:
    return {name for name, member in inspect.getmembers(cls, callable) if not name.startswith("_")}


def readme_verbs(readme: str) -> set[str]:
    """The names in the first column of the table under ``### Verbs``."""
    section = readme.split("### Verbs\n", 1)[1].split("\n###", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| Verb ")]
    return {name for row in rows for name in re.findall(r"`(\w+)`", row.split(" | ", 1)[0])}


def test_the_sync_and_async_facades_have_the_same_verbs():
    assert public_methods(Engine) - {"close"} == public_methods(AsyncEngine) - {"aclose"}
    assert public_methods(Queue) == public_methods(AsyncQueue)


def test_the_readme_verbs_table_lists_every_public_verb_and_only_those(repo_root):
    documented = readme_verbs((repo_root / "README.md").read_text("utf-8"))
    verbs = (public_methods(Engine) | public_methods(Queue)) - NOT_VERBS
    assert sorted(verbs - documented) == [], "public verbs missing from the README's Verbs table"
    assert sorted(documented - verbs) == [], "README rows naming no public verb"


def test_the_table_reader_sees_only_the_first_column():
    table = "### Verbs\n\n| Verb | What |\n|---|---|\n| push: `a`, `b` | like `put` |\n\n### Next\n| `c` | x |\n"
    assert readme_verbs(table) == {"a", "b"}


def verbs_by_module() -> dict[str, set[str]]:
    """The public methods of the mixins QueueVerbs and EngineVerbs compose, by module file."""
    found: dict[str, set[str]] = {}
    for cls in (*ferrymq.engine.verbs.QueueVerbs.__mro__, *ferrymq.engine.verbs.EngineVerbs.__mro__):
        module = cls.__module__.rsplit(".", 1)[-1] + ".py"
        if cls.__module__.startswith("ferrymq.engine.verbs.") and module != "context.py":
            names = {name for name, member in vars(cls).items() if inspect.isfunction(member) and name[0] != "_"}
            found.setdefault(module, set()).update(names)
    return found


def listed_by_module(doc: str) -> dict[str, set[str]]:
    """The words the package docstring lists beside each module (``  name.py  words``, continued
    on lines indented to the words)."""
    listed: dict[str, set[str]] = {}
    module = None
    for line in doc.splitlines():
        start = re.match(r" {6}(\w+\.py) +(.*)", line)
        if start:
            module, words = start.groups()
        elif module and re.match(r" {21}\S", line):
            words = line
        else:
            module = None
            continue
        listed.setdefault(module, set()).update(re.findall(r"\w+", words))
    return listed


def test_the_verbs_docstring_lists_each_verb_beside_its_module():
    verbs, listed = verbs_by_module(), listed_by_module(ferrymq.engine.verbs.__doc__ or "")
    every = set().union(*verbs.values())
    assert len(verbs) >= 8
    for module, names in verbs.items():
        assert sorted(names - listed.get(module, set())) == [], f"verbs of {module} the docstring leaves out"
        assert sorted(listed.get(module, set()) & every - names) == [], f"verbs listed beside {module}, held elsewhere"

"""The layout: the repository's http/ folder never shadows the standard library's http module,
and each top-level package imports only the packages beneath it (engine <- http <- server)."""

from __future__ import annotations

import ast
import re
import http
import subprocess
import sys
from pathlib import Path

import pytest

# What each package must never import (see each package's docstring and the README's Layout).
FORBIDDEN = {
    "engine": ("ferrymq.http", "ferrymq.server"),
    "http": ("ferrymq.server",),
    "lua": ("ferrymq.engine", "ferrymq.http", "ferrymq.server"),
}


def imported_modules(source: Path) -> set[str]:
    """Absolute modules a file imports (relative imports stay inside its own package)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_packages_import_only_the_layers_beneath_them(repo_root, package):
    files = sorted((repo_root / package).rglob("*.py"))
    assert files or package == "lua", f"no Python files under {package}/"
    crossings = {
        f"{path.relative_to(repo_root)} imports {name}"
        for path in files
        for name in imported_modules(path)
        if name.startswith(FORBIDDEN[package])
    }
    assert not crossings


PACKAGE_DOCSTRING = {"engine": "engine/__init__.py", "http": "http/app.py", "server": "server/__init__.py"}
"""Where each Python package says what it holds and what it may import (http/ has no __init__.py)."""


@pytest.mark.parametrize("package", sorted(PACKAGE_DOCSTRING))
def test_each_package_docstring_says_what_it_may_import(repo_root, package):
    source = (repo_root / PACKAGE_DOCSTRING[package]).read_text("utf-8")
    doc = " ".join((ast.get_docstring(ast.parse(source)) or "").split())
    assert "may import" in doc.lower(), f"{PACKAGE_DOCSTRING[package]}: no 'May import' in the docstring"
    assert [name for name in FORBIDDEN.get(package, ()) if name not in doc] == []


def unresolved_relative_imports(source: Path) -> list[str]:
    """Relative imports of a file (lazy ones inside functions too) naming no module beside it."""
    missing = []
    for node in ast.walk(ast.parse(source.read_text("utf-8"))):
        if not (isinstance(node, ast.ImportFrom) and node.level):
            continue
        base = source.parents[node.level - 1]
        targets = [node.module] if node.module else [alias.name for alias in node.names]
        for target in targets:
            place = base.joinpath(*target.split("."))
            if not (place.with_suffix(".py").is_file() or place.is_dir()):
                missing.append(f"{source.name}: {'.' * node.level}{target}")
    return missing


@pytest.mark.parametrize("package", ["engine", "http", "server"])
def test_every_relative_import_names_a_module_of_the_package(repo_root, package):
    # A module moved between packages must not leave a lazy `from .x import` behind.
    assert [m for path in (repo_root / package).rglob("*.py") for m in unresolved_relative_imports(path)] == []


def test_the_relative_import_check_sees_a_dangling_one(tmp_path):
    (tmp_path / "here.py").write_text("def f():\n    from .gone import x\n    from . import here\n")
    assert unresolved_relative_imports(tmp_path / "here.py") == ["here.py: .gone"]


def test_the_import_rule_check_sees_a_crossing(tmp_path):
    source = tmp_path / "bad.py"
    source.write_text("from ferrymq.server.cli import main\nfrom . import sibling\n")
    assert imported_modules(source) == {"ferrymq.server.cli", "ferrymq.server.cli.main"}


def test_http_is_the_standard_library():
    assert hasattr(http, "HTTPStatus"), f"http resolved to {http.__file__}"


def test_engine_and_stdlib_http_import_together_from_the_repo_root(repo_root):
    # `python -c` puts the current directory first on sys.path: the repo's http/ must lose.
    code = "import ferrymq.engine, ferrymq.server.cli, http.client, starlette.responses; print(http.__file__)"
    out = subprocess.run([sys.executable, "-c", code], cwd=repo_root, capture_output=True, text=True, check=True)
    assert str(repo_root / "http") not in out.stdout


def test_python_dash_m_pytest_runs_from_the_repo_root(repo_root):
    # `python -m pytest` also puts the root first on sys.path; the suite must still collect.
    command = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "tests/test_layout.py"]
    out = subprocess.run(command, cwd=repo_root, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_lua_scripts_ship_as_package_data():
    from importlib.resources import files

    names = {f.name for f in files("ferrymq.lua").iterdir()}
    assert any(name.startswith("reserve-") and name.endswith(".lua") for name in names)
    assert (files("ferrymq.lua") / "includes" / "queue.lua").is_file()


def test_the_http_folder_has_no_init_file(repo_root):
    # An http/__init__.py would make the folder a regular package named http (see pyproject.toml).
    assert not (repo_root / "http" / "__init__.py").exists()


def test_the_contract_notes_the_code_cites_are_in_the_repository(repo_root):
    cited = {
        (path.relative_to(repo_root), name)
        for folder in ("engine", "http", "server", "tests")
        for path in (repo_root / folder).rglob("*.py")
        for name in re.findall(r"docs/contracts/[\w.-]+\.md", path.read_text("utf-8"))
    }
    assert len({name for _, name in cited}) >= 4
    assert not {(path, name) for path, name in cited if not (repo_root / name).is_file()}
    assert not [path for path in (repo_root / "docs" / "contracts").glob("*.md") if "shared/notes" in path.read_text()]

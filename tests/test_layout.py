"""The repository's http/ folder must never shadow the standard library's http module."""

from __future__ import annotations

import http
import subprocess
import sys


def test_http_is_the_standard_library():
    assert hasattr(http, "HTTPStatus"), f"http resolved to {http.__file__}"


def test_engine_and_stdlib_http_import_together_from_the_repo_root(repo_root):
    # `python -c` puts the current directory first on sys.path: the repo's http/ must lose.
    code = "import ferrymq.engine, ferrymq.http.cli, http.client, starlette.responses; print(http.__file__)"
    out = subprocess.run([sys.executable, "-c", code], cwd=repo_root, capture_output=True, text=True, check=True)
    assert str(repo_root / "http") not in out.stdout


def test_lua_scripts_ship_as_package_data():
    from importlib.resources import files

    names = {f.name for f in files("ferrymq.lua").iterdir()}
    assert any(name.startswith("reserve-") and name.endswith(".lua") for name in names)
    assert (files("ferrymq.lua") / "includes" / "queue.lua").is_file()


def test_the_http_folder_has_no_init_file(repo_root):
    # An http/__init__.py would make the folder a regular package named http (see pyproject.toml).
    assert not (repo_root / "http" / "__init__.py").exists()

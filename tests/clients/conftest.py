"""The official IronMQ clients, installed once per checkout and run against the live server:

- npm iron_mq 0.2.4 (IronMQ v1) and 0.9.3 (v3, under the alias iron_mq_v3), from
  package-lock.json into node_modules/;
- PyPI iron-mq 0.9 with iron-core 1.2.1 (v3), with ``pip install --target`` into a folder of its
  own: iron-mq 0.7 (v1) has the same distribution name and stays in the main environment, so 0.9
  runs in a subprocess with its folder first on sys.path.

Both folders are git-ignored; a clean clone installs them on first use (the tests fail, never
skip, when that is impossible)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

PROJECT, TOKEN = "000000000000000000000001", "token-a"
HERE = Path(__file__).parent
NODE_PACKAGES = ("iron_mq", "iron_mq_v3")
PYTHON_V3 = HERE / ".iron-mq-0.9"
PYTHON_V3_PINS = ("iron-mq==0.9", "iron-core==1.2.1")


def iron_env(server, home: Path) -> dict[str, str]:
    """The clients' configuration (both read IRON_* variables), and nothing of the caller's."""
    port = server.url.rsplit(":", 1)[1]
    return {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "IRON_SCHEME": "http", "IRON_PROTOCOL": "http",
            "IRON_HOST": "127.0.0.1", "IRON_PORT": port, "IRON_TOKEN": TOKEN, "IRON_PROJECT_ID": PROJECT}


def run_json(command: list[str], env: dict[str, str], cwd: Path) -> dict:
    """Runs a client script; it prints one JSON object of observations, or fails."""
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr + done.stdout
    return json.loads(done.stdout)


@pytest.fixture(scope="session")
def node_client() -> Path:
    """The npm clients, installed from package-lock.json (once, when missing)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.fail("node and npm are needed for the Node client tests")
    if not all((HERE / "node_modules" / name).is_dir() for name in NODE_PACKAGES):
        installed = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=HERE, capture_output=True, text=True,
                                   timeout=300)
        if installed.returncode != 0:
            pytest.fail(f"npm ci failed in {HERE}:\n{installed.stderr}")
    return Path(node)


@pytest.fixture
def run_node(node_client: Path, server) -> Callable[..., dict]:
    """``run_node(script, *args)``: a Node script of this folder against the live server."""

    def run(script: str, *args: str) -> dict:
        return run_json([str(node_client), str(HERE / script), *args], iron_env(server, HERE), HERE)

    return run


@pytest.fixture(scope="session")
def python_v3_client() -> Path:
    """iron-mq 0.9 and iron-core 1.2.1 in a folder of their own (once, when missing). Their
    dependencies (requests, python-dateutil) are iron-core 1.2.1's, already in the environment."""
    client = PYTHON_V3 / "iron_mq.py"
    if not (client.exists() and "VERSION = '0.9'" in client.read_text()):
        installed = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--upgrade", "--target", str(PYTHON_V3),
             *PYTHON_V3_PINS], capture_output=True, text=True, timeout=300)
        if installed.returncode != 0:
            pytest.fail(f"could not install {' '.join(PYTHON_V3_PINS)} into {PYTHON_V3}:\n{installed.stderr}")
    return PYTHON_V3


@pytest.fixture
def run_python_v3(python_v3_client: Path, server, tmp_path: Path) -> Callable[..., dict]:
    """``run_python_v3(step, *args)``: a step of iron_py3_client.py, with iron-mq 0.9 first on
    sys.path, run in an empty folder with an empty HOME (no iron.json of anyone's)."""

    def run(step: str, *args: str) -> dict:
        env = {**iron_env(server, tmp_path), "PYTHONPATH": str(python_v3_client)}
        return run_json([sys.executable, str(HERE / "iron_py3_client.py"), step, *args], env, tmp_path)

    return run

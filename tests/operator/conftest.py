"""Fixtures for the operator features: the `ferrymq` command on the test's Redis and project, and
a real headless Chromium (Debian's) driven by Playwright.

Playwright drives /usr/bin/chromium rather than a browser of its own (`playwright install`
downloads one, which this machine cannot); the tests fail, never skip, without it.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PROJECT = "000000000000000000000001"


@pytest.fixture
def ferrymq(ferrymq: Callable[..., subprocess.CompletedProcess[str]], redis_client: Any,
            redis_url: str) -> Callable[..., subprocess.CompletedProcess[str]]:
    """The root ``ferrymq`` runner, on the test's (empty) Redis and project."""
    base = {"FERRYMQ_REDIS_URL": redis_url, "FERRYMQ_PROJECT": PROJECT}

    def run(*args: str, env: dict[str, str] | None = None, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return ferrymq(*args, env={**base, **(env or {})}, stdin=stdin)

    return run


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    # Module-scoped: while Playwright's sync API is open, the main thread has a running event loop
    # (its greenlet's), and every later asyncio.run() or async test of the session would fail.
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


@pytest.fixture
def page(playwright: Any, tmp_path: Path) -> Iterator[Any]:
    """A page of a fresh Chromium with a profile (user-data-dir) of its own: no cookies, no cache.
    Dialogs (confirm) are dismissed unless the test handles them."""
    context = playwright.chromium.launch_persistent_context(
        str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, args=CHROMIUM_FLAGS,
        viewport={"width": 1100, "height": 800}, timeout=60_000)
    yield context.pages[0] if context.pages else context.new_page()
    context.close()

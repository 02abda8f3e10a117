"""IronMQ v1 request helpers shared by the push and alert tests: project A's paths and token,
the checks every answer of the contract passes, posting messages, waiting for the pusher."""

from __future__ import annotations

import time

import httpx

PROJECT = "000000000000000000000001"
AUTH = {"Authorization": "OAuth token-a"}


def url(path: str) -> str:
    return f"/1/projects/{PROJECT}{path}"


def ok(response: httpx.Response) -> dict:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


def refused(response: httpx.Response, status: int = 400) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()["msg"]


def post(server, queue: str, *bodies: str) -> list[str]:
    doc = {"messages": [{"body": b} for b in bodies]}
    return ok(server.http.post(url(f"/queues/{queue}/messages"), json=doc, headers=AUTH))["ids"]


def eventually(check, timeout: float = 10.0):
    """``check()`` once it stops raising AssertionError (the pusher works in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)

"""IronMQ v1 request helpers shared by the push and alert tests: project A's paths and token,
and the checks every answer of the contract passes."""

from __future__ import annotations

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

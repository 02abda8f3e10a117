"""Checks every answer of the IronMQ contracts (v1 and v3) passes, shared by their tests: exactly
``application/json``, and errors as ``{"msg"}`` alone."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx

PROJECT, TOKEN = "000000000000000000000001", "token-a"
OTHER_PROJECT, OTHER_TOKEN = "000000000000000000000002", "token-b"
AUTH = {"Authorization": f"OAuth {TOKEN}"}


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


def err(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"msg"}
    return body["msg"]


def post_soon(base_url: str, path: str, body: str) -> None:
    """Posts one message through another client 0.2 s from now (to wake a long poll)."""

    def post() -> None:
        time.sleep(0.2)
        with httpx.Client(base_url=base_url) as other:
            other.post(path, json={"messages": [{"body": body}]}, headers=AUTH)

    threading.Thread(target=post).start()

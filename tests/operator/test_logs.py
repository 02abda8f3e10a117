"""Structured logs of `ferrymq serve --log-json`, and /metrics behind FERRYMQ_METRICS_TOKEN."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from ferrymq.http.logs import JSONLines, redact

TOKEN, PROJECT = "sekrit-token-1", "000000000000000000000009"
SCRAPE_TOKEN = "scrape-secret-2"


def json_lines(output: str) -> list[dict]:
    """The JSON lines of a server's output (the CLI's own `ferrymq: ...` notes are plain text)."""
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_json_logs_have_one_line_per_request_and_never_a_token(serve, redis_client, redis_url):
    served = serve("--redis-url", redis_url, "--log-json", "--token", f"{TOKEN}:{PROJECT}",
                   env={"FERRYMQ_METRICS_TOKEN": SCRAPE_TOKEN, "FERRYMQ_ACCESS_LOG": "1"})
    with httpx.Client(base_url=served.url) as http:
        listed = http.get(f"/1/projects/{PROJECT}/queues", params={"oauth": TOKEN}, headers={"X-Request-Id": "req-1"})
        assert listed.status_code == 200
        assert http.get("/metrics").status_code == 401
        assert http.get("/metrics", headers={"Authorization": f"Bearer {SCRAPE_TOKEN}"}).status_code == 200
        assert http.get("/no/such/route").status_code == 404
    assert served.stop() == 0
    output = served.log()
    lines = json_lines(output)
    access = [line for line in lines if line["logger"] == "ferrymq.access"]
    assert [(a["method"], a["route"], a["status"]) for a in access if a["route"] != "/ping"] == [
        ("GET", "/1/projects/{project_id}/queues", 200), ("GET", "/metrics", 401), ("GET", "/metrics", 200),
        ("GET", "unmatched", 404)]
    first = next(a for a in access if a["request_id"] == "req-1")
    assert first["duration_ms"] >= 0 and first["level"] == "info" and first["time"].endswith("+00:00")
    assert any("Uvicorn running on" in line["message"] for line in lines)  # uvicorn's own lines are JSON too
    assert 'HTTP/1.1"' not in output  # uvicorn's text access log gave way to ours
    assert TOKEN not in output and SCRAPE_TOKEN not in output


@pytest.mark.parametrize("json_lines", [False, True])
def test_without_access_log_no_request_is_logged(serve, redis_url, json_lines):
    served = serve("--redis-url", redis_url, "--token", f"{TOKEN}:{PROJECT}", *(["--log-json"] if json_lines else []))
    listed = httpx.get(f"{served.url}/1/projects/{PROJECT}/queues", headers={"Authorization": f"OAuth {TOKEN}"})
    assert listed.status_code == 200
    assert served.stop() == 0
    output = served.log()
    assert "Uvicorn running on" in output  # the server's own lines are still there
    assert "/queues" not in output and 'HTTP/1.1"' not in output


def test_a_log_line_is_redacted_even_when_a_token_is_in_its_message():
    record = logging.LogRecord("ferrymq.http", logging.WARNING, __file__, 1, "bad request %s",
                               ("/hooks?oauth=abc123&x=1",), None)
    line = json.loads(JSONLines().format(record))
    assert line["message"] == "bad request /hooks?oauth=[redacted]&x=1"
    assert (line["level"], line["logger"]) == ("warning", "ferrymq.http")


@pytest.mark.parametrize("name", ["oauth", "OAuth", "%6fauth", "%6F%61uth", "o%61ut%68", "%4F%41%55%54%48"])
def test_a_query_token_is_redacted_however_its_name_is_percent_encoded(name):
    assert redact(f"POST /q/messages/webhook?x=1&{name}=tok-9f3&y=2 HTTP/1.1") == (
        f"POST /q/messages/webhook?x=1&{name}=[redacted]&y=2 HTTP/1.1")
    assert redact(f"/q?{name}=tok-9f3") == f"/q?{name}=[redacted]"
    assert redact("/q?oauthx=keep&xoauth=keep") == "/q?oauthx=keep&xoauth=keep"


def test_an_encoded_query_token_authenticates_but_never_reaches_the_access_log(serve, redis_client, redis_url):
    served = serve("--redis-url", redis_url, "--token", f"{TOKEN}:{PROJECT}", "--access-log")
    hook = f"{served.url}/1/projects/{PROJECT}/queues/hooks/messages/webhook?%6fauth={TOKEN}"
    assert httpx.post(hook, content=b"x", timeout=5).status_code == 200  # Starlette decodes the name
    assert served.stop() == 0
    log = served.log()
    assert "webhook?%6fauth=[redacted]" in log and TOKEN not in log

"""Redis going away: requests fail fast with each contract's 503, the server keeps running and
recovers by itself when Redis is back."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
import uvicorn

from ferrymq.http.app import create_app
from ferrymq.http.settings import Settings

AUTH = {"Authorization": "OAuth t"}
QUEUES = "/1/projects/p1/queues"


@pytest.fixture
def server_on(redis_servers):
    servers = []

    def start(redis_url: str) -> str:
        settings = Settings(redis_url=redis_url, tokens={"t": "p1"}, sweeper=False)
        config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_level="critical")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.01)
        servers.append((server, thread))
        port = server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(10)


def test_redis_outage_answers_503_fast_and_the_server_recovers(redis_servers, server_on):
    redis = redis_servers()
    base = server_on(redis.url)
    with httpx.Client(base_url=base, timeout=10) as http:
        assert http.post(f"{QUEUES}/q/messages", json={"messages": [{"body": "kept"}]}, headers=AUTH).status_code == 200
        redis.stop()
        started = time.monotonic()
        down = http.get(f"{QUEUES}/q/messages", headers=AUTH)
        assert down.status_code == 503 and down.headers["content-type"] == "application/json"
        assert set(down.json()) == {"msg"}
        assert time.monotonic() - started < 3
        redis_servers(port=redis.port)  # Redis is back (empty: this one does not persist)
        for _ in range(100):
            up = http.get(f"{QUEUES}", headers=AUTH)
            if up.status_code == 200:
                break
            time.sleep(0.05)
        assert up.status_code == 200
        assert http.post(f"{QUEUES}/q/messages", json={"messages": [{"body": "again"}]}, headers=AUTH).status_code == 200
        assert [m["body"] for m in http.get(f"{QUEUES}/q/messages", headers=AUTH).json()["messages"]] == ["again"]

"""Auth and limits on every route of every contract, enumerated from the app's routing table (a
new route is covered without touching this file): no route works without a valid token, a
token never reaches another project's data, tokens never reach the logs, and request size and
batch limits hold."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from starlette.routing import Mount, Route

from ferrymq.http.app import create_app
from ferrymq.http.settings import Settings

PROJECT_A, PROJECT_B = "000000000000000000000001", "000000000000000000000002"
TOKEN_A, TOKEN_B = "token-a", "token-b"
SECRET = "secret-of-project-a"
PUBLIC = {"/ping": "the HTTP stack's own cost, for benchmarks", "/openapi.json": "the API description",
          "/docs": "the page that renders the API description", "/metrics": "Prometheus scrapes it"}
"""Routes that answer without a token, and why."""
SCHEMES = {"/1/": "OAuth ", "/3/": "OAuth ", "/client/v4/": "Bearer ", "/v1/": ""}
"""How each contract carries its token in the Authorization header."""


def routes() -> Iterator[tuple[str, str]]:
    """(method, path template) of every route of the app."""

    def walk(entries, prefix: str = "") -> Iterator[tuple[str, str]]:
        for entry in entries:
            if isinstance(entry, Mount):
                yield from walk(entry.routes, prefix + entry.path)
            elif isinstance(entry, Route):
                for method in sorted(entry.methods - {"HEAD"}):
                    yield method, prefix + entry.path

    yield from walk(create_app(Settings(redis_url="redis://127.0.0.1:1")).routes)


DASHBOARD = "/dashboard"
DASHBOARD_PUBLIC = {"/dashboard": "the login page (the queues only with a session)", "/dashboard/login": "logs in",
                    "/dashboard/logout": "logs out", "/dashboard/dashboard.js": "script",
                    "/dashboard/dashboard.css": "style sheet"}
"""Dashboard routes that answer without a session. The others need the session cookie."""
PROTECTED = [(method, path) for method, path in routes() if path not in PUBLIC and not path.startswith(DASHBOARD)]
DASHBOARD_PROTECTED = [(method, path) for method, path in routes()
                       if path.startswith(DASHBOARD) and path not in DASHBOARD_PUBLIC]


def test_the_routing_table_has_every_contract():
    prefixes = {next(p for p in SCHEMES if path.startswith(p)) for _, path in PROTECTED}
    assert prefixes == set(SCHEMES) and len(PROTECTED) > 50


def scheme(path: str) -> str:
    return next(s for prefix, s in SCHEMES.items() if path.startswith(prefix))


class ProjectA:
    """Project A's data, made through the API, and what a path template needs to name it."""

    def __init__(self, http: httpx.Client) -> None:
        iron = {"Authorization": f"OAuth {TOKEN_A}"}
        base = f"/1/projects/{PROJECT_A}/queues/secret-q"
        ok = http.post(f"{base}/messages", json={"messages": [{"body": f"{SECRET} {i}"} for i in range(3)]}, headers=iron)
        assert ok.status_code == 200, ok.text
        self.message_id = ok.json()["ids"][0]
        cloudflare = http.get(f"/client/v4/accounts/{PROJECT_A}/queues", headers={"Authorization": f"Bearer {TOKEN_A}"})
        self.queue_id = next(q["queue_id"] for q in cloudflare.json()["result"] if q["queue_name"] == "secret-q")
        self.http, self.iron = http, iron

    def fill(self, template: str) -> str:
        values = {"project_id": PROJECT_A, "account_id": PROJECT_A, "queue": "secret-q", "queue_id": self.queue_id,
                  "message_id": self.message_id}
        return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: values.get(m.group(1), "0" * 32), template)

    def snapshot(self) -> object:
        """Everything of A's a request could change or reveal."""
        queue = self.http.get(f"/1/projects/{PROJECT_A}/queues/secret-q", headers=self.iron).json()
        peek = self.http.get(f"/1/projects/{PROJECT_A}/queues/secret-q/messages/peek", params={"n": 100}, headers=self.iron)
        listed = self.http.get(f"/1/projects/{PROJECT_A}/queues", headers=self.iron).json()
        return queue, peek.json(), listed


def call(http: httpx.Client, method: str, path: str, token: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/vnd.api+json" if path.startswith("/v1/") else "application/json"}
    if token is not None:
        headers["Authorization"] = scheme(path) + token
    body = None if method in ("GET", "DELETE") else b"{}"
    return http.request(method, path, content=body, headers=headers)


@pytest.fixture
def project_a(redis_servers, spawn_server):
    server = spawn_server("--redis-url", redis_servers().url, env={"FERRYMQ_AUTH_FAILURES": "0"})  # many on purpose
    with httpx.Client(base_url=server.url, timeout=10) as http:
        yield server, ProjectA(http)


def test_no_route_works_without_a_valid_token_and_no_token_reaches_the_log(project_a):
    server, a = project_a
    before = a.snapshot()
    answered = {}
    for method, template in PROTECTED:
        path = a.fill(template)
        for token in (None, "not-a-token-3f9a", f"{TOKEN_A}x"):
            response = call(a.http, method, path, token)
            answered[(method, template, token)] = response.status_code
        query = a.http.request(method, path, params={"oauth": "query-token-7c1e"})
        answered[(method, template, "?oauth")] = query.status_code
    wrong = {key: status for key, status in answered.items() if status not in (401, 403)}
    assert not wrong, f"answered without a valid token: {list(wrong.items())[:5]}"
    assert a.snapshot() == before
    server.stop()
    log = server.log()
    for token in (TOKEN_A, "not-a-token-3f9a", "query-token-7c1e"):
        assert token not in log, f"a token reached the log: {token}"


def test_the_dashboard_needs_a_session_of_the_project(project_a):
    server, a = project_a
    before = a.snapshot()
    assert len(DASHBOARD_PROTECTED) >= 5
    for method, path in DASHBOARD_PROTECTED:
        for token in (None, "not-a-token-3f9a", TOKEN_B):
            a.http.cookies.clear()
            if token:
                a.http.cookies.set("ferrymq_dashboard", token)
            response = a.http.request(method, path, params={"name": "secret-q"}, headers={"x-ferrymq-dashboard": "1"})
            assert SECRET not in response.text, f"{method} {path} showed project A's messages"
            if token != TOKEN_B:
                assert response.status_code in (303, 401), f"{method} {path} without a session: {response.status_code}"
    a.http.cookies.clear()
    assert a.snapshot() == before, "the dashboard changed project A's data without A's session"


def test_a_token_never_reaches_another_projects_data(project_a):
    server, a = project_a
    before = a.snapshot()
    for method, template in PROTECTED:
        response = call(a.http, method, a.fill(template), TOKEN_B)
        assert SECRET not in response.text, f"{method} {template} showed project A's messages to project B"
        if "{project_id}" in template or "{account_id}" in template:  # A's project named in the path
            assert response.status_code in (401, 403, 404), f"{method} {template}: {response.status_code}"
    assert a.snapshot() == before, "project B's token changed project A's data"


BODY_ROUTES = [(method, path) for method, path in PROTECTED if method in ("POST", "PUT", "PATCH")]


@pytest.mark.parametrize("method, template", BODY_ROUTES, ids=[f"{m} {p}" for m, p in BODY_ROUTES])
def test_a_body_over_the_request_limit_is_refused_on_every_route(http, server, method, template):
    path = re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: PROJECT_A if m.group(1) in ("project_id", "account_id") else "q", template)
    headers = {"Authorization": scheme(path) + TOKEN_A, "Content-Type": "application/json"}
    oversize = b'{"x": "' + b"a" * (server.settings.max_request_bytes + 1) + b'"}'
    response = http.request(method, path, content=oversize, headers=headers)
    assert response.status_code == 413, response.text[:200]


def test_batch_limits_hold_in_every_contract(http, server):
    over = 101
    iron = http.post(f"/1/projects/{PROJECT_A}/queues/q/messages", headers={"Authorization": f"OAuth {TOKEN_A}"},
                     json={"messages": [{"body": "x"}] * over})
    assert iron.status_code == 400, iron.text
    cf_auth = {"Authorization": f"Bearer {TOKEN_A}"}
    created = http.post(f"/client/v4/accounts/{PROJECT_A}/queues", json={"queue_name": "q"}, headers=cf_auth)
    queue_id = created.json()["result"]["queue_id"]
    base = f"/client/v4/accounts/{PROJECT_A}/queues/{queue_id}/messages"
    cf = http.post(f"{base}/batch", json={"messages": [{"body": "x"}] * over}, headers=cf_auth)
    assert cf.status_code == 400 and cf.json()["success"] is False, cf.text
    pulled = http.post(f"{base}/pull", json={"batch_size": over}, headers=cf_auth)
    assert pulled.status_code == 400, pulled.text
    jsonapi = {"Authorization": TOKEN_A, "Content-Type": "application/vnd.api+json"}
    bulk = {"data": [{"type": "message", "attributes": {"body": "x"}}] * over}
    elastic = http.post("/v1/queues/q/messages/_bulk", json=bulk, headers=jsonapi)
    assert elastic.status_code == 422 and elastic.json()["errors"][0]["code"] == "too_many", elastic.text
    reservation = {"data": {"type": "reservation", "attributes": {"count": over}}}
    reserved = http.post("/v1/queues/q/reservations", json=reservation, headers=jsonapi)
    assert reserved.status_code in (400, 422) and reserved.json()["errors"], reserved.text
    size = http.get(f"/1/projects/{PROJECT_A}/queues/q", headers={"Authorization": f"OAuth {TOKEN_A}"})
    assert size.json()["size"] == 0, "part of an oversize batch was put"


# -- failed authentications, per client address ------------------------------------------------


@pytest.fixture
def strict(serve_app, server):
    """A server of its own that allows 3 failed authentications a minute per client address.
    uvicorn takes the client's address from X-Forwarded-For when the peer is loopback."""
    from ferrymq.http.app import create_app

    with serve_app(create_app(server.settings.with_(auth_failures=3))) as url, \
            httpx.Client(base_url=url, timeout=10) as http:
        yield http


def test_failed_authentications_are_limited_per_client_address_in_every_contract(strict):
    queues, attacker = f"/1/projects/{PROJECT_A}/queues", {"X-Forwarded-For": "203.0.113.7"}
    for _ in range(3):
        assert strict.get(queues, headers={"Authorization": "OAuth guess", **attacker}).status_code == 401
    # over the limit: every attempt from that address is refused, the right token too
    iron = strict.get(queues, headers={"Authorization": f"OAuth {TOKEN_A}", **attacker})
    assert iron.status_code == 429 and set(iron.json()) == {"msg"} and 0 < int(iron.headers["retry-after"]) <= 60
    cf = strict.get(f"/client/v4/accounts/{PROJECT_A}/queues", headers={"Authorization": f"Bearer {TOKEN_A}", **attacker})
    assert cf.status_code == 429 and cf.json()["success"] is False
    elastic = strict.get("/v1/queues/q", headers={"Authorization": TOKEN_A, **attacker})
    assert elastic.status_code == 429 and elastic.json()["errors"][0]["status"] == "429"
    # another address is served; requests without any token are refused, not counted
    assert strict.get(queues, headers={"Authorization": f"OAuth {TOKEN_A}", "X-Forwarded-For": "198.51.100.1"}).status_code == 200
    for _ in range(5):
        assert strict.get(queues, headers={"X-Forwarded-For": "198.51.100.2"}).status_code == 401
    assert strict.get(queues, headers={"Authorization": f"OAuth {TOKEN_A}", "X-Forwarded-For": "198.51.100.2"}).status_code == 200
    # one IPv6 /64 is one client (its owner has all of its addresses)
    for last in range(1, 4):
        strict.get(queues, headers={"Authorization": "OAuth guess", "X-Forwarded-For": f"2001:db8::{last}"})
    assert strict.get(queues, headers={"Authorization": f"OAuth {TOKEN_A}", "X-Forwarded-For": "2001:db8::99"}).status_code == 429
    assert strict.get(queues, headers={"Authorization": f"OAuth {TOKEN_A}", "X-Forwarded-For": "2001:db8:0:1::1"}).status_code == 200
    metrics = strict.get("/metrics").text
    assert "ferrymq_auth_failures_total 6.0" in metrics and "ferrymq_auth_refused_total 4.0" in metrics
    assert "ferrymq_auth_blocked_clients 2.0" in metrics and "203.0.113.7" not in metrics


def test_the_record_of_failed_authentications_is_bounded_and_forgets_after_its_window():
    from ferrymq.http.auth import FailedAuths

    now = [0.0]
    record = FailedAuths(limit=2, window=60, capacity=100, clock=lambda: now[0])
    for i in range(10_000):
        record.failed(f"10.0.{i >> 8}.{i & 255}")
    assert len(record) == 100
    record.failed("192.0.2.1")
    record.failed("192.0.2.1")
    assert record.retry_after("192.0.2.1") == 60
    now[0] = 59.5
    assert record.retry_after("192.0.2.1") == 1
    now[0] = 60.0
    assert record.retry_after("192.0.2.1") == 0

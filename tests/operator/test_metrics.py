"""/metrics after known sequences of operations: the queue counts and counters, and the HTTP
requests by route template and status, scraped from the live server and parsed."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families

from ferrymq.engine import Engine, PushConfig, Subscriber

PROJECT, TOKEN = "000000000000000000000001", "token-a"
AUTH = {"Authorization": f"OAuth {TOKEN}"}
MESSAGES = "/1/projects/{project_id}/queues/{queue}/messages"


def scrape(http) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """{(sample name, labels): value} of one scrape."""
    response = http.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def queue_sample(samples, name, queue, project=PROJECT):
    return samples[(name, frozenset({"project": project, "queue": queue}.items()))]


def http_sample(samples, name, method, route, status):
    return samples.get((name, frozenset({"method": method, "route": route, "status": str(status)}.items())), 0)


def iron(http, method, queue, path="", **kwargs):
    response = http.request(method, f"/1/projects/{PROJECT}/queues/{queue}{path}", headers=AUTH, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


def test_queue_gauges_and_counters_follow_a_known_sequence(server, http, redis_client):
    engine = Engine(redis_client, clock=server.clock)
    # a: 5 put, 2 delivered, 1 of them deleted
    iron(http, "POST", "a", "/messages", json={"messages": [{"body": str(i)} for i in range(5)]})
    taken = iron(http, "GET", "a", "/messages", params={"n": 2})["messages"]
    iron(http, "DELETE", "a", f"/messages/{taken[0]['id']}")
    # b: 2 delayed, 1 expired
    iron(http, "POST", "b", "/messages", json={"messages": [{"body": "later", "delay": 600}] * 2})
    iron(http, "POST", "b", "/messages", json={"messages": [{"body": "brief", "expires_in": 1}]})
    server.clock.advance(2)
    assert iron(http, "GET", "b", "/messages")["messages"] == []  # finds the expired one gone
    # c: 3 put, then cleared
    iron(http, "POST", "c", "/messages", json={"messages": [{"body": "x"}] * 3})
    iron(http, "POST", "c", "/clear")
    # d: one delivery allowed; the reservation lapses, so the message is dead-lettered (dropped)
    engine.queue(PROJECT, "d").create(max_deliveries=1)
    iron(http, "POST", "d", "/messages", json={"messages": [{"body": "doomed"}]})
    assert len(iron(http, "GET", "d", "/messages", params={"timeout": 1})["messages"]) == 1
    server.clock.advance(2)
    assert iron(http, "GET", "d", "/messages")["messages"] == []
    # a queue name that needs escaping in the text format
    engine.queue(PROJECT, 'we"ird\\name').put(["x"])

    samples = scrape(http)
    expected = {
        "a": {"size": 4, "ready": 3, "delayed": 0, "reserved": 1, "put": 5, "deliveries": 2, "deleted": 1},
        "b": {"size": 2, "delayed": 2, "put": 3, "expired": 1, "deliveries": 0},
        "c": {"size": 0, "put": 3, "cleared": 3},
        "d": {"size": 0, "put": 1, "deliveries": 1, "dead_lettered": 1},
        'we"ird\\name': {"size": 1, "ready": 1, "put": 1},
    }
    for queue, values in expected.items():
        for name, value in values.items():
            metric = f"ferrymq_queue_{name}" if name in ("size", "ready", "delayed", "reserved") else f"ferrymq_queue_{name}_total"
            assert queue_sample(samples, metric, queue) == value, (queue, metric)


def test_http_requests_are_counted_and_timed_by_route_template_and_status(server, http):
    before = scrape(http)
    for queue in ("first", "second", "third"):
        iron(http, "POST", queue, "/messages", json={"messages": [{"body": "x"}]})
    assert http.get(f"/1/projects/{PROJECT}/queues/first/messages", params={"oauth": "wrong"}).status_code == 401
    assert http.get("/no/such/route").status_code == 404
    after = scrape(http)

    def delta(name, method, route, status):
        return http_sample(after, name, method, route, status) - http_sample(before, name, method, route, status)

    assert delta("ferrymq_http_requests_total", "POST", MESSAGES, 200) == 3
    assert delta("ferrymq_http_request_duration_seconds_count", "POST", MESSAGES, 200) == 3
    assert delta("ferrymq_http_requests_total", "GET", MESSAGES, 401) == 1
    assert delta("ferrymq_http_requests_total", "GET", "unmatched", 404) == 1
    inf = frozenset({"method": "POST", "route": MESSAGES, "status": "200", "le": "+Inf"}.items())
    assert after[("ferrymq_http_request_duration_seconds_bucket", inf)] == http_sample(
        after, "ferrymq_http_request_duration_seconds_count", "POST", MESSAGES, 200)
    http_labels = {value for (name, labels) in after if name.startswith("ferrymq_http") for _, value in labels}
    assert not {"first", "second", "wrong", TOKEN, "/no/such/route"} & http_labels


def test_every_response_carries_a_request_id_and_a_sane_given_one_is_kept(http):
    assert len(http.get("/ping").headers["x-request-id"]) == 16
    assert http.get("/ping", headers={"X-Request-Id": "trace-42"}).headers["x-request-id"] == "trace-42"
    assert http.get("/ping", headers={"X-Request-Id": "no spaces; nor=this"}).headers["x-request-id"] != "no spaces; nor=this"


def test_push_deliveries_are_counted_by_outcome_and_only_for_queues_that_pushed(server, http, redis_client):
    engine = Engine(redis_client, clock=server.clock)
    hooks = engine.queue(PROJECT, "hooks")
    hooks.set_push(PushConfig((Subscriber("http://a.example/"), Subscriber("http://b.example/")), retries=0))
    hooks.put(["one", "two"])
    claimed = hooks.claim_pushes(10, 60).deliveries
    assert len(claimed) == 4
    for delivery, status in zip(claimed, (200, 202, 500, 404)):  # retries=0: each failure is final
        hooks.report_push(delivery, status)
    assert hooks.ack_push(claimed[1].subscriber_id, claimed[1].token)  # the 202 is delivered once acknowledged
    engine.queue(PROJECT, "pulled").put(["x"])

    samples = scrape(http)
    outcomes = {dict(labels)["outcome"]: value for (name, labels), value in samples.items()
                if name == "ferrymq_queue_push_deliveries_total" and dict(labels)["queue"] == "hooks"}
    assert outcomes == {"delivered": 2, "failed": 2, "error": 2}
    assert not any(name == "ferrymq_queue_push_deliveries_total" and dict(labels)["queue"] == "pulled"
                   for name, labels in samples)


@pytest.fixture
def round_trips(monkeypatch):
    """Counts the server's round trips to Redis: a command, or a whole pipeline, is one send."""
    sent = []
    send = aioredis.Connection.send_packed_command

    async def counting(self, command, check_health=True):
        sent.append(command)
        await send(self, command, check_health)

    monkeypatch.setattr(aioredis.Connection, "send_packed_command", counting)
    return sent


def test_a_scrape_pages_through_thousands_of_queues_in_a_bounded_number_of_round_trips(server, http, redis_client,
                                                                                      round_trips):
    engine = Engine(redis_client)
    for i in range(2500):  # three stats pages (1000 queues each) in the first project
        engine.queue(PROJECT, f"q{i:04d}").put(["x"] * (1 + i % 3))
    engine.queue("000000000000000000000002", "elsewhere").put(["y"])
    round_trips.clear()
    samples = scrape(http)
    sizes = {dict(labels)["queue"]: value for (name, labels), value in samples.items() if name == "ferrymq_queue_size"}
    assert len(sizes) == 2501
    assert all(sizes[f"q{i:04d}"] == 1 + i % 3 for i in range(2500))
    assert queue_sample(samples, "ferrymq_queue_size", "elsewhere", "000000000000000000000002") == 1
    # A few per project and per page of 1000 queues, never one per queue.
    pages, projects = 3 + 1, 2
    assert 0 < len(round_trips) <= 1 + 2 * projects + 4 * pages, len(round_trips)


def test_beyond_loopback_without_a_metrics_token_only_server_wide_figures_are_served(serve_app, server):
    """Per-queue series name every project and queue: a server listening beyond loopback serves
    them only to a scraper with FERRYMQ_METRICS_TOKEN; without one, totals over all queues."""
    import httpx

    from ferrymq.http.app import create_app

    settings = server.settings.with_(host="0.0.0.0")
    with serve_app(create_app(settings)) as url, httpx.Client(base_url=url) as other:
        for queue in ("secret-queue-name", "other"):
            iron(other, "POST", queue, "/messages", json={"messages": [{"body": "x"}] * 2})
        response = other.get("/metrics")
        assert "secret-queue-name" not in response.text and PROJECT not in response.text
        samples = scrape(other)
        assert samples[("ferrymq_queues", frozenset())] == 2
        assert samples[("ferrymq_all_queues_size", frozenset())] == 4
        assert samples[("ferrymq_all_queues_put_total", frozenset())] == 4
    with serve_app(create_app(settings.with_(metrics_token="scrape-me"))) as url, httpx.Client(base_url=url) as other:
        full = other.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
        assert 'queue="secret-queue-name"' in full.text


def test_every_projects_limits_and_usage_are_exposed(server, http, redis_client):
    engine = Engine(redis_client, clock=server.clock)
    iron(http, "POST", "a", "/messages", json={"messages": [{"body": "x" * 100}] * 3})
    engine.set_project_limits(PROJECT, messages=50)
    engine.sweep()
    samples = scrape(http)

    def sample(name, quota):
        return samples[(name, frozenset({"project": PROJECT, "quota": quota}.items()))]

    assert sample("ferrymq_project_usage", "queues") == 1 and sample("ferrymq_project_usage", "messages") == 3
    assert sample("ferrymq_project_usage", "bytes") > 300 and sample("ferrymq_project_usage", "subscriptions") == 0
    assert sample("ferrymq_project_limit", "messages") == 50 and sample("ferrymq_project_limit", "queues") == 10_000
    assert sample("ferrymq_project_limit", "ids_per_request") == 1_000
    assert samples[("ferrymq_project_over", frozenset({"project": PROJECT}.items()))] == 0
def test_transfers_set_aside_show_as_a_gauge_of_their_queue_only(server, http, redis_client):
    engine = Engine(redis_client, clock=server.clock)
    engine.queue(PROJECT, "blocked").create()
    engine.queue(PROJECT, "fine").create()
    redis_client.rpush("fmq:{%s/blocked}:outbox" % PROJECT, b"dlq\tbad\x01name\tref\nbody")  # cannot be moved
    engine.queue(PROJECT, "blocked").maintain()
    samples = scrape(http)
    assert queue_sample(samples, "ferrymq_queue_stuck", "blocked") == 1
    assert not any(name == "ferrymq_queue_stuck" and dict(labels)["queue"] == "fine" for name, labels in samples)


def test_forwards_dropped_past_the_hop_limit_are_counted_for_their_queue_only(server, http, redis_client):
    engine = Engine(redis_client, clock=server.clock)
    looped = engine.queue(PROJECT, "looped")
    looped.set_push(PushConfig((Subscriber("ironmq:///next"),)))
    looped.put(["x"])
    [delivery] = looped.claim_pushes(10, 60).deliveries
    looped.report_push(delivery, -1, "dropped: forwarded 5 times already")  # as the pusher reports a drop
    samples = scrape(http)
    assert queue_sample(samples, "ferrymq_queue_hops_dropped_total", "looped") == 1
    assert not any(name == "ferrymq_queue_hops_dropped_total" and dict(labels)["queue"] != "looped"
                   for name, labels in samples)

"""/openapi.json: a valid OpenAPI 3.0 document built from the app's routes (an undocumented
route stops the app from being built), and whose schemas the live server's real answers satisfy,
through every contract."""

from __future__ import annotations

import functools
import re

import pytest
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate
from starlette.applications import Starlette
from starlette.routing import Mount, Route

from ferrymq.http.app import create_app
from ferrymq.http.openapi import UndocumentedRoute
from ferrymq.http.settings import Settings

PROJECT, TOKEN = "000000000000000000000001", "token-a"
UI_PREFIX = "/dashboard"
"""The dashboard is a UI, not part of the API: not described."""


@functools.cache
def app() -> Starlette:
    return create_app(Settings(redis_url="redis://unused"))


def document() -> dict:
    return app().state.openapi


def app_operations() -> set[tuple[str, str]]:
    """(path template, method) of every route of the app, trailing-slash twins as one."""
    found = set()

    def walk(routes, prefix=""):
        for route in routes:
            if isinstance(route, Mount):
                walk(route.routes, prefix + route.path)
            elif isinstance(route, Route) and not (prefix + route.path).startswith(UI_PREFIX):
                path = (prefix + route.path).rstrip("/") or "/"
                found.update((path, method.lower()) for method in route.methods - {"HEAD"})

    walk(app().routes)
    return found


def documented_operations() -> set[tuple[str, str]]:
    return {(path, method) for path, item in document()["paths"].items() for method in item}


def test_the_document_is_valid_openapi_3():
    validate(document())


def test_every_route_of_the_app_is_documented():
    assert app_operations() == documented_operations()


def test_an_app_with_an_undocumented_route_cannot_be_built(monkeypatch):
    from ferrymq.http import metrics

    async def extra(request):
        raise AssertionError("never called")

    routes = metrics.routes
    monkeypatch.setattr(metrics, "routes", lambda: [*routes(), Route("/extra", extra, methods=["POST"])])
    with pytest.raises(UndocumentedRoute, match="POST /extra"):
        create_app(Settings(redis_url="redis://unused"))


def test_error_responses_come_from_the_error_table():
    # QuotaExceeded is a 429 in Cloudflare's column of the table: every Cloudflare operation says so.
    ops = [op for path, item in document()["paths"].items() if path.startswith("/client/v4/") for op in item.values()]
    assert ops and all("429" in op["responses"] for op in ops)
    get_message = document()["paths"]["/3/projects/{project_id}/queues/{queue}/messages/{message_id}"]["delete"]
    assert "Reservation timed out" in get_message["responses"]["403"]["description"]


def test_operations_have_unique_ids_a_tag_and_security():
    ops = [op for item in document()["paths"].values() for op in item.values()]
    ids = [op["operationId"] for op in ops]
    assert len(ids) == len(set(ids))
    tags = {tag["name"] for tag in document()["tags"]}
    assert all(op["tags"][0] in tags and "security" in op for op in ops)


def test_the_server_serves_the_document_and_a_docs_page(http):
    assert http.get("/openapi.json").json() == document()
    page = http.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'fetch("openapi.json")' in page.text
    assert not re.search(r"(src|href)=\"https?://", page.text)  # nothing from a CDN


# -- the live server's answers match the documented schemas ------------------------------------


def conforms(response, path: str, method: str) -> None:
    """The response's status is documented for the operation, and its body fits the schema."""
    op = document()["paths"][path][method]
    documented = op["responses"].get(str(response.status_code))
    assert documented is not None, f"{method.upper()} {path} answered {response.status_code}: {response.text}"
    content = documented.get("content")
    if content is None:
        assert not response.content
        return
    media_type, = content
    assert response.headers["content-type"].split(";")[0] == media_type.replace("*/*", "application/json")
    schema = {**content[media_type]["schema"], "components": document()["components"]}
    errors = sorted(OAS30Validator(schema).iter_errors(response.json()), key=str)
    assert not errors, f"{method.upper()} {path} {response.status_code}: {errors[0]}"


IRON = "/1/projects/{project_id}"
CF = "/client/v4/accounts/{account_id}"


def test_ironmq_answers_fit_the_document(http):
    auth, base = {"Authorization": f"OAuth {TOKEN}"}, f"/1/projects/{PROJECT}/queues"
    posted = http.post(f"{base}/q/messages", json={"messages": [{"body": "a"}, {"body": "b"}]}, headers=auth)
    conforms(posted, f"{IRON}/queues/{{queue}}/messages", "post")
    conforms(http.get(f"{base}", headers=auth), f"{IRON}/queues", "get")
    conforms(http.get(f"{base}/q", headers=auth), f"{IRON}/queues/{{queue}}", "get")
    conforms(http.get(f"{base}/q/messages/peek", params={"n": 2}, headers=auth), f"{IRON}/queues/{{queue}}/messages/peek", "get")
    reserved = http.get(f"{base}/q/messages", headers=auth)
    conforms(reserved, f"{IRON}/queues/{{queue}}/messages", "get")
    message_id = reserved.json()["messages"][0]["id"]
    conforms(http.get(f"{base}/q/messages/{message_id}", headers=auth), f"{IRON}/queues/{{queue}}/messages/{{message_id}}", "get")
    conforms(http.post(f"{base}/q/messages/{message_id}/touch", headers=auth),
             f"{IRON}/queues/{{queue}}/messages/{{message_id}}/touch", "post")
    conforms(http.get(f"{base}/missing", headers=auth), f"{IRON}/queues/{{queue}}", "get")
    conforms(http.get(f"{base}/q", headers={"Authorization": "OAuth wrong"}), f"{IRON}/queues/{{queue}}", "get")


IRON3 = "/3/projects/{project_id}/queues"


def test_ironmq3_answers_fit_the_document(http):
    auth, base = {"Authorization": f"OAuth {TOKEN}"}, f"/3/projects/{PROJECT}/queues"
    push = {"type": "multicast", "push": {"subscribers": [{"name": "a", "url": "http://a.example/hook"}],
                                          "error_queue": "errors"}}
    conforms(http.put(f"{base}/pq", json={"queue": push}, headers=auth), f"{IRON3}/{{queue}}", "put")
    conforms(http.put(f"{base}/q", json={"queue": {"dead_letter": {"queue_name": "dlq"}}}, headers=auth),
             f"{IRON3}/{{queue}}", "put")
    posted = http.post(f"{base}/q/messages", json={"messages": [{"body": "a"}, {"body": "b"}]}, headers=auth)
    conforms(posted, f"{IRON3}/{{queue}}/messages", "post")
    conforms(http.get(base, headers=auth), IRON3, "get")
    conforms(http.get(f"{base}/pq", headers=auth), f"{IRON3}/{{queue}}", "get")
    conforms(http.get(f"{base}/q/messages", params={"n": 2}, headers=auth), f"{IRON3}/{{queue}}/messages", "get")
    reserved = http.post(f"{base}/q/reservations", json={"n": 1}, headers=auth)
    conforms(reserved, f"{IRON3}/{{queue}}/reservations", "post")
    taken = reserved.json()["messages"][0]
    message = f"{IRON3}/{{queue}}/messages/{{message_id}}"
    conforms(http.get(f"{base}/q/messages/{taken['id']}", headers=auth), message, "get")
    touched = http.post(f"{base}/q/messages/{taken['id']}/touch", json={"reservation_id": "stale"}, headers=auth)
    conforms(touched, f"{message}/touch", "post")
    touched = http.post(f"{base}/q/messages/{taken['id']}/touch", json={"reservation_id": taken["reservation_id"]},
                        headers=auth)
    conforms(touched, f"{message}/touch", "post")
    [pushed] = http.post(f"{base}/pq/messages", json={"messages": [{"body": "p"}]}, headers=auth).json()["ids"]
    conforms(http.get(f"{base}/pq/messages/{pushed}/subscribers", headers=auth), f"{message}/subscribers", "get")
    conforms(http.request("DELETE", f"{base}/q/messages", json={}, headers=auth), f"{IRON3}/{{queue}}/messages", "delete")
    conforms(http.get(f"{base}/missing/messages", headers=auth), f"{IRON3}/{{queue}}/messages", "get")


def test_cloudflare_answers_fit_the_document(http):
    auth, base = {"Authorization": f"Bearer {TOKEN}"}, f"/client/v4/accounts/{PROJECT}/queues"
    created = http.post(base, json={"queue_name": "cf"}, headers=auth)
    conforms(created, f"{CF}/queues", "post")
    queue = f"{base}/{created.json()['result']['queue_id']}"
    conforms(http.get(base, headers=auth), f"{CF}/queues", "get")
    consumer = http.post(f"{queue}/consumers", json={"type": "http_pull"}, headers=auth)
    conforms(consumer, f"{CF}/queues/{{queue_id}}/consumers", "post")
    conforms(http.post(f"{queue}/messages", json={"body": {"k": 1}}, headers=auth), f"{CF}/queues/{{queue_id}}/messages", "post")
    pulled = http.post(f"{queue}/messages/pull", json={"batch_size": 5}, headers=auth)
    conforms(pulled, f"{CF}/queues/{{queue_id}}/messages/pull", "post")
    lease = pulled.json()["result"]["messages"][0]["lease_id"]
    acked = http.post(f"{queue}/messages/ack", json={"acks": [{"lease_id": lease}, {"lease_id": "1.x"}]}, headers=auth)
    conforms(acked, f"{CF}/queues/{{queue_id}}/messages/ack", "post")
    conforms(http.get(f"{queue}/metrics", headers=auth), f"{CF}/queues/{{queue_id}}/metrics", "get")
    conforms(http.post(base, json={"queue_name": "cf"}, headers=auth), f"{CF}/queues", "post")  # 409
    conforms(http.delete(queue, headers=auth), f"{CF}/queues/{{queue_id}}", "delete")


def test_elasticqueue_answers_fit_the_document(http):
    auth = {"Authorization": TOKEN, "Content-Type": "application/vnd.api+json"}
    posted = http.post("/v1/queues/eq/messages", json={"data": {"type": "message", "attributes": {"body": "hi"}}},
                       headers=auth)
    conforms(posted, "/v1/queues/{queue}/messages", "post")
    reserved = http.post("/v1/queues/eq/reservations", headers=auth)
    conforms(reserved, "/v1/queues/{queue}/reservations", "post")
    taken = reserved.json()["data"][0]
    path = f"/v1/queues/eq/messages/{taken['id']}"
    conforms(http.get(path, headers=auth), "/v1/queues/{queue}/messages/{message_id}", "get")
    conforms(http.get("/v1/queues/eq", headers=auth), "/v1/queues/{queue}", "get")
    bad = http.post("/v1/queues/eq/messages/_bulk", json={"data": [{"type": "message", "attributes": {}}]}, headers=auth)
    conforms(bad, "/v1/queues/{queue}/messages/_bulk", "post")
    rid = taken["attributes"]["reservation-id"]
    conforms(http.delete(path, params={"reservation-id": rid}, headers=auth),
             "/v1/queues/{queue}/messages/{message_id}", "delete")


@pytest.mark.parametrize("path", ["/ping", "/openapi.json"])
def test_operations_answers_fit_the_document(http, path):
    conforms(http.get(path), path, "get")

"""The fast lane (http/lane.py) answers the hot routes exactly as Starlette's stack would: the
same route for every path, the same error envelopes, body limit, X-Request-Id and metrics; a hot
route that an earlier route could shadow is left to Starlette."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from ferrymq.http import metrics
from ferrymq.http._common import BodyLimit, endpoint_routes, hot
from ferrymq.http.app import create_app
from ferrymq.http.errors import EXCEPTION_HANDLERS, Problem
from ferrymq.http.lane import FastLane, lane_routes, may_overlap

PROJECT, TOKEN = "000000000000000000000001", "token-a"
IRON = {"Authorization": f"OAuth {TOKEN}"}
MESSAGES = f"/1/projects/{PROJECT}/queues/lane/messages"


def test_the_message_verbs_and_ping_take_the_lane():
    routes = create_app().routes
    lanes = lane_routes(routes)
    templates = {(lane.template, method) for lane in lanes for method in lane.route.methods}
    iron = "/1/projects/{project_id}/queues/{queue}/messages"
    assert {("/ping", "GET"), (iron, "POST"), (iron, "GET"), (iron, "DELETE"), (iron + "/", "GET"),
            ("/client/v4/accounts/{account_id}/queues/{queue_id}/messages/pull", "POST"),
            ("/3/projects/{project_id}/queues/{queue}/reservations", "POST"),
            ("/v1/queues/{queue}/reservations", "POST")} <= templates
    marked = [route for _, route in endpoint_routes(routes) if getattr(route.endpoint, "hot", False)]
    assert len(lanes) == len(marked)  # none is shadowed by an earlier route
    assert (iron + "/{message_id}", "DELETE") not in templates  # not marked: Starlette's


@pytest.mark.parametrize(("a", "b", "overlap"), [
    ("/q/{name}", "/q/peek", True),
    ("/q/{name}", "/q/{name}/", False),
    ("/q/{name}/", "/q/{name}/{id}", False),  # a parameter never matches the empty segment
    ("/1/projects/{p}/{path:path}", "/3/projects/{p}/queues", False),
    ("/1/projects/{p}/{path:path}", "/1/projects/{p}/queues/{q}/messages", True),
    ("/ping", "/1/projects/{p}", False),
    ("/a/{x}.json", "/a/b", True),  # a parameter inside a segment meets anything
    ("/v1/{p:path}.json", "/v1/queues/{queue}", True),  # so does a path parameter, and all after it
])
def test_templates_overlap_when_one_path_could_match_both(a, b, overlap):
    assert may_overlap(a, b) is overlap and may_overlap(b, a) is overlap


def plain(text):
    async def endpoint(request):
        return PlainTextResponse(text)
    return endpoint


def app_of(*routes):
    middleware = [Middleware(FastLane, routes=list(routes), limit=100), Middleware(metrics.Instrument),
                  Middleware(BodyLimit, limit=100)]  # as the app's
    return Starlette(routes=list(routes), exception_handlers=EXCEPTION_HANDLERS, middleware=middleware)


def client_of(app):
    return httpx.AsyncClient(transport=httpx.ASGITransport(app, raise_app_exceptions=False), base_url="http://lane")


async def test_a_hot_route_an_earlier_route_could_shadow_is_left_to_starlette():
    shadowed = hot(plain("hot"))
    app = app_of(Route("/q/{name}", plain("first"), methods=["GET"]), Route("/q/peek", shadowed, methods=["GET"]),
                 Route("/r/{name}", hot(plain("lane")), methods=["GET"]))
    assert [lane.template for lane in lane_routes(app.routes)] == ["/r/{name}"]
    async with client_of(app) as client:
        assert (await client.get("/q/peek")).text == "first"  # Starlette's choice, as without the lane
        assert (await client.get("/r/x")).text == "lane"
        assert (await client.post("/r/x")).status_code == 405  # a method the route lacks: Starlette's 405


async def test_a_mount_that_keeps_a_path_shadows_a_later_hot_route():
    app = app_of(Mount("/m", routes=[Route("/x", plain("mounted"))]), Route("/m/{y}", hot(plain("hot"))))
    assert lane_routes(app.routes) == []
    async with client_of(app) as client:
        assert (await client.get("/m/y")).status_code == 404  # the mount keeps it, as Starlette does


async def test_errors_and_bugs_in_the_lane_are_answered_and_counted_as_everywhere():
    async def refuses(request):
        raise Problem(409, "no")

    async def breaks(request):
        raise RuntimeError("a bug")

    app = app_of(Route("/refuses", hot(refuses), methods=["POST"]), Route("/breaks", hot(breaks)))
    async with client_of(app) as client:
        refused = await client.post("/refuses", content=b"x")
        too_large = await client.post("/refuses", content=b"x" * 101)
        broken = await client.get("/breaks")
    assert refused.status_code == 409 and refused.headers["x-request-id"]
    assert too_large.status_code == 413 and too_large.headers["x-request-id"]  # BodyLimit's, before routing
    assert broken.status_code == 500
    registry = metrics.of(app).registry

    def counted(method, route, status):
        labels = {"method": method, "route": route, "status": str(status)}
        return registry.get_sample_value("ferrymq_http_requests_total", labels)

    assert counted("POST", "/refuses", 409) == 1 and counted("POST", "unmatched", 413) == 1  # as without the lane
    assert counted("GET", "/breaks", 500) == 1


def test_the_lane_answers_in_the_contract_shape(http):
    token_refused = http.get(MESSAGES, headers={"Authorization": "OAuth wrong"})
    assert token_refused.status_code == 401 and token_refused.json() == {"msg": "Invalid project/token combination"}
    bad_n = http.get(MESSAGES, params={"n": "x"}, headers=IRON)
    assert bad_n.status_code == 400 and "n" in bad_n.json()["msg"]
    too_large = http.post(MESSAGES, content=b"x" * (5 << 20), headers={**IRON, "Content-Type": "application/json"})
    assert too_large.status_code == 413 and "msg" in too_large.json()
    posted = http.post(MESSAGES, json={"messages": [{"body": "one"}]}, headers={**IRON, "X-Request-Id": "abc-1"})
    assert posted.headers["content-type"] == "application/json" and posted.headers["x-request-id"] == "abc-1"
    got = http.get(MESSAGES, params={"n": 1, "delete": "true"}, headers=IRON).json()["messages"]
    assert [m["body"] for m in got] == ["one"]


def test_a_path_with_a_newline_is_routed_as_starlette_routes_it(http):
    # A Mount's {path:path} stops at a newline where a whole template's parameters do not: the
    # lane leaves such paths to Starlette, which answers 404 and stores nothing.
    posted = http.post(MESSAGES + "%0A", json={"messages": [{"body": "stray"}]}, headers=IRON)
    assert posted.status_code == 404 and posted.json() == {"msg": "Not found"}
    assert http.get(MESSAGES, params={"n": 1}, headers=IRON).json() == {"messages": []}


async def test_remembered_matches_give_each_request_its_own_path_parameters(monkeypatch):
    # The lane remembers a path's match; each request still gets its own parameters (changing
    # them is not seen by the next), and a path too long to remember is matched every time.
    monkeypatch.setattr("ferrymq.http.lane.CACHED_PATH_CHARS", 8)

    async def echo(request):
        name = request.path_params["name"]
        request.path_params["name"] = "changed"
        return PlainTextResponse(name)

    app = app_of(Route("/e/{name}", hot(echo)))
    async with client_of(app) as client:
        answers = [(await client.get(path)).text for path in ["/e/a", "/e/b", "/e/a", "/e/" + "l" * 20, "/e/a"]]
    assert answers == ["a", "b", "a", "l" * 20, "a"]


async def test_remembered_matches_keep_the_parameters_an_outer_router_set():
    # Mounted under a router that sets parameters of its own (a Host("{tenant}.example") route),
    # each request keeps its own, as Starlette's match merges them.
    async def whose(request):
        return PlainTextResponse(f"{request.path_params['tenant']}:{request.path_params['name']}")

    lane_app = app_of(Route("/e/{name}", hot(whose)))

    async def outer(scope, receive, send):
        tenant = dict(scope["headers"]).get(b"x-tenant", b"").decode()
        await lane_app({**scope, "path_params": {"tenant": tenant}}, receive, send)

    async with client_of(outer) as client:
        answers = [(await client.get("/e/q", headers={"X-Tenant": t})).text for t in ("a", "b", "a")]
    assert answers == ["a:q", "b:q", "a:q"]

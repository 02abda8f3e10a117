"""The push egress policy: pushes reach global addresses only, unless an operator allows more
(``--push-allow``); the check is made on the address each connection goes to, however the URL
spells it and whatever DNS answers next. Subscriber headers may not frame the request."""

from __future__ import annotations

import logging

import httpx
import pytest
import redis.asyncio as aioredis

from ferrymq.engine import AsyncEngine, EgressPolicy, InvalidArgument, PushConfig, Pusher, PushStatus, Subscriber

from .conftest import LOOPBACK
from .iron import AUTH, eventually, ok, post, refused, url


@pytest.mark.parametrize("address, kind", [
    ("127.0.0.1", "loopback"), ("127.255.255.254", "loopback"), ("::1", "loopback"),
    ("::ffff:127.0.0.1", "loopback"), ("0.0.0.0", "unspecified"), ("::", "unspecified"),
    ("169.254.169.254", "link-local"), ("fe80::1", "link-local"),
    ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("192.168.1.1", "private"), ("fd00::1", "private"),
    ("::ffff:10.0.0.1", "private"), ("224.0.0.1", "multicast"), ("ff02::1", "multicast"),
    ("240.0.0.1", "reserved"), ("255.255.255.255", "reserved"), ("100.64.0.1", "non-global"),
    ("2002:7f00:1::", "loopback (inside 2002:7f00:1::)"),  # 6to4 of 127.0.0.1
    ("64:ff9b::a9fe:a9fe", "link-local (inside 64:ff9b::a9fe:a9fe)"),  # NAT64 of 169.254.169.254
])
def test_special_addresses_are_refused_by_default(address, kind):
    assert EgressPolicy().refusal("hook.example", address).endswith(f"is a {kind} address")


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.216.34", "2606:4700::1111", "::ffff:8.8.8.8"])
def test_global_addresses_are_allowed(address):
    assert EgressPolicy().refusal("hook.example", address) is None


def test_an_operator_allows_networks_and_hosts():
    policy = EgressPolicy.allowing(["10.0.0.0/8", " hooks.internal ", "::1", ""])
    assert policy.refusal("x.example", "10.200.0.1") is None
    assert policy.refusal("x.example", "::ffff:10.0.0.1") is None  # the address it is, however written
    assert policy.refusal("x.example", "::1") is None
    assert policy.refusal("HOOKS.Internal.", "192.168.0.1") is None  # any address of an allowed host
    assert policy.refusal("x.example", "192.168.0.1") == "192.168.0.1 is a private address"
    with pytest.raises(ValueError, match="'not a host!' is neither a network"):
        EgressPolicy.allowing(["not a host!"])


def test_pushes_to_loopback_are_refused_however_spelled_and_logged(push_servers, subscribers, caplog):
    server = push_servers(())  # nothing allowed beyond global addresses
    sub = subscribers()
    port = sub.url.split(":")[2].split("/")[0]
    urls = [f"http://{host}:{port}/hook" for host in
            ("127.0.0.1", "localhost", "0x7f.1", "2130706433", "127.1", "[::ffff:127.0.0.1]", "[::1]")]
    urls += ["http://169.254.169.254/latest/meta-data/", "http://10.0.0.1:9/"]
    ok(server.http.post(url("/queues/pq"), json={"subscribers": [{"url": u} for u in urls], "retries": 0},
                        headers=AUTH))
    with caplog.at_level(logging.WARNING, logger="ferrymq.pusher"):
        [mid] = post(server, "pq", "secret")
        entries = eventually(lambda: _all_final(server, mid))
    assert sub.received == []
    assert [e["status"] for e in entries] == ["error"] * len(urls)
    assert all(e["status_code"] is None and e["msg"].startswith("refused by the push egress policy: ") for e in entries)
    assert "127.0.0.1 is a loopback address" in entries[2]["msg"]  # 0x7f.1
    assert "169.254.169.254 is a link-local address" in entries[7]["msg"]
    assert sum("refused by the push egress policy" in r.getMessage() for r in caplog.records) == len(urls)


def test_an_allowed_host_is_pushed_to_and_other_loopback_names_are_not(push_servers, subscribers):
    server = push_servers(("localhost",))
    sub = subscribers()
    port = sub.url.split(":")[2].split("/")[0]
    doc = {"subscribers": [{"url": f"http://localhost:{port}/hook"}, {"url": f"http://127.0.0.1:{port}/hook"}],
           "retries": 0}
    ok(server.http.post(url("/queues/pq"), json=doc, headers=AUTH))
    [mid] = post(server, "pq", "hello")
    entries = eventually(lambda: _all_final(server, mid))
    assert [e["status"] for e in entries] == ["deleted", "error"]
    assert [r.body for r in sub.received] == [b"hello"]


def test_each_connection_goes_to_the_address_checked_not_to_a_new_answer(redis_client, redis_url, subscribers,
                                                                         push_until_idle, run_async):
    """DNS rebinding: the name first resolves to an allowed address, then to the metadata
    service. Each connection resolves once and connects to what it checked."""
    sub = subscribers()
    port = sub.url.split(":")[2].split("/")[0]
    answers = iter([["127.0.0.1"], ["169.254.169.254"]])
    asked = []

    async def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        return next(answers)

    async def push_twice() -> list[PushStatus]:
        client = aioredis.Redis.from_url(redis_url)
        engine = AsyncEngine(client)
        q = engine.queue("p", "pq")
        await q.set_push(PushConfig((Subscriber(f"http://rebind.test:{port}/hook"),), retries=0))
        pusher = Pusher(engine, egress=EgressPolicy.allowing(LOOPBACK), resolve=resolve)
        try:
            [first] = await q.put(["first"])
            await push_until_idle(pusher)
            [second] = await q.put(["second"])
            await push_until_idle(pusher)
            return [*await q.push_status(first), *await q.push_status(second)]
        finally:
            await pusher.stop()
            await engine.aclose()
            await client.aclose()

    ok_status, refused_status = run_async(push_twice())
    assert [r.body for r in sub.received] == [b"first"]  # rebind.test is no name the system knows
    assert asked == ["rebind.test", "rebind.test"]
    assert ok_status.status == "deleted"
    assert refused_status.status == "error" and "169.254.169.254 is a link-local address" in refused_status.error


@pytest.mark.parametrize("name", ["Host", "content-length", "Transfer-Encoding", "CONNECTION", "TE", "Upgrade",
                                  "Proxy-Authorization", "proxy-connection", "Keep-Alive", "Trailer"])
def test_framing_and_hop_by_hop_subscriber_headers_are_refused(http, name):
    doc = {"subscribers": [{"url": "http://a.example/", "headers": {"X-Fine": "1", name: "x"}}]}
    message = refused(http.post(url("/queues/pq"), json=doc, headers=AUTH))
    assert message == f"subscribers[0].headers may not set {name} (hop-by-hop and framing headers are the server's)"


@pytest.mark.parametrize("headers", [{"X-Split": "a\r\nHost: b"}, {"Bad Name": "x"}, {"X-Nul": "a\x00"}])
def test_malformed_subscriber_headers_are_refused(real_engine, headers):
    with pytest.raises(InvalidArgument) as err:
        real_engine.queue("p", "pq").set_push(PushConfig((Subscriber("http://a.example/", headers),)))
    assert err.value.field == "subscribers[0].headers"


def _all_final(server, mid) -> list[dict]:
    entries = ok(server.http.get(url(f"/queues/pq/messages/{mid}/subscribers"), headers=AUTH))["subscribers"]
    assert all(e["status"] in ("deleted", "error") for e in entries), entries
    return entries


def test_serve_takes_the_allow_list_from_the_environment(spawn_server, subscribers, redis_url, redis_client):
    allowed = spawn_server("--redis-url", redis_url, env={"FERRYMQ_PUSH_ALLOW": "10.9.0.0/16, 127.0.0.1"})
    sub = subscribers()
    with httpx.Client(base_url=allowed.url, timeout=10) as http:
        ok(http.post(url("/queues/pq"), json={"subscribers": [{"url": sub.url}]}, headers=AUTH))
        ok(http.post(url("/queues/pq/messages"), json={"messages": [{"body": "through"}]}, headers=AUTH))
        assert [r.body for r in sub.wait_for(1)] == [b"through"]

"""Fuzz every route of the contracts from the OpenAPI description the server serves at
/openapi.json (schemathesis turns it into hypothesis strategies): valid and schema-breaking
input alike (wrong types, huge and negative numbers, unicode and reserved characters in names,
missing fields), the same cases with one value made hostile (quoted numbers, unicode digits,
huge numbers, deep nesting), plus invalid JSON and bodies over the limit on every route that
takes a body.
The server never answers 5xx (Redis is up) and its state is whole after the run, as the engine
sees it. The budget is small for CI (FERRYMQ_FUZZ_EXAMPLES, default 300 cases in all)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import httpx
import redis
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from ferrymq.engine import Engine
from ferrymq.engine.keys import TABLE_FIELD, queue_keys

PROJECT = "000000000000000000000001"
TOKEN = "token-a"
SCHEMES = {"/1/": "OAuth ", "/3/": "OAuth ", "/client/v4/": "Bearer ", "/v1/": ""}
EXAMPLES = int(os.environ.get("FERRYMQ_FUZZ_EXAMPLES", "300"))


def operations(url: str) -> list[Any]:
    """Every described operation of the contracts (not /ping, /docs and /openapi.json)."""
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    found = [result.ok() for result in schema.get_all_operations()]
    return [op for op in found if any(op.path.startswith(prefix) for prefix in SCHEMES)]


def case_strategy(ops: list[Any], seeded: dict[str, str], *, seeded_only: bool = False) -> st.SearchStrategy[Any]:
    """A case of any operation, in three flavours: valid input on the seeded queue and message
    (it reaches the queue logic), valid input on generated names (unicode, reserved
    characters), and schema-breaking input anywhere; ``seeded_only``: the first flavour alone."""
    ours = {"project_id": PROJECT, "account_id": PROJECT}

    def path(op: Any, values: dict[str, str]) -> dict[str, str]:
        return {k: v for k, v in values.items() if "{" + k + "}" in op.path}

    on_seeded = [op.as_strategy(GenerationMode.POSITIVE, path_parameters=path(op, {**ours, **seeded})) for op in ops]
    on_generated = [op.as_strategy(GenerationMode.POSITIVE, path_parameters=path(op, ours)) for op in ops]
    broken = [op.as_strategy(GenerationMode.NEGATIVE) for op in ops]
    strategies = on_seeded if seeded_only else on_seeded + on_generated + broken
    return st.sampled_from(strategies).flatmap(lambda strategy: strategy)


def send(case: Any, url: str) -> Any:
    scheme = next(s for prefix, s in SCHEMES.items() if case.path.startswith(prefix))
    # A long poll would only spend the budget waiting: IronMQ v1's ?wait, v3's and ElasticQueue's "wait".
    if isinstance(case.query, dict) and "wait" in case.query:
        case.query["wait"] = 0
    if isinstance(case.body, dict) and "wait" in case.body:
        case.body["wait"] = 0
    data = case.body.get("data") if isinstance(case.body, dict) else None
    if isinstance(data, dict) and isinstance(data.get("attributes"), dict) and "wait" in data["attributes"]:
        data["attributes"]["wait"] = 0
    return case.call(base_url=url, headers={"Authorization": scheme + TOKEN}, timeout=10)


def server_errors(url: str, cases: st.SearchStrategy[Any],
                  prepare: Callable[[Any, st.DataObject], None] = lambda case, data: None) -> list[str]:
    """Send EXAMPLES cases (each changed by ``prepare`` first); the 5xx answers and failures."""
    failures: list[str] = []

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(case=cases, data=st.data())
    def fuzz(case: Any, data: st.DataObject) -> None:
        prepare(case, data)
        try:
            response = send(case, url)
        except Exception as exc:  # recorded, not raised: hypothesis would spend minutes shrinking it
            failures.append(f"{type(exc).__name__}: {exc}\n  {case.as_curl_command()[:500]}")
            return
        if response.status_code >= 500:
            failures.append(f"{response.status_code} {response.text[:300]}\n  {case.as_curl_command()[:500]}")

    fuzz()
    return failures


def test_no_generated_request_gets_a_server_error_or_corrupts_state(server, redis_url):
    ops = operations(server.url)
    assert len(ops) > 40, "the OpenAPI description lost routes"
    failures = server_errors(server.url, case_strategy(ops, seed_queues(server.url)))
    assert not failures, f"{len(failures)} server errors, first:\n" + "\n".join(failures[:5])
    assert_whole(redis_url)
    assert_still_serves(server.url)


def nested(levels: int) -> Any:
    doc: Any = 1
    for i in range(levels):
        doc = {"a": doc} if i % 2 else [doc]
    return doc


HOSTILE_TEXT = ["5", " 7 ", "-0", "+3", "٣", "²", "５", "1e3", "0x1F", "--5", "1_000", "9" * 5000, "-" + "9" * 5000]
HOSTILE = st.one_of(
    st.sampled_from(HOSTILE_TEXT),
    st.sampled_from([10**30, -(10**30), 2**64, 2**63, 1e30, -1e308, 1.5e300, 0.5, -1]),
    st.integers(min_value=33, max_value=300).map(nested),  # deeper than a request may nest
)
"""Values that were 500s once: quoted numbers, unicode digits, huge numbers, deep nesting."""


def leaves(doc: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths to every value of a JSON document (the document itself is ``()``)."""
    found = [path]
    children = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for key, child in children:
        found += leaves(child, path + (key,))
    return found


def replace(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    doc[path[0]] = replace(doc[path[0]], path[1:], value)
    return doc


def make_hostile(case: Any, data: st.DataObject) -> None:
    """One query parameter or one number of the JSON body becomes hostile (any value of the
    body when it holds no number)."""
    declared = [p["name"] for p in case.operation.definition.raw.get("parameters", []) if p.get("in") == "query"]
    targets = [("query", name) for name in {*declared, *(case.query or {})} - {"oauth"}]
    if isinstance(case.body, (dict, list)):
        paths = leaves(case.body)
        numbers = [p for p in paths if isinstance(value_at(case.body, p), (int, float))]
        targets += [("body", path) for path in numbers or paths]
    if not targets:
        return
    where, key = data.draw(st.sampled_from(targets))
    value = data.draw(HOSTILE)
    if where == "query":
        case.query = case.query or {}
        case.query[key] = value if isinstance(value, str) else json.dumps(value)
    else:
        case.body = replace(case.body, key, value)


def value_at(doc: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        doc = doc[key]
    return doc


def test_hostile_numbers_and_nesting_never_get_a_server_error(server, redis_url):
    cases = case_strategy(operations(server.url), seed_queues(server.url), seeded_only=True)
    failures = server_errors(server.url, cases, make_hostile)  # the hostile value is the only fault
    assert not failures, f"{len(failures)} server errors, first:\n" + "\n".join(failures[:5])
    assert_still_serves(server.url)  # first: a valid case may have deleted the seeded queue
    assert_whole(redis_url)


INVALID_BODIES = [b"{", b"\xff\xfe\x00", b"[]", b"null", b"1e999999", b'"' + "\u2028".encode() * 3 + b'"',
                  b'{"messages": "x", "data": 7, "body": {}}', b"{" * 10_000 + b"}" * 10_000]


def test_invalid_json_never_gets_a_server_error_on_any_route(server, http, redis_url):
    ops = operations(server.url)
    seeded = seed_queues(server.url)
    failures = []
    for op in ops:
        if "requestBody" not in op.definition.raw:
            continue
        path = op.path.replace("{project_id}", PROJECT).replace("{account_id}", PROJECT)
        path = path.replace("{queue}", seeded["queue"]).replace("{queue_id}", seeded["queue_id"])
        path = path.replace("{message_id}", seeded["message_id"]).replace("{consumer_id}", "0" * 32).replace("{subscription_id}", "0" * 32)
        scheme = next(s for prefix, s in SCHEMES.items() if path.startswith(prefix))
        for body in INVALID_BODIES:
            response = http.request(op.method.upper(), path, content=body,
                                    headers={"Authorization": scheme + TOKEN, "Content-Type": "application/json"})
            if response.status_code >= 500:
                failures.append(f"{op.method.upper()} {path} {body[:20]!r}: {response.status_code} {response.text[:200]}")
    assert not failures, "\n".join(failures[:10])
    assert_whole(redis_url)


def seed_queues(url: str) -> dict[str, str]:
    """A queue with messages ready, delayed and reserved, for the fuzzer to hit: the path
    parameters that name it and one of its messages in every contract."""
    with httpx.Client(base_url=url, timeout=10, headers={"Authorization": f"OAuth {TOKEN}"}) as http:
        base = f"/1/projects/{PROJECT}/queues/fuzz/messages"
        messages = [{"body": f"m{i}"} for i in range(50)] + [{"body": "later", "delay": 60}]
        put = http.post(base, json={"messages": messages})
        assert put.status_code == 200
        assert http.get(base, params={"n": 2, "timeout": 60}).status_code == 200
        listed = http.get(f"/client/v4/accounts/{PROJECT}/queues", headers={"Authorization": f"Bearer {TOKEN}"})
        queue_id = next(q["queue_id"] for q in listed.json()["result"] if q["queue_name"] == "fuzz")
    return {"queue": "fuzz", "queue_id": queue_id, "message_id": put.json()["ids"][-2]}


def assert_whole(redis_url: str) -> None:
    """Every queue of the project answers, its counts match its message records, and a sweep
    over everything runs clean."""
    with redis.Redis.from_url(redis_url) as client:
        engine = Engine(client)
        queues = [ref.name for ref in engine.list_queues(PROJECT, per_page=1000)]
        assert queues, "the fuzz run left no queue at all"
        for name in queues:
            info = engine.queue(PROJECT, name).info()
            records = len(set(client.hkeys(queue_keys("fmq", PROJECT, name).msg)) - {TABLE_FIELD})
            assert info.ready + info.delayed + info.reserved == records, f"queue {name!r}: counts and records differ"
        engine.sweep()


def assert_still_serves(url: str) -> None:
    with httpx.Client(base_url=url, timeout=10, headers={"Authorization": f"OAuth {TOKEN}"}) as http:
        base = f"/1/projects/{PROJECT}/queues/after-fuzz/messages"
        [put_id] = http.post(base, json={"messages": [{"body": "after"}]}).json()["ids"]
        [taken] = http.get(base, params={"n": 1}).json()["messages"]
        assert taken["id"] == put_id and http.delete(f"{base}/{put_id}").status_code == 200

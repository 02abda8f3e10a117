"""A consumer that vanishes: what it had reserved comes back after the reservation timeout,
exactly once each, to consumers racing for it; a long poll whose client hung up takes nothing.
The live server's clock is a FakeClock: the timeout passes without waiting for it."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx

BASE = "/1/projects/000000000000000000000001/queues/q"
AUTH = {"Authorization": "OAuth token-a"}


def taken(http: httpx.Client, n: int, **params) -> list[dict]:
    response = http.get(f"{BASE}/messages", params={"n": n, **params}, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()["messages"]


def test_the_messages_of_a_vanished_consumer_come_back_after_their_timeout_exactly_once(http, server):
    response = http.post(f"{BASE}/messages", json={"messages": [{"body": f"m{i}"} for i in range(20)]}, headers=AUTH)
    assert response.status_code == 200
    vanished = {m["id"] for m in taken(http, 10, timeout=30)}  # ... and never heard of again
    others = taken(http, 100, timeout=300)
    assert len(others) == 10 and not vanished & {m["id"] for m in others}
    server.clock.advance(29)
    assert taken(http, 100) == [], "back before the timeout"
    server.clock.advance(2)

    def race(_: int) -> list[str]:
        with httpx.Client(base_url=server.url, timeout=10) as own:
            got: list[str] = []
            while batch := taken(own, 3, timeout=300):
                got += [m["id"] for m in batch]
            return got

    with ThreadPoolExecutor(6) as pool:
        back = [i for ids in pool.map(race, range(6)) for i in ids]
    assert sorted(back) == sorted(vanished), "not every message came back, or one came back twice"
    for message_id in back:
        got = http.get(f"{BASE}/messages/{message_id}", headers=AUTH).json()
        assert got["reserved_count"] == 2


def test_a_long_poll_whose_client_hung_up_takes_nothing(http, server):
    assert http.post(f"{BASE}/messages", json={"messages": [{"body": "warm-up"}]}, headers=AUTH).status_code == 200
    assert len(taken(http, 1, timeout=300)) == 1
    with httpx.Client(base_url=server.url, timeout=0.3) as impatient:
        try:
            impatient.get(f"{BASE}/messages", params={"n": 1, "wait": 5}, headers=AUTH)
            raise AssertionError("the long poll answered before any put")
        except httpx.ReadTimeout:
            pass  # the client gives up and closes its connection
    time.sleep(0.2)  # the server notices the hang-up
    assert http.post(f"{BASE}/messages", json={"messages": [{"body": "for whoever is there"}]}, headers=AUTH).status_code == 200
    [message] = taken(http, 1, timeout=300)
    assert message["body"] == "for whoever is there", "the hung-up long poll reserved it"

"""IronMQ v3 push queues end to end: a server with a pusher, subscriber servers on loopback.
Pushes carry v3's headers beside v1's; a subscriber that answered 202 acknowledges by deleting
the message with the push's Iron-Reservation-Id and its Iron-Subscriber-Name."""

from __future__ import annotations

from .iron import PROJECT

AUTH = {"Authorization": "OAuth token-a"}
BASE = f"/3/projects/{PROJECT}/queues"


def statuses(server, queue: str, mid: str) -> list[tuple]:
    got = server.http.get(f"{BASE}/{queue}/messages/{mid}/subscribers", headers=AUTH).json()["subscribers"]
    return [(s["name"], s["status"], s["status_code"]) for s in got]


def test_pushes_name_the_subscriber_and_carry_the_reservation_to_acknowledge(push_server, subscribers, wait_until):
    fast, slow = subscribers(), subscribers(answers=[202])
    queue = {"type": "multicast", "push": {"subscribers": [
        {"name": "fast", "url": fast.url, "headers": {"Content-Type": "application/json"}},
        {"name": "slow", "url": slow.url}]}}
    assert push_server.http.put(f"{BASE}/jobs", json={"queue": queue}, headers=AUTH).status_code == 200
    posted = push_server.http.post(f"{BASE}/jobs/messages", json={"messages": [{"body": '{"job": 1}'}]}, headers=AUTH)
    [mid] = posted.json()["ids"]
    [to_fast], [to_slow] = fast.wait_for(1), slow.wait_for(1)
    assert to_fast.body == to_slow.body == b'{"job": 1}'
    assert (to_fast.headers["Iron-Subscriber-Name"], to_slow.headers["Iron-Subscriber-Name"]) == ("fast", "slow")
    assert to_fast.headers["Content-Type"] == "application/json"
    assert to_fast.headers["Iron-Message-Id"] == mid and to_fast.headers["User-Agent"] == "IronMQ Pusherd"
    rid = to_slow.headers["Iron-Reservation-Id"]
    assert rid and rid != to_fast.headers["Iron-Reservation-Id"] and "token-a" not in rid
    wait_until(lambda: statuses(push_server, "jobs", mid) == [("fast", "deleted", 200), ("slow", "reserved", 202)])

    ack = {"reservation_id": rid, "subscriber_name": "slow"}
    answer = push_server.http.request("DELETE", f"{BASE}/jobs/messages/{mid}", json=ack, headers=AUTH)
    assert (answer.status_code, answer.json()) == (200, {"msg": "Deleted"})
    assert statuses(push_server, "jobs", mid) == [("fast", "deleted", 200), ("slow", "deleted", 202)]
    assert push_server.http.get(f"{BASE}/jobs", headers=AUTH).json()["queue"]["size"] == 0


def test_unicast_subscribers_of_one_url_are_told_apart_by_name(push_server, subscribers, wait_until):
    down, up = subscribers(otherwise=503), subscribers()
    queue = {"type": "unicast", "push": {"subscribers": [
        {"name": "first", "url": down.url}, {"name": "second", "url": down.url, "headers": {"X-Try": "2"}},
        {"name": "third", "url": up.url}]}}
    push_server.http.put(f"{BASE}/uq", json={"queue": queue}, headers=AUTH)
    [mid] = push_server.http.post(f"{BASE}/uq/messages", json={"messages": [{"body": "x"}]}, headers=AUTH).json()["ids"]
    tried = down.wait_for(2)
    assert [(r.headers["Iron-Subscriber-Name"], r.headers.get("X-Try")) for r in tried] == [("first", None), ("second", "2")]
    assert up.wait_for(1)[0].headers["Iron-Subscriber-Name"] == "third"
    wait_until(lambda: statuses(push_server, "uq", mid)[2] == ("third", "deleted", 200))

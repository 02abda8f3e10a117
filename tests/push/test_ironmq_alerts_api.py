"""IronMQ v1 queue alerts over real HTTP: add, replace, remove, remove by id, every validation
rule with its message (docs/contracts/ironmq-v1.md §8), and the alert message a firing posts.
The firing rules themselves are tested on the engine (tests/engine/test_alerts.py)."""

from __future__ import annotations

import json
import re

import pytest

from .iron import AUTH, ok, refused, url

FIXED = {"type": "fixed", "trigger": 2, "queue": "watch"}


def alerts_of(http, queue: str = "q") -> list[dict]:
    return ok(http.get(url(f"/queues/{queue}"), headers=AUTH)).get("alerts", [])


def test_alerts_are_added_with_ids_and_defaults_and_listed_in_order(http):
    assert ok(http.post(url("/queues/q/alerts"), json={"alerts": [FIXED]}, headers=AUTH)) == {"msg": "Updated"}
    progressive = {"type": "progressive", "trigger": 10, "queue": "watch", "direction": "desc", "snooze": 5}
    ok(http.post(url("/queues/q/alerts/"), json={"alerts": [progressive]}, headers=AUTH))  # both spellings
    first, second = alerts_of(http)
    assert re.fullmatch(r"[0-9a-f]{24}", first["id"]) and first["id"] != second["id"]
    assert {k: v for k, v in first.items() if k != "id"} == {**FIXED, "direction": "asc", "snooze": 0}
    assert {k: v for k, v in second.items() if k != "id"} == progressive


def test_put_replaces_all_and_an_empty_list_removes_them(http):
    ok(http.post(url("/queues/q/alerts"), json={"alerts": [FIXED]}, headers=AUTH))
    replacement = {"type": "fixed", "trigger": 9, "queue": "other"}
    assert ok(http.put(url("/queues/q/alerts"), json={"alerts": [replacement]}, headers=AUTH)) == {"msg": "Updated"}
    assert [a["trigger"] for a in alerts_of(http)] == [9]
    ok(http.put(url("/queues/q/alerts"), json={"alerts": []}, headers=AUTH))
    assert "alerts" not in ok(http.get(url("/queues/q"), headers=AUTH))  # the key disappears


def test_delete_removes_by_id_in_a_body_or_the_path(http):
    doc = {"alerts": [FIXED, {**FIXED, "trigger": 3}, {**FIXED, "trigger": 4}]}
    ok(http.post(url("/queues/q/alerts"), json=doc, headers=AUTH))
    one, two, three = alerts_of(http)
    r = http.request("DELETE", url("/queues/q/alerts"), json={"alerts": [one]}, headers=AUTH)  # Java: whole objects
    assert ok(r) == {"msg": "Deleted"}
    empty_json = {**AUTH, "Content-Type": "application/json"}  # Python: no body, a JSON content type
    assert ok(http.delete(url(f"/queues/q/alerts/{two['id']}"), headers=empty_json)) == {"msg": "Deleted"}
    assert [a["id"] for a in alerts_of(http)] == [three["id"]]
    assert refused(http.delete(url(f"/queues/q/alerts/{two['id']}"), headers=AUTH), 404) == "Alert not found"
    assert refused(http.delete(url("/queues/nowhere/alerts/530392f41185ab1f2a0005f7"), headers=AUTH), 404) == "Alert not found"


@pytest.mark.parametrize(
    "alert, message",
    [
        ({"trigger": 1, "queue": "w"}, "alerts[0].type is required"),
        ({"type": "fixed", "queue": "w"}, "alerts[0].trigger is required"),
        ({"type": "fixed", "trigger": 1}, "alerts[0].queue is required"),
        ({**FIXED, "type": "sometimes"}, "type must be fixed or progressive"),
        ({**FIXED, "trigger": "c"}, "alerts[0].trigger must be a positive integer"),
        ({**FIXED, "trigger": 0}, "alerts[0].trigger must be a positive integer"),
        ({**FIXED, "trigger": 1.5}, "alerts[0].trigger must be a positive integer"),
        ({**FIXED, "direction": "both"}, "direction must be asc or desc"),
        ({**FIXED, "snooze": -1}, "alerts[0].snooze must be a non-negative integer"),
        ({**FIXED, "snooze": "1234"}, "alerts[0].snooze must be a non-negative integer"),
        ({"type": "progressive", "trigger": 5, "queue": "q"}, "a progressive alert cannot post to its own queue"),
    ],
)
def test_bad_alerts_are_refused_with_their_reason(http, alert, message):
    assert refused(http.post(url("/queues/q/alerts"), json={"alerts": [alert]}, headers=AUTH)) == message
    assert http.get(url("/queues/q"), headers=AUTH).status_code == 404  # nothing half-done


def test_missing_alerts_are_406_and_a_non_list_is_400(http):
    assert refused(http.post(url("/queues/q/alerts"), json={}, headers=AUTH), 406) == "alerts is required"
    assert refused(http.post(url("/queues/q/alerts"), json={"alerts": {}}, headers=AUTH), 406) == "alerts is required"
    assert refused(http.post(url("/queues/q/alerts"), json={"alerts": "x"}, headers=AUTH), 400) == "alerts must be an array"
    assert refused(http.request("DELETE", url("/queues/q/alerts"), json={}, headers=AUTH), 406) == "alerts is required"


def test_a_duplicate_of_an_existing_alert_is_refused_duplicates_in_one_request_are_not(http):
    ok(http.post(url("/queues/q/alerts"), json={"alerts": [FIXED, FIXED]}, headers=AUTH))
    r = http.post(url("/queues/q/alerts"), json={"alerts": [{**FIXED, "snooze": 60}]}, headers=AUTH)
    assert refused(r) == "At least one new alert duplicates current queue alerts."
    assert len(alerts_of(http)) == 2


def test_at_most_five_alerts(http):
    six = {"alerts": [{**FIXED, "trigger": n} for n in range(1, 7)]}
    assert refused(http.post(url("/queues/q/alerts"), json=six, headers=AUTH)) == "a queue may have at most 5 alerts"
    ok(http.post(url("/queues/q/alerts"), json={"alerts": six["alerts"][:5]}, headers=AUTH))
    r = http.post(url("/queues/q/alerts"), json={"alerts": six["alerts"][5:]}, headers=AUTH)
    assert refused(r) == "a queue may have at most 5 alerts"


def test_a_progressive_cycle_between_two_queues_is_refused(http):
    ok(http.post(url("/queues/a/alerts"), json={"alerts": [{"type": "progressive", "trigger": 5, "queue": "b"}]}, headers=AUTH))
    r = http.post(url("/queues/b/alerts"), json={"alerts": [{"type": "progressive", "trigger": 5, "queue": "a"}]}, headers=AUTH)
    assert refused(r) == "progressive alerts may not form a cycle between queues"


def test_push_queues_do_not_support_alerts_either_way(http):
    ok(http.post(url("/queues/pq"), json={"subscribers": [{"url": "http://a.example/"}]}, headers=AUTH))
    r = http.post(url("/queues/pq/alerts"), json={"alerts": [FIXED]}, headers=AUTH)
    assert refused(r) == "Push queues do not support alerts."
    ok(http.post(url("/queues/q/alerts"), json={"alerts": [FIXED]}, headers=AUTH))
    r = http.post(url("/queues/q"), json={"subscribers": [{"url": "http://a.example/"}]}, headers=AUTH)
    assert refused(r) == "Push queues do not support alerts."
    assert "push_type" not in ok(http.get(url("/queues/q"), headers=AUTH))


def test_a_firing_posts_the_alert_message_to_the_target_queue(http):
    ok(http.post(url("/queues/q/alerts"), json={"alerts": [FIXED]}, headers=AUTH))
    [alert] = alerts_of(http)
    ok(http.post(url("/queues/q/messages"), json={"messages": [{"body": "1"}, {"body": "2"}]}, headers=AUTH))
    [message] = ok(http.get(url("/queues/watch/messages"), headers=AUTH))["messages"]
    doc = json.loads(message["body"])
    created_at = doc.pop("created_at")
    assert doc == {"source_queue": "q", "queue_size": 2, "alert_id": alert["id"], "alert_type": "fixed",
                   "alert_direction": "asc", "alert_trigger": 2}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", created_at)

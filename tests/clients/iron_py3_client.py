"""Drives IronMQ v3 through the official Python client (PyPI iron-mq 0.9 with iron-core 1.2.1),
run by tests/clients/test_ironmq3_clients.py with that client's folder first on sys.path (iron-mq
0.7, the v1 client of the same name, is installed in the test environment itself). The server is
named by IRON_PROTOCOL/IRON_HOST/IRON_PORT/IRON_TOKEN/IRON_PROJECT_ID.

Usage: python iron_py3_client.py STEP QUEUE [ARGS...]; prints one JSON object of observations;
any unexpected client error fails the run.
    lifecycle QUEUE                   a pull queue from creation to deletion
    alerts QUEUE                      alerts added, replaced and removed
    push QUEUE URL                    a push queue, its subscribers, a message posted to it
    ack QUEUE ID RESERVATION NAME     a subscriber acknowledges the delivery it answered 202
"""

from __future__ import annotations

import json
import sys
import urllib
import urllib.parse

import requests

# iron-mq 0.9 calls urllib.urlencode, which Python 3 moved to urllib.parse.
urllib.urlencode = urllib.parse.urlencode  # type: ignore[attr-defined]

import iron_mq  # noqa: E402  (after the patch above)


def status_of(call, *args, **kwargs) -> int:
    """The HTTP status of a call that must fail."""
    try:
        call(*args, **kwargs)
    except requests.HTTPError as error:
        return error.response.status_code
    raise AssertionError(f"{call.__name__} did not fail")


def lifecycle(mq: iron_mq.IronMQ, name: str) -> dict:
    out: dict = {"version": iron_mq.IronMQ.VERSION}
    out["created"] = mq.create_queue(name, {"message_timeout": 30, "message_expiration": 3600})
    q = mq.queue(name)
    out["posted"] = q.post("hello", {"body": "two"}, "three")
    out["info"] = [q.size(), q.total_messages(), len(q.id())]
    out["listed"] = mq.queues(per_page=10, prefix=name[:4])
    out["peeked"] = [m["body"] for m in q.peek(max=5)["messages"]]
    hello, two = q.reserve(max=2, timeout=60)["messages"]
    out["reserved"] = [hello["body"], two["body"], hello["reserved_count"], bool(hello["reservation_id"])]
    touched = q.touch(two["id"], two["reservation_id"], timeout=120)
    out["touched"] = [touched["msg"], touched["reservation_id"] != two["reservation_id"]]
    out["stale_release"] = status_of(q.release, two["id"], two["reservation_id"])
    out["release"] = q.release(two["id"], touched["reservation_id"])
    batch = q.get(max=10)["messages"]
    out["batch"] = [(m["body"], m["reserved_count"]) for m in batch]
    out["by_id"] = q.get_message_by_id(batch[0]["id"])
    out["delete"] = q.delete(hello["id"], hello["reservation_id"])
    out["delete_multiple"] = q.delete_multiple(messages={"messages": batch})
    out["size_after"] = q.size()
    [again] = q.post("by id")["ids"]
    out["delete_by_ids"] = q.delete_multiple(ids=[again])
    out["missing_message"] = status_of(q.get_message_by_id, "1234567890123456789")
    q.post("to clear")
    out["clear"] = q.clear()
    out["update"] = q.update({"message_timeout": 45})["message_timeout"]
    out["update_queue"] = mq.update_queue(name, {"message_expiration": 60})["message_expiration"]
    out["delete_queue"] = q.delete_queue()
    out["missing_queue"] = [status_of(q.info), status_of(q.reserve)]
    return out


def alerts(mq: iron_mq.IronMQ, name: str) -> dict:
    out: dict = {}
    q = mq.queue(name)
    mq.create_queue(name)
    out["added"] = q.add_alerts({"type": "fixed", "trigger": 5, "queue": "alerts"})["alerts"]
    out["replaced"] = q.update_alerts({"type": "progressive", "trigger": 10, "queue": "alerts", "direction": "desc"},
                                      {"type": "fixed", "trigger": 2, "queue": "alerts"})["alerts"]
    out["removed"] = q.remove_alerts({"id": out["replaced"][0]["id"]})
    out["left"] = q.info()["alerts"]
    q.post("one", "two")
    out["fired"] = [json.loads(m["body"])["queue_size"] for m in mq.queue("alerts").peek(max=5)["messages"]]
    return out


def push(mq: iron_mq.IronMQ, name: str, url: str) -> dict:
    out: dict = {}
    subscribers = [{"name": "first", "url": url, "headers": {"X-Key": "1"}}]
    out["created"] = mq.create_queue(name, {"type": "multicast", "push": {"subscribers": subscribers, "retries": 2}})
    q = mq.queue(name)
    out["added"] = q.add_subscribers({"name": "second", "url": url}, {"name": "third", "url": url})
    out["removed"] = q.remove_subscribers("third")
    out["replaced"] = q.replace_subscribers({"name": "first", "url": url}, {"name": "second", "url": url})
    out["subscribers"] = [s["name"] for s in q.info()["push"]["subscribers"]]
    [out["id"]] = q.post("pushed")["ids"]
    out["statuses"] = q.get_message_push_statuses(out["id"])["subscribers"]
    out["alerts_refused"] = status_of(q.add_alerts, {"type": "fixed", "trigger": 1, "queue": "alerts"})
    return out


def ack(mq: iron_mq.IronMQ, name: str, message_id: str, reservation_id: str, subscriber: str) -> dict:
    q = mq.queue(name)
    done = q.delete(message_id, reservation_id, subscriber_name=subscriber)
    statuses = q.get_message_push_statuses(message_id)["subscribers"]
    return {"ack": done, "statuses": [(s["name"], s["status"]) for s in statuses]}


if __name__ == "__main__":
    step, *args = sys.argv[1:]
    print(json.dumps({"lifecycle": lifecycle, "alerts": alerts, "push": push, "ack": ack}[step](iron_mq.IronMQ(), *args)))

"""The official IronMQ v1 clients against a live FerryMQ: PyPI iron-mq 0.7 (with iron-core 1.2.1)
and npm iron_mq 0.2.4, each through a full pull-queue lifecycle."""

from __future__ import annotations

import os
import urllib
import urllib.parse

import pytest
import requests

PROJECT, TOKEN = "000000000000000000000001", "token-a"


@pytest.fixture
def iron(server, monkeypatch, tmp_path):
    """An IronMQ v1 Python client pointed at the live server, isolated from ~/.iron.json."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("IRON_"):
            monkeypatch.delenv(name)
    # iron-mq 0.7 calls urllib.urlencode, which Python 3 moved to urllib.parse.
    monkeypatch.setattr(urllib, "urlencode", urllib.parse.urlencode, raising=False)
    from iron_mq import IronMQ

    port = int(server.url.rsplit(":", 1)[1])
    return IronMQ(host="127.0.0.1", port=port, protocol="http", api_version=1, project_id=PROJECT, token=TOKEN)


def test_python_client_lifecycle(iron):
    q = iron.queue("py-lifecycle")
    posted = q.post("hello", {"body": "two", "timeout": 30, "delay": 0, "expires_in": 0})
    assert posted["msg"] == "Messages put on queue." and len(posted["ids"]) == 2
    assert (q.size(), q.total_messages(), len(q.id())) == (2, 2, 24)
    assert iron.queues() == ["py-lifecycle"]
    assert iron.queues(page=0, per_page=10) == ["py-lifecycle"]

    assert [m["body"] for m in q.peek(max=5)["messages"]] == ["hello", "two"]
    [first] = q.get()["messages"]
    assert (first["body"], first["reserved_count"], first["timeout"]) == ("hello", 1, 60)
    assert q.touch(first["id"]) == {"msg": "Touched"}
    assert q.release(first["id"]) == {"msg": "Released"}
    batch = q.get(max=10, timeout=45, wait=0)["messages"]
    assert [(m["body"], m["reserved_count"], m["timeout"]) for m in batch] == [("two", 1, 45), ("hello", 2, 45)]
    assert q.get_message_by_id(batch[0]["id"])["status"] == "reserved"
    assert q.delete(batch[0]["id"]) == {"msg": "Deleted"}
    assert q.delete_multiple(batch[1]["id"]) == {"msg": "Deleted"}
    assert q.size() == 0

    q.post("to clear")
    assert q.clear() == {"msg": "Cleared"}
    assert q.size() == 0 and q.total_messages() == 3
    assert q.update()["name"] == "py-lifecycle"
    assert q.delete_queue() == {"msg": "Deleted."}
    with pytest.raises(requests.HTTPError) as missing:
        q.info()
    assert missing.value.response.status_code == 404
    assert q.get()["messages"] == []


def test_python_client_push_queues_and_alerts(iron):
    q = iron.queue("py-push")
    info = q.update(subscribers=["http://a.example/hook"], push_type="multicast", retries=5, retries_delay=10)
    assert (info["push_type"], info["retries"], info["retries_delay"]) == ("multicast", 5, 10)
    assert [s["url"] for s in q.add_subscribers("http://b.example/hook")["subscribers"]] == [
        "http://a.example/hook", "http://b.example/hook"]
    assert [s["url"] for s in q.remove_subscribers("http://a.example/hook")["subscribers"]] == ["http://b.example/hook"]
    [mid] = q.post("pushed")["ids"]
    [status] = q.get_message_push_statuses(mid)["subscribers"]
    assert (status["id"], status["status"], status["retries_remaining"]) == (mid + "01", "queued", 5)
    assert q.delete_message_push_status(mid, status["id"]) == {"msg": "Deleted"}

    watched = iron.queue("py-watched")
    assert watched.add_alerts({"type": "fixed", "trigger": 5, "queue": "alerts"}) == {"msg": "Updated"}
    assert watched.update_alerts({"type": "progressive", "trigger": 10, "queue": "alerts", "direction": "desc"},
                                 {"type": "fixed", "trigger": 2, "queue": "alerts"}) == {"msg": "Updated"}
    first, second = watched.info()["alerts"]
    assert (first["type"], first["direction"], second["trigger"]) == ("progressive", "desc", 2)
    assert watched.remove_alerts(first["id"]) == {"msg": "Deleted"}
    assert watched.remove_alert(second["id"]) == {"msg": "Deleted"}
    assert "alerts" not in watched.info()
    with pytest.raises(requests.HTTPError) as missing:
        watched.remove_alert(second["id"])
    assert missing.value.response.status_code == 404


def test_python_client_long_poll_and_errors(iron):
    q = iron.queue("py-errors")
    assert q.get(wait=1)["messages"] == []
    with pytest.raises(requests.HTTPError) as bad:
        q.get(max=101)
    assert bad.value.response.status_code == 400
    [mid] = q.post("x")["ids"]
    with pytest.raises(requests.HTTPError) as unreserved:
        q.touch(mid)
    assert unreserved.value.response.status_code == 403


def test_node_client_lifecycle(run_node):
    out = run_node("iron_node_lifecycle.js", "node-lifecycle")
    assert out["firstId"].isdigit() and len(out["ids"]) == 2
    assert (out["info"]["name"], out["info"]["size"], out["info"]["total_messages"]) == ("node-lifecycle", 3, 3)
    assert out["peeked"] == ["hello", "two", "three"] and out["peekOne"] == "hello"
    assert out["got"]["body"] == "hello" and out["got"]["reserved_count"] == 1 and out["got"]["timeout"] == 60
    assert out["touch"] == {"msg": "Touched"} and out["release"] == {"msg": "Released"}
    assert out["batch"] == [["two", 1], ["three", 1], ["hello", 2]]
    assert out["byId"]["status"] == "reserved" and out["byId"]["body"] == "two"
    assert out["del"] == {"msg": "Deleted"} and out["delMultiple"] == {"msg": "Deleted"}
    assert out["sizeAfter"] == 0
    assert out["queues"] == ["node-lifecycle"]
    assert "Message not found" in out["missingMessage"]
    assert out["clear"] == {"msg": "Cleared"} and out["update"] == "node-lifecycle"
    assert out["delQueue"] == {"msg": "Deleted."}
    assert "Queue not found" in out["missingQueue"]
    assert out["emptyGet"] == []


def test_node_client_push_queues_and_alerts(run_node):
    out = run_node("iron_node_push.js", "node-push")
    assert (out["updated"]["push_type"], out["updated"]["retries"]) == ("unicast", 2)
    assert [s["url"] for s in out["added"]["subscribers"]] == ["http://a.example/hook", "http://b.example/hook"]
    assert [s["url"] for s in out["removed"]["subscribers"]] == ["http://b.example/hook"]
    [status] = out["statuses"]["subscribers"]
    assert (status["status"], status["url"]) == ("queued", "http://b.example/hook")
    assert out["ack"] == {"msg": "Deleted"}
    assert "Push queues do not support alerts." in out["alertOnPush"]
    assert out["addAlerts"] == out["updateAlerts"] == {"msg": "Updated"}
    assert out["alerts"] == [["progressive", 10, "desc"], ["fixed", 3, "asc"]]
    assert out["deleteAlerts"] == out["deleteById"] == {"msg": "Deleted"}
    assert "Alert not found" in out["missingAlert"] and out["alertsLeft"] == []

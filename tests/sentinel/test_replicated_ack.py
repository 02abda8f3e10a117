"""Replicated acknowledgement (``min_replicas_ack``): a write is acknowledged only once the
replica has it, in the same round trip as the write; a replica that does not confirm in time
makes the call fail with NotReplicated (HTTP 504 in every contract), never succeed; with N = 0
nothing is sent. On a primary with one replica, sync and asyncio."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
import redis
import redis.asyncio as aioredis

from ferrymq.engine import AsyncEngine, ConfigurationError, Engine, NotReplicated
from ferrymq.engine.replication import ACKNOWLEDGED_SCRIPTS, UNACKNOWLEDGED_SCRIPTS, ReplicaAcks
from ferrymq.engine.scripts import sources
from ferrymq.http.app import create_app
from ferrymq.http.settings import Settings

PROJECT = "000000000000000000000001"
REPLICA_TIMEOUT = 1.0
"""How long the writes here wait for the replica: a paused replica still fails them quickly, and a
replica slowed by a loaded CI machine still confirms the set-up's writes (0.2 s did not, twice)."""


@pytest.fixture(params=["sync", "async"])
def make_engine(request, replicated_redis):
    """``make_engine(**options)``: an engine over the primary, run to completion either way."""
    made = []

    def make(**options):
        if request.param == "sync":
            client = redis.Redis(port=replicated_redis.primary.port)
            made.append(client.close)
            return Engine(client, **options)
        runner = asyncio.Runner()
        client = aioredis.Redis(port=replicated_redis.primary.port)
        engine = AsyncEngine(client, **options)
        made.append(lambda: (runner.run(engine.aclose()), runner.run(client.aclose()), runner.close()))
        return Runs(engine, runner)

    yield make
    for close in made:
        close()


class Runs:
    """An async engine or queue whose verbs run to completion on a runner of their own."""

    def __init__(self, target, runner):
        self._target, self._runner = target, runner

    def __getattr__(self, name):
        attr = getattr(self._target, name)

        def call(*args, **kwargs):
            result = attr(*args, **kwargs)
            return self._runner.run(result) if asyncio.iscoroutine(result) else Runs(result, self._runner)

        return call


def calls(server) -> dict[str, int]:
    with redis.Redis(port=server.port) as client:
        return {name.removeprefix("cmdstat_"): stat["calls"] for name, stat in client.info("commandstats").items()}


def reset_stats(server) -> None:
    with redis.Redis(port=server.port) as client:
        client.config_resetstat()


def test_each_acknowledged_write_is_followed_by_one_wait_and_reads_by_none(make_engine, replicated_redis):
    engine = make_engine(min_replicas_ack=1)
    engine.load_scripts()
    q = engine.queue("p", "q")
    q.put(["zero"])  # created and first put to: the calls below are each verb's common case
    [zero] = q.reserve()
    q.delete_message(zero.id, zero.reservation_id)
    reset_stats(replicated_redis.primary)
    q.put(["one"])
    [message] = q.reserve()
    q.delete_message(message.id, message.reservation_id)
    q.info()
    q.peek()
    counted = calls(replicated_redis.primary)
    assert counted["fcall"] == 5
    assert counted["wait"] == 3  # put, reserve, delete; not info nor peek


def test_with_no_replicas_asked_for_no_wait_is_sent(make_engine, replicated_redis):
    q = make_engine().queue("p", "q")
    q.put(["one"])
    [message] = q.reserve()
    q.delete_message(message.id, message.reservation_id)
    assert "wait" not in calls(replicated_redis.primary)


def test_a_write_the_replica_does_not_confirm_in_time_fails_and_is_on_the_primary_only(make_engine, replicated_redis):
    q = make_engine(min_replicas_ack=1, min_replicas_ack_timeout=REPLICA_TIMEOUT).queue("p", "q")
    q.put(["confirmed"])
    replicated_redis.pause_replica()
    started = time.monotonic()
    with pytest.raises(NotReplicated) as raised:
        q.put(["unconfirmed"])
    assert REPLICA_TIMEOUT <= time.monotonic() - started < REPLICA_TIMEOUT + 2
    assert raised.value.details == {"confirmed": 0, "wanted": 1}
    assert "may not survive a failover" in raised.value.message
    assert q.info().ready == 2  # made on the primary: the caller was only told it may not last
    replicated_redis.resume_replica()
    [message] = q.reserve()
    assert message.body == b"confirmed"


def test_scripts_the_primary_forgot_are_sent_again_with_the_wait(make_engine, replicated_redis):
    engine = make_engine(min_replicas_ack=1)
    q = engine.queue("p", "q")
    q.put(["before"])
    with redis.Redis(port=replicated_redis.primary.port) as client:
        client.function_flush()  # as after a failover to a replica that never loaded them
    reset_stats(replicated_redis.primary)
    q.put(["after"])
    counted = calls(replicated_redis.primary)
    # the call, the library loaded (alone: no WAIT), the call again; a WAIT with each call
    assert (counted["fcall"], counted["function|load"], counted["wait"]) == (2, 1, 2)
    with redis.Redis(port=replicated_redis.replica.port) as replica:
        assert replica.hlen("fmq:{p/q}:msg") == 1 + 2  # the empty field and both records: the replica has the write it was told about


def test_event_subscriptions_wait_for_the_replica_too(make_engine, replicated_redis):
    from ferrymq.engine import Subscription

    engine = make_engine(min_replicas_ack=1, min_replicas_ack_timeout=REPLICA_TIMEOUT)
    engine.queue("p", "events").ensure()
    replicated_redis.pause_replica()
    with pytest.raises(NotReplicated):
        engine.put_subscription("p", Subscription("s1", "s", True, "q", ("queue.created",), "events"))


def test_every_script_is_classified_as_acknowledged_or_not():
    assert ACKNOWLEDGED_SCRIPTS.isdisjoint(UNACKNOWLEDGED_SCRIPTS)
    assert ACKNOWLEDGED_SCRIPTS | UNACKNOWLEDGED_SCRIPTS == set(sources())


@pytest.mark.parametrize(("version", "aof", "expected"), [
    ("7.2.4", 1, ("WAITAOF", 0, 2, 250)),
    ("8.0.2", 1, ("WAITAOF", 0, 2, 250)),
    ("7.2.4", 0, ("WAIT", 2, 250)),
    ("7.0.15", 1, ("WAIT", 2, 250)),
    ("6.2.14", 0, ("WAIT", 2, 250)),
])
def test_waitaof_stands_in_for_wait_on_redis_7_2_with_aof(version, aof, expected):
    acks = ReplicaAcks(2, 0.25)
    acks.learn([{"redis_version": version}, {"aof_enabled": aof}])
    assert acks.wait_command == expected


def test_waitaof_counts_the_replicas_that_fsynced():
    acks = ReplicaAcks(1, 0.25)
    acks.learn([{"redis_version": "7.2.4"}, {"aof_enabled": 1}])
    acks.check([0, 1])
    with pytest.raises(NotReplicated, match="appendonly yes"):
        acks.check([1, 0])


def test_replicated_acknowledgement_refuses_what_cannot_work(cluster):
    with redis.RedisCluster.from_url(cluster.url) as client:
        with pytest.raises(ConfigurationError, match="Cluster"):
            Engine(client, min_replicas_ack=1)
        Engine(client, min_replicas_ack=0)  # the default stays available
    with pytest.raises(ConfigurationError):
        Engine(redis.Redis(), min_replicas_ack=1, min_replicas_ack_timeout=0)
    with pytest.raises(ConfigurationError):
        Engine(redis.Redis(), min_replicas_ack=-1)


@pytest.mark.parametrize(("path", "auth", "body", "expected"), [
    pytest.param(f"/1/projects/{PROJECT}/queues/q/messages", "OAuth token-a", {"messages": [{"body": "x"}]},
                 {"msg": "Not confirmed by enough replicas in time: the write may not be durable"}, id="ironmq"),
    pytest.param(f"/client/v4/accounts/{PROJECT}/queues/q/messages", "Bearer token-a", {"body": "x"}, 15002,
                 id="cloudflare"),
    pytest.param("/v1/queues/q/messages", "Bearer token-a", {"data": {"type": "message", "attributes": {"body": "x"}}},
                 "not_replicated", id="elastic"),
])
def test_an_unconfirmed_write_is_answered_504_in_every_contract(replicated_redis, serve_app, test_tokens,
                                                                  path, auth, body, expected):
    settings = Settings(redis_url=replicated_redis.primary.url, tokens=test_tokens, sweeper=False, pushers=0,
                        min_replicas_ack=1, min_replicas_ack_timeout=REPLICA_TIMEOUT)
    with serve_app(create_app(settings)) as url, httpx.Client(base_url=url, timeout=10) as http:
        headers = {"Authorization": auth, "Content-Type": "application/vnd.api+json" if "/v1/" in path
                   else "application/json"}
        if "/client/v4/" in path:  # Cloudflare addresses a queue by its id
            created = http.post(f"/client/v4/accounts/{PROJECT}/queues", json={"queue_name": "q"}, headers=headers)
            path = path.replace("/queues/q/", f"/queues/{created.json()['result']['queue_id']}/")
        replicated_redis.pause_replica()
        refused = http.post(path, content=json.dumps(body), headers=headers)
        replicated_redis.resume_replica()
        accepted = http.post(path, content=json.dumps(body), headers=headers)
    assert refused.status_code == 504, refused.text
    if isinstance(expected, dict):
        assert refused.json() == expected
    else:
        assert [e["code"] for e in refused.json()["errors"]] == [expected]
    assert accepted.status_code in (200, 201, 202), accepted.text

"""Failover under load: producers and consumers run, through HTTP (`ferrymq serve` on the Sentinel
URL) and through the library (sync and asyncio), while the primary is killed with kill -9 and
its replica promoted; the killed node then rejoins as a replica, and the load goes on. Just
before the kill the replica is cut off for 0.4 s, as a lagging replica would be.

- With replicated acknowledgement (N = 1): every acknowledged put is there afterwards (or was
  taken by a consumer that deleted it), and no message whose delete was acknowledged comes back.
- Without it: what was lost is counted and printed, and nothing is corrupt.
- Either way: counts and records balance, nothing refers to a missing record, and every message
  that survived is delivered again (a reservation the failover lost is not a lost message)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis

from ferrymq.engine import AsyncEngine, Engine, NotReplicated, NotReserved, RedisClock, Unavailable
from ferrymq.engine.core import parse_record
from ferrymq.engine.keys import TABLE_FIELD, queue_keys
from ferrymq.http import connect

PROJECT = "000000000000000000000001"
QUEUE = "load"
PRODUCERS, CONSUMERS, BATCH = 3, 2, 3
RESERVATION = 30
"""Seconds: no reservation lapses during a test, so a message delivered twice came back."""


class Refused(Exception):
    """The call was answered "not done, or not durably done" (503, 504, a stale reservation)."""


@dataclass
class Ledger:
    """What the clients were told, shared by every worker."""

    acked_puts: set[str] = field(default_factory=set)
    attempted_deletes: set[str] = field(default_factory=set)
    acked_deletes: dict[str, float] = field(default_factory=dict)
    """body -> when its delete was acknowledged (monotonic)."""
    deliveries: list[tuple[str, float]] = field(default_factory=list)
    """(body, when the reserve that delivered it was sent)."""
    refused: int = 0
    unexpected: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


# -- the three surfaces: put, reserve, delete; Refused for an honest "not (durably) done" -----------


class Http:
    """IronMQ v1 through `ferrymq serve` (deletes need no reservation there)."""

    def __init__(self, iron: Any) -> None:
        self.iron = iron

    def put(self, bodies: list[str]) -> None:
        self._check(self.iron.put(QUEUE, *bodies))

    def reserve(self, n: int) -> list[tuple[str, str, str]]:
        response = self._check(self.iron.reserve(QUEUE, n, timeout=RESERVATION))
        return [(m["id"], m["body"], "") for m in response.json()["messages"]]  # v1 has no reservation ids

    def delete(self, message_id: str, reservation_id: str) -> None:
        self._check(self.iron.delete(QUEUE, message_id))

    def close(self) -> None:
        pass

    @staticmethod
    def _check(response: Any) -> Any:
        if response.status_code in (503, 504, 404):  # 404: a message another consumer deleted
            raise Refused(response.status_code)
        assert response.status_code == 200, f"{response.status_code} {response.text}"
        return response


class Library:
    """The sync engine over the Sentinel URL; deletes name their reservation."""

    def __init__(self, url: str, acks: int) -> None:
        self.client = connect.sync_client(url, socket_connect_timeout=2)
        self.queue = Engine(self.client, min_replicas_ack=acks, min_replicas_ack_timeout=0.5).queue(PROJECT, QUEUE)

    def put(self, bodies: list[str]) -> None:
        self._call(self.queue.put, bodies)

    def reserve(self, n: int) -> list[tuple[str, str, str]]:
        return [(m.id, m.body.decode(), m.reservation_id) for m in self._call(self.queue.reserve, n, timeout=RESERVATION)]

    def delete(self, message_id: str, reservation_id: str) -> None:
        self._call(self.queue.delete_message, message_id, reservation_id)

    def close(self) -> None:
        self.client.close()

    def _call(self, verb: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return self._run(verb(*args, **kwargs))
        except (Unavailable, NotReplicated, NotReserved) as exc:
            raise Refused(type(exc).__name__) from exc

    def _run(self, result: Any) -> Any:
        return result


class AsyncLibrary(Library):
    """The asyncio engine over the Sentinel URL, on an event loop of this worker's own."""

    def __init__(self, url: str, acks: int) -> None:
        self.runner = asyncio.Runner()
        self.client = connect.async_client(url, socket_connect_timeout=2)
        self.engine = AsyncEngine(self.client, clock=RedisClock(), command_timeout=5, min_replicas_ack=acks,
                                  min_replicas_ack_timeout=0.5)
        self.queue = self.engine.queue(PROJECT, QUEUE)

    def close(self) -> None:
        self.runner.run(self.engine.aclose())
        self.runner.run(self.client.aclose())
        self.runner.close()

    def _run(self, result: Any) -> Any:
        return self.runner.run(result)


# -- the load -----------------------------------------------------------------------------------------


def produce(surface: Any, ledger: Ledger, worker: int, stop: threading.Event) -> None:
    n = 0
    while not stop.is_set():
        bodies = [f"{worker}/{n}/{i}" for i in range(BATCH)]
        n += 1
        try:
            surface.put(bodies)
        except Refused:
            with ledger.lock:
                ledger.refused += 1
            time.sleep(0.02)
            continue
        with ledger.lock:
            ledger.acked_puts.update(bodies)


def consume(surface: Any, ledger: Ledger, stop: threading.Event) -> None:
    while not stop.is_set():
        sent = time.monotonic()
        try:
            taken = surface.reserve(5)
        except Refused:
            time.sleep(0.02)
            continue
        with ledger.lock:
            ledger.deliveries += [(body, sent) for _, body, _ in taken]
        for message_id, body, reservation_id in taken:
            with ledger.lock:
                ledger.attempted_deletes.add(body)
            try:
                surface.delete(message_id, reservation_id)
            except Refused:
                continue
            with ledger.lock:
                ledger.acked_deletes[body] = time.monotonic()
        if not taken:
            time.sleep(0.01)


def guarded(work: Callable[..., None], ledger: Ledger, make: Callable[[], Any], *args: Any) -> None:
    surface = make()
    try:
        work(surface, ledger, *args)
    except Exception as exc:  # recorded, so the test fails with it rather than a worker dying quietly
        with ledger.lock:
            ledger.unexpected.append(f"{type(exc).__name__}: {exc}")
    finally:
        surface.close()


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.05)


def run_through_a_failover(deployment: Any, make: Callable[[], Any]) -> Ledger:
    """Load before, during and after kill -9 of the primary; the killed node rejoins as a replica."""
    ledger, stop = Ledger(), threading.Event()
    with ThreadPoolExecutor(PRODUCERS + CONSUMERS) as pool:
        workers = [pool.submit(guarded, produce, ledger, make, w, stop) for w in range(PRODUCERS)]
        workers += [pool.submit(guarded, consume, ledger, make, stop) for _ in range(CONSUMERS)]
        try:
            wait_for(lambda: len(ledger.acked_puts) >= 150 and len(ledger.acked_deletes) >= 30 or ledger.unexpected,
                     "load before the failover")
            old = cut_replication_then_kill_the_primary(deployment)
            deployment.wait_for_failover(old)
            deployment.rejoin(old)
            after = len(ledger.acked_puts)
            wait_for(lambda: len(ledger.acked_puts) >= after + 150 or ledger.unexpected, "load after the failover")
        finally:
            stop.set()
        for worker in workers:
            worker.result(timeout=60)
    assert ledger.unexpected == [], ledger.unexpected[:5]
    return ledger


def cut_replication_then_kill_the_primary(deployment: Any) -> Any:
    """Drop the replica's link and refuse its reconnection (an ACL), let the load run on the
    primary alone for a moment, then kill -9 the primary: the writes of that moment are on no
    replica, as with a replica that lags. (A primary killed with its link up on loopback has sent
    nearly everything, and a replica whose link drops reconnects at once.)"""
    with redis.Redis(port=deployment.primary().port) as primary:
        primary.execute_command("ACL", "SETUSER", "default", "-psync", "-sync")
        primary.client_kill_filter(_type="slave")  # redis-py's name for replicas
    time.sleep(0.4)
    return deployment.kill_primary()


def stored_bodies(url: str) -> list[str]:
    with redis.Redis.from_url(url) as client:
        records = client.hgetall(queue_keys("fmq", PROJECT, QUEUE).msg)
        return [parse_record(record)[4].decode() for message_id, record in records.items() if message_id != TABLE_FIELD]


def redelivered(url: str) -> list[str]:
    """Every message still stored, taken for good: reservations the failover kept are ended first."""
    with redis.Redis.from_url(url) as client:
        queue = Engine(client).queue(PROJECT, QUEUE)
        queue.release_reserved()
        bodies: list[str] = []
        while taken := queue.reserve(100, delete=True):
            bodies += [m.body.decode() for m in taken]
    return bodies


def check_nothing_is_corrupt(deployment: Any, account: Callable[..., dict[str, int]]) -> list[str]:
    """Counts and records balance, nothing refers to a missing record, and every stored message is
    delivered again exactly once. The stored bodies."""
    url = deployment.primary().url
    totals = account(url, [QUEUE])
    assert totals["records"] == totals["queued"], totals
    assert totals["orphans"] == 0, totals
    present = stored_bodies(url)
    assert len(present) == len(set(present)), "a message is stored twice"
    assert sorted(redelivered(url)) == sorted(present), "a stored message could not be delivered again"
    return present


SURFACES = ["http", "sync", "async"]


@pytest.fixture(params=SURFACES)
def surface(request: pytest.FixtureRequest, spawn_server: Callable[..., Any], iron: Callable[..., Any]):
    """``surface(deployment, acks)``: a maker of one worker's client, on that surface."""

    def build(deployment: Any, acks: int) -> Callable[[], Any]:
        if request.param == "http":
            options = ["--min-replicas-ack", str(acks), "--min-replicas-ack-timeout", "0.5"] if acks else []
            server = spawn_server("--redis-url", deployment.url, "--pushers", "0", *options)
            return lambda: Http(iron(server.url, timeout=30))
        if request.param == "sync":
            return lambda: Library(deployment.url, acks)
        return lambda: AsyncLibrary(deployment.url, acks)

    return build


def test_with_replicated_acknowledgement_no_acknowledged_put_or_delete_is_lost(redis_sentinels, surface, account):
    deployment = redis_sentinels()
    ledger = run_through_a_failover(deployment, surface(deployment, acks=1))
    present = set(check_nothing_is_corrupt(deployment, account))
    lost = ledger.acked_puts - present - ledger.attempted_deletes
    assert not lost, f"{len(lost)} acknowledged puts lost, e.g. {sorted(lost)[:5]}"
    came_back = set(ledger.acked_deletes) & present
    assert not came_back, f"{len(came_back)} messages came back after their delete was acknowledged"
    delivered_after_delete = [(body, at) for body, at in ledger.deliveries
                              if body in ledger.acked_deletes and at > ledger.acked_deletes[body]]
    assert not delivered_after_delete, f"delivered again after an acknowledged delete: {delivered_after_delete[:5]}"
    assert ledger.refused > 0, "the failover refused nothing: it was not under load"


def test_without_replicated_acknowledgement_losses_are_counted_and_nothing_is_corrupt(redis_sentinels, surface,
                                                                                       account, capsys):
    deployment = redis_sentinels()
    ledger = run_through_a_failover(deployment, surface(deployment, acks=0))
    present = set(check_nothing_is_corrupt(deployment, account))
    lost = ledger.acked_puts - present - ledger.attempted_deletes
    came_back = set(ledger.acked_deletes) & present
    with capsys.disabled():
        print(f"\nfailover without replicated acknowledgement: {len(ledger.acked_puts)} puts acknowledged, "
              f"{len(lost)} of them lost; {len(ledger.acked_deletes)} deletes acknowledged, {len(came_back)} "
              f"of them came back; {ledger.refused} puts refused (503)")
    assert 0 < len(lost) < len(ledger.acked_puts), "the replica was cut off, so the writes of that moment are lost"

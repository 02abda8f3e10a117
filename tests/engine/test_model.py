"""Random sequences of operations against the engine and against a plain model of the rules,
compared after every step: order of delivery, sizes, statuses, delivery counts, dead letters.

The model states the semantics in the simplest terms: each message is ready, delayed, reserved
or gone; ready messages form one FIFO list. Messages whose reservation lapsed or whose delay
ended join the end of that list, in the order they became available, before anything the same
call puts. Expired messages are gone (a reserved one only when its reservation ends).
"""

from __future__ import annotations

from dataclasses import dataclass

import hypothesis.strategies as st
import pytest
import redis
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from ferrymq.engine import Engine, FakeClock, MessageNotFound, NewMessage, NotReserved

MAX_DELIVERIES = 3
DEFAULT_TIMEOUT = 4_000
DEFAULT_EXPIRES = 30_000


@dataclass
class Msg:
    id: str
    body: bytes
    timeout: int
    expire_at: int
    state: str = "ready"  # ready | delayed | reserved | gone
    due: int = 0
    deadline: int = 0
    count: int = 0
    rid: str = ""
    eff: int = 0


class Model:
    def __init__(self) -> None:
        self.msgs: dict[str, Msg] = {}
        self.ready: list[str] = []
        self.dead: list[bytes] = []

    def live(self, state: str) -> list[Msg]:
        return [m for m in self.msgs.values() if m.state == state]

    def maintain(self, now: int) -> None:
        """What every maintaining script does first (everything but touch and get)."""
        events = [(m.deadline, 0, m.id) for m in self.live("reserved") if m.deadline <= now]
        events += [(m.due, 1, m.id) for m in self.live("delayed") if m.due <= now]
        for _, kind, mid in sorted(events):
            m = self.msgs[mid]
            if kind == 0:
                self.end_delivery(m, now, 0)
            elif m.expire_at <= now:
                m.state = "gone"
            else:
                self.to_ready(m)
        for m in self.live("delayed"):  # delayed messages are in the expiry index
            if m.expire_at <= now:
                m.state = "gone"
        for mid in list(self.ready):
            if self.msgs[mid].expire_at <= now:
                self.msgs[mid].state = "gone"
        self.ready = [i for i in self.ready if self.msgs[i].state == "ready"]

    def to_ready(self, m: Msg) -> None:
        m.state = "ready"
        self.ready.append(m.id)

    def end_delivery(self, m: Msg, now: int, delay: int) -> None:
        if m.count >= MAX_DELIVERIES:
            m.state = "gone"
            self.dead.append(m.body)
        elif m.expire_at <= now:
            m.state = "gone"
        elif delay > 0:
            m.state, m.due = "delayed", now + delay
        else:
            self.to_ready(m)

    def holds(self, m: Msg, rid: str | None, now: int) -> bool:
        return m.state == "reserved" and m.deadline > now and (rid is None or rid == m.rid)


class EngineVersusModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.model = Model()
        self.counter = 0

    @initialize()
    def start(self) -> None:
        self.clock = FakeClock()
        self.engine = Engine(CLIENT, clock=self.clock)
        CLIENT.flushall()
        self.q = self.engine.queue("p", "q")
        self.q.create(timeout=DEFAULT_TIMEOUT / 1000, expires_in=DEFAULT_EXPIRES / 1000,
                      max_deliveries=MAX_DELIVERIES, dead_letter_queue="dead")
        self.dead = self.engine.queue("p", "dead")

    @property
    def now(self) -> int:
        return self.clock.ms

    def known(self) -> list[str]:
        return list(self.model.msgs)

    # -- operations --------------------------------------------------------------------------

    @rule(batch=st.lists(st.tuples(st.sampled_from([None, 0, 1, 3]), st.sampled_from([None, 2, 6, 60]),
                                   st.sampled_from([None, 1, 2])), min_size=1, max_size=4))
    def put(self, batch) -> None:
        messages = []
        for delay, expires, timeout in batch:
            self.counter += 1
            messages.append(NewMessage(f"m{self.counter}", timeout=timeout, delay=delay, expires_in=expires))
        ids = self.q.put(messages)
        self.model.maintain(self.now)
        for mid, message in zip(ids, messages):
            m = Msg(mid, message.body.encode(), (message.timeout or DEFAULT_TIMEOUT / 1000) * 1000,
                    self.now + (message.expires_in or DEFAULT_EXPIRES / 1000) * 1000)
            self.model.msgs[mid] = m
            if message.delay:
                m.state, m.due = "delayed", self.now + message.delay * 1000
            else:
                self.model.to_ready(m)

    @rule(n=st.integers(1, 4), timeout=st.sampled_from([None, 1, 5]), delete=st.booleans())
    def reserve(self, n, timeout, delete) -> None:
        got = self.q.reserve(n, timeout=timeout, delete=delete)
        self.model.maintain(self.now)
        expected = self.model.ready[:n]
        assert [m.id for m in got] == expected
        self.model.ready = self.model.ready[n:]
        for message in got:
            m = self.model.msgs[message.id]
            m.count += 1
            assert message.body == m.body and message.reserved_count == m.count
            if delete:
                m.state = "gone"
            else:
                m.eff = timeout * 1000 if timeout else m.timeout
                m.state, m.deadline, m.rid = "reserved", self.now + m.eff, message.reservation_id
                assert message.reserved_until == m.deadline

    @rule(n=st.integers(1, 5))
    def peek(self, n) -> None:
        got = self.q.peek(n)
        self.model.maintain(self.now)
        assert [m.id for m in got] == self.model.ready[:n]

    @precondition(lambda self: self.model.msgs)
    @rule(data=st.data(), with_rid=st.booleans())
    def delete(self, data, with_rid) -> None:
        mid = data.draw(st.sampled_from(self.known()))
        m = self.model.msgs[mid]
        rid = m.rid if with_rid and m.rid else None
        settled = self.q.settle(deletes=[(mid, rid)])
        self.model.maintain(self.now)
        if rid is not None and not self.model.holds(m, rid, self.now):
            expected = "not_found" if m.state == "gone" else "not_reserved"
        elif m.state == "gone":
            expected = "not_found"
        else:
            expected = "ok"
            if m.state == "ready":
                self.model.ready.remove(mid)
            m.state = "gone"
        assert settled.deleted == [expected]

    @precondition(lambda self: self.model.msgs)
    @rule(data=st.data(), delay=st.sampled_from([None, 0, 2]))
    def release(self, data, delay) -> None:
        mid = data.draw(st.sampled_from(self.known()))
        m = self.model.msgs[mid]
        settled = self.q.settle(releases=[(mid, None, delay)])
        self.model.maintain(self.now)
        if m.state == "gone":
            expected = "not_found"
        elif self.model.holds(m, None, self.now):
            expected = "ok"
            self.model.end_delivery(m, self.now, (delay or 0) * 1000)
        else:
            expected = "noop"
        assert settled.released == [expected]

    @precondition(lambda self: self.model.msgs)
    @rule(data=st.data())
    def touch(self, data) -> None:
        mid = data.draw(st.sampled_from(self.known()))
        m = self.model.msgs[mid]
        if self.model.holds(m, None, self.now):
            lease = self.q.touch(mid, m.rid)
            m.deadline, m.rid = self.now + m.eff, lease.reservation_id
            assert lease.reserved_until == m.deadline
        else:  # touch runs no maintenance: unreserved, lapsed, expired or deleted are all errors
            with pytest.raises((NotReserved, MessageNotFound)):
                self.q.touch(mid)

    @precondition(lambda self: self.model.msgs)
    @rule(data=st.data())
    def get(self, data) -> None:
        mid = data.draw(st.sampled_from(self.known()))
        m = self.model.msgs[mid]
        if m.state == "gone" or m.expire_at <= self.now:
            with pytest.raises(MessageNotFound):
                self.q.get(mid)
            return
        message = self.q.get(mid)
        if m.state == "reserved" and m.deadline > self.now:
            expected = "reserved"
        elif m.state == "delayed" and m.due > self.now:
            expected = "delayed"
        else:
            expected = "ready"
        assert (message.status, message.reserved_count) == (expected, m.count)

    @rule(seconds=st.sampled_from([0.5, 1, 2, 5]))
    def advance(self, seconds) -> None:
        self.clock.advance(seconds)

    # -- checks ------------------------------------------------------------------------------

    @invariant()
    def sizes_and_dead_letters_match(self) -> None:
        if not hasattr(self, "q"):
            return
        info = self.q.info()
        self.model.maintain(self.now)
        assert (info.ready, info.delayed, info.reserved) == (
            len(self.model.ready), len(self.model.live("delayed")), len(self.model.live("reserved"))
        )
        dead = self.dead.peek(100) if self.model.dead else []
        assert sorted(m.body for m in dead) == sorted(self.model.dead)


CLIENT: redis.Redis


@pytest.mark.slow
def test_engine_matches_the_model(redis_url):
    global CLIENT
    CLIENT = redis.Redis.from_url(redis_url)
    try:
        runner = EngineVersusModel.TestCase
        runner.settings = settings(
            max_examples=150, stateful_step_count=40, deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        runner().runTest()
    finally:
        CLIENT.close()

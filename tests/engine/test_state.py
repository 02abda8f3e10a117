"""A queue's numbers live packed in its meta field `q` (lua/includes/state.lua); queues written by
an earlier FerryMQ, with those numbers in fields of their own, are moved over by the first script
that opens them."""

from __future__ import annotations

import re
from importlib.resources import files

from ferrymq.engine.core import FLAG_LIVE_UNCOUNTED, STATE_FIELDS, remember_bounded, state_fields

SLOTS = re.compile(r"^local ([A-Z_, ]+) = ([\d, ]+)$", re.MULTILINE)


def test_the_python_names_of_the_state_slots_follow_the_lua_ones():
    text = files("ferrymq.lua").joinpath("includes", "state.lua").read_text("utf-8")
    slots = {}
    for names, numbers in SLOTS.findall(text):
        slots.update(zip((n.strip() for n in names.split(",")), (int(n) for n in numbers.split(","))))
    lua_order = [name for name, _ in sorted(((n, i) for n, i in slots.items() if n not in FLAG_NAMES), key=lambda p: p[1])]
    assert [name.lower() for name in lua_order if name != "STATE_SIZE"] == [
        {"c_reserved": "reserved_count", "c_deleted": "deleted_count"}.get(f, f) for f in STATE_FIELDS]
    assert slots["LIVE_UNCOUNTED"] == FLAG_LIVE_UNCOUNTED
    assert slots["STATE_SIZE"] == len(STATE_FIELDS) and len(re.search(r'STATE_FORMAT = "<(d+)"', text).group(1)) == len(STATE_FIELDS)


FLAG_NAMES = {"PAUSED", "PUSH_QUEUE", "HAS_ALERTS", "TO_FRONT", "OVER_QUOTA", "TABLES", "DELAYED_TABLE", "EXPIRY_TABLE",
              "LIVE_UNCOUNTED"}


def test_a_queue_of_an_earlier_version_is_moved_into_q_when_first_opened(real_engine, redis_client, clock):
    meta = "fmq:{p/old}:meta"
    now = clock.wall_ms()
    redis_client.hset(meta, mapping={
        "id": "0123456789abcdef0123456789abcdef", "created": now, "updated": now, "timeout": 30000,
        "delay": 0, "expires_in": 604800000, "max_deliveries": 3, "dlq": "", "retry_delay": 5000, "paused": "0",
        "requeue": "end", "id_ms": now, "id_sfx": 4, "ghosts": 0, "xtail": now + 604800000, "total": 5,
        "c_reserved": 2, "c_deleted": 1, "c_expired": 7,
    })
    record = f"{now:013d}|000030000|{now + 604800000:013d}|\n".encode() + b"kept"
    redis_client.hset("fmq:{p/old}:msg", f"{now:013d}000004", record)
    redis_client.rpush("fmq:{p/old}:ready", f"{now:013d}000004")
    q = real_engine.queue("p", "old")
    info = q.info()
    assert (info.settings.timeout, info.settings.max_deliveries, info.settings.retry_delay) == (30, 3, 5)
    assert (info.ready, info.total_messages, info.counters["reserved"], info.counters["expired"]) == (1, 5, 2, 7)
    fields = {k.decode() for k in redis_client.hkeys(meta)}
    assert "q" in fields and not fields & {"timeout", "id_ms", "total", "c_reserved", "ghosts", "paused"}
    [new_id] = q.put(["new"])
    assert new_id == f"{now:013d}000005"  # the id counter carried over: ids never repeat
    assert [m.body for m in q.reserve(5)] == [b"kept", b"new"]
    assert q.info().counters["reserved"] == 4


def test_a_bounded_memo_forgets_everything_rather_than_grow_past_its_size():
    memo: dict[str, int] = {}
    for i in range(3):
        remember_bounded(memo, f"k{i}", i, 3)
    assert remember_bounded(memo, "k1", 10, 3) == 10 and memo == {"k0": 0, "k1": 10, "k2": 2}  # not new: kept
    remember_bounded(memo, "k3", 3, 3)
    assert memo == {"k3": 3}

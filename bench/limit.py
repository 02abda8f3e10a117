"""The limits FerryMQ is held to, from the same process and client library:

- bare ``EVALSHA`` of a script returning 1: the cost of one script round trip (one at a time on
  the connection the sync engine keeps, engine/direct.py, as the engine's own calls go);
- a raw Redis list (LPUSH, RPOP; pipelined at the batch size): a queue with no reliability at all;
- a minimal ZSET + HASH Lua queue (ready by seq, reserved by deadline, bodies in a hash; no
  expiry, counts, reservation ids or dead letters): what one script per state change costs at
  the least. Used to profile where FerryMQ's scripts spend their time.
"""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from ferrymq.engine.direct import DirectCalls

from .cases import Case, Steps
from .ferry import in_flight
from .harness import BODY, RedisServer

SECTION = "engine"
RETURN_ONE = "return 1"

MINIMAL_PUT = """
local seq = redis.call('HINCRBY', KEYS[1], 'seq', #ARGV)
local z, h = {}, {}
for i = 1, #ARGV do
  local id = tostring(seq - #ARGV + i)
  z[#z + 1] = seq - #ARGV + i; z[#z + 1] = id
  h[#h + 1] = id; h[#h + 1] = ARGV[i]
end
redis.call('ZADD', KEYS[2], unpack(z)); redis.call('HSET', KEYS[3], unpack(h))
return #ARGV"""
MINIMAL_RESERVE = """
local t = redis.call('TIME'); local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local popped = redis.call('ZPOPMIN', KEYS[1], ARGV[1])
if #popped == 0 then return {} end
local ids, z = {}, {}
for i = 1, #popped, 2 do ids[#ids + 1] = popped[i]; z[#z + 1] = now + 30000; z[#z + 1] = popped[i] end
redis.call('ZADD', KEYS[2], unpack(z))
local bodies = redis.call('HMGET', KEYS[3], unpack(ids))
local out = {}
for i = 1, #ids do out[#out + 1] = ids[i]; out[#out + 1] = bodies[i] end
return out"""
MINIMAL_DELETE = """
local n = redis.call('ZREM', KEYS[1], unpack(ARGV))
redis.call('HDEL', KEYS[2], unpack(ARGV))
return n"""


def evalsha(server: RedisServer, n: int) -> Steps:
    client = server.client
    sha, direct = client.script_load(RETURN_ONE), DirectCalls.of(client)
    assert direct is not None, "the bench's client keeps a connection, as the engine's does"
    command = ("EVALSHA", sha, 0)

    def calls() -> None:
        for _ in range(n):
            direct.execute(client, command)

    return {"call": server.timed(n, calls)}


def evalsha_in_flight(server: RedisServer, n: int, calls: int) -> Steps:
    async def main() -> Steps:
        client = aioredis.Redis(port=server.port)
        one = client.register_script(RETURN_ONE)
        await one()
        try:
            return {"call": await server.timed_async(n, lambda: in_flight(calls, n, lambda _: one()))}
        finally:
            await client.aclose()

    return asyncio.run(main())


def raw_list(server: RedisServer, n: int, batch: int) -> Steps:
    r = server.client

    def pipelined(command: str, *args: object) -> None:
        for _ in range(n // batch):
            pipe = r.pipeline(transaction=False)
            for _ in range(batch):
                pipe.execute_command(command, *args)
            pipe.execute()

    return {"put": server.timed(n, lambda: pipelined("LPUSH", "raw", BODY)),
            "reserve": server.timed(n, lambda: pipelined("RPOP", "raw"))}


def minimal_lua(server: RedisServer, n: int, batch: int) -> Steps:
    r = server.client
    put, reserve, delete = (r.register_script(s) for s in (MINIMAL_PUT, MINIMAL_RESERVE, MINIMAL_DELETE))
    taken: list[list[bytes]] = []

    def puts() -> None:
        for _ in range(n // batch):
            put(keys=["m:meta", "m:ready", "m:body"], args=[BODY] * batch)

    def reserves() -> None:
        for _ in range(n // batch):
            taken.append(reserve(keys=["m:ready", "m:reserved", "m:body"], args=[batch])[0::2])

    def deletes() -> None:
        for ids in taken:
            delete(keys=["m:reserved", "m:body"], args=ids)

    return {"put": server.timed(n, puts), "reserve": server.timed(n, reserves), "delete": server.timed(n, deletes)}


def cases() -> list[Case]:
    found = [
        Case("evalsha/c1", SECTION, "bare EVALSHA (limit)", "1 call in flight", evalsha, lifecycle=False, probe=2000),
        Case("evalsha/c16", SECTION, "bare EVALSHA (limit)", "16 in flight",
             lambda s, n: evalsha_in_flight(s, n, 16), lifecycle=False, probe=2000),
    ]
    found += [
        Case(f"rawlist/b{b}", SECTION, "raw list LPUSH/RPOP (limit)", f"batch {b}",
             lambda s, n, b=b: raw_list(s, n, b), multiple=b, probe=max(500, 20 * b))
        for b in (1, 10, 100)
    ]
    found.append(Case("minimal/b100", SECTION, "minimal Lua queue", "batch 100",
                      lambda s, n: minimal_lua(s, n, 100), multiple=100, probe=2000))
    return found

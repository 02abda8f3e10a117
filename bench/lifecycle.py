"""Engine lifecycle benchmark: put all, reserve all, delete all, side by side with the two
reference points of the design notes, in one run on one dedicated redis-server.

    python bench/lifecycle.py [--messages 100000] [--rounds 3]

Rows: a pipelined raw Redis list (LPUSH/RPOP, no reliability at all), a minimal ZSET+HASH Lua
queue (ready by seq, reserved by deadline, bodies in a hash; no expiry, counts, reservation ids
or dead letters), and FerryMQ's engine. Each reports messages/s and Redis CPU per message
(delta of used_cpu_user + used_cpu_sys), median of the rounds, interleaved A B C A B C.
Redis runs on core 0 and this process on core 1 when taskset is available.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable

import redis

from ferrymq.engine import Engine

BODY = b"x" * 100

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


def raw_list(r: redis.Redis, n: int, batch: int) -> None:
    for _ in range(n // batch):
        pipe = r.pipeline(transaction=False)
        for _ in range(batch):
            pipe.lpush("raw", BODY)
        pipe.execute()
    for _ in range(n // batch):
        pipe = r.pipeline(transaction=False)
        for _ in range(batch):
            pipe.rpop("raw")
        pipe.execute()


def minimal_lua(r: redis.Redis, n: int, batch: int) -> None:
    put, reserve, delete = (r.register_script(s) for s in (MINIMAL_PUT, MINIMAL_RESERVE, MINIMAL_DELETE))
    for _ in range(n // batch):
        put(keys=["m:meta", "m:ready", "m:body"], args=[BODY] * batch)
    for _ in range(n // batch):
        out = reserve(keys=["m:ready", "m:reserved", "m:body"], args=[batch])
        delete(keys=["m:reserved", "m:body"], args=out[0::2])


def ferrymq(r: redis.Redis, n: int, batch: int) -> None:
    q = Engine(r).queue("bench", f"lifecycle-{batch}")
    for _ in range(n // batch):
        q.put([BODY] * batch)
    for _ in range(n // batch):
        q.delete_messages([m.id for m in q.reserve(batch)])


SYSTEMS: dict[str, Callable[[redis.Redis, int, int], None]] = {
    "raw list, pipelined": raw_list,
    "minimal Lua queue": minimal_lua,
    "ferrymq engine": ferrymq,
}


def redis_cpu(r: redis.Redis) -> float:
    info = r.info("cpu")
    return info["used_cpu_user"] + info["used_cpu_sys"]


def start_redis(directory: str) -> tuple[subprocess.Popen[bytes], int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", directory]
    if shutil.which("taskset"):
        command = ["taskset", "-c", "0", *command]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    client = redis.Redis(port=port)
    for _ in range(200):
        try:
            client.ping()
            return process, port
        except redis.ConnectionError:
            time.sleep(0.02)
    raise SystemExit("redis-server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", default="100,10")
    args = parser.parse_args()
    if shutil.which("taskset"):
        os.sched_setaffinity(0, {1})
    with tempfile.TemporaryDirectory() as directory:
        process, port = start_redis(directory)
        r = redis.Redis(port=port)
        try:
            server = r.info("server")
            print(f"redis-server {server['redis_version']} ({shutil.which('redis-server')}), "
                  f"{args.messages:,} messages of {len(BODY)} B per step")
            print(f"{'system':24} {'batch':>5} {'msgs/s':>10} {'Redis us/msg':>13}   (median of {args.rounds})")
            for batch in (int(b) for b in args.batches.split(",")):
                results: dict[str, list[tuple[float, float]]] = {name: [] for name in SYSTEMS}
                for _ in range(args.rounds):
                    for name, run in SYSTEMS.items():
                        r.flushall()
                        cpu, started = redis_cpu(r), time.perf_counter()
                        run(r, args.messages, batch)
                        elapsed, used = time.perf_counter() - started, redis_cpu(r) - cpu
                        results[name].append((args.messages / elapsed, used / args.messages * 1e6))
                for name, rows in results.items():
                    rate = statistics.median(x for x, _ in rows)
                    cpu_us = statistics.median(y for _, y in rows)
                    print(f"{name:24} {batch:>5} {rate:>10,.0f} {cpu_us:>13.1f}")
        finally:
            r.close()
            process.terminate()
            process.wait()


if __name__ == "__main__":
    main()

"""Every lua/*.lua keeps its contract: a header listing its KEYS, ARGV, return value and error
codes; the key count in its file name matches; a table reply is decoded by the class in
engine/replies.py whose fields its header names; it loads into a real Redis."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import typing
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis

from ferrymq.engine import AsyncEngine, Engine
from ferrymq.engine.errors import SCRIPT_ERROR_CODES
from ferrymq.engine.keys import queue_keys
from ferrymq.engine.replies import REPLIES
from ferrymq.engine.scripts import build, library, sources

SCRIPTS = sorted(sources().values(), key=lambda s: s.verb)
CORE_KEYS = len(queue_keys("fmq", "p", "q").core)
HEADER = re.compile(r"\A--\[\[\n(.*?)\n\]\]", re.DOTALL)


def header(raw: str) -> str:
    match = HEADER.match(raw)
    assert match, "a script starts with a --[[ ... ]] header block"
    return match.group(1)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s.verb)
def test_header_names_the_verb_and_documents_returns_and_errors(script):
    text = header(script.raw)
    assert text.lstrip().startswith(f"{script.verb}:")
    assert "Returns:" in text and "Errors:" in text and "ARGV" in text


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s.verb)
def test_key_count_in_the_name_matches_header_and_body(script):
    text = header(script.raw)
    documented = [int(i) for i in re.findall(r"^\s*KEYS\[(\d+)\]", text, re.MULTILINE)]
    assert documented == list(range(1, script.numkeys + 1))
    body = script.raw[len(HEADER.match(script.raw).group(0)) :]
    used = {int(i) for i in re.findall(r"KEYS\[(\d+)\]", body)}
    if "open_queue(KEYS, now, now_s, true)" in body:  # a common case: the core keys up to dlv (7th)
        used |= set(range(1, 8))
    elif "open_queue(KEYS" in body:  # the include takes the core keys in QueueKeys.core's order
        used |= set(range(1, CORE_KEYS + 1))
    assert max(used) == script.numkeys


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s.verb)
def test_every_error_code_in_the_header_exists_in_the_engine(script):
    errors = header(script.raw).split("Errors:", 1)[1]
    codes = set(re.findall(r"\b[A-Z][A-Z_]{2,}\b", errors))
    assert codes <= SCRIPT_ERROR_CODES, codes - SCRIPT_ERROR_CODES
    replied = set(re.findall(r'error_reply\("([A-Z_]+)', script.text))
    assert replied <= codes, f"replies {replied - codes} without documenting them"


def returns(text: str) -> str:
    return text.split("Returns:", 1)[1].split("Errors:", 1)[0]


REPLY_FIELD = re.compile(r"\s*(?:[(\[](\w+): ([\w, ]+)[)\]]|(\w+)(\.\.\.)?)\s*(?:,|$)")


def reply_fields(text: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """The header's ``Returns: {...}`` as (name, kind, inner names): kind "" one value, "()" a
    group, "[]" an optional group, "..." the rest of the reply (inner: its row, from the line
    "<name>: a, b per <item>")."""
    body = re.match(r"\s*\{([^}]*)\}", returns(text))
    assert body, "a table reply is written {field, field, ...}"
    fields, rest, pos = [], " ".join(body.group(1).split()), 0
    while pos < len(rest):
        m = REPLY_FIELD.match(rest, pos)
        assert m and m.end() > pos, f"cannot read {rest[pos:]!r}"
        pos = m.end()
        if m.group(1):
            kind = "[]" if m.group(0).strip().startswith("[") else "()"
            fields.append((m.group(1), kind, tuple(n.strip() for n in m.group(2).split(","))))
        elif m.group(4):
            row = re.search(rf"^\s*{m.group(3)}: ([\w,\s]*?)\s+per \w+", text, re.MULTILINE)
            assert row, f"{m.group(3)}... says what each item holds: '{m.group(3)}: a, b per item'"
            fields.append((m.group(3), "...", tuple(n.strip() for n in row.group(1).split(","))))
        else:
            fields.append((m.group(3), "", ()))
    return fields


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s.verb)
def test_a_table_reply_has_flags_first_and_its_decoder_names_its_fields(script):
    text = header(script.raw)
    if not returns(text).lstrip().startswith("{"):
        assert script.verb not in REPLIES, "a single-value reply needs no decoder"
        return
    decoder = REPLIES[script.verb]
    fields = reply_fields(text)
    assert tuple(name for name, _, _ in fields) == decoder._fields
    if "flags" in decoder._fields:
        assert decoder._fields[0] == "flags"
    hints = typing.get_type_hints(decoder)
    for name, kind, inner in fields:
        if kind in ("()", "[]"):  # a group decodes to a dataclass of those fields, None if optional
            group = hints[name]
            optional = type(None) in typing.get_args(group)
            group = next(t for t in typing.get_args(group) or (group,) if t is not type(None))
            assert inner == tuple(f.name for f in dataclasses.fields(group))
            assert optional == (kind == "[]")
        elif kind == "...":
            assert name == decoder._fields[-1] and inner == decoder.ROW
    assert any(kind == "..." for _, kind, _ in fields) == hasattr(decoder, "ROW")


def test_every_decoder_decodes_a_script():
    assert set(REPLIES) <= {s.verb for s in SCRIPTS}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s.verb)
def test_no_key_name_is_built_inside_lua(script):
    # Keys come from KEYS only (cluster slots); the prefix never appears in a script.
    assert "fmq:" not in script.text


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s.verb)
def test_script_loads_into_redis(script, redis_client: redis.Redis):
    sha = redis_client.script_load(script.text)
    assert redis_client.script_exists(sha) == [True]


def test_the_function_library_loads_into_redis(redis_client: redis.Redis):
    assert redis_client.function_load(library().code, replace=True) == library().name.encode()


def test_scripts_reload_after_the_script_cache_is_flushed(real_engine, redis_client):
    q = real_engine.queue("p", "q")
    q.put(["a"])
    redis_client.script_flush()  # what a Redis restart or failover does
    assert [m.body for m in q.reserve()] == [b"a"]


# -- includes and the function library --------------------------------------------------------


def test_includes_are_emitted_once_each_after_what_they_include():
    includes = {"clock": "local c = 1", "record": '-- @include "clock"\nlocal r = c',
                "queue": '-- @include "record"\n-- @include "clock"\nlocal q = r'}
    scripts, lib = build({"put-1.lua": '-- @include "queue"\n-- @include "clock"\nreturn q'}, includes)
    put = scripts["put"]
    assert put.includes == ("clock", "record", "queue")
    assert put.text == "local c = 1\nlocal r = c\nlocal q = r\nreturn q"
    assert lib.code.count("local c = 1") == 1 and lib.functions == {"put": f"{lib.name}_put"}


def test_an_include_cycle_is_refused_with_its_path():
    includes = {"a": '-- @include "b"\n', "b": '-- @include "a"\n'}
    with pytest.raises(ValueError, match="include cycle: a -> b -> a"):
        build({"x-1.lua": '-- @include "a"\nreturn 1'}, includes)


def test_the_library_is_named_after_its_code():
    first = build({"x-1.lua": "return 1"}, {})[1]
    second = build({"x-1.lua": "return 2"}, {})[1]
    assert first.name != second.name and first.code.startswith(f"#!lua name={first.name}\n")


def test_redis_7_runs_the_scripts_as_functions(redis_url, library_names):
    with redis.Redis.from_url(redis_url) as client:
        client.function_flush()
        engine = Engine(client)
        engine.load_scripts()
        assert engine.scripts.functions is True
        assert library_names(client) == [library().name.encode()]
        engine.queue("p", "q").put(["a"])
        assert client.info("commandstats").get("cmdstat_fcall", {}).get("calls", 0) >= 1


def test_redis_7_runs_the_scripts_as_functions_through_the_asyncio_engine(redis_url, library_names):
    """The asyncio engine packs its own commands (engine/autopipeline.py): FUNCTION LOAD must
    still reach Redis as two words."""

    async def put_one() -> bool | None:
        client = aioredis.Redis.from_url(redis_url)
        engine = AsyncEngine(client)
        try:
            await engine.load_scripts()
            await engine.queue("p", "q").put(["a"])
            return engine.scripts.functions
        finally:
            await engine.aclose()
            await client.aclose()

    with redis.Redis.from_url(redis_url) as client:
        client.function_flush()
        client.config_resetstat()
        assert asyncio.run(put_one()) is True
        assert library_names(client) == [library().name.encode()]
        stats = client.info("commandstats")
        assert stats["cmdstat_fcall"]["calls"] == 1 and "cmdstat_evalsha" not in stats


def test_redis_6_2_runs_the_scripts_by_sha(redis62_url):
    with redis.Redis.from_url(redis62_url) as client:
        client.flushall()
        client.config_resetstat()
        engine = Engine(client)
        q = engine.queue("p", "q")
        q.put(["a"])
        assert engine.scripts.functions is False
        client.script_flush()  # what a restart does
        assert [m.body for m in q.reserve()] == [b"a"]
        assert client.info("commandstats")["cmdstat_evalsha"]["calls"] >= 2


def test_redis_6_2_taken_for_7_falls_back_to_scripts_by_sha(redis62_url):
    """The sync engine sends FCALL at once when it believes Redis has functions; on Redis 6.2
    (a failed load, a proxy) the error brings it back to EVALSHA, even when another thread learnt
    that first: the fallback is decided from the command that was sent."""
    with redis.Redis.from_url(redis62_url) as client:
        client.flushall()
        engine = Engine(client)
        engine.scripts.functions = True
        direct = engine._direct
        assert direct is not None

        class LearntMeanwhile:
            def execute(self, c, command):
                try:
                    return direct.execute(c, command)
                finally:
                    if command[0] == "FCALL":
                        engine.scripts.functions = False  # as another thread's call would

        engine._direct = LearntMeanwhile()
        q = engine.queue("p", "q")
        q.put(["a"])
        engine._direct, engine.scripts.functions = direct, True
        [m] = q.reserve()
        assert m.body == b"a" and engine.scripts.functions is False
        assert q.settle(deletes=[(m.id, m.reservation_id)]).deleted == ["ok"]


def test_functions_are_loaded_again_after_redis_forgot_them(real_engine, redis_client, library_names):
    q = real_engine.queue("p", "q")
    q.put(["a"])
    redis_client.function_flush()  # a restart without persistence
    assert [m.body for m in q.reserve()] == [b"a"]
    assert library_names(redis_client) == [library().name.encode()]


def test_the_profiles_stages_stop_at_points_the_scripts_still_have(monkeypatch):
    """bench/profile.py cuts the hot scripts before marker texts to say where a call's
    instructions go: a script edited without its marker would stop the benchmark's run."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2]))
    from bench.profile import STAGES, cut_library

    for verb, stages in STAGES.items():
        for _, marker in stages:
            assert cut_library(verb, marker).code

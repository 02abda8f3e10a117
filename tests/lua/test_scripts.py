"""Every lua/*.lua keeps its contract: a header listing its KEYS, ARGV, return value and error
codes; the key count in its file name matches; it loads into a real Redis."""

from __future__ import annotations

import re

import pytest
import redis

from ferrymq.engine.errors import SCRIPT_ERROR_CODES
from ferrymq.engine.scripts import sources

SCRIPTS = sorted(sources().values(), key=lambda s: s.verb)
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
    assert max(used) == script.numkeys


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s.verb)
def test_every_error_code_in_the_header_exists_in_the_engine(script):
    errors = header(script.raw).split("Errors:", 1)[1]
    codes = set(re.findall(r"\b[A-Z][A-Z_]{2,}\b", errors))
    assert codes <= SCRIPT_ERROR_CODES, codes - SCRIPT_ERROR_CODES
    replied = set(re.findall(r'error_reply\("([A-Z_]+)', script.text))
    assert replied <= codes, f"replies {replied - codes} without documenting them"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s.verb)
def test_no_key_name_is_built_inside_lua(script):
    # Keys come from KEYS only (cluster slots); the prefix never appears in a script.
    assert "fmq:" not in script.text


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s.verb)
def test_script_loads_into_redis(script, redis_client: redis.Redis):
    sha = redis_client.script_load(script.text)
    assert redis_client.script_exists(sha) == [True]


def test_scripts_reload_after_the_script_cache_is_flushed(real_engine, redis_client):
    q = real_engine.queue("p", "q")
    q.put(["a"])
    redis_client.script_flush()  # what a Redis restart or failover does
    assert [m.body for m in q.reserve()] == [b"a"]

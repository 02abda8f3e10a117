"""The `ferrymq` command, run through the installed console script."""

from __future__ import annotations

import hashlib

import pytest

from ferrymq.server.embedded import EmbeddedRedis

PROJECT = "000000000000000000000001"


@pytest.mark.parametrize("command", [
    [], ["serve"], ["tokens"], ["tokens", "add"], ["tokens", "list"], ["tokens", "revoke"],
], ids=lambda command: " ".join(command) or "ferrymq")
def test_every_command_has_help(ferrymq, command):
    result = ferrymq(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: ferrymq {' '.join(command)}".rstrip())


def test_version_prints_the_package_version(ferrymq):
    from importlib.metadata import version

    result = ferrymq("--version")
    assert (result.returncode, result.stdout.strip()) == (0, version("ferrymq"))


def test_tokens_add_prints_the_new_token_once_and_list_shows_only_its_id(ferrymq, redis_client, redis_url):
    added = ferrymq("tokens", "add", PROJECT, "--redis-url", redis_url)
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip()
    assert len(token) >= 24
    listed = ferrymq("tokens", "list", "--redis-url", redis_url)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == [hashlib.sha256(token.encode()).hexdigest()[:12], PROJECT]
    assert token not in listed.stdout + listed.stderr


def test_tokens_add_with_a_given_token_stores_a_slow_salted_digest_of_it(ferrymq, redis_client, redis_url):
    """A token a person chose may be guessable: its digest must not be a fast, unsalted one that a
    leaked Redis dump lets anyone test guesses against at GPU speed."""
    added = ferrymq("tokens", "add", PROJECT, "--token", "my-own-token", env={"FERRYMQ_REDIS_URL": redis_url})
    assert (added.returncode, added.stdout.strip()) == (0, "my-own-token")
    fast = {hashlib.sha256(b"my-own-token").hexdigest().encode(), hashlib.sha1(b"my-own-token").hexdigest().encode()}
    stored = {field for key in redis_client.keys("fmq:tokens*") if redis_client.type(key) == b"hash"
              for field in redis_client.hkeys(key)}
    assert stored and not stored & fast
    listed = ferrymq("tokens", "list", "--redis-url", redis_url)
    assert listed.stdout.split()[1:] == [PROJECT, "(chosen)"]


def test_tokens_revoke_by_id_removes_the_token_and_a_second_revoke_exits_1(ferrymq, redis_client, redis_url):
    ferrymq("tokens", "add", PROJECT, "--token", "gone-soon", "--redis-url", redis_url)
    token_id = ferrymq("tokens", "list", "--redis-url", redis_url).stdout.split()[0]
    revoked = ferrymq("tokens", "revoke", token_id, "--redis-url", redis_url)
    assert revoked.returncode == 0, revoked.stderr
    assert ferrymq("tokens", "list", "--redis-url", redis_url).stdout == ""
    again = ferrymq("tokens", "revoke", "gone-soon", "--redis-url", redis_url)
    assert again.returncode == 1
    assert "no token matches" in again.stderr
    assert "gone-soon" not in again.stdout + again.stderr


def test_tokens_use_the_embedded_redis_of_the_data_dir_and_stop_it_after(ferrymq, tmp_path):
    data_dir = str(tmp_path / "data")
    added = ferrymq("tokens", "add", PROJECT, "--token", "kept-token", "--data-dir", data_dir)
    assert added.returncode == 0, added.stderr
    assert EmbeddedRedis(data_dir).running_url() is None  # started for the command only
    listed = ferrymq("tokens", "list", env={"FERRYMQ_DATA_DIR": data_dir})
    assert listed.stdout.split()[1:] == [PROJECT, "(chosen)"]


def test_a_token_option_without_a_project_exits_2_without_echoing_it(ferrymq):
    result = ferrymq("serve", "--token", "secret-without-project")
    assert result.returncode == 2
    assert "TOKEN:PROJECT" in result.stderr
    assert "secret-without-project" not in result.stderr


def test_a_bad_setting_in_the_environment_exits_2(ferrymq):
    result = ferrymq("tokens", "list", env={"FERRYMQ_APPENDFSYNC": "sometimes"})
    assert result.returncode == 2
    assert "FERRYMQ_APPENDFSYNC" in result.stderr


@pytest.mark.parametrize("value", ["0", "17", "three"])
def test_default_partitions_outside_1_to_16_exit_2_and_say_the_range(ferrymq, value):
    from_env = ferrymq("tokens", "list", env={"FERRYMQ_DEFAULT_PARTITIONS": value})
    assert from_env.returncode == 2
    assert "FERRYMQ_DEFAULT_PARTITIONS must be a whole number from 1 to 16" in from_env.stderr
    option = ferrymq("serve", "--default-partitions", value)
    assert option.returncode == 2 and "--default-partitions" in option.stderr


def test_tokens_without_a_subcommand_exits_2(ferrymq):
    assert ferrymq("tokens").returncode == 2


def test_an_unreachable_redis_exits_1_with_a_clear_error(ferrymq):
    result = ferrymq("tokens", "list", "--redis-url", "redis://127.0.0.1:1/0")
    assert result.returncode == 1
    assert result.stderr.startswith("ferrymq: error:")
    assert "127.0.0.1:1" in result.stderr
    assert "Traceback" not in result.stderr


def test_tokens_list_of_an_empty_store_says_how_to_add_one(ferrymq, redis_client, redis_url):
    result = ferrymq("tokens", "list", "--redis-url", redis_url)
    assert (result.returncode, result.stdout) == (0, "")
    assert "ferrymq tokens add PROJECT" in result.stderr


def test_a_redis_url_of_an_unknown_scheme_exits_2(ferrymq):
    result = ferrymq("tokens", "list", "--redis-url", "notaurl://x")
    assert result.returncode == 2
    assert "redis://" in result.stderr


@pytest.mark.parametrize("command", ["serve", "pusher"])
def test_a_push_allow_that_is_no_network_nor_host_exits_2(ferrymq, command):
    result = ferrymq(command, "--push-allow", "10.0.0.0/8", "--push-allow", "not a host!")
    assert result.returncode == 2
    assert "'not a host!' is neither a network (CIDR) nor a host name" in result.stderr
    from_env = ferrymq(command, env={"FERRYMQ_PUSH_ALLOW": "10.0.0.0/8,bad/host/33"})
    assert from_env.returncode == 2 and "'bad/host/33'" in from_env.stderr

"""The queue and message commands of `ferrymq`, through the console script, on a real Redis."""

from __future__ import annotations

import json
import re

import pytest

from ferrymq.engine import Engine

PROJECT = "000000000000000000000001"


@pytest.fixture
def engine(redis_client):
    """The same Redis, seen through the engine (to check what the commands did)."""
    return Engine(redis_client)


def stdout_json(result):
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("command", [
    ["queues"], ["queues", "list"], ["queues", "info"], ["queues", "create"], ["queues", "update"], ["queues", "delete"],
    ["queues", "clear"], ["queues", "retry-stuck"], ["put"], ["get"], ["peek"],
], ids=" ".join)
def test_every_queue_command_has_help(ferrymq, command):
    result = ferrymq(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: ferrymq {' '.join(command)}")
    assert "--redis-url" in result.stdout or command == ["queues"]


def test_the_top_level_help_lists_the_queue_commands(ferrymq):
    result = ferrymq("--help")
    assert result.returncode == 0, result.stderr
    assert {"serve", "tokens", "queues", "put", "get", "peek"} <= set(re.findall(r"^    (\w+)", result.stdout, re.M))


def test_a_queue_subcommand_is_required_and_an_unknown_option_exits_2(ferrymq):
    bare = ferrymq("queues")
    assert bare.returncode == 2 and "usage: ferrymq queues" in bare.stderr
    unknown = ferrymq("peek", "orders", "--no-such-option")
    assert unknown.returncode == 2 and "unrecognized arguments: --no-such-option" in unknown.stderr


def test_put_prints_the_ids_and_peek_shows_the_bodies_in_order(ferrymq, engine):
    put = ferrymq("put", "orders", "first", "second body")
    assert put.returncode == 0, put.stderr
    ids = put.stdout.split()
    assert [m.id for m in engine.queue(PROJECT, "orders").peek(10)] == ids
    assert "put 2 message(s) on queue orders" in put.stderr
    peek = ferrymq("peek", "orders", "-n", "5")
    assert peek.returncode == 0, peek.stderr
    header, *rows = peek.stdout.splitlines()
    assert header.split() == ["ID", "DELIVERIES", "RESERVATION", "BODY"]
    assert [row.split(maxsplit=3) for row in rows] == [[ids[0], "0", "-", "first"], [ids[1], "0", "-", "second body"]]


def test_put_from_stdin_puts_one_message_a_line_and_skips_empty_lines(ferrymq, engine):
    result = stdout_json(ferrymq("put", "lines", "--json", stdin="one\n\ntwo\r\nthree"))
    assert result["queue"] == "lines" and len(result["ids"]) == 3
    assert [m.body for m in engine.queue(PROJECT, "lines").peek(10)] == [b"one", b"two", b"three"]


def test_put_from_a_file_shows_a_progress_bar_to_100_percent(ferrymq, engine, tmp_path):
    source = tmp_path / "bodies.txt"
    source.write_text("".join(f"message {i}\n" for i in range(250)))
    result = ferrymq("put", "bulk", "--file", str(source), "--progress")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.split()) == 250
    assert "100%  250 message(s)" in result.stderr
    assert engine.queue(PROJECT, "bulk").info().size == 250
    quiet = ferrymq("put", "bulk", "--file", str(source))  # not a terminal: no bar by default
    assert "%" not in quiet.stderr


def test_put_of_an_empty_stdin_puts_nothing(ferrymq):
    result = ferrymq("put", "orders", stdin="")
    assert (result.returncode, result.stdout) == (0, "")
    assert "put 0 message(s)" in result.stderr


def test_get_reserves_and_a_second_get_takes_the_next_message(ferrymq, engine):
    engine.queue(PROJECT, "jobs").put(["a", "b", "c"])
    first = stdout_json(ferrymq("get", "jobs", "--json"))
    assert [(m["body"], m["status"], m["reserved_count"]) for m in first] == [("a", "reserved", 1)]
    assert first[0]["reservation_id"]
    second = stdout_json(ferrymq("get", "jobs", "-n", "5", "--timeout", "30", "--json"))
    assert [m["body"] for m in second] == ["b", "c"]
    info = engine.queue(PROJECT, "jobs").info()
    assert (info.ready, info.reserved) == (0, 3)


def test_get_with_delete_removes_the_messages_and_an_empty_queue_says_so(ferrymq, engine):
    engine.queue(PROJECT, "jobs").put(["only"])
    taken = ferrymq("get", "jobs", "--delete")
    assert taken.returncode == 0, taken.stderr
    assert taken.stdout.splitlines()[1].split()[-1] == "only"
    assert engine.queue(PROJECT, "jobs").info().size == 0
    empty = ferrymq("get", "jobs")
    assert (empty.returncode, empty.stdout) == (0, "")
    assert "no message was ready" in empty.stderr


def test_queues_list_shows_counts_as_a_table_and_as_json(ferrymq, engine):
    engine.queue(PROJECT, "a-queue").put(["1", "2", "3"])
    engine.queue(PROJECT, "a-queue").reserve(1)
    engine.queue(PROJECT, "b-queue").create(delay=60)
    engine.queue(PROJECT, "b-queue").put(["later"])
    engine.queue("000000000000000000000002", "other-project").put(["x"])
    table = ferrymq("queues", "list")
    assert table.returncode == 0, table.stderr
    assert [line.split() for line in table.stdout.splitlines()] == [
        ["QUEUE", "SIZE", "READY", "DELAYED", "RESERVED"], ["a-queue", "3", "2", "0", "1"], ["b-queue", "1", "0", "1", "0"]]
    listed = stdout_json(ferrymq("queues", "list", "--json"))
    assert [(q["name"], q["size"], q["counters"]["put"]) for q in listed] == [("a-queue", 3, 3), ("b-queue", 1, 1)]


def test_queues_list_of_a_project_without_queues_says_so(ferrymq):
    result = ferrymq("queues", "list")
    assert (result.returncode, result.stdout) == (0, "")
    assert f"project {PROJECT} has no queues" in result.stderr


def test_queues_create_applies_settings_and_info_reports_them(ferrymq, engine):
    created = ferrymq("queues", "create", "work", "--timeout", "15", "--max-deliveries", "3",
                      "--dead-letter-queue", "work-dead", "--paused", "--json")
    info = stdout_json(created)
    assert info["name"] == "work" and info["size"] == 0
    settings = {name: info["settings"][name] for name in ("timeout", "max_deliveries", "dead_letter_queue", "paused")}
    assert settings == {"timeout": 15.0, "max_deliveries": 3, "dead_letter_queue": "work-dead", "paused": True}
    assert engine.queue(PROJECT, "work").info().settings.timeout == 15.0
    shown = ferrymq("queues", "info", "work")
    assert shown.returncode == 0, shown.stderr
    fields = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in shown.stdout.splitlines())
    assert (fields["timeout"], fields["dead letter queue"], fields["paused"]) == ("15 s", "work-dead", "yes")


def test_queues_update_changes_partitions_and_refuses_nonsense(ferrymq, engine):
    created = stdout_json(ferrymq("queues", "create", "wide", "--partitions", "2", "--json"))
    assert created["settings"]["partitions"] == 2
    engine.queue(PROJECT, "wide").put(["a"]), engine.queue(PROJECT, "wide").put(["b"])
    updated = ferrymq("queues", "update", "wide", "--partitions", "3")
    assert updated.returncode == 0, updated.stderr
    fields = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in updated.stdout.splitlines())
    assert (fields["partitions"], fields["size"]) == ("3", "2")
    assert engine.queue(PROJECT, "wide").info().settings.partitions == 3
    too_many = ferrymq("queues", "update", "wide", "--partitions", "17")
    assert too_many.returncode == 2 and "must be between 1 and 16" in too_many.stderr
    nothing = ferrymq("queues", "update", "wide")
    assert nothing.returncode == 2 and "nothing to change" in nothing.stderr
    missing = ferrymq("queues", "update", "absent", "--partitions", "2")
    assert missing.returncode == 1 and f"no queue 'absent' in project {PROJECT}" in missing.stderr


def test_a_queue_a_command_creates_gets_the_default_partitions_of_the_environment(ferrymq, engine):
    put = ferrymq("put", "spread", "a", "b", "c", env={"FERRYMQ_DEFAULT_PARTITIONS": "3"})
    assert put.returncode == 0, put.stderr
    assert engine.queue(PROJECT, "spread").info().settings.partitions == 3
    assert len({line[19:] for line in put.stdout.split()}) == 1  # one call, one partition


def test_creating_an_existing_queue_exits_1(ferrymq, engine):
    engine.queue(PROJECT, "taken").create()
    result = ferrymq("queues", "create", "taken")
    assert result.returncode == 1
    assert result.stderr.strip() == f"ferrymq: error: queue 'taken' already exists in project {PROJECT}"


def test_an_invalid_setting_exits_2_and_names_it(ferrymq, engine):
    result = ferrymq("queues", "create", "bad", "--timeout", "0")
    assert result.returncode == 2
    assert "timeout must be between" in result.stderr
    assert engine.count_queues(PROJECT) == 0


def test_clear_reports_how_many_were_removed_and_keeps_the_queue(ferrymq, engine):
    engine.queue(PROJECT, "full").put([str(i) for i in range(7)])
    result = stdout_json(ferrymq("queues", "clear", "full", "--json"))
    assert result == {"queue": "full", "removed": 7}
    assert engine.queue(PROJECT, "full").info().size == 0


def test_delete_removes_the_queue_and_deleting_a_missing_one_exits_1(ferrymq, engine):
    engine.queue(PROJECT, "gone").put(["x"])
    deleted = ferrymq("queues", "delete", "gone")
    assert deleted.returncode == 0, deleted.stderr
    assert engine.count_queues(PROJECT) == 0
    again = ferrymq("queues", "delete", "gone")
    assert again.returncode == 1
    assert again.stderr.strip() == f"ferrymq: error: no queue 'gone' in project {PROJECT}"


def test_the_project_comes_from_the_option_before_the_environment(ferrymq, engine):
    result = ferrymq("put", "elsewhere", "x", "--project", "another-project")
    assert result.returncode == 0, result.stderr
    assert engine.count_queues("another-project") == 1
    assert engine.count_queues(PROJECT) == 0


def test_a_queue_command_without_a_project_exits_2(ferrymq):
    result = ferrymq("queues", "list", env={"FERRYMQ_PROJECT": ""})
    assert result.returncode == 2
    assert "--project PROJECT or set FERRYMQ_PROJECT" in result.stderr


def test_an_unreachable_redis_exits_1_without_a_traceback(ferrymq):
    result = ferrymq("peek", "orders", "--redis-url", "redis://127.0.0.1:1/0")
    assert result.returncode == 1
    assert result.stderr.startswith("ferrymq: error: Redis is unavailable")
    assert "Traceback" not in result.stderr


# -- projects and their quotas -------------------------------------------------------------------


def test_projects_set_limits_and_list_show_limits_and_usage(ferrymq, engine):
    engine.queue(PROJECT, "a").put(["x"] * 3)
    engine.sweep()
    changed = ferrymq("projects", "set-limits", PROJECT, "--queues", "5", "--messages", "3", "--json")
    assert stdout_json(changed)["limits"]["queues"] == 5 and stdout_json(changed)["custom"] == ["messages", "queues"]
    engine.sweep()
    listed = ferrymq("projects", "list")
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()
    assert header.split() == ["PROJECT", "QUEUES", "MESSAGES", "BYTES", "SUBSCRIPTIONS", "OVER"]
    assert row.split()[:3] == [PROJECT, "1/5*", "3/3*"] and row.split()[-1] == "messages"
    queues = ferrymq("queues", "list")
    assert f"project {PROJECT}: 1 of 5 queues, 3 of 3 messages" in queues.stderr
    assert "over its messages quota" in queues.stderr
    back = ferrymq("projects", "set-limits", PROJECT, "--messages", "default")
    assert back.returncode == 0, back.stderr
    assert engine.project_usage(PROJECT).custom == frozenset({"queues"})


def test_projects_set_limits_refuses_nonsense(ferrymq):
    for args in (["--queues", "-1"], ["--ids-per-request", "5"], ["--bytes", "lots"], []):
        result = ferrymq("projects", "set-limits", PROJECT, *args)
        assert result.returncode == 2, (args, result.stderr)
def test_info_shows_transfers_set_aside_and_retry_stuck_moves_them_again(ferrymq, engine, redis_client):
    queue = engine.queue(PROJECT, "work")
    queue.create()
    redis_client.rpush(f"fmq:{{{PROJECT}/work}}:outbox", b"dlq\tbad\x01name\tref\nbody")  # cannot be moved
    queue.maintain()
    shown = ferrymq("queues", "info", "work")
    assert shown.returncode == 0, shown.stderr
    fields = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in shown.stdout.splitlines())
    assert fields["stuck transfers"].startswith("1 (latest: dlq to 'bad\\x01name': queue must be 1 to 255")
    assert stdout_json(ferrymq("queues", "info", "work", "--json"))["stuck"] == 1
    retried = ferrymq("queues", "retry-stuck", "work")
    assert retried.returncode == 1  # the cause is not fixed: set aside again
    assert "0 of 1 stuck transfer(s) moved" in retried.stderr
    assert queue.info().stuck == 1

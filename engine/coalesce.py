"""Coalescing: single-message calls of a common case's script on one queue, made concurrently,
merged into one call of that script, and its reply split back into what each call would have
answered. Sans-IO: the asyncio engine decides what is concurrent (the calls of one turn of its
event loop, aio.py) and sends; this module only merges and splits.

Theory of operation: a script call has a fixed cost in Redis (~25k instructions to call a
function with its keys, ~20k to open the queue: bench/RESULTS.md's profile) that a batch pays
once. Sixteen consumers of one queue each putting, taking or deleting one message pay it sixteen
times. Merged, the calls of one turn are one batch:

- ``put_ready``, and ``put`` into an existing queue: the messages of every call, in the order of
  the calls; each gets its id, and where the calls asked for the backlog (Cloudflare's push),
  the backlog after them all (a moment each could have seen, concurrent with the others).
- ``reserve_ready`` of one message each, with the same timeout and delete flag: one reserve of
  as many messages, each under the reservation id of the call it goes to (ARGV[7]: one token per
  message), so no caller can act on another's reservation. Messages go to the calls in order;
  where the queue had fewer, the calls left without one are told to look again at once
  (``next_at`` = now): their own call would have found the queue empty and said when to look
  again, which the merged call, having taken something, did not compute.
- ``delete_reserved`` of one message: every delete with its own reservation id ("" then id and
  mark pairs); each gets its status. A delete under whatever reservation ("*") of a message
  found not reserved gets FULL, as alone (then settle decides, knowing ready from delayed from
  gone), nothing done for it. Ids must be distinct across the calls (the script keeps no table
  of ids seen): calls that repeat an id are not merged.

The merged call is as atomic as each was, and each caller sees a reply its own call could have
had, had the calls run one after the other in that order. A reply that is not a success (FULL:
the queue needs the full script; an error reply) is handed to every caller as it is, and each goes
on alone from there, as it would have. Only calls that already share everything but their messages
merge (``group``): same script, same queue (its keys all follow from the first), same options.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .core import Eval
from .replies import BACKLOG_VALUES, FULL, OUTBOX_PENDING, PUSHED
from .verbs.messages import RESERVE_READY_DEFAULTS

FIRST_CALLERS_FLAGS = OUTBOX_PENDING | PUSHED
"""Flags of a merged reply that only one caller gets: the first still waiting (``split``)."""
UNDECIDED = -2
"""delete_reserved's status for a delete under whatever reservation ("*") of a message it found
not reserved, in a merged call: nothing done for it. Its caller gets FULL (not lasting), as the
script answers such a delete sent alone, and settle decides."""


def group(step: Eval) -> tuple[Any, ...] | None:
    """What calls must share to merge with ``step`` (hashable), or None if it merges with none:
    only calls of one message merge."""
    verb, args = step.verb, step.args
    if verb == "put_ready":
        if len(args) == 4:  # now, channel, then the options and body of one message
            return verb, step.keys[0], args[1], args[0] == ""  # the channel; whether Redis reads the time
    elif verb == "put":
        # now, K, channel, mode, backlog, n = 1, then one message's options and body; into an
        # existing queue (a creating or transferring put has arguments after, and goes alone)
        if len(args) == 8 and args[5] == 1 and (args[3] == "existing" or args[3].startswith("=")):
            return verb, step.keys[0], *args[1:5], args[0] == ""
    elif verb == "reserve_ready":
        if len(args) == 3:  # now, K, token: one message, the defaults otherwise
            return verb, step.keys[0], args[1], args[0] == ""
        n, timeout, delete = _reserve_options(args)
        if n == 1:
            return verb, step.keys[0], args[1], timeout, delete, args[0] == ""
    elif verb == "delete_reserved":
        if len(args) == 3 or len(args) == 4 and args[1] == "":  # now, mark, id; or now, "", id, mark
            return verb, step.keys[0], args[0] == ""
    return None


def mergeable(steps: Sequence[Eval]) -> bool:
    """Whether ``steps`` (of one ``group``) can be one call: deletes of distinct ids."""
    if steps[0].verb != "delete_reserved":
        return True
    ids = {step.args[2] for step in steps}
    return len(ids) == len(steps)


def merge(steps: Sequence[Eval]) -> Eval:
    """One call doing what ``steps`` (of one ``group``, ``mergeable``) do, in their order. Its
    now is the last one's (they were made in one turn of the loop, in that order)."""
    first, verb, now = steps[0], steps[0].verb, steps[-1].args[0]
    if verb in ("put_ready", "put"):
        args = [now, *first.args[1:2]] if verb == "put_ready" else [now, *first.args[1:5], len(steps)]
        fixed = len(args)
        for step in steps:
            args += step.args[fixed:]
    elif verb == "reserve_ready":
        _, timeout, delete = _reserve_options(first.args)
        tokens = [step.args[2] for step in steps]
        args = [now, first.args[1], "".join(tokens), len(steps), timeout, delete, len(tokens[0])]
    else:
        args = [now, ""]
        for step in steps:
            args += (step.args[2], step.args[1]) if step.args[1] else step.args[2:]
    return Eval(verb, first.keys, args, messages=len(steps))


def split(steps: Sequence[Eval], reply: Any, waiting: Sequence[bool] | None = None) -> list[Any]:
    """The reply of each of ``steps`` from ``reply``, their merged call's. The work its flags
    leave to the caller (dead letters to move, a push queue to list) is one caller's alone (done
    by every one, each dead letter's event went out once per caller): the first of those still
    ``waiting`` for their share (default: all) that gets a reply of its own (not FULL). A caller
    that gave up after the send does none of it: left to one, the others' messages were not
    listed for the pushers until the queue's next put."""
    if isinstance(reply, Exception) or reply[0] == FULL:
        return [reply] * len(steps)
    shares = _shares(steps, reply)
    doer = next((i for i, share in enumerate(shares) if share[0] != FULL and (waiting is None or waiting[i])), None)
    for i, share in enumerate(shares):
        if i != doer and share[0] != FULL:
            share[0] &= ~FIRST_CALLERS_FLAGS
    return shares


def _shares(steps: Sequence[Eval], reply: list[Any]) -> list[list[Any]]:
    verb = steps[0].verb
    if verb in ("put_ready", "put"):  # flags, now, created, queue_id, [backlog], ids...: one each
        fixed = 4 + (BACKLOG_VALUES if verb == "put" and steps[0].args[4] == "1" else 0)
        head = reply[:fixed]
        return [[*head, message_id] for message_id in reply[fixed:]]
    if verb == "delete_reserved":  # flags, statuses...: one each
        return [[reply[0], status] if status != UNDECIDED else [FULL, 0] for status in reply[1:]]
    flags, now, next_at, rows = reply[0], reply[1], reply[2], reply[3:]  # (id, record, deliveries)...
    if rows:
        next_at = now  # for the calls left empty-handed: look again at once
    return [[flags, now, -1, *rows[3 * i : 3 * i + 3]] if 3 * i < len(rows) else [flags, now, next_at]
            for i in range(len(steps))]


def _reserve_options(args: Sequence[Any]) -> tuple[Any, ...]:
    """reserve_ready's (n, timeout, delete) as sent, the defaults where not sent."""
    return (*args[3:6], *RESERVE_READY_DEFAULTS[len(args) - 3:])

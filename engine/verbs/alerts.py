"""Queue-size alerts (IronMQ's): at most 5 a queue, no duplicates, no progressive cycle. On a
partitioned queue every partition reports its size to partition 0, which decides."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

import orjson

from .. import core
from ..core import Eval, Verb
from ..errors import AlertNotFound, InvalidArgument
from ..models import Alert, QueueInfo
from .context import QueueBase


class Alerts(QueueBase):
    """A queue's size alerts."""

    __slots__ = ()

    def add_alerts(self, alerts: Sequence[Alert], *, create: bool = True) -> Verb[QueueInfo]:
        """Add alerts (creating the queue if needed, unless ``create=False``: ``QueueNotFound``). Refused: a duplicate of an existing alert
        (type, direction and trigger), more than 5 in all, a progressive cycle."""

        def change(current: list[Alert]) -> list[Alert]:
            known = {(c.type, c.direction, c.trigger) for c in current}
            if any((a.type, a.direction, a.trigger) in known for a in alerts):
                raise InvalidArgument("alerts", "At least one new alert duplicates current queue alerts.")
            return [*current, *alerts]

        return (yield from self._change_alerts(change, create=create))

    def replace_alerts(self, alerts: Sequence[Alert], *, create: bool = True) -> Verb[QueueInfo]:
        """Replace every alert ([] removes them all); ``create`` as for add_alerts."""
        return (yield from self._change_alerts(lambda current: list(alerts), create=create))

    def remove_alerts(self, alert_ids: Sequence[str], *, create: bool = True) -> Verb[QueueInfo]:
        """Remove alerts by id (unknown ids are skipped); ``create`` as for add_alerts."""
        gone = set(alert_ids)
        return (yield from self._change_alerts(lambda current: [a for a in current if a.id not in gone], create=create))

    def remove_alert(self, alert_id: str) -> Verb[QueueInfo]:
        """Remove one alert; ``AlertNotFound`` if the queue has none with this id."""

        def change(current: list[Alert]) -> list[Alert]:
            if alert_id not in {a.id for a in current}:
                raise AlertNotFound()
            return [a for a in current if a.id != alert_id]

        return (yield from self._change_alerts(change))

    def _change_alerts(self, change: Callable[[list[Alert]], list[Alert]], *, create: bool = True) -> Verb[QueueInfo]:
        """The alerts after ``change``, written only if nobody changed them meanwhile. Creates the
        queue if needed, unless ``create=False`` (then ``QueueNotFound``)."""

        def write(raw: str | None) -> Verb[QueueInfo]:
            alerts = change(list(core.decode_alerts(raw)))
            if len(alerts) > core.MAX_ALERTS:
                raise InvalidArgument("alerts", f"a queue may have at most {core.MAX_ALERTS} alerts")
            alerts = [a if a.id else dataclasses.replace(a, id=secrets.token_hex(12)) for a in alerts]
            for i, alert in enumerate(alerts):
                core.check_alert(alert, i, self.ctx.limits, self.name)  # before looking at other queues
            mode = "upsert" if create else "update"
            return (yield from self._write_transfers(
                core.transfer_targets(None, alerts),
                lambda: self._configure(mode, None, {"alerts": tuple(alerts)}, expect={"alerts": raw})))

        return (yield from self._rewrite("alerts", write, must_exist=not create))

    def _alert_size(self, mode: str, report: bytes = b"") -> Verb[None]:
        """lua/alert_size-10.lua: "report" this partition's size; "apply" (on partition 0) a
        partition's report, taken from its outbox. Then move what it left in the outbox."""
        flags = yield Eval("alert_size", self._core_keys, [self.ctx.clock.script_now(), mode, report])
        yield from self._after(flags)


def alert_body(queue: str, fired: dict[str, Any]) -> bytes:
    """The alert message IronMQ clients expect (a JSON object as the message body)."""
    moment = datetime.fromtimestamp(fired["at"] / 1000, timezone.utc)
    return orjson.dumps({
        "source_queue": queue, "queue_size": fired["size"], "alert_id": fired["id"],
        "alert_type": fired["type"], "alert_direction": fired["dir"], "alert_trigger": fired["trigger"],
        "created_at": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
    })

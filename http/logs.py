"""Logging rules of the server. Tokens never reach a log: uvicorn's access log prints the request
path with its query, and IronMQ clients (webhooks above all) put the token there as ``?oauth=``.

There is no access log unless ``--access-log`` (``FERRYMQ_ACCESS_LOG=1``). With ``--log-json``
(``FERRYMQ_LOG_JSON=1``) every log line is one JSON object, and uvicorn's access log gives way to
ours: one line per request with its id, method, route *template* (never the raw path, which
holds queue names and query tokens), status and duration.
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import datetime, timezone
from typing import Any
from urllib.parse import unquote_plus

import orjson

_QUERY_PAIR = re.compile(r"([?&])([^=&#\s]*)=([^&#\s]*)")
"""A name=value pair of a query string, its name still percent-encoded."""
ACCESS = "ferrymq.access"
"""The logger of our per-request lines (JSON mode only)."""
_access = logging.getLogger(ACCESS)
_access_on = False
"""``--access-log``: whether ``request_done`` logs at all (``install``)."""
_JSON_LOGGERS = ("ferrymq", "uvicorn")
"""Loggers whose lines become JSON (uvicorn.error writes through uvicorn's handler); uvicorn's
access logger is silenced instead: ours replaces it."""


def redact(text: str) -> str:
    """``text`` with the value of every ``oauth`` query parameter replaced, its name compared
    after percent-decoding and in any case (Starlette decodes ``?%6fauth=`` to ``oauth``)."""
    if "=" not in text:
        return text
    return _QUERY_PAIR.sub(_redact_pair, text)


def _redact_pair(pair: re.Match[str]) -> str:
    if unquote_plus(pair.group(2)).strip().lower() == "oauth":
        return f"{pair.group(1)}{pair.group(2)}=[redacted]"
    return pair.group(0)


class RedactTokens(logging.Filter):
    """Rewrites the arguments of a log record so no ``oauth=`` query value is printed."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        record.msg = redact(record.msg) if isinstance(record.msg, str) else record.msg
        return True


class JSONLines(logging.Formatter):
    """One JSON object per record: time, level, logger, message, and the record's ``fields``."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class Silence(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return False


def install(json_lines: bool = False, *, access_log: bool = False) -> None:
    """Idempotent: the redaction filter on uvicorn's access logger, JSON lines if asked, and
    our access lines (JSON mode) only if ``access_log`` (a flag of ours: a later logging
    configuration may re-enable loggers, not turn this on)."""
    global _access_on
    _access_on = access_log
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactTokens) for f in access.filters):
        access.addFilter(RedactTokens())
    if json_lines:
        use_json_lines()


def use_json_lines() -> None:
    """Runs after uvicorn configured its loggers (the app is built after), so it re-dresses them."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, Silence) for f in access.filters):
        access.addFilter(Silence())
    for name in _JSON_LOGGERS:
        logger = logging.getLogger(name)
        if not logger.handlers:
            logger.addHandler(logging.StreamHandler(sys.stderr))
            logger.propagate = False
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)
        for handler in logger.handlers:
            handler.setFormatter(JSONLines())


def request_done(request_id: str, method: str, route: str, status: int, seconds: float) -> None:
    """The access line of one request (with ``--access-log``, printed in JSON mode, where it
    replaces uvicorn's)."""
    if _access_on and _access.isEnabledFor(logging.INFO):
        fields = {"request_id": request_id, "method": method, "route": route, "status": status,
                  "duration_ms": round(seconds * 1000, 3)}
        _access.info("%s %s %s", method, route, status, extra={"fields": fields})

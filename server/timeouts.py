"""Slow clients: a connection may hold a server slot only while it makes progress.

uvicorn closes an idle keep-alive connection (``timeout_keep_alive``) and answers 503 beyond
``limit_concurrency`` connections, but it waits for ever on a connection that sends nothing, a
partial request head, or a partial body (checked in uvicorn 0.55: ``connection_made`` arms no
timer, and the keep-alive timer only runs between requests). Enough such connections and the
server, or its file descriptors, are all taken. So the HTTP protocol classes are wrapped here:

- the head of each request must be complete within ``header_timeout`` seconds of the
  connection (or of the first byte after the previous response): else ``408`` and close;
- its body within ``body_timeout`` seconds of the head: else ``408`` and close (the route
  waiting for it sees a disconnect, so nothing is half-stored).

Both are total times, not idle times: a byte every second does not keep a connection. They work
the same with either parser (httptools, h11): the wrapper looks only at what both protocols share
(``cycle``, its ``more_body`` and ``response_started``). The classes are module-level so uvicorn
can hand them (inside its Config) to worker processes. They also hand uvicorn their connection's
transport behind ``TurnWrites`` (server/writes.py): one send per response, not two.
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from .writes import TurnWrites

_MESSAGE = b"The request did not arrive in time"
REQUEST_TIMEOUT = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
                   b"content-length: " + str(len(_MESSAGE)).encode() + b"\r\nconnection: close\r\n\r\n" + _MESSAGE)


class ServerConfig(uvicorn.Config):
    """uvicorn's Config, with the two timeouts uvicorn lacks (None: no limit)."""

    def __init__(self, app: Any, *, header_timeout: float | None = None, body_timeout: float | None = None,
                 **options: Any) -> None:
        super().__init__(app, **options)
        self.header_timeout, self.body_timeout = header_timeout, body_timeout


class SlowClientGuard:
    """Mixed into a uvicorn HTTP protocol class (see the module docstring)."""

    cycle: Any
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    _timer: asyncio.TimerHandle | None = None

    def __init__(self, config: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)  # type: ignore[call-arg]
        self._header_timeout = getattr(config, "header_timeout", None)
        self._body_timeout = getattr(config, "body_timeout", None)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(TurnWrites(transport, self.loop))  # type: ignore[misc]
        self._arm(self._header_timeout)

    def eof_received(self) -> bool | None:
        # The client is done sending (a half-close: HTTP/1.0 clients, ``nc -N``): the transport
        # closes once this returns, so the answer held for the end of this turn goes out now.
        self.transport.flush()  # type: ignore[attr-defined]
        return super().eof_received()  # type: ignore[misc]

    def data_received(self, data: bytes) -> None:
        cycle = self.cycle
        super().data_received(data)  # type: ignore[misc]
        if self.transport.is_closing():
            self._disarm()
        elif self.cycle is not cycle:  # a head arrived: now its body has a deadline
            self._disarm()
            if self.cycle.more_body:
                self._arm(self._body_timeout)
        elif self.cycle is None or self.cycle.response_complete:
            if self._timer is None:  # the first bytes of the next head
                self._arm(self._header_timeout)
        elif not self.cycle.more_body:  # the body is complete: the app has it
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]

    def _arm(self, seconds: float | None) -> None:
        self._disarm()
        if seconds:
            self._timer = self.loop.call_later(seconds, self._timed_out)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _timed_out(self) -> None:
        """The head or body is late. Answer 408 unless the app already answered, and close;
        a route still waiting for the body sees the client go away."""
        self._timer = None
        cycle = self.cycle
        if self.transport.is_closing():
            return
        if cycle is not None and not cycle.response_complete and not cycle.more_body:
            return  # the body came in meanwhile: the app has the request now
        if cycle is None or cycle.response_complete or not cycle.response_started:
            self.transport.write(REQUEST_TIMEOUT)
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.close()


class GuardedH11Protocol(SlowClientGuard, H11Protocol):
    """h11 (pure Python), with the slow-client timeouts."""


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools is not installed: h11 serves
    GuardedHttpToolsProtocol: type | None = None
else:
    class GuardedHttpToolsProtocol(SlowClientGuard, HttpToolsProtocol):  # type: ignore[no-redef]
        """httptools (llhttp, in C), with the slow-client timeouts."""


def protocol(name: str = "auto") -> type:
    """The guarded protocol class for uvicorn's ``--http`` name: "httptools", "h11", or "auto"
    (httptools when it is installed, as uvicorn's own "auto")."""
    if name == "h11" or (name == "auto" and GuardedHttpToolsProtocol is None):
        return GuardedH11Protocol
    if name in ("httptools", "auto"):
        if GuardedHttpToolsProtocol is None:
            raise ValueError("httptools is not installed: pip install httptools, or use h11")
        return GuardedHttpToolsProtocol
    raise ValueError(f"unknown HTTP protocol {name!r}: httptools, h11 or auto")

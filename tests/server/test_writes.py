"""One send per response (server/writes.py): a turn's small writes leave together, in order, a
big one at once and uncopied; closing or ending the stream sends what is held first, aborting
drops it; and through uvicorn with both parsers, pipelined requests on one connection get every
answer, whole and in order, up to the one that closes it, and a client that half-closes after its
request still gets its answer."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from ferrymq.http.app import create_app
from ferrymq.server.serve import client_limits
from ferrymq.server.writes import HOLD_AT_MOST, TurnWrites


class Recording:
    """A transport that records what it is asked to send."""

    def __init__(self) -> None:
        self.sent: list[Any] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.sent.append(bytes(data))

    def write_eof(self) -> None:
        self.sent.append("EOF")

    def abort(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1234) if name == "peername" else default


def turns(*steps: Any) -> Recording:
    """Runs each step (a function of the TurnWrites) in a turn of its own; what was sent."""
    transport = Recording()

    async def main() -> None:
        writes = TurnWrites(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
        for step in steps:
            step(writes)
            await asyncio.sleep(0)  # the turn ends
            await asyncio.sleep(0)

    asyncio.run(main())
    return transport


def test_the_writes_of_one_turn_leave_as_one_send_in_order():
    def answer(w: TurnWrites) -> None:
        w.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        w.write(b"{}")

    assert turns(answer, lambda w: w.writelines([b"a", b"b"])).sent \
        == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}", b"ab"]


def test_closing_sends_what_is_held_first_and_nothing_leaves_after():
    def answer_and_close(w: TurnWrites) -> None:
        w.write(b"head")
        w.write(b"body")
        w.close()
        w.write(b"late")

    transport = turns(answer_and_close)
    assert (transport.sent, transport.closed) == ([b"headbody"], True)


def test_a_buffer_changed_after_its_write_is_sent_as_written():
    def write_then_change(w: TurnWrites) -> None:
        buffer = bytearray(b"abc")
        w.write(buffer)  # type: ignore[arg-type]
        buffer[:] = b"xyz"

    assert turns(write_then_change).sent == [b"abc"]


def test_a_big_write_leaves_at_once_with_what_was_held_before_it_and_is_not_copied():
    big = b"x" * (HOLD_AT_MOST + 1)
    sent_during_the_turn: list[Any] = []

    def head_then_big_body(w: TurnWrites) -> None:
        w.write(b"head")
        w.write(big)
        sent_during_the_turn.extend(w._transport.sent)  # type: ignore[attr-defined]
        w.write(b"next")

    transport = turns(head_then_big_body)
    assert sent_during_the_turn == [b"head", big]  # before the turn ended, and not joined
    assert transport.sent == [b"head", big, b"next"] and transport.sent[1] is big


def test_ending_the_stream_sends_what_is_held_first_and_aborting_drops_it():
    def answer_and_end(w: TurnWrites) -> None:
        w.write(b"head")
        w.write(b"body")
        w.write_eof()

    def answer_and_abort(w: TurnWrites) -> None:
        w.write(b"head")
        w.abort()

    assert turns(answer_and_end).sent == [b"headbody", "EOF"]
    aborted = turns(answer_and_abort)
    assert (aborted.sent, aborted.closed) == ([], True)


def test_a_write_of_something_not_bytes_like_is_refused_as_the_transport_would():
    async def main() -> None:
        TurnWrites(Recording(), asyncio.get_running_loop()).write(5)  # type: ignore[arg-type]

    with pytest.raises(TypeError):
        asyncio.run(main())


def test_everything_else_is_the_transports_own():
    async def main() -> Any:
        return TurnWrites(Recording(), asyncio.get_running_loop()).get_extra_info("peername")  # type: ignore[arg-type]

    assert asyncio.run(main()) == ("127.0.0.1", 1234)


@pytest.mark.parametrize("parser", ["httptools", "h11"])
def test_pipelined_requests_get_every_answer_up_to_the_one_that_closes(serve_app, server, parser):
    with serve_app(create_app(server.settings), **client_limits(server.settings, parser)) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            ping = b"GET /ping HTTP/1.1\r\nhost: x\r\n\r\n"
            sock.sendall(ping * 3 + b"GET /ping HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            received = b""
            while chunk := sock.recv(65536):
                received += chunk
    answers = received.split(b"HTTP/1.1 ")[1:]
    assert len(answers) == 4 and all(a.startswith(b"200 OK\r\n") for a in answers), received
    assert all(a.rstrip().endswith(b"}") for a in answers), received  # each body whole


@pytest.mark.parametrize("parser", ["httptools", "h11"])
def test_a_client_that_half_closes_after_its_request_gets_the_answer(serve_app, server, parser):
    with serve_app(create_app(server.settings), **client_limits(server.settings, parser)) as url:
        host, port = url.removeprefix("http://").split(":")
        answers = []
        for _ in range(20):  # the EOF and the answer often share a turn: each try is a chance to lose it
            with socket.create_connection((host, int(port)), timeout=10) as sock:
                sock.sendall(b"GET /ping HTTP/1.1\r\nhost: x\r\n\r\n")
                sock.shutdown(socket.SHUT_WR)
                received = b""
                while chunk := sock.recv(65536):
                    received += chunk
            answers.append(received)
    assert all(a.startswith(b"HTTP/1.1 200 OK\r\n") and a.rstrip().endswith(b"}") for a in answers), answers

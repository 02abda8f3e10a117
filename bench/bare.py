"""The limit of the HTTP stack: a bare Starlette app, served exactly as ``ferrymq serve`` serves
FerryMQ (same uvicorn settings, through ``ferrymq.server.serve``). Every HTTP row of the bench is
compared with it. ``python -m bench.bare PORT WORKERS``, from the repository root.

GET / answers a small JSON object; POST / parses a JSON body (an IronMQ post) and answers ids,
the way any lean Starlette app would: the framework's own Request and JSONResponse.
"""

from __future__ import annotations

import sys

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ferrymq.server.serve import run, uvicorn_config
from ferrymq.http.settings import Settings


async def get(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def post(request: Request) -> JSONResponse:
    doc = await request.json()
    ids = [str(i) for i, _ in enumerate(doc["messages"])]
    return JSONResponse({"ids": ids, "msg": "Messages put on queue."})


def create_app() -> Starlette:
    return Starlette(routes=[Route("/", get, methods=["GET"]), Route("/", post, methods=["POST"])])


if __name__ == "__main__":
    port, workers = (int(arg) for arg in sys.argv[1:3])
    run(uvicorn_config(Settings(port=port, workers=workers), app="bench.bare:create_app"))

"""The dashboard at ``/dashboard``: a token logs in and sees its own project's queues.

Server-rendered HTML; a little JavaScript (dashboard.js) polls for fresh fragments that
this module renders too (one renderer for the first paint and the updates), draws the put and
delete rates from the queues' counters, and asks before clearing or releasing.

The session is the token itself in a cookie (HttpOnly, SameSite=Strict, path /dashboard), checked
on every request like any token, so a revoked token logs the dashboard out within seconds. Actions
are POSTs that must carry the ``X-FerryMQ-Dashboard`` header, which a cross-site form cannot send;
login and logout (plain form posts) refuse requests a browser says come from another site.
Everything goes through the engine's verbs: ``stats`` for the list (one pipeline, no
maintenance) and ``project_usage`` for the quotas above it, ``info`` and ``peek`` for a queue,
``clear`` and ``release_reserved``.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from html import escape
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ferrymq.engine import Message, ProjectUsage, QueueInfo, QueueNotFound, QueueStats
from ferrymq.engine.aio import AsyncQueue

from ._common import JSON, auth, client_address, engine, human_bytes, query_params, read_body, settings
from .errors import Problem

BASE = "/dashboard"
COOKIE = "ferrymq_dashboard"
ACTION_HEADER = "x-ferrymq-dashboard"
SESSION_SECONDS = 8 * 3600
LISTED = 1000
"""Queues the list shows (one ``stats`` page); the rest are counted, not shown."""
PEEKED = 20
BODY_SHOWN = 300
"""Characters of a peeked body shown."""
HERE = Path(__file__).parent
ASSETS = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
}


# -- session -------------------------------------------------------------------------------------


async def project_of(request: Request) -> str | None:
    """The session's project. A stale cookie is no guess (the page polls with it): not counted."""
    return await auth(request).project_of(request.cookies.get(COOKIE))


async def logged_in(request: Request) -> str:
    project = await project_of(request)
    if project is None:
        raise Problem(401, "Log in again: the dashboard's token is missing, wrong or revoked")
    return project


def cross_site(request: Request) -> bool:
    """Whether a browser sent this request from a page of another site (or origin). Login and
    logout are plain form posts, which any page can make; a forged login would put the visitor
    in the attacker's project (login CSRF). Browsers say where a request comes from in
    ``Sec-Fetch-Site`` and ``Origin``; a client that sends neither is not a browser."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):  # "none": typed or bookmarked
        return True
    origin = request.headers.get("origin")
    return origin is not None and urlsplit(origin).netloc.lower() not in own_hosts(request)


def own_hosts(request: Request) -> set[str]:
    """host[:port] this dashboard is reached at: the Host header, and --public-url's."""
    hosts = {request.headers.get("host", "").lower()}
    public = settings(request).public_url
    if public:
        hosts.add(urlsplit(public).netloc.lower())
    return hosts


def refused_cross_site() -> HTMLResponse:
    return html(login_page("A page of another site cannot log in or out here: open the dashboard itself."),
                status=403)


async def login(request: Request) -> Response:
    if cross_site(request):
        return refused_cross_site()
    form = parse_qs((await read_body(request)).decode("utf-8", errors="replace"))
    token = (form.get("token") or [""])[0].strip()
    if await auth(request).project_of(token, client_address(request)) is None:
        return html(login_page("That token opens no project."), status=401)
    response = RedirectResponse(BASE, status_code=303)
    response.set_cookie(COOKIE, token, max_age=SESSION_SECONDS, path=BASE, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
    return response


async def logout(request: Request) -> Response:
    if cross_site(request):
        return refused_cross_site()
    response = RedirectResponse(BASE, status_code=303)
    response.delete_cookie(COOKIE, path=BASE)
    return response


# -- pages ---------------------------------------------------------------------------------------


async def home(request: Request) -> Response:
    project = await project_of(request)
    if project is None:
        return html(login_page())
    stats, total = await listed(request, project)
    usage = await engine(request).project_usage(project)
    return html(page(project, "Queues", queues_body(stats, total, usage)))


async def queue_page(request: Request) -> Response:
    project = await project_of(request)
    if project is None:
        return RedirectResponse(BASE, status_code=303)
    name = queue_name(request)
    fragment = await detail(engine(request).queue(project, name))
    return html(page(project, name, queue_body(name, fragment)))


async def queues_fragment(request: Request) -> JSON:
    project = await logged_in(request)
    stats, total = await listed(request, project)
    totals = {"put": sum(s.counters.get("put", 0) for s in stats),
              "deleted": sum(s.counters.get("deleted", 0) for s in stats)}
    quota = quota_html(await engine(request).project_usage(project))
    return JSON({"html": rows(stats, total), "totals": totals, "quota": quota})


async def queue_fragment(request: Request) -> JSON:
    queue = engine(request).queue(await logged_in(request), queue_name(request))
    return JSON({"html": await detail(queue)})


async def listed(request: Request, project: str) -> tuple[list[QueueStats], int]:
    stats = await engine(request).stats(project, page=0, per_page=LISTED)
    return stats, await engine(request).count_queues(project)


async def detail(queue: AsyncQueue) -> str:
    try:
        info = await queue.info()
    except QueueNotFound:
        return '<p class="empty">This queue does not exist (any more).</p>'
    return detail_html(info, await queue.peek(PEEKED))


# -- actions -------------------------------------------------------------------------------------


async def action_queue(request: Request) -> AsyncQueue:
    if request.headers.get(ACTION_HEADER) != "1":
        raise Problem(403, f"Dashboard actions need the {ACTION_HEADER} header")
    return engine(request).queue(await logged_in(request), queue_name(request))


async def clear(request: Request) -> JSON:
    removed = await (await action_queue(request)).clear()
    return JSON({"done": f"Cleared: {removed} message(s) removed."})


async def release(request: Request) -> JSON:
    released = await (await action_queue(request)).release_reserved()
    return JSON({"done": f"Released {released} reserved message(s)."})


def queue_name(request: Request) -> str:
    name = query_params(request).get("name", "")
    if not name:
        raise Problem(400, "name (the queue) is required")
    return name


# -- HTML ----------------------------------------------------------------------------------------


def html(text: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(text, status_code=status, headers=SECURITY_HEADERS)


def page(project: str | None, title: str, body: str) -> str:
    account = "" if project is None else (
        f'<form method="post" action="{BASE}/logout"><span>project <b>{escape(project)}</b></span> '
        '<button type="submit">Log out</button></form>')
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)} · FerryMQ</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="{BASE}/dashboard.css"></head>
<body><header><a class="brand" href="{BASE}">FerryMQ</a>{account}</header>
<main>{body}</main><script src="{BASE}/dashboard.js"></script></body></html>"""


def login_page(error: str = "") -> str:
    problem = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    return page(None, "Log in", f"""<h1>Log in</h1>{problem}
<form class="login" method="post" action="{BASE}/login">
<label>Token <input type="password" name="token" autocomplete="off" required autofocus></label>
<button type="submit">Log in</button></form>
<p class="hint">A token opens one project: <code>ferrymq tokens add PROJECT</code> makes one.</p>""")


def queues_body(stats: list[QueueStats], total: int, usage: ProjectUsage) -> str:
    return f"""<p id="quota" class="quota">{quota_html(usage)}</p><section class="chart"><canvas id="rates"></canvas>
<p class="legend"><span class="put">put <b id="put-rate">0</b>/s</span>
<span class="deleted">delete <b id="delete-rate">0</b>/s</span></p></section>
<table id="queues"><thead><tr><th>Queue</th><th>Size</th><th>Ready</th><th>Delayed</th><th>Reserved</th>
<th>Put</th><th>Deleted</th></tr></thead>
<tbody data-poll="{BASE}/api/queues">{rows(stats, total)}</tbody></table>"""


def quota_html(usage: ProjectUsage) -> str:
    """The project's quotas and what it uses of them (messages and bytes: the sweeper's sums)."""
    limits = usage.limits
    parts = [f"queues <b>{usage.queues:,}</b> of {limits.queues:,}",
             f"messages <b>{usage.messages:,}</b> of {limits.messages:,}",
             f"bytes <b>{human_bytes(usage.bytes)}</b> of {human_bytes(limits.bytes)}",
             f"subscriptions <b>{usage.subscriptions:,}</b> of {limits.subscriptions:,}"]
    over = (f' <span class="error" role="alert">Over its {escape(usage.over)} quota: new messages are '
            "refused.</span>") if usage.over else ""
    return "Quota: " + " · ".join(parts) + over


def rows(stats: list[QueueStats], total: int) -> str:
    if not stats:
        return '<tr><td colspan="7" class="empty">No queues yet: put a message to create one.</td></tr>'
    cells = "".join(
        f'<tr data-queue="{escape(s.name)}"><td><a href="{queue_link(s.name)}">{escape(s.name)}</a></td>'
        f'<td class="size">{s.size}</td><td class="ready">{s.ready}</td><td class="delayed">{s.delayed}</td>'
        f'<td class="reserved">{s.reserved}</td><td>{s.counters.get("put", 0)}</td>'
        f'<td>{s.counters.get("deleted", 0)}</td></tr>'
        for s in stats)
    if total > len(stats):
        cells += f'<tr><td colspan="7" class="empty">… and {total - len(stats)} more queues.</td></tr>'
    return cells


def queue_link(name: str) -> str:
    return f"{BASE}/queue?name={quote(name, safe='')}"


def queue_body(name: str, fragment: str) -> str:
    target = quote(name, safe="")
    return f"""<p><a href="{BASE}">← all queues</a></p><h1>{escape(name)}</h1>
<div id="detail" data-poll="{BASE}/api/queue?name={target}">{fragment}</div>
<p class="actions">
<button class="danger" data-action="{BASE}/api/clear?name={target}"
 data-confirm="Remove every message of {escape(name)}? This cannot be undone.">Clear queue</button>
<button data-action="{BASE}/api/release?name={target}"
 data-confirm="Put every reserved message of {escape(name)} back in the queue now?">Release reserved</button>
</p><p id="status" role="status"></p>"""


def detail_html(info: QueueInfo, peeked: list[Message]) -> str:
    s = info.settings
    counts = (("Size", info.size), ("Ready", info.ready), ("Delayed", info.delayed),
              ("Reserved", info.reserved), ("Put, ever", info.total_messages))
    config = (("Reservation timeout", f"{s.timeout:g} s"), ("Delay", f"{s.delay:g} s"),
              ("Expires in", f"{s.expires_in:g} s"), ("Max deliveries", s.max_deliveries or "unlimited"),
              ("Dead letter queue", s.dead_letter_queue or "none"), ("Paused", "yes" if s.paused else "no"))
    return (
        '<dl class="counts">' + "".join(f'<div><dt>{k}</dt><dd id="count-{k.split(",")[0].lower()}">{v}</dd></div>'
                                        for k, v in counts) + "</dl>"
        + '<dl class="settings">' + "".join(f"<dt>{k}</dt><dd>{escape(str(v))}</dd>" for k, v in config) + "</dl>"
        + f"<h2>Next {PEEKED} ready messages</h2>" + messages_html(peeked)
    )


def messages_html(peeked: list[Message]) -> str:
    if not peeked:
        return '<p class="empty">No ready messages.</p>'
    rows_ = "".join(
        f"<tr><td><code>{m.id}</code></td><td>{m.reserved_count}</td><td>{moment(m.enqueued_at)}</td>"
        f"<td class=\"body\">{escape(excerpt(m.text))}</td></tr>" for m in peeked)
    return ('<table class="messages"><thead><tr><th>Id</th><th>Deliveries</th><th>Put at (UTC)</th><th>Body</th>'
            f"</tr></thead><tbody>{rows_}</tbody></table>")


def excerpt(text: str) -> str:
    return text if len(text) <= BODY_SHOWN else text[:BODY_SHOWN] + "…"


def moment(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


# -- static files and routing --------------------------------------------------------------------


@functools.cache
def asset_text(name: str) -> str:
    return (HERE / name).read_text()


def asset(name: str) -> Route:
    async def serve(request: Request) -> Response:
        return Response(asset_text(name), media_type=ASSETS[name], headers={"Cache-Control": "max-age=300"})

    return ui_route(f"{BASE}/{name}", serve, "GET")


def ui_route(path: str, endpoint: Callable[[Request], Awaitable[Response]], method: str) -> Route:
    """A route of the UI: not part of the API, so not in /openapi.json."""
    return Route(path, endpoint, methods=[method], include_in_schema=False)


def routes() -> list[BaseRoute]:
    return [
        ui_route(BASE, home, "GET"),
        ui_route(f"{BASE}/login", login, "POST"),
        ui_route(f"{BASE}/logout", logout, "POST"),
        ui_route(f"{BASE}/queue", queue_page, "GET"),
        ui_route(f"{BASE}/api/queues", queues_fragment, "GET"),
        ui_route(f"{BASE}/api/queue", queue_fragment, "GET"),
        ui_route(f"{BASE}/api/clear", clear, "POST"),
        ui_route(f"{BASE}/api/release", release, "POST"),
        *(asset(name) for name in ASSETS),
    ]

"""The dashboard in a real headless browser (Debian's chromium under Playwright), against the live
server: log in with a token, watch a queue appear and change, release and clear it."""

from __future__ import annotations

import re

from playwright.sync_api import expect

PROJECT, TOKEN = "000000000000000000000001", "token-a"
OTHER_PROJECT, OTHER_TOKEN = "000000000000000000000002", "token-b"
WAIT_MS = 10_000
"""The page polls every 2 s; a change shows within one poll, this leaves room for a slow CI."""


def put(http, queue, *bodies, project=PROJECT, token=TOKEN):
    response = http.post(f"/1/projects/{project}/queues/{queue}/messages",
                         json={"messages": [{"body": b} for b in bodies]}, headers={"Authorization": f"OAuth {token}"})
    assert response.status_code == 200, response.text


def log_in(page, server, token=TOKEN):
    page.goto(f"{server.url}/dashboard")
    page.fill("input[name=token]", token)
    page.click("form.login button")


def size_cell(page, queue):
    return page.locator(f'tr[data-queue="{queue}"] td.size')


def test_a_wrong_token_is_refused_and_a_right_one_opens_its_project(server, http, page):
    log_in(page, server, "not-a-token")
    expect(page.get_by_role("alert")).to_have_text("That token opens no project.")
    log_in(page, server)
    expect(page.locator("header")).to_contain_text(PROJECT)
    expect(page.locator("#queues tbody")).to_contain_text("No queues yet")
    page.click("header button")  # log out
    expect(page.locator("input[name=token]")).to_be_visible()


def test_a_queue_appears_after_a_put_its_size_and_rates_follow_and_it_can_be_cleared(server, http, page):
    log_in(page, server)
    expect(page.locator("#queues tbody")).to_contain_text("No queues yet")
    put(http, "orders", "first")
    put(http, "not-mine", "x", project=OTHER_PROJECT, token=OTHER_TOKEN)
    expect(size_cell(page, "orders")).to_have_text("1", timeout=WAIT_MS)
    put(http, "orders", "second", "third")
    expect(size_cell(page, "orders")).to_have_text("3", timeout=WAIT_MS)
    expect(page.locator("#put-rate")).not_to_have_text("0.0", timeout=WAIT_MS)  # the chart saw the puts
    expect(page.locator('tr[data-queue="not-mine"]')).to_have_count(0)

    page.click('tr[data-queue="orders"] a')
    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    page.click("text=Clear queue")
    expect(page.locator("#count-size")).to_have_text("0")
    assert asked == ["Remove every message of orders? This cannot be undone."]
    page.click("text=all queues")
    expect(size_cell(page, "orders")).to_have_text("0")


def test_the_projects_quotas_and_usage_show_above_its_queues(server, http, page, redis_client):
    from ferrymq.engine import Engine

    engine = Engine(redis_client, clock=server.clock)
    engine.set_project_limits(PROJECT, queues=5, messages=2)
    log_in(page, server)
    expect(page.locator("#quota")).to_contain_text("queues 0 of 5")
    put(http, "orders", "first", "second")
    engine.sweep()
    expect(page.locator("#quota")).to_contain_text("queues 1 of 5 · messages 2 of 2", timeout=WAIT_MS)
    expect(page.locator("#quota [role=alert]")).to_have_text("Over its messages quota: new messages are refused.")


def test_a_queue_shows_its_messages_and_can_be_released_and_cleared(server, http, page, tmp_path):
    put(http, "orders", "first", "second", "third")
    reserved = http.get(f"/1/projects/{PROJECT}/queues/orders/messages", headers={"Authorization": f"OAuth {TOKEN}"})
    assert len(reserved.json()["messages"]) == 1
    log_in(page, server)
    page.click("text=orders")
    expect(page.locator("h1")).to_have_text("orders")
    expect(page.locator("#count-reserved")).to_have_text("1")
    expect(page.locator("table.messages td.body")).to_have_text(["second", "third"])

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("text=Release reserved")
    expect(page.locator("#status")).to_have_text("Released 1 reserved message(s).")
    expect(page.locator("#count-reserved")).to_have_text("0")
    expect(page.locator("#count-ready")).to_have_text("3")

    page.once("dialog", lambda dialog: dialog.dismiss())  # changed their mind: nothing happens
    page.click("text=Clear queue")
    page.wait_for_timeout(300)
    expect(page.locator("#count-size")).to_have_text("3")

    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    page.click("text=Clear queue")
    expect(page.locator("#status")).to_have_text("Cleared: 3 message(s) removed.")
    expect(page.locator("#count-size")).to_have_text("0")
    assert asked == ["Remove every message of orders? This cannot be undone."]
    page.screenshot(path=str(tmp_path / "queue.png"))
    assert (tmp_path / "queue.png").read_bytes().startswith(b"\x89PNG")


def test_pages_and_actions_refuse_a_visitor_without_a_token(server, http, page):
    page.goto(f"{server.url}/dashboard/queue?name=orders")
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    expect(page.locator("input[name=token]")).to_be_visible()
    cleared = http.post("/dashboard/api/clear", params={"name": "orders"}, headers={"x-ferrymq-dashboard": "1"})
    assert cleared.status_code == 401
    http.cookies.set("ferrymq_dashboard", TOKEN, path="/dashboard")
    forged = http.post("/dashboard/api/clear", params={"name": "orders"})  # what a cross-site form could send
    assert forged.status_code == 403


def test_the_docs_page_lists_every_operation(server, http, page):
    operations = sum(len(item) for item in http.get("/openapi.json").json()["paths"].values())
    page.goto(f"{server.url}/docs")
    expect(page.locator("details[id^=iron], details[id^=cf], details[id^=eq], details#ping, details#metrics, "
                        "details#openapi, details#docs")).to_have_count(operations)
    expect(page.locator("#about")).to_contain_text("FerryMQ")


# -- cross-site requests -------------------------------------------------------------------------

CROSS_SITE = [{"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"}, {"Origin": "https://evil.example"},
              {"Origin": "null"}, {"Origin": "http://127.0.0.1:1", "Sec-Fetch-Site": "same-origin"}]


def test_login_and_logout_refuse_cross_site_posts(server, http):
    for headers in CROSS_SITE:
        login = http.post("/dashboard/login", data={"token": TOKEN}, headers=headers)
        assert login.status_code == 403 and "ferrymq_dashboard" not in login.headers.get("set-cookie", ""), headers
        http.cookies.set("ferrymq_dashboard", TOKEN, path="/dashboard")
        logout = http.post("/dashboard/logout", headers=headers)
        assert logout.status_code == 403 and "set-cookie" not in logout.headers, headers
        http.cookies.clear()
    own = {"Origin": server.url, "Sec-Fetch-Site": "same-origin"}
    login = http.post("/dashboard/login", data={"token": TOKEN}, headers=own)
    assert login.status_code == 303 and "ferrymq_dashboard=" in login.headers["set-cookie"]
    assert http.post("/dashboard/login", data={"token": TOKEN}).status_code == 303  # curl sends neither header


def test_a_page_of_another_site_cannot_log_a_visitor_in(server, page):
    """Login CSRF: the attacker's page posts the attacker's token, hoping the victim then puts
    their own data where the attacker can read it."""
    attacker = ('<form method="post" action="' + server.url + '/dashboard/login">'
                f'<input name="token" value="{TOKEN}"></form><script>document.forms[0].submit()</script>')
    page.route("http://evil.example/**", lambda route: route.fulfill(body=attacker, content_type="text/html"))
    with page.expect_response(f"{server.url}/dashboard/login") as answer:
        page.goto("http://evil.example/")
    assert answer.value.status == 403
    assert not [c for c in page.context.cookies() if c["name"] == "ferrymq_dashboard"]

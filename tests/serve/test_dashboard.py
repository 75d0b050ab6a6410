"""The dashboard: sessions and scopes in-process, then the whole flow in Debian's Chromium (Playwright)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from shoplm.app.scheduler import Scheduler
from shoplm.ingest.pseudonymize import Pseudonymizer
from shoplm.serve import create_app
from shoplm.store import Store
from tests.conftest import require_in_ci
from tests.serve.conftest import ROOT, ServerProcess, Shop
from tests.serve.test_experiments_api import seed_experiment
from tests.serve.test_opinion_api import add_spike_reviews

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = ROOT / "test-artifacts" / "dashboard.png"


@pytest.fixture(scope="module")
def client(shop: Shop, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    target = tmp_path_factory.mktemp("dash") / "data"
    shutil.copytree(shop.data_dir, target)
    with TestClient(create_app(shop.settings(target))) as test_client:
        yield test_client


def login(client: TestClient, key: str) -> None:
    client.cookies.clear()
    response = client.post("/dashboard/login", data={"api_key": key}, follow_redirects=False)
    assert response.status_code == 303


def test_login_sets_a_strict_httponly_session_cookie_not_the_key(client: TestClient, shop: Shop) -> None:
    client.cookies.clear()
    assert 'name="api_key"' in client.get("/dashboard").text  # the login form
    response = client.post("/dashboard/login", data={"api_key": shop.keys["read"]}, follow_redirects=False)
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert shop.keys["read"] not in cookie and shop.keys["read"].split("_", 2)[2] not in cookie
    page = client.get("/dashboard")
    assert "Live events" in page.text and "Log out" in page.text


def test_a_wrong_key_does_not_log_in(client: TestClient) -> None:
    client.cookies.clear()
    response = client.post("/dashboard/login", data={"api_key": "slm_abc_def"}, follow_redirects=False)
    assert response.status_code == 401 and "not valid" in response.text
    assert client.get("/dashboard/fragments/feed").status_code == 401


def test_fragments_show_users_profiles_recommendations_and_the_feed(client: TestClient, shop: Shop) -> None:
    login(client, shop.keys["read"])
    users = client.get("/dashboard/fragments/users", params={"q": shop.users[0]}).text
    assert "Shop id" in users and 'data-user="u_' in users
    pseudo = users.split('data-user="', 1)[1].split('"', 1)[0]
    panel = client.get(f"/dashboard/fragments/user/{pseudo}").text
    assert "Top categories" in panel and "scene-home" in panel and "scene-item_detail" in panel
    assert "because you" in panel or "popular in" in panel  # reasons are shown
    assert "<li" in client.get("/dashboard/fragments/feed").text
    assert "<table" in client.get("/dashboard/fragments/search", params={"q": "gift"}).text


def test_posting_from_the_page_needs_write_scope_and_json(client: TestClient, shop: Shop) -> None:
    event = {"user_id": "u_0123456789abcdef01234567", "item_id": shop.items[0], "event_type": "view"}
    login(client, shop.keys["read"])
    assert client.post("/dashboard/events", json=event).status_code == 403
    login(client, shop.keys["write"])
    assert client.post("/dashboard/events", json=event).status_code == 200
    form = client.post(
        "/dashboard/events", content="user_id=x", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert form.status_code in (415, 422)
    unknown = client.post("/dashboard/events", json={**event, "item_id": "NOPE"})
    assert unknown.status_code == 404
    client.post("/dashboard/logout")
    assert client.get("/dashboard/fragments/feed").status_code == 401


def test_chatting_from_the_page_needs_write_scope_and_shows_the_conversation(client: TestClient, shop: Shop) -> None:
    user = shop.users[0]
    order_id = shop.orders[user][-1][0]
    pseudo = Pseudonymizer(shop.settings().hmac_key).user(user)  # the page knows users by this id only
    message = {"user_id": pseudo, "text": f"where is my order {order_id}?"}
    login(client, shop.keys["read"])
    assert "chatting as a customer needs a write key" in client.get("/dashboard").text
    assert client.post("/dashboard/chat", json=message).status_code == 403
    login(client, shop.keys["write"])
    assert 'id="chat-form"' in client.get("/dashboard").text
    form = client.post(
        "/dashboard/chat", content="text=hi", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert form.status_code in (415, 422)
    first = client.post("/dashboard/chat", json=message)
    assert first.status_code == 200, first.text
    assert "track_order" in first.text and "track: looked_up" in first.text  # found among this user's orders
    assert order_id in first.text and 'class="assistant"' in first.text
    conversation = first.text.split('data-conversation="', 1)[1].split('"', 1)[0]
    assert conversation.startswith("dash-")
    second = client.post("/dashboard/chat", json={**message, "conversation_id": conversation, "text": "thanks!"})
    assert second.text.count('class="customer"') == 2 and second.text.count('class="assistant"') == 2
    # The same conversation through the API: stored for that user, not for a user named by the pseudonym.
    stored = client.get(
        f"/v1/assistant/conversations/{conversation}",
        params={"user_id": user},
        headers={"X-API-Key": shop.keys["read"]},
    )
    assert stored.status_code == 200 and len(stored.json()["messages"]) == 4
    other = client.post(
        "/dashboard/chat", json={**message, "user_id": "u_someoneelse", "conversation_id": conversation}
    )
    assert other.status_code == 403


@pytest.mark.slow
def test_dashboard_in_a_real_browser(shop: Shop, shop_copy: Path, server_factory: type[ServerProcess]) -> None:
    if not CHROMIUM.exists():
        # CI installs it (.ci/services.sh), so there its absence is a failure, not a skip.
        reason = "needs Debian's chromium (apt-get install chromium; .ci/services.sh installs it)"
        require_in_ci(reason)
    from playwright import sync_api

    # Two scheduled runs for the jobs panel (retention: ok; alerts without a webhook: skipped).
    with Store.open(shop.settings(shop_copy).database_url) as store:
        runner = Scheduler(store, shop.settings(shop_copy))
        for job in ("retention", "alerts"):
            runner.run_job(job)
        add_spike_reviews(store, shop.items[0])  # six one-star reviews in a day: an opinion spike
        runner.run_job("opinion")
        seed_experiment(store)  # an A/B test with three days of exposures and clicks
    server = server_factory(shop_copy).start()
    # A user with a history and an item of a category the user has not shown interest in yet.
    user = shop.users[0]
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(30_000)
            # Nothing may leave the machine: fail any request that is not to our server.
            outside: list[str] = []
            page.on("request", lambda r: None if r.url.startswith(server.url) else outside.append(r.url))

            page.goto(server.url + "/dashboard")
            page.fill("#api_key", shop.keys["write"])
            page.click("#login")
            page.wait_for_selector("#user-search")

            page.fill("#user-q", user)
            page.click("#user-search button")
            # The user found by the shop's id (waiting for it: the list shows other users until then).
            page.click(f'#users li.user[data-user="{Pseudonymizer(shop.settings().hmac_key).user(user)}"]')
            page.wait_for_selector("#user-panel #scene-home tr[data-item]")
            assert page.locator("#profile-tags span").count() > 0
            home_before = page.locator("#scene-home tr[data-item]").evaluate_all(
                "rows => rows.map(r => r.dataset.item)"
            )
            assert len(home_before) > 0
            reasons = page.locator("#scene-home .reason").all_inner_texts()
            assert all(reasons)

            # Post views of items the user has not seen, of one other category, through the page's form.
            profile_text = page.locator("#user-panel").inner_text()
            others = [i for i in shop.items if shop.categories[i].split(" > ")[0] not in profile_text]
            target = others[:3] if len(others) >= 3 else shop.items[-3:]
            for item in target:
                page.fill("#event-item", item)
                page.select_option("#event-type", "view")
                page.evaluate("delete document.body.dataset.changed")
                page.click("#post-event")
                page.wait_for_function("document.body.dataset.changed !== undefined")  # the panel re-rendered
            assert "stored view" in page.locator("#event-status").inner_text()

            home_after = page.locator("#scene-home tr[data-item]").evaluate_all("rows => rows.map(r => r.dataset.item)")
            assert home_after != home_before, "the recommendations did not change after the events"
            recent = page.locator("#recent").inner_text()
            assert target[-1] in recent

            # Chat as this user about one of their orders: the reply is grounded on it.
            order_id = shop.orders[user][-1][0]
            page.fill("#chat-text", f"Where is my order {order_id}?")
            page.click("#chat-send")
            page.wait_for_selector("#chat-log li.assistant", timeout=60_000)  # the first turn loads the models
            assert page.locator("#chat-intent").inner_text() == "track_order"
            reply = page.locator("#chat-log li.assistant .bubble").last.inner_text()
            assert order_id in reply and "could not find" not in reply, reply  # this user's own order
            assert page.locator("#chat-log li.customer").count() == 1

            page.wait_for_function("(document.querySelector('#feed-list') || {}).innerText?.includes('view')")
            page.fill("#catalog-q", "gift")
            page.click("#catalog-search button")
            page.wait_for_selector("#search-results tr[data-item]")

            # The analytics panels: each fragment loaded, with its chart drawn in the page.
            for slot in (
                "#churn-slot",
                "#segments-slot",
                "#forecast-slot",
                "#risk-slot",
                "#jobs-slot",
                "#sentiment-slot",
                "#experiments-slot",
                "#aspects-slot",
                "#ads-slot",
                "#replies-slot",
                "#ctr-slot",
                "#opinion-slot",
            ):
                page.wait_for_selector(f"{slot}[data-loaded]")
                assert page.locator(f"{slot} .error").count() == 0, page.locator(slot).inner_text()
            assert page.locator("#churn-chart rect").count() == 10  # the probability histogram
            assert page.locator("#churn-list tr").count() > 0
            assert page.locator("#segments-chart rect").count() >= 2
            assert page.locator("#forecast-chart-1 polyline").count() >= 2  # history and forecast
            assert page.locator("#risk-chart rect").count() > 0
            assert page.locator("#jobs-table tr[data-job]").count() == 7  # every scheduled job
            assert page.locator("#jobs-table tr[data-job='retention'] .outcome-ok").count() == 1
            assert page.locator("#jobs-chart rect").count() >= 2 + 3  # a bar per run, and the legend
            assert page.locator("#sentiment-chart rect[data-polarity]").count() >= 2  # polarity bars per category
            assert page.locator("#experiments-chart polyline").count() == 2  # each arm's cumulative CTR
            assert page.locator("#experiments-table tr").count() == 3  # header, control, treatment
            assert page.locator("#aspects-chart rect[data-polarity='negative']").count() >= 2  # per aspect category
            assert page.locator("#ads-chart rect").count() >= 2  # a posterior CTR bar per creative arm
            assert page.locator("#ads-chart line").count() >= 2  # with its 90% interval
            assert page.locator("#replies-chart rect").count() >= 1 + 4  # drafts per outcome, and the legend
            assert page.locator("#replies-list tr[data-review] .badge-ok").count() >= 1  # a checked draft
            assert page.locator("#ctr-chart rect").count() == 8  # CTR of each of the 8 slots
            assert page.locator("#opinion-chart polyline").count() == 1  # the negative share over time
            assert page.locator("#opinion-chart .alert-mark").count() >= 1  # the spike, marked
            # A customer at risk opens as the selected user.
            at_risk = page.locator("#churn-list td.user").first.get_attribute("data-user")
            page.locator("#churn-list td.user").first.click()
            page.wait_for_function(f"location.search.includes('{at_risk}')")

            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)
            assert not outside, f"the page fetched from elsewhere: {outside[:3]}"
        finally:
            browser.close()

"""Staff sessions in a real browser: the signed cookie keeps a staff member signed in across reloads
and tabs, each staff page has its own address, and sign-out, expiry and tampering end it.

Debian's chromium through Playwright against `workbench serve` (the command `make run` runs) on a
temporary demo database. Also: a fresh server names no pages to a visitor who asks for one by file
name, and finds /sign-in on its first run (issue 17, item 12). Every wait is on what the page shows.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from browser import chromium, require_chromium, workbench_server

from workbench import auth, config
from workbench.demo import load_world, simulate
from workbench.store import Store, hash_token, utcnow

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]
ENV = {"WORKBENCH_LLM_BASE_URL": None}
PASSWORD = {"fran": "facilitator pass 1", "rhea": "researcher pass 1"}
WAIT = 120_000  # ms; the machine is shared, so a generous bound on each wait for a state


@pytest.fixture
def staff_db(tmp_path, demo_spec):
    require_chromium()
    db = tmp_path / "staff.duckdb"
    with Store(db) as s:
        s.import_bundle(simulate(demo_spec, load_world(config.DATA / "demo_values.yaml"), 12, seed=2))
        auth.create_user(s, "fran", "facilitator", PASSWORD["fran"])
        auth.create_user(s, "rhea", "researcher", PASSWORD["rhea"])
    return db


def settled(page) -> None:
    page.locator("[data-testid='stApp'][data-test-script-state='notRunning']").wait_for(timeout=WAIT)


def sign_in(page, username: str) -> None:
    """Fill in the sign-in form the page shows and wait until the staff menu is there."""
    page.get_by_role("textbox", name="Username").fill(username)
    page.get_by_role("textbox", name="Password").fill(PASSWORD[username])
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Signed in as").wait_for(timeout=WAIT)


def signed_in_tab(browser, url: str, username: str):
    """A new browser (context) with one tab signed in as `username` from /sign-in: (context, tab)."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{url}/sign-in")
    sign_in(page, username)
    return context, page


def staff_cookie(context) -> dict | None:
    return next((c for c in context.cookies() if c["name"] == auth.STAFF_COOKIE), None)


def signed_out(page) -> bool:
    """After a (re)load: the page shows no staff menu (waits for the script to finish first)."""
    page.get_by_role("link", name="Staff sign-in").or_(page.get_by_role("heading", name="Staff sign-in")) \
        .first.wait_for(timeout=WAIT)
    settled(page)
    return page.get_by_text("Signed in as").count() == 0


def test_a_signed_in_facilitator_stays_signed_in_across_reloads_and_new_tabs(staff_db):
    with workbench_server(staff_db, ENV) as (url, _), chromium() as browser:
        context = browser.new_context()
        page = context.new_page()
        page.goto(url)
        page.get_by_role("link", name="Staff sign-in").click()
        sign_in(page, "fran")
        page.wait_for_url(f"{url}/facilitator-setup", timeout=WAIT)  # the landing page, at its own path

        cookie = staff_cookie(context)
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
        assert cookie["secure"] is False  # plain HTTP on loopback; Secure is set when served over HTTPS
        assert auth.STAFF_COOKIE not in page.evaluate("document.cookie")  # page scripts cannot read it
        # It lasts as long as the session (8 hours from signing in), not just this browser session.
        assert abs(cookie["expires"] - time.time() - auth.SESSION_LIFETIME.total_seconds()) < 600

        page.reload()
        page.get_by_role("heading", name="Set up a deliberation").wait_for(timeout=WAIT)
        assert page.get_by_text("Signed in as").count() == 1

        other = context.new_page()  # a new tab, straight to another staff page's address
        other.goto(f"{url}/facilitator-progress")
        other.get_by_role("heading", name="Progress").wait_for(timeout=WAIT)
        other.get_by_text("Signed in as").wait_for(timeout=WAIT)
        assert other.url == f"{url}/facilitator-progress"

        stranger = browser.new_context().new_page()  # another browser: no cookie, no staff pages
        stranger.goto(f"{url}/facilitator-progress")
        stranger.get_by_role("heading", name="Staff sign-in").wait_for(timeout=WAIT)
        assert stranger.get_by_role("heading", name="Progress").count() == 0


def test_a_bookmarked_staff_page_asks_to_sign_in_then_opens_that_page(staff_db):
    with workbench_server(staff_db, ENV) as (url, _), chromium() as browser:
        page = browser.new_page()
        page.goto(f"{url}/moral-graph")
        page.get_by_role("heading", name="Staff sign-in").wait_for(timeout=WAIT)
        page.get_by_text("Please sign in to open this page.").wait_for(timeout=WAIT)
        assert page.get_by_text("Page not found").count() == 0
        sign_in(page, "rhea")
        page.wait_for_url(f"{url}/moral-graph", timeout=WAIT)
        page.get_by_role("heading", name="The moral graph").wait_for(timeout=WAIT)

        # A page the role may not see is not opened after signing in: the role's own landing page is.
        page = browser.new_page()
        page.goto(f"{url}/facilitator-moderation")
        page.get_by_role("heading", name="Staff sign-in").wait_for(timeout=WAIT)
        sign_in(page, "rhea")
        page.wait_for_url(f"{url}/researcher-exports", timeout=WAIT)
        page.get_by_role("heading", name="Exports").wait_for(timeout=WAIT)


def test_sign_out_ends_the_session_and_a_kept_copy_of_the_cookie_is_refused(staff_db):
    with workbench_server(staff_db, ENV) as (url, _), chromium() as browser:
        context, page = signed_in_tab(browser, url, "fran")
        kept = staff_cookie(context)
        second_tab = context.new_page()
        second_tab.goto(f"{url}/facilitator-progress")
        second_tab.get_by_text("Signed in as").wait_for(timeout=WAIT)

        # The page goes to "/" at once (the app's own switch); the browser then visits the sign-out
        # endpoint, whose answer deletes the cookie: wait for that answer, not for the URL.
        with page.expect_response(lambda r: r.url.split("?")[0].endswith(config.SIGN_OUT_ENDPOINT),
                                  timeout=WAIT):
            page.get_by_role("button", name="Sign out").click()
        page.wait_for_url(f"{url}/", timeout=WAIT)
        assert signed_out(page)
        assert staff_cookie(context) is None  # the endpoint deleted it

        second_tab.reload()  # the other tab's next load is signed out too
        assert signed_out(second_tab)

        context.add_cookies([kept])  # someone kept a copy: the session behind it is over
        page.goto(f"{url}/facilitator-progress")
        assert signed_out(page)
        page.get_by_text("Your session has ended. Please sign in again.").wait_for(timeout=WAIT)


@pytest.mark.parametrize("edit", ["token", "expiry", "signature"])
def test_an_edited_cookie_is_refused(staff_db, edit):
    with workbench_server(staff_db, ENV) as (url, _), chromium() as browser:
        context, page = signed_in_tab(browser, url, "fran")
        cookie = staff_cookie(context)
        token, expires, signature = cookie["value"].split(".")
        flip = {"A": "B"}.get(token[5], "A")
        cookie["value"] = {
            "token": f"{token[:5]}{flip}{token[6:]}.{expires}.{signature}",
            "expiry": f"{token}.{int(expires) + 86_400 * 30}.{signature}",  # a month longer
            "signature": f"{token}.{expires}.{signature[::-1]}",
        }[edit]
        context.clear_cookies()
        context.add_cookies([cookie])
        page.goto(f"{url}/facilitator-progress")
        assert signed_out(page)
        assert page.get_by_role("heading", name="Progress").count() == 0


def test_an_expired_session_sends_the_browser_back_to_sign_in(staff_db):
    # A session whose eight hours are over in the store, behind a cookie whose signature and own expiry
    # still look fine: the store has the last word.
    token = "an-expired-session-token-of-43-characters-x"
    with Store(staff_db) as s:
        s.start_staff_session(hash_token(token), s.user("fran")["id"], utcnow() - timedelta(seconds=1))
        value = auth.session_cookie(auth.cookie_key(s), token, utcnow() + auth.SESSION_LIFETIME)
    with workbench_server(staff_db, ENV) as (url, _), chromium() as browser:
        context = browser.new_context()
        context.add_cookies([{"name": auth.STAFF_COOKIE, "value": value, "url": url, "httpOnly": True,
                              "sameSite": "Strict"}])
        page = context.new_page()
        page.goto(f"{url}/facilitator-setup")
        page.get_by_text("Your session has ended. Please sign in again.").wait_for(timeout=WAIT)
        assert signed_out(page)
        assert page.get_by_role("heading", name="Set up a deliberation").count() == 0


# -- issue 17, item 12: what a fresh server says to a visitor asking for a page ---------------------

# Watches the page from its first byte: was "Page not found" ever on screen, has the script run?
FIRST_RUN_WATCH = """
window.__sawNotFound = false;
window.__ran = false;
new MutationObserver(() => {
  if (document.body && document.body.innerText.includes("Page not found")) window.__sawNotFound = true;
  const app = document.querySelector("[data-testid='stApp']");
  if (app && app.dataset.testScriptState === "running") window.__ran = true;
}).observe(document, {subtree: true, childList: true, characterData: true, attributes: true});
"""


def first_visit(browser, url: str) -> tuple[str, bool]:
    """Open `url` in a fresh page: (every WebSocket frame the server sent, as text; whether
    "Page not found" was ever on screen until the first run finished)."""
    page = browser.new_page()
    frames: list[str] = []
    page.on("websocket", lambda ws: ws.on(
        "framereceived", lambda f: frames.append(f.decode("latin-1") if isinstance(f, bytes) else f)))
    page.add_init_script(FIRST_RUN_WATCH)
    page.goto(url)
    # The first run has finished: the script ran, and the app says it is not running any more.
    page.wait_for_function("""() => window.__ran && document.querySelector(
        "[data-testid='stApp'][data-test-script-state='notRunning']")""", timeout=WAIT)
    return "".join(frames), page.evaluate("window.__sawNotFound")


# What identifies a staff page to a client: its file's name and its URL path (the titles are words
# that ordinary text may hold too).
STAFF_NAMES = sorted({name for pages in auth.PAGES_BY_ROLE.values() for p in pages
                      for name in (p.url_path, p.path.split("/")[-1].removesuffix(".py"))})


def test_a_fresh_server_names_no_pages_and_finds_sign_in_on_its_first_run(staff_db):
    # Fails on the code before the app moved into the package (dd36139~1): Streamlit's pages-directory
    # mode sent every file name in pages/ to the first visitor, and /sign-in showed "Page not found".
    with chromium() as browser:
        with workbench_server(staff_db, ENV) as (url, _):  # fresh: the main page has never run
            frames, _ = first_visit(browser, f"{url}/facilitator_setup")
        leaked = [name for name in STAFF_NAMES if name in frames and name != "facilitator_setup"]
        assert leaked == [], leaked
        with workbench_server(staff_db, ENV) as (url, _):
            frames, saw_not_found = first_visit(browser, f"{url}/sign-in")
        assert not saw_not_found
        assert [name for name in STAFF_NAMES if name in frames] == []

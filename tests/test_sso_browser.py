"""Single sign-on in a real browser: st.login against an OpenID Connect provider over real HTTP.

The provider (`tests/oidc_provider.py`) runs in this process; `workbench serve --secrets FILE` runs
the app with a secrets.toml pointing at it; Debian's chromium clicks through. A staff account whose email the
provider vouches for gets its role's pages; an identity without such an account gets none and is
told why; signing out also ends the single sign-on identity.
"""

from __future__ import annotations

import pytest
from browser import chromium, free_port, require_chromium, workbench_server
from oidc_provider import oidc_provider, secrets_toml

from workbench import auth
from workbench.store import Store
from workbench.webapp.endpoints import SSO_SIGN_OUT

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]
LABEL = "Sign in with Example SSO"


@pytest.fixture
def sso_db(tmp_path):
    require_chromium()
    db = tmp_path / "sso.duckdb"
    with Store(db) as s:
        # Single sign-on only: no password can open this account.
        auth.create_user(s, "fran", "facilitator", None, email="Fran@Example.org")
    return db


def _sign_in_as(page, url: str, email: str) -> None:
    from playwright.sync_api import expect

    page.goto(url)
    page.get_by_role("link", name="Staff sign-in").click()
    page.get_by_role("button", name=LABEL).click()
    expect(page.get_by_role("heading", name="Fake provider")).to_be_visible(timeout=30_000)
    page.get_by_role("button", name=f"Continue as {email}").click()


def test_staff_sign_in_through_an_openid_connect_provider(sso_db, tmp_path):
    from playwright.sync_api import expect

    identities = [{"email": "fran@example.org", "email_verified": True, "name": "Fran"},
                  {"email": "stranger@example.org", "email_verified": True, "name": "Stranger"}]
    port = free_port()
    app_url = f"http://127.0.0.1:{port}"
    with oidc_provider(identities) as provider:
        secrets_file = tmp_path / "secrets.toml"
        secrets_file.write_text(secrets_toml(provider, app_url, label=LABEL))
        env = {"WORKBENCH_DB": str(sso_db), "WORKBENCH_LLM_BASE_URL": None}
        with (workbench_server(sso_db, env=env, port=port, options=["--secrets", str(secrets_file)]) as (url, _),
              chromium() as browser):
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            _sign_in_as(page, url, "fran@example.org")
            expect(page.get_by_text("Signed in as")).to_be_visible(timeout=60_000)
            expect(page.get_by_text("fran", exact=True)).to_be_visible()
            expect(page.get_by_role("link", name="Moral graph")).to_be_visible()
            assert provider.tokens_issued == 1 and "POST /token" in provider.requests
            # A reload starts a new Streamlit session: the provider's identity cookie signs in again.
            page.reload()
            expect(page.get_by_text("Signed in as")).to_be_visible(timeout=60_000)

            # Signing out ends the staff session and the single sign-on identity: no way back by reloading.
            # The page shows the signed-out sidebar at once, while the browser is still on its way through
            # the sign-out endpoint to Streamlit's /auth/logout, whose answer deletes the identity cookie:
            # wait for that answer and the landing page, not for what the old page shows.
            with page.expect_response(lambda r: r.url.split("?")[0].endswith(SSO_SIGN_OUT), timeout=60_000):
                page.get_by_role("button", name="Sign out").click()
            page.wait_for_url(f"{url}/", timeout=60_000)
            expect(page.get_by_role("link", name="Staff sign-in")).to_be_visible(timeout=60_000)
            page.reload()
            expect(page.get_by_role("link", name="Staff sign-in")).to_be_visible(timeout=60_000)
            expect(page.get_by_text("Signed in as")).to_have_count(0)

            # An identity the provider vouches for, but with no staff account: told so, shown nothing.
            stranger = browser.new_page(viewport={"width": 1300, "height": 900})
            _sign_in_as(stranger, url, "stranger@example.org")
            expect(stranger.get_by_text("no staff account uses that verified email")).to_be_visible(timeout=60_000)
            expect(stranger.get_by_role("link", name="Moral graph")).to_have_count(0)
            expect(stranger.get_by_text("Signed in as")).to_have_count(0)
            with stranger.expect_response(lambda r: r.url.split("?")[0].endswith(SSO_SIGN_OUT), timeout=60_000):
                stranger.get_by_role("button", name="Sign out of single sign-on").click()
            stranger.wait_for_url(f"{url}/", timeout=60_000)
            expect(stranger.get_by_role("heading", name="Values Workbench")).to_be_visible(timeout=60_000)
            stranger.get_by_role("link", name="Staff sign-in").click()
            expect(stranger.get_by_role("button", name=LABEL)).to_be_visible(timeout=60_000)  # identity gone

    with Store(sso_db) as s:
        attempts = s._rows("SELECT username, ok FROM sign_in_attempts ORDER BY id")
    assert ("sso:fran@example.org", True) in attempts
    assert ("sso:stranger@example.org", False) in attempts

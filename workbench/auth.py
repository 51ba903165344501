"""Staff accounts and sign-in: password hashing, slowing down guessers, session tokens, roles → pages.

Facilitators and researchers sign in with a username and a password; participants never do (their
invite link is their key). This module decides who may sign in, for how long, and which pages each
role may see; the store only keeps what it is told. It must never import Streamlit, never write SQL,
and never log, store or return a password — nor store a session token (only its sha256 is kept).

Sign-in policy against password guessing (`SignInPolicy`, applied per username by `sign_in`):

- Every password check is recorded, for the username as typed (normalised), whether or not that
  account exists; unknown usernames cost the same argon2 check as known ones, and every failure
  answers the same "wrong username or password" — so neither timing nor wording says which
  accounts exist.
- Every failure is answered only after a short pause (`failure_pause`, 0.5 s), so a script cannot
  try passwords back to back.
- Once a username has `max_failures` (5) failures within `window` (15 minutes) since its last
  successful sign-in, it is locked: further attempts are refused — without checking the password —
  for `first_lock` (1 minute) after the latest failure, doubling with every further failure
  (2, 4, 8 minutes, ...) up to `max_lock` (15 minutes). A success clears the count.
  A guesser therefore gets about 8 tries per 15 minutes per username. The price is that someone
  guessing can keep a real user locked out; `workbench user add` on the command line is the way
  back in for an administrator.

Sessions: a successful sign-in returns a `StaffSession` whose random token (256 bits) the browser
keeps in a cookie (`STAFF_COOKIE`, set by the web app's own endpoint: HttpOnly, SameSite=Strict);
the store keeps only its sha256 and an absolute expiry (`SESSION_LIFETIME`, 8 hours). The cookie
carries the token, its expiry and an HMAC-SHA256 over both (`session_cookie`), with a key kept in the
database (`cookie_key`): a cookie someone edited, or one past its expiry, is refused before the
store is asked (`cookie_token`); one that passes still needs its session in the store. Signing out,
an expired session or a disabled account all end access at once, cookie or not.

Single sign-on (optional): when `.streamlit/secrets.toml` configures an OpenID Connect provider
(`[auth]`, see README), the sign-in page offers `st.login`. The provider's identity is trusted only
through its *email* claim: `single_sign_on` starts the same kind of session for the staff account
whose email (`workbench user add --email`) equals it, unless the provider says the address is not
verified (`email_verified` false) or the account is disabled. A provider identity without such an
account gets no staff pages. Each such sign-in is recorded as an attempt for "sso:EMAIL".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from . import config
from .errors import InputError
from .store import NotFound, Store, hash_token, utcnow
from .store.accounts import ROLES

__all__ = [
    "DEMO_ACCOUNTS", "MAX_PASSWORD_LENGTH", "MIN_PASSWORD_LENGTH", "PAGES_BY_ROLE", "ROLES",
    "SESSION_LIFETIME", "STAFF_COOKIE", "AccountError", "SignInPolicy", "SignInRefused", "StaffPage", "StaffSession",
    "StaffUser",
    "change_password", "check_new_password", "cookie_key", "cookie_token", "cookie_user", "create_user",
    "ensure_demo_users", "hash_password", "locked_until", "normalise_email", "normalise_username",
    "pages_for", "session_cookie", "session_user", "set_email", "sign_in", "sign_out", "single_sign_on",
    "sso_providers", "staff_destination", "staff_page_user", "verify_password",
]

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024  # argon2 copes with more, but nobody types more; a cap bounds the work per attempt
SESSION_LIFETIME = timedelta(hours=8)
USERNAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._@+-]{1,63}")
EMAIL_PATTERN = re.compile(r"[^@\s]{1,64}@[^@\s.][^@\s]{0,253}")

#: The demo accounts `workbench user ensure-demo` creates when missing: role → (username, password).
#: Documented in the README, to be changed on any real deployment.
DEMO_ACCOUNTS: dict[str, tuple[str, str]] = {
    "facilitator": ("facilitator", "demo-facilitator"),
    "researcher": ("researcher", "demo-researcher"),
}

# argon2id with the library's defaults (RFC 9106 "low memory" profile: t=3, m=64 MiB, p=4).
_hasher = PasswordHasher()
_dummy_hash: str | None = None


class AccountError(InputError):
    """A username, role or new password that cannot be used (the message says which and why)."""


class SignInRefused(InputError):
    """Too many recent failed sign-ins for this username; try again after `retry_after`."""

    def __init__(self, username: str, locked_until: datetime, now: datetime) -> None:
        self.username = username
        self.locked_until = locked_until
        self.retry_after = locked_until - now
        minutes = max(1, -(-int(self.retry_after.total_seconds()) // 60))
        super().__init__(f"Too many failed sign-ins for {username!r}. Please try again in {minutes} "
                         f"minute{'s' if minutes != 1 else ''}.")


@dataclass(frozen=True)
class SignInPolicy:
    """How repeated failures for one username are slowed down (see the module docstring)."""

    max_failures: int = 5
    window: timedelta = timedelta(minutes=15)
    first_lock: timedelta = timedelta(minutes=1)
    max_lock: timedelta = timedelta(minutes=15)
    failure_pause: float = 0.5  # seconds

    def lock_for(self, failures: int) -> timedelta:
        """How long a username with `failures` recent failures stays locked after the latest one."""
        if failures < self.max_failures:
            return timedelta(0)
        return min(self.first_lock * 2 ** (failures - self.max_failures), self.max_lock)


POLICY = SignInPolicy()

#: The cookie that keeps a staff member signed in across reloads and tabs (see the module docstring).
STAFF_COOKIE = "workbench_staff"

#: Where the web app keeps a staff session (keys of Streamlit's session state, shared by webapp/main.py
#: and views/sign_in.py): the token, "go to the landing page on the next run", a notice for the sign-in
#: page, the staff page a signed-out visitor asked for, "signed out here: ignore the cookie".
WEB_TOKEN_KEY = "staff_token"
WEB_LANDING_KEY = "staff_go_to_landing"
WEB_NOTICE_KEY = "staff_sign_in_notice"
WEB_NEXT_KEY = "staff_next"
WEB_SIGNED_OUT_KEY = "staff_signed_out"


@dataclass(frozen=True)
class StaffPage:
    """A page a role may see: its file (relative to the project root), title, icon and URL path."""

    path: str
    title: str
    icon: str
    url_path: str


#: Which pages each role sees, in menu order; the first is where a signed-in user lands.
#: Roles do not nest: a researcher sees no facilitator page and a facilitator no researcher page.
PAGES_BY_ROLE: dict[str, tuple[StaffPage, ...]] = {
    "facilitator": (
        StaffPage("views/facilitator_setup.py", "Set up", "🛠️", "facilitator-setup"),
        StaffPage("views/facilitator_progress.py", "Progress", "📈", "facilitator-progress"),
        StaffPage("views/facilitator_moderation.py", "Moderation", "🧹", "facilitator-moderation"),
        StaffPage("views/moral_graph.py", "Moral graph", "🕸️", "moral-graph"),
        StaffPage("views/disagreement.py", "Disagreement", "⚖️", "disagreement"),
        StaffPage("views/report.py", "Report", "📄", "report"),
    ),
    "researcher": (
        StaffPage("views/researcher_exports.py", "Exports", "📦", "researcher-exports"),
        StaffPage("views/moral_graph.py", "Moral graph", "🕸️", "moral-graph"),
        StaffPage("views/disagreement.py", "Disagreement", "⚖️", "disagreement"),
        StaffPage("views/report.py", "Report", "📄", "report"),
    ),
}


#: Every staff page's URL path: a signed-out visit to one gets the sign-in page, then lands there.
STAFF_URL_PATHS = frozenset(page.url_path for pages in PAGES_BY_ROLE.values() for page in pages)


def pages_for(role: str) -> tuple[StaffPage, ...]:
    """The pages `role` may see; an unknown role sees none."""
    return PAGES_BY_ROLE.get(role, ())


def staff_destination(role: str, url_path: str | None) -> StaffPage | None:
    """The page at `url_path` if `role` may see it, else the role's landing page (None for no role)."""
    pages = pages_for(role)
    return next((p for p in pages if p.url_path == url_path), pages[0] if pages else None)


@dataclass(frozen=True)
class StaffUser:
    id: int
    username: str
    role: str

    @property
    def pages(self) -> tuple[StaffPage, ...]:
        return pages_for(self.role)


def staff_page_user(store: Store, page_path: str | Path, *, token: str | None,
                    query: Mapping[str, object]) -> StaffUser | None:
    """The signed-in user whose role may see the staff page at `page_path`, else None.

    Each staff page calls this itself and stops on None, besides webapp/main.py leaving the page out
    of the navigation: defence in depth, should a page ever run some other way (Streamlit's legacy
    pages-directory mode ran files in a pages/ directory by their URL on a process's first run).
    A URL carrying a participant's invite or join link never opens a staff page.
    """
    if query.get("invite") or query.get("join"):
        return None
    user = session_user(store, token)
    if user is None:
        return None
    target = Path(page_path).resolve()
    allowed = any((config.APP.parent / page.path).resolve() == target for page in user.pages)
    return user if allowed else None


@dataclass(frozen=True)
class StaffSession:
    """A signed-in user; `token` is shown once, to be kept in the browser session only."""

    token: str = field(repr=False)
    user: StaffUser
    expires_at: datetime


# -- accounts -----------------------------------------------------------------------------------


def normalise_username(username: str) -> str:
    """Lower-cased and stripped; 2–64 characters of a-z, 0-9 and . _ @ + - (so an e-mail address works)."""
    name = (username or "").strip().lower()
    if not USERNAME_PATTERN.fullmatch(name):
        raise AccountError(f"username: {username!r} must be 2 to 64 characters of letters, digits and"
                           " . _ @ + -, starting with a letter or digit")
    return name


def normalise_email(email: str) -> str:
    """Lower-cased and stripped; refused (AccountError naming the field) unless it looks like an address."""
    text = (email or "").strip().lower() if isinstance(email, str) else ""
    if not EMAIL_PATTERN.fullmatch(text):
        raise AccountError(f"email: {email!r} is not an email address")
    return text


def check_new_password(password: str) -> str:
    """The password if it may be used for a new account or a change, else AccountError saying why."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(
            f"password: must be at least {MIN_PASSWORD_LENGTH} characters, got {len(password)}")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(f"password: must be at most {MAX_PASSWORD_LENGTH} characters")
    if not password.strip():
        raise AccountError("password: must not be only spaces")
    return password


def hash_password(password: str) -> str:
    """An argon2id hash in PHC string format, salted afresh each time."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when `password` matches `password_hash`; False for a mismatch or an unreadable hash."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def create_user(store: Store, username: str, role: str, password: str | None, *,
                email: str | None = None) -> int:
    """Validate and add a staff account; returns its id. Raises AccountError, or the store's UsernameTaken.

    `password` None makes an account that signs in only through single sign-on (with `email`): its
    stored hash is of a random secret nobody knows.
    """
    name = normalise_username(username)
    if role not in ROLES:
        raise AccountError(f"role: must be one of {', '.join(ROLES)}, got {role!r}")
    if password is None and email is None:
        raise AccountError("password: required for an account without an email for single sign-on")
    address = None if email is None else normalise_email(email)
    secret = secrets.token_urlsafe(32) if password is None else check_new_password(password)
    return store.add_user(name, role, hash_password(secret), email=address)


def set_email(store: Store, username: str, email: str | None) -> None:
    """Give an existing account the email its single sign-on identity carries (None removes it)."""
    name = normalise_username(username)
    account = store.user(name)
    if account is None:
        raise NotFound(f"no user named {name!r}")
    store.set_user_email(account["id"], None if email is None else normalise_email(email))


def change_password(store: Store, username: str, password: str) -> None:
    """Give an existing account a new password. Raises AccountError, or the store's NotFound."""
    name = normalise_username(username)
    account = store.user(name)
    if account is None:
        raise NotFound(f"no user named {name!r}")
    store.set_password_hash(account["id"], hash_password(check_new_password(password)))


def ensure_demo_users(store: Store) -> list[str]:
    """Create the DEMO_ACCOUNTS that do not exist yet (an existing account is never touched).

    Returns the usernames created.
    """
    created = []
    for role, (username, password) in DEMO_ACCOUNTS.items():
        if store.user(username) is None:
            create_user(store, username, role, password)
            created.append(username)
    return created


# -- signing in and out -------------------------------------------------------------------------


def locked_until(store: Store, username: str, *, now: datetime | None = None,
                 policy: SignInPolicy | None = None) -> datetime | None:
    """Until when `username` is refused because of recent failures, or None if it may try now."""
    now, policy = now or utcnow(), policy or POLICY
    failures = store.recent_failures(username, since=now - policy.window)
    lock = policy.lock_for(len(failures))
    if not lock:
        return None
    until = failures[-1] + lock
    return until if until > now else None


def sign_in(store: Store, username: str, password: str, *, now: datetime | None = None,
            sleep: Callable[[float], None] = time.sleep,
            policy: SignInPolicy | None = None) -> StaffSession | None:
    """A new session for the right username and password, else None (after a pause).

    Raises SignInRefused, without checking the password, while the username is locked by the policy
    (`POLICY` unless another is given).
    """
    now, policy = now or utcnow(), policy or POLICY
    try:
        name = normalise_username(username)
    except AccountError:
        sleep(policy.failure_pause)  # no account can have this name; nothing to record or count
        return None
    until = locked_until(store, name, now=now, policy=policy)
    if until is not None:
        raise SignInRefused(name, until, now)
    account = store.user(name)
    if account is None or len(password) > MAX_PASSWORD_LENGTH:
        # Spend the same argon2 work as for a real account, so the answer's timing says nothing.
        verify_password(_dummy(), password[:MAX_PASSWORD_LENGTH])
        ok = False
    else:
        ok = verify_password(account["password_hash"], password) and account["disabled_at"] is None
    store.record_sign_in(name, ok, at=now)
    if not ok:
        sleep(policy.failure_pause)
        return None
    if _hasher.check_needs_rehash(account["password_hash"]):
        store.set_password_hash(account["id"], hash_password(password))
    return _start_session(store, account, now)


def _start_session(store: Store, account: Mapping, now: datetime) -> StaffSession:
    token = secrets.token_urlsafe(32)
    expires_at = now + SESSION_LIFETIME
    store.start_staff_session(hash_token(token), account["id"], expires_at, created_at=now)
    return StaffSession(token=token, user=StaffUser(account["id"], account["username"], account["role"]),
                        expires_at=expires_at)


def single_sign_on(store: Store, identity: Mapping[str, object], *,
                   now: datetime | None = None) -> StaffSession | None:
    """A session for the staff account whose email the OpenID Connect identity carries, else None.

    `identity` is the provider's claims as Streamlit gives them (`st.user`). Refused: no email claim,
    `email_verified` false, no account with that email, or a disabled account.
    """
    now = now or utcnow()
    verified = identity.get("email_verified", True)
    if verified is False or str(verified).strip().lower() == "false":
        return None
    try:
        email = normalise_email(str(identity.get("email") or ""))
    except AccountError:
        return None
    account = store.user_by_email(email)
    ok = account is not None and account["disabled_at"] is None
    store.record_sign_in(f"sso:{email}"[:300], ok, at=now)
    return _start_session(store, account, now) if ok else None


def sso_providers(auth_section: Mapping[str, object] | None) -> list[tuple[str, str]]:
    """The OpenID Connect providers `[auth]` in secrets.toml configures, as (provider, button label).

    Streamlit's own layout: client settings directly in `[auth]` are the "default" provider;
    `[auth.NAME]` sections with a `client_id` are named ones ("Sign in with Name"). An optional
    `label` in `[auth]` names the default provider's button.
    """
    if not auth_section:
        return []
    found = []
    if auth_section.get("client_id"):
        found.append(("default", str(auth_section.get("label") or "Sign in with your organisation's account")))
    for name, section in auth_section.items():
        if isinstance(section, Mapping) and section.get("client_id"):
            found.append((str(name), f"Sign in with {str(name).replace('-', ' ').title()}"))
    return found


def session_user(store: Store, token: str | None, *, now: datetime | None = None) -> StaffUser | None:
    """Who a session token belongs to; None if it is unknown, signed out, expired or its account disabled."""
    if not token or len(token) > 200:
        return None
    found = store.staff_session(hash_token(token))
    if found is None or found["ended_at"] is not None or found["disabled_at"] is not None:
        return None
    if (now or utcnow()) >= found["expires_at"]:
        return None
    return StaffUser(int(found["user_id"]), found["username"], found["role"])


# -- the session cookie --------------------------------------------------------------------------

_cookie_keys: dict[str, bytes] = {}


def cookie_key(store: Store) -> bytes:
    """The key that signs staff session cookies for this database (made on first use, then kept)."""
    key = _cookie_keys.get(store.path)
    if key is None:
        key = _cookie_keys[store.path] = store.signing_key("staff-cookie", secrets.token_bytes(32))
    return key


def _cookie_signature(key: bytes, token: str, expires: int) -> str:
    digest = hmac.new(key, f"staff-session.{token}.{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def session_cookie(key: bytes, token: str, expires_at: datetime) -> str:
    """The cookie value for a session: its token, its expiry (Unix seconds) and their signature."""
    expires = int(expires_at.replace(tzinfo=UTC).timestamp())
    return f"{token}.{expires}.{_cookie_signature(key, token, expires)}"


def cookie_token(key: bytes, value: str | None, *, now: datetime | None = None) -> str | None:
    """The session token in a cookie value, or None if it is missing, malformed, edited or expired.

    Says nothing about the session itself (signed out? account disabled?): `session_user` does.
    """
    if not isinstance(value, str) or not value or len(value) > 200:
        return None
    token, _, rest = value.partition(".")
    expires_text, _, signature = rest.partition(".")
    if not token or not expires_text.isdigit() or not signature:
        return None
    if not hmac.compare_digest(signature, _cookie_signature(key, token, int(expires_text))):
        return None
    now_seconds = (now or utcnow()).replace(tzinfo=UTC).timestamp()
    return token if now_seconds < int(expires_text) else None


def cookie_user(store: Store, value: str | None, *, now: datetime | None = None) -> StaffUser | None:
    """Who the staff session cookie `value` signs in, or None (no cookie, edited, expired or ended)."""
    return session_user(store, cookie_token(cookie_key(store), value, now=now), now=now)


def sign_out(store: Store, token: str | None) -> None:
    """End the session (an unknown, empty or already ended token is fine)."""
    if token and len(token) <= 200:
        store.end_staff_session(hash_token(token))


def _dummy() -> str:
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = hash_password(secrets.token_urlsafe(16))
    return _dummy_hash

"""Staff accounts, their sign-in sessions, sign-in attempts and the audit log.

All SQL for these lives here. The store keeps only hashes: an argon2 hash of each password (made
by `workbench.auth`, never here) and a sha256 of each session token. It decides nothing about
who may sign in or see what — that policy is `workbench.auth`'s.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from ..errors import Conflict, InputError
from .core import NotFound, StoreCore, as_timestamp, from_json, utcnow

ROLES = ("facilitator", "researcher")


class UsernameTaken(Conflict):
    """An account with this username already exists."""


class AccountStore(StoreCore):
    # -- users ------------------------------------------------------------------------------

    def add_user(self, username: str, role: str, password_hash: str, *, email: str | None = None,
                 created_at: datetime | None = None) -> int:
        """Create a staff account; `password_hash` comes from `workbench.auth.hash_password`, `email`
        (normalised by `workbench.auth`) lets it sign in through an OpenID Connect provider."""
        if role not in ROLES:
            raise InputError(f"role: must be one of {', '.join(ROLES)}, got {role!r}")

        # Checked before the write, so the usual refusal carries no cursor in its traceback.
        if self._one("SELECT 1 FROM users WHERE username = ?", [username]):
            raise UsernameTaken(f"a user named {username!r} already exists")
        if email is not None and self._one("SELECT 1 FROM users WHERE email = ?", [email]):
            raise UsernameTaken(f"another account already has the email {email!r}")
        try:
            return self._write(lambda cur: cur.execute(
                "INSERT INTO users (username, role, password_hash, email, created_at) VALUES (?, ?, ?, ?, ?)"
                " RETURNING id",
                [username, role, password_hash, email, created_at or utcnow()],
            ).fetchall()[0][0])
        except self._db.clashes:  # two processes adding the same name or email at once
            raise UsernameTaken(f"a user named {username!r} or with email {email!r} already exists") from None

    def user(self, username: str) -> dict | None:
        """The account (with its password hash, for checking) or None."""
        return self._record(
            "SELECT id, username, role, password_hash, email, created_at, disabled_at FROM users WHERE username = ?",
            [username],
        )

    def user_by_email(self, email: str) -> dict | None:
        """The account with this (normalised) email, without its password hash, or None."""
        return self._record(
            "SELECT id, username, role, email, created_at, disabled_at FROM users WHERE email = ?", [email])

    def set_user_email(self, user_id: int, email: str | None) -> None:
        """Give an account an email for single sign-on (None removes it)."""
        def work(cur):
            if email is not None and cur.execute("SELECT 1 FROM users WHERE email = ? AND id <> ?",
                                                 [email, user_id]).fetchall():
                raise UsernameTaken(f"another account already has the email {email!r}")
            if not cur.execute("UPDATE users SET email = ? WHERE id = ? RETURNING id",
                               [email, user_id]).fetchall():
                raise NotFound(f"no user {user_id}")

        self._write(work)

    def users(self) -> pd.DataFrame:
        """Every account, without password hashes: id, username, role, email, created_at, disabled_at."""
        return self._frame("SELECT id, username, role, email, created_at, disabled_at FROM users ORDER BY id")

    def set_password_hash(self, user_id: int, password_hash: str) -> None:
        """Replace an account's password hash (a new password, or a rehash with stronger parameters)."""
        def work(cur):
            if not cur.execute("UPDATE users SET password_hash = ? WHERE id = ? RETURNING id",
                               [password_hash, user_id]).fetchall():
                raise NotFound(f"no user {user_id}")

        self._write(work)

    def disable_user(self, user_id: int) -> None:
        """Stop an account from signing in; its open sessions stop working at once."""
        def work(cur):
            if not cur.execute("UPDATE users SET disabled_at = coalesce(disabled_at, ?) WHERE id = ?"
                               " RETURNING id", [utcnow(), user_id]).fetchall():
                raise NotFound(f"no user {user_id}")

        self._write(work)

    # -- sign-in attempts -------------------------------------------------------------------

    def record_sign_in(self, username: str, ok: bool, *, at: datetime | None = None) -> None:
        """One password check for `username` (existing or not) and whether it succeeded."""
        self._write(lambda cur: cur.execute(
            "INSERT INTO sign_in_attempts (username, ok, created_at) VALUES (?, ?, ?)",
            [username, bool(ok), at or utcnow()],
        ))

    def recent_failures(self, username: str, since: datetime | str) -> list[datetime]:
        """Times of failed sign-ins for `username` after `since` and after its latest success, oldest first.

        A successful sign-in wipes the slate: only failures since then count against the username.
        """
        rows = self._rows(
            "SELECT created_at FROM sign_in_attempts WHERE username = ? AND NOT ok AND created_at > ?"
            " AND created_at > coalesce((SELECT max(created_at) FROM sign_in_attempts"
            "  WHERE username = ? AND ok), TIMESTAMP '-infinity')"
            " ORDER BY created_at",
            [username, as_timestamp(since), username],
        )
        return [r[0] for r in rows]

    # -- staff sessions ---------------------------------------------------------------------

    def start_staff_session(self, token_hash: str, user_id: int, expires_at: datetime, *,
                            created_at: datetime | None = None) -> None:
        self._write(lambda cur: cur.execute(
            "INSERT INTO staff_sessions (token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
            [token_hash, user_id, created_at or utcnow(), expires_at],
        ))

    def staff_session(self, token_hash: str) -> dict | None:
        """A session with its account: token_hash, user_id, username, role, created_at, expires_at,
        ended_at, disabled_at — or None. Whether it is still valid is for the caller to judge."""
        return self._record(
            "SELECT s.token_hash, s.user_id, u.username, u.role, s.created_at, s.expires_at, s.ended_at,"
            " u.disabled_at FROM staff_sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?",
            [token_hash],
        )

    def end_staff_session(self, token_hash: str, *, at: datetime | None = None) -> None:
        """Sign out: the session stops working (ending an unknown or ended session does nothing)."""
        self._write(lambda cur: cur.execute(
            "UPDATE staff_sessions SET ended_at = ? WHERE token_hash = ? AND ended_at IS NULL",
            [at or utcnow(), token_hash],
        ))

    def signing_key(self, name: str, new_key: bytes) -> bytes:
        """The key kept for signing `name` things; `new_key` becomes it if there is none yet.

        Two processes asking at once keep the same key: the first insert wins, both read it back.
        """
        def work(cur):
            cur.execute("INSERT INTO server_keys (name, key, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                        [name, new_key.hex(), utcnow()])
            return cur.execute("SELECT key FROM server_keys WHERE name = ?", [name]).fetchall()[0][0]

        row = self._one("SELECT key FROM server_keys WHERE name = ?", [name])
        return bytes.fromhex(row[0] if row else self._write(work))

    # -- the audit log ----------------------------------------------------------------------

    def record_audit(self, deliberation_id: str | None, actor_id: int | None, action: str,
                     target: str | None = None, details: dict | None = None) -> int:
        """Log who (a user id; None for the command line) did `action` to `target`; returns the entry id."""
        return self._write(lambda cur: self._audit(cur, deliberation_id, actor_id, action, target, details, utcnow()))

    def audit_log(self, deliberation_id: str | None = None, *, actor_id: int | None = None,
                  action: str | None = None) -> pd.DataFrame:
        """Audit entries, oldest first: id, deliberation_id, actor_id, actor (username), action, target,
        details (dict or None), created_at."""
        where, params = ["TRUE"], []
        for column, value in (("a.deliberation_id", deliberation_id), ("a.actor_id", actor_id),
                              ("a.action", action)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        df = self._frame(
            "SELECT a.id, a.deliberation_id, a.actor_id, u.username AS actor, a.action, a.target, a.details,"
            " a.created_at FROM audit_log a LEFT JOIN users u ON u.id = a.actor_id"
            f" WHERE {' AND '.join(where)} ORDER BY a.id",
            params,
        )
        df["details"] = [None if v is None or v != v else from_json(v) for v in df["details"]]  # NaN: NULL
        return df

    def _record(self, sql: str, params: list) -> dict | None:
        """The first row as a dict of plain Python values (datetime, int, None), or None."""
        with self._cursor() as cur:
            result = cur.execute(sql, params)
            rows = result.fetchall()
            names = [d[0] for d in result.description]
        return dict(zip(names, rows[0], strict=True)) if rows else None

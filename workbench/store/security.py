"""Refused invite links: the events the invite-guessing slow-down counts.

All SQL for them lives here. A row says only *when* a look-up was refused and *which browser
session* (as a sha256) asked: never the token that was tried, nor its hash, so a database reader
learns nothing about tokens, valid or not. How long to pause is `workbench.participation`'s policy;
this module decides nothing.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from .core import StoreCore, as_timestamp, utcnow


def client_hash(client: str | None) -> str | None:
    """A stable pseudonym for a browser session id (the id itself is a session handle)."""
    return None if client is None else hashlib.sha256(f"invite-client:{client}".encode()).hexdigest()


class SecurityStore(StoreCore):
    def record_invite_refusal(self, client: str | None = None, *, at: datetime | None = None) -> None:
        """One refused invite look-up by `client` (a browser session id, hashed here; None if unknown)."""
        self._write(lambda cur: cur.execute(
            "INSERT INTO invite_refusals (client_hash, created_at) VALUES (?, ?)",
            [client_hash(client), at or utcnow()],
        ))

    def invite_refusals(self, since: datetime | str, *, client: str | None = None) -> tuple[int, int]:
        """Refused invite look-ups after `since`: (overall, by `client`); the second is 0 without a client."""
        row = self._one(
            "SELECT count(*), count(*) FILTER (WHERE client_hash = ?) FROM invite_refusals WHERE created_at > ?",
            [client_hash(client), as_timestamp(since)],
        )
        return int(row[0]), int(row[1])

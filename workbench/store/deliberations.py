"""Deliberations, their questions and contexts, participants, invites and participant attributes.

All SQL for these lives here. Invite tokens never reach the database: only their sha256 does,
and look-ups compare hashes in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

import pandas as pd

from .. import ids
from ..ids import public_id
from ..models import DeliberationSpec, InputError
from .core import NotFound, StoreCore, as_timestamp, from_json, to_json, utcnow


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    """An unguessable invite token (128 bits, URL-safe)."""
    return secrets.token_urlsafe(16)


class DeliberationStore(StoreCore):
    # -- deliberations ----------------------------------------------------------------------

    def save_deliberation(self, spec: DeliberationSpec, *, source: str = "yaml", actor_id: int | None = None) -> None:
        """Create or update a deliberation with its questions and contexts (contexts are never deleted);
        audited in the same transaction."""
        def work(cur):
            now = utcnow()
            self._save_deliberation(cur, spec, source=source, now=now)
            self._audit(cur, spec.id, actor_id, "save_deliberation", spec.id, {"questions": len(spec.questions)}, now)

        self._write(work)

    def _save_deliberation(self, cur, spec: DeliberationSpec, *, source: str, now: datetime) -> None:
        settings = {
            "signup_limits": spec.signup_limits.model_dump(),
            "rounds": spec.rounds.model_dump(),
            "demographics": [d.model_dump() for d in spec.demographics],
            "closing": spec.closing.model_dump(),
        }
        cur.execute(
            "INSERT INTO deliberations (id, title, description, consent_text, licence, open_signup,"
            " settings, source, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET title = excluded.title, description = excluded.description,"
            " consent_text = excluded.consent_text, licence = excluded.licence,"
            " open_signup = excluded.open_signup, settings = excluded.settings",
            [spec.id, spec.title, spec.description, spec.consent, spec.licence, spec.open_signup,
             to_json(settings), source, now],
        )
        for position, q in enumerate(spec.questions):
            qid = f"{spec.id}/{q.slug}"
            cur.execute(
                "INSERT INTO questions (id, deliberation_id, slug, title, prompt, position)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET title = excluded.title,"
                " prompt = excluded.prompt, position = excluded.position",
                [qid, spec.id, q.slug, q.title, q.prompt, position],
            )
            for name in q.contexts:
                context_id = self._ensure_context(cur, spec.id, name, now=now)
                cur.execute(
                    "INSERT INTO question_contexts VALUES (?, ?) ON CONFLICT DO NOTHING", [qid, context_id]
                )

    @staticmethod
    def _ensure_context(cur, deliberation_id: str, name: str, *, now: datetime, status: str = "approved",
                        proposed_by: int | None = None) -> int:
        rows = cur.execute(
            "SELECT id FROM contexts WHERE deliberation_id = ? AND name = ?", [deliberation_id, name]
        ).fetchall()
        if rows:
            return rows[0][0]
        return cur.execute(
            "INSERT INTO contexts (deliberation_id, name, status, proposed_by, created_at)"
            " VALUES (?, ?, ?, ?, ?) RETURNING id",
            [deliberation_id, name, status, proposed_by, now],
        ).fetchall()[0][0]

    def deliberation(self, deliberation_id: str) -> dict:
        df = self._frame("SELECT * FROM deliberations WHERE id = ?", [deliberation_id])
        if df.empty:
            raise NotFound(f"no deliberation {deliberation_id!r}")
        row = df.iloc[0].to_dict()
        row["settings"] = from_json(row["settings"])
        return row

    def deliberations(self) -> pd.DataFrame:
        return self._frame(
            "SELECT d.id, d.title, d.source, d.open_signup, d.created_at,"
            " (SELECT count(*) FROM participants p WHERE p.deliberation_id = d.id) AS participants,"
            " (SELECT count(*) FROM values_cards c WHERE c.deliberation_id = d.id AND c.kind = 'card') AS cards"
            " FROM deliberations d ORDER BY d.created_at, d.id"
        )

    def questions(self, deliberation_id: str) -> pd.DataFrame:
        return self._frame(
            "SELECT id, slug, title, prompt, position FROM questions WHERE deliberation_id = ?"
            " ORDER BY position, id",
            [deliberation_id],
        )

    def contexts(self, deliberation_id: str, *, question_id: str | None = None,
                 include_proposed: bool = False) -> pd.DataFrame:
        """Contexts of a deliberation (or of one question), approved ones unless asked otherwise."""
        status = "('approved', 'proposed')" if include_proposed else "('approved')"
        if question_id is None:
            return self._frame(
                f"SELECT id, name, status FROM contexts WHERE deliberation_id = ? AND status IN {status}"
                " ORDER BY id",
                [deliberation_id],
            )
        return self._frame(
            "SELECT c.id, c.name, c.status FROM contexts c JOIN question_contexts qc ON qc.context_id = c.id"
            f" WHERE qc.question_id = ? AND c.status IN {status} ORDER BY c.id",
            [question_id],
        )

    def context_id(self, deliberation_id: str, name: str) -> int:
        row = self._one("SELECT id FROM contexts WHERE deliberation_id = ? AND name = ?", [deliberation_id, name])
        if row is None:
            raise NotFound(f"no context {name!r} in deliberation {deliberation_id!r}")
        return row[0]

    # -- participants and invites -----------------------------------------------------------

    def create_invites(self, deliberation_id: str, n: int, *, signup: str = "invite",
                       actor_id: int | None = None) -> list[tuple[int, str]]:
        """Create `n` participants with fresh invite tokens; returns (participant_id, token) pairs.

        The tokens are returned once, here, and never stored: only their hashes are. Invites a staff
        member makes (`signup='invite'`) are audited in the same transaction; an open sign-up is not a
        staff action.
        """
        if n < 1:
            raise InputError(f"n: must be at least 1, got {n}")
        self.deliberation(deliberation_id)  # raises NotFound
        tokens = [new_token() for _ in range(n)]
        now = utcnow()

        def work(cur):
            ids = []
            for token in tokens:
                ids.append(cur.execute(
                    "INSERT INTO participants (deliberation_id, token_hash, signup, created_at)"
                    " VALUES (?, ?, ?, ?) RETURNING id",
                    [deliberation_id, hash_token(token), signup, now],
                ).fetchall()[0][0])
            if signup == "invite":
                self._audit(cur, deliberation_id, actor_id, "create_invites", deliberation_id, {"count": n}, now)
            return ids

        return list(zip(self._write(work), tokens, strict=True))

    def participant_by_token(self, token: str) -> dict | None:
        """The participant an invite token belongs to, or None for unknown or revoked tokens."""
        if not token or len(token) > 200:
            return None
        digest = hash_token(token)
        row = self._one(
            "SELECT id, deliberation_id, token_hash, revoked_at FROM participants WHERE token_hash = ?", [digest]
        )
        # The index look-up finds the row; the constant-time compare keeps the final check free of
        # early exits that would leak how much of a guessed hash matched.
        if row is None or not hmac.compare_digest(row[2], digest) or row[3] is not None:
            return None
        return {"id": row[0], "deliberation_id": row[1]}

    def revoke_invites(self, participant_ids: list[int], *, actor_id: int | None = None) -> None:
        """Withdraw these participants' invite links (their answers stay); audited, all or nothing."""
        def work(cur):
            now = utcnow()
            revoked = []
            for pid in participant_ids:
                rows = cur.execute(
                    "UPDATE participants SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"
                    " RETURNING deliberation_id, source_id", [now, int(pid)]).fetchall()
                if not rows:
                    raise NotFound(f"no active invite for participant {public_id('participant', pid)}")
                revoked.append((rows[0][0], public_id("participant", pid, rows[0][1])))
            for deliberation_id in sorted({d for d, _ in revoked}):
                self._audit(cur, deliberation_id, actor_id, "revoke_invites", deliberation_id,
                            {"participants": [p for d, p in revoked if d == deliberation_id]}, now)

        self._write(work)

    def id_map(self, deliberation_id: str, kind: ids.Kind) -> ids.IdMap:
        """Store ids and public ids (workbench.ids) of every participant, card, statement, value or
        interview of a deliberation, retired and hidden ones included."""
        sql = {
            "participant": "SELECT id, source_id FROM participants WHERE deliberation_id = ?",
            "value": "SELECT id, source_id FROM canonical_values WHERE deliberation_id = ?",
            "card": "SELECT id, source_id FROM values_cards WHERE deliberation_id = ? AND kind = 'card'",
            "statement": "SELECT id, source_id FROM values_cards WHERE deliberation_id = ? AND kind = 'statement'",
            "interview": "SELECT i.id, NULL FROM interviews i JOIN participants p ON p.id = i.participant_id"
                         " WHERE p.deliberation_id = ?",
        }[kind]
        rows = self._rows(sql + " ORDER BY 1", [deliberation_id])
        return ids.IdMap.of(kind, [r[0] for r in rows], [r[1] for r in rows])

    def participant(self, participant_id: int) -> dict:
        df = self._frame(
            "SELECT id, deliberation_id, source_id, signup, revoked_at, created_at FROM participants WHERE id = ?",
            [participant_id],
        )
        if df.empty:
            raise NotFound(f"no participant {participant_id}")
        return df.iloc[0].to_dict()

    def participants(self, deliberation_id: str, *, taking_part: bool = False) -> pd.DataFrame:
        """Pseudonymous participant rows (never token hashes). `taking_part` leaves out people invited (or,
        before sign-up waited for consent, joined by the open link) who never agreed to take part: they have
        no data. Imported and simulated participants take part through their data and always count."""
        return self._frame(
            "SELECT id AS participant_id, source_id, signup, revoked_at IS NOT NULL AS revoked, created_at"
            " FROM participants p WHERE deliberation_id = ? AND (NOT ? OR signup NOT IN ('open', 'invite')"
            "   OR EXISTS (SELECT 1 FROM participant_steps s WHERE s.participant_id = p.id)) ORDER BY id",
            [deliberation_id, taking_part],
        )

    # -- attributes (events; latest per key wins) -------------------------------------------

    def attributes(self, deliberation_id: str, *, until: datetime | str | None = None) -> pd.DataFrame:
        """One row per participant, one column per attribute key (latest value wins)."""
        until = as_timestamp(until)
        long = self._frame(
            "SELECT DISTINCT ON (a.participant_id, a.key) a.participant_id, a.key, a.value"
            " FROM participant_attributes a JOIN participants p ON p.id = a.participant_id"
            " WHERE p.deliberation_id = ? AND (CAST(? AS TIMESTAMP) IS NULL OR a.created_at < ?)"
            " ORDER BY a.participant_id, a.key, a.id DESC",
            [deliberation_id, until, until],
        )
        if long.empty:
            return pd.DataFrame({"participant_id": pd.Series(dtype="int64")})
        wide = long.pivot(index="participant_id", columns="key", values="value").reset_index()
        wide.columns.name = None
        return wide.sort_values("participant_id").reset_index(drop=True)

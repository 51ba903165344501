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

from ..models import AttributeIn, DeliberationSpec, InputError, validated
from .core import NotFound, StoreCore, as_timestamp, from_json, to_json, utcnow


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    """An unguessable invite token (128 bits, URL-safe)."""
    return secrets.token_urlsafe(16)


class DeliberationStore(StoreCore):
    # -- deliberations ----------------------------------------------------------------------

    def save_deliberation(self, spec: DeliberationSpec, *, source: str = "yaml") -> None:
        """Create or update a deliberation with its questions and contexts (contexts are never deleted)."""
        self._write(lambda cur: self._save_deliberation(cur, spec, source=source, now=utcnow()))

    def _save_deliberation(self, cur, spec: DeliberationSpec, *, source: str, now: datetime) -> None:
        settings = {
            "rounds": spec.rounds.model_dump(),
            "demographics": [d.model_dump() for d in spec.demographics],
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

    def create_invites(self, deliberation_id: str, n: int, *, signup: str = "invite") -> list[tuple[int, str]]:
        """Create `n` participants with fresh invite tokens; returns (participant_id, token) pairs.

        The tokens are returned once, here, and never stored: only their hashes are.
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

    def revoke_invite(self, participant_id: int) -> None:
        def work(cur):
            n = cur.execute(
                "UPDATE participants SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL RETURNING id",
                [utcnow(), participant_id],
            ).fetchall()
            if not n:
                raise NotFound(f"no active invite for participant {participant_id}")

        self._write(work)

    def add_participants(self, deliberation_id: str, source_ids: list[str], *, signup: str = "import",
                         created_at: list[datetime] | None = None) -> dict[str, int]:
        """Participants known by an id in imported data; existing ones are kept. Returns source_id → id."""
        now = utcnow()

        def work(cur):
            return self._ensure_participants(cur, deliberation_id, source_ids, signup=signup,
                                             created_at=created_at, now=now)

        return self._write(work)

    @staticmethod
    def _ensure_participants(cur, deliberation_id, source_ids, *, signup, created_at=None, now=None):
        existing = dict(cur.execute(
            "SELECT source_id, id FROM participants WHERE deliberation_id = ? AND source_id IS NOT NULL",
            [deliberation_id],
        ).fetchall())
        out = {}
        for i, sid in enumerate(source_ids):
            sid = str(sid)
            if sid in existing:
                out[sid] = existing[sid]
                continue
            ts = created_at[i] if created_at is not None else now
            pid = cur.execute(
                "INSERT INTO participants (deliberation_id, source_id, signup, created_at)"
                " VALUES (?, ?, ?, ?) RETURNING id",
                [deliberation_id, sid, signup, ts or utcnow()],
            ).fetchall()[0][0]
            existing[sid] = out[sid] = pid
        return out

    def participant(self, participant_id: int) -> dict:
        df = self._frame(
            "SELECT id, deliberation_id, source_id, signup, revoked_at, created_at FROM participants WHERE id = ?",
            [participant_id],
        )
        if df.empty:
            raise NotFound(f"no participant {participant_id}")
        return df.iloc[0].to_dict()

    def participants(self, deliberation_id: str) -> pd.DataFrame:
        """Pseudonymous participant rows (never token hashes)."""
        return self._frame(
            "SELECT id AS participant_id, source_id, signup, revoked_at IS NOT NULL AS revoked, created_at"
            " FROM participants WHERE deliberation_id = ? ORDER BY id",
            [deliberation_id],
        )

    # -- attributes (events; latest per key wins) -------------------------------------------

    def record_attributes(self, participant_id: int, attributes: dict[str, str | None]) -> None:
        rows = [validated(AttributeIn, {"key": k, "value": v}, where=f"attribute {k!r}") for k, v in attributes.items()]
        now = utcnow()

        def work(cur):
            for a in rows:
                cur.execute(
                    "INSERT INTO participant_attributes (participant_id, key, value, created_at) VALUES (?, ?, ?, ?)",
                    [participant_id, a.key, a.value, now],
                )

        self._write(work)

    def _insert_attributes(self, cur, rows: list[tuple[int, str, str | None]], now: datetime) -> None:
        if rows:
            cur.executemany(
                "INSERT INTO participant_attributes (participant_id, key, value, created_at) VALUES (?, ?, ?, ?)",
                [(p, k, v, now) for p, k, v in rows],
            )

    def attributes(self, deliberation_id: str, *, until: datetime | str | None = None) -> pd.DataFrame:
        """One row per participant, one column per attribute key (latest value wins)."""
        until = as_timestamp(until)
        long = self._frame(
            "SELECT a.participant_id, a.key, arg_max(a.value, a.id) AS value"
            " FROM participant_attributes a JOIN participants p ON p.id = a.participant_id"
            " WHERE p.deliberation_id = ? AND (CAST(? AS TIMESTAMP) IS NULL OR a.created_at < ?)"
            " GROUP BY a.participant_id, a.key",
            [deliberation_id, until, until],
        )
        if long.empty:
            return pd.DataFrame({"participant_id": pd.Series(dtype="int64")})
        wide = long.pivot(index="participant_id", columns="key", values="value").reset_index()
        wide.columns.name = None
        return wide.sort_values("participant_id").reset_index(drop=True)

    # -- where a participant is (events) ----------------------------------------------------

    def record_step(self, participant_id: int, step: str, payload: dict | None = None) -> None:
        def work(cur):
            cur.execute(
                "INSERT INTO participant_steps (participant_id, step, payload, created_at) VALUES (?, ?, ?, ?)",
                [participant_id, step, to_json(payload or {}), utcnow()],
            )

        self._write(work)

    def steps(self, participant_id: int) -> list[dict]:
        rows = self._rows(
            "SELECT step, payload, created_at FROM participant_steps WHERE participant_id = ? ORDER BY id",
            [participant_id],
        )
        return [{"step": s, "payload": from_json(p), "created_at": t} for s, p, t in rows]

    def progress(self, deliberation_id: str) -> pd.DataFrame:
        """Participants per furthest step reached."""
        return self._frame(
            "SELECT last_step AS step, count(*) AS participants FROM ("
            "  SELECT p.id, arg_max(s.step, s.id) AS last_step FROM participants p"
            "  JOIN participant_steps s ON s.participant_id = p.id WHERE p.deliberation_id = ? GROUP BY p.id)"
            " GROUP BY last_step ORDER BY participants DESC",
            [deliberation_id],
        )

    def _check_deliberation(self, deliberation_id: str) -> None:
        if self._one("SELECT 1 FROM deliberations WHERE id = ?", [deliberation_id]) is None:
            raise NotFound(f"no deliberation {deliberation_id!r}")

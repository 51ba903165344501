"""Interviews, values cards, canonical values, card→canonical links and the embedding cache.

All SQL for these lives here. Interview stages and card→canonical links are append-only events
(the latest per stage / per card wins); a card, once confirmed, changes only by moderation.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from ..models import ValuesCardIn
from .core import NotFound, StoreCore, as_timestamp, from_json, to_json, utcnow


class CardStore(StoreCore):
    # -- interviews -------------------------------------------------------------------------

    def start_interview(self, participant_id: int, question_id: str, *, mode: str = "guided") -> int:
        def work(cur):
            return cur.execute(
                "INSERT INTO interviews (participant_id, question_id, mode, created_at) VALUES (?, ?, ?, ?)"
                " RETURNING id",
                [participant_id, question_id, mode, utcnow()],
            ).fetchall()[0][0]

        return self._write(work)

    def current_interview(self, participant_id: int) -> dict | None:
        df = self._frame(
            "SELECT id, question_id, mode, created_at FROM interviews WHERE participant_id = ?"
            " ORDER BY id DESC LIMIT 1",
            [participant_id],
        )
        return None if df.empty else df.iloc[0].to_dict()

    def set_interview_mode(self, interview_id: int, mode: str) -> None:
        self._write(lambda cur: cur.execute("UPDATE interviews SET mode = ? WHERE id = ?", [mode, interview_id]))

    def record_interview_step(self, interview_id: int, stage: str, payload: dict) -> None:
        self._write(lambda cur: cur.execute(
            "INSERT INTO interview_steps (interview_id, stage, payload, created_at) VALUES (?, ?, ?, ?)",
            [interview_id, stage, to_json(payload), utcnow()],
        ))

    def interview_state(self, interview_id: int) -> dict[str, dict]:
        """The latest submitted payload of every stage of an interview."""
        rows = self._rows(
            "SELECT stage, arg_max(payload, id) FROM interview_steps WHERE interview_id = ? GROUP BY stage",
            [interview_id],
        )
        return {stage: from_json(payload) for stage, payload in rows}

    def interview_log(self, interview_id: int) -> list[tuple[str, dict]]:
        """Every submitted stage and saved draft of an interview, oldest first."""
        rows = self._rows(
            "SELECT stage, payload FROM interview_steps WHERE interview_id = ? ORDER BY id", [interview_id]
        )
        return [(stage, from_json(payload)) for stage, payload in rows]

    def record_message(self, interview_id: int, role: str, content: str) -> None:
        self._write(lambda cur: cur.execute(
            "INSERT INTO interview_messages (interview_id, role, content, created_at) VALUES (?, ?, ?, ?)",
            [interview_id, role, content, utcnow()],
        ))

    def interviewer_failures(self, deliberation_id: str) -> pd.DataFrame:
        """When the LLM interviewer failed and the participant was moved to the guided flow."""
        return self._frame(
            "SELECT m.created_at, i.participant_id, m.content AS error FROM interview_messages m"
            " JOIN interviews i ON i.id = m.interview_id JOIN participants p ON p.id = i.participant_id"
            " WHERE p.deliberation_id = ? AND m.role = 'error' ORDER BY m.created_at DESC",
            [deliberation_id],
        )

    def transcript(self, interview_id: int) -> list[dict]:
        rows = self._rows(
            "SELECT role, content FROM interview_messages WHERE interview_id = ? ORDER BY id", [interview_id]
        )
        return [{"role": r, "content": c} for r, c in rows]

    # -- values cards -----------------------------------------------------------------------

    def save_card(self, deliberation_id: str, card: ValuesCardIn, *, author_id: int | None,
                  interview_id: int | None = None, created_at: datetime | None = None) -> int:
        """Store a confirmed card with its contexts; a context not yet known is stored as proposed."""
        now = created_at or utcnow()

        def work(cur):
            card_id = cur.execute(
                "INSERT INTO values_cards (deliberation_id, question_id, author_id, interview_id, title,"
                " description, policies, overrides, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                [deliberation_id, card.question_id, author_id, interview_id, card.title, card.description,
                 list(card.policies), list(card.overrides), now],
            ).fetchall()[0][0]
            for name in card.contexts:
                context_id = self._ensure_context(cur, deliberation_id, name, now=now, status="proposed",
                                                  proposed_by=author_id)
                cur.execute("INSERT INTO card_contexts VALUES (?, ?) ON CONFLICT DO NOTHING", [card_id, context_id])
            return card_id

        return self._write(work)

    def card(self, card_id: int) -> dict:
        df = self.cards(card_ids=[card_id], include_hidden=True)
        if df.empty:
            raise NotFound(f"no values card {card_id}")
        return df.iloc[0].to_dict()

    def cards(self, deliberation_id: str | None = None, *, question_id: str | None = None,
              include_hidden: bool = False, kind: str = "card", card_ids: list[int] | None = None,
              until: datetime | str | None = None) -> pd.DataFrame:
        """Cards with their contexts (names) and current canonical value."""
        until = as_timestamp(until)
        where, params = ["c.kind = ?"], [kind]
        if deliberation_id is not None:
            where.append("c.deliberation_id = ?")
            params.append(deliberation_id)
        if question_id is not None:
            where.append("c.question_id = ?")
            params.append(question_id)
        if not include_hidden:
            where.append("c.status = 'active'")
        if card_ids is not None:
            where.append("list_contains(?, c.id)")
            params.append([int(i) for i in card_ids])
        if until is not None:
            where.append("c.created_at < ?")
            params.append(until)
        return self._frame(
            "WITH link AS (SELECT card_id, arg_max(canonical_id, id) AS canonical_id FROM card_canonical"
            " GROUP BY card_id),"
            " ctx AS (SELECT cc.card_id, list(x.name ORDER BY x.name) AS contexts FROM card_contexts cc"
            " JOIN contexts x ON x.id = cc.context_id GROUP BY cc.card_id)"
            " SELECT c.id, c.deliberation_id, c.question_id, c.author_id, c.source_id, c.title, c.description,"
            " c.policies, c.status, c.hidden_reason, c.overrides, c.created_at,"
            " coalesce(ctx.contexts, []) AS contexts, link.canonical_id"
            " FROM values_cards c LEFT JOIN link ON link.card_id = c.id LEFT JOIN ctx ON ctx.card_id = c.id"
            f" WHERE {' AND '.join(where)} ORDER BY c.id",
            params,
        )

    def cards_by(self, author_id: int) -> pd.DataFrame:
        return self._frame(
            "SELECT id, question_id, title, description, policies, status, created_at FROM values_cards"
            " WHERE author_id = ? ORDER BY id",
            [author_id],
        )

    def hide_card(self, card_id: int, reason: str) -> None:
        def work(cur):
            if not cur.execute("UPDATE values_cards SET status = 'hidden', hidden_reason = ? WHERE id = ?"
                               " RETURNING id", [reason, card_id]).fetchall():
                raise NotFound(f"no values card {card_id}")

        self._write(work)

    # -- canonical values -------------------------------------------------------------------

    def canonical_values(self, deliberation_id: str, *, question_id: str | None = None,
                         include_retired: bool = False) -> pd.DataFrame:
        """Canonical values with their number of active member cards and their contexts."""
        where, params = ["v.deliberation_id = ?"], [deliberation_id]
        if question_id is not None:
            where.append("(v.question_id = ? OR v.question_id IS NULL)")
            params.append(question_id)
        if not include_retired:
            where.append("v.retired_at IS NULL")
        return self._frame(
            "WITH link AS (SELECT card_id, arg_max(canonical_id, id) AS canonical_id FROM card_canonical"
            " GROUP BY card_id),"
            " members AS (SELECT l.canonical_id, count(DISTINCT c.id) AS members, list(DISTINCT x.name) AS contexts"
            " FROM link l JOIN values_cards c ON c.id = l.card_id AND c.status = 'active'"
            " LEFT JOIN card_contexts cc ON cc.card_id = c.id LEFT JOIN contexts x ON x.id = cc.context_id"
            " GROUP BY l.canonical_id)"
            " SELECT v.id, v.question_id, v.source_id, v.title, v.description, v.policies, v.origin,"
            " coalesce(m.members, 0) AS members, list_filter(coalesce(m.contexts, []), lambda s: s IS NOT NULL)"
            " AS contexts, v.created_at"
            f" FROM canonical_values v LEFT JOIN members m ON m.canonical_id = v.id WHERE {' AND '.join(where)}"
            " ORDER BY v.id",
            params,
        )

    def add_canonical_value(self, deliberation_id: str, *, title: str, description: str, policies: list[str],
                            origin: str, question_id: str | None = None, source_id: str | None = None,
                            members: list[int] = (), provenance: str = "manual",
                            run_id: int | None = None) -> int:
        now = utcnow()

        def work(cur):
            vid = cur.execute(
                "INSERT INTO canonical_values (deliberation_id, question_id, source_id, title, description,"
                " policies, origin, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                [deliberation_id, question_id, source_id, title, description, list(policies), origin, now],
            ).fetchall()[0][0]
            self._link(cur, [(c, vid) for c in members], provenance, run_id, now)
            return vid

        return self._write(work)

    @staticmethod
    def _link(cur, links: list[tuple[int, int]], provenance: str, run_id: int | None, now: datetime) -> None:
        if links:
            cur.executemany(
                "INSERT INTO card_canonical (card_id, canonical_id, provenance, run_id, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                [(int(c), int(v), provenance, run_id, now) for c, v in links],
            )

    def link_cards(self, links: list[tuple[int, int]], *, provenance: str, run_id: int | None = None) -> None:
        """Point cards at canonical values (card_id, canonical_id); the latest link per card wins."""
        self._write(lambda cur: self._link(cur, links, provenance, run_id, utcnow()))

    def card_links(self, deliberation_id: str) -> pd.DataFrame:
        """The current card → canonical assignment with its provenance."""
        return self._frame(
            "SELECT l.card_id, arg_max(l.canonical_id, l.id) AS canonical_id, arg_max(l.provenance, l.id) AS provenance"
            " FROM card_canonical l JOIN values_cards c ON c.id = l.card_id WHERE c.deliberation_id = ?"
            " GROUP BY l.card_id ORDER BY l.card_id",
            [deliberation_id],
        )

    def apply_canonical_values(self, deliberation_id: str, values: list[dict], *, run_id: int | None = None,
                               provenance: str = "dedup") -> dict[int, int]:
        """Write a clustering: each value is {id (an existing canonical id, or None), title, description,
        policies, question_id, members}. Existing values keep their id and their (possibly edited) text;
        new ones are created; cards whose value changed are relinked; values that came from an earlier
        clustering and lost every member are retired. One transaction. Returns {index: canonical id}.
        """
        now = utcnow()

        def work(cur):
            current = dict(cur.execute(
                "SELECT l.card_id, arg_max(l.canonical_id, l.id) FROM card_canonical l JOIN values_cards c"
                " ON c.id = l.card_id WHERE c.deliberation_id = ? GROUP BY l.card_id", [deliberation_id]).fetchall())
            ids: dict[int, int] = {}
            links = []
            for index, value in enumerate(values):
                vid = value.get("id")
                if vid is None:
                    vid = cur.execute(
                        "INSERT INTO canonical_values (deliberation_id, question_id, title, description, policies,"
                        " origin, created_at) VALUES (?, ?, ?, ?, ?, 'dedup', ?) RETURNING id",
                        [deliberation_id, value.get("question_id"), value["title"], value.get("description", ""),
                         list(value["policies"]), now]).fetchall()[0][0]
                ids[index] = int(vid)
                links += [(int(c), int(vid)) for c in value["members"] if current.get(int(c)) != int(vid)]
            self._link(cur, links, provenance, run_id, now)
            kept = set(ids.values())
            cur.execute(
                "UPDATE canonical_values SET retired_at = ? WHERE deliberation_id = ? AND origin = 'dedup'"
                " AND retired_at IS NULL AND NOT list_contains(?, id)",
                [now, deliberation_id, sorted(kept)])
            return ids

        return self._write(work)

    # -- moderation ---------------------------------------------------------------------------

    def proposed_contexts(self, deliberation_id: str) -> pd.DataFrame:
        """Contexts participants proposed, with how many cards use each."""
        return self._frame(
            "SELECT x.id, x.name, x.proposed_by, x.created_at, count(cc.card_id) AS cards FROM contexts x"
            " LEFT JOIN card_contexts cc ON cc.context_id = x.id WHERE x.deliberation_id = ? AND x.status = 'proposed'"
            " GROUP BY ALL ORDER BY x.created_at, x.id",
            [deliberation_id],
        )

    def approve_context(self, context_id: int, *, question_id: str | None = None) -> None:
        def work(cur):
            if not cur.execute("UPDATE contexts SET status = 'approved' WHERE id = ? AND status = 'proposed'"
                               " RETURNING id", [context_id]).fetchall():
                raise NotFound(f"no proposed context {context_id}")
            if question_id:
                cur.execute("INSERT INTO question_contexts VALUES (?, ?) ON CONFLICT DO NOTHING",
                            [question_id, context_id])

        self._write(work)

    def merge_context(self, context_id: int, into_id: int) -> None:
        """Fold a proposed context into an existing one: its cards move there."""
        if context_id == into_id:
            raise NotFound("a context cannot be merged into itself")

        def work(cur):
            if not cur.execute("UPDATE contexts SET status = 'merged', merged_into = ? WHERE id = ? RETURNING id",
                               [into_id, context_id]).fetchall():
                raise NotFound(f"no context {context_id}")
            cur.execute("INSERT INTO card_contexts SELECT card_id, ? FROM card_contexts WHERE context_id = ?"
                        " ON CONFLICT DO NOTHING", [into_id, context_id])
            cur.execute("DELETE FROM card_contexts WHERE context_id = ?", [context_id])

        self._write(work)

    def merge_canonical_values(self, value_ids: list[int], into: int) -> int:
        """Every member card of `value_ids` moves to `into` (provenance 'merge'); the others retire."""
        others = [int(v) for v in value_ids if int(v) != int(into)]
        now = utcnow()

        def work(cur):
            members = cur.execute(
                "SELECT card_id FROM (SELECT card_id, arg_max(canonical_id, id) AS canonical_id FROM card_canonical"
                " GROUP BY card_id) WHERE list_contains(?, canonical_id)", [others]).fetchall()
            self._link(cur, [(c, int(into)) for (c,) in members], "merge", None, now)
            cur.execute("UPDATE canonical_values SET retired_at = ? WHERE list_contains(?, id)", [now, others])
            return len(members)

        return self._write(work)

    def split_card(self, card_id: int, *, title: str | None = None) -> int:
        """Move one card out of its value into a new value of its own (provenance 'split')."""
        card = self.card(card_id)
        return self.add_canonical_value(
            card["deliberation_id"], title=title or card["title"], description=card["description"],
            policies=list(card["policies"]), origin="split", question_id=card["question_id"], members=[card_id],
            provenance="split")

    def update_canonical_value(self, value_id: int, *, title: str | None = None,
                               description: str | None = None, policies: list[str] | None = None) -> None:
        def work(cur):
            if not cur.execute(
                "UPDATE canonical_values SET title = coalesce(?, title), description = coalesce(?, description),"
                " policies = coalesce(?, policies) WHERE id = ? RETURNING id",
                [title, description, policies, value_id],
            ).fetchall():
                raise NotFound(f"no canonical value {value_id}")

        self._write(work)

    def retire_canonical_values(self, value_ids: list[int]) -> None:
        if value_ids:
            self._write(lambda cur: cur.execute(
                "UPDATE canonical_values SET retired_at = ? WHERE list_contains(?, id)",
                [utcnow(), [int(v) for v in value_ids]],
            ))

    # -- the embedding cache (implements workbench.embed's EmbeddingCache protocol) --------

    def get_embeddings(self, keys: list[tuple[int, str, str]]) -> dict[tuple[int, str, str], np.ndarray]:
        if not keys:
            return {}
        wanted = pd.DataFrame(keys, columns=["card_id", "model", "text_hash"])
        with self._cursor() as cur:
            cur.register("wanted", wanted)
            rows = cur.execute(
                "SELECT e.card_id, e.model, e.text_hash, e.vector FROM embeddings e"
                " JOIN wanted w USING (card_id, model, text_hash)"
            ).fetchall()
        return {(int(c), m, h): np.asarray(v, dtype=np.float32) for c, m, h, v in rows}

    def put_embeddings(self, rows: list[tuple[int, str, str, np.ndarray]]) -> None:
        if not rows:
            return
        now = utcnow()
        self._write(lambda cur: cur.executemany(
            "INSERT INTO embeddings (card_id, model, text_hash, vector, created_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            [(int(c), m, h, np.asarray(v, dtype=np.float32).tolist(), now) for c, m, h, v in rows],
        ))

    def embedding_count(self, model: str | None = None) -> int:
        if model is None:
            return self._one("SELECT count(*) FROM embeddings")[0]
        return self._one("SELECT count(*) FROM embeddings WHERE model = ?", [model])[0]

"""Interviews, values cards, canonical values, card→canonical links and the embedding cache.

All SQL for these lives here. Interview stages and card→canonical links are append-only events
(the latest per stage / per card wins); a card, once confirmed, changes only by moderation.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from ..errors import Conflict, InputError
from ..ids import public_id
from .core import NotFound, StoreCore, as_timestamp, utcnow

#: The title a canonical value gets when the only cards whose text it carried were hidden.
WITHHELD_TITLE = "(withheld: the card it was named after was hidden)"


class CardStore(StoreCore):
    # -- interviews -------------------------------------------------------------------------

    def interviewer_failures(self, deliberation_id: str) -> pd.DataFrame:
        """When the LLM interviewer failed and the participant was moved to the guided flow."""
        return self._frame(
            "SELECT m.created_at, i.participant_id, m.content AS error FROM interview_messages m"
            " JOIN interviews i ON i.id = m.interview_id JOIN participants p ON p.id = i.participant_id"
            " WHERE p.deliberation_id = ? AND m.role = 'error' ORDER BY m.created_at DESC",
            [deliberation_id],
        )

    # -- values cards -----------------------------------------------------------------------

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
            where.append("c.id = ANY(?)")
            params.append([int(i) for i in card_ids])
        if until is not None:
            where.append("c.created_at < ?")
            params.append(until)
        return self._frame(
            "WITH ctx AS (SELECT cc.card_id, array_agg(x.name ORDER BY x.name) AS contexts FROM card_contexts cc"
            " JOIN contexts x ON x.id = cc.context_id GROUP BY cc.card_id)"
            " SELECT c.id, c.deliberation_id, c.question_id, c.author_id, p.source_id AS author_source_id,"
            " c.interview_id, c.source_id, c.kind, c.title, c.description, c.policies, c.status, c.hidden_reason,"
            " c.overrides, c.created_at, coalesce(ctx.contexts, CAST(ARRAY[] AS VARCHAR[])) AS contexts, link.canonical_id"
            " FROM values_cards c LEFT JOIN card_value link ON link.card_id = c.id"
            " LEFT JOIN ctx ON ctx.card_id = c.id LEFT JOIN participants p ON p.id = c.author_id"
            f" WHERE {' AND '.join(where)} ORDER BY c.id",
            params,
        )

    def cards_by(self, author_id: int) -> pd.DataFrame:
        return self._frame(
            "SELECT id, question_id, title, description, policies, status, created_at FROM values_cards"
            " WHERE author_id = ? ORDER BY id",
            [author_id],
        )

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
            "WITH members AS (SELECT l.canonical_id, count(DISTINCT c.id) AS members,"
            " array_agg(DISTINCT x.name ORDER BY x.name) FILTER (WHERE x.name IS NOT NULL) AS contexts"
            " FROM card_value l JOIN values_cards c ON c.id = l.card_id AND c.status = 'active'"
            " LEFT JOIN card_contexts cc ON cc.card_id = c.id LEFT JOIN contexts x ON x.id = cc.context_id"
            " GROUP BY l.canonical_id)"
            " SELECT v.id, v.question_id, v.source_id, v.title, v.description, v.policies, v.origin,"
            " coalesce(m.members, 0) AS members, coalesce(m.contexts, CAST(ARRAY[] AS VARCHAR[])) AS contexts"
            ", v.retired_at IS NOT NULL AS retired, v.created_at"
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

    def card_links(self, deliberation_id: str) -> pd.DataFrame:
        """The current card → canonical assignment with its provenance."""
        return self._frame(
            "SELECT l.card_id, l.canonical_id, l.provenance FROM card_value l JOIN values_cards c ON c.id = l.card_id"
            " WHERE c.deliberation_id = ? ORDER BY l.card_id",
            [deliberation_id],
        )

    def apply_canonical_values(self, deliberation_id: str, values: list[dict], *, run_id: int | None = None,
                               provenance: str = "dedup", actor_id: int | None = None,
                               details: dict | None = None) -> dict[int, int]:
        """Write a clustering: each value is {id (an existing canonical id, or None), title, description,
        policies, question_id, members}. Existing values keep their id and their (possibly edited) text;
        new ones are created; cards whose value changed are relinked; values that came from an earlier
        clustering and lost every member are retired. One transaction, with its audit row ('dedup', with
        `details`). Returns {index: canonical id}.
        """
        now = utcnow()

        def work(cur):
            current = dict(cur.execute(
                "SELECT l.card_id, l.canonical_id FROM card_value l JOIN values_cards c ON c.id = l.card_id"
                " WHERE c.deliberation_id = ?", [deliberation_id]).fetchall())
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
                " AND retired_at IS NULL AND NOT (id = ANY(?))",
                [now, deliberation_id, sorted(kept)])
            self._audit(cur, deliberation_id, actor_id, "dedup", None if run_id is None else f"run {run_id}",
                        {"values": len(ids), **(details or {})}, now)
            return ids

        return self._write(work)

    # -- moderation ---------------------------------------------------------------------------

    def proposed_contexts(self, deliberation_id: str) -> pd.DataFrame:
        """Contexts participants proposed, with how many cards use each."""
        return self._frame(
            "SELECT x.id, x.name, x.proposed_by, x.created_at, count(cc.card_id) AS cards FROM contexts x"
            " LEFT JOIN card_contexts cc ON cc.context_id = x.id WHERE x.deliberation_id = ? AND x.status = 'proposed'"
            " GROUP BY x.id, x.name, x.proposed_by, x.created_at ORDER BY x.created_at, x.id",
            [deliberation_id],
        )

    def approve_context(self, context_id: int, *, question_id: str | None = None,
                        actor_id: int | None = None) -> None:
        """A proposed context becomes one participants can choose (for `question_id`, if given); audited."""
        def work(cur):
            rows = cur.execute("UPDATE contexts SET status = 'approved' WHERE id = ? AND status = 'proposed'"
                               " RETURNING deliberation_id, name", [context_id]).fetchall()
            if not rows:
                raise NotFound(f"no proposed context {context_id}")
            if question_id:
                cur.execute("INSERT INTO question_contexts VALUES (?, ?) ON CONFLICT DO NOTHING",
                            [question_id, context_id])
            self._audit(cur, rows[0][0], actor_id, "approve_context", f"context {rows[0][1]!r}",
                        {"question_id": question_id}, utcnow())

        self._write(work)

    def merge_context(self, context_id: int, into_id: int, *, actor_id: int | None = None) -> None:
        """Fold a proposed context into an existing one: its cards move there; audited."""
        if context_id == into_id:
            raise InputError("into: a context cannot be merged into itself")

        def work(cur):
            into = cur.execute("SELECT name FROM contexts WHERE id = ?", [into_id]).fetchall()
            rows = cur.execute("UPDATE contexts SET status = 'merged', merged_into = ? WHERE id = ?"
                               " RETURNING deliberation_id, name", [into_id, context_id]).fetchall()
            if not rows or not into:
                raise NotFound(f"no context {context_id if not rows else into_id}")
            cur.execute("INSERT INTO card_contexts SELECT card_id, ? FROM card_contexts WHERE context_id = ?"
                        " ON CONFLICT DO NOTHING", [into_id, context_id])
            cur.execute("DELETE FROM card_contexts WHERE context_id = ?", [context_id])
            self._audit(cur, rows[0][0], actor_id, "merge_context", f"context {rows[0][1]!r}",
                        {"into": into[0][0]}, utcnow())

        self._write(work)

    def hide_card(self, card_id: int, reason: str, *, actor_id: int | None = None) -> None:
        """Hide a card: it leaves the graph, the rounds and the exports, and its text leaves every canonical
        value that carries it (`_withdraw_card_text`), in the same transaction as the audit row (with the
        reason and the values renamed, never the hidden text)."""
        def work(cur):
            rows = cur.execute("UPDATE values_cards SET status = 'hidden', hidden_reason = ? WHERE id = ?"
                               " RETURNING deliberation_id, source_id", [reason, card_id]).fetchall()
            if not rows:
                raise NotFound(f"no values card {card_id}")
            # Every hidden card of the deliberation, this one first: values named after a card hidden before
            # hiding took the text out (an older version) are put right too.
            hidden = [card_id] + [c for (c,) in cur.execute(
                "SELECT id FROM values_cards WHERE deliberation_id = ? AND status <> 'active' AND id <> ? ORDER BY id",
                [rows[0][0], card_id]).fetchall()]
            renamed: dict[str, list[str]] = {}
            for hidden_id in hidden:
                for key, values in self._withdraw_card_text(cur, hidden_id).items():
                    renamed[key] = sorted(set(renamed.get(key, [])) | set(values))
            self._audit(cur, rows[0][0], actor_id, "hide_card", f"card {public_id('card', card_id, rows[0][1])}",
                        {"reason": reason, **renamed}, utcnow())

        self._write(work)

    @staticmethod
    def _withdraw_card_text(cur, card_id: int) -> dict[str, list[str]]:
        """Take a hidden card's text out of every canonical value of its deliberation that carries it.

        A value is often named after one of its cards (dedup names it after its medoid, a split after
        the card itself), so hiding that card would otherwise leave its title, description or policies
        in the value, and from there in the graph, the rounds, `canonical-values` and `preference-pairs`.
        Each field of a value that equals the card's (the title, the description, the policies when any
        is the card's) is taken from the value's earliest active member card instead; a value with no
        active member left has those fields withheld. Returns the public ids of the values renamed and
        withheld, for the audit row.
        """
        found = cur.execute(
            "WITH hidden AS (SELECT deliberation_id, title, description, policies FROM values_cards WHERE id = $card),"
            " members AS (SELECT l.canonical_id, min(c.id) AS card_id FROM card_value l"
            "   JOIN values_cards c ON c.id = l.card_id WHERE c.status = 'active' GROUP BY l.canonical_id)"
            " SELECT v.id, v.source_id, v.policies, v.title = h.title, v.description = h.description AND h.description <> '',"
            "   v.policies && h.policies, m.title, m.description, m.policies, h.policies"
            " FROM canonical_values v JOIN hidden h ON h.deliberation_id = v.deliberation_id"
            " LEFT JOIN members x ON x.canonical_id = v.id LEFT JOIN values_cards m ON m.id = x.card_id"
            " WHERE v.title = h.title OR (v.description = h.description AND h.description <> '')"
            "   OR v.policies && h.policies",
            {"card": card_id}).fetchall()
        out: dict[str, list[str]] = {"values_renamed": [], "values_withheld": []}
        for value_id, source_id, own_policies, same_title, same_description, same_policies, title, description, \
                policies, hidden_policies in found:
            if title is None:  # no active member left: withhold what was the card's
                title, description = WITHHELD_TITLE, ""
                policies = [line for line in own_policies or [] if line not in set(hidden_policies or [])]
                out["values_withheld"].append(public_id("value", value_id, source_id))
            else:
                out["values_renamed"].append(public_id("value", value_id, source_id))
            cur.execute(
                "UPDATE canonical_values SET title = CASE WHEN $t THEN $title ELSE title END,"
                " description = CASE WHEN $d THEN $description ELSE description END,"
                " policies = CASE WHEN $p THEN $policies ELSE policies END WHERE id = $id",
                {"t": same_title, "title": title, "d": same_description, "description": description,
                 "p": same_policies, "policies": list(policies if policies is not None else []), "id": value_id})
        return {k: v for k, v in out.items() if v}

    @staticmethod
    def _value_row(cur, value_id: int) -> tuple[str, str]:
        rows = cur.execute("SELECT deliberation_id, source_id FROM canonical_values WHERE id = ?",
                           [int(value_id)]).fetchall()
        if not rows:
            raise NotFound(f"no canonical value {value_id}")
        return rows[0][0], public_id("value", value_id, rows[0][1])

    def merge_canonical_values(self, value_ids: list[int], into: int, *, actor_id: int | None = None) -> int:
        """Every member card of `value_ids` moves to `into` (provenance 'merge'); the others retire.
        Audited; returns how many cards moved."""
        others = [int(v) for v in value_ids if int(v) != int(into)]
        now = utcnow()

        def work(cur):
            deliberation_id, target = self._value_row(cur, into)
            merged = [self._value_row(cur, v)[1] for v in others]
            members = cur.execute(
                "SELECT card_id FROM card_value WHERE canonical_id = ANY(?)", [others]).fetchall()
            self._link(cur, [(c, int(into)) for (c,) in members], "merge", None, now)
            cur.execute("UPDATE canonical_values SET retired_at = ? WHERE id = ANY(?)", [now, others])
            self._audit(cur, deliberation_id, actor_id, "merge_values", f"value {target}",
                        {"merged": merged, "cards": len(members)}, now)
            return len(members)

        return self._write(work)

    def split_card(self, card_id: int, *, title: str | None = None, actor_id: int | None = None) -> int:
        """Move one card out of its value into a new value of its own (provenance 'split'); audited.
        Returns the new value's id."""
        now = utcnow()

        def work(cur):
            rows = cur.execute("SELECT deliberation_id, question_id, title, description, policies, source_id, status"
                               " FROM values_cards WHERE id = ?", [card_id]).fetchall()
            if not rows:
                raise NotFound(f"no values card {card_id}")
            deliberation_id, question_id, own_title, description, policies, source_id, status = rows[0]
            if status != "active":  # a value named after it would carry the hidden text
                raise Conflict(f"card {public_id('card', card_id, source_id)} is hidden: a hidden card cannot become"
                               " a value")
            value_id = cur.execute(
                "INSERT INTO canonical_values (deliberation_id, question_id, title, description, policies, origin,"
                " created_at) VALUES (?, ?, ?, ?, ?, 'split', ?) RETURNING id",
                [deliberation_id, question_id, title or own_title, description, list(policies), now]).fetchall()[0][0]
            self._link(cur, [(card_id, value_id)], "split", None, now)
            self._audit(cur, deliberation_id, actor_id, "split_card", f"card {public_id('card', card_id, source_id)}",
                        {"new_value": public_id("value", value_id)}, now)
            return value_id

        return self._write(work)

    def update_canonical_value(self, value_id: int, *, title: str | None = None, description: str | None = None,
                               policies: list[str] | None = None, actor_id: int | None = None) -> None:
        """Rename (or re-describe) a canonical value; a re-run of dedup keeps the new text. Audited."""
        def work(cur):
            if not cur.execute(
                "UPDATE canonical_values SET title = coalesce(?, title), description = coalesce(?, description),"
                " policies = coalesce(?, policies) WHERE id = ? RETURNING id",
                [title, description, policies, value_id],
            ).fetchall():
                raise NotFound(f"no canonical value {value_id}")
            deliberation_id, target = self._value_row(cur, value_id)
            self._audit(cur, deliberation_id, actor_id, "rename_value", f"value {target}",
                        {k: v for k, v in (("title", title), ("description", description),
                                           ("policies", policies)) if v is not None}, utcnow())

        self._write(work)

    # -- the embedding cache (implements workbench.embed's EmbeddingCache protocol) --------

    def get_embeddings(self, keys: list[tuple[int, str, str]]) -> dict[tuple[int, str, str], np.ndarray]:
        if not keys:
            return {}
        wanted = {(int(c), m, h) for c, m, h in keys}
        rows = self._rows(
            "SELECT card_id, model, text_hash, vector FROM embeddings WHERE card_id = ANY(?) AND model = ANY(?)",
            [sorted({c for c, _, _ in wanted}), sorted({m for _, m, _ in wanted})])
        return {(int(c), m, h): np.asarray(v, dtype=np.float32) for c, m, h, v in rows if (int(c), m, h) in wanted}

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

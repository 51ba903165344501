"""Writing an `ImportBundle` (from an importer or the demo simulator) in one transaction.

Rows are matched on the ids the source used: participants and cards by `source_id`, events by
`source_key`, contexts by name, questions by slug. What is already there is skipped, so a second
import of the same data adds nothing; an error anywhere rolls the whole import back.
An import never rewrites a deliberation that exists: it is refused (`Conflict`) unless the caller
asks to merge, and a merge adds data, questions and contexts but changes no setting (title,
licence, consent, open sign-up, rounds) and no existing question.
"""

from __future__ import annotations

import pandas as pd

from ..errors import Conflict
from ..io.bundle import ImportBundle
from ..models import DeliberationSpec
from .core import StoreCore, utcnow


def _fill_times(frame: pd.DataFrame, now) -> pd.DataFrame:
    frame = frame.copy()
    if "created_at" in frame.columns:
        # Microseconds first: a seconds-resolution column cannot hold `now` as its fill value.
        times = pd.to_datetime(frame["created_at"]).astype("datetime64[us]")
        frame["created_at"] = times.fillna(pd.Timestamp(now))
    return frame


class ImportStore(StoreCore):
    def import_bundle(self, bundle: ImportBundle, *, merge: bool = False) -> dict[str, int]:
        """Write what the bundle holds that the store lacks; returns rows added per kind.

        Into a deliberation that already exists only with `merge`, and then without changing its
        settings; otherwise `Conflict` names what exists, and nothing is written.
        """
        now = utcnow()
        frames = {name: _fill_times(frame, now) for name, frame in bundle.frames().items()}
        delib = bundle.spec.id
        source = "demo" if bundle.source == "demo" else "import"

        def work(cur):
            added: dict[str, int] = {}
            existing = cur.execute(
                "SELECT title, source, (SELECT count(*) FROM participants WHERE deliberation_id = $d)"
                " FROM deliberations WHERE id = $d", {"d": delib}).fetchall()
            if existing and not merge:
                title, was, people = existing[0]
                raise Conflict(f"deliberation {delib!r} already exists ({title!r}, {was}, {people} participants)")
            if existing:
                self._add_missing_questions(cur, bundle.spec, now=now)
            else:
                self._save_deliberation(cur, bundle.spec, source=bundle.source, now=now)
            # Contexts beyond the spec's (e.g. proposed ones, or those only used by imported rows).
            for row in frames["contexts"].itertuples(index=False):
                cid = self._ensure_context(cur, delib, row.name, now=now, status=row.status or "approved")
                if row.question is not None and not pd.isna(row.question):
                    cur.execute("INSERT INTO question_contexts VALUES (?, ?) ON CONFLICT DO NOTHING",
                                [f"{delib}/{row.question}", cid])

            def insert(name: str, sql: str) -> int:
                frame = frames[name]
                if frame.empty:
                    added[name] = 0
                    return 0
                cur.register("incoming", frame)
                try:
                    params = {k: v for k, v in (("d", delib), ("now", now), ("source", source)) if f"${k}" in sql}
                    n = cur.execute(sql, params).fetchall()
                finally:
                    cur.unregister("incoming")
                added[name] = len(n)
                return len(n)

            insert("participants", (
                "INSERT INTO participants (deliberation_id, source_id, signup, created_at)"
                " SELECT $d, i.source_id, i.signup, i.created_at FROM incoming i"
                " WHERE i.source_id NOT IN (SELECT source_id FROM participants"
                "   WHERE deliberation_id = $d AND source_id IS NOT NULL) RETURNING id"))
            pmap = ("(SELECT id, source_id FROM participants WHERE deliberation_id = $d"
                    " AND source_id IS NOT NULL)")
            insert("attributes", (
                "INSERT INTO participant_attributes (participant_id, key, value, created_at)"
                f" SELECT p.id, i.key, i.value, $now FROM incoming i JOIN {pmap} p"
                " ON p.source_id = i.participant"
                " LEFT JOIN participant_attribute cur ON cur.participant_id = p.id AND cur.key = i.key"
                " WHERE cur.key IS NULL OR cur.value IS DISTINCT FROM i.value RETURNING id"))
            insert("cards", (
                "INSERT INTO values_cards (deliberation_id, question_id, author_id, source_id, kind, title,"
                " description, policies, status, created_at)"
                " SELECT $d, CASE WHEN i.question IS NULL THEN NULL ELSE $d || '/' || i.question END, p.id,"
                " i.source_id, i.kind, i.title, i.description, i.policies, i.status, i.created_at"
                f" FROM incoming i LEFT JOIN {pmap} p ON p.source_id = i.author"
                " WHERE NOT EXISTS (SELECT 1 FROM values_cards c WHERE c.deliberation_id = $d"
                "   AND c.kind = i.kind AND c.source_id = i.source_id) RETURNING id"))
            if not frames["cards"].empty:
                cur.register("incoming", frames["cards"])
                cur.execute(
                    "INSERT INTO card_contexts SELECT DISTINCT c.id, x.id FROM"
                    " (SELECT source_id, kind, unnest(contexts) AS name FROM incoming) i"
                    " JOIN values_cards c ON c.deliberation_id = ? AND c.kind = i.kind AND c.source_id = i.source_id"
                    " JOIN contexts x ON x.deliberation_id = ? AND x.name = i.name ON CONFLICT DO NOTHING",
                    [delib, delib],
                )
                cur.unregister("incoming")
            insert("canonical", (
                "INSERT INTO canonical_values (deliberation_id, question_id, source_id, title, description,"
                " policies, origin, created_at)"
                " SELECT $d, CASE WHEN i.question IS NULL THEN NULL ELSE $d || '/' || i.question END,"
                " i.source_id, i.title, i.description, i.policies, i.origin, i.created_at FROM incoming i"
                " WHERE i.source_id NOT IN (SELECT source_id FROM canonical_values WHERE deliberation_id = $d"
                "   AND source_id IS NOT NULL) RETURNING id"))
            insert("links", (
                "INSERT INTO card_canonical (card_id, canonical_id, provenance, created_at)"
                " SELECT c.id, v.id, i.provenance, $now FROM incoming i"
                " JOIN values_cards c ON c.deliberation_id = $d AND c.kind = 'card' AND c.source_id = i.card"
                " JOIN canonical_values v ON v.deliberation_id = $d AND v.source_id = i.canonical"
                " LEFT JOIN card_value cur ON cur.card_id = c.id"
                " WHERE cur.canonical_id IS DISTINCT FROM v.id RETURNING id"))
            cmap = "(SELECT id, name FROM contexts WHERE deliberation_id = $d)"
            vmap = "(SELECT id, source_id FROM canonical_values WHERE deliberation_id = $d)"
            new_events = " AND i.source_key NOT IN (SELECT source_key FROM {t} WHERE deliberation_id = $d" \
                         " AND source_key IS NOT NULL)"
            insert("wiser", (
                "INSERT INTO wiser_answers (deliberation_id, participant_id, from_value_id, to_value_id, context_id,"
                " answer, story, comment, source_key, created_at)"
                " SELECT $d, p.id, a.id, b.id, x.id, i.answer, i.story, i.comment, i.source_key, i.created_at"
                f" FROM incoming i JOIN {pmap} p ON p.source_id = i.participant"
                f" JOIN {vmap} a ON a.source_id = i.from_value JOIN {vmap} b ON b.source_id = i.to_value"
                f" JOIN {cmap} x ON x.name = i.context WHERE TRUE" + new_events.format(t="wiser_answers")
                + " RETURNING id"))
            insert("endorsements", (
                "INSERT INTO endorsements (deliberation_id, participant_id, question_id, canonical_id, card_id,"
                " vote, source_key, created_at)"
                " SELECT $d, p.id, CASE WHEN i.question IS NULL THEN NULL ELSE $d || '/' || i.question END,"
                " v.id, c.id, i.vote, i.source_key, i.created_at"
                f" FROM incoming i JOIN {pmap} p ON p.source_id = i.participant"
                f" LEFT JOIN {vmap} v ON v.source_id = i.canonical"
                " LEFT JOIN values_cards c ON c.deliberation_id = $d AND c.kind = i.card_kind"
                "   AND c.source_id = i.card"
                " WHERE (v.id IS NOT NULL OR c.id IS NOT NULL)" + new_events.format(t="endorsements")
                + " RETURNING id"))
            insert("comparisons", (
                "INSERT INTO comparisons (deliberation_id, participant_id, question_id, context, prompt, item_a,"
                " item_b, winner, source, source_key, weight, created_at)"
                " SELECT $d, p.id, CASE WHEN i.question IS NULL THEN NULL ELSE $d || '/' || i.question END,"
                " i.context, i.prompt, i.item_a, i.item_b, i.winner, $source, i.source_key,"
                " coalesce(CAST(i.weight AS DOUBLE), 1.0), i.created_at"
                f" FROM incoming i JOIN {pmap} p ON p.source_id = i.participant WHERE TRUE"
                + new_events.format(t="comparisons") + " RETURNING id"))
            insert("survey", (
                "INSERT INTO survey_answers (deliberation_id, participant_id, question, answer, canonical_id,"
                " source_key, created_at)"
                " SELECT $d, p.id, i.question, i.answer, v.id, i.source_key, i.created_at"
                f" FROM incoming i JOIN {pmap} p ON p.source_id = i.participant"
                f" LEFT JOIN {vmap} v ON v.source_id = i.canonical WHERE TRUE" + new_events.format(t="survey_answers")
                + " RETURNING id"))
            insert("steps", (
                "INSERT INTO participant_steps (participant_id, step, payload, created_at)"
                f" SELECT p.id, i.step, '{{}}', i.created_at FROM incoming i JOIN {pmap} p"
                " ON p.source_id = i.participant"
                " WHERE NOT EXISTS (SELECT 1 FROM participant_steps s WHERE s.participant_id = p.id"
                "   AND s.step = i.step) RETURNING id"))
            return added

        return self._write(work)

    def _add_missing_questions(self, cur, spec: DeliberationSpec, *, now) -> None:
        """The spec's questions the deliberation lacks (after its own), and every context the spec
        names; existing questions keep their title, prompt, position and contexts."""
        have = {slug for slug, in cur.execute("SELECT slug FROM questions WHERE deliberation_id = ?",
                                               [spec.id]).fetchall()}
        position = cur.execute("SELECT coalesce(max(position) + 1, 0) FROM questions WHERE deliberation_id = ?",
                               [spec.id]).fetchall()[0][0]
        for q in spec.questions:
            contexts = [self._ensure_context(cur, spec.id, name, now=now) for name in q.contexts]
            if q.slug in have:
                continue
            qid = f"{spec.id}/{q.slug}"
            cur.execute("INSERT INTO questions (id, deliberation_id, slug, title, prompt, position)"
                        " VALUES (?, ?, ?, ?, ?, ?)", [qid, spec.id, q.slug, q.title, q.prompt, position])
            position += 1
            for context_id in contexts:
                cur.execute("INSERT INTO question_contexts VALUES (?, ?) ON CONFLICT DO NOTHING", [qid, context_id])

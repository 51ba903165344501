"""Judgements (wiser-than answers, endorsements, comparisons) and analysis runs.

Every judgement is an append-only event with a timestamp. "A participant's latest answer wins"
and "as of a time" are arguments of the queries here (`latest=True`, `until=...`), never updates.
All SQL for these lives here.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from .. import errors
from .core import NotFound, StoreCore, as_timestamp, from_json, to_json, utcnow

MERGE_ANSWERS = ("same", "different", "not_sure")

_UNTIL = "(CAST(? AS TIMESTAMP) IS NULL OR {t}.created_at < ?)"


def _latest(sql: str, per: str) -> str:
    """Only the latest row (by created_at, then id) of `sql`'s rows per `per` (DISTINCT ON: both engines)."""
    return f"SELECT DISTINCT ON ({per}) * FROM ({sql}) AS latest ORDER BY {per}, created_at DESC, id DESC"


def _until(alias: str, until) -> tuple[str, list]:
    ts = as_timestamp(until)
    return _UNTIL.format(t=alias), [ts, ts]


class JudgementStore(StoreCore):
    # -- wiser-than answers -----------------------------------------------------------------

    def wiser_answers(self, deliberation_id: str, *, until: datetime | str | None = None,
                      latest: bool = False, question_id: str | None = None) -> pd.DataFrame:
        """Answers as `participant_id, from_id, to_id, context, answer, comment, created_at`.

        `latest=True` keeps each participant's latest answer per (from, to, context).
        Answers that involve a value whose member cards are all hidden are left out.
        """
        cond, params = _until("w", until)
        sql = (
            "SELECT w.id, w.participant_id, w.from_value_id AS from_id, w.to_value_id AS to_id,"
            " x.name AS context, w.answer, w.comment, w.story, w.created_at"
            " FROM wiser_answers w JOIN contexts x ON x.id = w.context_id"
            f" WHERE w.deliberation_id = ? AND {cond}"
            " AND w.from_value_id NOT IN (SELECT id FROM hidden_values)"
            " AND w.to_value_id NOT IN (SELECT id FROM hidden_values)"
        )
        params = [deliberation_id, *params]
        if question_id is not None:
            sql += " AND w.context_id IN (SELECT context_id FROM question_contexts WHERE question_id = ?)"
            params.append(question_id)
        if latest:
            sql = _latest(sql, "participant_id, from_id, to_id, context")
        # A canonical value leaves the graph and the rounds when it has members and all are hidden.
        return self._frame(f"SELECT * FROM ({sql}) AS w ORDER BY created_at, id", params)

    def wiser_answers_by(self, participant_id: int) -> pd.DataFrame:
        return self._frame(
            "SELECT from_value_id, to_value_id, context_id, answer, created_at FROM wiser_answers"
            " WHERE participant_id = ? ORDER BY id",
            [participant_id],
        )

    # -- endorsements -----------------------------------------------------------------------

    def endorsements(self, deliberation_id: str, *, until: datetime | str | None = None,
                     latest: bool = True, question_id: str | None = None,
                     include_hidden: bool = False) -> pd.DataFrame:
        """Votes as `id, participant_id, participant_source_id, question_id, canonical_id, card_id,
        target_kind, target_source_id, vote (+1/-1/0), hidden, created_at`.

        A vote is on a canonical value (`canonical_id`, target_kind 'value') or on a card or an imported
        statement (`card_id`, target_kind 'card' | 'statement'). Hidden cards' votes are left out unless
        `include_hidden` (Polis-style clustering counts them, zeroed). Ids are the store's; workbench.ids
        turns them into public ids.
        """
        cond, params = _until("e", until)
        sql = (
            "SELECT e.id, e.participant_id, p.source_id AS participant_source_id, e.question_id, e.canonical_id,"
            " e.card_id, CASE WHEN e.canonical_id IS NOT NULL THEN 'value' ELSE c.kind END AS target_kind,"
            " coalesce(c.source_id, v.source_id) AS target_source_id,"
            " CASE e.vote WHEN 'agree' THEN 1 WHEN 'disagree' THEN -1 ELSE 0 END AS vote,"
            " coalesce(c.status <> 'active', FALSE) AS hidden, e.created_at"
            " FROM endorsements e LEFT JOIN values_cards c ON c.id = e.card_id"
            " LEFT JOIN canonical_values v ON v.id = e.canonical_id"
            " JOIN participants p ON p.id = e.participant_id"
            f" WHERE e.deliberation_id = ? AND {cond} AND (? OR e.card_id IS NULL OR c.status = 'active')"
            " AND (e.canonical_id IS NULL OR e.canonical_id NOT IN (SELECT id FROM hidden_values))"
        )
        params = [deliberation_id, *params, include_hidden]
        if question_id is not None:
            sql += " AND e.question_id = ?"
            params.append(question_id)
        if latest:
            sql = _latest(sql, "participant_id, canonical_id, card_id")
        frame = self._frame(f"SELECT * FROM ({sql}) AS e ORDER BY created_at, id", params)
        return frame.astype({"canonical_id": "Int64", "card_id": "Int64"})

    def endorsement_counts(self, deliberation_id: str) -> dict[int, int]:
        """Votes so far per canonical value (for choosing what to ask next)."""
        rows = self._rows(
            "SELECT canonical_id, count(*) FROM endorsements WHERE deliberation_id = ? AND canonical_id IS NOT NULL"
            " GROUP BY 1",
            [deliberation_id],
        )
        return {int(v): int(n) for v, n in rows}

    def endorsements_by(self, participant_id: int) -> pd.DataFrame:
        return self._frame(
            "SELECT canonical_id, card_id, vote, created_at FROM endorsements WHERE participant_id = ? ORDER BY id",
            [participant_id],
        )

    # -- comparisons ------------------------------------------------------------------------

    def comparisons(self, deliberation_id: str, *, until: datetime | str | None = None,
                    context: str | None = None, include_ties: bool = False) -> pd.DataFrame:
        """Comparisons as `id, participant_id, participant_source_id, item_a, item_b, winner, context, prompt,
        question_id, weight, source, created_at`. Items are named as recorded: a value's public id, or an
        imported file's item id."""
        cond, params = _until("m", until)
        sql = (
            "SELECT m.id, m.participant_id, p.source_id AS participant_source_id, m.item_a, m.item_b, m.winner,"
            " m.context, m.prompt, m.question_id, m.weight, m.source, m.created_at"
            " FROM comparisons m JOIN participants p ON p.id = m.participant_id"
            f" WHERE m.deliberation_id = ? AND {cond}"
        )
        params = [deliberation_id, *params]
        if not include_ties:
            sql += " AND m.winner IN ('a', 'b')"
        if context is not None:
            sql += " AND m.context = ?"
            params.append(context)
        return self._frame(sql + " ORDER BY m.created_at, m.id", params)

    def comparisons_by(self, participant_id: int) -> pd.DataFrame:
        return self._frame(
            "SELECT item_a, item_b, winner, context, created_at FROM comparisons WHERE participant_id = ? ORDER BY id",
            [participant_id],
        )

    def comparison_pair_counts(self, deliberation_id: str) -> pd.DataFrame:
        return self._frame(
            "SELECT least(item_a, item_b) AS a, greatest(item_a, item_b) AS b, count(*) AS answers"
            " FROM comparisons WHERE deliberation_id = ? GROUP BY least(item_a, item_b), greatest(item_a, item_b)",
            [deliberation_id],
        )

    def activity(self, deliberation_id: str) -> pd.DataFrame:
        """Every submission as (kind, question_id, created_at): cards, wiser-than answers, votes, comparisons,
        participants' same-value answers."""
        return self._frame(
            "SELECT 'card' AS kind, question_id, created_at FROM values_cards WHERE deliberation_id = ? AND kind = 'card'"
            " UNION ALL SELECT 'wiser', NULL, created_at FROM wiser_answers WHERE deliberation_id = ?"
            " UNION ALL SELECT 'endorse', question_id, created_at FROM endorsements WHERE deliberation_id = ?"
            " UNION ALL SELECT 'compare', question_id, created_at FROM comparisons WHERE deliberation_id = ?"
            " UNION ALL SELECT 'same_value', NULL, created_at FROM merge_judgements WHERE deliberation_id = ?"
            "   AND source = 'participant'"
            " ORDER BY created_at",
            [deliberation_id] * 5,
        )

    def contributions(self, deliberation_id: str, *, until: datetime | str | None = None) -> pd.DataFrame:
        """Participants who contributed anything before `until`, one row each: participant_id (store id),
        source_id, and how many cards, wiser-than answers, votes, comparisons and survey answers they gave."""
        ts = as_timestamp(until)
        parts = [("cards", "values_cards", "author_id", " AND kind = 'card'"), ("wiser", "wiser_answers", "participant_id", ""),
                 ("votes", "endorsements", "participant_id", ""), ("comparisons", "comparisons", "participant_id", ""),
                 ("survey", "survey_answers", "participant_id", "")]
        union = " UNION ALL ".join(
            f"SELECT {who} AS participant_id, '{name}' AS kind FROM {table} WHERE deliberation_id = $d{extra}"
            " AND ($until IS NULL OR created_at < $until)" for name, table, who, extra in parts)
        counts = ", ".join(f"count(*) FILTER (WHERE e.kind = '{name}') AS {name}" for name, *_ in parts)
        return self._frame(
            f"SELECT p.id AS participant_id, p.source_id, {counts} FROM ({union}) e JOIN participants p"
            " ON p.id = e.participant_id GROUP BY p.id, p.source_id ORDER BY p.id",
            {"d": deliberation_id, "until": ts})

    def invites(self, deliberation_id: str) -> pd.DataFrame:
        """Participants who came by invite or open sign-up, with whether the link is revoked."""
        return self._frame(
            "SELECT id AS participant_id, signup, created_at, revoked_at FROM participants"
            " WHERE deliberation_id = ? AND token_hash IS NOT NULL ORDER BY id",
            [deliberation_id],
        )

    # -- "Are these two the same value?" ---------------------------------------------------
    # Participants answer in the optional round of their page (`answer_same_value`, in participation.py).

    def record_merge_verdicts(self, deliberation_id: str, verdicts: list[tuple[int, int, str, str]], *,
                              model: str, run_id: int | None = None) -> None:
        """An LLM's verdicts (card_a, card_b, answer, reason) about candidate merges, in one transaction."""
        rows = []
        now = utcnow()
        for card_a, card_b, answer, reason in verdicts:
            if answer not in MERGE_ANSWERS:
                raise errors.InputError(f"answer must be one of {', '.join(MERGE_ANSWERS)}, got {answer!r}")
            a, b = sorted((int(card_a), int(card_b)))
            rows.append([deliberation_id, a, b, answer, model, reason, run_id, now])
        if rows:
            self._write(lambda cur: cur.executemany(
                "INSERT INTO merge_judgements (deliberation_id, card_a, card_b, source, answer, model, reason,"
                " run_id, created_at) VALUES (?, ?, ?, 'llm', ?, ?, ?, ?, ?)", rows))

    def merge_judgements(self, deliberation_id: str, *, latest: bool = True,
                         until: datetime | str | None = None) -> pd.DataFrame:
        """Answers and verdicts as `id, card_a, card_b, source, participant_id, answer, model, reason,
        run_id, created_at`; `latest` keeps each participant's (and each LLM model's) latest per pair."""
        cond, params = _until("j", until)
        sql = ("SELECT id, card_a, card_b, source, participant_id, answer, model, reason, run_id, created_at"
               f" FROM merge_judgements j WHERE deliberation_id = ? AND {cond}")
        if latest:
            sql = _latest(sql, "card_a, card_b, source, coalesce(CAST(participant_id AS VARCHAR), model)")
        return self._frame(f"SELECT * FROM ({sql}) AS m ORDER BY created_at, id", [deliberation_id, *params])

    # -- analysis runs ----------------------------------------------------------------------

    def start_run(self, kind: str, params: dict, *, deliberation_id: str | None = None) -> int:
        return self._write(lambda cur: cur.execute(
            "INSERT INTO analysis_runs (deliberation_id, kind, params, status, started_at)"
            " VALUES (?, ?, ?, 'running', ?) RETURNING id",
            [deliberation_id, kind, to_json(params), utcnow()],
        ).fetchall()[0][0])

    def finish_run(self, run_id: int, *, result: dict | None = None, error: str | None = None) -> None:
        self._write(lambda cur: cur.execute(
            "UPDATE analysis_runs SET status = ?, result = ?, error = ?, finished_at = ? WHERE id = ?",
            ["failed" if error else "done", to_json(result) if result is not None else None, error, utcnow(),
             run_id],
        ))

    def runs(self, *, deliberation_id: str | None = None, kind: str | None = None) -> pd.DataFrame:
        return self._frame(
            "SELECT id, deliberation_id, kind, params, status, error, started_at, finished_at FROM analysis_runs"
            " WHERE (CAST(? AS VARCHAR) IS NULL OR deliberation_id = ?) AND (CAST(? AS VARCHAR) IS NULL OR kind = ?)"
            " ORDER BY id DESC",
            [deliberation_id, deliberation_id, kind, kind],
        )

    def run(self, run_id: int) -> dict:
        df = self._frame("SELECT * FROM analysis_runs WHERE id = ?", [run_id])
        if df.empty:
            raise NotFound(f"no analysis run {run_id}")
        row = df.iloc[0].to_dict()
        row["params"] = from_json(row["params"])
        row["result"] = from_json(row["result"])
        return row

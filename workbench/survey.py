"""The closing survey, counted: how many said yes, not sure and no to each question, overall and per group.

Pure and deterministic: a DataFrame of answers (one row per participant and question, the latest
answer) and the groupings to split by go in, a frozen `SurveySummary` comes out. Every share is kept
as counts (`Tally`), so whoever shows it can put the counts beside the percentage. Never reads the
store and never renders.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Tally:
    """Answers to one question by one set of participants."""

    yes: int = 0
    not_sure: int = 0
    no: int = 0

    @property
    def answered(self) -> int:
        return self.yes + self.not_sure + self.no

    @property
    def yes_share(self) -> float | None:
        """Yes among everyone who answered (not sure counts as an answer that is not yes)."""
        return self.yes / self.answered if self.answered else None

    def in_words(self) -> str:
        """'158 of 180 (87.8%)': the count beside the percentage, as the report prints it."""
        if not self.answered:
            return "no answers"
        return f"{self.yes} of {self.answered} ({100 * self.yes / self.answered:.1f}%)"


@dataclass(frozen=True)
class GroupTally:
    grouping: str  # e.g. "opinion group", "us_political_affiliation"
    group: str  # e.g. "A", "Democrat"
    tally: Tally


@dataclass(frozen=True)
class QuestionSummary:
    key: str
    text: str
    overall: Tally
    by_group: tuple[GroupTally, ...] = ()


@dataclass(frozen=True)
class SurveySummary:
    respondents: int  # participants who answered at least one question
    questions: tuple[QuestionSummary, ...] = ()


def _tally(answers: pd.Series) -> Tally:
    counts = answers.value_counts()
    return Tally(int(counts.get("yes", 0)), int(counts.get("not_sure", 0)), int(counts.get("no", 0)))


def survey_summary(answers: pd.DataFrame, questions: Sequence[tuple[str, str]],
                   groupings: Mapping[str, Mapping[str, str]] | None = None) -> SurveySummary:
    """Count the answers (`participant_id, question, answer`) to each of `questions` ((key, text), in the
    order asked; answers to a question no longer asked are listed after them, with their key as text),
    overall and per group of each grouping (name -> {participant_id: group}; participants outside every
    group of a grouping are left out of its rows, not of the overall count)."""
    keys = [k for k, _ in questions]
    texts = dict(questions)
    extra = sorted(set(answers["question"]) - set(keys)) if len(answers) else []
    out = []
    for key in keys + extra:
        mine = answers[answers["question"] == key]
        by_group = []
        for grouping, member in (groupings or {}).items():
            labelled = mine.assign(group=mine["participant_id"].map(member)).dropna(subset=["group"])
            for group, rows in sorted(labelled.groupby("group"), key=lambda g: str(g[0])):
                by_group.append(GroupTally(grouping, str(group), _tally(rows["answer"])))
        out.append(QuestionSummary(key, texts.get(key, key), _tally(mine["answer"]), tuple(by_group)))
    respondents = int(answers["participant_id"].nunique()) if len(answers) else 0
    return SurveySummary(respondents, tuple(out))

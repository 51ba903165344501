"""Deliberation definitions: read a YAML file into a validated `DeliberationSpec`.

Never writes anything; `store.save_deliberation(spec)` does that.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from .models import DeliberationSpec, InputError, validated


def load_deliberation(path: str | Path) -> DeliberationSpec:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read the file ({exc.strerror})") from None
    return parse_deliberation(text, where=str(path))


def parse_deliberation(text: str, *, where: str = "deliberation") -> DeliberationSpec:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"{where}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected a mapping with id, title, consent and questions")
    return validated(DeliberationSpec, data, where=where)


def deliberation_document(deliberation: dict, questions, contexts_by_question: dict[str, list[str]]) -> str:
    """A stored deliberation as the YAML a facilitator edits (the same shape `parse_deliberation` reads)."""
    settings = deliberation["settings"]
    data = {
        "id": deliberation["id"], "title": deliberation["title"], "description": deliberation["description"],
        "licence": deliberation["licence"], "open_signup": bool(deliberation["open_signup"]),
        "consent": deliberation["consent_text"], "rounds": settings.get("rounds", {}),
        "demographics": settings.get("demographics", []),
        "questions": [{"slug": q.slug, "title": q.title, "prompt": q.prompt,
                       "contexts": contexts_by_question.get(q.id, [])} for q in questions.itertuples()],
    }
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)

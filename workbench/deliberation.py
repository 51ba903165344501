"""Deliberation definitions: read a YAML file into a validated `DeliberationSpec`.

A definition is refused before it is parsed when it is larger than `DEFINITION_MAX_BYTES`, and
before any value is built when it nests deeper than `DEFINITION_MAX_NESTING` or holds more than
`DEFINITION_MAX_VALUES` values once YAML aliases are expanded (a few lines of aliases can stand for
billions); the model then checks the counts (questions, contexts, demographics, options, closing-survey
questions). Never writes anything;
`store.save_deliberation(spec)` does that.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from .models import (
    DEFINITION_MAX_BYTES,
    DEFINITION_MAX_NESTING,
    DEFINITION_MAX_VALUES,
    Closing,
    DeliberationSpec,
    InputError,
    SignupLimits,
    validated,
)

# libyaml's parser where it is installed (a 1 MB definition: about 1 s instead of 6 s).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_deliberation(path: str | Path) -> DeliberationSpec:
    path = Path(path)
    try:
        if path.stat().st_size > DEFINITION_MAX_BYTES:
            raise InputError(_too_large(str(path)))
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read the file ({exc.strerror})") from None
    return parse_deliberation(definition_text(data, where=str(path)), where=str(path))


def definition_text(data: bytes, *, where: str) -> str:
    """The text of a definition file read or uploaded as bytes: refused, naming `where`, when it is larger
    than `DEFINITION_MAX_BYTES` or not UTF-8 (the command line and the Setup page's upload alike)."""
    if len(data) > DEFINITION_MAX_BYTES:
        raise InputError(_too_large(where))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _too_large(where: str) -> str:
    return f"{where}: the file is larger than {DEFINITION_MAX_BYTES:,} bytes; a deliberation definition is far smaller"


def definition_doubts(spec: DeliberationSpec, *, unchanged: bool, chosen: str | None,
                      existing: set[str]) -> list[str]:
    """What a facilitator should confirm before the Setup page saves `spec`: saving text nobody edited
    (the built-in example, or a stored definition as it was), or a definition whose id is another
    deliberation that exists (saving changes that one's title, consent, licence and open sign-up)."""
    doubts = []
    if unchanged and chosen is None:
        doubts.append(f"You have not changed the example: saving it creates the deliberation “{spec.id}” as it"
                      f" stands (open sign-up {'on' if spec.open_signup else 'off'}).")
    elif unchanged:
        doubts.append("You have not changed anything: saving stores the definition as it is.")
    if spec.id in existing and spec.id != chosen:
        doubts.append(f"A deliberation “{spec.id}” exists: saving replaces its title, description, consent,"
                      f" licence, open sign-up and sign-up limits, and updates its questions.")
    return doubts


def parse_deliberation(text: str, *, where: str = "deliberation") -> DeliberationSpec:
    try:
        size = len(text.encode("utf-8")) if len(text) <= DEFINITION_MAX_BYTES else len(text)
    except UnicodeEncodeError as exc:
        raise InputError(f"{where}: not valid Unicode text (a lone surrogate at character {exc.start})") from None
    if size > DEFINITION_MAX_BYTES:
        raise InputError(f"{where}: the definition is larger than {DEFINITION_MAX_BYTES:,} bytes; a deliberation"
                         " definition is far smaller")
    try:
        _check_shape(text, where)
        data = yaml.load(text, Loader=_LOADER)  # noqa: S506 - a safe loader, chosen above
    except yaml.YAMLError as exc:
        raise InputError(f"{where}: not valid YAML ({' '.join(str(exc).split())})") from None  # one line
    except RecursionError:  # PyYAML builds nested lists and mappings recursively
        raise InputError(f"{where}: nested too deeply to be a deliberation definition") from None
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected a mapping with id, title, consent and questions")
    return validated(DeliberationSpec, data, where=where)


def _check_shape(text: str, where: str) -> None:
    """Walk the YAML events (no value is built yet): refuse deep nesting, and more values than
    `DEFINITION_MAX_VALUES` once aliases are expanded (a few lines of aliases can stand for billions)."""
    sizes: dict[str, int] = {}  # anchor -> values it stands for
    open_collections: list[list] = [[0, None]]  # [values so far, anchor] per open collection
    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, yaml.CollectionStartEvent):
            open_collections.append([1, event.anchor])
            if len(open_collections) - 1 > DEFINITION_MAX_NESTING:
                raise InputError(f"{where}: line {event.start_mark.line + 1}: nested deeper than"
                                 f" {DEFINITION_MAX_NESTING} levels; a definition needs 5")
            continue
        if isinstance(event, yaml.CollectionEndEvent):
            values, anchor = open_collections.pop()
        elif isinstance(event, yaml.AliasEvent):
            values, anchor = sizes.get(event.anchor, 1), None
        elif isinstance(event, yaml.ScalarEvent):
            values, anchor = 1, event.anchor
        else:
            continue
        if anchor is not None:
            sizes[anchor] = values
        open_collections[-1][0] += values
        if open_collections[0][0] + sum(c[0] for c in open_collections[1:]) > DEFINITION_MAX_VALUES:
            raise InputError(f"{where}: line {event.start_mark.line + 1}: more than {DEFINITION_MAX_VALUES:,} values"
                             " (YAML aliases counted as what they stand for)")


def deliberation_document(deliberation: dict, questions, contexts_by_question: dict[str, list[str]]) -> str:
    """A stored deliberation as the YAML a facilitator edits (the same shape `parse_deliberation` reads)."""
    settings = deliberation["settings"]
    data = {
        "id": deliberation["id"], "title": deliberation["title"], "description": deliberation["description"],
        "licence": deliberation["licence"], "open_signup": bool(deliberation["open_signup"]),
        "signup_limits": SignupLimits.of(settings).model_dump(),
        "consent": deliberation["consent_text"], "rounds": settings.get("rounds", {}),
        "demographics": settings.get("demographics", []),
        "closing": settings.get("closing", Closing().model_dump()),
        "questions": [{"slug": q.slug, "title": q.title, "prompt": q.prompt,
                       "contexts": contexts_by_question.get(q.id, [])} for q in questions.itertuples()],
    }
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)

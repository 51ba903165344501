"""`ImportBundle`: what an importer (or the demo simulator) hands to the store in one piece.

Importers read outside files into a bundle of DataFrames keyed by the ids the source used
(`source_id`s, context names, question slugs); `Store.import_bundle` writes the whole bundle in one
transaction, so a bad file writes nothing and a second import of the same data adds nothing. Those
source ids become the rows' public ids (workbench.ids), so a bundle refuses one that has the shape of
an id the workbench gives its own rows ("p17", "v5", ...).
This module only describes the shape: it never reads files or touches the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from .. import ids
from ..models import DeliberationSpec

#: The columns each frame must have (extra columns are ignored).
COLUMNS: dict[str, list[str]] = {
    "participants": ["source_id", "signup", "created_at"],
    "attributes": ["participant", "key", "value"],
    "contexts": ["name", "question", "status"],
    "cards": ["source_id", "kind", "question", "author", "title", "description", "policies", "status",
              "contexts", "created_at"],
    "canonical": ["source_id", "question", "title", "description", "policies", "origin", "created_at"],
    "links": ["card", "canonical", "provenance"],
    "wiser": ["source_key", "participant", "from_value", "to_value", "context", "answer", "story", "comment",
              "created_at"],
    "endorsements": ["source_key", "participant", "canonical", "card", "card_kind", "question", "vote",
                     "created_at"],
    "comparisons": ["source_key", "participant", "item_a", "item_b", "winner", "context", "prompt", "question",
                    "weight", "created_at"],
    "steps": ["participant", "step", "created_at"],
    "survey": ["source_key", "participant", "question", "answer", "canonical", "created_at"],
}


def empty(name: str) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in COLUMNS[name]})


@dataclass(frozen=True)
class ImportBundle:
    spec: DeliberationSpec
    source: str
    participants: pd.DataFrame = field(default_factory=lambda: empty("participants"))
    attributes: pd.DataFrame = field(default_factory=lambda: empty("attributes"))
    contexts: pd.DataFrame = field(default_factory=lambda: empty("contexts"))
    cards: pd.DataFrame = field(default_factory=lambda: empty("cards"))
    canonical: pd.DataFrame = field(default_factory=lambda: empty("canonical"))
    links: pd.DataFrame = field(default_factory=lambda: empty("links"))
    wiser: pd.DataFrame = field(default_factory=lambda: empty("wiser"))
    endorsements: pd.DataFrame = field(default_factory=lambda: empty("endorsements"))
    comparisons: pd.DataFrame = field(default_factory=lambda: empty("comparisons"))
    steps: pd.DataFrame = field(default_factory=lambda: empty("steps"))
    survey: pd.DataFrame = field(default_factory=lambda: empty("survey"))

    def __post_init__(self) -> None:
        for name, columns in COLUMNS.items():
            frame = getattr(self, name)
            missing = [c for c in columns if c not in frame.columns]
            if missing:
                raise ValueError(f"ImportBundle.{name} lacks columns {missing}")
        # Imported ids stay the public ids (workbench.ids): none may look like one the workbench makes.
        source = f"{self.source} import"
        ids.refuse_workbench_shapes("participant", self.participants["source_id"], where=source)
        for kind in ("card", "statement"):
            ids.refuse_workbench_shapes(kind, self.cards.loc[self.cards["kind"] == kind, "source_id"], where=source)
        ids.refuse_workbench_shapes("value", self.canonical["source_id"], where=source)
        for column in ("item_a", "item_b"):
            ids.refuse_workbench_shapes("value", self.comparisons[column], where=f"{source}, {column}")

    def frames(self) -> dict[str, pd.DataFrame]:
        return {name: getattr(self, name)[COLUMNS[name]] for name in COLUMNS}

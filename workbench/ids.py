"""Public ids: what a participant, card, statement, value or interview is called outside the store.

The rule, for every export, page, CLI output, fit and analysis result: **every public id is a
string**. A row imported from elsewhere keeps the id its source gave it, as text (MGE canonical
value "167", Polis participant "1234", demo participant "demo-0001"); a row made in the workbench is
its kind's letter and its store id: participant "p17", card "c12", statement "s3", canonical value
"v5", interview "i4". Questions keep the store's text id ("demo/homework"); contexts are named by
their text. So that the rule stays one-to-one within a deliberation, an import refuses a source id
that has the shape of a workbench id of its kind (the letter and digits only), naming the id
(`refuse_workbench_shapes`).

Inside, the store and the pages work with the store's integer ids; translating between the two
happens here (`public_id`, `public_ids`, `IdMap`) and nowhere else. This module never touches the
database: `Store.id_map(deliberation, kind)` builds an `IdMap` from the store's rows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

import pandas as pd

from .errors import InputError, NotFound

Kind = Literal["participant", "card", "statement", "value", "interview"]

#: The letter a workbench-made row's public id starts with, per kind.
PREFIX: Mapping[str, str] = MappingProxyType(
    {"participant": "p", "card": "c", "statement": "s", "value": "v", "interview": "i"})
_SHAPE = {kind: re.compile(rf"{letter}[0-9]+") for kind, letter in PREFIX.items()}


def _missing(value) -> bool:
    return value is None or (not isinstance(value, str) and pd.isna(value))


def public_id(kind: Kind, store_id: int, source_id: str | None = None) -> str:
    """The public id of one row: its source id as text when it was imported, else letter + store id."""
    if not _missing(source_id):
        return str(source_id)
    return f"{PREFIX[kind]}{int(store_id)}"


def public_ids(kind: Kind, store_ids: pd.Series, source_ids: pd.Series | None = None) -> pd.Series:
    """`public_id` for a column of store ids (and their source ids), as strings with the same index."""
    if source_ids is None:
        source_ids = pd.Series([None] * len(store_ids), index=store_ids.index, dtype=object)
    return pd.Series([public_id(kind, s, src) for s, src in zip(store_ids, source_ids, strict=True)],
                     index=store_ids.index, dtype=object)


def has_workbench_shape(kind: Kind, text: str) -> bool:
    """True when `text` looks like the public id the workbench gives a row of `kind` it made itself."""
    return bool(_SHAPE[kind].fullmatch(str(text)))


def refuse_workbench_shapes(kind: Kind, source_ids: Iterable, *, where: str) -> None:
    """An `InputError` naming the first imported id that has the shape of a workbench id of `kind`.

    An imported participant "p17" would be indistinguishable from the participant the workbench
    numbers 17, who may join the same deliberation later; the importer must rename it (e.g. "P17").
    """
    for source_id in source_ids:
        if not _missing(source_id) and has_workbench_shape(kind, source_id):
            letter = PREFIX[kind]
            raise InputError(
                f"{where}: {kind} id {str(source_id)!r} has the shape the workbench gives its own"
                f" {kind}s ('{letter}' and digits), so the two could be confused; rename it in the"
                f" source (e.g. {str(source_id).upper()!r})")


@dataclass(frozen=True)
class IdMap:
    """Both directions between store ids and public ids for the rows of one kind in one deliberation."""

    kind: str
    to_public: Mapping[int, str]
    to_store: Mapping[str, int]

    @classmethod
    def of(cls, kind: Kind, store_ids: Iterable[int], source_ids: Iterable | None = None) -> IdMap:
        store_ids = [int(s) for s in store_ids]
        sources = list(source_ids) if source_ids is not None else [None] * len(store_ids)
        to_public = {s: public_id(kind, s, src) for s, src in zip(store_ids, sources, strict=True)}
        to_store = {p: s for s, p in to_public.items()}
        if len(to_store) != len(to_public):  # the import checks make this impossible; say so if not
            raise AssertionError(f"two {kind}s share a public id")
        return cls(kind, MappingProxyType(to_public), MappingProxyType(to_store))

    def public(self, store_id: int) -> str:
        try:
            return self.to_public[int(store_id)]
        except KeyError:
            raise NotFound(f"no {self.kind} with store id {store_id}") from None

    def store(self, public: str) -> int:
        try:
            return self.to_store[str(public)]
        except KeyError:
            raise NotFound(f"no {self.kind} {public!r}") from None

    def publics(self, store_ids: pd.Series) -> pd.Series:
        """A column of store ids as public ids (missing stays missing), dtype object."""
        return pd.Series([None if _missing(s) else self.public(s) for s in store_ids], index=store_ids.index,
                         dtype=object)

"""Researcher exports: clean, documented, group-conditioned tables from one deliberation.

`export(store, deliberation, what, fmt, out)` assembles the tables (from store reads and the
analyses), validates every row against its JSON Schema in schemas/export/, writes Parquet, CSV or
JSONL, and writes a datasheet (what was exported, row counts, columns with their meanings from the
schema, filters, time, licence). Files are written to a temporary name and moved into place only
when everything succeeded, so a failed export leaves nothing half-written. The same database gives
the same files. Exports hold pseudonymous ids only: never invite tokens, token hashes or passwords.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd

from . import analyses, config
from .errors import InputError
from .store import Store, as_timestamp

SCHEMAS = config.SCHEMAS / "export"
TABLES = ("cards", "canonical-values", "wiser-answers", "endorsements", "comparisons", "participants",
          "preference-pairs")
WHATS = (*TABLES, "graph", "polis", "all")
FORMATS = ("parquet", "csv", "jsonl")


class ExportError(InputError):
    """An export could not be made (the message says which table, row or column)."""


@dataclass(frozen=True)
class ExportedFile:
    path: Path
    table: str
    rows: int


def schema(table: str) -> dict:
    return json.loads((SCHEMAS / f"{table}.schema.json").read_text())


# -- the tables ----------------------------------------------------------------------------------


def table(store: Store, deliberation_id: str, name: str, *, question_id: str | None = None,
          until=None) -> pd.DataFrame:
    """One export table, with exactly the columns its schema names (plus attribute columns)."""
    values = analyses.value_table(store, deliberation_id)
    public = dict(zip(values["id"], values["public_id"].astype(str), strict=True))
    titles = dict(zip(values["id"], values["title"], strict=True))
    if name == "cards":
        cards = store.cards(deliberation_id, question_id=question_id, until=until)
        return pd.DataFrame({
            "card_id": cards["id"].astype(int), "source_id": cards["source_id"],
            "question_id": cards["question_id"], "participant_id": cards["author_id"].astype("Int64"),
            "title": cards["title"], "description": cards["description"], "policies": cards["policies"],
            "contexts": cards["contexts"],
            "cluster_id": [public.get(v) if pd.notna(v) else None for v in cards["canonical_id"]],
            "cluster_title": [titles.get(v) if pd.notna(v) else None for v in cards["canonical_id"]],
            "created_at": cards["created_at"]})
    if name == "canonical-values":
        if question_id is not None:
            values = values[values["question_id"].isna() | (values["question_id"] == question_id)]
        return pd.DataFrame({
            "value_id": values["public_id"].astype(str), "workbench_id": values["id"].astype(int),
            "question_id": values["question_id"], "title": values["title"], "description": values["description"],
            "policies": values["policies"], "origin": values["origin"], "members": values["members"].astype(int),
            "contexts": values["contexts"]})
    if name == "wiser-answers":
        answers = store.wiser_answers(deliberation_id, until=until, question_id=question_id)
        return pd.DataFrame({
            "answer_id": answers["id"].astype(int), "participant_id": answers["participant_id"].astype(int),
            "from_value_id": answers["from_id"].map(public), "to_value_id": answers["to_id"].map(public),
            "context": answers["context"], "answer": answers["answer"], "comment": answers["comment"],
            "created_at": answers["created_at"]})
    if name == "endorsements":
        votes = store.endorsements(deliberation_id, until=until, question_id=question_id)
        return votes[["participant_id", "statement_id", "statement_source_id", "vote", "created_at"]].astype(
            {"participant_id": int, "vote": int})
    if name == "comparisons":
        made = store.comparisons(deliberation_id, until=until, include_ties=True)
        if question_id is not None:
            made = made[made["question_id"] == question_id]
        return made[["participant_id", "item_a", "item_b", "winner", "context", "question_id", "source",
                     "created_at"]]
    if name == "participants":
        people = store.participants(deliberation_id)[["participant_id", "source_id", "signup", "created_at"]]
        attrs = store.attributes(deliberation_id, until=until)
        return people.merge(attrs, on="participant_id", how="left")
    if name == "preference-pairs":
        return preference_pairs(store, deliberation_id, values, until=until, question_id=question_id)
    raise ExportError(f"--what: unknown table {name!r}; choose one of {', '.join(WHATS)}")


def preference_pairs(store: Store, deliberation_id: str, values: pd.DataFrame, *, until=None,
                     question_id: str | None = None) -> pd.DataFrame:
    """Comparisons and wiser-than upgrades as (prompt, chosen, rejected) pairs with group columns.

    A comparison's winner is chosen over the other value; an `upgrade` on A→B in context C is B
    chosen over A with prompt C (no_upgrade and not_sure give no pair: see workbench.prefs).
    `group_*` columns carry the participant's attributes; `cluster_id`/`cluster_prob` their latent
    class from the latest stored `fit` run, when there is one.
    """
    text = {}
    for row in values.itertuples():
        body = f"{row.title}: {row.description}".strip().rstrip(":")
        policies = "; ".join(row.policies or [])
        full = f"{body} (attends to: {policies})" if policies else body
        text[str(row.id)] = text[str(row.public_id)] = full
    rows = []
    made = store.comparisons(deliberation_id, until=until)
    if question_id is not None:
        made = made[made["question_id"] == question_id]
    for m in made.itertuples():
        chosen, rejected = (m.item_a, m.item_b) if m.winner == "a" else (m.item_b, m.item_a)
        rows.append({"prompt": m.prompt or m.context or "", "chosen": text.get(chosen, chosen),
                     "rejected": text.get(rejected, rejected), "chosen_id": chosen, "rejected_id": rejected,
                     "participant_id": str(m.participant_id), "workbench_participant_id": m.workbench_participant_id,
                     "context": m.context, "weight": 1.0, "source": m.source})
    answers = store.wiser_answers(deliberation_id, until=until, latest=True, question_id=question_id)
    public = dict(zip(values["id"], values["public_id"].astype(str), strict=True))
    for a in answers[answers["answer"] == "upgrade"].itertuples():
        chosen, rejected = public.get(a.to_id, str(a.to_id)), public.get(a.from_id, str(a.from_id))
        rows.append({"prompt": a.context, "chosen": text.get(chosen, chosen), "rejected": text.get(rejected, rejected),
                     "chosen_id": chosen, "rejected_id": rejected, "participant_id": str(a.participant_id),
                     "workbench_participant_id": a.participant_id, "context": a.context, "weight": 1.0,
                     "source": "wiser"})
    pairs = pd.DataFrame(rows, columns=["prompt", "chosen", "rejected", "chosen_id", "rejected_id", "participant_id",
                                        "workbench_participant_id", "context", "weight", "source"])
    attrs = store.attributes(deliberation_id, until=until)
    attrs = attrs.rename(columns={c: f"group_{c}" for c in attrs.columns if c != "participant_id"})
    pairs = pairs.merge(attrs, left_on="workbench_participant_id", right_on="participant_id", how="left",
                        suffixes=("", "_attr")).drop(columns=["participant_id_attr"], errors="ignore")
    latent = latest_latent_classes(store, deliberation_id)
    pairs["cluster_id"] = pairs["participant_id"].map(lambda p: latent.get(p, (None, None))[0]).astype("Int64")
    pairs["cluster_prob"] = pairs["participant_id"].map(lambda p: latent.get(p, (None, None))[1]).astype("Float64")
    return pairs.drop(columns=["workbench_participant_id"])


def latest_latent_classes(store: Store, deliberation_id: str) -> dict[str, tuple[int, float]]:
    """participant_id → (component, probability) from the latest successful `fit` run, if any."""
    runs = store.runs(deliberation_id=deliberation_id, kind="fit")
    runs = runs[runs["status"] == "done"]
    if runs.empty:
        return {}
    result = store.run(int(runs.iloc[0]["id"]))["result"] or {}
    out = {}
    for p in result.get("participants", []):
        probs = p.get("probs") or []
        component = int(p["component"])
        out[str(p["participant_id"])] = (component, float(probs[component]) if probs else None)
    return out


# -- writing ---------------------------------------------------------------------------------------


def _plain(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, pd.Timestamp | datetime):
        return value.isoformat() + ("Z" if value.tzinfo is None else "")
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return None if np.isnan(value) else float(value)
    if value is pd.NA or value is pd.NaT or (isinstance(value, float) and np.isnan(value)):
        return None
    return value


def records(frame: pd.DataFrame) -> list[dict]:
    return [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict("records")]


def validate(name: str, frame: pd.DataFrame) -> None:
    """Every row against schemas/export/<name>.schema.json; the first bad row is named."""
    validator = jsonschema.Draft202012Validator(schema(name), format_checker=jsonschema.FormatChecker())
    for i, row in enumerate(records(frame), start=1):
        error = next(iter(validator.iter_errors(row)), None)
        if error is not None:
            where = ".".join(str(p) for p in error.absolute_path) or "(row)"
            raise ExportError(f"{name}: row {i}, column {where}: {error.message}")


def write_table(frame: pd.DataFrame, path: Path, fmt: str) -> None:
    if fmt == "parquet":
        frame.to_parquet(path, index=False)
    elif fmt == "csv":
        flat = frame.copy()
        for column in flat.columns:  # lists as JSON arrays, so a CSV reader gets them back exactly
            if flat[column].dtype == object and any(isinstance(v, list | np.ndarray) for v in flat[column]):
                flat[column] = flat[column].map(lambda v: json.dumps(_plain(v), ensure_ascii=False)
                                                if isinstance(v, list | np.ndarray) else v)
        flat.to_csv(path, index=False)
    elif fmt == "jsonl":
        with open(path, "w", encoding="utf-8") as f:
            for row in records(frame):
                f.write(json.dumps(row, ensure_ascii=False, sort_keys=False) + "\n")
    else:
        raise ExportError(f"--format: must be one of {', '.join(FORMATS)}, got {fmt!r}")


def datasheet(deliberation: dict, files: list[ExportedFile], *, what: str, fmt: str, filters: dict,
              extra_columns: dict[str, list[str]], data_until: str | None) -> str:
    """The README.md that travels with an export.

    It states the time of the newest exported row, not the wall clock, so the same database gives
    the same files.
    """
    lines = [f"# Values Workbench export: {deliberation['title']}", "",
             f"- Deliberation: `{deliberation['id']}` ({deliberation.get('source', '')})",
             f"- Exported: `{what}` as {fmt}",
             f"- Newest row: {data_until or 'no timestamped rows'} (UTC)",
             f"- Filters: {', '.join(f'{k} = {v}' for k, v in filters.items() if v) or 'none'}",
             f"- Licence: {deliberation.get('licence') or 'not stated'}",
             "- Participants are pseudonymous: ids are the workbench's own (or the imported data's);",
             "  no invite tokens, token hashes, passwords or names are exported. Hidden (moderated) cards are left out.",
             "", "## Files", "", "| file | table | rows |", "|---|---|---|"]
    base = files[0].path.parent if files else Path(".")
    lines += [f"| `{f.path.relative_to(base) if f.path.is_relative_to(base) else f.path.name}` | {f.table} | {f.rows} |"
              for f in files]
    for f in files:
        if f.table not in TABLES:
            continue
        sch = schema(f.table)
        lines += ["", f"## `{f.path.name}`: {sch['title']}", "", sch["description"], "",
                  "| column | meaning |", "|---|---|"]
        lines += [f"| `{c}` | {p.get('description', '')} |" for c, p in sch["properties"].items()]
        for c in extra_columns.get(f.table, []):
            meaning = "participant attribute" if f.table == "participants" else "the participant's attribute"
            lines.append(f"| `{c}` | {meaning} `{c.removeprefix('group_')}` |")
    if deliberation.get("source") == "polis":
        lines += ["", "Data was gathered using the Polis software (compdemocracy.org/polis) and is sub-licensed "
                  "under CC BY 4.0 with Attribution to The Computational Democracy Project."]
    return "\n".join(lines) + "\n"


def export(store: Store, deliberation_id: str, what: str, fmt: str, out: Path, *, question_id: str | None = None,
           until=None) -> list[ExportedFile]:
    """Write the export; `out` is a file for one table, a folder for `all`, `graph` and `polis`."""
    if what not in WHATS:
        raise ExportError(f"--what: must be one of {', '.join(WHATS)}, got {what!r}")
    if fmt not in FORMATS:
        raise ExportError(f"--format: must be one of {', '.join(FORMATS)}, got {fmt!r}")
    until = as_timestamp(until, field="until (only data created before)")
    deliberation = store.deliberation(deliberation_id)
    out = Path(out)
    as_folder = what in ("all", "graph", "polis")
    final_dir = out if as_folder else out.parent
    final_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=final_dir))
    try:
        files: list[ExportedFile] = []
        extra: dict[str, list[str]] = {}
        newest: list[pd.Timestamp] = []
        names = TABLES if what == "all" else ((what,) if what in TABLES else ())
        for name in names:
            frame = table(store, deliberation_id, name, question_id=question_id, until=until)
            validate(name, frame)
            known = set(schema(name)["properties"])
            extra[name] = [c for c in frame.columns if c not in known]
            if "created_at" in frame.columns and frame["created_at"].notna().any():
                newest.append(pd.Timestamp(frame["created_at"].max()))
            target = staging / (f"{name}.{fmt}" if as_folder else out.name)
            write_table(frame, target, fmt)
            files.append(ExportedFile(final_dir / target.name, name, len(frame)))
        if what in ("graph", "all"):
            files += _write_graphs(store, deliberation_id, staging, final_dir, question_id=question_id, until=until)
        if what in ("polis", "all"):
            files += _write_polis(store, deliberation_id, staging / ("polis" if what == "all" else ""), final_dir,
                                  question_id=question_id, until=until, nested=what == "all")
        sheet = datasheet(deliberation, files, what=what, fmt=fmt,
                          filters={"question": question_id, "until": until}, extra_columns=extra,
                          data_until=str(max(newest)) if newest else None)
        sheet_name = "README.md" if as_folder else f"{out.name}.README.md"
        (staging / sheet_name).write_text(sheet, encoding="utf-8")
        for item in staging.iterdir():  # everything succeeded: move into place
            target = final_dir / item.name
            if target.is_dir():
                shutil.rmtree(target)
            os.replace(item, target)
        return [*files, ExportedFile(final_dir / sheet_name, "datasheet", 0)]
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write_graphs(store, deliberation_id, staging, final_dir, *, question_id, until) -> list[ExportedFile]:
    from . import moralgraph

    files = []
    for mode in ("mge", "default"):
        graph, published = analyses.moral_graph(store, deliberation_id, mode=mode, until=until, question_id=question_id)
        (staging / f"moral-graph-{mode}.json").write_text(json.dumps(published, indent=1, ensure_ascii=False))
        moralgraph.to_graphml(graph, staging / f"moral-graph-{mode}.graphml")
        files += [ExportedFile(final_dir / f"moral-graph-{mode}.json", f"graph ({mode})", len(published["edges"])),
                  ExportedFile(final_dir / f"moral-graph-{mode}.graphml", f"graph ({mode})", len(published["edges"]))]
    return files


def _polis_ids(ids: pd.Series, source_ids: pd.Series) -> dict:
    """Polis's integer ids: the imported ones where every row has a numeric one, else 0, 1, ... in order."""
    pairs = pd.DataFrame({"id": ids, "source": source_ids}).drop_duplicates("id")
    text = pairs["source"].astype(str)
    if pairs["source"].notna().all() and text.str.isdigit().all():
        return dict(zip(pairs["id"], text.astype(int), strict=True))
    ordered = sorted(pairs["id"], key=lambda v: (str(v)[0], int(str(v)[1:])) if str(v)[1:].isdigit() else (str(v), 0))
    return {v: i for i, v in enumerate(ordered)}


def _write_polis(store, deliberation_id, folder: Path, final_dir, *, question_id, until, nested) -> list[ExportedFile]:
    """comments.csv, votes.csv and participants-votes.csv in Polis's own export format."""
    folder.mkdir(parents=True, exist_ok=True)
    # Hidden statements go out as Polis marks moderated-out comments (moderated = -1, text withheld):
    # Polis tools still count their votes, as Polis itself does.
    votes = store.endorsements(deliberation_id, until=until, question_id=question_id, latest=False,
                               include_hidden=True)
    latest = store.endorsements(deliberation_id, until=until, question_id=question_id, include_hidden=True)
    hidden = set(latest.loc[latest["hidden"], "statement_id"])
    number = _polis_ids(latest["statement_id"], latest["statement_source_id"])
    voter = _polis_ids(latest["participant_id"], latest["source_id"])
    statements = sorted(number, key=number.get)
    people = sorted(voter, key=voter.get)
    values = analyses.value_table(store, deliberation_id)
    cards = pd.concat([store.cards(deliberation_id, kind="statement", include_hidden=True),
                       store.cards(deliberation_id, include_hidden=True)], ignore_index=True)
    body = {f"v{r.id}": f"{r.title}: {r.description}" for r in values.itertuples()}
    body |= {f"c{r.id}": (r.description or r.title) for r in cards.itertuples()}
    ms = lambda ts: int(pd.Timestamp(ts).timestamp() * 1000)  # noqa: E731
    agrees = latest[latest["vote"] == 1].groupby("statement_id").size()
    disagrees = latest[latest["vote"] == -1].groupby("statement_id").size()
    first = votes.groupby("statement_id")["created_at"].min()
    comments = pd.DataFrame({
        "timestamp": [ms(first[s]) for s in statements],
        "datetime": [pd.Timestamp(first[s]).strftime("%a %b %d %H:%M:%S UTC %Y") for s in statements],
        "comment-id": [number[s] for s in statements], "author-id": -1,
        "agrees": [int(agrees.get(s, 0)) for s in statements], "disagrees": [int(disagrees.get(s, 0)) for s in statements],
        "moderated": [-1 if s in hidden else 1 for s in statements],
        "comment-body": ["(hidden by a facilitator)" if s in hidden else body.get(s, s) for s in statements]})
    vote_rows = votes[votes["statement_id"].isin(number) & votes["participant_id"].isin(voter)]
    votes_csv = pd.DataFrame({
        "timestamp": [ms(t) for t in vote_rows["created_at"]],
        "datetime": [pd.Timestamp(t).strftime("%a %b %d %H:%M:%S UTC %Y") for t in vote_rows["created_at"]],
        "comment-id": vote_rows["statement_id"].map(number), "voter-id": vote_rows["participant_id"].map(voter),
        "vote": vote_rows["vote"].astype(int)})
    matrix = latest.pivot_table(index="participant_id", columns="statement_id", values="vote", aggfunc="last")
    matrix = matrix.reindex(index=people, columns=statements)
    # Polis's own groups travel with an imported conversation (they also tell who Polis clustered).
    attrs = store.attributes(deliberation_id)
    polis_group = (dict(zip(attrs["participant_id"], attrs["polis_group"], strict=True))
                   if "polis_group" in attrs.columns else {})
    pv = pd.DataFrame({"participant": [voter[p] for p in people],
                       "group-id": [polis_group[p] if pd.notna(polis_group.get(p)) else "" for p in people],
                       "n-comments": 0, "n-votes": matrix.notna().sum(axis=1).to_numpy(),
                       "n-agree": (matrix == 1).sum(axis=1).to_numpy(),
                       "n-disagree": (matrix == -1).sum(axis=1).to_numpy()})
    columns = pd.DataFrame({str(number[s]): matrix[s].astype("Int64").to_numpy() for s in statements})
    pv = pd.concat([pv, columns], axis=1)
    comments.to_csv(folder / "comments.csv", index=False)
    votes_csv.to_csv(folder / "votes.csv", index=False)
    pv.to_csv(folder / "participants-votes.csv", index=False)
    prefix = "polis/" if nested else ""
    return [ExportedFile(final_dir / f"{prefix}comments.csv", "polis comments", len(comments)),
            ExportedFile(final_dir / f"{prefix}votes.csv", "polis votes", len(votes_csv)),
            ExportedFile(final_dir / f"{prefix}participants-votes.csv", "polis participants-votes", len(pv))]

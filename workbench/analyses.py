"""Analyses of one deliberation: read from the store, run the pure analysis, record the run.

The bridge that the CLI and the pages share (so neither repeats the other): each function takes
a `Store` and a deliberation id, reads what the analysis needs, calls the pure module
(`moralgraph`, `dedup`, `groups`, `prefs`, ...) and, where asked, records an analysis run.
No SQL here (that is the store's), no Streamlit (that is the pages').
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from . import ids, moralgraph
from .errors import InputError, NotEnoughData, NotFound, WorkbenchError
from .store import Store

if TYPE_CHECKING:
    from .groups import OpinionGroups
    from .prefs import PreferenceFit

Progress = Callable[[int, int], None]


# -- what the analyses return ------------------------------------------------------------------------


@dataclass(frozen=True)
class GraphResult:
    """The moral graph and its published JSON shape (the MGE study's; values by their public ids)."""

    graph: moralgraph.MoralGraph
    published: dict


@dataclass(frozen=True)
class GroupsResult:
    """Polis-style opinion groups; `table` is one row per participant: participant_id (public id), group
    (-1 below the participation threshold). `run_id` when the run was recorded."""

    groups: OpinionGroups
    table: pd.DataFrame
    run_id: int | None = None


@dataclass(frozen=True)
class PreferenceData:
    """What the preference models fit: comparisons (wiser-than answers included) and the participants'
    attributes, both keyed by the participants' public ids."""

    comparisons: pd.DataFrame
    attributes: pd.DataFrame


@dataclass(frozen=True)
class FitRun:
    """The preference fits of a deliberation: the fitted objects, the fit JSON (schemas/fit.schema.json)
    and the analysis run it was recorded as."""

    fit: PreferenceFit
    json: dict
    data: PreferenceData
    run_id: int | None = None


def resolve_deliberation(store: Store, deliberation: str | None) -> str:
    """The deliberation to work on: the one named, or the only one in the database."""
    if deliberation:
        store.deliberation(deliberation)  # raises NotFound
        return deliberation
    known = list(store.deliberations()["id"])
    if len(known) == 1:
        return known[0]
    if not known:
        raise NotFound("the database holds no deliberation yet (try `workbench demo` or `workbench import`)")
    raise NotFound(f"the database holds several deliberations ({', '.join(known)}): name one with --deliberation")


def value_table(store: Store, deliberation_id: str, *, question_id: str | None = None) -> pd.DataFrame:
    """Canonical values with `public_id` (workbench.ids: the id every output uses) beside the store's `id`."""
    values = store.canonical_values(deliberation_id, question_id=question_id)
    values["public_id"] = ids.public_ids("value", values["id"], values["source_id"])
    return values


def endorsement_table(store: Store, deliberation_id: str, **query) -> pd.DataFrame:
    """`store.endorsements(...)` with public ids: `participant_id` and `statement_id` (the public id of
    the value, card or statement voted on) replace the store's ids; `participant` keeps the store id."""
    votes = store.endorsements(deliberation_id, **query)
    statement = [ids.public_id("value", v, s) if kind == "value" else ids.public_id(kind, c, s)
                 for kind, v, c, s in zip(votes["target_kind"], votes["canonical_id"], votes["card_id"],
                                          votes["target_source_id"], strict=True)]
    return votes.assign(
        participant=votes["participant_id"],
        participant_id=ids.public_ids("participant", votes["participant_id"], votes["participant_source_id"]),
        statement_id=pd.Series(statement, index=votes.index, dtype=object))


def moral_graph(store: Store, deliberation_id: str, *, mode: str = "default", until=None,
                context: str | None = None, question_id: str | None = None, min_wiser: int = 2,
                participants: set[int] | None = None, record: bool = False) -> GraphResult:
    """The moral graph of a deliberation and its published-shape JSON (values by their public ids).

    `participants` restricts it to the answers of those participants (e.g. one group's graph).
    """
    if mode not in ("mge", "default"):
        raise InputError(f"mode: must be 'mge' or 'default', got {mode!r}")
    values = value_table(store, deliberation_id)
    answers = store.wiser_answers(deliberation_id, until=until, question_id=question_id)
    if participants is not None:
        answers = answers[answers["participant_id"].isin(participants)]
    public = dict(zip(values["id"], values["public_id"], strict=True))
    answers = answers.assign(from_id=answers["from_id"].map(public), to_id=answers["to_id"].map(public))
    meta = values.drop(columns="id").rename(columns={"public_id": "id"})[["id", "title", "description", "policies"]]
    if mode == "mge":
        graph = moralgraph.summarize_mge(answers, meta, until=until, min_wiser=min_wiser, context=context)
    else:
        graph = moralgraph.summarize_default(answers, meta, until=until, context=context)
    published = moralgraph.to_published_json(graph, meta)
    if record:
        params = {"mode": mode, "until": str(until) if until else None, "context": context,
                  "question_id": question_id, "min_wiser": min_wiser}
        run = store.start_run("graph", params, deliberation_id=deliberation_id)
        store.finish_run(run, result={"edges": len(published["edges"]), "values": len(published["values"])})
    return GraphResult(graph, published)


def opinion_groups(store: Store, deliberation_id: str, *, question_id: str | None = None, until=None,
                   seed: int = 0, replay: bool | None = None, record: bool = False,
                   progress: Progress | None = None) -> GroupsResult:
    """Polis's opinion groups and report from the endorsements (workbench.groups, workbench.polis).

    Every vote event goes in, in the order cast: with a vote history the conversation is replayed in
    Polis's update cadence (`replay`, the default where votes carry distinct times), else Polis's
    math runs once. Votes on hidden (moderated-out) statements are passed in and zeroed, as Polis
    does. Participants an imported Polis export placed in a group (`polis_group`) count as already in
    the conversation, as Polis's persisted in-conv set makes them. Participants and statements are
    named by their public ids (Polis's own for an imported conversation), so the report names
    statements as Polis does and every run as the exports do.
    """
    from .groups import opinion_groups as run

    votes = endorsement_table(store, deliberation_id, until=until, question_id=question_id, include_hidden=True,
                              latest=False)
    if votes.empty:
        raise NotEnoughData(f"deliberation {deliberation_id!r} has no agree / disagree / pass votes to find opinion"
                            " groups in")
    # Public ids are the keys (Polis's own comment and participant ids for an imported conversation), so
    # the groups, the report and every run name participants and statements as the exports do.
    votes = votes.assign(participant_key=votes["participant_id"], statement_key=votes["statement_id"])
    # Time order; on equal times (an export without timestamps) by participant, then statement id,
    # which is the order Polis numbers them in (ids are handed out as people and comments arrive).
    votes = votes.assign(_p=_padded(votes["participant_key"]), _s=_padded(votes["statement_key"]))
    votes = votes.sort_values(["created_at", "_p", "_s"], kind="stable")
    hidden = set(votes.loc[votes["hidden"], "statement_key"])
    attrs = store.attributes(deliberation_id)
    known: set[str] = set()
    if "polis_group" in attrs.columns:
        keyed = dict(zip(votes["participant"], votes["participant_key"], strict=False))
        known = {keyed[p] for p in attrs.loc[attrs["polis_group"].notna(), "participant_id"] if p in keyed}
    table = votes[["participant_key", "statement_key", "vote", "created_at"]].set_axis(
        ["participant_id", "statement_id", "vote", "created_at"], axis=1).reset_index(drop=True)
    result = run(table, seed=seed, moderated_out=hidden, in_conversation=known, replay=replay, progress=progress)
    frame = result.participants[["participant_id", "group"]].reset_index(drop=True)
    run_id = None
    if record:
        run_id = store.start_run("groups", {"question_id": question_id, "until": str(until) if until else None,
                                            "seed": seed, "method": result.method}, deliberation_id=deliberation_id)
        store.finish_run(run_id, result={"k": int(result.k), "method": result.method,
                                         "participants": frame.to_dict("records"),
                                         "silhouette": {str(k): v for k, v in result.silhouette.items()}})
    return GroupsResult(result, frame, run_id)


def statement_titles(store: Store, deliberation_id: str) -> dict[str, str]:
    """Public id of a value, statement or card (as `opinion_groups` names statements) -> its text."""
    values = value_table(store, deliberation_id)
    titles = dict(zip(values["public_id"], values["title"], strict=True))
    for kind in ("statement", "card"):
        cards = store.cards(deliberation_id, kind=kind, include_hidden=True)
        public = ids.public_ids(kind, cards["id"], cards["source_id"])
        for key, text in zip(public, cards["description"].fillna(cards["title"]), strict=True):
            titles.setdefault(key, text)
    return titles


def polis_report_json(store: Store, deliberation_id: str, groups) -> dict:
    """Polis's report on `groups` (from `opinion_groups`) as JSON (schemas/polis_report.schema.json)."""
    report = groups.report.to_json(statement_titles(store, deliberation_id))
    return {"deliberation": deliberation_id, "method": groups.method, "updates": int(groups.params["updates"]),
            "silhouette": {str(k): (None if v != v else float(v)) for k, v in groups.silhouette.items()}, **report}


def _padded(keys: pd.Series) -> pd.Series:
    """Keys that sort as numbers where they are numbers (zero-padded), else as text."""
    keys = keys.astype(str)
    if len(keys) and keys.str.isdigit().all():
        return keys.str.zfill(int(keys.str.len().max()))
    return keys


class StoreEmbeddingCache:
    """The store's embedding table as workbench.embed's EmbeddingCache."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, keys):
        return self.store.get_embeddings(keys)

    def put(self, rows) -> None:
        self.store.put_embeddings(rows)


#: Links a facilitator made by hand: the next clustering must keep these cards where they were put.
PINNED = ("split", "merge", "manual")
#: How many of the least-sure candidate merges an LLM is asked about per dedup run, at most.
LLM_PAIRS = 20
#: How many candidate merges a dedup run keeps in its result (for the Moderation page and the round).
KEPT_CANDIDATES = 100
#: A participant is asked about a candidate merge only while the model's probability that the two cards are
#: one value lies in this range. Outside it the model is sure, and an answer would overturn it outright (the
#: participants' majority decides a pair), so asking costs the participant's time and risks a careless click.
ASK_PARTICIPANTS_BETWEEN = (0.1, 0.9)
#: A wiser-than "upgrade" between two values counts as half a participant saying they are different
#: values (they were told apart); not learned: no data here has answers about values that are candidates.
WISER_WEIGHT = 0.5


@dataclass(frozen=True)
class DedupRun:
    """What `deduplicate` did: the clustering, its analysis run, and what it cost."""

    result: Any  # workbench.dedup.Dedup
    run_id: int
    embedded: int  # card texts embedded (the rest came from the cache)
    llm_asked: int = 0  # candidate merges sent to the LLM
    llm_answered: int = 0
    llm_error: str | None = None  # why the LLM step stopped early, if it did


def deduplicate(store: Store, deliberation_id: str, *, per_question: bool = False,
                distance_threshold: float | None = None, method: str = "two-stage", model: str | None = None,
                llm=None, use_llm: bool = True, llm_pairs: int = LLM_PAIRS,
                progress: Progress | None = None, embedder=None, actor_id: int | None = None) -> DedupRun:
    """Cluster the deliberation's cards into canonical values and store the result (workbench.dedup).

    Re-running embeds only new or edited cards (the cache is keyed by card, model and text hash),
    keeps the ids of values whose members did not change, and keeps every card a facilitator
    placed by hand (merges, splits) where it was put; renamed values keep their names. Imported canonical
    values are anchors (`imported_anchors`): the cards that match one join it. Participants'
    "same value?" answers, earlier LLM verdicts and wiser-than answers between values are evidence.
    When an LLM is configured (`llm`, else $WORKBENCH_LLM_*; `use_llm=False` skips it), it is asked
    about the `llm_pairs` merges the workbench is least sure of that nothing decided yet; its verdicts
    are stored and decide those merges. If it fails, the run goes on with what the two stages decided
    and the failure is kept in the run's result. The new clustering and its audit row (by `actor_id`;
    None for the command line) are one transaction.
    """
    from . import dedup
    from .embed import Embedder, card_text
    from .llm import LlmConfig, LlmInterviewer, LlmUnavailable

    cards = store.cards(deliberation_id)
    if cards.empty:
        raise NotFound(f"deliberation {deliberation_id!r} has no active values cards to cluster")
    anchors = imported_anchors(store, deliberation_id)
    clustered = pd.concat([cards, anchors.drop(columns="value_id")], ignore_index=True) if len(anchors) else cards
    embedder = embedder or Embedder(model=model)
    before = embedder.texts_embedded
    params = dedup.DedupParams(
        method=method, per_question=per_question, merge_model=dedup.merge_model_for(embedder.model_name),
        distance_threshold=dedup.DedupParams().distance_threshold if distance_threshold is None else distance_threshold)
    if llm is None and use_llm:
        config = LlmConfig.from_env()
        llm = LlmInterviewer(config) if config else None
    run_id = store.start_run("dedup", {"per_question": per_question, "method": method, "model": embedder.model_name,
                                       "distance_threshold": params.distance_threshold if method == "embedding" else None,
                                       "min_same": params.merge_model.min_same if method == "two-stage" else None,
                                       "llm": getattr(getattr(llm, "config", None), "model", None) if use_llm else None},
                             deliberation_id=deliberation_id)
    asked, verdicts, llm_error = 0, [], None
    try:
        texts = pd.DataFrame({"id": clustered["id"], "text": [card_text(r) for r in clustered.to_dict("records")]})
        # Cards embedded before a failure stay cached: a re-run embeds only the rest.
        vectors = embedder.embed_card_parts(texts, StoreEmbeddingCache(store), progress=progress)
        embedded = embedder.texts_embedded - before
        links = store.card_links(deliberation_id)
        links = links[links["card_id"].isin(cards["id"])]
        previous = {int(c): int(v) for c, v in zip(links["card_id"], links["canonical_id"], strict=True)}
        pinned = links[links["provenance"].isin(PINNED)]
        overrides = dedup.Overrides(splits=tuple(dedup.Split(int(c), into=int(v)) for c, v in
                                                 zip(pinned["card_id"], pinned["canonical_id"], strict=True)))

        def cluster():
            return dedup.canonical_values(clustered, vectors.cards, policy_embeddings=vectors.lines,
                                          previous=previous, overrides=overrides, params=params,
                                          judgements=merge_evidence(store, deliberation_id, previous),
                                          anchors=dict(zip(anchors["id"], anchors["value_id"], strict=True)))

        result = cluster()
        if llm is not None and llm_pairs > 0:
            judged = store.merge_judgements(deliberation_id)
            by_id = cards.set_index("id")
            for candidate in dedup.least_sure(result.candidates, llm_pairs,
                                              exclude=zip(judged["card_a"], judged["card_b"], strict=True)):
                asked += 1
                try:
                    verdict = llm.same_value(_card_payload(by_id.loc[candidate.card_a]),
                                             _card_payload(by_id.loc[candidate.card_b]))
                except LlmUnavailable as exc:
                    llm_error = f"{exc.kind}: {exc.reason}"  # fall back to the two stages for the rest
                    break
                verdicts.append((int(candidate.card_a), int(candidate.card_b), verdict.answer, verdict.reason))
            if verdicts:
                store.record_merge_verdicts(deliberation_id, verdicts, model=llm.config.model, run_id=run_id)
                result = cluster()
        known = set(previous.values()) | set(anchors["value_id"])
        written = store.apply_canonical_values(deliberation_id, [
            {"id": v.id if v.id in known else None, "title": v.title, "description": v.description,
             "policies": list(v.policies), "question_id": v.question_ids[0] if len(v.question_ids) == 1 else None,
             "members": list(v.member_ids)} for v in result.values], run_id=run_id, actor_id=actor_id,
            details={"embedded": embedded})
    except Exception as exc:
        # The facilitator sees the failure among the analysis runs; nothing of the clustering was written.
        store.finish_run(run_id, error=f"{type(exc).__name__}: {exc}")
        raise
    # Values written as new got their id from the store: candidates name values by those ids. The run's
    # result names cards and values by their public ids, like every analysis run.
    new_ids = {v.id: written[i] for i, v in enumerate(result.values)}
    card_ids, value_ids = store.id_map(deliberation_id, "card"), store.id_map(deliberation_id, "value")
    kept = [{"card_a": card_ids.public(c.card_a), "card_b": card_ids.public(c.card_b),
             "value_a": value_ids.public(new_ids.get(c.value_a, c.value_a)),
             "value_b": value_ids.public(new_ids.get(c.value_b, c.value_b)), "probability": c.probability,
             "merged": c.merged, "decided_by": c.decided_by, "margin": c.margin}
            for c in result.candidates[:KEPT_CANDIDATES]]
    store.finish_run(run_id, result={"values": len(written), "cards": len(cards), "embedded": embedded,
                                     "llm": {"asked": asked, "answered": len(verdicts), "error": llm_error},
                                     "candidates": kept})
    return DedupRun(result=result, run_id=run_id, embedded=embedded, llm_asked=asked,
                    llm_answered=len(verdicts), llm_error=llm_error)


def imported_anchors(store: Store, deliberation_id: str) -> pd.DataFrame:
    """The imported canonical values as pseudo-cards for the dedup (`anchors` of `dedup.canonical_values`):
    `id` (minus the value's id, so it never clashes with a card's and its embedding is cached like one),
    title, description, policies, question_id, value_id. An MGE import brings the study's canonical values
    without their member cards (the study's card -> value mapping is not published); without anchors the
    cards would form values of their own beside them, and the imported answers (on those values) would
    never meet the cards."""
    values = store.canonical_values(deliberation_id)
    values = values[(values["origin"] == "import") & values["title"].str.strip().astype(bool)
                    & values["policies"].map(lambda p: p is not None and len(p) > 0)]
    return pd.DataFrame({"id": -values["id"].astype(int), "title": values["title"],
                         "description": values["description"], "policies": values["policies"],
                         "question_id": values["question_id"], "value_id": values["id"].astype(int)})


def _card_payload(card: pd.Series) -> dict:
    return {"title": card["title"], "description": card["description"], "policies": list(card["policies"])}


def merge_evidence(store: Store, deliberation_id: str, previous: dict[int, int]) -> pd.DataFrame:
    """Evidence about which cards share a value, as `workbench.dedup` takes it: participants' latest
    "same value?" answers, LLM verdicts, and wiser-than "upgrade" answers between two values (a
    "different", weight `WISER_WEIGHT`, between the values' first member cards)."""
    judged = store.merge_judgements(deliberation_id)
    frames = [judged.assign(weight=1.0)[["card_a", "card_b", "answer", "source", "weight"]]]
    first_card: dict[int, int] = {}
    for card, value in sorted(previous.items()):
        first_card.setdefault(value, card)
    wiser = store.wiser_answers(deliberation_id, latest=True)
    wiser = wiser[(wiser["answer"] == "upgrade") & wiser["from_id"].isin(first_card) & wiser["to_id"].isin(first_card)]
    if not wiser.empty:
        frames.append(pd.DataFrame({"card_a": wiser["from_id"].map(first_card), "card_b": wiser["to_id"].map(first_card),
                                    "answer": "different", "source": "wiser", "weight": WISER_WEIGHT}))
    return pd.concat(frames, ignore_index=True)


def dedup_llm_note(store: Store, deliberation_id: str) -> str | None:
    """What the LLM did in the latest finished dedup run, when it was asked anything (else None)."""
    runs = store.runs(deliberation_id=deliberation_id, kind="dedup")
    done = runs[runs["status"] == "done"]
    llm = (store.run(int(done.iloc[0]["id"]))["result"] or {}).get("llm") if not done.empty else None
    if not llm or not llm.get("asked"):
        return None
    note = f"In the latest clustering the LLM judged {llm['answered']} of {llm['asked']} uncertain merges"
    if llm.get("error"):
        note += f", then failed ({llm['error']}); the rest were decided without it"
    return note + "."


def merge_questions(store: Store, deliberation_id: str, *, participant_id: int | None = None,
                    limit: int = 10) -> pd.DataFrame:
    """The candidate merges of the latest dedup run the workbench is least sure of, with the answers so
    far: `card_a, title_a, card_b, title_b, value_a, value_b, probability, merged, decided_by, same,
    different, not_sure, llm, llm_reason`. With `participant_id`, what the "Are these two the same value?"
    round asks that participant: pairs they have not answered yet whose probability is within
    `ASK_PARTICIPANTS_BETWEEN` (none when the model is sure of every merge)."""
    from . import dedup

    runs = store.runs(deliberation_id=deliberation_id, kind="dedup")
    done = runs[runs["status"] == "done"]
    columns = ["card_a", "title_a", "card_b", "title_b", "value_a", "value_b", "probability", "merged",
               "decided_by", "same", "different", "not_sure", "llm", "llm_reason"]
    if done.empty:
        return pd.DataFrame(columns=columns)
    card_ids, value_ids = store.id_map(deliberation_id, "card"), store.id_map(deliberation_id, "value")

    def stored(kind: ids.IdMap, public) -> int:
        # Runs made before migration 008 named cards and values by store id (a JSON number).
        return int(public) if isinstance(public, int) else kind.store(public)

    candidates = [dedup.CandidateMerge(**{**c, "card_a": stored(card_ids, c["card_a"]),
                                          "card_b": stored(card_ids, c["card_b"]),
                                          "value_a": stored(value_ids, c["value_a"]),
                                          "value_b": stored(value_ids, c["value_b"])})
                  for c in (store.run(int(done.iloc[0]["id"]))["result"] or {}).get("candidates", [])]
    judged = store.merge_judgements(deliberation_id)
    answered = judged[(judged["source"] == "participant") & (judged["participant_id"] == participant_id)]
    low, high = ASK_PARTICIPANTS_BETWEEN
    unsure = [c for c in candidates if low <= c.probability <= high]
    chosen = dedup.least_sure(unsure, limit, exclude=zip(answered["card_a"], answered["card_b"], strict=True))
    if participant_id is None:  # the facilitator's view: also the pairs already decided by answers
        chosen = sorted(candidates, key=lambda c: (c.decided_by == "model", c.margin))[:limit]
    titles = dict(zip(*[store.cards(deliberation_id, include_hidden=True)[c] for c in ("id", "title")], strict=True))
    people = judged[judged["source"] == "participant"]
    tally = people.groupby(["card_a", "card_b"])["answer"].value_counts().unstack(fill_value=0)
    llm = judged[judged["source"] == "llm"].drop_duplicates(["card_a", "card_b"], keep="last").set_index(
        ["card_a", "card_b"])
    rows = []
    for c in chosen:
        key = (c.card_a, c.card_b)
        counts = tally.loc[key] if key in tally.index else {}
        rows.append({"card_a": c.card_a, "title_a": titles.get(c.card_a), "card_b": c.card_b,
                     "title_b": titles.get(c.card_b), "value_a": c.value_a, "value_b": c.value_b,
                     "probability": c.probability, "merged": c.merged, "decided_by": c.decided_by,
                     **{a: int(counts.get(a, 0)) for a in ("same", "different", "not_sure")},
                     "llm": llm.loc[key, "answer"] if key in llm.index else None,
                     "llm_reason": llm.loc[key, "reason"] if key in llm.index else None})
    return pd.DataFrame(rows, columns=columns)


def groups_by_attribute(store: Store, deliberation_id: str, attribute: str) -> dict[str, set[int]]:
    """Participants per value of one attribute (e.g. political_leaning), missing values left out."""
    attrs = store.attributes(deliberation_id)
    if attribute not in attrs.columns:
        raise NotFound(f"no participant attribute {attribute!r} in {deliberation_id!r}")
    known = attrs.dropna(subset=[attribute])
    return {str(g): set(map(int, rows["participant_id"])) for g, rows in known.groupby(attribute)}


def group_page_ranks(store: Store, deliberation_id: str, attribute: str, *, mode: str = "default",
                     question_id: str | None = None) -> dict[str, dict]:
    """Each group's own ranking of the values: the moral graph of its members' answers alone."""
    out = {}
    for group, members in groups_by_attribute(store, deliberation_id, attribute).items():
        graph = moral_graph(store, deliberation_id, mode=mode, question_id=question_id, participants=members).graph
        out[group] = dict(graph.page_rank)
    return out


def member_cards(store: Store, deliberation_id: str) -> dict[str, list[dict]]:
    """Public value id → its active member cards (public card id, title, description, policies)."""
    values = store.id_map(deliberation_id, "value")
    cards = store.cards(deliberation_id)
    cards = cards.assign(public=ids.public_ids("card", cards["id"], cards["source_id"]))
    out: dict[str, list[dict]] = {}
    for card in cards.to_dict("records"):
        if card["canonical_id"] is not None and not pd.isna(card["canonical_id"]):
            out.setdefault(values.public(card["canonical_id"]), []).append(
                {"id": card["public"], **{k: card[k] for k in ("title", "description", "policies")}})
    return out


def preference_data(store: Store, deliberation_id: str, *, context: str | None = None,
                    question_id: str | None = None, include_wiser: bool = True,
                    until=None) -> PreferenceData:
    """Comparisons (Compare round, imports, and wiser-than answers as in workbench.prefs) and the
    participants' attributes, both keyed by the participants' public ids (workbench.ids)."""
    from .prefs import comparisons_from_wiser

    people = store.id_map(deliberation_id, "participant")
    made = store.comparisons(deliberation_id, context=context, until=until)
    if question_id is not None:
        made = made[made["question_id"] == question_id]
    made = made.assign(participant_id=people.publics(made["participant_id"]))
    frames = [made[["participant_id", "item_a", "item_b", "winner", "context", "weight"]]]
    if include_wiser:
        answers = store.wiser_answers(deliberation_id, until=until, question_id=question_id)
        if context is not None:
            answers = answers[answers["context"] == context]
        if not answers.empty:
            values = store.id_map(deliberation_id, "value")
            answers = answers.assign(participant_id=people.publics(answers["participant_id"]),
                                     from_id=values.publics(answers["from_id"]),
                                     to_id=values.publics(answers["to_id"]))
            frames.append(comparisons_from_wiser(answers)[["participant_id", "item_a", "item_b", "winner",
                                                           "context", "weight"]])
    comparisons = pd.concat([f for f in frames if not f.empty], ignore_index=True) if any(
        not f.empty for f in frames) else frames[0]
    attrs = store.attributes(deliberation_id, until=until)
    attrs = attrs.assign(participant_id=people.publics(attrs["participant_id"]))
    return PreferenceData(comparisons.astype({"participant_id": str, "item_a": str, "item_b": str}), attrs)


def fit_preferences(store: Store, deliberation_id: str, *, context: str | None = None, by: str | None = None,
                    latent: str | int = "auto", max_k: int = 6, seed: int = 0, include_wiser: bool = True,
                    question_id: str | None = None, bootstrap: int = 0, progress: Progress | None = None,
                    record: bool = True, until=None) -> FitRun:
    """Pooled, per-group and latent-class Bradley–Terry fits (workbench.prefs) of one deliberation.

    With `bootstrap` ≥ 2 the pooled and per-group strengths also get percentile intervals from that many
    replicates over resampled participants; `progress(done, total)` follows them. Recorded as a `fit`
    run (when `record`), so the exports can attach each participant's latent class to their pairs.
    """
    from . import prefs

    data = preference_data(store, deliberation_id, context=context, question_id=question_id,
                           include_wiser=include_wiser, until=until)
    if data.comparisons.empty:
        raise NotFound(f"deliberation {deliberation_id!r} has no comparisons or wiser-than answers to fit"
                       + (f" in context {context!r}" if context else ""))
    fit = prefs.fit_preferences(data.comparisons, data.attributes, by, k=None if latent == "auto" else int(latent),
                                max_k=max_k, seed=seed, bootstrap=bootstrap, progress=progress)
    document = prefs.fit_to_json(fit.mixture, fit.groups, pooled=fit.pooled, bootstrap=fit.bootstrap)
    run = None
    if record:
        run = store.start_run("fit", {"context": context, "question_id": question_id, "by": by, "latent": str(latent),
                                      "max_k": max_k, "seed": seed, "include_wiser": include_wiser,
                                      "bootstrap": bootstrap, "until": str(until) if until else None},
                             deliberation_id=deliberation_id)
        store.finish_run(run, result=document)
    return FitRun(fit, document, data, run)


@dataclass(frozen=True)
class Ranking:
    """Divisive and bridging values between the groups of one grouping, and how much they differ overall."""

    divisive: pd.DataFrame  # item, score (between-group variance)
    bridging: pd.DataFrame  # item, score (the lowest group's chance of beating another), weakest_group
    jsd: float  # mutual information between group and choice, in bits


@dataclass(frozen=True)
class DisagreementReport:
    """Everything the Disagreement page shows, as stored in one `disagreement` analysis run.

    Each part is missing (None) when it could not be computed, with the reason in `opinion_groups_error`
    or `fit_error`. Values, statements and participants are named by their public ids; `title()` gives
    a value's or statement's title.
    """

    question_id: str | None
    by: str | None
    seed: int
    bootstrap: int
    titles: Mapping[str, str]
    k: int | None = None
    opinion_map: pd.DataFrame | None = None  # participant_id, group, x, y (those placed in a group)
    heat: pd.DataFrame | None = None  # group, statement_id, agree (share agreeing), votes
    polis_report: dict | None = None  # Polis's report on the groups (schemas/polis_report.schema.json)
    opinion_groups_error: str | None = None
    fit: dict | None = None  # the fit JSON (schemas/fit.schema.json)
    composition: pd.DataFrame | None = None  # latent_class, attribute, value, count, share
    rankings: Mapping[str, Ranking] = field(default_factory=dict)
    fit_error: str | None = None
    run_id: int | None = None

    def title(self, item: Any) -> str:
        return self.titles.get(str(item), str(item))

    def strengths(self) -> pd.DataFrame:
        """Every strength with its interval, for a forest plot: group (everyone, each known group, each
        latent class), value (title), theta, lower, upper, interval (how the interval was made)."""
        fit, rows = self.fit or {}, []
        boot = fit.get("bootstrap")

        def add(label: str, block: dict, interval: str) -> None:
            for item, theta in block["strengths"].items():
                rows.append({"group": label, "value": self.title(item), "theta": theta, "lower": block["lower"][item],
                             "upper": block["upper"][item], "interval": interval})

        booted = f"bootstrap ({boot['n_boot']} replicates)" if boot else None
        if boot:
            add("everyone", boot["pooled"], booted)
        elif fit.get("pooled"):
            add("everyone", fit["pooled"], "Laplace")
        for name, block in (fit.get("groups") or {}).items():
            chosen = boot["groups"].get(name) if boot else None
            add(f"{fit.get('group_by')} = {name}", chosen or block, booted if chosen else "Laplace")
        for k, component in enumerate(fit.get("components", [])):
            add(f"latent class {k} ({component['weight']:.0%})", component, "Laplace")
        return pd.DataFrame(rows, columns=["group", "value", "theta", "lower", "upper", "interval"])

    def to_json(self) -> dict:
        frames = {"opinion_map": self.opinion_map, "heat": self.heat, "composition": self.composition}
        doc = {"question_id": self.question_id, "by": self.by, "seed": self.seed, "bootstrap": self.bootstrap,
               "titles": dict(self.titles), "k": self.k, "fit": self.fit, "polis_report": self.polis_report,
               **{name: None if frame is None else frame.to_dict("records") for name, frame in frames.items()},
               "rankings": {name: {"divisive": r.divisive.to_dict("records"), "bridging": r.bridging.to_dict("records"),
                                   "jsd": r.jsd} for name, r in self.rankings.items()},
               "opinion_groups_error": self.opinion_groups_error, "fit_error": self.fit_error}
        return _json_safe({k: v for k, v in doc.items() if v is not None})

    @classmethod
    def from_json(cls, doc: dict, *, run_id: int | None = None) -> DisagreementReport:
        def frame(name: str) -> pd.DataFrame | None:
            return None if doc.get(name) is None else pd.DataFrame(doc[name])

        return cls(question_id=doc.get("question_id"), by=doc.get("by"), seed=int(doc.get("seed", 0)),
                   bootstrap=int(doc.get("bootstrap", 0)), titles=doc.get("titles", {}), k=doc.get("k"),
                   opinion_map=frame("opinion_map"), heat=frame("heat"), polis_report=doc.get("polis_report"),
                   opinion_groups_error=doc.get("opinion_groups_error"), fit=doc.get("fit"),
                   composition=frame("composition"), fit_error=doc.get("fit_error"), run_id=run_id,
                   rankings={name: Ranking(pd.DataFrame(r["divisive"]), pd.DataFrame(r["bridging"]), float(r["jsd"]))
                             for name, r in (doc.get("rankings") or {}).items()})


def stored_disagreement(store: Store, run_id: int) -> DisagreementReport:
    """A disagreement report stored earlier, as its run holds it."""
    run = store.run(int(run_id))
    if run["kind"] != "disagreement":
        raise NotFound(f"analysis run {run_id} is a {run['kind']!r} run, not a disagreement report")
    return DisagreementReport.from_json(run["result"] or {}, run_id=int(run_id))


def disagreement_report(store: Store, deliberation_id: str, *, question_id: str | None = None,
                        by: str | None = None, seed: int = 0, max_k: int = 6, bootstrap: int = 200,
                        progress: Progress | None = None, until=None) -> DisagreementReport:
    """Everything the Disagreement view shows, stored as an analysis run (reopen it: `stored_disagreement`).

    Opinion groups from the endorsements (Polis's pipeline), the group × value agreement heat map,
    strengths per known group (`by`) and per latent class with intervals (bootstrap over participants
    for the pooled fit and the known groups when `bootstrap` ≥ 2), the latent classes' composition,
    and the divisive and bridging values, all from what was collected before `until` (None: everything).
    Progress runs over 4 steps of 100 ticks each: `progress(done, 400)`.
    """
    from . import disagreement

    steps = 4 * 100
    tick = progress or (lambda done, total: None)
    parts: dict[str, Any] = {}
    titles = statement_titles(store, deliberation_id)
    tick(0, steps)
    try:
        grouped = opinion_groups(store, deliberation_id, question_id=question_id, seed=seed, until=until,
                                 progress=lambda done, total: tick(100 * done // max(total, 1), steps))
        groups, table = grouped.groups, grouped.table
        if groups.k == 0:
            threshold = groups.params["threshold"]
            most = int(store.endorsements(deliberation_id, question_id=question_id, until=until)
                       .groupby("participant_id").size().max())
            raise NotFound(f"No participant has voted on enough values to be placed in an opinion group: Polis's"
                           f" participation threshold here is {threshold} votes and the most anyone cast is {most}."
                           + (" Pick a single question (participants vote on their own question's values),"
                              if question_id is None else "") + " or wait for more votes.")
        placed = groups.participants  # by public ids already
        parts["opinion_map"] = placed.loc[placed["group"] >= 0, ["participant_id", "group", "x", "y"]].reset_index(
            drop=True)
        parts["k"] = int(groups.k)
        votes = endorsement_table(store, deliberation_id, question_id=question_id, until=until)
        member = dict(zip(table["participant_id"], table["group"], strict=True))
        votes = votes.assign(group=votes["participant_id"].map(member))
        votes = votes[votes["group"].notna() & (votes["group"] >= 0)]
        heat = votes.groupby(["group", "statement_id"])["vote"].agg(
            agree=lambda v: float((v == 1).mean()), disagree=lambda v: float((v == -1).mean()),
            votes="size").reset_index()
        parts["heat"] = heat.assign(group=heat["group"].astype(int))
        parts["polis_report"] = polis_report_json(store, deliberation_id, groups)
    except WorkbenchError as exc:
        parts["opinion_groups_error"] = str(exc)
    tick(100, steps)
    try:
        fitted = fit_preferences(store, deliberation_id, question_id=question_id, by=by, max_k=max_k, seed=seed,
                                 bootstrap=bootstrap, record=False, until=until,
                                 progress=lambda done, total: tick(100 + 100 * done // total, steps))
        parts["fit"] = fitted.json
        tick(200, steps)
        if fitted.fit.composition is not None:
            parts["composition"] = fitted.fit.composition.table
        sources = {"latent classes": fitted.fit.mixture}
        if fitted.fit.groups is not None:
            sources[f"groups by {by}"] = fitted.fit.groups
        parts["rankings"] = {
            name: Ranking(disagreement.divisive_values(source).top(10), disagreement.bridging_values(source).top(10),
                          float(disagreement.choice_divergence(source).generalized_jsd))
            for name, source in sources.items() if len(disagreement.group_strengths_of(source).groups) >= 2}
    except WorkbenchError as exc:
        parts["fit_error"] = str(exc)
    tick(300, steps)
    report = DisagreementReport(question_id=question_id, by=by, seed=seed, bootstrap=bootstrap, titles=titles,
                                **parts)
    run = store.start_run("disagreement", {"question_id": question_id, "by": by, "seed": seed,
                                           "bootstrap": bootstrap, "until": str(until) if until else None},
                          deliberation_id=deliberation_id)
    store.finish_run(run, result=report.to_json())
    tick(400, steps)
    return replace(report, run_id=run)


def _json_safe(value):
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


#: Stored disagreement reports searched for a participant's opinion group, newest first.
GROUP_RUNS_SEARCHED = 5


def participant_position(store: Store, participant_id: int, card_id: int | None, question_id: str | None):
    """Where a participant sits (workbench.position): their card's value in the moral graph of their
    question, and their opinion group in the latest stored disagreement report that placed them.
    None when they have no card, or it is not (yet) part of a canonical value."""
    from . import position

    canonical = store.card(int(card_id))["canonical_id"] if card_id else None
    if canonical is None or pd.isna(canonical):
        return None
    participant = store.participant(participant_id)
    did = participant["deliberation_id"]
    value_id = store.id_map(did, "value").public(int(canonical))
    graph = moral_graph(store, did, question_id=question_id).graph
    titles = dict(zip(*[value_table(store, did)[c] for c in ("public_id", "title")], strict=True))
    me = ids.public_id("participant", participant_id, participant["source_id"])
    group = None
    runs = store.runs(deliberation_id=did, kind="disagreement")
    for run_id in runs.loc[runs["status"] == "done", "id"].head(GROUP_RUNS_SEARCHED):
        stored = stored_disagreement(store, int(run_id))
        group = position.group_place(stored.polis_report, stored.opinion_map, me)
        if group is not None:
            break
    return position.where_you_sit(graph, value_id, titles, group=group)


def pooled_strengths(store: Store, deliberation_id: str, *, question_id: str | None = None) -> dict[str, float]:
    """The current pooled Bradley–Terry strength of each value (empty before any comparison), so the
    Compare round can ask about the pairs whose order is least certain."""
    from .prefs import bradley_terry

    comparisons = preference_data(store, deliberation_id, question_id=question_id).comparisons
    if comparisons.empty or pd.unique(comparisons[["item_a", "item_b"]].to_numpy().ravel()).size < 2:
        return {}
    fit = bradley_terry(comparisons)
    return {item: float(theta) for item, theta in zip(fit.items, fit.theta, strict=True)}


# -- the guided interview's draft, outside the app -------------------------------------------------


def interview_question(store: Store | None, question: str) -> tuple[str | None, str]:
    """(question id or None, question text) for `workbench interview draft --question ID_OR_TEXT`.

    An id of the database ("demo/homework"), or a slug that only one of its questions has; without a
    database, an id or slug of the packaged demo deliberation; otherwise the text itself, when it reads
    like a question (has a space). A single word that matches nothing is an error naming it.
    """
    from . import config
    from .deliberation import load_deliberation
    from .errors import NotFound as Missing
    from .interview import question_text

    wanted = question.strip()
    rows: list[tuple[str, str, str]] = []  # (id, slug, title and prompt)
    if store is not None:
        for did in store.deliberations()["id"]:
            rows += [(r.id, r.slug, question_text(r.title, r.prompt)) for r in store.questions(did).itertuples()]
    else:
        spec = load_deliberation(config.DEMO_DELIBERATION)
        rows += [(f"{spec.id}/{q.slug}", q.slug, question_text(q.title, q.prompt)) for q in spec.questions]
    by_id = [r for r in rows if r[0] == wanted]
    by_slug = [r for r in rows if r[1] == wanted]
    if by_id or len(by_slug) == 1:
        qid, _, prompt = (by_id or by_slug)[0]
        return qid, prompt
    if len(by_slug) > 1:
        raise Missing(f"question {wanted!r} is the slug of {len(by_slug)} questions "
                      f"({', '.join(r[0] for r in by_slug)}): give the full id")
    if " " in wanted:
        return None, wanted
    where = "the database" if store is not None else "the demo deliberation (pass --db to look in a database)"
    raise Missing(f"no question {wanted!r} in {where}; known ids: {', '.join(r[0] for r in rows) or 'none'}. "
                  "To draft for any other question, pass its text")


def others_cards(store: Store, question_id: str) -> list[dict]:
    """Confirmed, unhidden cards of a question, as the drafting module takes them."""
    cards = store.cards(question_id=question_id)
    return [{"id": int(r["id"]), "title": r["title"], "policies": list(r["policies"])}
            for r in cards.to_dict("records")]

"""Analyses of one deliberation: read from the store, run the pure analysis, record the run.

The bridge that the CLI and the pages share (so neither repeats the other): each function takes
a `Store` and a deliberation id, reads what the analysis needs, calls the pure module
(`moralgraph`, `dedup`, `groups`, `prefs`, ...) and, where asked, records an analysis run.
No SQL here (that is the store's), no Streamlit (that is the pages').
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from . import moralgraph
from .errors import NotEnoughData, WorkbenchError
from .store import NotFound, Store

Progress = Callable[[int, int], None]


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


def public_value_id(value_id: int, source_id: Any) -> Any:
    """The id a value is known by outside: its id in the imported data if it has one, else ours."""
    if source_id is None or (isinstance(source_id, float) and pd.isna(source_id)):
        return int(value_id)
    text = str(source_id)
    return int(text) if text.isdigit() else text


def value_table(store: Store, deliberation_id: str, *, question_id: str | None = None) -> pd.DataFrame:
    """Canonical values with `public_id` (the id exports use) beside the workbench `id`."""
    values = store.canonical_values(deliberation_id, question_id=question_id)
    values["public_id"] = pd.Series([public_value_id(v, s) for v, s in zip(values["id"], values["source_id"],
                                                                            strict=True)], dtype=object)
    return values


def moral_graph(store: Store, deliberation_id: str, *, mode: str = "default", until=None,
                context: str | None = None, question_id: str | None = None, min_wiser: int = 2,
                participants: set[int] | None = None, record: bool = False) -> tuple[moralgraph.MoralGraph, dict]:
    """The moral graph of a deliberation and its published-shape JSON (values by their public ids).

    `participants` restricts it to the answers of those participants (e.g. one group's graph).
    """
    if mode not in ("mge", "default"):
        raise ValueError(f"mode: must be 'mge' or 'default', got {mode!r}")
    values = value_table(store, deliberation_id)
    answers = store.wiser_answers(deliberation_id, until=until, question_id=question_id)
    if participants is not None:
        answers = answers[answers["participant_id"].isin(participants)]
    public = dict(zip(values["id"], values["public_id"], strict=True))
    answers = answers.assign(from_id=answers["from_id"].map(public), to_id=answers["to_id"].map(public))
    meta = values.rename(columns={"id": "workbench_id"}).rename(columns={"public_id": "id"})[
        ["id", "workbench_id", "title", "description", "policies"]]
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
    return graph, published


def opinion_groups(store: Store, deliberation_id: str, *, question_id: str | None = None, until=None,
                   seed: int = 0, replay: bool | None = None, record: bool = False, progress: Progress | None = None):
    """Polis's opinion groups and report from the endorsements (workbench.groups, workbench.polis).

    Every vote event goes in, in the order cast: with a vote history the conversation is replayed in
    Polis's update cadence (`replay`, the default where votes carry distinct times), else Polis's
    math runs once. Votes on hidden (moderated-out) statements are passed in and zeroed, as Polis
    does. Participants an imported Polis export placed in a group (`polis_group`) count as already in
    the conversation, as Polis's persisted in-conv set makes them. Ids are the source's where every
    row has one (Polis's comment and participant ids), so the report names statements as Polis does.
    Returns (OpinionGroups, per-participant frame with participant_id, source_id, group).
    """
    from .groups import opinion_groups as run

    votes = store.endorsements(deliberation_id, until=until, question_id=question_id, include_hidden=True,
                               latest=False)
    if votes.empty:
        raise NotEnoughData(f"deliberation {deliberation_id!r} has no agree / disagree / pass votes to find opinion"
                            " groups in")
    votes = votes.assign(participant_key=_source_keys(votes["participant_id"], votes["source_id"]),
                         statement_key=_source_keys(votes["statement_id"], votes["statement_source_id"]))
    # Time order; on equal times (an export without timestamps) by participant, then statement id,
    # which is the order Polis numbers them in (ids are handed out as people and comments arrive).
    votes = votes.assign(_p=_padded(votes["participant_key"]), _s=_padded(votes["statement_key"]))
    votes = votes.sort_values(["created_at", "_p", "_s"], kind="stable")
    hidden = set(votes.loc[votes["hidden"], "statement_key"])
    attrs = store.attributes(deliberation_id)
    known: set[str] = set()
    if "polis_group" in attrs.columns:
        keyed = dict(zip(votes["participant_id"], votes["participant_key"], strict=False))
        known = {keyed[p] for p in attrs.loc[attrs["polis_group"].notna(), "participant_id"] if p in keyed}
    table = votes[["participant_key", "statement_key", "vote", "created_at"]].set_axis(
        ["participant_id", "statement_id", "vote", "created_at"], axis=1).reset_index(drop=True)
    result = run(table, seed=seed, moderated_out=hidden, in_conversation=known, replay=replay, progress=progress)
    ids = votes.drop_duplicates("participant_key").set_index("participant_key")
    frame = result.participants[["participant_id", "group"]].rename(columns={"participant_id": "key"})
    frame.insert(0, "participant_id", frame["key"].map(ids["participant_id"]).astype(int))
    frame.insert(1, "source_id", frame["key"].map(ids["source_id"]))
    frame = frame.drop(columns="key")
    if record:
        run_id = store.start_run("groups", {"question_id": question_id, "until": str(until) if until else None,
                                            "seed": seed, "method": result.method}, deliberation_id=deliberation_id)
        store.finish_run(run_id, result={"k": int(result.k), "method": result.method,
                                         "participants": frame.to_dict("records"),
                                         "silhouette": {str(k): v for k, v in result.silhouette.items()}})
    return result, frame


def statement_titles(store: Store, deliberation_id: str) -> dict[str, str]:
    """Statement key (as `opinion_groups` names statements) -> the text a reader knows it by."""
    titles: dict[str, str] = {}
    values = value_table(store, deliberation_id)
    for vid, source, title in zip(values["id"], values["source_id"], values["title"], strict=True):
        titles[f"v{vid}"] = title
        if source is not None and not pd.isna(source):
            titles[str(source)] = title
    for kind in ("statement", "card"):
        cards = store.cards(deliberation_id, kind=kind, include_hidden=True)
        for cid, source, text in zip(cards["id"], cards["source_id"], cards["description"].fillna(cards["title"]),
                                     strict=True):
            titles[f"c{cid}"] = text
            if source is not None and not pd.isna(source):
                titles.setdefault(str(source), text)
    return titles


def polis_report_json(store: Store, deliberation_id: str, groups) -> dict:
    """Polis's report on `groups` (from `opinion_groups`) as JSON (schemas/polis_report.schema.json)."""
    report = groups.report.to_json(statement_titles(store, deliberation_id))
    return {"deliberation": deliberation_id, "method": groups.method, "updates": int(groups.params["updates"]),
            "silhouette": {str(k): (None if v != v else float(v)) for k, v in groups.silhouette.items()}, **report}


def _source_keys(ids: pd.Series, source_ids: pd.Series) -> pd.Series:
    """Source ids as keys when every row has one (Polis's ids), else the workbench's."""
    if source_ids.notna().all() and len(source_ids):
        return source_ids.astype(str)
    return ids.astype(str)


def _padded(keys: pd.Series) -> pd.Series:
    """Keys that sort as numbers where they are numbers (zero-padded), else as text."""
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
                progress: Progress | None = None, embedder=None) -> DedupRun:
    """Cluster the deliberation's cards into canonical values and store the result (workbench.dedup).

    Re-running embeds only new or edited cards (the cache is keyed by card, model and text hash),
    keeps the ids of values whose members did not change, and keeps every card a facilitator
    placed by hand (merges, splits) where it was put; renamed values keep their names. Participants'
    "same value?" answers, earlier LLM verdicts and wiser-than answers between values are evidence.
    When an LLM is configured (`llm`, else $WORKBENCH_LLM_*; `use_llm=False` skips it), it is asked
    about the `llm_pairs` merges the workbench is least sure of that nothing decided yet; its verdicts
    are stored and decide those merges. If it fails, the run goes on with what the two stages decided
    and the failure is kept in the run's result.
    """
    from . import dedup
    from .embed import Embedder, card_text
    from .llm import LlmConfig, LlmInterviewer, LlmUnavailable

    cards = store.cards(deliberation_id)
    if cards.empty:
        raise NotFound(f"deliberation {deliberation_id!r} has no active values cards to cluster")
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
        texts = pd.DataFrame({"id": cards["id"], "text": [card_text(r) for r in cards.to_dict("records")]})
        # Cards embedded before a failure stay cached: a re-run embeds only the rest.
        vectors = embedder.embed_card_parts(texts, StoreEmbeddingCache(store), progress=progress)
        links = store.card_links(deliberation_id)
        links = links[links["card_id"].isin(cards["id"])]
        previous = {int(c): int(v) for c, v in zip(links["card_id"], links["canonical_id"], strict=True)}
        pinned = links[links["provenance"].isin(PINNED)]
        overrides = dedup.Overrides(splits=tuple(dedup.Split(int(c), into=int(v)) for c, v in
                                                 zip(pinned["card_id"], pinned["canonical_id"], strict=True)))

        def cluster():
            return dedup.canonical_values(cards, vectors.cards, policy_embeddings=vectors.lines, previous=previous,
                                          overrides=overrides, params=params,
                                          judgements=merge_evidence(store, deliberation_id, previous))

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
        known = set(previous.values())
        written = store.apply_canonical_values(deliberation_id, [
            {"id": v.id if v.id in known else None, "title": v.title, "description": v.description,
             "policies": list(v.policies), "question_id": v.question_ids[0] if len(v.question_ids) == 1 else None,
             "members": list(v.member_ids)} for v in result.values], run_id=run_id)
    except Exception as exc:
        # The facilitator sees the failure among the analysis runs; nothing of the clustering was written.
        store.finish_run(run_id, error=f"{type(exc).__name__}: {exc}")
        raise
    embedded = embedder.texts_embedded - before
    # Values written as new got their id from the store: candidates name values by those ids.
    new_ids = {v.id: written[i] for i, v in enumerate(result.values)}
    kept = [{"card_a": int(c.card_a), "card_b": int(c.card_b), "value_a": int(new_ids.get(c.value_a, c.value_a)),
             "value_b": int(new_ids.get(c.value_b, c.value_b)), "probability": c.probability, "merged": c.merged,
             "decided_by": c.decided_by, "margin": c.margin} for c in result.candidates[:KEPT_CANDIDATES]]
    store.finish_run(run_id, result={"values": len(written), "cards": len(cards), "embedded": embedded,
                                     "llm": {"asked": asked, "answered": len(verdicts), "error": llm_error},
                                     "candidates": kept})
    return DedupRun(result=result, run_id=run_id, embedded=embedded, llm_asked=asked,
                    llm_answered=len(verdicts), llm_error=llm_error)


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
    different, not_sure, llm, llm_reason`. With `participant_id`, only pairs that participant has not
    answered yet (what the "Are these two the same value?" round asks next)."""
    from . import dedup

    runs = store.runs(deliberation_id=deliberation_id, kind="dedup")
    done = runs[runs["status"] == "done"]
    columns = ["card_a", "title_a", "card_b", "title_b", "value_a", "value_b", "probability", "merged",
               "decided_by", "same", "different", "not_sure", "llm", "llm_reason"]
    if done.empty:
        return pd.DataFrame(columns=columns)
    candidates = [dedup.CandidateMerge(**c) for c in (store.run(int(done.iloc[0]["id"]))["result"] or {}).get(
        "candidates", [])]
    judged = store.merge_judgements(deliberation_id)
    answered = judged[(judged["source"] == "participant") & (judged["participant_id"] == participant_id)]
    chosen = dedup.least_sure(candidates, limit, exclude=zip(answered["card_a"], answered["card_b"], strict=True))
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
        graph, _ = moral_graph(store, deliberation_id, mode=mode, question_id=question_id, participants=members)
        out[group] = dict(graph.page_rank)
    return out


def member_cards(store: Store, deliberation_id: str) -> dict:
    """Public value id → its active member cards (title, description, policies)."""
    values = value_table(store, deliberation_id)
    public = dict(zip(values["id"], values["public_id"], strict=True))
    cards = store.cards(deliberation_id)
    out: dict = {}
    for card in cards.to_dict("records"):
        if card["canonical_id"] is not None and not pd.isna(card["canonical_id"]):
            key = public.get(int(card["canonical_id"]))
            out.setdefault(key, []).append({k: card[k] for k in ("id", "title", "description", "policies")})
    return out


def preference_data(store: Store, deliberation_id: str, *, context: str | None = None,
                    question_id: str | None = None, include_wiser: bool = True,
                    until=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Comparisons (Compare round, imports, and wiser-than answers as in workbench.prefs) and the
    participants' attributes, both keyed by the participant id exports use (imported id, else ours)."""
    from .prefs import comparisons_from_wiser

    people = store.participants(deliberation_id)
    key = {int(p): (str(s) if s is not None and not pd.isna(s) else str(p))
           for p, s in zip(people["participant_id"], people["source_id"], strict=True)}
    made = store.comparisons(deliberation_id, context=context, until=until)
    if question_id is not None:
        made = made[made["question_id"] == question_id]
    frames = [made[["participant_id", "item_a", "item_b", "winner", "context", "weight"]]]
    if include_wiser:
        answers = store.wiser_answers(deliberation_id, until=until, question_id=question_id)
        if context is not None:
            answers = answers[answers["context"] == context]
        if not answers.empty:
            public = dict(zip(*[value_table(store, deliberation_id)[c] for c in ("id", "public_id")], strict=True))
            answers = answers.assign(participant_id=answers["participant_id"].map(key),
                                     from_id=answers["from_id"].map(public).astype(str),
                                     to_id=answers["to_id"].map(public).astype(str))
            frames.append(comparisons_from_wiser(answers)[["participant_id", "item_a", "item_b", "winner",
                                                           "context", "weight"]])
    comparisons = pd.concat([f for f in frames if not f.empty], ignore_index=True) if any(
        not f.empty for f in frames) else frames[0]
    attrs = store.attributes(deliberation_id, until=until)
    attrs = attrs.assign(participant_id=attrs["participant_id"].map(key))
    return comparisons.astype({"participant_id": str, "item_a": str, "item_b": str}), attrs


def fit_preferences(store: Store, deliberation_id: str, *, context: str | None = None, by: str | None = None,
                    latent: str | int = "auto", max_k: int = 6, seed: int = 0, include_wiser: bool = True,
                    question_id: str | None = None, bootstrap: int = 0, progress: Progress | None = None,
                    record: bool = True) -> tuple[dict, dict]:
    """Pooled, per-group and latent-class Bradley–Terry fits (workbench.prefs) of one deliberation.

    With `bootstrap` ≥ 2 the pooled and per-group strengths also get percentile intervals from that many
    replicates over resampled participants; `progress(done, total)` follows them.
    Returns (fit JSON as schemas/fit.schema.json, the fitted objects by name) and records the run,
    so the exports can attach each participant's latent class to their preference pairs.
    """
    from . import prefs

    comparisons, attrs = preference_data(store, deliberation_id, context=context, question_id=question_id,
                                         include_wiser=include_wiser)
    if comparisons.empty:
        raise NotFound(f"deliberation {deliberation_id!r} has no comparisons or wiser-than answers to fit"
                       + (f" in context {context!r}" if context else ""))
    k = None if latent == "auto" else int(latent)
    mixture = prefs.latent_mixture(comparisons, k=k, max_k=max_k, seed=seed)
    groups = prefs.group_strengths(comparisons, attrs, by) if by else None
    boot = None
    if bootstrap:
        boot = prefs.bootstrap_strengths(comparisons, attrs if by else None, by, n_boot=bootstrap, seed=seed,
                                         progress=progress)
    fit = prefs.fit_to_json(mixture, groups, pooled=prefs.bradley_terry(comparisons), bootstrap=boot)
    objects = {"mixture": mixture, "groups": groups, "comparisons": comparisons, "attributes": attrs,
               "composition": prefs.class_composition(mixture, attrs) if len(attrs.columns) > 1 else None}
    if record:
        run = store.start_run("fit", {"context": context, "question_id": question_id, "by": by, "latent": str(latent),
                                      "max_k": max_k, "seed": seed, "include_wiser": include_wiser,
                                      "bootstrap": bootstrap}, deliberation_id=deliberation_id)
        store.finish_run(run, result=fit)
        objects["run_id"] = run
    return fit, objects


def disagreement_report(store: Store, deliberation_id: str, *, question_id: str | None = None,
                        by: str | None = None, seed: int = 0, max_k: int = 6, bootstrap: int = 200,
                        progress: Progress | None = None) -> dict:
    """Everything the Disagreement view shows, as one JSON-able dict, stored as an analysis run.

    Opinion groups from the endorsements (Polis's pipeline), the group × value agreement heat map,
    strengths per known group (`by`) and per latent class with intervals (bootstrap over participants
    for the pooled fit and the known groups when `bootstrap` ≥ 2), the latent classes' composition,
    and the divisive and bridging values. Reopen a stored one with `store.run(id)`.
    Progress runs over 4 steps of 100 ticks each: `progress(done, 400)`.
    """
    from . import disagreement

    steps = 4 * 100
    tick = progress or (lambda done, total: None)
    report: dict = {"question_id": question_id, "by": by, "seed": seed, "bootstrap": bootstrap}
    values = value_table(store, deliberation_id)
    titles = {str(k): t for k, t in zip(values["public_id"], values["title"], strict=True)}
    titles |= {f"v{k}": t for k, t in zip(values["id"], values["title"], strict=True)}
    statements = store.cards(deliberation_id, kind="statement")
    titles |= {f"c{k}": t for k, t in zip(statements["id"], statements["title"], strict=True)}
    report["titles"] = titles
    tick(0, steps)
    try:
        groups, table = opinion_groups(store, deliberation_id, question_id=question_id, seed=seed,
                                       progress=lambda done, total: tick(100 * done // max(total, 1), steps))
        people = groups.participants
        if groups.k == 0:
            threshold = groups.params["threshold"]
            most = int(store.endorsements(deliberation_id, question_id=question_id)
                       .groupby("participant_id").size().max())
            raise NotFound(f"No participant has voted on enough values to be placed in an opinion group: Polis's"
                           f" participation threshold here is {threshold} votes and the most anyone cast is {most}."
                           + (" Pick a single question (participants vote on their own question's values),"
                              if question_id is None else "") + " or wait for more votes.")
        report["opinion_map"] = [{"participant_id": int(p), "group": int(g), "x": float(x), "y": float(y)}
                                 for p, g, x, y in zip(table["participant_id"], people["group"], people["x"],
                                                       people["y"], strict=True) if g >= 0]
        report["k"] = int(groups.k)
        votes = store.endorsements(deliberation_id, question_id=question_id)
        member = dict(zip(table["participant_id"], table["group"], strict=True))
        votes = votes.assign(group=votes["participant_id"].map(member))
        votes = votes[votes["group"].notna() & (votes["group"] >= 0)]
        heat = votes.groupby(["group", "statement_id"])["vote"].agg(
            agree=lambda v: float((v == 1).mean()), votes="size").reset_index()
        report["heat"] = heat.assign(group=heat["group"].astype(int)).to_dict("records")
        report["polis_report"] = polis_report_json(store, deliberation_id, groups)
    except (NotFound, ValueError, WorkbenchError) as exc:
        report["opinion_groups_error"] = str(exc)
    tick(100, steps)
    try:
        fit, objects = fit_preferences(store, deliberation_id, question_id=question_id, by=by, max_k=max_k,
                                       seed=seed, bootstrap=bootstrap, record=False,
                                       progress=lambda done, total: tick(100 + 100 * done // total, steps))
        report["fit"] = fit
        mixture = objects["mixture"]
        tick(200, steps)
        if objects["composition"] is not None:
            report["composition"] = objects["composition"].table.to_dict("records")
        sources = {"latent classes": mixture}
        if objects["groups"] is not None:
            sources[f"groups by {by}"] = objects["groups"]
        report["rankings"] = {}
        for name, source in sources.items():
            if len(disagreement.group_strengths_of(source).groups) < 2:
                continue
            report["rankings"][name] = {
                "divisive": disagreement.divisive_values(source).top(10).to_dict("records"),
                "bridging": disagreement.bridging_values(source).top(10).to_dict("records"),
                "jsd": disagreement.choice_divergence(source).generalized_jsd,
            }
    except (NotFound, ValueError) as exc:
        report["fit_error"] = str(exc)
    tick(300, steps)
    report = _json_safe(report)
    run = store.start_run("disagreement", {"question_id": question_id, "by": by, "seed": seed,
                                           "bootstrap": bootstrap}, deliberation_id=deliberation_id)
    store.finish_run(run, result=report)
    report["run_id"] = run
    tick(400, steps)
    return report


def _json_safe(value):
    import math

    import numpy as np

    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def pooled_strengths(store: Store, deliberation_id: str, *, question_id: str | None = None) -> dict[str, float]:
    """The current pooled Bradley–Terry strength of each value (empty before any comparison), so the
    Compare round can ask about the pairs whose order is least certain."""
    from .prefs import bradley_terry

    comparisons, _ = preference_data(store, deliberation_id, question_id=question_id)
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

    wanted = question.strip()
    rows: list[tuple[str, str, str]] = []  # (id, slug, prompt)
    if store is not None:
        for did in store.deliberations()["id"]:
            rows += [(r.id, r.slug, r.prompt) for r in store.questions(did).itertuples()]
    else:
        spec = load_deliberation(config.DEMO_DELIBERATION)
        rows += [(f"{spec.id}/{q.slug}", q.slug, q.prompt) for q in spec.questions]
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

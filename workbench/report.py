"""The deliberation report: what a deliberation found, in one file a reader without the workbench can open.

`deliberation_report(store, deliberation)` runs the analyses the staff pages run (the moral graph,
Polis's opinion groups and report, the preference fits and their divisive and bridging values, the
closing survey) as of a time (`until`), gathers their numbers into a typed `DeliberationReport`
(frozen dataclasses) and stores it as a `report` analysis run, so the same report can be rendered
again later (`stored_report`). `render_html(report)` turns it into one self-contained HTML page
(workbench/templates/report.html.j2: inline CSS and SVG, no script, font or image from anywhere
else; every text autoescaped). This module never writes SQL and never imports Streamlit; it computes
no statistic of its own beyond counting: every number comes from the analysis functions.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

import pandas as pd

from . import analyses, config, ids
from .errors import NotFound, WorkbenchError
from .models import Closing
from .store import Store, as_timestamp, utcnow
from .survey import SurveySummary, survey_summary

Progress = Callable[[int, int], None]

#: Values listed per context and overall, cards shown per value, statements per opinion group.
TOP_VALUES, TOP_PER_CONTEXT, CARDS_PER_VALUE, RANKED_ITEMS = 10, 5, 3, 5
#: Attribute values listed per attribute before the rest are summed as "other".
ATTRIBUTE_ROWS = 8
#: The attribution the Polis open data's licence (CC BY 4.0) asks for wherever results from it are shown.
POLIS_ATTRIBUTION = (
    "Data was gathered using the Polis software (compdemocracy.org/polis) and is sub-licensed under CC BY 4.0"
    " with Attribution to The Computational Democracy Project.")


# -- what the report holds ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Count:
    label: str
    n: int


@dataclass(frozen=True)
class AttributeCounts:
    """How many of those who took part gave each answer to one demographic question."""

    attribute: str
    counts: tuple[Count, ...]
    not_given: int  # took part but did not answer this question
    label: str = ""  # the question as participants saw it ("Your age"), when the deliberation asked it


@dataclass(frozen=True)
class Participation:
    participants: int  # gave at least one card, judgement, vote, comparison or survey answer
    cards: int  # values cards written (imported cards may name no author)
    with_card: int
    judged: int  # answered at least one wiser-than question
    voted: int
    compared: int
    surveyed: int
    by_attribute: tuple[AttributeCounts, ...] = ()


@dataclass(frozen=True)
class CardText:
    id: str
    title: str
    description: str
    policies: tuple[str, ...] = ()


@dataclass(frozen=True)
class RankedValue:
    id: str
    title: str
    description: str
    score: float  # PageRank in the graph it is ranked in
    policies: tuple[str, ...] = ()
    cards: tuple[CardText, ...] = ()  # the cards participants wrote that were merged into this value
    n_cards: int = 0


@dataclass(frozen=True)
class GraphEdge:
    source: str  # public value ids
    wiser: str
    likelihood: float
    contexts: tuple[str, ...] = ()


@dataclass(frozen=True)
class ContextGraph:
    context: str
    values: tuple[RankedValue, ...]
    edges: tuple[GraphEdge, ...] = ()


@dataclass(frozen=True)
class GraphSection:
    mode: str
    answers: int  # wiser-than answers the graph was built from
    n_values: int
    n_edges: int
    overall: tuple[RankedValue, ...] = ()
    edges: tuple[GraphEdge, ...] = ()  # kept edges among the overall top values
    contexts: tuple[ContextGraph, ...] = ()
    titles: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    def title(self, value_id: str) -> str:
        return self.titles.get(value_id, value_id)


@dataclass(frozen=True)
class GroupStatement:
    """A statement (or value) that sets an opinion group apart, with the group's votes on it."""

    id: str
    text: str
    repful: str  # agree | disagree: the side that sets the group apart
    agree: int
    disagree: int
    votes: int  # passes included
    others_share: float  # the same side's share among everyone else
    significant: bool

    @property
    def agree_share(self) -> float:
        return self.agree / self.votes if self.votes else 0.0

    @property
    def disagree_share(self) -> float:
        return self.disagree / self.votes if self.votes else 0.0


@dataclass(frozen=True)
class OpinionGroup:
    label: str
    size: int
    statements: tuple[GroupStatement, ...] = ()


@dataclass(frozen=True)
class ConsensusStatement:
    id: str
    text: str
    direction: str  # agree | disagree
    n: int
    of: int


@dataclass(frozen=True)
class BridgingStatement:
    id: str
    text: str
    consensus: float  # group-informed consensus: product over groups of (agrees + 1) / (votes + 2)
    agree_by_group: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class GroupsSection:
    k: int = 0
    n_participants: int = 0
    n_grouped: int = 0
    method: str = ""
    groups: tuple[OpinionGroup, ...] = ()
    consensus_agree: tuple[ConsensusStatement, ...] = ()
    consensus_disagree: tuple[ConsensusStatement, ...] = ()
    bridging: tuple[BridgingStatement, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class Interval:
    group: str
    theta: float
    lower: float
    upper: float


@dataclass(frozen=True)
class RankedItem:
    id: str
    title: str
    score: float
    weakest_group: str | None = None
    intervals: tuple[Interval, ...] = ()


@dataclass(frozen=True)
class Divergence:
    """Where the groups of one grouping (known groups by an attribute, or latent classes) part ways."""

    grouping: str
    jsd: float  # mutual information between group and choice, in bits
    interval: str  # how the strengths' intervals were made
    divisive: tuple[RankedItem, ...] = ()
    bridging: tuple[RankedItem, ...] = ()

    def domain(self) -> tuple[float, float]:
        """The range every interval of this grouping fits in (one scale for all its plots)."""
        bounds = [b for item in self.divisive + self.bridging for i in item.intervals for b in (i.lower, i.upper)
                  if math.isfinite(b)]
        return (min(bounds + [0.0]), max(bounds + [0.0]))


@dataclass(frozen=True)
class Method:
    heading: str
    text: str


@dataclass(frozen=True)
class DeliberationReport:
    deliberation_id: str
    title: str
    description: str
    source: str
    licence: str
    generated_at: datetime
    until: datetime | None
    seed: int
    participation: Participation
    graph: GraphSection
    groups: GroupsSection
    survey: SurveySummary
    divergences: tuple[Divergence, ...] = ()
    divergence_error: str | None = None
    methods: tuple[Method, ...] = ()
    attribution: str | None = None
    disagreement_run: int | None = None
    run_id: int | None = None

    def to_json(self) -> dict:
        return _jsonable(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, doc: dict, *, run_id: int | None = None) -> DeliberationReport:
        report = _build(cls, doc)
        return dataclasses.replace(report, run_id=run_id)


# -- (de)serialising the typed result, for the analysis run ------------------------------------------


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalars
        return value.item()
    return value


@cache
def _hints(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _build(kind, value):
    """`value` (JSON) as an instance of the type `kind` (a dataclass, tuple[X, ...], X | None, dict, ...)."""
    if value is None:
        return None
    origin = typing.get_origin(kind)
    if dataclasses.is_dataclass(kind):
        hints = _hints(kind)
        return kind(**{f.name: _build(hints[f.name], value[f.name]) for f in dataclasses.fields(kind)
                       if f.name in value})
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(kind) if a is not type(None)]
        return _build(inner[0], value)
    if origin is tuple:
        return tuple(_build(typing.get_args(kind)[0], v) for v in value)
    if origin is dict:
        return dict(value)
    if kind is datetime:
        return datetime.fromisoformat(value)
    if kind is float:
        return float("nan") if value is None else float(value)
    return value


# -- building it from a deliberation -----------------------------------------------------------------


def stored_report(store: Store, run_id: int) -> DeliberationReport:
    """A report stored earlier, as its run holds it."""
    run = store.run(int(run_id))
    if run["kind"] != "report" or run["status"] != "done":
        raise NotFound(f"analysis run {run_id} is not a finished deliberation report ({run['kind']}, {run['status']})")
    return DeliberationReport.from_json(run["result"], run_id=int(run_id))


def deliberation_report(store: Store, deliberation_id: str, *, until=None, seed: int = 0, by: str | None = None,
                        bootstrap: int = 100, progress: Progress | None = None) -> DeliberationReport:
    """Run every analysis the report shows on what was collected before `until` (None: everything) and
    store the result as a `report` analysis run. `by` names the participant attribute whose groups
    the preference fits compare (besides the latent classes); `bootstrap` replicates give the
    strengths' intervals. `progress(done, total)` follows the steps (the fits take longest)."""
    tick = progress or (lambda done, total: None)
    total = 1000
    until = as_timestamp(until)
    delib = store.deliberation(deliberation_id)
    tick(0, total)
    labels = {d["key"]: d["label"] for d in (delib["settings"] or {}).get("demographics", [])}
    participation = _participation(store, deliberation_id, until, labels)
    tick(50, total)
    graph = _graph(store, deliberation_id, until)
    tick(150, total)
    disagreement = analyses.disagreement_report(
        store, deliberation_id, by=by, seed=seed, bootstrap=bootstrap, until=until,
        progress=lambda done, all_: tick(150 + 700 * done // max(all_, 1), total))
    groups = _groups(disagreement, store, deliberation_id, until)
    divergences = _divergences(disagreement)
    tick(870, total)
    survey = _survey(store, deliberation_id, delib, disagreement, until, by)
    tick(950, total)
    report = DeliberationReport(
        deliberation_id=deliberation_id, title=delib["title"], description=delib["description"] or "",
        source=delib["source"], licence=delib["licence"] or "", generated_at=utcnow(), until=until, seed=seed,
        participation=participation, graph=graph, groups=groups, survey=survey, divergences=divergences,
        divergence_error=disagreement.fit_error,
        methods=_methods(participation, graph, groups, divergences, survey, bootstrap),
        attribution=POLIS_ATTRIBUTION if delib["source"] == "polis" else None,
        disagreement_run=disagreement.run_id)
    run = store.start_run("report", {"until": str(until) if until else None, "seed": seed, "by": by,
                                     "bootstrap": bootstrap, "disagreement_run": disagreement.run_id},
                          deliberation_id=deliberation_id)
    store.finish_run(run, result=report.to_json())
    tick(total, total)
    return dataclasses.replace(report, run_id=run)


def _participation(store: Store, deliberation_id: str, until, labels: dict[str, str]) -> Participation:
    took_part = store.contributions(deliberation_id, until=until)
    attrs = store.attributes(deliberation_id, until=until)
    attrs = attrs[attrs["participant_id"].isin(took_part["participant_id"])]
    rows = []
    for attribute in sorted(c for c in attrs.columns if c != "participant_id"):
        given = attrs[attribute].dropna()
        counts = _binned(given).value_counts(sort=False) if _numeric(given) else given.value_counts()
        shown = [Count(str(k), int(v)) for k, v in counts.head(ATTRIBUTE_ROWS).items()]
        if len(counts) > ATTRIBUTE_ROWS:
            shown.append(Count(f"{len(counts) - ATTRIBUTE_ROWS} other answers", int(counts.iloc[ATTRIBUTE_ROWS:].sum())))
        rows.append(AttributeCounts(attribute, tuple(shown), len(took_part) - len(given), labels.get(attribute, "")))

    def some(column: str) -> int:
        return int((took_part[column] > 0).sum())

    cards = store.cards(deliberation_id, kind="card", until=until)
    return Participation(len(took_part), len(cards), some("cards"), some("wiser"), some("votes"), some("comparisons"),
                         some("survey"), tuple(rows))


def _numeric(answers: pd.Series) -> bool:
    """An attribute answered with numbers (an age), with too many distinct answers to list one by one."""
    numbers = pd.to_numeric(answers, errors="coerce")
    return bool(len(answers)) and numbers.notna().mean() > 0.95 and answers.nunique() > ATTRIBUTE_ROWS


def _binned(answers: pd.Series) -> pd.Series:
    """Numbers in tens ("20–29"), in order; what is not a number stays as given."""
    numbers = pd.to_numeric(answers, errors="coerce")
    tens = (numbers // 10 * 10).dropna().astype(int)
    order = [f"{t}–{t + 9}" for t in sorted(tens.unique())]
    labels = pd.Series(answers.astype(str), index=answers.index)
    labels[tens.index] = [f"{t}–{t + 9}" for t in tens]
    return pd.Series(pd.Categorical(labels, categories=order + sorted(set(labels) - set(order)), ordered=True))


def _graph(store: Store, deliberation_id: str, until) -> GraphSection:
    try:
        result = analyses.moral_graph(store, deliberation_id, until=until)
    except WorkbenchError as exc:
        return GraphSection(mode="default", answers=0, n_values=0, n_edges=0, error=str(exc))
    graph = result.graph
    values = analyses.value_table(store, deliberation_id)
    titles = dict(zip(values["public_id"], values["title"], strict=True))
    meta = values.set_index("public_id")
    cards = _cards(store, deliberation_id, until)

    def ranked(value_id, score) -> RankedValue:
        row = meta.loc[value_id] if value_id in meta.index else None
        members = cards.get(value_id, [])
        distinct = list({c.title.casefold(): c for c in reversed(members)}.values())[::-1]  # first card per title
        return RankedValue(
            id=str(value_id), title=titles.get(value_id, str(value_id)),
            description="" if row is None else str(row["description"] or ""), score=float(score),
            policies=() if row is None else tuple(row["policies"]), cards=tuple(distinct[:CARDS_PER_VALUE]),
            n_cards=len(members))

    def edges_among(chosen: set[str], context: str | None = None) -> tuple[GraphEdge, ...]:
        out = []
        for e in graph.edges.itertuples(index=False):
            if str(e.source) in chosen and str(e.wiser) in chosen and (context is None or context in e.contexts):
                out.append(GraphEdge(str(e.source), str(e.wiser), float(e.wiser_likelihood), tuple(e.contexts)))
        return tuple(out)

    overall = tuple(ranked(v, s) for v, s in zip(graph.values["id"], graph.values["page_rank"], strict=True))[:TOP_VALUES]
    contexts = []
    for context, ranks in sorted(graph.page_rank_by_context.items()):
        top = sorted(ranks.items(), key=lambda kv: (-kv[1], str(kv[0])))[:TOP_PER_CONTEXT]
        if top:
            contexts.append(ContextGraph(context, tuple(ranked(v, s) for v, s in top),
                                         edges_among({str(v) for v, _ in top}, context)))
    answers = len(store.wiser_answers(deliberation_id, until=until))
    return GraphSection(mode=graph.mode, answers=answers, n_values=len(graph.values), n_edges=len(graph.edges),
                        overall=overall, edges=edges_among({v.id for v in overall}), contexts=tuple(contexts),
                        titles={str(k): str(v) for k, v in titles.items()})


def _cards(store: Store, deliberation_id: str, until) -> dict[str, list[CardText]]:
    """Each value's member cards written before `until`, as the Moral graph page lists them."""
    members = analyses.member_cards(store, deliberation_id)
    if until is not None:
        made = store.cards(deliberation_id, until=until)
        made = set(ids.public_ids("card", made["id"], made["source_id"]))
        members = {v: [c for c in cs if c["id"] in made] for v, cs in members.items()}
    return {v: [CardText(c["id"], c["title"], c["description"] or "", tuple(c["policies"])) for c in cs]
            for v, cs in members.items()}


def _groups(disagreement: analyses.DisagreementReport, store: Store, deliberation_id: str, until) -> GroupsSection:
    report = disagreement.polis_report
    if not report:
        return GroupsSection(error=disagreement.opinion_groups_error or "no opinion groups were found")
    votes = analyses.endorsement_table(store, deliberation_id, until=until)
    member = dict(zip(disagreement.opinion_map["participant_id"], disagreement.opinion_map["group"], strict=True))
    votes = votes.assign(group=votes["participant_id"].map(member)).dropna(subset=["group"])
    tally = votes.groupby(["group", "statement_id"])["vote"].agg(
        agree=lambda v: int((v == 1).sum()), disagree=lambda v: int((v == -1).sum()), votes="size")
    groups = []
    for g in report["groups"]:
        statements = []
        for s in g["statements"]:
            key = (g["group"], s["statement_id"])
            row = tally.loc[key] if key in tally.index else {"agree": 0, "disagree": 0, "votes": 0}
            statements.append(GroupStatement(
                id=str(s["statement_id"]), text=s.get("text") or str(s["statement_id"]), repful=s["repful"],
                agree=int(row["agree"]), disagree=int(row["disagree"]), votes=int(row["votes"]),
                others_share=float(s["others_share"]), significant=bool(s["significant"])))
        groups.append(OpinionGroup(g["label"], int(g["size"]), tuple(statements)))

    def consensus(rows) -> tuple[ConsensusStatement, ...]:
        return tuple(ConsensusStatement(str(c["statement_id"]), c.get("text") or str(c["statement_id"]), c["direction"],
                                        int(c["n_success"]), int(c["n_trials"])) for c in rows)

    labels = {str(g["group"]): g["label"] for g in report["groups"]}
    bridging = tuple(BridgingStatement(
        str(b["statement_id"]), b.get("text") or str(b["statement_id"]), float(b["gic"]),
        {labels.get(str(k), str(k)): (None if v is None else float(v)) for k, v in b["agree_share_by_group"].items()})
        for b in report["group_informed_consensus"][:RANKED_ITEMS])
    return GroupsSection(k=int(report["k"]), n_participants=int(report["n_participants"]),
                         n_grouped=int(report["n_grouped"]), method=report["method"], groups=tuple(groups),
                         consensus_agree=consensus(report["consensus"]["agree"]),
                         consensus_disagree=consensus(report["consensus"]["disagree"]), bridging=bridging)


def _divergences(disagreement: analyses.DisagreementReport) -> tuple[Divergence, ...]:
    if not disagreement.rankings:
        return ()
    strengths = disagreement.strengths()
    fit = disagreement.fit or {}
    out = []
    for name, ranking in disagreement.rankings.items():
        if name == "latent classes":
            prefix, kind = "latent class ", "Laplace"
        else:
            prefix = f"{fit.get('group_by')} = "
            kind = "bootstrap" if fit.get("bootstrap") else "Laplace"
        mine = strengths[strengths["group"].str.startswith(prefix)]

        def item(row, prefix=prefix, mine=mine) -> RankedItem:
            title = disagreement.title(row["item"])
            rows = mine[mine["value"] == title]
            return RankedItem(
                id=str(row["item"]), title=title, score=float(row["score"]),
                weakest_group=None if "weakest_group" not in row or pd.isna(row.get("weakest_group"))
                else str(row["weakest_group"]),
                intervals=tuple(Interval(r.group.removeprefix(prefix), float(r.theta), float(r.lower), float(r.upper))
                                for r in rows.itertuples(index=False)))

        out.append(Divergence(
            grouping=name, jsd=float(ranking.jsd), interval=kind,
            divisive=tuple(item(r) for _, r in ranking.divisive.head(RANKED_ITEMS).iterrows()),
            bridging=tuple(item(r) for _, r in ranking.bridging.head(RANKED_ITEMS).iterrows())))
    return tuple(out)


def _survey(store: Store, deliberation_id: str, delib: dict, disagreement: analyses.DisagreementReport, until,
            by: str | None) -> SurveySummary:
    closing = (delib["settings"] or {}).get("closing") or Closing().model_dump()
    questions = [(q["key"], q["text"]) for q in closing.get("survey", [])]
    answers = store.survey_answers(deliberation_id, until=until)
    people = store.id_map(deliberation_id, "participant")
    answers = answers.assign(participant_id=people.publics(answers["participant_id"]))
    groupings: dict[str, dict[str, str]] = {}
    if disagreement.opinion_map is not None and disagreement.polis_report:
        labels = {int(g["group"]): g["label"] for g in disagreement.polis_report["groups"]}
        groupings["opinion group"] = {str(p): labels.get(int(g), str(g)) for p, g in
                                      zip(disagreement.opinion_map["participant_id"], disagreement.opinion_map["group"],
                                          strict=True)}
    attrs = store.attributes(deliberation_id, until=until)
    if by and by in attrs.columns:
        known = attrs.dropna(subset=[by])
        groupings[by] = dict(zip(people.publics(known["participant_id"]), known[by].astype(str), strict=True))
    return survey_summary(answers, questions, groupings)


def _methods(participation: Participation, graph: GraphSection, groups: GroupsSection,
             divergences: tuple[Divergence, ...], survey: SurveySummary, bootstrap: int) -> tuple[Method, ...]:
    """A paragraph for each method whose results the report shows."""
    methods = [
        Method("Values cards and canonical values",
               "Each participant described what they pay attention to when choosing well, in a short interview, and"
               " confirmed a values card: a title, a sentence or two, and the things they attend to. Cards that"
               " express practically the same value were merged into one canonical value (by comparing the cards'"
               " wording with a sentence-embedding model, with a facilitator able to merge or split by hand)."),
        Method("The moral graph",
               "Participants were shown a situation and two values, with a short story of someone moving from the"
               " first to the second, and asked whether that person became wiser. An arrow from one value to"
               " another means enough people said yes, and clearly more said yes than the reverse"
               f" ({'the 2023 study’s thresholds' if graph.mode == 'mge' else 'a lower credible bound on the share saying wiser'})."
               " Values are ranked by PageRank over these arrows: a value ranks high when people judged moving"
               " towards it to be wiser, especially from values that rank high themselves."),
        Method("Opinion groups",
               "Participants agreed, disagreed or passed on values or statements. As Polis does, the votes were"
               " reduced to two dimensions and participants with enough votes were clustered into groups (the"
               " number of groups chosen by how well separated they are). A statement represents a group when the"
               " group voted on it clearly differently from everyone else (a one-sided test at 90%); consensus"
               " statements are those most participants agreed (or disagreed) with, across groups."),
        Method("Where groups disagree",
               "Choices between two values (and the wiser-than answers, read as choices) were fitted with a"
               " Bradley–Terry model: each value gets a strength, and a stronger value is more likely to be chosen."
               " Strengths were fitted for each known group and for latent classes found in the answers. A divisive"
               " value has strengths far apart across groups; a bridging value is likely to be chosen in every"
               " group (its score is the lowest, over groups, chance of being chosen over another value). Intervals"
               + (f" come from refitting on participants resampled {bootstrap} times (95%)." if bootstrap >= 2
                  else " are 95% Laplace intervals around each strength.")),
        Method("The closing survey",
               "After the rounds each participant saw where their value sits in the graph and their opinion group,"
               " then answered a few statements with yes, not sure or no. Percentages are yes among everyone who"
               " answered the statement; the counts are printed beside them."),
    ]
    shown = (participation.cards > 0, bool(graph.overall), not groups.error, bool(divergences), survey.respondents > 0)
    return tuple(m for m, on in zip(methods, shown, strict=True) if on)


# -- rendering ------------------------------------------------------------------------------------------


def render_html(report: DeliberationReport) -> str:
    """The report as one self-contained HTML page (no script; inline CSS and SVG; every text escaped)."""
    import jinja2

    from .report_svg import graph_svg, intervals_svg, share_bar_svg

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(config.PACKAGE / "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["pct"] = lambda x: "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}%"
    env.filters["num"] = lambda x, d=2: "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{d}f}"
    env.globals.update(graph_svg=graph_svg, share_bar_svg=share_bar_svg, intervals_svg=intervals_svg)
    return env.get_template("report.html.j2").render(r=report)

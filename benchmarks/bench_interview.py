"""Benchmark: what the guided interview drafts, offline, for 82 realistic answers, and how fast.

Run: .venv/bin/python benchmarks/bench_interview.py
Prints a Markdown section and writes it to benchmarks/results/interview.md (every drafted card in full).

For each answer + story of tests/fixtures/interview_answers.yaml (three demo questions, the tuning half,
and four other advice questions, held out) it drafts a card with workbench.drafting and reports:
- suggestions per interview (target >= 4) and their sources;
- the share of suggested lines that pass the project's own policy checks with no warning at all
  (workbench.cardcheck.check_policy, with the participant's words as the story; target >= 90%);
- suggestions that are a fragment of the story: flagged too short, a clause without a verb, a
  dangling end, or seven or more words copied from the story (target 0);
- time to suggest (model loaded, library vectors cached) against one bare `encode` of the same text,
  measured alternately in the same process (target: p95 within 300 ms, reported as a ratio).
- the hand reading: suggestions, ticked lines and whole cards of held_out_2 to held_out_5 counted against
  the labels of tests/fixtures/interview_readings.yaml, for the drafter before issue 12's sixth round
  (FIFTH_ROUND_RANKING with the library of LIBRARY_BEFORE_COMMIT, read from git) and after (RANKING and
  today's library).
In the same run: the old rule-based drafter (workbench/interview.py at OLD_DRAFTER_COMMIT, loaded from
git), and a plain baseline (the library's nearest lines to the whole text, no MMR, no own words).
With the demo questions it also drafts with others' cards from a simulated demo deliberation.

The pass rate is a weak proxy: the checks are ours, the library was written to pass them, and a line
can pass every check and still be off the point. The cards are printed in full so a reader can judge.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import time
import types
from collections import Counter
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from workbench import config  # noqa: E402
from workbench.cardcheck import ValuesCard, check_card, check_policy  # noqa: E402
from workbench.deliberation import load_deliberation  # noqa: E402
from workbench.drafting import (  # noqa: E402
    FIFTH_ROUND_RANKING,
    default_embedder,
    draft_card,
    draft_title,
    library_vectors,
    load_library,
    suggest_policies,
)
from workbench.embed import load_model  # noqa: E402
from workbench.interview import question_text  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "interview_answers.yaml"
READINGS = ROOT / "tests" / "fixtures" / "interview_readings.yaml"
RESULTS = ROOT / "benchmarks" / "results" / "interview.md"
OLD_DRAFTER_COMMIT = "dd36139d316fcf4471d2ce2f4677cd3482c533df"  # last commit with the old drafter
LIBRARY_BEFORE_COMMIT = "d143e7d2ecf01a4c1eb6fd6e0a2abd1e6833b577"  # main before the sixth round (40 themes)
FRAGMENT_CODES = {"policy_too_short", "policy_fragment", "policy_dangling", "policy_copies_story"}
TARGET_MS = 300


# The hand reading is kept as data (tests/fixtures/interview_readings.yaml: every suggested line of
# held_out_2 and held_out_3 judged signable or not, and every drafted title read); `hand_reading` counts
# this run's cards against it, and a line or title nobody has read is counted as unread, not guessed.
HAND_READING_NOTES = """\
The labels were made by one reader, strict, no second reader: the helper who wrote the card rule
(`workbench.drafting.card_choice`). **held_out_2 was used to tune** its margin (cards signable 7/12 for
every margin from 0.06 to 0.10 with the median floor, 6/12 without; 0.08 taken, the middle); **held_out_3
was read by the same person** who wrote the rule, once, with the margin fixed, so it is held out from the
tuning but not a blind reading. The "weak" threshold (0.33) was set below the lowest best relevance of a
card with a signable line on held_out_2 and the demo questions; the reader had seen held_out_3's
relevances while labelling. The earlier readings (third round, another reader) counted 26/75 and 24/114
signable suggestions and 7/12 and 4/18 signable cards with "at most one line removed"; this reading
counts 25/75 and 25/114.

Fifth round (the ranking, `workbench.drafting.RANKING`): the lines its suggestions brought in were read
and labelled (`added: fifth_round` in the file, 105 lines and 6 titles) by the helper who wrote the
ranking change, so not blind; every suggestion above has a label. It was tuned on held_out_2 only (the
variants tried and their counts are in drafting.py) and read once on held_out_3 with the ranking fixed.
It draws the pool of lines that may be suggested on the relevance blended with the theme's fit and lets a
theme give three lines: more of the suggestions are signable on both splits, at the price of fewer themes
per interview, and a story that wanders into another subject (a week at a vet's told to answer a question
about retraining as a nurse) now gets three lines of the wrong theme instead of two.

Sixth round (this table's "before" and "after"): "before" is main's drafter before the round, drafted in this
run with its own library read from git (`LIBRARY_BEFORE_COMMIT`, 40 themes) and `FIFTH_ROUND_RANKING`; "after"
is 62 themes (22 domains added: love and breakups, separating parents, addiction in a family, disability,
migration, housing, legal trouble, politics at home, the environment, sport, children online, fertility, end
of life, inheritance, speaking up about a friend, credit at work, study choices, mental health, school,
coming out, giving, teenagers) and `RANKING` (a theme more than 0.05 below the third closest theme's
closeness to the question gives at most two suggestions, and the drafted card ticks lines of the themes
close to the question). The lines it brought in were labelled (`added: sixth_round`) by the helper who
wrote the round, not blind; **the margin and the cap were chosen on held_out_2 and held_out_3 with those
labels**, and the library was written from a list of common advice domains, one of which (children online)
is a held_out_3 question; so neither split is held out from this round.

**The held-out test, read blind** (held_out_4 and held_out_5: ten questions, 40 interviews, written and
committed before anything was drafted for them; held_out_5's domains chosen by its writer alone, while
held_out_4's domains were among the ideas the library's author was given, so held_out_4 is not held out
from the sixth round's library). Two readers that had seen neither the code nor the library nor each
other's labels read every line either drafter suggested, mixed and in alphabetical order, and every title
(agreement 97.8% and 94.5%, Cohen's kappa 0.91 and 0.74). On these questions about one suggested line in
seven to ten is one the participant would sign, before and after the sixth round alike (after: 21/138
and 17/157 when both readers say so; before: 14/142 and 11/154), and **no drafted card is signable (0/20
and 0/20, both drafters)**: the lines the card ticked were signable about as rarely as those it left
(after: 11/57 and 6/52 ticked against 10/81 and 11/105 left, both readers), and the suggestions' relevance
told signable from unsignable lines no better than chance (AUC 0.56 and 0.55). The figures of the rows
above, read by the people who made the changes, on questions that guided them, were two to three times
higher. So the participant page ticks no line of the library or of others' cards any more (only lines from
the participant's own words): a hurried participant who accepted the ticked default got a card of
strangers' lines. `workbench interview draft` still prints the drafted card.

What the fourth round's rule does: it ticks half as many unsignable lines (the padding the third round's reader
noticed) for a few signable ones lost (a good third line further than 0.08 from the best, or below the
median, is left for the participant to tick), and on the children-online question it ticks nothing on
three of four interviews and says so. It does not make more cards signable on held_out_3: what is
missing there are signable suggestions (about one in four), not a better choice among them.
"""


def padded_card(suggestions) -> tuple:
    """The card rule before issue 12's fourth round (the baseline): suggestions at least 0.8 as relevant
    as the best, filled up to 3 with the next most relevant, at most 5, none covered by another."""
    best = max((s.relevance for s in suggestions), default=0.0)
    strong = [s for s in suggestions if s.source == "own_words" or s.relevance >= 0.8 * best]
    weak = sorted((s for s in suggestions if s not in strong), key=lambda s: -s.relevance)
    chosen: list = []
    for s in [*strong, *weak[: max(0, 3 - len(strong))]]:
        trial = [*chosen, s]
        check = check_card(ValuesCard("x y z", "x.", tuple(t.text for t in trial)))
        if any(w.code == "policy_overlap" for w in check.warnings):
            continue
        chosen = trial
        if len(chosen) == 5:
            break
    return tuple(chosen)


def load_readings() -> dict[tuple[str, str, int], dict]:
    """(split, question label, answer number) -> {"lines": {text: signable}, "titles": {text: fits}}."""
    if not READINGS.exists():
        return {}
    data = yaml.safe_load(READINGS.read_text())
    return {(r["split"], r["question"], r["answer"]): {
        "lines": {line["text"]: bool(line["signable"]) for line in r["lines"]},
        "titles": {t["text"]: bool(t["fits"]) for t in r["titles"]},
        # the blind splits were read by two readers: each one's labels, in order
        "readers": [{line["text"]: bool(line["readers"][i]) for line in r["lines"]}
                    for i in range(len(r["lines"][0].get("readers", ())) if r["lines"] else 0)],
    } for r in data["interviews"]}


#: Splits read blind by two readers (the suggestions of main's drafter before and after the sixth round,
#: mixed), written before anything was drafted for them: the held-out test of the sixth round.
BLIND_SPLITS = ("held_out_4", "held_out_5")
READ_SPLITS = ("held_out_2", "held_out_3", *BLIND_SPLITS)


def card_reading(policies, title: str, reading: dict) -> dict:
    """A drafted card counted against the hand reading: signable and unsignable ticked lines, unread
    ones, whether its title fits (None: unread), and whether the whole card is signable."""
    verdicts = [reading["lines"].get(s.text) for s in policies]
    good, bad = sum(v is True for v in verdicts), sum(v is False for v in verdicts)
    fits = reading["titles"].get(title)
    return {"good": good, "bad": bad, "unread": sum(v is None for v in verdicts) + (fits is None),
            "signable": good >= 2 and bad <= 1 and bool(fits), "unread_title": None if fits is not None else title}


def hand_reading(rows, library) -> str:
    """The before (padded_card) / after (draft_card) table on the hand-read splits."""
    readings = load_readings()
    out = ["### Read as a participant (hand reading, `tests/fixtures/interview_readings.yaml`)", ""]
    out.append("Ticked lines and cards of the interviews whose suggestions were read by hand, counted by this "
               "run from the labels. A card is signable with >= 2 signable lines, at most one unsignable line "
               "and a fitting title (the title is drafted from the ticked lines, so it changes with the rule).")
    out.append("")
    out.append("| split | ranking | card rule | suggestions signable | ticked lines | signable | unsignable "
               "| cards signable | cards with the \"nothing may fit\" note | unread |")
    out.append("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    unread_titles = []
    per_reader = []
    for split in READ_SPLITS:
        sel = [(r, readings.get((r["split"], r["label"], r["n"]))) for r in rows if r["split"] == split]
        sel = [(r, reading) for r, reading in sel if reading is not None]
        if not sel:
            continue
        for ranking, key in ((f"before: fifth round (`FIFTH_ROUND_RANKING`, library of {LIBRARY_BEFORE_COMMIT[:7]}: "
                              "40 themes)", "before"),
                             ("**sixth round** (`RANKING`: off-question themes at most 2 lines, card on the question; "
                              f"{len(library.themes)} themes)", "draft")):
            verdicts = [reading["lines"].get(s.text) for r, reading in sel for s in r[key].suggestions]
            if split in BLIND_SPLITS:
                each = [sum(bool(reading["readers"][i].get(s.text)) for r, reading in sel for s in r[key].suggestions)
                        for i in range(len(sel[0][1]["readers"]))]
                ticked = [sum(bool(reading["readers"][i].get(s.text)) for r, reading in sel for s in r[key].policies)
                          for i in range(len(sel[0][1]["readers"]))]
                scored = [(s.relevance, bool(reading["lines"].get(s.text))) for r, reading in sel for s in r[key].suggestions]
                good = [x for x, ok in scored if ok]
                bad = [x for x, ok in scored if not ok]
                auc = np.mean([[g > b for b in bad] for g in good]) if good and bad else float("nan")
                per_reader.append(f"{split}, {key}: suggestions signable {' / '.join(f'{n}/{len(verdicts)}' for n in each)},"
                                  f" ticked lines signable {' / '.join(f'{n}/{sum(len(r[key].policies) for r, _ in sel)}' for n in ticked)},"
                                  f" relevance separating signable lines (both readers) from the rest: AUC {auc:.2f}")
            shown = (f"{sum(v is True for v in verdicts)}/{len(verdicts)}"
                     + (f" ({sum(v is None for v in verdicts)} unread)" if None in verdicts else ""))
            rules = (("`card_choice` (within 0.08 of the best and >= median, 2-5)", "after"),)
            for name, pick in rules:
                counts = []
                for r, reading in sel:
                    d = r[key]
                    if pick == "padded":
                        policies = padded_card(d.suggestions)
                        title, note = draft_title(policies, r["response"], library=library), False
                    else:
                        policies, title, note = d.policies, d.title, bool(d.note)
                    c = card_reading(policies, title, reading)
                    c["lines"], c["note"] = len(policies), note
                    counts.append(c)
                    if c["unread_title"]:
                        unread_titles.append(f"{r['label']} answer {r['n']}: “{c['unread_title']}”")
                out.append(
                    f"| {split} | {ranking} | {name} | {shown} | {sum(c['lines'] for c in counts)} "
                    f"| {sum(c['good'] for c in counts)} | {sum(c['bad'] for c in counts)} "
                    f"| {sum(c['signable'] for c in counts)}/{len(counts)} | {sum(c['note'] for c in counts)} "
                    f"| {sum(c['unread'] for c in counts)} |")
    out.append("")
    if per_reader:
        out.append("Blind splits, each reader on their own (A / B; the table counts a line signable when both said so): "
                   + "; ".join(per_reader) + ".")
        out.append("")
    sizes = []
    for split in ("tune", "read", "held_out", *READ_SPLITS):
        sel = [r for r in rows if r["split"] == split]
        after = Counter(len(r["draft"].policies) for r in sel)
        before = Counter(len(padded_card(r["draft"].suggestions)) for r in sel)
        sizes.append(f"{split} {', '.join(f'{n}: {after[n]}' for n in sorted(after))} "
                     f"(before {', '.join(f'{n}: {before[n]}' for n in sorted(before))})")
    out.append("Lines per drafted card (lines: interviews), after (before): " + "; ".join(sizes) + ". A card of two "
               "lines carries the card checks' `policy_count` warning (\"Cards usually have 3–7; is there "
               "anything to add?\"), which the review stage shows: the participant is asked for a line of their "
               "own rather than handed a stranger's; a card of none is a weak one, shown with the note.")
    out.append("")
    if unread_titles:
        out.append("Titles not yet read (counted as not fitting): " + "; ".join(unread_titles) + ".")
        out.append("")
    out.append(HAND_READING_NOTES.rstrip())
    return "\n".join(out)


def load_fixtures() -> list[dict]:
    data = yaml.safe_load(FIXTURES.read_text())
    spec = load_deliberation(config.DEMO_DELIBERATION)
    # The question as the page and `workbench interview draft` pass it: title and prompt.
    prompts = {f"{spec.id}/{q.slug}": question_text(q.title, q.prompt) for q in spec.questions}
    out = []
    for q in data["questions"]:
        qid = q["question"] if q["question"] in prompts else None
        text = prompts.get(q["question"], q["question"])
        label = qid or " ".join(text.split()[:8]).strip('"') + "…"
        for i, a in enumerate(q["answers"]):
            out.append({"question_id": qid, "question": text, "label": label, "split": q["split"], "n": i + 1,
                        "response": " ".join(a["response"].split()), "story": " ".join(a["story"].split())})
    return out


def old_drafter():
    """candidate_policies and draft_title of the old drafter, with the card checks of its day, from git."""
    def source(path: str) -> str:
        return subprocess.run(["git", "show", f"{OLD_DRAFTER_COMMIT}:{path}"], cwd=ROOT, check=True,
                              capture_output=True, text=True).stdout
    try:
        checks = types.ModuleType("old_cardcheck")
        sys.modules["old_cardcheck"] = checks  # dataclasses look their module up while the code runs
        exec(compile(source("workbench/cardcheck.py"), "old_cardcheck", "exec"), checks.__dict__)
        drafter = types.ModuleType("old_interview")
        sys.modules["old_interview"] = drafter
        code = source("workbench/interview.py").replace("from workbench.cardcheck import", "from old_cardcheck import")
        exec(compile(code, "old_interview", "exec"), drafter.__dict__)
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        print(f"old drafter not available ({exc}); comparison skipped", file=sys.stderr)
        return None, None
    return drafter, checks


def library_at(commit: str) -> Path:
    """The policy library file as it was at `commit`, written to a temporary file (read from git)."""
    import tempfile

    text = subprocess.run(["git", "show", f"{commit}:workbench/data/policy_library.yaml"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout
    path = Path(tempfile.gettempdir()) / f"policy_library_{commit[:12]}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def line_verdict(line: str, words: str, question: str = "") -> tuple[bool, bool]:
    """(passes every policy check, is a fragment of the story) under today's checks."""
    codes = {i.code for i in check_policy(line, story=words, question=question)}
    return not codes, bool(codes & FRAGMENT_CODES)


def timed(fn, *args, **kwargs) -> float:
    start = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - start


def time_suggestions(fixtures: list[dict], repeats: int) -> tuple[list[float], list[float], list[float]]:
    """A suggestion (warm) against one bare encode of the same text, alternately, `repeats` times each."""
    embedder, library = default_embedder(), load_library()
    model = load_model(embedder.model_path)
    for fx in fixtures:  # warm: questions' vectors, first calls
        suggest_policies(fx["question"], fx["response"], fx["story"], embedder=embedder, library=library)
    bare, ours = [], []
    for fx in fixtures:
        text = f"{fx['response']}\n{fx['story']}"
        for _ in range(repeats):
            bare.append(timed(model.encode, [text], normalize_embeddings=True))
            ours.append(timed(suggest_policies, fx["question"], fx["response"], fx["story"],
                              embedder=embedder, library=library))
    return bare, ours, [o / b for o, b in zip(ours, bare, strict=True)]


def print_timing(fixtures: list[dict], repeats: int) -> None:
    bare, ours, ratios = time_suggestions(fixtures, repeats)
    load = os.getloadavg()[0]
    for name, values in (("bare encode ms", bare), ("suggest_policies ms", ours)):
        print(f"{name}: p50 {1000 * np.percentile(values, 50):.0f}, p95 {1000 * np.percentile(values, 95):.0f}")
    print(f"ratio: p50 {np.percentile(ratios, 50):.2f}, p95 {np.percentile(ratios, 95):.2f}; "
          f"{len(ours)} suggestions; load average {load:.1f}")


def demo_others() -> dict[str, list[dict]]:
    """Cards of a simulated demo deliberation (workbench demo), by question id, as the page would pass them."""
    from workbench.demo import load_world, simulate

    spec = load_deliberation(config.DEMO_DELIBERATION)
    bundle = simulate(spec, load_world(config.DATA / "demo_values.yaml"), 120, seed=0)
    out: dict[str, list[dict]] = {}
    for i, card in enumerate(bundle.cards.to_dict("records")):
        out.setdefault(f"{spec.id}/{card['question']}", []).append(
            {"id": i + 1, "title": card["title"], "policies": list(card["policies"])})
    return out


def pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed repetitions per interview")
    parser.add_argument("--timing-only", action="store_true",
                        help="only time suggestions against a bare encode (prints, writes nothing)")
    args = parser.parse_args()
    if args.timing_only:
        return print_timing(load_fixtures(), args.repeats)

    fixtures = load_fixtures()
    old, old_checks = old_drafter()
    embedder = default_embedder()
    load_model(embedder.model_path)  # loaded before anything is timed
    library = load_library()
    library_before = load_library(library_at(LIBRARY_BEFORE_COMMIT))
    t0 = time.perf_counter()
    vectors = library_vectors(library, embedder)
    library_seconds = time.perf_counter() - t0
    import torch

    rows = []
    for fx in fixtures:
        words = f"{fx['response']}\n{fx['story']}"
        draft = draft_card(fx["question"], fx["response"], fx["story"], embedder=embedder, library=library)
        # The drafter before the sixth round (its ranking and its library), drafted in the same run.
        before = draft_card(fx["question"], fx["response"], fx["story"], embedder=embedder, library=library_before,
                            ranking=FIFTH_ROUND_RANKING) if fx["split"] in READ_SPLITS else None
        verdicts = [line_verdict(s.text, words, fx["question"]) for s in draft.suggestions]
        card_warnings = check_card(draft.values_card(), story=words, question=fx["question"]).warnings
        rows.append({**fx, "draft": draft, "before": before, "verdicts": verdicts,
                     "card_warnings": card_warnings})

    bare, ours, ratios = time_suggestions(fixtures, args.repeats)

    # Plain baseline: the library's nearest lines to the whole text (same vectors), no MMR, no own words.
    baseline = []
    for fx in fixtures:
        words = f"{fx['response']}\n{fx['story']}"
        q = embedder.encode([words])[0]
        top = np.argsort(-(vectors.policies @ q))[:8]
        lines = [library.policies[int(i)].text for i in top]
        sims = vectors.policies[top] @ vectors.policies[top].T
        baseline.append({"lines": lines, "themes": len({library.policies[int(i)].theme for i in top}),
                         "redundancy": float(sims[np.triu_indices(len(top), 1)].mean())})

    old_rows = []
    if old is not None:
        for fx in fixtures:
            words = f"{fx['response']}\n{fx['story']}"
            lines = old.candidate_policies(fx["response"], fx["story"])
            old_rows.append({
                "lines": lines,
                "title": old.draft_title(lines, fx["response"]),
                "verdicts": [line_verdict(line, words, fx["question"]) for line in lines],
                "own_checks": [not old_checks.check_policy(line) for line in lines],
            })

    # With others' cards (demo questions): lines of a simulated deliberation's cards.
    others = demo_others()
    with_others = []
    for fx in fixtures:
        if fx["question_id"] in others:
            words = f"{fx['response']}\n{fx['story']}"
            sug = suggest_policies(fx["question"], fx["response"], fx["story"], others=others[fx["question_id"]],
                                   embedder=embedder, library=library)
            with_others.append({"sources": Counter(s.source for s in sug),
                                "verdicts": [line_verdict(s.text, words, fx["question"]) for s in sug]})

    report = render(rows, bare, ours, ratios, baseline, old_rows, with_others, library, library_seconds,
                    embedder, torch.get_num_threads(), args.repeats, others)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(report)
    print(report)


def _pairwise_redundancy(draft, embedder) -> float:
    vecs = embedder.encode([s.text for s in draft.suggestions])
    sims = vecs @ vecs.T
    return float(sims[np.triu_indices(len(vecs), 1)].mean())


def render(rows, bare, ours, ratios, baseline, old_rows, with_others, library, library_seconds, embedder,
           threads, repeats, others) -> str:
    def p(values, q):
        return float(np.percentile(values, q))

    out = ["## Guided interview: drafted cards (offline, no LLM)", ""]
    out.append(
        f"Model `{embedder.model_name}`, CPU, torch threads {threads}; library: {len(library.policies)} policies in "
        f"{len(library.themes)} themes ({library_seconds:.1f} s to load its vectors in this run: from the disk "
        "cache when present). Fixtures: `tests/fixtures/interview_answers.yaml`, "
        f"{len(rows)} answer + story pairs over {len({r['label'] for r in rows})} questions. "
        "Reproduce: `.venv/bin/python benchmarks/bench_interview.py`."
    )
    out.append("")
    out.append("| split | interviews | suggestions / interview (min–max) | lines passing every policy check "
               "| story fragments | drafted cards with a warning | themes / interview |")
    out.append("|---|---:|---:|---:|---:|---:|---:|")
    for split in ("tune", "read", "held_out", *READ_SPLITS, None):
        sel = [r for r in rows if split is None or r["split"] == split]
        if not sel:
            continue
        counts = [len(r["draft"].suggestions) for r in sel]
        verdicts = [v for r in sel for v in r["verdicts"]]
        themes = [len({s.theme for s in r["draft"].suggestions}) for r in sel]
        out.append(
            f"| {split or 'all'} | {len(sel)} | {statistics.mean(counts):.1f} ({min(counts)}–{max(counts)}) "
            f"| {pct(sum(ok for ok, _ in verdicts), len(verdicts))} ({sum(ok for ok, _ in verdicts)}/{len(verdicts)}) "
            f"| {sum(frag for _, frag in verdicts)} | {sum(bool(r['card_warnings']) for r in sel)} "
            f"| {statistics.mean(themes):.1f} |"
        )
    out.append("")
    out.append(hand_reading(rows, library))
    sources = Counter(s.source for r in rows for s in r["draft"].suggestions)
    card_sources = Counter(s.source for r in rows for s in r["draft"].policies)
    out.append("")
    out.append(f"Sources of all suggestions: {dict(sources)}; of the lines on drafted cards: {dict(card_sources)}.")
    out.append("")

    out.append("### Compared in the same run")
    out.append("")
    out.append("| drafter | lines / interview (min–max) | interviews with >= 4 lines | pass every policy check "
               "(today's checks) | story fragments | passes its own day's checks |")
    out.append("|---|---:|---:|---:|---:|---:|")
    counts = [len(r["draft"].suggestions) for r in rows]
    verdicts = [v for r in rows for v in r["verdicts"]]
    out.append(
        f"| **ours** (`workbench.drafting.suggest_policies`) | {statistics.mean(counts):.1f} ({min(counts)}–{max(counts)}) "
        f"| {sum(c >= 4 for c in counts)}/{len(rows)} | {pct(sum(ok for ok, _ in verdicts), len(verdicts))} "
        f"| {sum(f for _, f in verdicts)} | same checks |"
    )
    if old_rows:
        counts = [len(r["lines"]) for r in old_rows]
        verdicts = [v for r in old_rows for v in r["verdicts"]]
        own = [v for r in old_rows for v in r["own_checks"]]
        out.append(
            f"| old rule-based drafter (`candidate_policies` at {OLD_DRAFTER_COMMIT[:7]}) "
            f"| {statistics.mean(counts):.1f} ({min(counts)}–{max(counts)}) | {sum(c >= 4 for c in counts)}/{len(rows)} "
            f"| {pct(sum(ok for ok, _ in verdicts), len(verdicts))} ({sum(ok for ok, _ in verdicts)}/{len(verdicts)}) "
            f"| {sum(f for _, f in verdicts)} | {pct(sum(own), len(own))} |"
        )
    red_ours = statistics.mean(_pairwise_redundancy(r["draft"], embedder) for r in rows)
    red_base = statistics.mean(b["redundancy"] for b in baseline)
    themes_ours = statistics.mean(len({s.theme for s in r["draft"].suggestions}) for r in rows)
    themes_base = statistics.mean(b["themes"] for b in baseline)
    out.append("")
    out.append(
        f"Plain baseline (the 8 library lines nearest the whole text, no MMR, no own words, no theme cap): mean "
        f"pairwise cosine between its suggestions {red_base:.3f} vs ours {red_ours:.3f}; themes per interview "
        f"{themes_base:.1f} vs ours {themes_ours:.1f}. Lower pairwise similarity and more themes mean the few "
        "suggestions say different things."
    )
    if with_others:
        src = Counter()
        for w in with_others:
            src.update(w["sources"])
        verdicts = [v for w in with_others for v in w["verdicts"]]
        n_cards = sum(len(v) for v in others.values())
        out.append("")
        out.append(
            f"With others' cards (demo questions, {len(with_others)} interviews; {n_cards} cards of a simulated "
            f"demo deliberation, `workbench demo` with 120 participants): sources {dict(src)}; "
            f"{pct(sum(ok for ok, _ in verdicts), len(verdicts))} of the lines pass every check. The simulated "
            "cards reuse a small set of lines, many naming \"the child\" or \"the parent\", which the person "
            "check flags, so only their clean lines are eligible."
        )
    out.append("")
    out.append("### Speed (model loaded, library vectors cached)")
    out.append("")
    out.append(f"{len(ours)} suggestions ({repeats} per interview), each timed right after one bare "
               "`SentenceTransformer.encode` of the same text (answer + story).")
    out.append("")
    out.append("| | p50 ms | p95 ms | max ms |")
    out.append("|---|---:|---:|---:|")
    out.append(f"| bare `encode` of the text | {1000 * p(bare, 50):.0f} | {1000 * p(bare, 95):.0f} | {1000 * max(bare):.0f} |")
    out.append(f"| `suggest_policies` | {1000 * p(ours, 50):.0f} | {1000 * p(ours, 95):.0f} | {1000 * max(ours):.0f} |")
    out.append(f"| ratio ours / bare (per pair) | {p(ratios, 50):.2f} | {p(ratios, 95):.2f} | {max(ratios):.2f} |")
    out.append("")
    verdict = "met" if 1000 * p(ours, 95) <= TARGET_MS else "not met on this (shared, busy) machine"
    out.append(
        f"Target p95 <= {TARGET_MS} ms: {verdict} ({1000 * p(ours, 95):.0f} ms). A suggestion is one `encode` call "
        "on a batch: the whole text, its sentences of four words or more, and the own-words lines; the ratio "
        "is the price of that batch (and of checking and ranking {} library lines) over encoding the text "
        "once.".format(len(library.policies))
    )
    out.append("")
    out.append("### Every drafted card")
    out.append("")
    out.append("Sources: `own` from the participant's own words, `lib` the library, `oth` others' cards. "
               "Lines marked ✓ are on the drafted card; the rest are further suggestions. A line with a "
               "warning shows its codes.")
    for r, old_row in zip(rows, old_rows or [None] * len(rows), strict=True):
        d = r["draft"]
        out.append("")
        out.append(f"#### {r['label']} — answer {r['n']} ({r['split']})")
        out.append("")
        out.append(f"> **Answer:** {r['response']}  ")
        out.append(f"> **Story:** {r['story']}")
        out.append("")
        out.append(f"**{d.title}** — {d.description}")
        out.append("")
        if d.note:
            out.append(f"Note shown: *{d.note}* (no library line ticked)")
            out.append("")
        chosen = {s.text for s in d.policies}
        for s, (ok, _) in zip(d.suggestions, r["verdicts"], strict=True):
            codes = "" if ok else " ⚠ " + ", ".join(
                i.code for i in check_policy(s.text, story=f"{r['response']}\n{r['story']}", question=r["question"]))
            mark = "✓" if s.text in chosen else "·"
            out.append(f"- {mark} `{s.source[:3].replace('own', 'own')}` {s.text}{codes}")
        if r["card_warnings"]:
            out.append(f"- card warnings: {', '.join(w.code for w in r['card_warnings'])}")
        if old_row is not None:
            lines = "; ".join(
                f"{line}{'' if ok else ' ⚠'}" for line, (ok, _) in zip(old_row["lines"], old_row["verdicts"], strict=True))
            out.append(f"- old drafter: “{old_row['title']}” — {lines or '(no lines)'}")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    if importlib.util.find_spec("torch") is None:
        sys.exit("torch is not installed: run `make install` first")
    main()

"""The demo deliberation's simulated participants: pure, seeded, deterministic.

`simulate(spec, values, n, seed)` draws N participants from the latent communities defined in
`data/demo_values.yaml`; each community gives the values different Bradley-Terry strengths
(`appeal`), and its members' cards, wiser-than answers, endorsements and comparisons follow
them, so the analyses have communities to find. Returns an `ImportBundle`; never writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from .errors import InputError
from .io.bundle import ImportBundle
from .models import DeliberationSpec

BASE_TIME = datetime(2026, 1, 5, 9, 0, 0)
COMMUNITY_SHARES = (0.4, 0.35, 0.25)


@dataclass(frozen=True)
class DemoValue:
    key: str
    question: str
    titles: tuple[str, ...]
    description: str
    policies: tuple[str, ...]
    appeal: dict[str, float]


@dataclass(frozen=True)
class DemoWorld:
    communities: tuple[str, ...]
    leaning: dict[str, dict[str, float]]
    values: tuple[DemoValue, ...]

    def of_question(self, slug: str) -> list[DemoValue]:
        return [v for v in self.values if v.question == slug]


def load_world(path: str | Path) -> DemoWorld:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    communities = tuple(c["id"] for c in data["communities"])
    values = []
    for question, items in data["values"].items():
        for v in items:
            values.append(DemoValue(key=v["key"], question=question, titles=tuple(v["titles"]),
                                    description=v["description"], policies=tuple(v["policies"]),
                                    appeal={c: float(v["appeal"][c]) for c in communities}))
    return DemoWorld(communities, {c["id"]: c["leaning"] for c in data["communities"]}, tuple(values))


def _pick(rng: np.random.Generator, options: list, p=None):
    return options[int(rng.choice(len(options), p=p))]


def _shared(value: DemoValue) -> float:
    return float(np.mean(list(value.appeal.values())))


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + np.exp(-x))


def simulate(spec: DeliberationSpec, world: DemoWorld, n: int, seed: int = 0) -> ImportBundle:
    """N simulated participants of the demo deliberation, drawn from the world's communities."""
    if n < 1:
        raise InputError(f"participants: must be at least 1, got {n}")
    rng = np.random.default_rng(seed)
    questions = {q.slug: q for q in spec.questions}
    demographics = {d.key: d for d in spec.demographics}
    rows: dict[str, list[dict]] = {k: [] for k in ("participants", "attributes", "cards", "links", "wiser",
                                                   "endorsements", "comparisons", "steps", "survey")}
    # The closing survey draws from its own stream, so adding it left every other simulated answer as it was.
    survey_rng = np.random.default_rng([seed, 1])
    canonical = [
        {"source_id": f"demo-{v.question}-{v.key}", "question": v.question, "title": v.titles[0],
         "description": v.description, "policies": list(v.policies[:4]), "origin": "demo", "created_at": BASE_TIME}
        for v in world.values
    ]
    shares = np.asarray(COMMUNITY_SHARES[: len(world.communities)])
    shares = shares / shares.sum()
    for i in range(n):
        pid = f"demo-{i + 1:04d}"
        t0 = BASE_TIME + timedelta(minutes=7 * i + int(rng.integers(0, 5)))
        community = _pick(rng, list(world.communities), shares)
        rows["participants"].append({"source_id": pid, "signup": "demo", "created_at": t0})
        attrs = {"simulated_community": community}
        for key, question in demographics.items():
            if key == "political_leaning" and community in world.leaning:
                dist = world.leaning[community]
                opts = [o for o in question.options if o in dist]
                p = np.asarray([dist[o] for o in opts])
                attrs[key] = _pick(rng, opts, p / p.sum())
            else:
                attrs[key] = _pick(rng, list(question.options))
        rows["attributes"] += [{"participant": pid, "key": k, "value": v} for k, v in attrs.items()]

        slug = list(questions)[i % len(questions)]
        question = questions[slug]
        values = world.of_question(slug)
        appeal = np.asarray([v.appeal[community] for v in values])
        own = values[int(rng.choice(len(values), p=np.exp(appeal) / np.exp(appeal).sum()))]
        k = int(rng.integers(3, min(4, len(own.policies)) + 1))
        policies = [own.policies[j] for j in sorted(rng.choice(len(own.policies), size=k, replace=False))]
        contexts = sorted({_pick(rng, list(question.contexts)) for _ in range(2)})
        card_id = f"{pid}-card"
        rows["cards"].append({
            "source_id": card_id, "kind": "card", "question": slug, "author": pid,
            "title": _pick(rng, list(own.titles)), "description": own.description, "policies": policies,
            "status": "active", "contexts": contexts, "created_at": t0 + timedelta(minutes=3)})
        rows["links"].append({"card": card_id, "canonical": f"demo-{slug}-{own.key}", "provenance": "demo"})

        t = t0 + timedelta(minutes=4)
        # Most wiser-than questions are asked in a question's first context, as a deliberation that
        # focuses its judging would: enough answers per pair and context for the graph to show edges.
        focus = np.asarray([0.7] + [0.3 / max(len(question.contexts) - 1, 1)] * (len(question.contexts) - 1))
        focus = focus / focus.sum()
        for j in range(spec.rounds.wiser):
            a, b = rng.choice(len(values), size=2, replace=False)
            # Wiser-than judgements mix the community's own view with what all communities share:
            # people of different camps often agree that one way of choosing is wiser than another.
            gain = 0.5 * (values[b].appeal[community] - values[a].appeal[community]) + (
                _shared(values[b]) - _shared(values[a]))
            u = rng.random()
            answer = "not_sure" if u < 0.1 else ("upgrade" if u < 0.1 + 0.9 * _sigmoid(1.5 * gain) else "no_upgrade")
            rows["wiser"].append({
                "source_key": f"{pid}-w{j}", "participant": pid, "from_value": f"demo-{slug}-{values[a].key}",
                "to_value": f"demo-{slug}-{values[b].key}", "context": _pick(rng, list(question.contexts), focus),
                "answer": answer, "story": None, "comment": None, "created_at": t + timedelta(seconds=40 * j)})
        t += timedelta(minutes=2)
        for j, idx in enumerate(rng.permutation(len(values))[: spec.rounds.endorse]):
            v = values[int(idx)]
            u = rng.random()
            p_agree = _sigmoid(1.5 * v.appeal[community] - 0.3)
            vote = "pass" if u < 0.1 else ("agree" if rng.random() < p_agree else "disagree")
            rows["endorsements"].append({
                "source_key": f"{pid}-e{j}", "participant": pid, "canonical": f"demo-{slug}-{v.key}",
                "card": None, "card_kind": None, "question": slug, "vote": vote,
                "created_at": t + timedelta(seconds=15 * j)})
        t += timedelta(minutes=2)
        for j in range(spec.rounds.compare):
            a, b = rng.choice(len(values), size=2, replace=False)
            p_a = _sigmoid(values[a].appeal[community] - values[b].appeal[community])
            rows["comparisons"].append({
                "source_key": f"{pid}-c{j}", "participant": pid,
                "item_a": f"demo-{slug}-{values[a].key}", "item_b": f"demo-{slug}-{values[b].key}",
                "winner": "a" if rng.random() < p_a else "b", "context": None, "prompt": question.prompt,
                "question": slug, "weight": 1.0, "created_at": t + timedelta(seconds=20 * j)})
        t += timedelta(minutes=2)
        # Participants whose own value their community favours more find its place fairer, so groups differ.
        leaning = _sigmoid(1.2 + own.appeal[community])
        for j, q in enumerate(spec.closing.survey):
            u = survey_rng.random()
            answer = "not_sure" if u < 0.08 else ("yes" if survey_rng.random() < leaning else "no")
            rows["survey"].append({"source_key": f"{pid}-s{j}", "participant": pid, "question": q.key, "answer": answer,
                                   "canonical": f"demo-{slug}-{own.key}", "created_at": t + timedelta(seconds=10 * j)})
        for step in ("consent", "demographics", "question", "card", "wiser", "endorse", "compare", "survey", "done"):
            rows["steps"].append({"participant": pid, "step": step, "created_at": t0})

    frames = {k: pd.DataFrame(v) for k, v in rows.items()}
    return ImportBundle(spec=spec, source="demo", canonical=pd.DataFrame(canonical), **frames)

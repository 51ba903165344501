"""`workbench dedup` on a real DuckDB file and a real PostgreSQL server with the real embedding model: canonical values found,
the embedding cache used, ids stable across re-runs, a facilitator's hand placements kept."""

from __future__ import annotations

import pytest
from sklearn.metrics import adjusted_rand_score
from typer.testing import CliRunner

from workbench import analyses, config
from workbench.cli import app
from workbench.demo import load_world, simulate
from workbench.embed import BUNDLED_MODEL_NAME, LINES_SUFFIX, Embedder
from workbench.store import Store

runner = CliRunner()


pytestmark = pytest.mark.both_backends


@pytest.fixture
def demo_db(db_target, demo_spec):
    db = db_target
    with Store(db) as s:
        s.import_bundle(simulate(demo_spec, load_world(config.DATA / "demo_values.yaml"), 45, seed=5))
    return db


@pytest.mark.model
def test_dedup_with_the_real_model_finds_the_simulated_values_and_caches(demo_db):
    with Store(demo_db) as s:
        simulated = s.card_links("demo").set_index("card_id")["canonical_id"].sort_index()
    first = runner.invoke(app, ["dedup", "--db", str(demo_db)])
    assert first.exit_code == 0, first.output
    assert "45 cards embedded" in first.output
    second = runner.invoke(app, ["dedup", "--db", str(demo_db)])
    assert "0 cards embedded" in second.output
    with Store(demo_db) as s:
        found = s.card_links("demo").set_index("card_id")["canonical_id"].sort_index()
        assert s.embedding_count(BUNDLED_MODEL_NAME) == 45  # one card vector each
        assert s.embedding_count(BUNDLED_MODEL_NAME + LINES_SUFFIX) == 45  # and their policy vectors, one row each
        runs = s.runs(deliberation_id="demo", kind="dedup")
    # Cards written from the same simulated value (different titles, different policy subsets)
    # land together, and most keep the id they had.
    assert adjusted_rand_score(simulated, found) >= 0.9
    assert (simulated == found).mean() >= 0.9
    assert list(runs["status"]) == ["done", "done"]


class CountingEncoder:
    """A deterministic stand-in for the model, so these store tests stay fast: it counts texts."""

    def __init__(self):
        self.texts = 0

    def __call__(self, texts):
        import numpy as np

        self.texts += sum("\n" in t for t in texts)  # card texts; the rest are their policy lines
        rng = [np.random.default_rng(abs(hash(t.split("\n")[0])) % 2**32).normal(size=16) for t in texts]
        return np.vstack(rng)


def test_rerun_keeps_ids_embeds_only_edited_cards_and_keeps_hand_placements(demo_db):
    encoder = CountingEncoder()
    embedder = Embedder(encode=encoder, model_name="counting")
    with Store(demo_db) as s:
        analyses.deduplicate(s, "demo", embedder=embedder)
        assert encoder.texts == 45
        before = s.card_links("demo").set_index("card_id")["canonical_id"]
        card = int(before.index[0])
        # A facilitator splits one card into a value of its own.
        own = s.add_canonical_value("demo", title="A value of its own", description="", policies=["A", "B"],
                                    origin="split", members=[card], provenance="split")
        # ...and edits another card's text, which must be embedded again. (A card from a value with
        # three or more members, so its old value plainly stays with the cards that did not change.)
        sizes = before.map(before.value_counts())
        edited = int(sizes[(sizes >= 3) & (before != before[card])].index[0])
        s._write(lambda cur: cur.execute("UPDATE values_cards SET title = 'Edited title' WHERE id = ?", [edited]))
        analyses.deduplicate(s, "demo", embedder=embedder)
        assert encoder.texts == 46
        after = s.card_links("demo").set_index("card_id")["canonical_id"]
        assert after[card] == own
        unchanged = [c for c in before.index if c not in (card, edited)]
        assert (after[unchanged] == before[unchanged]).all()


def test_dedup_command_names_a_bad_method_or_model(demo_db, tmp_path):
    with Store(demo_db) as s:
        links = s.card_links("demo")
    bad_method = runner.invoke(app, ["dedup", "--db", str(demo_db), "--method", "magic"])
    assert bad_method.exit_code != 0 and "--method must be 'two-stage' or 'embedding'" in bad_method.output
    missing = tmp_path / "no-model-here"
    bad_model = runner.invoke(app, ["dedup", "--db", str(demo_db), "--model", str(missing), "--no-llm"])
    assert bad_model.exit_code != 0
    assert f"embedding model folder {str(missing)!r} does not exist" in bad_model.output
    with Store(demo_db) as s:
        assert list(s.runs(deliberation_id="demo", kind="dedup")["status"]) == ["failed"]
        assert s.card_links("demo").equals(links), "a failed run changes no card's value"

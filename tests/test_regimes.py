"""The seed papers' regimes as recipes: fresh human folds, a fixed real:synthetic ratio, filtered
synthetic corpora, training from scratch; their config checks and what they add to the DAG."""

import json
import math

import numpy as np
import pytest
import yaml

from selfconsuming.config import ConfigError, validated_config
from selfconsuming.filtering import filter_table
from selfconsuming.recipes import gen0_key, replicate_seed, setup_recipe, target_ratio
from selfconsuming.training_data import (
    compose_training_corpus, composition, filter_keep, filter_seed, human_folds, starting_corpus,
)

from workflow_helpers import REPO, build_tiny_world_gpt2, dry_run_jobs, tiny_config, write_config

HUMAN = [{"id": f"h{i}", "title": "", "text": f"text {i}", "label": ("left", "center", "right")[i % 3]}
         for i in range(45)]
SETUPS = {
    "deterministic": {"decoding": "greedy"},
    "folds": {"decoding": "greedy", "fresh_human_folds": 5},
    "ratio2": {"decoding": "greedy", "synthetic_ratio": 2.0},
    "ratio_quarter": {"decoding": "greedy", "synthetic_ratio": 0.25},
    "share_half": {"decoding": "greedy", "synthetic_share": 0.5},
    "filtered": {"decoding": "greedy", "filter": {"by": "tqi", "drop": 0.2}},
    "scratch": {"decoding": "greedy", "init": "scratch", "synthetic_share": 0.5},
    "scratch_pre": {"decoding": "greedy", "init": "scratch", "scratch_pretrain_articles": 80, "synthetic_share": 0.2},
}


@pytest.fixture(scope="module")
def config():
    return validated_config({"setups": SETUPS, "data": {"source": "world", "per_label": 15}})


def synthetic_upto(generation, n=45):
    return {g: [{"id": f"s{i}@g{g}", "title": "", "text": f"synthetic {i} of {g}", "label": "center"} for i in range(n)]
            for g in range(generation)}


def test_folds_are_disjoint_cover_the_corpus_and_stay_balanced():
    folds = human_folds(HUMAN, 5, seed=7)
    ids = [a["id"] for fold in folds for a in fold]
    assert sorted(ids) == sorted(a["id"] for a in HUMAN) and len(ids) == len(set(ids))
    for fold in folds:
        assert sorted(a["label"] for a in fold) == ["center"] * 3 + ["left"] * 3 + ["right"] * 3


def test_generation_g_trains_on_fold_g_mod_k(config):
    recipe = setup_recipe(config, "folds")
    seed = replicate_seed(42, 1)
    seen = {}
    for g in range(1, 11):
        rows = compose_training_corpus(recipe, g, HUMAN, synthetic_upto(g), seed)
        fold = g % 5
        assert composition(rows) == {f"synthetic:g{g - 1}": 45, f"human:fold{fold}": 9}
        ids = frozenset(r["id"] for r in rows if r["origin"].startswith("human"))
        assert seen.setdefault(fold, ids) == ids  # the same fold every K generations
    assert len(set(seen.values())) == 5 and not set.intersection(*map(set, seen.values()))
    assert composition(compose_training_corpus(recipe, 0, HUMAN, {}, seed)) == {"human": 45}  # generation 0: every fold


def test_folds_depend_on_the_replicate_seed(config):
    recipe = setup_recipe(config, "folds")
    picks = [sorted(r["id"] for r in compose_training_corpus(recipe, 1, HUMAN, synthetic_upto(1), replicate_seed(42, k))
                    if r["origin"] != "synthetic:g0") for k in (0, 1)]
    assert picks[0] != picks[1]


@pytest.mark.parametrize("name, n_synthetic, expected", [
    ("ratio2", 45, {"synthetic:g1": 45, "human": 22}),          # real side subsampled: round(45 / 2)
    ("ratio_quarter", 45, {"synthetic:g1": 11, "human": 45}),   # synthetic side subsampled: round(0.25 x 45)
    ("share_half", 45, {"synthetic:g1": 45, "human": 45}),      # share 0.5 is ratio 1
    ("share_half", 30, {"synthetic:g1": 30, "human": 30}),
])
def test_ratio_subsamples_the_larger_side(config, name, n_synthetic, expected):
    recipe = setup_recipe(config, name)
    rows = compose_training_corpus(recipe, 2, HUMAN, synthetic_upto(2, n_synthetic), seed=3)
    assert composition(rows) == expected
    n_real, n_syn = expected["human"], expected["synthetic:g1"]
    assert abs(n_syn / n_real - target_ratio(recipe["data"])) <= 1 / min(n_real, n_syn)
    again = compose_training_corpus(recipe, 2, HUMAN, synthetic_upto(2, n_synthetic), seed=3)
    assert [r["id"] for r in again] == [r["id"] for r in rows]  # seeded
    other = compose_training_corpus(recipe, 2, HUMAN, synthetic_upto(2, n_synthetic), seed=4)
    if expected["human"] < 45 or expected["synthetic:g1"] < n_synthetic:
        assert sorted(r["id"] for r in other) != sorted(r["id"] for r in rows)


def test_ratio_zero_trains_on_real_articles_only(config):
    recipe = setup_recipe(validated_config({"setups": {"s": {"synthetic_share": 0.0}}}), "s")
    assert composition(compose_training_corpus(recipe, 3, HUMAN, synthetic_upto(3), seed=1)) == {"human": 45}


@pytest.mark.parametrize("higher_is_better", [True, False])
def test_filter_drops_exactly_the_worst_share(higher_is_better):
    rng = np.random.default_rng(0)
    scores = rng.normal(size=50)
    keep = filter_keep(scores, 0.2, higher_is_better, seed=1)
    assert keep.sum() == 40
    kept, dropped = scores[keep], scores[~keep]
    assert (kept.min() > dropped.max()) if higher_is_better else (kept.max() < dropped.min())


def test_filter_breaks_ties_by_a_seeded_draw_and_counts_nan_as_worst():
    scores = np.array([0.5] * 10 + [np.nan, 1.0])
    keep = filter_keep(scores, 0.25, True, seed=1)  # floor(0.25 x 12) = 3: the NaN and two of the tied
    assert keep.sum() == 9 and not keep[10] and keep[11]
    assert (filter_keep(scores, 0.25, True, seed=1) == keep).all()
    assert any((filter_keep(scores, 0.25, True, seed=s) != keep).any() for s in range(2, 10))


def test_filtered_setup_trains_on_what_the_filter_file_keeps(config):
    recipe = setup_recipe(config, "filtered")
    synthetic = synthetic_upto(3)
    seed = replicate_seed(42, 1)
    scores = {g: np.random.default_rng(g).random(45) for g in synthetic}
    tables = {g: filter_table(synthetic[g], scores[g], "tqi", 0.2, filter_seed(seed, "filtered", g)) for g in synthetic}
    rows = compose_training_corpus(recipe, 3, HUMAN, synthetic, seed,
                                   filter_scores={g: dict(zip(t["id"], t["score"])) for g, t in tables.items()})
    kept = set(tables[2].loc[tables[2]["kept"], "id"])
    assert {r["id"] for r in rows} == kept and len(kept) == 45 - math.floor(0.2 * 45)
    assert tables[2].loc[~tables[2]["kept"], "score"].max() < tables[2].loc[tables[2]["kept"], "score"].min()
    with pytest.raises(ValueError, match="scores of its generation-2 corpus are missing"):
        compose_training_corpus(recipe, 3, HUMAN, synthetic, seed)


def test_scratch_recipe_takes_the_pretraining_recipe_and_its_own_gen0(config):
    recipe = setup_recipe(config, "scratch")
    wg = config["model"]["world_gpt2"]
    assert recipe["finetune"]["init"] == "scratch"
    assert {k: recipe["finetune"][k] for k in ("epochs", "lr", "batch_size", "schedule", "warmup")} == \
        {k: wg[k] for k in ("epochs", "lr", "batch_size", "schedule", "warmup")}
    assert gen0_key(recipe) != gen0_key(setup_recipe(config, "deterministic"))
    # the gen-0 key of every other setup is what it was before the regimes existed
    assert gen0_key(setup_recipe(config, "folds")) == gen0_key(setup_recipe(config, "deterministic"))


def test_scratch_with_the_pretraining_corpus_puts_it_on_the_real_side(config):
    recipe = setup_recipe(config, "scratch_pre")
    pretrain = [{"id": f"p{i}", "title": "", "text": f"pre {i}", "label": "right"} for i in range(100)]
    rows = compose_training_corpus(recipe, 2, HUMAN, synthetic_upto(2), seed=1, pretrain=pretrain)
    counts = composition(rows)
    # real side: the pretraining sample (the starting corpus is not used); share 0.2 -> ratio 0.25
    assert counts == {"pretrain": 80, "synthetic:g1": 20}
    gen0 = compose_training_corpus(recipe, 0, HUMAN, {}, seed=1, pretrain=pretrain)
    assert composition(gen0) == {"human": 45, "pretrain": 80}
    sample = {r["id"] for r in gen0 if r["origin"] == "pretrain"}
    later = compose_training_corpus(recipe, 3, HUMAN, synthetic_upto(3, 10), seed=1, pretrain=pretrain)
    assert {r["id"] for r in later if r["origin"] == "pretrain"} < sample  # drawn from the same sample every generation
    assert composition(later) == {"pretrain": 40, "synthetic:g2": 10}  # the real side subsampled to 10 / 0.25


def test_scratch_init_is_a_fresh_model_with_the_base_architecture_and_tokenizer(tmp_path, config):
    import torch

    from selfconsuming.loop import fresh_model_like, train_generation
    from selfconsuming.models import load_causal_lm, load_tokenizer
    from selfconsuming.io import write_jsonl

    base = build_tiny_world_gpt2(tmp_path / "base")
    model, tokenizer = fresh_model_like(base, seed=5)
    trained = load_causal_lm(base)
    assert model.config.to_diff_dict() | {"architectures": None} == trained.config.to_diff_dict() | {"architectures": None}
    assert tokenizer.get_vocab() == load_tokenizer(base).get_vocab()
    fresh, _ = fresh_model_like(base, seed=5)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), fresh.state_dict().values()))
    other, _ = fresh_model_like(base, seed=6)
    assert not all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), other.state_dict().values()))

    human = [{**a, "text": "The council met on Tuesday. The vote was close."} for a in HUMAN[:6]]
    write_jsonl(human, tmp_path / "human.jsonl")
    write_jsonl([{**a, "id": a["id"] + "@g0"} for a in human], tmp_path / "g0.jsonl")
    recipe = setup_recipe({**config, "finetune": {**config["finetune"], "max_length": 64}}, "scratch")
    recipe["finetune"].update(epochs=1, batch_size=4)
    info = train_generation(recipe, 1, base, str(tmp_path / "human.jsonl"), {0: str(tmp_path / "g0.jsonl")},
                            str(tmp_path / "gen1"), seed=1)
    assert info["from_scratch"] and info["composition"] == {"synthetic:g0": 6, "human": 6}
    saved = json.loads((tmp_path / "gen1" / "training.json").read_text())
    assert saved["filtered"] == {"g0": {"articles": 6, "used": 6}}
    assert load_tokenizer(str(tmp_path / "gen1")).get_vocab() == load_tokenizer(base).get_vocab()


@pytest.mark.parametrize("setup, data, key", [
    ({"synthetic_ratio": 1.0, "synthetic_share": 0.5}, {}, "synthetic_share"),
    ({"fresh_human_folds": 3, "accumulate": True}, {}, "fresh_human_folds"),
    ({"fresh_human_folds": 3, "preserve_fraction": 0.1}, {}, "fresh_human_folds"),
    ({"fresh_human_folds": 16}, {"per_label": 15}, "fresh_human_folds"),
    ({"scratch_pretrain_articles": 10}, {}, "scratch_pretrain_articles"),
    ({"init": "scratch", "scratch_pretrain_articles": 5000}, {}, "scratch_pretrain_articles"),
    ({"filter": {"by": "oracle_valid", "drop": 0.2}}, {"source": "jsonl", "path": "."}, "filter.by"),
    ({"filter": {"by": "tqi", "drop": 1.0}}, {}, "filter"),
    ({"filter": {"by": "bleu", "drop": 0.2}}, {}, "filter"),
    ({"synthetic_share": 1.0}, {}, "synthetic_share"),
    ({"init": "random"}, {}, "init"),
])
def test_bad_regime_fields_fail_at_config_time_naming_the_key(setup, data, key):
    with pytest.raises(ConfigError) as err:
        validated_config({"setups": {"s": setup}, "data": {"source": "world", "per_label": 15, **data},
                          **({"model": {"base": "gpt2"}} if data.get("source") == "jsonl" else {})})
    assert key.split(".")[0] in str(err.value)


def test_regimes_config_is_valid_and_runs_each_regime_with_the_baseline():
    config = validated_config(yaml.safe_load((REPO / "config/regimes.yaml").read_text()))
    assert config["run"] == "regimes" and config["replicates"] >= 2 and config["data"]["source"] == "world"
    recipes = {name: setup_recipe(config, name) for name in config["setups"]}
    assert config["findings"]["baseline"] in recipes
    data = [r["data"] for r in recipes.values()]
    assert any(d["filter"] for d in data) and any(d["fresh_human_folds"] for d in data)
    assert any(target_ratio(d) for d in data)
    assert any(r["finetune"]["init"] == "scratch" for r in recipes.values())


@pytest.mark.slow
def test_a_filtering_setup_adds_only_its_own_jobs(tmp_path):
    base = build_tiny_world_gpt2(tmp_path / "tiny-gpt2")
    config = tiny_config(base)
    plain = {(r, w) for r, w in dry_run_jobs(tmp_path, write_config(config, tmp_path / "plain.yaml"))}
    config["setups"]["filtered"] = {"decoding": "greedy", "filter": {"by": "oracle_valid", "drop": 0.34}}
    filtered = {(r, w) for r, w in dry_run_jobs(tmp_path, write_config(config, tmp_path / "filtered.yaml"))}
    assert plain <= filtered  # nothing of the other setups changes
    added = filtered - plain
    assert added and all("filtered" in w for _, w in added)
    assert ("filter_synthetic", "setup=filtered, rep=0, g=0") in added
    assert not any(r == "filter_synthetic" and "filtered" not in w for r, w in filtered)


def test_regimes_table_reads_each_metric_in_its_own_direction():
    from selfconsuming.inference import regimes_table, regimes_table_html

    def row(setup, metric, effect, estimate, verdict):
        return {"setup": setup, "metric": metric, "effect": effect, "estimate": estimate, "ci_lo": estimate - 0.1,
                "ci_hi": estimate + 0.1, "p": 0.01, "p_adj": 0.01, "verdict": verdict, "method": "m", "n_replicates": 2}

    import pandas as pd

    findings = pd.DataFrame([
        row("deterministic", "oracle_valid_mean", "change", -0.3, "decrease"),
        row("filtered", "oracle_valid_mean", "vs_baseline", 0.2, "increase"),   # lost less validity: slower collapse
        row("deterministic", "oracle_share_right", "change", 0.4, "increase"),
        row("filtered", "oracle_share_right", "vs_baseline", 0.3, "increase"),  # more right drift: faster
        row("folds", "oracle_share_right", "vs_baseline", -0.3, "decrease"),    # less right drift: slower
        row("folds", "oracle_valid_mean", "vs_baseline", 0.05, "no evidence"),
        row("folds", "oracle_valid_mean", "change", 0.05, "no evidence"),       # not a comparison: not shown
    ])
    table = regimes_table(findings, "deterministic")
    verdicts = {(r.setup, r.metric): r.regime_verdict for r in table.itertuples()}
    assert verdicts == {("deterministic", "oracle_valid_mean"): "decrease", ("filtered", "oracle_valid_mean"): "slower",
                        ("folds", "oracle_valid_mean"): "no evidence",
                        ("deterministic", "oracle_share_right"): "increase",
                        ("filtered", "oracle_share_right"): "faster", ("folds", "oracle_share_right"): "slower"}
    page = regimes_table_html(findings, "deterministic")
    assert "slower: 0.2 [0.1, 0.3]" in page and "deterministic (its own change)" in page

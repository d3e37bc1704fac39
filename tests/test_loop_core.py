"""The core of the loop without running it: recipes, training-corpus composition, seeds, code closure."""

import os
from pathlib import Path

import pytest

from selfconsuming.code_deps import code_stamp, script_modules
from selfconsuming.config import schema_defaults
from selfconsuming.recipes import (
    base_decoding_of, base_decodings, gen0_key, replicate_seed, setup_recipe, stable_seed, synthetic_generations_for,
)
from selfconsuming.training_data import compose_training_corpus, composition, preserved_count

REPO = Path(__file__).resolve().parents[1]
CONFIG = {
    "finetune": {**schema_defaults("finetune"), "epochs": 3, "lr": 5e-4, "batch_size": 8, "weight_decay": 0.01, "max_length": 256, "init": "previous"},
    "synthesis": {"block_tokens": 64, "new_tokens": 64, "batch_size": 64, "num_beams": 10, "top_p": 0.9,
                  "temperature": 1.0},
    "setups": {
        "deterministic": {"decoding": "greedy"},
        "beam": {"decoding": "beam", "num_beams": 4},
        "nucleus": {"decoding": "nucleus", "top_p": 0.8},
        "overfit": {"decoding": "greedy", "epochs": 10, "weight_decay": 0.0},
        "preserve": {"decoding": "greedy", "preserve_fraction": 0.1},
        "accumulate": {"decoding": "greedy", "accumulate": True},
        "last2": {"decoding": "greedy", "window": 2},
        "budget": {"decoding": "greedy", "accumulate": True, "synthetic_budget": 5},
        "center": {"decoding": "greedy", "start_labels": ["center"]},
    },
}
HUMAN = [{"id": f"h{i}", "title": "", "text": f"text {i}", "label": ("left", "center", "right")[i % 3]}
         for i in range(45)]


def recipe(name):
    return setup_recipe(CONFIG, name)


def synthetic_for(name, generation):
    start = [a for a in HUMAN if not recipe(name)["data"]["start_labels"] or a["label"] in recipe(name)["data"]["start_labels"]]
    return {g: [{**a, "id": f"{a['id']}@g{g}"} for a in start] for g in range(generation)}


def test_recipe_overlays_the_setup_on_the_defaults():
    r = recipe("overfit")
    assert r["finetune"]["epochs"] == 10 and r["finetune"]["weight_decay"] == 0.0
    assert r["finetune"]["lr"] == 5e-4  # not overridden: from finetune
    assert recipe("beam")["synthesis"]["num_beams"] == 4
    assert recipe("nucleus")["synthesis"]["top_p"] == 0.8
    assert recipe("deterministic")["data"] == {"preserve_fraction": 0.0, "accumulate": False, "window": 1,
                                               "start_labels": [], "synthetic_budget": None,
                                               "fresh_human_folds": None, "synthetic_ratio": None,
                                               "synthetic_share": None, "filter": None,
                                               "scratch_pretrain_articles": None}


@pytest.mark.parametrize("name, generation, expected", [
    ("deterministic", 0, {"human": 45}),
    ("deterministic", 3, {"synthetic:g2": 45}),
    ("preserve", 3, {"synthetic:g2": 45, "human": 5}),  # ceil(0.1 * 45) = 5
    ("accumulate", 3, {"human": 45, "synthetic:g0": 45, "synthetic:g1": 45, "synthetic:g2": 45}),
    ("last2", 3, {"synthetic:g1": 45, "synthetic:g2": 45}),
    ("last2", 1, {"synthetic:g0": 45}),
    ("center", 2, {"synthetic:g1": 15}),
    ("center", 0, {"human": 15}),
])
def test_composition_per_setup_and_generation(name, generation, expected):
    rows = compose_training_corpus(recipe(name), generation, HUMAN, synthetic_for(name, generation), seed=1)
    assert composition(rows) == expected


def test_budget_subsamples_the_synthetic_pool_only():
    rows = compose_training_corpus(recipe("budget"), 3, HUMAN, synthetic_for("budget", 3), seed=1)
    counts = composition(rows)
    assert counts["human"] == 45 and sum(v for k, v in counts.items() if k != "human") == 5


def test_missing_synthetic_corpus_is_an_error_naming_it():
    with pytest.raises(ValueError, match=r"generations \[1\]"):
        compose_training_corpus(recipe("last2"), 3, HUMAN, {2: []}, seed=1)


def test_preserved_count_is_a_ceiling_without_float_surprises():
    assert preserved_count(0.1, 45) == 5
    assert preserved_count(0.1, 30) == 3  # 0.1 * 30 = 3.0000000000000004 in floats
    assert preserved_count(0.01, 10) == 1
    assert preserved_count(1.0, 7) == 7


def test_preserved_articles_depend_on_the_replicate_seed():
    r = recipe("preserve")
    picks = {seed: sorted(x["id"] for x in compose_training_corpus(r, 2, HUMAN, synthetic_for("preserve", 2), seed)
                          if x["origin"] == "human") for seed in (replicate_seed(42, 0), replicate_seed(42, 1))}
    assert picks[replicate_seed(42, 0)] != picks[replicate_seed(42, 1)]
    again = sorted(x["id"] for x in compose_training_corpus(r, 2, HUMAN, synthetic_for("preserve", 2), replicate_seed(42, 1))
                   if x["origin"] == "human")
    assert again == picks[replicate_seed(42, 1)]


def test_gen0_key_is_shared_exactly_when_the_training_recipe_agrees():
    keys = {name: gen0_key(recipe(name)) for name in CONFIG["setups"]}
    assert keys["deterministic"] == keys["beam"] == keys["nucleus"] == keys["preserve"] == keys["accumulate"]
    assert keys["overfit"] != keys["deterministic"]
    assert keys["center"] != keys["deterministic"]  # another starting corpus


def test_seeds_are_stable_and_distinct():
    assert stable_seed(42, "nucleus", 3, "synthesis") == stable_seed(42, "nucleus", 3, "synthesis")
    assert stable_seed(42, "nucleus", 3, "synthesis") != stable_seed(42, "nucleus", 4, "synthesis")
    assert 0 <= stable_seed(42, "x") < 2**31
    assert replicate_seed(42, 0) == 42  # replicate 0 is the single-trajectory run
    assert len({replicate_seed(42, r) for r in range(5)}) == 5


def test_synthetic_generations_for_window_and_accumulate():
    assert synthetic_generations_for(recipe("deterministic"), 0) == []
    assert synthetic_generations_for(recipe("deterministic"), 5) == [4]
    assert synthetic_generations_for(recipe("last2"), 5) == [3, 4]
    assert synthetic_generations_for(recipe("accumulate"), 3) == [0, 1, 2]


def test_base_decodings_one_per_distinct_decoding():
    recipes = {name: recipe(name) for name in CONFIG["setups"]}
    named = base_decodings(recipes)
    assert set(named) == {"base-greedy", "base-beam", "base-nucleus"}
    assert named["base-beam"]["synthesis"]["num_beams"] == 4
    assert base_decoding_of(recipes, "overfit") == "base-greedy"
    other = {**recipes, "beam2": setup_recipe({**CONFIG, "setups": {"beam2": {"decoding": "beam", "num_beams": 2}}}, "beam2")}
    assert set(base_decodings(other)) == {"base-greedy", "base-beam", "base-beam-2", "base-nucleus"}


def test_code_closure_follows_relative_and_package_imports(tmp_path):
    pkg = tmp_path / "selfconsuming"
    (pkg / "sub" / "data").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import f\n")
    (pkg / "b.py").write_text("def f():\n    from selfconsuming.sub import g\n")
    (pkg / "sub" / "__init__.py").write_text("from .deep import g\n")
    (pkg / "sub" / "deep.py").write_text("import json\ng = 1\n")
    (pkg / "sub" / "data" / "bank.yaml").write_text("x: 1\n")
    (pkg / "unused.py").write_text("")
    script = tmp_path / "rule.py"
    script.write_text("from selfconsuming import a\n")
    names = {str(p.relative_to(tmp_path)) for p in script_modules(script, tmp_path)}
    assert names == {"selfconsuming/__init__.py", "selfconsuming/a.py", "selfconsuming/b.py",
                     "selfconsuming/sub/__init__.py", "selfconsuming/sub/deep.py", "selfconsuming/sub/data/bank.yaml"}


def test_code_stamp_lists_the_closure_and_is_as_new_as_its_newest_file(tmp_path):
    pkg = tmp_path / "selfconsuming"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("x = 1\n")
    script = tmp_path / "rule.py"
    script.write_text("from selfconsuming import a\n")
    for i, f in enumerate((pkg / "__init__.py", pkg / "a.py")):
        os.utime(f, ns=(10**18 + i, 10**18 + i))
    stamp = code_stamp(script, tmp_path, tmp_path / ".code")
    listing = stamp.read_text()
    assert stamp.name == "rule.txt"
    assert [line.split()[1] for line in listing.splitlines()] == ["selfconsuming/__init__.py", "selfconsuming/a.py"]
    assert stamp.stat().st_mtime_ns == 10**18 + 1
    os.utime(stamp, ns=(5, 5))  # out of date: the next parse sets it back
    assert code_stamp(script, tmp_path, tmp_path / ".code").stat().st_mtime_ns == 10**18 + 1
    # an edit: the stamp is as new as the edited file and its content differs (Snakemake compares
    # checksums too: a newer input with the recorded checksum does not count as updated)
    (pkg / "a.py").write_text("x = 2\n")
    assert code_stamp(script, tmp_path, tmp_path / ".code").stat().st_mtime_ns == (pkg / "a.py").stat().st_mtime_ns
    assert stamp.read_text() != listing
    (pkg / "a.py").write_text("x = 1\n")  # reverted (and re-dated): the stamp is as it was
    os.utime(pkg / "a.py", ns=(10**18 + 1, 10**18 + 1))
    assert code_stamp(script, tmp_path, tmp_path / ".code").read_text() == listing
    assert stamp.stat().st_mtime_ns == 10**18 + 1


def test_every_rule_script_reaches_text_py_where_it_turns_articles_into_model_input():
    scripts = REPO / "scripts"
    for name in ("finetune.py", "synthesize.py", "pretrain_base.py", "train_classifier.py", "score_bias.py"):
        files = {p.name for p in script_modules(scripts / name, scripts)}
        assert "text.py" in files and "io.py" in files, name


def test_the_job_server_is_no_code_dependency():
    """How a job runs (a fresh python or a preloaded worker) never changes what it computes:
    editing the job server must not re-run the model jobs that hand themselves to it."""
    scripts = REPO / "scripts"
    for name in ("finetune.py", "synthesize.py", "score_quality.py"):
        assert "from selfconsuming.jobserver import delegate" in (scripts / name).read_text()
        assert "jobserver.py" not in {p.name for p in script_modules(scripts / name, scripts)}, name

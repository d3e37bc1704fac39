"""Figures and tables run on small fake tables and write what they promise."""

import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from selfconsuming import LEANINGS
from selfconsuming import figures, tables

DIVERSITY = ["unique_1", "unique_2", "unique_3", "distinct_1", "distinct_2", "distinct_3",
             "self_bleu_diversity", "semantic_diversity", "syntactic_diversity"]


def _interval(p, n):
    half = 1.96 * np.sqrt(p * (1 - p) / n)
    return max(p - half, 0.0), min(p + half, 1.0)


def _row(setup, generation, kind, shares, quality, n, rng, oracle=True, replicate=-1,
         decoding="greedy"):
    row = {"setup": setup, "replicate": replicate, "generation": generation, "kind": kind,
           "decoding": decoding, "n_articles": n}
    oracle_n = int(n * rng.uniform(0.5, 0.95)) if oracle else np.nan
    row["oracle_n"] = oracle_n
    for leaning, p in zip(LEANINGS, shares):
        row[f"share_{leaning}"] = p
        row[f"share_{leaning}_lo"], row[f"share_{leaning}_hi"] = _interval(p, n)
        op = float(np.clip(p + rng.normal(0, 0.02), 0.01, 0.99)) if oracle else np.nan
        row[f"oracle_share_{leaning}"] = op
        lo, hi = _interval(op, oracle_n) if oracle else (np.nan, np.nan)
        row[f"oracle_share_{leaning}_lo"], row[f"oracle_share_{leaning}_hi"] = lo, hi
    valid = float(np.clip(quality + rng.normal(0, 0.02), 0, 1)) if oracle else np.nan
    row["oracle_valid_mean"] = valid
    row["oracle_valid_lo"], row["oracle_valid_hi"] = valid - 0.02, valid + 0.02
    row["tqi_mean"] = 3 * quality  # TQI is on a 0-3 scale
    row["tqi_lo"], row["tqi_hi"] = 3 * quality - 0.08, min(3 * quality + 0.08, 3.0)
    ppl = 20 + 60 * (1 - quality) + rng.normal(0, 1)
    row.update(ppl_mean=ppl, ppl_lo=ppl - 2, ppl_hi=ppl + 2, ppl_median=ppl - 3)
    diversity = 0.5 + 0.5 * quality
    for k in (1, 2, 3):
        row[f"unique_{k}"] = min(0.25 * k * diversity + rng.normal(0, 0.005), 1.0)
        row[f"distinct_{k}"] = min(0.2 * k * diversity, 1.0)
    row["self_bleu_diversity"] = 0.7 * diversity
    row["semantic_diversity"] = 0.6 * diversity
    row["syntactic_diversity"] = 0.4 * diversity
    return row


DECODINGS = {"deterministic": "greedy", "beam": "beam", "nucleus": "nucleus"}


def fake_summary(setups=("deterministic", "preserve"), generations=3, seed=0, n=300,
                 oracle=True, replicates=1):
    """A plausible summary.csv in the workflow's shape: references (human, sampled base,
    base-<decoding> per decoding used) and `replicates` runs per setup in which the right
    share drifts up and quality decays per generation, each run with its own noise."""
    rng = np.random.default_rng(seed)
    rows = [_row("human", -1, "human", (1 / 3, 1 / 3, 1 / 3), 0.95, n, rng, oracle,
                 decoding="human"),
            _row("base", -1, "base", (0.25, 0.3, 0.45), 0.9, 5 * n, rng, oracle,
                 decoding="nucleus")]
    for decoding in dict.fromkeys(DECODINGS.get(s, "greedy") for s in setups):
        rows.append(_row(f"base-{decoding}", -1, "base", (0.2, 0.45, 0.35), 0.9, n, rng,
                         oracle, decoding=decoding))
    for i, setup in enumerate(setups):
        drift = 0.01 + 0.008 * i
        decay = 0.02 + 0.01 * (i % 3)
        for r in range(replicates):
            shift = rng.normal(0, 0.004)
            for g in range(generations):
                right = min(0.36 + (drift + shift) * g + rng.normal(0, 0.01), 0.9)
                left = max(0.30 - drift * g * 0.7 + rng.normal(0, 0.01), 0.02)
                quality = max(0.92 - decay * g + rng.normal(0, 0.01), 0.05)
                rows.append(_row(setup, g, "model", (left, 1 - left - right, right), quality,
                                 n, rng, oracle, replicate=r,
                                 decoding=DECODINGS.get(setup, "greedy")))
    return pd.DataFrame(rows)


def fake_scores(summary, n=20, seed=0):
    """Per-article scores consistent with the summary's TQI means."""
    rng = np.random.default_rng(seed)
    rows = []
    for _, r in summary.iterrows():
        setup = r["setup"]
        for i in range(n):
            probs = rng.dirichlet([r["share_left"] * 5, r["share_center"] * 5,
                                   r["share_right"] * 5])
            rows.append({"id": f"a{i:03d}", "setup": setup, "generation": r["generation"],
                         "replicate": r["replicate"],
                         "p_left": probs[0], "p_center": probs[1], "p_right": probs[2],
                         "label": LEANINGS[int(np.argmax(probs))],
                         "tqi": float(np.clip(rng.normal(r["tqi_mean"], 0.25), 0, 3)),
                         "ppl": float(rng.lognormal(np.log(r["ppl_mean"]), 0.3))})
    return pd.DataFrame(rows)


def _assert_written(paths):
    png, pdf = paths
    assert png.exists() and png.stat().st_size > 1000
    assert pdf.exists() and pdf.stat().st_size > 1000
    assert png.read_bytes()[:4] == b"\x89PNG" and pdf.read_bytes()[:4] == b"%PDF"


@pytest.fixture
def summary():
    return fake_summary()


# ---------------------------------------------------------------- colours

def test_study_colours_are_fixed_and_distinct():
    a = figures.setup_colours(["beam", "deterministic"])
    b = figures.setup_colours(figures.STUDY_SETUPS)
    assert a["beam"] == b["beam"] and a["deterministic"] == b["deterministic"]
    assert len({b[s] for s in figures.STUDY_SETUPS}) == 6
    assert b["human"] == "#000000" and b["base"] == "#7f7f7f"


def test_unknown_setups_get_distinct_stable_colours():
    names = list(figures.STUDY_SETUPS) + ["center_only", "window3", "lr_high"]
    colours = figures.setup_colours(names)
    assert len({colours[s] for s in names}) == len(names)
    assert colours == figures.setup_colours(list(reversed(names)))
    assert all(colours[s] not in (colours["human"], colours["base"]) for s in names)


# ---------------------------------------------------------------- figures

def test_leaning_distribution(summary, tmp_path):
    _assert_written(figures.plot_leaning_distribution(summary, tmp_path / "lean.png"))


@pytest.mark.parametrize("leaning", LEANINGS)
def test_share_across_generations(summary, tmp_path, leaning):
    paths = figures.plot_share_across_generations(summary, tmp_path / f"{leaning}.png",
                                                  leaning=leaning, setups=["preserve"],
                                                  title="Mitigation")
    _assert_written(paths)


def test_share_rejects_bad_leaning_and_setup(summary, tmp_path):
    with pytest.raises(ValueError, match="leaning"):
        figures.plot_share_across_generations(summary, tmp_path / "x.png", leaning="up")
    with pytest.raises(ValueError, match="nucleus"):
        figures.plot_share_across_generations(summary, tmp_path / "x.png", setups=["nucleus"])


def test_all_shares(summary, tmp_path):
    _assert_written(figures.plot_all_shares(summary, tmp_path / "all.png", None))


@pytest.mark.parametrize("metric", ["tqi", "ppl", "oracle_valid", "ppl_median"])
def test_metric_across_generations(summary, tmp_path, metric):
    _assert_written(figures.plot_metric_across_generations(
        summary, tmp_path / f"{metric}.png", metric, "label (unit)"))


def test_metric_missing_column_names_it(summary, tmp_path):
    with pytest.raises(ValueError, match="bleurt"):
        figures.plot_metric_across_generations(summary, tmp_path / "x.png", "bleurt", "y")


def test_tqi_distributions(summary, tmp_path):
    _assert_written(figures.plot_tqi_distributions(fake_scores(summary), tmp_path / "tqi.png"))


def test_diversity(summary, tmp_path):
    _assert_written(figures.plot_diversity(summary, tmp_path / "div.png"))


def test_oracle_vs_classifier(summary, tmp_path):
    _assert_written(figures.plot_oracle_vs_classifier(summary, tmp_path / "oracle.png"))


def test_oracle_figure_without_oracle(tmp_path):
    _assert_written(figures.plot_oracle_vs_classifier(fake_summary(oracle=False),
                                                      tmp_path / "oracle.png"))


def test_unknown_setup_is_plotted(tmp_path):
    summary = fake_summary(setups=("deterministic", "center_only"))
    _assert_written(figures.plot_share_across_generations(summary, tmp_path / "s.png"))
    _assert_written(figures.plot_leaning_distribution(summary, tmp_path / "l.png"))


def test_figure_path_must_be_png(summary, tmp_path):
    with pytest.raises(ValueError, match=".png"):
        figures.plot_all_shares(summary, tmp_path / "x.svg")


def test_metric_without_values_writes_a_message_figure(tmp_path):
    _assert_written(figures.plot_metric_across_generations(
        fake_summary(oracle=False), tmp_path / "valid.png", "oracle_valid", None))


def _all_figures(summary, scores, out, labels=None):
    """Every figure make_figures draws, from one summary."""
    return [
        figures.plot_leaning_distribution(summary, out / "lean.png", labels=labels),
        figures.plot_share_across_generations(summary, out / "right.png", "right", labels=labels),
        figures.plot_all_shares(summary, out / "all.png", labels=labels),
        figures.plot_metric_across_generations(summary, out / "tqi.png", "tqi", labels=labels),
        figures.plot_metric_across_generations(summary, out / "ppl.png", "ppl", log=True,
                                               labels=labels),
        figures.plot_tqi_distributions(scores, out / "tqid.png", labels=labels),
        figures.plot_diversity(summary, out / "div.png", labels=labels),
        figures.plot_oracle_vs_classifier(summary, out / "oracle.png", labels=labels),
    ]


def test_every_figure_renders_with_three_replicates(tmp_path):
    summary = fake_summary(setups=("deterministic", "beam", "preserve"), replicates=3)
    for paths in _all_figures(summary, fake_scores(summary, n=8), tmp_path):
        _assert_written(paths)


def test_a_summary_without_replicate_column_still_renders(tmp_path):
    summary = fake_summary().drop(columns=["replicate", "decoding", "oracle_n"])
    _assert_written(figures.plot_leaning_distribution(summary, tmp_path / "lean.png"))
    _assert_written(figures.plot_share_across_generations(summary, tmp_path / "right.png"))
    _assert_written(figures.plot_oracle_vs_classifier(summary, tmp_path / "oracle.png"))
    assert len(tables.summary_table(summary)) == len(summary)


def test_replicate_summary_is_mean_with_t_interval_across_replicates():
    summary = fake_summary(replicates=4)
    bands = figures.replicate_summary(summary, "share_right", ["preserve"])
    values = summary.loc[(summary["setup"] == "preserve") & (summary["generation"] == 2),
                         "share_right"].to_numpy()
    lo, hi = stats.t.interval(0.95, 3, loc=values.mean(), scale=stats.sem(values))
    got = bands[bands["generation"] == 2].iloc[0]
    assert got["n_replicates"] == 4 and got["basis"] == "replicates"
    assert got["mean"] == pytest.approx(values.mean())
    assert (got["lo"], got["hi"]) == pytest.approx((lo, hi))
    assert "R = 4 replicates" in figures.spread_note(bands)


def test_a_share_band_is_cut_at_0_and_100_percent_and_the_note_says_so():
    summary = fake_summary(replicates=3)
    cell = (summary["setup"] == "preserve") & (summary["generation"] == 1)
    summary.loc[cell, "share_right"] = [0.01, 0.02, 0.30]  # a t interval over 3 replicates reaches below 0
    raw = figures.replicate_summary(summary, "share_right", ["preserve"])
    assert raw.loc[raw["generation"] == 1, "lo"].iloc[0] < 0
    bands = figures.cut_to_range(raw, "share_right")
    got = bands[bands["generation"] == 1].iloc[0]
    assert got["lo"] == 0.0 and got["hi"] == raw.loc[raw["generation"] == 1, "hi"].iloc[0] and got["cut"]
    assert not bands.loc[bands["generation"] != 1, "cut"].any()
    assert figures.spread_note(bands).endswith("95% t CI across replicates, clipped")
    assert "clipped" not in figures.spread_note(figures.cut_to_range(raw[raw["generation"] != 1], "share_right"))
    ppl = figures.cut_to_range(raw.assign(lo=-5.0, hi=1e9), "ppl_mean")  # perplexity: at least 1, no top
    assert (ppl["lo"] == 1.0).all() and (ppl["hi"] == 1e9).all()
    untouched = figures.cut_to_range(raw, "not_a_known_metric")
    assert untouched["lo"].equals(raw["lo"].astype(float)) and not untouched["cut"].any()


def test_single_replicate_keeps_the_corpus_interval_and_says_so():
    summary = fake_summary(replicates=1)
    bands = figures.replicate_summary(summary, "share_right", ["preserve"])
    row = summary[(summary["setup"] == "preserve") & (summary["generation"] == 1)].iloc[0]
    got = bands[bands["generation"] == 1].iloc[0]
    assert got["basis"] == "corpus"
    assert (got["lo"], got["hi"]) == (row["share_right_lo"], row["share_right_hi"])
    assert figures.spread_note(bands) == "R = 1 replicate: 95% CI within the corpus"


def test_leaning_bars_put_each_generation_0_under_the_base_model_with_its_decoding():
    summary = fake_summary(setups=("deterministic", "beam", "preserve"), replicates=2)
    groups = figures._leaning_bars(summary)
    names = [[bar["label"] for bar in group] for group in groups]
    assert names == [["human corpus", "base model, sampled (nucleus)"],
                     ["base model, greedy", "deterministic, gen 0", "preserve, gen 0"],
                     ["base model, beam", "beam, gen 0"]]
    beam = groups[2][1]
    gen0 = summary[(summary["setup"] == "beam") & (summary["generation"] == 0)]
    assert beam["mean"][2] == pytest.approx(gen0["share_right"].mean())
    assert sorted(beam["points"][2]) == sorted(gen0["share_right"])


def test_setup_labels_state_the_run_recipe():
    from selfconsuming.config import validated_config
    from selfconsuming.recipes import setup_recipe

    config = yaml.safe_load((REPORT_DIR.parents[1] / "config" / "config.yaml").read_text())
    config["finetune"]["epochs"] = 3
    config["setups"] = {"deterministic": {"decoding": "greedy"},
                        "beam": {"decoding": "beam", "num_beams": 7},
                        "overfit": {"decoding": "greedy", "epochs": 12, "weight_decay": 0.0},
                        "preserve": {"decoding": "greedy", "preserve_fraction": 0.1}}
    config = validated_config(config)
    recipes = {s: setup_recipe(config, s) for s in config["setups"]}
    labels = figures.setup_labels(recipes, n_human=45)
    assert labels == {"deterministic": "deterministic (greedy)", "beam": "beam (7 beams)",
                      "overfit": "overfit (12 epochs, wd 0)",
                      "preserve": "preserve (+5 real, 10%)"}  # ceil(0.1 * 45) = 5


# ---------------------------------------------------------------- tables
def test_classifier_table_orders_chosen_first_and_keeps_values(tmp_path):
    metrics = pd.DataFrame({
        "backbone": ["minilm", "roberta-base"], "val_macro_f1": [0.81, 0.92],
        "test_macro_f1": [0.80, 0.915], "val_accuracy": [0.82, 0.93],
        "test_accuracy": [0.81, 0.92], "n_train": [1000, 1000], "n_val": [200, 200],
        "n_test": [300, 300], "chosen": [False, True]})
    table = tables.classifier_table(metrics)
    assert list(table["backbone"]) == ["roberta-base", "minilm"]
    assert table.loc[0, "chosen"] == "yes"
    html_path, csv_path = tables.write_data_table(table, tmp_path / "clf.html", "Classifier")
    page = html_path.read_text()
    assert "<caption>Classifier</caption>" in page
    assert "0.915" in page and "roberta-base" in page
    assert pd.read_csv(csv_path)["test macro F1"].tolist() == [0.915, 0.80]


def test_classifier_table_names_missing_column():
    with pytest.raises(ValueError, match="test_macro_f1"):
        tables.classifier_table(pd.DataFrame({"backbone": ["x"], "val_macro_f1": [0.5]}))


def test_summary_table_formats_shares_with_intervals(tmp_path):
    summary = fake_summary()
    table = tables.summary_table(summary)
    assert list(table["setup"][:3]) == ["human corpus", "base model, sampled (nucleus)",
                                        "base model, greedy"]
    assert len(table) == len(summary)
    row = summary[(summary["setup"] == "preserve") & (summary["generation"] == 2)].iloc[0]
    shown = table[(table["setup"] == "preserve") & (table["generation"] == 2)].iloc[0]
    expected = f"{row['share_right'] * 100:.1f} [{row['share_right_lo'] * 100:.1f}, " \
               f"{row['share_right_hi'] * 100:.1f}]"
    assert shown["right % [95% CI]"] == expected and shown["replicates"] == 1
    assert shown["oracle n"] == row["oracle_n"]
    page = tables.write_html_table(table, tmp_path / "s.html", "Summary").read_text()
    assert expected in page
    assert "oracle right % [95% CI]" in table.columns
    assert "oracle right % [95% CI]" not in tables.summary_table(fake_summary(oracle=False))


def test_summary_table_shows_replicate_mean_and_t_interval():
    summary = fake_summary(replicates=3)
    table = tables.summary_table(summary)
    assert len(table) == 3 + 2 * 3  # references, then one row per setup x generation
    cell = summary[(summary["setup"] == "deterministic") & (summary["generation"] == 1)]
    values = cell["tqi_mean"].to_numpy()
    lo, hi = stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
    shown = table[(table["setup"] == "deterministic") & (table["generation"] == 1)].iloc[0]
    assert shown["replicates"] == 3
    assert shown["TQI [95% CI]"] == f"{values.mean():.3f} [{lo:.3f}, {hi:.3f}]"


def test_diversity_table_is_metric_by_generation():
    summary = fake_summary(setups=("deterministic", "preserve"), generations=3)
    table = tables.diversity_table(summary)
    assert list(table.columns) == ["setup", "replicates", "metric", "human", "base (sampled)",
                                   "base (same decoding)", "gen 0", "gen 1", "gen 2"]
    assert len(table) == 2 * 9
    got = table[(table["setup"] == "preserve") & (table["metric"] == "distinct_2")].iloc[0]
    want = summary[(summary["setup"] == "preserve") & (summary["generation"] == 1)]
    assert got["gen 1"] == pytest.approx(want["distinct_2"].iloc[0])
    assert got["human"] == pytest.approx(summary.loc[summary["kind"] == "human", "distinct_2"].iloc[0])
    like = summary.loc[summary["setup"] == "base-greedy", "distinct_2"].iloc[0]
    assert got["base (same decoding)"] == pytest.approx(like)


def test_diversity_table_with_replicates_shows_mean_and_half_width():
    summary = fake_summary(replicates=3)
    table = tables.diversity_table(summary)
    got = table[(table["setup"] == "deterministic") & (table["metric"] == "unique_1")].iloc[0]
    values = summary.loc[(summary["setup"] == "deterministic") & (summary["generation"] == 2),
                         "unique_1"].to_numpy()
    half = stats.t.ppf(0.975, 2) * stats.sem(values)
    assert got["replicates"] == 3 and got["gen 2"] == f"{values.mean():.3f} ± {half:.3f}"


def test_neuron_sets_table_renders_any_columns(tmp_path):
    sets = pd.DataFrame({"kind": ["weights", "activations"], "n_bias": [12, 30],
                         "n_quality": [40, 55], "n_both": [3, 9], "n_union": [49, 76],
                         "jaccard": [3 / 49, 9 / 76]})
    table = tables.neuron_sets_table(sets)
    assert "n bias" in table.columns and table.loc[1, "jaccard"] == 0.118
    page = tables.write_html_table(table, tmp_path / "n.html", "Neurons").read_text()
    assert "activations" in page and "0.118" in page
    with pytest.raises(ValueError, match="empty"):
        tables.neuron_sets_table(pd.DataFrame())


def test_neuron_sets_table_spreads_the_tidy_form():
    tidy = pd.DataFrame({"source": ["weight"] * 3 + ["activation"] * 3,
                         "quantity": ["n_bias", "n_quality", "jaccard"] * 2,
                         "value": [12.0, 40.0, 0.05, 30.0, 55.0, 0.125]})
    table = tables.neuron_sets_table(tidy)
    assert list(table.columns) == ["source", "n bias", "n quality", "jaccard"]
    assert list(table["source"]) == ["weight", "activation"]
    assert table.loc[1, "n quality"] == 55 and table.loc[1, "jaccard"] == 0.125


def _corpora():
    human = [{"id": f"a{i:03d}", "title": f"Title {i}", "text": f"Human text {i} & more",
              "label": "left"} for i in range(4)]
    synthetic = {}
    for setup in ("deterministic", "preserve"):
        for g in range(4):
            # a000 is missing from one corpus, so a001 is the first id present everywhere
            ids = [1, 2, 3] if (setup, g) == ("preserve", 3) else [0, 1, 2, 3]
            synthetic[(setup, g)] = [{"id": f"a{i:03d}", "title": f"Title {i}",
                                      "text": f"{setup} gen{g} text {i}"} for i in ids]
    return human, synthetic


def test_example_continuations_picks_common_article_and_existing_generations():
    human, synthetic = _corpora()
    scores = fake_scores(fake_summary(generations=4), n=4)
    page = tables.example_continuations(human, synthetic, scores)
    assert "Article a001" in page and "Human text 1 &amp; more" in page
    # generation 4 and 10 do not exist: 0 and the last one (3) are shown
    assert "deterministic gen0 text 1" in page and "preserve gen3 text 1" in page
    assert "gen1 text" not in page and "gen2 text" not in page
    tqi = scores[(scores["id"] == "a001") & (scores["setup"] == "preserve")
                 & (scores["generation"] == 3)]["tqi"].iloc[0]
    assert f"{tqi:.3f}" in page


def test_example_continuations_with_given_article():
    human, synthetic = _corpora()
    page = tables.example_continuations(human, synthetic, None, article_id="a000",
                                        generations=(0, 3))
    assert "deterministic gen3 text 0" in page
    assert "missing from the corpus" in page  # preserve gen 3 lacks a000
    with pytest.raises(ValueError, match="zzz"):
        tables.example_continuations(human, synthetic, None, article_id="zzz")


def test_example_continuations_show_one_replicate():
    human, synthetic = _corpora()
    scores = fake_scores(fake_summary(generations=4, replicates=2), n=4)
    page = tables.example_continuations(human, synthetic, scores, article_id="a001",
                                        generations=(0, 3), replicate=1)
    tqi = scores[(scores["id"] == "a001") & (scores["setup"] == "preserve")
                 & (scores["generation"] == 3) & (scores["replicate"] == 1)]["tqi"].iloc[0]
    assert f"{tqi:.3f}" in page and "replicate 1" in page


def test_replicate_corpora_picks_one_replicate_by_name():
    corpora = ["beam/rep0/gen0", "beam/rep1/gen0", "beam/rep0/gen1", "my/set/rep0/gen2"]
    paths = [f"p{i}" for i in range(4)]
    assert tables.replicate_corpora(corpora, paths) == {
        ("beam", 0): "p0", ("beam", 1): "p2", ("my/set", 2): "p3"}
    assert tables.replicate_corpora(["beam/gen3"], ["x"]) == {("beam", 3): "x"}
    with pytest.raises(ValueError, match="rep<r>"):
        tables.replicate_corpora(["beam"], ["x"])


# ---------------------------------------------------------------- report captions

REPORT_DIR = Path(__file__).resolve().parents[1] / "workflow" / "report"


def _render_caption(path, config):
    """Render a caption as `snakemake --report` does: Jinja2, then reStructuredText."""
    from docutils.core import publish_parts
    from jinja2 import Environment

    class FakeSnakemake:
        wildcards = SimpleNamespace(simulation="weighted_mle")

    FakeSnakemake.config = config
    text = Environment(trim_blocks=True, lstrip_blocks=True).from_string(
        path.read_text()).render(snakemake=FakeSnakemake, categories={}, files=[])
    # halt_level 2: any docutils warning (bad markup) raises instead of rendering.
    return publish_parts(text, writer="html",
                         settings_overrides={"halt_level": 2, "report_level": 2})["body"]


def test_report_captions_render():
    from selfconsuming.config import validated_config

    # the report sees the config as the Snakefile leaves it: validated, defaults filled in
    config = validated_config(yaml.safe_load((REPORT_DIR.parents[1] / "config" / "config.yaml").read_text()))
    captions = sorted(REPORT_DIR.glob("*.rst"))
    assert len(captions) > 10
    for path in captions:
        html_body = _render_caption(path, config)
        assert len(html_body) > 200, path.name
    workflow = _render_caption(REPORT_DIR / "workflow.rst", config)
    assert "accumulate" in workflow and "num_beams = 10" in workflow


def test_mitigation_caption_states_the_run_values():
    """Epochs and the preserved count come from the config, not from the study's text."""
    import math

    from selfconsuming.config import validated_config

    raw = yaml.safe_load((REPORT_DIR.parents[1] / "config" / "config.yaml").read_text())
    raw["setups"]["overfit"]["epochs"] = 7
    raw["setups"]["preserve"]["preserve_fraction"] = 0.2
    config = validated_config(raw)
    n_human = 3 * config["data"]["per_label"]
    page = _render_caption(REPORT_DIR / "share_right_mitigation.rst", config)
    assert "<tt class=\"docutils literal\">overfit</tt>: 7 epochs, weight decay 0.0" in page
    assert f"{math.ceil(0.2 * n_human)} real articles (20% of the {n_human} human" in page
    for replicates, phrase in ((3, "Each setup ran 3 replicates"), (1, "One replicate per setup")):
        text = _render_caption(REPORT_DIR / "share_right_decoding.rst",
                               {**config, "replicates": replicates})
        assert phrase in " ".join(text.split())


def test_every_caption_the_rules_name_exists():
    rules = REPORT_DIR.parent / "rules"
    names = set()
    for smk in rules.glob("*.smk"):
        text = smk.read_text()
        names |= set(re.findall(r'caption="\.\./report/([\w]+\.rst)"', text))
        if 'caption=f"../report/{name}.rst"' in text:
            figures = re.search(r"FIGURES = \{(.*?)\n\}", text, re.S)
            names |= {f"{k}.rst" for k in re.findall(r'^\s*"(\w+)":', figures.group(1), re.M)}
        if 'caption=f"../report/table_{name}.rst"' in text:
            table_list = re.search(r"TABLES = \[(.*?)\]", text, re.S)
            names |= {f"table_{k}.rst" for k in re.findall(r'"(\w+)"', table_list.group(1))}
    missing = sorted(n for n in names if not (REPORT_DIR / n).exists())
    assert not missing


def test_saved_figures_are_byte_reproducible(tmp_path):
    # a re-run (locally or on a cluster node) must write the same bytes: no creation date in the PDF
    import matplotlib.pyplot as plt

    from selfconsuming.figures import save_figure

    written = []
    for k in range(2):
        fig, ax = plt.subplots()
        ax.plot([1, 2, 3], [3, 1, 2], label="share")
        ax.legend()
        written.append(save_figure(fig, tmp_path / f"f{k}.png"))
    for a, b in zip(*written):
        assert a.read_bytes() == b.read_bytes(), a.suffix

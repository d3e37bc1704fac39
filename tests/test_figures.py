"""Figures and tables run on small fake tables and write what they promise."""

import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml

from selfconsuming import LEANINGS
from selfconsuming import figures, tables

DIVERSITY = ["unique_1", "unique_2", "unique_3", "distinct_1", "distinct_2", "distinct_3",
             "self_bleu_diversity", "semantic_diversity", "syntactic_diversity"]


def _interval(p, n):
    half = 1.96 * np.sqrt(p * (1 - p) / n)
    return max(p - half, 0.0), min(p + half, 1.0)


def _row(setup, generation, kind, shares, quality, n, rng, oracle=True):
    row = {"setup": setup, "generation": generation, "kind": kind, "n_articles": n}
    for leaning, p in zip(LEANINGS, shares):
        row[f"share_{leaning}"] = p
        row[f"share_{leaning}_lo"], row[f"share_{leaning}_hi"] = _interval(p, n)
        op = float(np.clip(p + rng.normal(0, 0.02), 0.01, 0.99)) if oracle else np.nan
        row[f"oracle_share_{leaning}"] = op
        lo, hi = _interval(op, n) if oracle else (np.nan, np.nan)
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


def fake_summary(setups=("deterministic", "preserve"), generations=3, seed=0, n=300,
                 oracle=True):
    """A plausible summary.csv: right share drifts up and quality decays per generation."""
    rng = np.random.default_rng(seed)
    rows = [_row("human", -1, "human", (1 / 3, 1 / 3, 1 / 3), 0.95, n, rng, oracle),
            _row("base", -1, "base", (0.25, 0.3, 0.45), 0.9, n, rng, oracle)]
    for i, setup in enumerate(setups):
        drift = 0.01 + 0.008 * i
        decay = 0.02 + 0.01 * (i % 3)
        for g in range(generations):
            right = min(0.36 + drift * g + rng.normal(0, 0.01), 0.9)
            left = max(0.30 - drift * g * 0.7 + rng.normal(0, 0.01), 0.02)
            quality = max(0.92 - decay * g + rng.normal(0, 0.01), 0.05)
            rows.append(_row(setup, g, "model", (left, 1 - left - right, right), quality,
                             n, rng, oracle))
    return pd.DataFrame(rows)


def fake_scores(summary, n=20, seed=0):
    """Per-article scores consistent with the summary's TQI means."""
    rng = np.random.default_rng(seed)
    rows = []
    for _, r in summary.iterrows():
        setup = r["setup"] if r["kind"] == "model" else r["kind"]
        for i in range(n):
            probs = rng.dirichlet([r["share_left"] * 5, r["share_center"] * 5,
                                   r["share_right"] * 5])
            rows.append({"id": f"a{i:03d}", "setup": setup, "generation": r["generation"],
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
    assert table.loc[0, "setup"] == "human corpus" and table.loc[1, "setup"] == "base model"
    assert len(table) == len(summary)
    row = summary[(summary["setup"] == "preserve") & (summary["generation"] == 2)].iloc[0]
    shown = table[(table["setup"] == "preserve") & (table["generation"] == 2)].iloc[0]
    expected = f"{row['share_right'] * 100:.1f} [{row['share_right_lo'] * 100:.1f}, " \
               f"{row['share_right_hi'] * 100:.1f}]"
    assert shown["right % [95% CI]"] == expected
    page = tables.write_html_table(table, tmp_path / "s.html", "Summary").read_text()
    assert expected in page
    assert "oracle right % [95% CI]" in table.columns
    assert "oracle right % [95% CI]" not in tables.summary_table(fake_summary(oracle=False))


def test_diversity_table_is_metric_by_generation():
    summary = fake_summary(setups=("deterministic", "preserve"), generations=3)
    table = tables.diversity_table(summary)
    assert list(table.columns) == ["setup", "metric", "human", "base", "gen 0", "gen 1", "gen 2"]
    assert len(table) == 2 * 9
    got = table[(table["setup"] == "preserve") & (table["metric"] == "distinct_2")].iloc[0]
    want = summary[(summary["setup"] == "preserve") & (summary["generation"] == 1)]
    assert got["gen 1"] == pytest.approx(want["distinct_2"].iloc[0])
    assert got["human"] == pytest.approx(summary.loc[summary["kind"] == "human", "distinct_2"].iloc[0])


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

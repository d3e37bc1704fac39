"""Figures and tables run on small fake tables and write what they promise."""

import numpy as np
import pandas as pd
import pytest

from selfconsuming import LEANINGS
from selfconsuming import figures

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
    row["tqi_mean"] = quality
    row["tqi_lo"], row["tqi_hi"] = quality - 0.03, min(quality + 0.03, 1.0)
    ppl = 20 + 60 * (1 - quality) + rng.normal(0, 1)
    row.update(ppl_mean=ppl, ppl_lo=ppl - 2, ppl_hi=ppl + 2, ppl_median=ppl - 3)
    diversity = 0.5 + 0.5 * quality
    for k in (1, 2, 3):
        row[f"unique_{k}"] = int(4000 * k * diversity + rng.integers(0, 50))
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
                         "tqi": float(np.clip(rng.normal(r["tqi_mean"], 0.08), 0, 1)),
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

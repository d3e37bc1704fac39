"""Instrument validity: per-corpus table, overall checks, figure and HTML on small fake scores."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score

from selfconsuming import LEANINGS
from selfconsuming import validity

SETUPS = ("deterministic", "nucleus")
GENERATIONS = range(4)


def _corpus(corpus, setup, replicate, generation, right_share, quality, n, rng, noise=0.0,
            oracle=True):
    """n articles whose oracle leaning has the given right share; the classifier flips a
    `noise` share of labels; TQI and perplexity follow the oracle's valid share."""
    n_right = int(round(right_share * n))
    truth = np.array(["right"] * n_right + ["left", "center"] * n)[:n]
    rng.shuffle(truth)
    flip = rng.random(n) < noise
    label = np.where(flip, rng.choice(list(LEANINGS), n), truth)
    valid = np.clip(quality + rng.normal(0, 0.05, n), 0, 1)
    rows = pd.DataFrame({
        "corpus": corpus, "setup": setup, "replicate": replicate, "generation": generation,
        "id": [f"a{i}" for i in range(n)], "label": label,
        "p_left": (label == "left").astype(float), "p_center": (label == "center").astype(float),
        "p_right": (label == "right").astype(float),
        "tqi": 3 * valid, "ppl": np.exp(5 - 2 * valid),
    })
    if oracle:
        truth = truth.astype(object)
        truth[:2] = None  # articles with no parseable sentence
        rows["oracle_label"] = truth
        rows["oracle_valid_share"] = valid
        for leaning in LEANINGS:
            rows[f"oracle_p_{leaning}"] = (truth == leaning).astype(float)
    return rows


def _scores(noise=0.0, oracle=True, n=30, seed=0):
    rng = np.random.default_rng(seed)
    parts = [_corpus("human", "human", -1, -1, 1 / 3, 0.95, n, rng, noise, oracle),
             _corpus("base", "base", -1, -1, 0.5, 0.8, n, rng, noise, oracle)]
    for k, setup in enumerate(SETUPS):
        for g in GENERATIONS:
            parts.append(_corpus(f"{setup}/rep0/gen{g}", setup, 0, g, 0.35 + 0.1 * g + 0.05 * k,
                                 0.9 - 0.15 * g - 0.05 * k, n, rng, noise, oracle))
    return pd.concat(parts, ignore_index=True)


def _check(overall, name):
    return overall.set_index("check").loc[name]


def test_table_has_one_row_per_corpus_with_the_listed_columns():
    scores = _scores(noise=0.2)
    table = validity.validity_table(scores)
    for column in ("setup", "replicate", "generation", "n_articles", "oracle_n", "agreement",
                   "kappa", "classifier_right_share", "oracle_right_share",
                   "classifier_right_share_all", "tqi_mean", "oracle_valid_mean", "r_tqi_valid",
                   "ppl_median", "r_logppl_valid"):
        assert column in table.columns
    assert len(table) == scores["corpus"].nunique()
    assert list(table["corpus"][:2]) == ["human", "base"]
    assert list(table["kind"][:2]) == ["human", "base"]
    assert (table["n_articles"] == 30).all() and (table["oracle_n"] == 28).all()
    # TQI is 3 x valid share per article, log ppl = 5 - 2 x valid share
    assert np.allclose(table["r_tqi_valid"], 1.0)
    assert np.allclose(table["r_logppl_valid"], -1.0)
    assert np.allclose(table["tqi_mean"], 3 * table["oracle_valid_mean"])


def test_kappa_and_agreement_equal_sklearn_on_the_oracle_labelled_articles():
    scores = _scores(noise=0.4)
    table = validity.validity_table(scores).set_index("corpus")
    part = scores[scores["corpus"] == "nucleus/rep0/gen2"].dropna(subset=["oracle_label"])
    expected = cohen_kappa_score(part["oracle_label"], part["label"])
    row = table.loc["nucleus/rep0/gen2"]
    assert row["kappa"] == pytest.approx(expected)
    assert row["agreement"] == pytest.approx((part["label"] == part["oracle_label"]).mean())
    assert row["classifier_right_share"] == pytest.approx((part["label"] == "right").mean())
    assert row["oracle_right_share"] == pytest.approx((part["oracle_label"] == "right").mean())

    overall = validity.validity_overall(validity.validity_table(scores))
    models = scores[(scores["generation"] >= 0) & scores["oracle_label"].notna()]
    pooled = _check(overall, "Cohen's kappa with oracle label (model corpora)")
    assert pooled["value"] == pytest.approx(cohen_kappa_score(models["oracle_label"],
                                                              models["label"]))
    assert pooled["n"] == len(models)
    agreement = _check(overall, "agreement with oracle label (model corpora)")
    assert agreement["value"] == pytest.approx((models["label"] == models["oracle_label"]).mean())
    assert agreement["ci_lo"] < agreement["value"] < agreement["ci_hi"]


def test_kappa_is_nan_when_undefined():
    rng = np.random.default_rng(1)
    scores = _corpus("base", "base", -1, -1, 1.0, 0.9, 10, rng)  # everything right on both sides
    table = validity.validity_table(scores)
    assert table.loc[0, "agreement"] == 1.0
    assert np.isnan(table.loc[0, "kappa"])


def test_perfect_agreement_gives_r_one_and_meets_the_targets():
    overall = validity.validity_overall(validity.validity_table(_scores(noise=0.0)))
    right = _check(overall, "r(classifier right share, oracle right share)")
    assert right["value"] == pytest.approx(1.0)
    assert right["n"] == len(SETUPS) * len(GENERATIONS)
    assert right["target"] == validity.TARGET_R_RIGHT_SHARE and right["met"] is True
    tqi = _check(overall, "r(TQI mean, oracle valid share)")
    assert tqi["value"] == pytest.approx(1.0) and tqi["met"] is True
    assert _check(overall, "r(log perplexity median, oracle valid share)")["met"] is None
    assert _check(overall, "agreement with oracle label (model corpora)")["value"] == 1.0


def test_r_has_a_fisher_z_interval_and_min_oracle_n_filters_corpora():
    table = validity.validity_table(_scores(noise=0.3))
    overall = validity.validity_overall(table)
    tqi = _check(overall, "r(TQI mean, oracle valid share)")
    n = tqi["n"]
    z = np.arctanh(tqi["value"])
    assert tqi["ci_lo"] == pytest.approx(np.tanh(z - 1.959964 / np.sqrt(n - 3)), abs=1e-5)
    assert tqi["ci_hi"] == pytest.approx(np.tanh(z + 1.959964 / np.sqrt(n - 3)), abs=1e-5)
    none_enough = validity.validity_overall(table, min_oracle_n=29)
    right = _check(none_enough, "r(classifier right share, oracle right share)")
    assert right["n"] == 0 and np.isnan(right["value"]) and right["met"] is False


def test_real_data_without_oracle_works_and_says_so(tmp_path):
    scores = _scores(noise=0.2, oracle=False)
    table = validity.validity_table(scores)
    assert table["agreement"].isna().all() and table["oracle_valid_mean"].isna().all()
    assert (table["oracle_n"] == 0).all()
    assert table["classifier_right_share_all"].notna().all()
    assert table["tqi_mean"].notna().all() and table["ppl_median"].notna().all()
    metrics = pd.DataFrame({"backbone": ["distilbert", "roberta"], "val_macro_f1": [0.7, 0.9],
                            "test_macro_f1": [0.68, 0.88], "chosen": [False, True]})
    overall = validity.validity_overall(table, classifier_metrics=metrics)
    right = _check(overall, "r(classifier right share, oracle right share)")
    assert "no oracle on real data" in right["note"] and right["met"] is None
    test_f1 = _check(overall, "classifier test macro F1")
    assert test_f1["value"] == 0.88 and "roberta" in test_f1["note"]
    assert _check(overall, "r(TQI mean, log perplexity median)")["value"] < -0.99  # mean vs median
    page = validity.validity_table_html(table, overall)
    assert "no oracle on real data" in page
    png, pdf = validity.validity_figure(table, overall, tmp_path / "validity.png")
    assert png.stat().st_size > 0 and pdf.stat().st_size > 0


def test_figure_and_html_are_written(tmp_path):
    table = validity.validity_table(_scores(noise=0.2))
    overall = validity.validity_overall(table)
    png, pdf = validity.validity_figure(table, overall, tmp_path / "figures" / "validity.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and pdf.read_bytes()[:4] == b"%PDF"
    page = validity.validity_table_html(table, overall)
    assert page.index("Checks: r over corpora") < page.index("Per corpus")
    assert page.count("<tr") == len(table) + len(overall) + 2  # two header rows
    assert "nucleus/rep0/gen3" in page


def test_missing_columns_are_named():
    with pytest.raises(ValueError, match="tqi"):
        validity.validity_table(_scores().drop(columns="tqi"))


def test_agreement_is_split_by_how_sure_the_oracle_is():
    """Articles binned by the oracle's largest posterior; each bin's pooled agreement is its own
    hits over its own articles, with a Wilson interval."""
    scores = _scores(noise=0.3)
    labelled = scores["oracle_label"].notna()
    rng = np.random.default_rng(3)
    sure = rng.choice([0.4, 0.7, 0.95, 1.0], size=len(scores))  # one bin per value; 1.0 is "sure"
    for leaning in LEANINGS:
        scores[f"oracle_p_{leaning}"] = np.where(scores["oracle_label"] == leaning, sure, (1 - sure) / 2)
    table = validity.validity_table(scores)
    overall = validity.validity_overall(table)
    models = scores[labelled & ~scores["corpus"].isin(["human", "base"])]
    hit = models["label"] == models["oracle_label"]
    conf = models[[f"oracle_p_{leaning}" for leaning in LEANINGS]].max(axis=1)
    for name, inside in (("weak", conf < 0.6), ("moderate", (conf >= 0.6) & (conf < 0.9)),
                         ("sure", conf >= 0.9)):
        row = overall[overall["check"].str.contains(f"oracle {name}:")].iloc[0]
        assert row["n"] == inside.sum() > 0
        assert row["value"] == pytest.approx(hit[inside].mean())
        assert row["ci_lo"] < row["value"] < row["ci_hi"]
    assert (table[["n_oracle_weak", "n_oracle_moderate", "n_oracle_sure"]].sum(axis=1) == table["oracle_n"]).all()


def test_right_share_without_weak_oracle_articles_and_as_mean_probability():
    """Where a noisy classifier meets a weak oracle, the decisive-only r recomputes the share on
    the articles the oracle is sure of; the probability r averages P(right) instead of counting."""
    scores = _scores(noise=0.3)
    rng = np.random.default_rng(4)
    sure = rng.choice([0.4, 0.95], size=len(scores))
    for leaning in LEANINGS:
        scores[f"oracle_p_{leaning}"] = np.where(scores["oracle_label"] == leaning, sure, (1 - sure) / 2)
    table = validity.validity_table(scores)
    overall = validity.validity_overall(table, min_oracle_n=5)
    corpus = scores[(scores["corpus"] == "nucleus/rep0/gen2") & scores["oracle_label"].notna()]
    decisive = corpus[corpus[[f"oracle_p_{leaning}" for leaning in LEANINGS]].max(axis=1) >= 0.6]
    row = table.set_index("corpus").loc["nucleus/rep0/gen2"]
    assert row["oracle_n_decisive"] == len(decisive) < row["oracle_n"]
    assert row["classifier_right_share_decisive"] == pytest.approx((decisive["label"] == "right").mean())
    assert row["oracle_right_share_decisive"] == pytest.approx((decisive["oracle_label"] == "right").mean())
    assert row["classifier_p_right_mean"] == pytest.approx(corpus["p_right"].mean())
    assert row["oracle_p_right_mean"] == pytest.approx(corpus["oracle_p_right"].mean())
    models = table[table["kind"] == "model"]
    r_decisive = _check(overall, "r(classifier right share, oracle right share), oracle posterior >= 0.6")
    assert r_decisive["value"] == pytest.approx(models["classifier_right_share_decisive"].corr(
        models["oracle_right_share_decisive"])) and pd.isna(r_decisive["target"])
    r_reported = _check(overall, "r(classifier right share as reported, oracle right share)")
    enough = models[models["oracle_n"] >= 5]
    assert r_reported["value"] == pytest.approx(enough["classifier_right_share_all"].corr(
        enough["oracle_right_share"])) and r_reported["n"] == len(enough) and pd.isna(r_reported["target"])
    r_prob = _check(overall, "r(classifier mean P(right), oracle mean P(right))")
    assert r_prob["value"] == pytest.approx(models["classifier_p_right_mean"].corr(models["oracle_p_right_mean"]))
    assert r_prob["n"] == len(models)

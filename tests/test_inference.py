"""Inference across replicates: planted effects are found, absent ones are not, methods agree
with statsmodels."""

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

from selfconsuming import inference
from selfconsuming.inference import FINDINGS_COLUMNS, findings, findings_table_html
from selfconsuming.summary import summarise_scores

GENERATIONS = range(6)


def _corpus(rng, setup, replicate, generation, p_right, n, oracle):
    """Per-article scores of one synthetic corpus whose right share is p_right."""
    p_right = float(np.clip(p_right, 0.02, 0.98))
    rest = (1 - p_right) / 2
    labels = rng.choice(["left", "center", "right"], size=n, p=[rest, rest, p_right])
    return pd.DataFrame({
        "setup": setup, "replicate": replicate, "generation": generation,
        "id": [f"a{i}" for i in range(n)], "label": labels,
        "tqi": rng.normal(2.0, 0.3, n), "ppl": np.exp(rng.normal(3.0, 0.4, n)),
        "oracle_label": labels if oracle else None,
        "oracle_valid_share": rng.uniform(0.5, 1.0, n) if oracle else np.nan,
    })


def synthetic_study(slopes, replicates=3, n=400, replicate_sd=0.01, oracle=False, seed=1):
    """(summary, scores) of setups whose right share rises by slopes[setup] per generation.

    Every setup starts at 0.3 plus a replicate offset; generation 0 of replicate r is one
    corpus shared by all setups (same start model), as in the workflow.
    """
    rng = np.random.default_rng(seed)
    offsets = rng.normal(0.0, replicate_sd, replicates)
    gen0 = {r: _corpus(np.random.default_rng([seed, r]), "", r, 0, 0.3 + offsets[r], n, oracle)
            for r in range(replicates)}
    scores, rows = [], []
    for setup, slope in slopes.items():
        for r in range(replicates):
            for g in GENERATIONS:
                corpus = (gen0[r].assign(setup=setup) if g == 0 else
                          _corpus(rng, setup, r, g, 0.3 + offsets[r] + slope * g, n, oracle))
                diversity = {"distinct_2": 0.8 - 0.01 * g + rng.normal(0, 0.005)}
                rows.append({"setup": setup, "replicate": r, "generation": g, "kind": "model",
                             **summarise_scores(corpus, diversity)})
                scores.append(corpus)
    human = {"setup": "human", "replicate": -1, "generation": -1, "kind": "human",
             **summarise_scores(gen0[0], {"distinct_2": 0.9})}
    return pd.DataFrame([human, *rows]), pd.concat(scores, ignore_index=True)


def _row(df, setup, metric, effect):
    hit = df[(df.setup == setup) & (df.metric == metric) & (df.effect == effect)]
    assert len(hit) == 1, (setup, metric, effect, hit)
    return hit.iloc[0]


@pytest.fixture(scope="module")
def planted():
    summary, scores = synthetic_study({"deterministic": 0.05, "flat": 0.0, "same": 0.05}, n=4000)
    return summary, scores, findings(summary, scores, metrics=["share_right", "tqi_mean"])


def test_planted_trend_is_found_and_absent_one_is_not(planted):
    _, _, res = planted
    assert list(res.columns) == FINDINGS_COLUMNS
    for effect in ("change", "trend"):
        up = _row(res, "deterministic", "share_right", effect)
        assert up.verdict == "increase" and up.ci_lo > 0 and up.method == inference.METHOD_TWO_STAGE
        assert up.n_replicates == 3
        assert _row(res, "flat", "share_right", effect).verdict == "no evidence"
    trend = _row(res, "deterministic", "share_right", "trend")
    assert trend.ci_lo < 0.05 < trend.ci_hi
    assert (res[res.metric == "tqi_mean"].verdict == "no evidence").all()


def test_planted_mitigation_against_baseline(planted):
    _, _, res = planted
    flat = _row(res, "flat", "share_right", "vs_baseline")
    assert flat.verdict == "decrease" and flat.method == inference.METHOD_PAIRED
    assert flat.ci_lo < -0.25 < flat.ci_hi          # planted: 0 - 0.05 * 5
    assert _row(res, "same", "share_right", "vs_baseline").verdict == "no evidence"
    baseline_rows = res[res.setup == "deterministic"]
    assert "vs_baseline" not in set(baseline_rows.effect)


def test_no_vs_baseline_without_the_baseline(planted):
    summary, scores, _ = planted
    res = findings(summary, scores, metrics=["share_right"], baseline="absent")
    assert "vs_baseline" not in set(res.effect) and len(res) == 6


def test_holm_adjusted_p_is_at_least_raw_p(planted):
    _, _, res = planted
    tested = res.dropna(subset=["p"])
    assert len(tested) == len(res)
    assert (tested.p_adj >= tested.p - 1e-15).all() and (tested.p_adj <= 1).all()
    smallest = tested.p.idxmin()
    assert tested.p_adj[smallest] == pytest.approx(min(1.0, tested.p[smallest] * len(tested)))


def test_holm_within_families(planted):
    _, _, res = planted
    summary, scores, _ = planted
    by_metric = findings(summary, scores, metrics=["share_right", "tqi_mean"],
                         family_by=["metric"])
    for metric, group in by_metric.groupby("metric"):
        np.testing.assert_allclose(group.p_adj, inference.holm(group.p))
    assert (by_metric.p_adj <= res.p_adj + 1e-15).all()


def test_single_replicate_setup_against_replicated_baseline(planted):
    summary, scores, _ = planted
    keep = (summary.setup != "flat") | (summary.replicate == 1)
    res = findings(summary[keep], scores, metrics=["share_right"], n_boot=300)
    flat = res[res.setup == "flat"]
    assert (flat.n_replicates == 1).all() and (flat.method == inference.METHOD_BOOTSTRAP).all()
    assert _row(res, "flat", "share_right", "vs_baseline").estimate < -0.2
    assert (res[res.setup != "flat"].n_replicates == 3).all()


def test_nan_oracle_columns_are_skipped(planted):
    summary, scores, _ = planted
    assert summary["oracle_share_right"].isna().all()
    res = findings(summary, scores)
    assert not res.metric.isin(["oracle_share_right", "oracle_valid_mean"]).any()
    assert {"share_right", "tqi_mean", "log_ppl_mean", "distinct_2"} <= set(res.metric)
    assert not res.setup.isin(["human", "base"]).any()


def test_metric_missing_for_one_setup_skips_only_that_setup():
    # a from-scratch setup whose text the oracle cannot label at all has no oracle right share
    summary, scores = synthetic_study({"deterministic": 0.05, "scratch": 0.0}, oracle=True, n=100)
    summary.loc[summary.setup == "scratch", "oracle_share_right"] = np.nan
    res = findings(summary, scores, metrics=["oracle_share_right", "share_right"])
    assert set(res[res.metric == "oracle_share_right"].setup) == {"deterministic"}
    assert set(res[res.metric == "share_right"].setup) == {"deterministic", "scratch"}


def test_oracle_metrics_are_analysed_when_present():
    summary, scores = synthetic_study({"deterministic": 0.05}, oracle=True, n=100)
    res = findings(summary, scores, metrics=["oracle_share_right", "oracle_valid_mean"])
    assert set(res.metric) == {"oracle_share_right", "oracle_valid_mean"}


def test_two_stage_estimates_match_statsmodels(planted):
    summary, _, res = planted
    rows = summary[summary.setup == "deterministic"]
    slopes = [sm.OLS(g.share_right, sm.add_constant(g.generation.astype(float))).fit()
              .params["generation"] for _, g in rows.groupby("replicate")]
    traj = inference.trajectories(inference.model_rows(summary), "deterministic",
                                  inference.METRICS["share_right"])
    per_rep = inference.replicate_effects(traj, 5)["trend"]
    np.testing.assert_allclose(per_rep.to_numpy(), slopes, rtol=1e-10)
    # Stage two: the t interval is OLS of the replicate slopes on a constant.
    ols = sm.OLS(np.asarray(slopes), np.ones(len(slopes))).fit()
    trend = _row(res, "deterministic", "share_right", "trend")
    assert trend.estimate == pytest.approx(ols.params[0])
    np.testing.assert_allclose([trend.ci_lo, trend.ci_hi], ols.conf_int(0.05)[0], rtol=1e-10)
    assert trend.p == pytest.approx(ols.pvalues[0])
    # Balanced design: the mixed model's fixed slope (random intercept and slope by
    # replicate) is the mean of the per-replicate slopes.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mixed = smf.mixedlm("share_right ~ generation", rows, groups=rows["replicate"],
                            re_formula="~generation").fit()
    assert mixed.fe_params["generation"] == pytest.approx(trend.estimate, rel=1e-4)


def test_single_replicate_uses_article_bootstrap():
    summary, scores = synthetic_study({"deterministic": 0.08, "flat": 0.0}, replicates=1,
                                      n=150, seed=3)
    res = findings(summary, scores, metrics=["share_right", "log_ppl_mean", "distinct_2"],
                   n_boot=1000, seed=0)
    for effect in ("change", "trend"):
        up = _row(res, "deterministic", "share_right", effect)
        assert up.method == "article bootstrap (R=1)" and up.verdict == "increase"
        assert up.ci_lo <= up.estimate <= up.ci_hi and up.n_replicates == 1
    assert _row(res, "flat", "share_right", "vs_baseline").verdict == "decrease"
    # The bootstrap point estimate is the summary's own value.
    det = summary[summary.setup == "deterministic"].set_index("generation")
    assert _row(res, "deterministic", "share_right", "change").estimate == pytest.approx(
        det.share_right[5] - det.share_right[0])
    assert _row(res, "deterministic", "log_ppl_mean", "change").estimate == pytest.approx(
        np.log(det.ppl_mean[5]) - np.log(det.ppl_mean[0]))
    diversity = res[res.metric == "distinct_2"]
    assert len(diversity) == 5 and diversity.ci_lo.isna().all() and diversity.p.isna().all()
    assert (diversity.verdict == "no evidence").all()
    assert (diversity.method == inference.METHOD_CORPUS_R1).all()
    assert diversity.estimate.notna().all()


def test_bootstrap_is_reproducible_with_a_seed():
    summary, scores = synthetic_study({"deterministic": 0.02}, replicates=1, n=60, seed=4)
    a = findings(summary, scores, metrics=["share_right"], n_boot=200, seed=7)
    b = findings(summary, scores, metrics=["share_right"], n_boot=200, seed=7)
    pd.testing.assert_frame_equal(a, b)


def test_findings_table_html(planted):
    _, _, res = planted
    table = findings_table_html(res)
    assert table.startswith("<table>") and table.count("<tr>") == 1 + 3 * 2
    assert "Right share (classifier)" in table and "\u25b2" in table and "\u25bc" in table
    assert "[" in table and "nan" not in table


def test_compare_findings_counts_same_opposite_and_undecided_verdicts():
    """Two runs' verdicts matched by (setup, metric, effect); only increase vs decrease is opposite."""
    from selfconsuming.inference import compare_findings, comparison_counts

    def run(rows):
        return pd.DataFrame(rows, columns=["setup", "metric", "effect", "estimate", "ci_lo", "ci_hi", "verdict"])

    a = run([("beam", "tqi_mean", "change", -1.0, -1.5, -0.5, "decrease"),
             ("beam", "tqi_mean", "trend", -0.1, -0.2, 0.01, "no evidence"),
             ("nucleus", "share_right", "change", 0.2, 0.1, 0.3, "increase"),
             ("nucleus", "share_right", "vs_baseline", 0.05, -0.1, 0.2, "no evidence")])
    b = run([("beam", "tqi_mean", "change", -0.4, -0.45, -0.35, "decrease"),
             ("beam", "tqi_mean", "trend", -0.15, -0.2, -0.1, "decrease"),
             ("nucleus", "share_right", "change", -0.2, -0.3, -0.1, "decrease"),
             ("overfit", "share_right", "change", 0.0, -0.1, 0.1, "no evidence")])
    compared = compare_findings(a, b)
    assert len(compared) == 3  # only keys present in both runs
    got = dict(zip(compared["setup"] + "/" + compared["effect"], compared["agreement"]))
    assert got == {"beam/change": "same", "beam/trend": "one undecided", "nucleus/change": "opposite"}
    overlap = dict(zip(compared["setup"] + "/" + compared["effect"], compared["ci_overlap"]))
    assert overlap == {"beam/change": False, "beam/trend": True, "nucleus/change": False}
    counts = comparison_counts(compared).set_index("effect")
    assert counts.loc["all"].to_dict() == {"tests": 3, "same": 1, "opposite": 1, "one undecided": 1, "ci_disjoint": 2}
    assert counts.loc["change", "opposite"] == 1 and counts.loc["trend", "one undecided"] == 1


def test_regimes_table_shows_where_each_setup_started():
    from selfconsuming.inference import regime_levels, regimes_table_html

    summary, scores = synthetic_study({"deterministic": 0.05, "flat": 0.0}, oracle=True, n=200)
    res = findings(summary, scores, metrics=["oracle_share_right", "tqi_mean"])
    last, start, end = regime_levels(summary, "flat", "oracle_share_right")
    rows = summary[(summary.setup == "flat") & (summary.kind == "model")]
    assert last == rows.generation.max()
    assert start == pytest.approx(rows[rows.generation == 0].oracle_share_right.mean())
    assert end == pytest.approx(rows[rows.generation == last].oracle_share_right.mean())
    page = regimes_table_html(res, "deterministic", summary=summary)
    assert f"(gen 0 {start:.3g} \u2192 gen {last} {end:.3g})" in page
    assert "gen 0" not in regimes_table_html(res, "deterministic")

"""The statistical simulations agree with their closed forms within Monte Carlo error."""

import numpy as np
import pytest
from scipy import optimize, stats

from selfconsuming import theory, theory_plots

Z_TOL = 4.0  # simulated means must sit within this many Monte Carlo standard errors


def rows(df, quantity, method=None):
    out = df[df["quantity"] == quantity]
    return out if method is None else out[out["method"] == method]


def assert_within_mc_error(sub, z_tol=Z_TOL):
    z = (sub["mean"] - sub["closed_form"]) / sub["se"]
    assert np.all(np.abs(z) < z_tol), sub.assign(z=z)[["method", "generation", "mean", "se", "closed_form", "z"]]


# ---------------------------------------------------------------- weighted Beta MLE


def scipy_weighted_beta_fit(x, w):
    """Reference: maximise sum w log Beta(x; a, b) over log-parameters with scipy."""
    def neg_loglik(log_ab):
        a, b = np.exp(log_ab)
        return -np.sum(w * stats.beta.logpdf(x, a, b)) / w.sum()
    res = optimize.minimize(neg_loglik, x0=np.zeros(2), method="Nelder-Mead",
                            options={"xatol": 1e-10, "fatol": 1e-14, "maxiter": 5000})
    return np.exp(res.x)


def test_weighted_beta_fit_matches_scipy_optimize():
    rng = np.random.default_rng(1)
    x = rng.beta(2.0, 3.0, size=(3, 400))
    w = stats.beta.pdf(x, 3.0, 2.0)
    a, b = theory.fit_beta_weighted(x, w)
    for i in range(3):
        np.testing.assert_allclose([a[i], b[i]], scipy_weighted_beta_fit(x[i], w[i]), rtol=1e-4)


def test_unweighted_beta_fit_matches_scipy_stats():
    x = np.random.default_rng(2).beta(5.0, 1.5, size=2000)
    a, b = theory.fit_beta_weighted(x[None])
    a_ref, b_ref, _, _ = stats.beta.fit(x, floc=0, fscale=1)
    np.testing.assert_allclose([a[0], b[0]], [a_ref, b_ref], rtol=1e-3)


def test_weighted_beta_fit_rejects_bad_input():
    with pytest.raises(ValueError, match="inside"):
        theory.fit_beta_weighted(np.array([[0.2, 1.0]]))
    with pytest.raises(ValueError, match="weights"):
        theory.fit_beta_weighted(np.array([[0.2, 0.5]]), np.array([[-1.0, 1.0]]))


def test_weighted_mle_amplifies_bias_plain_stays():
    df = theory.simulate_weighted_mle({"replicates": 20, "sample_size": 1000}, seed=3)
    weighted = rows(df, "mean_fit", "weighted").set_index("generation")
    plain = rows(df, "mean_fit", "plain").set_index("generation")
    pretrained_mean = rows(df, "mean_fit", "pretrained")["mean"].iloc[0]
    assert weighted.loc[0, "mean"] > 0.55                      # the first weighted fit is already biased
    assert weighted.loc[10, "mean"] > weighted.loc[0, "mean"]  # and the loop amplifies it
    assert abs(weighted.loc[10, "mean"] - pretrained_mean) < 0.01
    assert abs(plain.loc[10, "mean"] - 0.5) < Z_TOL * plain.loc[10, "se"]
    # the N -> infinity closed form, up to Monte Carlo error and a small finite-N allowance
    gap = (weighted["mean"] - weighted["closed_form"]).abs()
    assert np.all(gap < Z_TOL * weighted["se"] + 0.002)
    # weighting by the last fit halves the variance each generation
    sd = rows(df, "sd_fit", "weighted").set_index("generation")["mean"]
    assert sd[10] < sd[0] / 10


def test_weighted_mle_pretrained_weights_follow_closed_form():
    df = theory.simulate_weighted_mle({"replicates": 20, "generations": 4, "weight_by": "pretrained"}, seed=4)
    weighted = rows(df, "mean_fit", "weighted")
    gap = (weighted["mean"] - weighted["closed_form"]).abs()
    assert np.all(gap < Z_TOL * weighted["se"] + 0.002)


# ---------------------------------------------------------------- softmax model of collapse

SOFTMAX_SMALL = {"vocab_size": 10, "synthetic_size": 30, "real_size": 30, "window": 3,
                 "generations": 30, "max_generations": 5000, "replicates": 2000}


@pytest.fixture(scope="module")
def softmax_df():
    return theory.simulate_softmax_collapse(SOFTMAX_SMALL, seed=5)


def test_softmax_sigma_matches_closed_forms(softmax_df):
    for regime in ("fully_synthetic", "partially_synthetic"):
        sub = rows(softmax_df, "sigma", regime)
        assert_within_mc_error(sub[sub["generation"].isin([1, 2, 5, 10, 20, 30])])


def test_softmax_collapse_time_between_bounds(softmax_df):
    t = rows(softmax_df, "collapse_time", "fully_synthetic").iloc[0]
    assert t["n_collapsed"] == t["n_replicates"]  # every run collapsed before the cap
    assert t["bound_lo"] < t["mean"] < t["bound_hi"]


def test_softmax_collapses_onto_token_with_probability_p(softmax_df):
    onto = rows(softmax_df, "collapse_onto")
    count = rows(softmax_df, "collapse_time", "fully_synthetic")["n_collapsed"].iloc[0]
    p = onto["closed_form"].to_numpy()
    se = np.sqrt(p * (1 - p) / count)
    assert np.all(np.abs(onto["mean"].to_numpy() - p) < Z_TOL * se + 1e-9)
    np.testing.assert_allclose(onto["mean"].sum(), 1.0)


def test_softmax_mixing_real_data_prevents_collapse(softmax_df):
    for regime in ("partially_synthetic", "pool"):
        assert rows(softmax_df, "collapse_time", regime)["n_collapsed"].iloc[0] == 0
    last = softmax_df[(softmax_df["quantity"] == "sigma") & (softmax_df["generation"] == 30)]
    by_regime = last.set_index("method")["mean"]
    assert by_regime["fully_synthetic"] > by_regime["recent_k"] > by_regime["partially_synthetic"]


def test_partially_synthetic_formula_sign_and_indexing():
    """S_1 is E||p^(1)||^2 (N real samples); '+ alpha beta^(m-1)/N' fits, the '-' variant does not."""
    s0, n_real, n = 0.15, 4, 4
    np.testing.assert_allclose(theory.partially_synthetic_sigma(s0, n_real, n, 1), 1 / n_real + (1 - 1 / n_real) * s0)

    params = {**theory.DEFAULT_PARAMS["softmax_collapse"], "vocab_size": 10, "synthetic_size": n,
              "real_size": n_real, "generations": 3, "replicates": 40_000}
    rng = np.random.default_rng(6)
    p_true = theory.true_token_distribution(params, rng)
    s0 = float((p_true ** 2).sum())
    sigma = theory.run_softmax_regime("partially_synthetic", p_true, params, rng, False)["sigma"]
    mean, se = sigma.mean(axis=0), sigma.std(axis=0, ddof=1) / np.sqrt(len(sigma))
    m = np.arange(1, 4)
    closed = theory.partially_synthetic_sigma(s0, n_real, n, m)
    assert np.all(np.abs(mean - closed) < Z_TOL * se)
    inv_n, alpha = 1 / n_real, n / (n_real + n)
    beta = alpha * ((1 + inv_n) * alpha - inv_n)
    minus_variant = closed - 2 * (1 - inv_n) * s0 * alpha * beta ** (m - 1) * inv_n / (1 + (1 + inv_n) * alpha)
    assert np.abs(mean[0] - minus_variant[0]) > 6 * se[0]


def test_fully_synthetic_closed_form_first_generation():
    # generation 1 is n draws from p: E||p^(1)||^2 = S0 + (1 - S0)/n
    np.testing.assert_allclose(theory.fully_synthetic_sigma(0.2, 10, 1), 0.2 + 0.8 / 10)


# ---------------------------------------------------------------- regression replace vs accumulate


def test_regression_matches_closed_forms():
    df = theory.simulate_regression_accumulate({"replicates": 2000, "iterations": 8}, seed=7)
    assert_within_mc_error(rows(df, "param_error"))
    acc = rows(df, "param_error", "accumulate")
    rep = rows(df, "param_error", "replace")
    assert np.all(acc["closed_form"] <= acc["bound_hi"])
    assert rep["mean"].iloc[-1] > 3 * acc["mean"].iloc[-1]


def test_accumulate_identity_equals_stacked_least_squares():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((40, 5))
    ys = [rng.standard_normal(40) for _ in range(3)]
    h = theory.least_squares_operator(x[None])[0]
    stacked, *_ = np.linalg.lstsq(np.vstack([x] * 3), np.concatenate(ys), rcond=None)
    np.testing.assert_allclose(h @ np.mean(ys, axis=0), stacked, rtol=1e-10)


def test_regression_rejects_too_few_rows():
    with pytest.raises(ValueError, match="rows"):
        theory.simulate_regression_accumulate({"dim": 10, "rows": 11}, seed=0)


# ---------------------------------------------------------------- Gaussian refit


def test_gaussian_refit_matches_closed_forms():
    df = theory.simulate_gaussian_refit({"sample_size": 20, "generations": 30, "replicates": 4000}, seed=9)
    for quantity in ("variance", "log_variance", "mean", "mean_sq_error"):
        sub = rows(df, quantity)
        assert_within_mc_error(sub[sub["generation"].isin([1, 2, 5, 10, 20, 30])])
    var = rows(df, "variance").set_index("generation")["mean"]
    assert var[30] < 0.4


# ---------------------------------------------------------------- parameters, determinism, plots


def test_params_are_validated_by_name():
    with pytest.raises(ValueError, match="theory.gaussian_refit: unknown parameter"):
        theory.run_simulation("gaussian_refit", {"smaple_size": 3})
    with pytest.raises(ValueError, match="theory.weighted_mle.replicates"):
        theory.run_simulation("weighted_mle", {"replicates": 0})
    with pytest.raises(ValueError, match="theory.softmax_collapse.distribution"):
        theory.run_simulation("softmax_collapse", {"distribution": "uniform", "replicates": 2})
    with pytest.raises(ValueError, match="unknown simulation"):
        theory.run_simulation("nope")
    assert set(theory.SIMULATIONS) == set(theory.DEFAULT_PARAMS)


def test_same_seed_same_table():
    params = {"replicates": 50, "generations": 5}
    a = theory.simulate_gaussian_refit(params, seed=1)
    b = theory.simulate_gaussian_refit(params, seed=1)
    assert a.equals(b)
    assert not a.equals(theory.simulate_gaussian_refit(params, seed=2))


SMALL_PARAMS = {
    "weighted_mle": {"replicates": 4, "sample_size": 200, "generations": 3},
    "softmax_collapse": {"vocab_size": 5, "synthetic_size": 10, "real_size": 10, "generations": 8,
                         "replicates": 50, "max_generations": 2000},
    "regression_accumulate": {"replicates": 50, "iterations": 4},
    "gaussian_refit": {"replicates": 50, "generations": 6},
}


@pytest.mark.parametrize("name", sorted(theory.SIMULATIONS))
def test_plots_write_png_and_pdf(name, tmp_path):
    df = theory.run_simulation(name, SMALL_PARAMS[name], seed=0)
    assert {"simulation", "quantity", "method", "mean", "se", "lo", "hi", "closed_form"} <= set(df.columns)
    paths = theory_plots.plot_simulation(name, df, tmp_path / f"{name}.png")
    assert [p.suffix for p in paths] == [".png", ".pdf"]
    for path in paths:
        assert path.stat().st_size > 1000
    assert (tmp_path / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / f"{name}.pdf").read_bytes()[:4] == b"%PDF"


def test_plot_requires_png_path(tmp_path):
    df = theory.run_simulation("gaussian_refit", SMALL_PARAMS["gaussian_refit"], seed=0)
    with pytest.raises(ValueError, match=".png"):
        theory_plots.plot_simulation("gaussian_refit", df, tmp_path / "fig.pdf")

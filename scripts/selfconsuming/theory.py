"""Cheap statistical simulations of self-consuming training, next to their closed forms.

Four toy models of "train on your own output, repeat":

- weighted_mle: Beta fits weighted by a biased density drift toward the bias
  (Wang et al., "Bias Amplification: Language Models as Increasingly Biased Media").
- softmax_collapse: a next-token distribution re-estimated from its own samples
  (Seddik et al., "How Bad is Training on Synthetic Data? A Statistical Analysis of
  Language Model Collapse").
- regression_accumulate: least squares refit on its own labels, replacing vs
  accumulating data (Gerstgrasser et al., "Is Model Collapse Inevitable?").
- gaussian_refit: a Gaussian refit to its own samples (Shumailov et al.).

Every `simulate_<name>(params, seed)` is a pure function returning one tidy
DataFrame (one row per observation) with these columns:

    simulation, quantity, method, generation, mean, se, lo, hi, q_lo, q_hi,
    n_replicates, closed_form

`mean` is the Monte Carlo mean over replicates, `se` its standard error, `lo`/`hi`
the 95% confidence interval of the mean (mean +- 1.96 se), `q_lo`/`q_hi` the 2.5% and
97.5% quantiles over replicates (the spread of single runs), `closed_form` the exact
expectation where one exists (NaN otherwise). Some simulations add columns (listed in
their docstrings). Parameters missing from `params` come from `DEFAULT_PARAMS`.
"""

import numpy as np
import pandas as pd
from scipy import special, stats

Z95 = stats.norm.ppf(0.975)

DEFAULT_PARAMS = {
    "weighted_mle": {
        "truth": [2.0, 2.0],          # Beta(a, b) of the real data
        "pretrain_truth": [3.0, 2.0],  # Beta the "pretrained" model was fitted to
        "pretrain_size": 10_000,       # draws the pretrained Beta is fitted to
        "sample_size": 1000,           # N real / synthetic draws per generation
        "generations": 10,             # generations 0..G
        "replicates": 20,
        "weight_by": "last_fit",       # last_fit | pretrained: density the weights come from
    },
    "softmax_collapse": {
        "vocab_size": 20,              # s tokens
        "distribution": "dirichlet",   # dirichlet | zipf: how the true p is drawn
        "dirichlet_alpha": 1.0,
        "zipf_exponent": 1.0,
        "synthetic_size": 100,         # n synthetic samples per generation
        "real_size": 100,              # N real samples (partially synthetic regime)
        "window": 5,                   # K most recent models (recent_k regime)
        "generations": 100,            # generations 1..G for the sigma / L1 curves
        "max_generations": 10_000,     # cap when running until total collapse
        "replicates": 1000,
    },
    "regression_accumulate": {
        "dim": 10,                     # d features
        "rows": 100,                   # T rows of X, the same in every iteration
        "noise_sd": 1.0,               # sigma of the label noise
        "iterations": 10,              # model-fitting iterations 1..n
        "replicates": 2000,
    },
    "gaussian_refit": {
        "mean": 0.0,
        "sd": 1.0,
        "sample_size": 50,             # N samples per fit
        "generations": 100,            # fits 1..G
        "replicates": 5000,
    },
}

SIGNED_PARAMS = {"mean"}  # parameters that may be zero or negative

SOFTMAX_REGIMES = ("fully_synthetic", "partially_synthetic", "recent_k", "pool")


def resolve_params(name, params=None):
    """Defaults of simulation `name` overridden by `params`; unknown keys are an error."""
    if name not in DEFAULT_PARAMS:
        raise ValueError(f"unknown simulation {name!r}; expected one of {sorted(DEFAULT_PARAMS)}")
    params = dict(params or {})
    unknown = sorted(set(params) - set(DEFAULT_PARAMS[name]))
    if unknown:
        raise ValueError(f"theory.{name}: unknown parameter(s) {unknown}; "
                         f"expected some of {sorted(DEFAULT_PARAMS[name])}")
    merged = {**DEFAULT_PARAMS[name], **params}
    for key, default in DEFAULT_PARAMS[name].items():
        _check_param(f"theory.{name}.{key}", merged[key], default, positive=key not in SIGNED_PARAMS)
        if isinstance(default, int):
            merged[key] = int(merged[key])
    return merged


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)


def _check_param(where, value, default, positive):
    """Raise a ValueError naming `where` if value does not have the type of its default."""
    if isinstance(default, list):
        if (not isinstance(value, (list, tuple)) or len(value) != len(default)
                or not all(_is_number(v) and v > 0 for v in value)):
            raise ValueError(f"{where} must be a list of {len(default)} positive numbers, got {value!r}")
    elif isinstance(default, str):
        if not isinstance(value, str):
            raise ValueError(f"{where} must be a string, got {value!r}")
    elif isinstance(default, int):
        if not _is_number(value) or int(value) != value or value < 1:
            raise ValueError(f"{where} must be a positive integer, got {value!r}")
    elif not _is_number(value) or (positive and value <= 0):
        raise ValueError(f"{where} must be a {'positive' if positive else 'finite'} number, got {value!r}")


# ---------------------------------------------------------------- summaries


def summarise(values, **columns):
    """One row of replicate statistics for a 1-D array of per-replicate values."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    count = len(values)
    mean = values.mean() if count else np.nan
    se = values.std(ddof=1) / np.sqrt(count) if count > 1 else np.nan
    q_lo, q_hi = np.quantile(values, [0.025, 0.975]) if count else (np.nan, np.nan)
    return {**columns, "mean": mean, "se": se, "lo": mean - Z95 * se, "hi": mean + Z95 * se,
            "q_lo": q_lo, "q_hi": q_hi, "n_replicates": count}


def summarise_curve(values, generations, closed_form=None, **columns):
    """Rows (one per generation) for a (replicates, generations) array."""
    closed_form = np.full(len(generations), np.nan) if closed_form is None else closed_form
    return [summarise(values[:, j], **columns, generation=int(g), closed_form=float(closed_form[j]))
            for j, g in enumerate(generations)]


def _frame(name, rows):
    df = pd.DataFrame(rows)
    df.insert(0, "simulation", name)
    return df


# ---------------------------------------------------------------- 1. weighted MLE on Beta


def fit_beta_weighted(x, weights=None, max_iter=100, tol=1e-12):
    """Weighted Beta MLE for every row of `x`, by a vectorised Newton iteration.

    Maximises sum_i w_i log Beta(x_i; a, b) per row. The stationarity conditions are
    psi(a) - psi(a+b) = sum w log x / sum w and psi(b) - psi(a+b) = sum w log(1-x) / sum w;
    the objective is concave, so Newton from the weighted method-of-moments start
    converges in a few steps. Returns arrays (a, b), one entry per row.
    """
    x = np.atleast_2d(np.asarray(x, dtype=float))
    if np.any(~np.isfinite(x)) or np.any(x <= 0) or np.any(x >= 1):
        raise ValueError("fit_beta_weighted: x must lie strictly inside (0, 1)")
    if weights is None:
        w = np.full_like(x, 1.0 / x.shape[1])
    else:
        w = np.atleast_2d(np.asarray(weights, dtype=float))
        if w.shape != x.shape:
            raise ValueError(f"fit_beta_weighted: weights shape {w.shape} != x shape {x.shape}")
        if np.any(~np.isfinite(w)) or np.any(w < 0) or np.any(w.sum(axis=1) <= 0):
            raise ValueError("fit_beta_weighted: weights must be finite, >= 0, and not all zero in a row")
        w = w / w.sum(axis=1, keepdims=True)
    mean_log_x = (w * np.log(x)).sum(axis=1)
    mean_log_1mx = (w * np.log1p(-x)).sum(axis=1)

    m = (w * x).sum(axis=1)
    v = (w * (x - m[:, None]) ** 2).sum(axis=1)
    common = np.maximum(m * (1 - m) / np.maximum(v, 1e-300) - 1, 1e-3)
    a, b = m * common, (1 - m) * common

    for _ in range(max_iter):
        psi_ab = special.digamma(a + b)
        g_a = special.digamma(a) - psi_ab - mean_log_x
        g_b = special.digamma(b) - psi_ab - mean_log_1mx
        tri_ab = special.polygamma(1, a + b)
        j_aa = special.polygamma(1, a) - tri_ab
        j_bb = special.polygamma(1, b) - tri_ab
        det = j_aa * j_bb - tri_ab ** 2
        step_a = (j_bb * g_a + tri_ab * g_b) / det
        step_b = (j_aa * g_b + tri_ab * g_a) / det
        # never step to a non-positive parameter: shrink the step to halve it at most
        ratio = np.maximum(step_a / a, step_b / b)
        shrink = np.where(ratio > 0.5, 0.5 / np.maximum(ratio, 1e-300), 1.0)
        a, b = a - shrink * step_a, b - shrink * step_b
        if np.all(np.abs(shrink * step_a) <= tol * a) and np.all(np.abs(shrink * step_b) <= tol * b):
            break
    return a, b


def beta_mean_sd(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    total = a + b
    return a / total, np.sqrt(a * b / (total ** 2 * (total + 1)))


def weighted_beta_population_params(truth, pretrained, generations, weight_by="last_fit"):
    """Closed form (N -> infinity) of the weighted-MLE fit at generations 0..G.

    Weighting Beta(a, b) data by a Beta(c, d) density gives exactly a Beta(a+c-1, b+d-1)
    target, which the Beta family fits exactly. Generation 0 weights the truth by the
    pretrained density. If each later generation weights the last fit by itself
    (weight_by="last_fit"), a_g - 1 = 2^g (a_truth + a_pre - 2), likewise for b: the
    mean tends to the pretrained mean a_pre / (a_pre + b_pre) while the variance about
    halves each generation. If the weights stay the pretrained density
    (weight_by="pretrained"), a_g = a_truth + (g+1)(a_pre - 1): the mean tends to the
    pretrained mode (a_pre - 1) / (a_pre + b_pre - 2).
    """
    g = np.arange(generations + 1)
    if weight_by == "last_fit":
        a = 1 + 2.0 ** g * (truth[0] + pretrained[0] - 2)
        b = 1 + 2.0 ** g * (truth[1] + pretrained[1] - 2)
    elif weight_by == "pretrained":
        a = truth[0] + (g + 1) * (pretrained[0] - 1)
        b = truth[1] + (g + 1) * (pretrained[1] - 1)
    else:
        raise ValueError(f"weight_by must be 'last_fit' or 'pretrained', got {weight_by!r}")
    return a, b


def _sample_beta(rng, a, b, size):
    eps = 1e-12
    return np.clip(rng.beta(a[:, None], b[:, None], size=(len(a), size)), eps, 1 - eps)


def simulate_weighted_mle(params, seed):
    """Weighted vs plain Beta MLE in a self-consuming loop (bias amplification).

    A "pretrained" Beta is fitted (plain MLE) to `pretrain_size` draws of
    Beta(pretrain_truth). Generation 0 fits `sample_size` real draws of Beta(truth),
    maximum likelihood weighted by the pretrained density; generation g >= 1 fits
    `sample_size` draws of fit g-1, weighted by fit g-1's density (or, with
    weight_by="pretrained", by the pretrained density every time). The control
    ("plain") runs the same loop unweighted. Quantities per (method, generation):
    mean_fit = a/(a+b), sd_fit (sd of the fitted Beta), a, b. `closed_form` is the
    N -> infinity limit (`weighted_beta_population_params`; the truth for plain).
    Rows with method "pretrained" (generation NaN) give the pretrained fit.
    """
    p = resolve_params("weighted_mle", params)
    rng = np.random.default_rng(seed)
    reps, size, gens = p["replicates"], p["sample_size"], p["generations"]
    truth = np.asarray(p["truth"], dtype=float)
    if p["weight_by"] not in ("last_fit", "pretrained"):
        raise ValueError(f"theory.weighted_mle.weight_by must be 'last_fit' or 'pretrained', "
                         f"got {p['weight_by']!r}")

    pre_x = np.clip(rng.beta(*p["pretrain_truth"], size=p["pretrain_size"]), 1e-12, 1 - 1e-12)
    a_pre, b_pre = (float(v[0]) for v in fit_beta_weighted(pre_x[None]))

    rows = []
    for method in ("weighted", "plain"):
        a_fit = np.empty((reps, gens + 1))
        b_fit = np.empty((reps, gens + 1))
        a_src, b_src = np.full(reps, truth[0]), np.full(reps, truth[1])
        w_a, w_b = np.full(reps, a_pre), np.full(reps, b_pre)  # density the weights come from
        for g in range(gens + 1):
            x = _sample_beta(rng, a_src, b_src, size)
            weights = None
            if method == "weighted":
                log_w = stats.beta.logpdf(x, w_a[:, None], w_b[:, None])
                weights = np.exp(log_w - log_w.max(axis=1, keepdims=True))
            a_src, b_src = fit_beta_weighted(x, weights)
            if p["weight_by"] == "last_fit":
                w_a, w_b = a_src, b_src
            a_fit[:, g], b_fit[:, g] = a_src, b_src

        if method == "weighted":
            a_cf, b_cf = weighted_beta_population_params(truth, (a_pre, b_pre), gens, p["weight_by"])
        else:
            a_cf, b_cf = np.full(gens + 1, truth[0]), np.full(gens + 1, truth[1])
        mean_cf, sd_cf = beta_mean_sd(a_cf, b_cf)
        mean_fit, sd_fit = beta_mean_sd(a_fit, b_fit)
        generations = range(gens + 1)
        for quantity, values, cf in (("mean_fit", mean_fit, mean_cf), ("sd_fit", sd_fit, sd_cf),
                                     ("a", a_fit, a_cf), ("b", b_fit, b_cf)):
            rows += summarise_curve(values, generations, cf, quantity=quantity, method=method)

    pre_mean, pre_sd = beta_mean_sd(a_pre, b_pre)
    for quantity, value in (("mean_fit", pre_mean), ("sd_fit", pre_sd), ("a", a_pre), ("b", b_pre)):
        rows.append({"quantity": quantity, "method": "pretrained", "generation": np.nan,
                     "mean": float(value), "se": 0.0, "lo": float(value), "hi": float(value),
                     "q_lo": float(value), "q_hi": float(value), "n_replicates": 1,
                     "closed_form": np.nan})
    return _frame("weighted_mle", rows)


# ---------------------------------------------------------------- 2. softmax statistical model


def true_token_distribution(p, rng):
    """The next-token distribution p over `vocab_size` tokens (Dirichlet draw or Zipf)."""
    s = p["vocab_size"]
    if s < 2:
        raise ValueError(f"theory.softmax_collapse.vocab_size must be >= 2, got {s}")
    if p["distribution"] == "dirichlet":
        return rng.dirichlet(np.full(s, float(p["dirichlet_alpha"])))
    if p["distribution"] == "zipf":
        weights = np.arange(1, s + 1, dtype=float) ** -float(p["zipf_exponent"])
        return weights / weights.sum()
    raise ValueError(f"theory.softmax_collapse.distribution must be 'dirichlet' or 'zipf', "
                     f"got {p['distribution']!r}")


def empirical(rng, count, probs):
    """Row-wise empirical frequencies of `count` categorical draws from each row of probs."""
    probs = probs / probs.sum(axis=1, keepdims=True)
    return rng.multinomial(count, probs) / count


def fully_synthetic_sigma(s0, n, m):
    """E[sigma_m] = 1 - (1 - 1/n)^m (1 - S0), fully synthetic.

    m counts fitted models: generation 1 is fitted on n real samples from p (sigma_0 = S0
    is p itself), generation m on n samples of generation m-1.
    """
    return 1 - (1 - 1 / n) ** np.asarray(m, dtype=float) * (1 - s0)


def partially_synthetic_sigma(s0, n_real, n_synth, m):
    """E[sigma_m] in the partially synthetic regime, for m >= 1.

    Generation 1 is fitted on N real samples; generation m+1 on those same N plus n fresh
    samples of generation m, so p^(m+1) = (1-alpha) p^(1) + alpha * empirical_n(p^(m)),
    alpha = n/(N+n), beta = alpha((1+1/N) alpha - 1/N) = alpha^2 (1 - 1/n). Then
      S_m = (1/N)[1 + 2 alpha - (1-1/N) alpha beta^(m-1)] / D
            + (1-1/N) S0 [1 + alpha + alpha beta^(m-1) / N] / D,   D = 1 + (1+1/N) alpha.
    This is the formula quoted from Seddik et al. with S_{k+1} <-> beta^k, except that the
    sign in front of alpha beta^k / N is '+': only then does S_1 equal E||p^(1)||^2 =
    1/N + (1-1/N) S0, and only then does the simulation agree (tests/test_theory.py).
    Derivation: with q = p^(1), E<p^(m), q> = ||q||^2 for all m, so
    A_(m+1) = (1 - alpha^2)||q||^2 + alpha^2/n + beta A_m given q.
    """
    m = np.asarray(m, dtype=float)
    inv_n = 1 / n_real
    alpha = n_synth / (n_real + n_synth)
    beta = alpha * ((1 + inv_n) * alpha - inv_n)
    power = beta ** (m - 1)
    denom = 1 + (1 + inv_n) * alpha
    return (inv_n * (1 + 2 * alpha - (1 - inv_n) * alpha * power) / denom
            + (1 - inv_n) * s0 * (1 + alpha + alpha * power * inv_n) / denom)


def collapse_time_bounds(s0, support, n):
    """Bounds on E[T], fully synthetic, T = first generation m >= 1 that is a point mass.

    1 + (1-S0)/(1-1/s~) (n-1) <= E[T] <= 1 + (1-S0) n (n-1), s~ = support size of p.
    The lower bound follows from E[1 - sigma_m] <= (1 - 1/s~) P(T > m) summed over m; the
    upper from 1 - sigma_m >= 2(n-1)/n^2 before collapse (which even gives (1-S0) n^2/2).
    """
    lower = 1 + (1 - s0) / (1 - 1 / support) * (n - 1)
    upper = 1 + (1 - s0) * n * (n - 1)
    return lower, upper


def _next_source(regime, state):
    """The distribution whose samples train the next generation."""
    if regime in ("fully_synthetic", "partially_synthetic"):
        return state["current"]
    if regime == "recent_k":
        return np.mean(state["window"], axis=0)
    return state["pool_sum"] / state["pool_count"]


def run_softmax_regime(regime, p_true, params, rng, track_collapse):
    """Run one regime; returns a dict of sigma and l1 curves (replicates, G), per replicate
    collapse_at (0 = not within the run) and collapse_token, and last_generation run.

    Generation 1 is fitted on real samples (n of them; N for partially_synthetic).
    Generation m+1 is fitted on n samples of: generation m (fully_synthetic); generation
    m plus the N real samples of generation 1 (partially_synthetic); a uniform mixture of
    generations max(1, m-K+1)..m (recent_k); a uniform mixture of all generations 1..m
    (pool). A mixture sample picks a model uniformly at random, then a token.
    With track_collapse the replicates not yet collapsed run on past G, up to
    max_generations. Collapse time is the first m with p^(m) a point mass (0 = never).
    """
    if regime not in SOFTMAX_REGIMES:
        raise ValueError(f"unknown regime {regime!r}; expected one of {SOFTMAX_REGIMES}")
    reps, n, n_real = params["replicates"], params["synthetic_size"], params["real_size"]
    horizon, window = params["generations"], params["window"]
    max_gen = max(params["max_generations"], horizon) if track_collapse else horizon

    first_size = n_real if regime == "partially_synthetic" else n
    first = empirical(rng, first_size, np.broadcast_to(p_true, (reps, len(p_true))))
    state = {"current": first, "first": first, "window": [first], "pool_sum": first.copy(),
             "pool_count": 1}
    rows = np.arange(reps)  # replicate ids still simulated
    sigma = np.empty((reps, horizon))
    l1 = np.empty((reps, horizon))
    collapse_at = np.zeros(reps, dtype=int)
    collapse_token = np.full(reps, -1)

    for m in range(1, max_gen + 1):
        if m > 1:
            fit = empirical(rng, n, _next_source(regime, state))
            if regime == "partially_synthetic":
                fit = (n_real * state["first"] + n * fit) / (n_real + n)
            state["current"] = fit
            state["window"] = (state["window"] + [fit])[-window:]
            state["pool_sum"] = state["pool_sum"] + fit
            state["pool_count"] += 1
        current = state["current"]
        point_mass = current.max(axis=1) >= 1 - 1e-12
        newly = point_mass & (collapse_at[rows] == 0)
        collapse_at[rows[newly]] = m
        collapse_token[rows[newly]] = current[newly].argmax(axis=1)
        if m <= horizon:
            sigma[:, m - 1] = (current ** 2).sum(axis=1)
            l1[:, m - 1] = np.abs(current - state["first"]).sum(axis=1)
        if m >= horizon:  # past the curves: keep only replicates still to collapse
            keep = collapse_at[rows] == 0
            if not keep.any():
                break
            if not keep.all():
                rows = rows[keep]
                state = {"current": state["current"][keep], "first": state["first"][keep],
                         "window": [w[keep] for w in state["window"]],
                         "pool_sum": state["pool_sum"][keep], "pool_count": state["pool_count"]}
    return {"sigma": sigma, "l1": l1, "collapse_at": collapse_at, "collapse_token": collapse_token,
            "last_generation": m}


def simulate_softmax_collapse(params, seed):
    """Collapse of a next-token distribution refit on its own samples (Seddik et al.).

    Returns one long DataFrame; `quantity` is one of
      sigma        E||p^(m)||^2 per (regime, generation m = 1..G); closed form for
                   fully_synthetic and partially_synthetic.
      l1_to_first  ||p^(m) - p^(1)||_1 per (regime, generation).
      collapse_time  per regime, generation NaN: mean over replicates that collapsed
                   within max_generations; extra columns bound_lo / bound_hi (fully
                   synthetic bounds on E[T]), n_collapsed, max_generation.
      collapse_onto  fully synthetic, per token (column `token`): share of replicates
                   that collapsed onto it; closed form p_i.
      p_true       the true distribution, per token (mean = closed_form = p_i).
    Regimes partially_synthetic and pool never lose the first model's tokens, so they
    cannot totally collapse; they are run to G only.
    """
    p = resolve_params("softmax_collapse", params)
    rng = np.random.default_rng(seed)
    p_true = true_token_distribution(p, rng)
    s0 = float((p_true ** 2).sum())
    support = int((p_true > 0).sum())
    n, n_real, horizon = p["synthetic_size"], p["real_size"], p["generations"]
    generations = np.arange(1, horizon + 1)

    rows = []
    for regime in SOFTMAX_REGIMES:
        track = regime in ("fully_synthetic", "recent_k")
        run = run_softmax_regime(regime, p_true, p, rng, track)
        sigma, l1, collapse_at = run["sigma"], run["l1"], run["collapse_at"]
        closed = None
        if regime == "fully_synthetic":
            closed = fully_synthetic_sigma(s0, n, generations)
        elif regime == "partially_synthetic":
            closed = partially_synthetic_sigma(s0, n_real, n, generations)
        rows += summarise_curve(sigma, generations, closed, quantity="sigma", method=regime)
        rows += summarise_curve(l1, generations, None, quantity="l1_to_first", method=regime)

        collapsed = collapse_at > 0
        bound_lo, bound_hi = collapse_time_bounds(s0, support, n) if regime == "fully_synthetic" \
            else (np.nan, np.nan)
        row = summarise(collapse_at[collapsed].astype(float), quantity="collapse_time", method=regime,
                        generation=np.nan, closed_form=np.nan)
        row.update(bound_lo=bound_lo, bound_hi=bound_hi, n_collapsed=int(collapsed.sum()),
                   n_replicates=len(collapse_at), max_generation=int(run["last_generation"]))
        rows.append(row)
        if regime == "fully_synthetic":
            rows += _collapse_onto_rows(p_true, run["collapse_token"])
    for token, prob in enumerate(p_true):
        rows.append({"quantity": "p_true", "method": "truth", "token": token, "mean": prob,
                     "closed_form": prob, "n_replicates": 1})
    return _frame("softmax_collapse", rows)


def _collapse_onto_rows(p_true, collapse_token):
    """Share of collapsed runs that ended on each token (closed form: p_i, a martingale)."""
    collapsed = collapse_token[collapse_token >= 0]
    count = len(collapsed)
    rows = []
    for token, prob in enumerate(p_true):
        hits = (collapsed == token).astype(float)
        rows.append(summarise(hits, quantity="collapse_onto", method="fully_synthetic",
                              token=token, generation=np.nan, closed_form=float(prob)))
    return rows if count else []


# ---------------------------------------------------------------- 3. regression: replace vs accumulate


def regression_closed_forms(dim, rows, noise_sd, iterations):
    """E||w_n - w*||^2 for replace and accumulate, averaged over Gaussian designs X.

    Refitting on labels of the previous fit adds H eps_n (H = (X'X)^-1 X') each iteration
    (replace: n sigma^2 E tr (X'X)^-1), while accumulating all labels adds H eps_n / n
    (accumulate: sigma^2 E tr (X'X)^-1 sum 1/i^2 <= pi^2/6 times the first). For isotropic
    Gaussian X with T rows, E tr (X'X)^-1 = d / (T - d - 1).
    """
    if rows <= dim + 1:
        raise ValueError(f"theory.regression_accumulate.rows ({rows}) must exceed dim + 1 ({dim + 1})")
    first = noise_sd ** 2 * dim / (rows - dim - 1)
    n = np.arange(1, iterations + 1)
    return n * first, first * np.cumsum(1.0 / n ** 2), first * np.pi ** 2 / 6


def least_squares_operator(x):
    """H = (X'X)^-1 X' for a batch of designs x (replicates, T, d)."""
    xt = np.swapaxes(x, 1, 2)
    return np.linalg.solve(xt @ x, xt)


def simulate_regression_accumulate(params, seed):
    """Least squares refit on its own labels: replace vs accumulate (Gerstgrasser et al.).

    Per replicate a fresh isotropic Gaussian design X (T x d), kept for all iterations.
    Iteration 1 labels are X w* + noise; iteration i's labels are X w_(i-1) + noise,
    w_(i-1) being the previous fit of the same method. Replace fits the newest labels
    only; accumulate fits all labels so far, stacked (stacking copies of X makes the fit
    H times the mean label vector). Quantity `param_error` = ||w_n - w*||^2 (the excess
    test MSE for isotropic features), per (method, iteration); extra column bound_hi
    (accumulate: pi^2/6 sigma^2 d/(T-d-1)).
    """
    p = resolve_params("regression_accumulate", params)
    rng = np.random.default_rng(seed)
    reps, dim, rows_t, sd, iters = (p["replicates"], p["dim"], p["rows"], p["noise_sd"],
                                    p["iterations"])
    replace_cf, accumulate_cf, bound = regression_closed_forms(dim, rows_t, sd, iters)

    x = rng.standard_normal((reps, rows_t, dim))
    w_star = rng.standard_normal(dim)
    h = least_squares_operator(x)

    def labels(w):
        return np.einsum("rtd,rd->rt", x, w) + sd * rng.standard_normal((reps, rows_t))

    w_replace = np.broadcast_to(w_star, (reps, dim))
    w_accumulate = w_replace
    label_sum = np.zeros((reps, rows_t))
    err = {"replace": np.empty((reps, iters)), "accumulate": np.empty((reps, iters))}
    for i in range(1, iters + 1):
        w_replace = np.einsum("rdt,rt->rd", h, labels(w_replace))
        label_sum += labels(w_accumulate)
        w_accumulate = np.einsum("rdt,rt->rd", h, label_sum / i)
        err["replace"][:, i - 1] = ((w_replace - w_star) ** 2).sum(axis=1)
        err["accumulate"][:, i - 1] = ((w_accumulate - w_star) ** 2).sum(axis=1)

    iterations = np.arange(1, iters + 1)
    out = []
    for method, closed in (("replace", replace_cf), ("accumulate", accumulate_cf)):
        for row in summarise_curve(err[method], iterations, closed, quantity="param_error",
                                   method=method):
            row["bound_hi"] = bound if method == "accumulate" else np.nan
            out.append(row)
    return _frame("regression_accumulate", out)


# ---------------------------------------------------------------- 4. Gaussian refit


def gaussian_refit_closed_forms(sd, size, generations):
    """Expectations after n fits (fit 1 on real data), for n = 1..G, ddof=0 variances.

    E[var_n] = sigma^2 ((N-1)/N)^n; E[(mean_n - mu)^2] = sigma^2 (1 - ((N-1)/N)^n)
    (the two add up to sigma^2); E[log var_n] = log sigma^2 + n E log(chi2_(N-1) / N),
    with E log chi2_k = psi(k/2) + log 2: the typical run shrinks faster than the mean.
    """
    n = np.arange(1, generations + 1)
    shrink = ((size - 1) / size) ** n
    log_step = special.digamma((size - 1) / 2) + np.log(2) - np.log(size)
    return sd ** 2 * shrink, sd ** 2 * (1 - shrink), np.log(sd ** 2) + n * log_step


def simulate_gaussian_refit(params, seed):
    """Fit N(mu, var) to N samples, sample N from the fit, refit, ... (Shumailov et al.).

    Quantities per generation n = 1..G (n = number of fits; fit 1 uses real data):
    variance (ddof=0), log_variance, mean, mean_sq_error (mean_n - mu)^2, each with its
    closed form (`gaussian_refit_closed_forms`; mean: mu).
    """
    p = resolve_params("gaussian_refit", params)
    if p["sample_size"] < 2:
        raise ValueError("theory.gaussian_refit.sample_size must be >= 2")
    rng = np.random.default_rng(seed)
    reps, size, gens, mu, sd = p["replicates"], p["sample_size"], p["generations"], p["mean"], p["sd"]
    means = np.empty((reps, gens))
    variances = np.empty((reps, gens))
    loc, scale = np.full(reps, float(mu)), np.full(reps, float(sd))
    for g in range(gens):
        x = loc[:, None] + scale[:, None] * rng.standard_normal((reps, size))
        loc, var = x.mean(axis=1), x.var(axis=1)
        scale = np.sqrt(var)
        means[:, g], variances[:, g] = loc, var

    var_cf, mse_cf, log_var_cf = gaussian_refit_closed_forms(sd, size, gens)
    generations = np.arange(1, gens + 1)
    rows = []
    for quantity, values, closed in (("variance", variances, var_cf),
                                     ("log_variance", np.log(variances), log_var_cf),
                                     ("mean", means, np.full(gens, float(mu))),
                                     ("mean_sq_error", (means - mu) ** 2, mse_cf)):
        rows += summarise_curve(values, generations, closed, quantity=quantity, method="refit")
    return _frame("gaussian_refit", rows)


SIMULATIONS = {
    "weighted_mle": simulate_weighted_mle,
    "softmax_collapse": simulate_softmax_collapse,
    "regression_accumulate": simulate_regression_accumulate,
    "gaussian_refit": simulate_gaussian_refit,
}


def run_simulation(name, params=None, seed=0):
    """Run simulation `name` with `params` overriding its defaults."""
    if name not in SIMULATIONS:
        raise ValueError(f"unknown simulation {name!r}; expected one of {sorted(SIMULATIONS)}")
    return SIMULATIONS[name](params or {}, seed)

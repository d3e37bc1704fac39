"""Vectorised neuron statistics vs a per-unit scipy + statsmodels loop, side by side.

Shape of the study: 198 model rows (6 setups x 3 replicates x 11 generations; each
replicate's generation-0 model shared by its 6 setups, so 183 distinct models) x 9,216
units (GPT-2: 12 layers x 768) x 4 relations. The vectorised path runs in full; the
loop (pearsonr on the distinct models + OLS with panel HAC, statsmodels
cov_type="hac-panel" grouped by (setup, replicate), per unit and relation) runs on a
subset of units and is extrapolated linearly to all units, which is fair because each
unit is an independent fit.

    .venv/bin/python benchmarks/bench_neuron_stats.py [--loop-units 300]
"""

import argparse
import time

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats as scipy_stats

from selfconsuming import neurons

SETUPS = ("deterministic", "beam", "nucleus", "overfit", "preserve", "accumulate")


def synthetic_tables(rng, n_layers, hidden, replicates=3, generations=11):
    """Unit tables and a summary laid out as the workflow writes them (shared gen0 per replicate)."""
    keys = [(s, r, g, f"models/_shared/rep{r}/gen0" if g == 0 else f"models/{s}/rep{r}/gen{g}")
            for s in SETUPS for r in range(replicates) for g in range(generations)]
    n_units = n_layers * hidden
    summary = pd.DataFrame([k[:3] for k in keys], columns=["setup", "replicate", "generation"])
    summary["kind"] = "model"
    summary["share_right"] = rng.uniform(0.2, 0.6, len(keys))
    summary["tqi_mean"] = rng.uniform(0.5, 0.9, len(keys))
    tables = []
    for _ in range(2):
        vectors = {model: rng.normal(size=n_units) for model in dict.fromkeys(k[3] for k in keys)}
        tables.append(neurons.unit_frame([(*k, vectors[k[3]]) for k in keys], n_layers, hidden))
    return tables[0], tables[1], summary


def loop_statistics(keys, U, y, maxlags, n_units):
    """What one would write without vectorising: scipy and statsmodels per unit."""
    dU, dy, series = neurons.difference_within_series(U, y, keys["setup"], keys["replicate"], keys["generation"])
    U_models, y_models = neurons.merge_shared_models(U, y, keys["model"])
    for j in range(n_units):
        scipy_stats.pearsonr(U_models[:, j], y_models)
        fit = sm.OLS(dy, sm.add_constant(dU[:, j])).fit(
            cov_type="hac-panel", cov_kwds={"groups": series, "maxlags": maxlags})
        fit.params, fit.bse, fit.tvalues, fit.pvalues


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--hidden", type=int, default=768)
    parser.add_argument("--replicates", type=int, default=3)
    parser.add_argument("--loop-units", type=int, default=300, help="units timed in the loop")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    activations, weights, summary = synthetic_tables(rng, args.layers, args.hidden, args.replicates)
    n_units = args.layers * args.hidden
    n_relations = len(neurons.RELATIONS)

    vector_times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        stats = neurons.neuron_statistics(activations, weights, summary, hac_lags=1)
        vector_times.append(time.perf_counter() - start)
    vector_s = min(vector_times)
    assert len(stats) == n_relations * n_units

    keys, U, _ = neurons.split_unit_frame(weights)
    y = summary["share_right"].to_numpy()  # same row order as the tables
    m = min(args.loop_units, n_units)
    start = time.perf_counter()
    loop_statistics(keys, U, y, 1, m)
    loop_subset_s = time.perf_counter() - start
    loop_s = loop_subset_s / m * n_units * n_relations

    print(f"model rows {len(summary)} ({keys['model'].nunique()} distinct models, "
          f"{int(stats['n_series'].iloc[0])} series) x units {n_units} x relations {n_relations} "
          f"= {n_relations * n_units} tests")
    print(f"vectorised neuron_statistics (end to end, DataFrames included): "
          f"{vector_s:.3f} s (best of {args.repeats})")
    print(f"per-unit scipy.pearsonr + statsmodels OLS hac-panel loop: {loop_subset_s:.3f} s for "
          f"{m} units of 1 relation; extrapolated linearly to {n_relations} x {n_units}: {loop_s:.1f} s")
    print(f"speed-up (extrapolated loop / vectorised): {loop_s / vector_s:.0f}x")


if __name__ == "__main__":
    main()

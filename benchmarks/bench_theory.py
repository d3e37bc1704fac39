"""Time the theory simulations at default settings, and the vectorised weighted Beta fit
against per-replicate scipy.optimize, side by side in one run.

Run: .venv/bin/python benchmarks/bench_theory.py
"""

import time

import numpy as np
from scipy import optimize, stats

from selfconsuming import theory


def scipy_fit(x, w):
    def neg_loglik(log_ab):
        a, b = np.exp(log_ab)
        return -np.sum(w * stats.beta.logpdf(x, a, b)) / w.sum()
    return np.exp(optimize.minimize(neg_loglik, np.zeros(2), method="L-BFGS-B").x)


def main(replicates=20, size=1000, seed=0):
    total = 0.0
    for name in theory.SIMULATIONS:
        start = time.perf_counter()
        theory.run_simulation(name, seed=seed)
        took = time.perf_counter() - start
        total += took
        print(f"{name:24s} default settings: {took:6.2f} s")
    print(f"{'all simulations':24s} default settings: {total:6.2f} s")

    rng = np.random.default_rng(seed)
    x = rng.beta(2.0, 2.0, size=(replicates, size))
    w = stats.beta.pdf(x, 3.0, 2.0)
    start = time.perf_counter()
    a, b = theory.fit_beta_weighted(x, w)
    newton = time.perf_counter() - start
    start = time.perf_counter()
    ref = np.array([scipy_fit(x[i], w[i]) for i in range(replicates)])
    scipy_time = time.perf_counter() - start
    worst = np.max(np.abs(np.column_stack([a, b]) / ref - 1))
    print(f"weighted Beta fit, {replicates} replicates x {size}: vectorised Newton {newton * 1e3:.1f} ms, "
          f"scipy L-BFGS-B loop {scipy_time * 1e3:.1f} ms, ratio {scipy_time / newton:.1f}x, "
          f"max relative difference {worst:.1e}")


if __name__ == "__main__":
    main()

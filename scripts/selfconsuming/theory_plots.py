"""Figures for the statistical simulations: simulated means with bands, closed forms dashed.

Every plot function takes the tidy DataFrame of `selfconsuming.theory.simulate_<name>`
and a PNG path, and writes the PNG and a PDF beside it (same stem), sized for a paper
page. Visual grammar shared by all figures: solid line with markers = Monte Carlo mean,
dark band = its 95% confidence interval, light band = middle 95% of single runs,
dashed line = closed form.
"""


import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from selfconsuming.figures import save_figure  # noqa: E402

STYLE = {
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 7.5,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
}
COLORS = {
    "weighted": "#c0392b", "plain": "#2c7fb8",
    "fully_synthetic": "#c0392b", "partially_synthetic": "#2c7fb8", "recent_k": "#e69f00",
    "pool": "#009e73",
    "replace": "#c0392b", "accumulate": "#2c7fb8",
    "refit": "#2c7fb8", "geometric": "#c0392b",
}
LABELS = {
    "weighted": "weighted MLE", "plain": "plain MLE (control)",
    "fully_synthetic": "fully synthetic", "partially_synthetic": "N real + n synthetic",
    "recent_k": "last K models", "pool": "pool of all models",
    "replace": "replace", "accumulate": "accumulate",
}


def style_legend_handles(closed_label="closed form", spread=True):
    """Legend entries that explain the shared visual grammar (not tied to one colour)."""
    handles = [
        Line2D([], [], color="0.2", marker="o", markersize=3, label="simulated mean"),
        Patch(color="0.2", alpha=0.35, label="95% CI of the mean"),
        Patch(color="0.2", alpha=0.12, label="middle 95% of runs"),
        Line2D([], [], color="0.2", linestyle="--", label=closed_label),
    ]
    return handles if spread else handles[:2] + handles[3:]


def draw_curve(ax, rows, color, label=None, transform=None, spread=True):
    """Mean with its CI band (and the run-to-run band); closed form dashed where present."""
    rows = rows.sort_values("generation")
    f = transform or (lambda v: v)
    x = rows["generation"].to_numpy(float)
    if spread:
        ax.fill_between(x, f(rows["q_lo"]), f(rows["q_hi"]), color=color, alpha=0.12, linewidth=0)
    ax.fill_between(x, f(rows["lo"]), f(rows["hi"]), color=color, alpha=0.35, linewidth=0)
    markevery = max(1, len(x) // 12)
    ax.plot(x, f(rows["mean"]), color=color, marker="o", markersize=2.5, linewidth=1.2,
            markevery=markevery, label=label)
    if rows["closed_form"].notna().any():
        ax.plot(x, f(rows["closed_form"]), color=color, linestyle="--", linewidth=1.2, alpha=0.9,
                zorder=5)


def _select(df, quantity, method=None):
    rows = df[df["quantity"] == quantity]
    if method is not None:
        rows = rows[rows["method"] == method]
    if rows.empty:
        raise ValueError(f"no rows with quantity={quantity!r}" + (f", method={method!r}" if method else ""))
    return rows


def _method_legend(ax, methods, loc, extra=()):
    handles = [Line2D([], [], color=COLORS[m], linewidth=2, label=LABELS.get(m, m)) for m in methods]
    ax.legend(handles=handles + list(extra), loc=loc, frameon=True, framealpha=0.9)


def plot_weighted_mle(df, out_png):
    """Fitted Beta mean and spread per generation, weighted vs plain MLE."""
    with plt.rc_context(STYLE):
        fig, (ax_mean, ax_sd) = plt.subplots(1, 2, figsize=(7.0, 2.9), constrained_layout=True)
        methods = ["weighted", "plain"]
        for method in methods:
            draw_curve(ax_mean, _select(df, "mean_fit", method), COLORS[method])
            draw_curve(ax_sd, _select(df, "sd_fit", method), COLORS[method])
        truth_mean = _select(df, "mean_fit", "plain")["closed_form"].iloc[0]
        pre_mean = _select(df, "mean_fit", "pretrained")["mean"].iloc[0]
        ax_mean.axhline(truth_mean, color="0.4", linestyle=":", linewidth=1)
        ax_mean.axhline(pre_mean, color="0.4", linestyle="-.", linewidth=1)
        refs = [Line2D([], [], color="0.4", linestyle=":", label=f"truth mean {truth_mean:.2f}"),
                Line2D([], [], color="0.4", linestyle="-.", label=f"pretrained mean {pre_mean:.3f}")]
        ax_mean.set_xlabel("generation (0 = fit to real data)")
        ax_mean.set_ylabel("mean of fitted Beta, a/(a+b)")
        ax_mean.set_title("(a) the fitted mean drifts to the pretrained mean")
        ax_mean.set_ylim(min(0.45, ax_mean.get_ylim()[0]), max(0.65, ax_mean.get_ylim()[1]))
        _method_legend(ax_mean, methods, "center right", refs)
        ax_sd.set_yscale("log")
        ax_sd.set_xlabel("generation (0 = fit to real data)")
        ax_sd.set_ylabel("sd of fitted Beta (log scale)")
        ax_sd.set_title("(b) spread of the fitted density")
        ax_sd.legend(handles=style_legend_handles(r"closed form ($N \to \infty$)"), loc="lower left",
                     framealpha=0.9)
        return save_figure(fig, out_png, tight=True)


def plot_softmax_collapse(df, out_png):
    """sigma_m and L1 drift per regime, collapse times vs bounds, collapse targets vs p_i."""
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(2, 2, figsize=(7.0, 5.6), constrained_layout=True)
        (ax_sigma, ax_l1), (ax_time, ax_onto) = axes
        regimes = [r for r in LABELS if r in set(df.loc[df["quantity"] == "sigma", "method"])]
        for regime in regimes:
            draw_curve(ax_sigma, _select(df, "sigma", regime), COLORS[regime])
            draw_curve(ax_l1, _select(df, "l1_to_first", regime), COLORS[regime])
        ax_sigma.set_xlabel("generation m (1 = fit to real samples)")
        ax_sigma.set_ylabel(r"$\sigma_m = \|p^{(m)}\|_2^2$ (1 = collapsed)")
        ax_sigma.set_title(r"(a) concentration $\sigma_m$")
        _method_legend(ax_sigma, regimes, "upper left")
        ax_l1.set_xlabel("generation m (1 = fit to real samples)")
        ax_l1.set_ylabel(r"$\|p^{(m)} - p^{(1)}\|_1$ (max 2)")
        ax_l1.set_title("(b) drift from the first fitted model")
        ax_l1.legend(handles=style_legend_handles(), loc="upper left", framealpha=0.9)

        times = df[(df["quantity"] == "collapse_time") & (df["n_collapsed"] > 0)]
        for i, row in enumerate(times.itertuples()):
            color = COLORS[row.method]
            ax_time.plot([i, i], [row.q_lo, row.q_hi], color=color, alpha=0.4, linewidth=6,
                         solid_capstyle="butt")
            ax_time.errorbar(i, row.mean, yerr=[[row.mean - row.lo], [row.hi - row.mean]], color=color,
                             marker="o", markersize=4, capsize=3)
            if np.isfinite(row.bound_lo):
                for bound, text, va in ((row.bound_lo, "lower bound", "top"), (row.bound_hi, "upper bound", "bottom")):
                    ax_time.hlines(bound, i - 0.3, i + 0.3, color=color, linestyle="--", linewidth=1.2)
                    ax_time.annotate(f"{text} {bound:.0f}", (i, bound), ha="center", va=va, fontsize=7,
                                     xytext=(0, 2 if va == "bottom" else -2), textcoords="offset points")
            ax_time.annotate(f"mean {row.mean:.0f}", (i + 0.08, row.mean), ha="left", va="center",
                             fontsize=7)
        ax_time.set_xticks(range(len(times)), [LABELS[m] for m in times["method"]])
        ax_time.set_xlim(-0.7, len(times) - 0.1)
        ax_time.set_yscale("log")
        low = np.nanmin([times["q_lo"].min(), times["bound_lo"].min()])
        high = np.nanmax([times["q_hi"].max(), times["bound_hi"].max()])
        ax_time.set_ylim(low / 5, high * 60)  # room for the legend above and the note below
        ax_time.set_ylabel("total-collapse time T (generations, log)")
        ax_time.set_title("(c) total-collapse time T")
        ax_time.legend(handles=[
            Line2D([], [], color="0.2", marker="o", markersize=4, label="mean ± 95% CI"),
            Patch(color="0.2", alpha=0.4, label="middle 95% of runs"),
            Line2D([], [], color="0.2", linestyle="--", label="closed-form bounds on E[T]")],
            loc="upper right", framealpha=0.9)
        censored = df[(df["quantity"] == "collapse_time") & (df["n_collapsed"] == 0)]
        if len(censored):
            lines = [f"{LABELS[r.method]}: none of {int(r.n_replicates)} runs by gen. {int(r.max_generation)}"
                     for r in censored.itertuples()]
            ax_time.text(0.98, 0.02, "never collapsed:\n" + "\n".join(lines), transform=ax_time.transAxes,
                         fontsize=7, ha="right", va="bottom")

        onto = _select(df, "collapse_onto").sort_values("closed_form")
        top = max(onto["closed_form"].max(), onto["hi"].max()) * 1.1
        ax_onto.plot([0, top], [0, top], color="0.3", linestyle="--", linewidth=1,
                     label=r"closed form: P(collapse onto $i$) = $p_i$")
        ax_onto.errorbar(onto["closed_form"], onto["mean"], yerr=1.96 * onto["se"].fillna(0),
                         fmt="o", markersize=3, color=COLORS["fully_synthetic"], capsize=2,
                         label="simulated share ± 95% CI")
        ax_onto.set_xlim(0, top)
        ax_onto.set_ylim(0, top)
        ax_onto.set_xlabel(r"true token probability $p_i$")
        ax_onto.set_ylabel(r"share of runs ending on token $i$")
        ax_onto.set_title("(d) where fully synthetic runs collapse")
        ax_onto.legend(loc="upper left", framealpha=0.9)
        return save_figure(fig, out_png, tight=True)


def plot_regression_accumulate(df, out_png):
    """Parameter error per iteration: replacing data grows linearly, accumulating stays bounded."""
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(4.6, 3.2), constrained_layout=True)
        methods = ["replace", "accumulate"]
        for method in methods:
            draw_curve(ax, _select(df, "param_error", method), COLORS[method])
        bound = _select(df, "param_error", "accumulate")["bound_hi"].iloc[0]
        ax.axhline(bound, color=COLORS["accumulate"], linestyle=":", linewidth=1.2)
        bound_handle = Line2D([], [], color=COLORS["accumulate"], linestyle=":",
                              label=r"accumulate bound: $\pi^2/6$ × iteration 1")
        ax.set_xlabel("model-fitting iteration n (1 = labels from w*)")
        ax.set_ylabel(r"$E\|w_n - w^*\|^2$ (squared label units)")
        ax.set_title("Linear regression on its own labels")
        _method_legend(ax, methods, "upper left", [bound_handle] + style_legend_handles())
        return save_figure(fig, out_png, tight=True)


def plot_gaussian_refit(df, out_png):
    """Fitted variance shrinks (mean and typical run); the mean wanders off by the rest."""
    with plt.rc_context(STYLE):
        fig, (ax_var, ax_mean) = plt.subplots(1, 2, figsize=(7.0, 2.9), constrained_layout=True)
        draw_curve(ax_var, _select(df, "variance"), COLORS["refit"])
        # quantiles of log-variance map onto those of the variance: draw the run band once
        draw_curve(ax_var, _select(df, "log_variance"), COLORS["geometric"], transform=np.exp, spread=False)
        ax_var.set_yscale("log")
        ax_var.set_xlabel("generation n (number of fits; 1 = fit to real data)")
        ax_var.set_ylabel(r"fitted variance $\hat\sigma^2_n$ (data units², log)")
        ax_var.set_title("(a) variance collapses")
        handles = [Line2D([], [], color=COLORS["refit"], linewidth=2, label=r"mean $E[\hat\sigma^2_n]$"),
                   Line2D([], [], color=COLORS["geometric"], linewidth=2,
                          label=r"typical run $\exp E[\log\hat\sigma^2_n]$")]
        ax_var.legend(handles=handles + style_legend_handles(), loc="lower left", framealpha=0.9)

        draw_curve(ax_mean, _select(df, "mean_sq_error"), COLORS["refit"], spread=False)
        ax_mean.set_xlabel("generation n (number of fits; 1 = fit to real data)")
        ax_mean.set_ylabel(r"$E(\hat\mu_n - \mu)^2$ (data units²)")
        ax_mean.set_title("(b) the fitted mean random-walks away")
        ax_mean.legend(handles=style_legend_handles(spread=False), loc="upper left", framealpha=0.9)
        return save_figure(fig, out_png, tight=True)


PLOTS = {
    "weighted_mle": plot_weighted_mle,
    "softmax_collapse": plot_softmax_collapse,
    "regression_accumulate": plot_regression_accumulate,
    "gaussian_refit": plot_gaussian_refit,
}


def plot_simulation(name, df, out_path):
    """Plot simulation `name` to out_path (.png) and the PDF beside it; returns both paths."""
    if name not in PLOTS:
        raise ValueError(f"no plot for simulation {name!r}; expected one of {sorted(PLOTS)}")
    return PLOTS[name](df, out_path)

"""Figures of the study: leaning shares, quality and diversity across generations.

Every figure function takes the tidy tables the workflow writes (metrics/summary.csv,
per-article scores), draws one figure, and writes a PNG and a PDF beside it. Colours
come from `setup_colours`, so a setup looks the same in every figure.
"""

import functools
import hashlib
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from selfconsuming import LEANINGS  # noqa: E402
from selfconsuming.io import atomic_path  # noqa: E402

DECODING_SETUPS = ("deterministic", "beam", "nucleus")
MITIGATION_SETUPS = ("overfit", "preserve", "accumulate")
STUDY_SETUPS = DECODING_SETUPS + MITIGATION_SETUPS
REFERENCE_KINDS = ("human", "base")

# Fixed colours of the study (colour-blind friendly Okabe-Ito hues plus two tab10 ones).
STUDY_COLOURS = {
    "deterministic": "#0072B2",  # blue
    "beam": "#E69F00",  # orange
    "nucleus": "#009E73",  # green
    "overfit": "#D55E00",  # vermillion
    "preserve": "#CC79A7",  # purple-pink
    "accumulate": "#56B4E9",  # sky blue
}
REFERENCE_COLOURS = {"human": "#000000", "base": "#7f7f7f"}
REFERENCE_LABELS = {"human": "human corpus", "base": "base model"}
REFERENCE_STYLES = {"human": "--", "base": ":"}
# Colours left for setups a user adds (tab20 minus greys and the hues above).
EXTRA_COLOURS = (
    "#8c564b", "#bcbd22", "#17becf", "#9467bd", "#e377c2", "#2ca02c",
    "#1f77b4", "#ff7f0e", "#d62728", "#aec7e8", "#ffbb78", "#98df8a",
    "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5",
)
MARKERS = {"deterministic": "o", "beam": "s", "nucleus": "^",
           "overfit": "D", "preserve": "v", "accumulate": "P"}
EXTRA_MARKERS = ("X", "*", "h", "<", ">", "p", "d", "8")

LEANING_LABELS = {"left": "left-leaning", "center": "center", "right": "right-leaning"}
# Diversity column -> (panel title, y-axis unit). Higher is more diverse for all.
DIVERSITY_METRICS = {
    "unique_1": ("Unique-1 (token sample)", "type-token ratio"),
    "unique_2": ("Unique-2 (token sample)", "type-token ratio"),
    "unique_3": ("Unique-3 (token sample)", "type-token ratio"),
    "distinct_1": ("Distinct-1 (articles)", "distinct ratio"),
    "distinct_2": ("Distinct-2 (articles)", "distinct ratio"),
    "distinct_3": ("Distinct-3 (articles)", "distinct ratio"),
    "self_bleu_diversity": ("Self-BLEU diversity", "1 - Self-BLEU"),
    "semantic_diversity": ("Semantic diversity", "cosine distance"),
    "syntactic_diversity": ("Syntactic diversity", "WL-kernel distance"),
}
METRIC_LABELS = {
    "tqi": "Text quality index (0-3, 3 = clean)",
    "ppl": "Perplexity (reference LM; lower = more fluent)",
    "oracle_valid": "Sentences the oracle parses (share)",
}

PAPER_RC = {
    "font.size": 9, "axes.titlesize": 9, "axes.labelsize": 9, "xtick.labelsize": 8,
    "ytick.labelsize": 8, "legend.fontsize": 8, "figure.dpi": 100,
    "axes.spines.top": False, "axes.spines.right": False,
}


# ---------------------------------------------------------------- colours and styles

def _stable_index(name, n):
    """An index in [0, n) from the name alone (not Python's salted hash)."""
    return int(hashlib.md5(str(name).encode()).hexdigest(), 16) % n


def setup_colours(setups) -> dict:
    """Colour per setup: fixed for the study's six, stable for any other name.

    Unknown names take a slot picked from their own name, moving to the next free slot
    on a clash (in sorted name order), so the same set of setups always gets the same
    colours. The references `human` (black) and `base` (grey) are always included.
    """
    colours = dict(REFERENCE_COLOURS)
    taken = set()
    for name in setups:
        if name in STUDY_COLOURS:
            colours[name] = STUDY_COLOURS[name]
    extras = sorted({str(s) for s in setups} - set(STUDY_COLOURS) - set(REFERENCE_COLOURS))
    for name in extras:
        slot = _stable_index(name, len(EXTRA_COLOURS))
        for step in range(len(EXTRA_COLOURS)):
            candidate = (slot + step) % len(EXTRA_COLOURS)
            if candidate not in taken or len(taken) >= len(EXTRA_COLOURS):
                break
        taken.add(candidate)
        colours[name] = EXTRA_COLOURS[candidate]
    return colours


def setup_marker(name) -> str:
    """Marker per setup, so lines stay apart in greyscale print too."""
    if name in MARKERS:
        return MARKERS[name]
    return EXTRA_MARKERS[_stable_index(name, len(EXTRA_MARKERS))]


# ---------------------------------------------------------------- table helpers

def _require_columns(df, columns, what):
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s) {missing}; has {list(df.columns)}")


def _setups_of(summary, setups=None):
    """Model setups to plot: the given ones (checked) or all, study order first."""
    _require_columns(summary, ["setup", "generation", "kind"], "summary")
    present = list(dict.fromkeys(summary.loc[summary["kind"] == "model", "setup"]))
    if setups is None:
        study = [s for s in STUDY_SETUPS if s in present]
        return study + [s for s in present if s not in STUDY_SETUPS]
    unknown = [s for s in setups if s not in present]
    if unknown:
        raise ValueError(f"setups {unknown} have no model rows in the summary; "
                         f"it has {present}")
    return list(setups)


def _model_rows(summary, setup):
    rows = summary[(summary["kind"] == "model") & (summary["setup"] == setup)]
    return rows.sort_values("generation")


def _reference_row(summary, kind):
    """The human or base row of the summary, or None when absent."""
    rows = summary[summary["kind"] == kind]
    return None if rows.empty else rows.iloc[0]


def _colours_for(summary):
    """Colours computed from every setup in the summary, so subsets agree."""
    return setup_colours(_setups_of(summary))


def _metric_columns(df, metric):
    """(mean, lo, hi) column names for a metric; lo/hi None when there is no CI."""
    if f"{metric}_mean" in df.columns:
        mean = f"{metric}_mean"
    elif metric in df.columns:
        mean = metric
    else:
        raise ValueError(f"summary has no column {metric!r} or {metric + '_mean'!r}")
    lo, hi = f"{metric}_lo", f"{metric}_hi"
    if lo in df.columns and hi in df.columns:
        return mean, lo, hi
    return mean, None, None


# ---------------------------------------------------------------- drawing helpers

def save_figure(fig, out_png, dpi=200, tight=False):
    """Write the figure as PNG and as PDF beside it (same stem), atomically; every figure module uses this.

    `tight` crops to the drawn content (bbox_inches="tight") for figures laid out without it.
    """
    out_png = Path(out_png)
    if out_png.suffix.lower() != ".png":
        raise ValueError(f"figure path must end in .png (the PDF goes beside it), got {out_png}")
    out_pdf = out_png.with_suffix(".pdf")
    extra = {"bbox_inches": "tight"} if tight else {}
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png", **extra)
    with atomic_path(out_pdf) as tmp:
        fig.savefig(tmp, format="pdf", **extra)
    plt.close(fig)
    return out_png, out_pdf


def _new_figure(nrows=1, ncols=1, width=6.0, height=3.6, **kwargs):
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), layout="constrained",
                             squeeze=False, **kwargs)
    return fig, axes


def _line_with_band(ax, x, mean, lo, hi, colour, label, marker="o", scale=1.0):
    ax.plot(x, mean * scale, color=colour, marker=marker, markersize=3.5, linewidth=1.4,
            label=label)
    if lo is not None and hi is not None:
        ax.fill_between(x, lo * scale, hi * scale, color=colour, alpha=0.15, linewidth=0)


def _reference_lines(ax, summary, mean_col, scale=1.0):
    """Horizontal lines for the human corpus and the base model (when they have a value)."""
    for kind in REFERENCE_KINDS:
        row = _reference_row(summary, kind)
        if row is None or pd.isna(row.get(mean_col)):
            continue
        ax.axhline(row[mean_col] * scale, color=REFERENCE_COLOURS[kind],
                   linestyle=REFERENCE_STYLES[kind], linewidth=1.1,
                   label=REFERENCE_LABELS[kind])


def _integer_generations(ax):
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("Generation")


def _legend_below(fig, axes, ncol=4):
    """One legend for the whole figure, below the panels, without duplicate entries."""
    handles, labels = [], []
    for ax in np.ravel(axes):
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncol=min(ncol, len(labels)),
                   frameon=False)


def _draw_metric(ax, summary, metric, setups, colours, scale=1.0):
    mean_col, lo_col, hi_col = _metric_columns(summary, metric)
    for setup in setups:
        rows = _model_rows(summary, setup)
        _line_with_band(ax, rows["generation"], rows[mean_col],
                        rows[lo_col] if lo_col else None, rows[hi_col] if hi_col else None,
                        colours[setup], setup, setup_marker(setup), scale)
    _reference_lines(ax, summary, mean_col, scale)
    _integer_generations(ax)


def _paper_style(plot):
    """Draw with paper-sized fonts (rc settings are read when each artist is made)."""
    @functools.wraps(plot)
    def wrapper(*args, **kwargs):
        with plt.rc_context(PAPER_RC):
            return plot(*args, **kwargs)
    return wrapper


# ---------------------------------------------------------------- figures

@_paper_style
def plot_leaning_distribution(summary, out_png):
    """Leaning shares of the human corpus, the base model and generation 0 of each setup.

    Shows where each setup starts before the loop feeds on itself; a setup without a
    generation 0 row is shown at its first generation (named in the legend).
    """
    share_cols = [f"share_{x}{s}" for x in LEANINGS for s in ("", "_lo", "_hi")]
    _require_columns(summary, share_cols, "summary")
    colours = _colours_for(summary)
    bars = []  # (label, colour, row)
    for kind in REFERENCE_KINDS:
        row = _reference_row(summary, kind)
        if row is not None:
            bars.append((REFERENCE_LABELS[kind], colours[kind], row))
    for setup in _setups_of(summary):
        rows = _model_rows(summary, setup)
        first = rows.iloc[0]
        label = setup if first["generation"] == 0 else f"{setup} (gen {int(first['generation'])})"
        bars.append((label, colours[setup], first))
    if not bars:
        raise ValueError("summary has no human, base or model rows to plot")

    fig, axes = _new_figure(width=6.5, height=3.4)
    ax = axes[0, 0]
    x = np.arange(len(LEANINGS))
    width = 0.8 / len(bars)
    for i, (label, colour, row) in enumerate(bars):
        mean = np.array([row[f"share_{x_}"] for x_ in LEANINGS]) * 100
        lo = np.array([row[f"share_{x_}_lo"] for x_ in LEANINGS]) * 100
        hi = np.array([row[f"share_{x_}_hi"] for x_ in LEANINGS]) * 100
        err = np.vstack([np.clip(mean - lo, 0, None), np.clip(hi - mean, 0, None)])
        ax.bar(x - 0.4 + width * (i + 0.5), mean, width, color=colour, label=label,
               edgecolor="white", linewidth=0.5)
        ax.errorbar(x - 0.4 + width * (i + 0.5), mean, yerr=err, fmt="none",
                    ecolor="#444444" if colour != REFERENCE_COLOURS["human"] else "#aaaaaa",
                    elinewidth=0.9, capsize=1.5)
    ax.axhline(100 / len(LEANINGS), color="#bbbbbb", linewidth=0.8, zorder=0,
               label="uniform (33.3%)")
    ax.set_xticks(x, [LEANING_LABELS[x_] for x_ in LEANINGS])
    ax.set_ylabel("Share of articles (%)")
    ax.set_title("Leaning before the loop: human corpus, base model, generation 0 (95% CI)")
    _legend_below(fig, axes, ncol=4)
    return save_figure(fig, out_png)


@_paper_style
def plot_share_across_generations(summary, out_png, leaning="right", setups=None, title=None):
    """Share of articles labelled `leaning`, per generation, one line per setup."""
    if leaning not in LEANINGS:
        raise ValueError(f"leaning must be one of {LEANINGS}, got {leaning!r}")
    colours = _colours_for(summary)
    setups = _setups_of(summary, setups)
    fig, axes = _new_figure(width=5.0, height=3.6)
    ax = axes[0, 0]
    _draw_metric(ax, summary, f"share_{leaning}", setups, colours, scale=100)
    ax.set_ylabel(f"{LEANING_LABELS[leaning].capitalize()} articles (%)")
    ax.set_title(title or f"Share of {LEANING_LABELS[leaning]} articles (95% CI)")
    _legend_below(fig, axes, ncol=4)
    return save_figure(fig, out_png)


@_paper_style
def plot_all_shares(summary, out_png, setups=None):
    """Left, center and right shares side by side (one panel each, shared legend)."""
    colours = _colours_for(summary)
    setups = _setups_of(summary, setups)
    fig, axes = _new_figure(1, 3, width=7.2, height=3.0, sharey=True)
    for ax, leaning in zip(axes[0], LEANINGS):
        _draw_metric(ax, summary, f"share_{leaning}", setups, colours, scale=100)
        ax.set_title(LEANING_LABELS[leaning].capitalize())
    axes[0, 0].set_ylabel("Share of articles (%)")
    _legend_below(fig, axes, ncol=4)
    return save_figure(fig, out_png)


@_paper_style
def plot_metric_across_generations(summary, out_png, metric, ylabel=None, setups=None,
                                   title=None, log=False):
    """Mean of a metric per generation with its 95% CI band (tqi, ppl, oracle_valid, ...)."""
    colours = _colours_for(summary)
    setups = _setups_of(summary, setups)
    mean_col, _, _ = _metric_columns(summary, metric)
    if summary.loc[summary["kind"] == "model", mean_col].isna().all():
        return _message_figure(out_png, f"No values of {mean_col} in this run\n"
                               "(e.g. oracle measures exist only on the news world)")
    fig, axes = _new_figure(width=5.0, height=3.6)
    ax = axes[0, 0]
    _draw_metric(ax, summary, metric, setups, colours)
    if log:
        ax.set_yscale("log")
    ax.set_ylabel(ylabel or METRIC_LABELS.get(metric, metric))
    ax.set_title(title or f"{METRIC_LABELS.get(metric, metric).split(' (')[0]} across generations")
    _legend_below(fig, axes, ncol=4)
    return save_figure(fig, out_png)


def _grid(n, ncols):
    ncols = min(ncols, n)
    return int(np.ceil(n / ncols)), ncols


@_paper_style
def plot_tqi_distributions(scores, out_png, setups=None):
    """Per setup, the distribution of per-article TQI at each generation (box plots).

    Rows whose setup is `human` or `base` (or whose generation is negative) are the
    references, drawn as horizontal lines at their median.
    """
    _require_columns(scores, ["setup", "generation", "tqi"], "scores")
    is_ref = scores["setup"].isin(REFERENCE_KINDS) | (scores["generation"] < 0)
    models = scores[~is_ref]
    if models.empty:
        raise ValueError("scores hold no model rows (only human/base references)")
    present = list(dict.fromkeys(models["setup"]))
    if setups is None:
        setups = [s for s in STUDY_SETUPS if s in present] + \
                 [s for s in present if s not in STUDY_SETUPS]
    colours = setup_colours(present)
    nrows, ncols = _grid(len(setups), 3)
    fig, axes = _new_figure(nrows, ncols, width=7.2, height=2.3 * nrows + 0.5,
                            sharey=True)
    for ax, setup in zip(axes.flat, setups):
        rows = models[models["setup"] == setup]
        generations = sorted(rows["generation"].unique())
        data = [rows.loc[rows["generation"] == g, "tqi"].dropna().to_numpy() for g in generations]
        box = ax.boxplot(data, positions=generations, widths=0.6, patch_artist=True,
                         showfliers=True, flierprops={"markersize": 1.5, "alpha": 0.4},
                         medianprops={"color": "black", "linewidth": 1.0})
        for patch in box["boxes"]:
            patch.set_facecolor(colours[setup])
            patch.set_alpha(0.7)
        for kind in REFERENCE_KINDS:
            ref = scores.loc[scores["setup"] == kind, "tqi"].dropna()
            if len(ref):
                ax.axhline(ref.median(), color=REFERENCE_COLOURS[kind],
                           linestyle=REFERENCE_STYLES[kind], linewidth=1.0,
                           label=f"{REFERENCE_LABELS[kind]} (median)")
        ax.set_title(setup)
        step = max(1, int(np.ceil(len(generations) / 11)))
        ax.set_xticks(generations[::step], [str(int(g)) for g in generations[::step]])
        ax.set_xlabel("Generation")
    for ax in axes.flat[len(setups):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("TQI per article (0-3)")
    _legend_below(fig, axes, ncol=2)
    return save_figure(fig, out_png)


@_paper_style
def plot_diversity(summary, out_png, setups=None, metrics=None):
    """One panel per diversity metric across generations; human corpus dashed."""
    if metrics is None:
        metrics = [m for m in DIVERSITY_METRICS if m in summary.columns
                   and summary[m].notna().any()]
    if not metrics:
        raise ValueError(f"summary has none of the diversity columns {list(DIVERSITY_METRICS)}")
    colours = _colours_for(summary)
    setups = _setups_of(summary, setups)
    nrows, ncols = _grid(len(metrics), 3)
    fig, axes = _new_figure(nrows, ncols, width=7.2, height=2.1 * nrows + 0.5)
    for ax, metric in zip(axes.flat, metrics):
        _draw_metric(ax, summary, metric, setups, colours)
        title, unit = DIVERSITY_METRICS.get(metric, (metric, ""))
        ax.set_title(title)
        ax.set_ylabel(unit)
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 6), useMathText=True)
    for ax in axes.flat[len(metrics):]:
        ax.set_visible(False)
    for ax in axes.flat[:len(metrics) - ncols]:
        ax.set_xlabel("")
    _legend_below(fig, axes, ncol=4)
    return save_figure(fig, out_png)


ORACLE_COLUMNS = ("oracle_share_right", "oracle_valid_mean")


@_paper_style
def _message_figure(out_png, message):
    """A figure that only says why there is nothing to plot (keeps the DAG whole)."""
    fig, axes = _new_figure(width=5.0, height=2.0)
    ax = axes[0, 0]
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, wrap=True)
    return save_figure(fig, out_png)


@_paper_style
def plot_oracle_vs_classifier(summary, out_png, setups=None):
    """The world's exact oracle beside the model-based measures.

    Top: share of right-leaning articles by the classifier (solid) and the oracle
    (dashed) per generation, and the two against each other over all (setup,
    generation) with the y = x line. Bottom: the same for quality, TQI (0-3, left
    axis, solid) against the share of sentences the oracle parses (0-1, right axis,
    dashed); the scales differ, so the scatter shows correlation, not agreement.
    """
    if not all(c in summary.columns for c in ORACLE_COLUMNS) or \
            summary[list(ORACLE_COLUMNS)].isna().all().all():
        return _message_figure(out_png, "No oracle on this corpus\n(oracle columns are empty: "
                               "the data are not the built-in news world)")
    _require_columns(summary, ["share_right", "tqi_mean", "oracle_valid_mean"], "summary")
    colours = _colours_for(summary)
    setups = _setups_of(summary, setups)
    models = summary[summary["kind"] == "model"]
    fig, axes = _new_figure(2, 2, width=7.2, height=5.6)

    # Leaning: same quantity, same scale.
    ax_line, ax_scatter = axes[0]
    for setup in setups:
        rows = _model_rows(summary, setup)
        style = dict(color=colours[setup], marker=setup_marker(setup), markersize=3)
        ax_line.plot(rows["generation"], rows["share_right"] * 100, linewidth=1.3,
                     label=setup, **style)
        ax_line.plot(rows["generation"], rows["oracle_share_right"] * 100, linewidth=1.0,
                     linestyle="--", markerfacecolor="white", **style)
        ax_scatter.scatter(rows["oracle_share_right"] * 100, rows["share_right"] * 100,
                           color=colours[setup], marker=setup_marker(setup), s=14)
    both = models[["share_right", "oracle_share_right"]].dropna() * 100
    if len(both):
        lo, hi = both.min().min(), both.max().max()
        pad = 0.05 * (hi - lo or 1)
        ax_scatter.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="#999999",
                        linewidth=0.8, linestyle=":", zorder=0, label="y = x")
    ax_line.set_ylabel("Right-leaning articles (%)")
    ax_line.set_title("Right-leaning share: classifier (solid), oracle (dashed)")
    _integer_generations(ax_line)
    ax_scatter.set_xlabel("Oracle: right-leaning articles (%)")
    ax_scatter.set_ylabel("Classifier: right-leaning (%)")
    ax_scatter.set_title(f"Classifier against oracle (r = {_pearson(both):.2f})")

    # Quality: different quantities and scales, so two y axes.
    ax_line, ax_scatter = axes[1]
    ax_valid = ax_line.twinx()
    ax_valid.spines["right"].set_visible(True)
    for setup in setups:
        rows = _model_rows(summary, setup)
        style = dict(color=colours[setup], marker=setup_marker(setup), markersize=3)
        ax_line.plot(rows["generation"], rows["tqi_mean"], linewidth=1.3, **style)
        ax_valid.plot(rows["generation"], rows["oracle_valid_mean"], linewidth=1.0,
                      linestyle="--", markerfacecolor="white", **style)
        ax_scatter.scatter(rows["oracle_valid_mean"], rows["tqi_mean"], color=colours[setup],
                           marker=setup_marker(setup), s=14)
    ax_line.set_ylabel("TQI (0-3), solid")
    ax_valid.set_ylabel("Oracle valid share (0-1), dashed")
    ax_line.set_title("Quality: TQI (solid), oracle valid share (dashed)")
    _integer_generations(ax_line)
    both = models[["tqi_mean", "oracle_valid_mean"]].dropna()
    ax_scatter.set_xlabel("Oracle: share of sentences that parse (0-1)")
    ax_scatter.set_ylabel("TQI (0-3)")
    ax_scatter.set_title(f"TQI against oracle valid share (r = {_pearson(both):.2f})")
    _legend_below(fig, axes, ncol=7)
    return save_figure(fig, out_png)


def _pearson(pair):
    """Pearson r of a two-column frame (NaN when under three points or constant)."""
    if len(pair) < 3 or (pair.std() == 0).any():
        return float("nan")
    return float(pair.iloc[:, 0].corr(pair.iloc[:, 1]))

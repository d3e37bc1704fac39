"""Figures of the neuron analysis: r by layer, and -log10 p along the units.

Both read the table of `neurons.neuron_statistics` and write a PNG plus a PDF of the
same name beside it.
"""


import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from selfconsuming.figures import save_figure  # noqa: E402
from selfconsuming.neurons import RELATIONS  # noqa: E402

SOURCES = ("weight", "activation")
METRICS = ("bias", "quality")
SOURCE_LABEL = {"weight": "MLP output weights", "activation": "mean activations"}
METRIC_LABEL = {"bias": "bias (share right)", "quality": "quality (TQI)"}
SIGNIFICANT_COLOR = "#d62728"


def _check(stats, columns):
    missing = sorted(set(columns) - set(stats.columns))
    if missing:
        raise ValueError(f"neuron stats lack columns {missing}")
    absent = [r for r in RELATIONS if not (stats["relation"] == r).any()]
    if absent:
        raise ValueError(f"neuron stats have no rows for relations {absent}")


def plot_r_by_layer(stats, out_png):
    """2 x 2 panels (weights / activations x bias / quality): distribution of r per layer.

    Boxes show the middle 50% of units and whiskers the 5th-95th percentiles; units
    significant after Bonferroni (HAC test) are drawn on top as red points.
    """
    _check(stats, {"relation", "layer", "unit", "r", "significant"})
    layers = np.sort(stats["layer"].unique())
    rng = np.random.default_rng(0)  # jitter only
    fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True, sharey=True)
    for row, source in enumerate(SOURCES):
        for col, metric in enumerate(METRICS):
            ax = axes[row, col]
            part = stats[stats["relation"] == f"{source}_{metric}"]
            by_layer = [part.loc[part["layer"] == layer, "r"].dropna().to_numpy() for layer in layers]
            ax.boxplot(by_layer, positions=np.arange(len(layers)), widths=0.6, whis=(5, 95),
                       showfliers=False, patch_artist=True,
                       boxprops={"facecolor": "#c6dbef", "edgecolor": "#4a6f8a"},
                       medianprops={"color": "#08306b"},
                       whiskerprops={"color": "#4a6f8a"}, capprops={"color": "#4a6f8a"})
            sig = part[part["significant"].astype(bool)]
            x = np.searchsorted(layers, sig["layer"].to_numpy()) + rng.uniform(-0.25, 0.25, len(sig))
            ax.scatter(x, sig["r"], s=14, color=SIGNIFICANT_COLOR, zorder=3,
                       label="significant (Bonferroni)")
            ax.axhline(0, color="grey", lw=0.8, zorder=0)
            ax.set_ylim(-1.05, 1.05)
            ax.set_title(f"{SOURCE_LABEL[source]} vs {METRIC_LABEL[metric]}: "
                         f"{len(sig)} of {len(part)} units significant", fontsize=10)
            if col == 0:
                ax.set_ylabel("Pearson r across distinct models")
            if row == 1:
                ax.set_xlabel("layer")
    axes[1, 0].set_xticks(np.arange(len(layers)), [str(layer) for layer in layers])
    handles = [plt.Rectangle((0, 0), 1, 1, facecolor="#c6dbef", edgecolor="#4a6f8a"),
               plt.Line2D([], [], ls="", marker="o", color=SIGNIFICANT_COLOR)]
    fig.legend(handles, ["all units (box 25-75%, whiskers 5-95%)", "significant unit (HAC test, Bonferroni)"],
               loc="lower center", ncol=2, frameon=False, bbox_to_anchor=(0.5, -0.04))
    models = f" ({int(stats['n_models'].max())} distinct models)" if "n_models" in stats.columns else ""
    fig.suptitle(f"Correlation of each hidden unit with bias and quality, by layer{models}")
    fig.tight_layout()
    save_figure(fig, out_png, dpi=150, tight=True)


def plot_pvalues_by_unit(stats, out_png, alpha=0.05):
    """-log10 HAC p of every unit along the network (Manhattan style), one panel per relation.

    The p values are neuron_statistics' panel HAC (lags within each (setup, replicate) series).

    Points are coloured by layer (alternating shades) and the dashed line is the
    Bonferroni threshold alpha / (number of tests in the table), as in neuron_statistics.
    """
    _check(stats, {"relation", "layer", "unit", "p"})
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    hidden = int(stats["unit"].max()) + 1
    layers = np.sort(stats["layer"].unique())
    threshold = -np.log10(alpha / len(stats))
    scores = -np.log10(np.clip(stats["p"].dropna().to_numpy(), 1e-300, None))
    # Cap the axis so a few extreme units do not flatten everything else to a line.
    cap = max(2.0 * threshold, min(float(scores.max(initial=0.0)) * 1.05, 4.0 * threshold))
    palette = ("#2b6ca3", "#a0a0a0")
    fig, axes = plt.subplots(len(RELATIONS), 1, figsize=(11, 9), sharex=True, sharey=True)
    for ax, relation in zip(axes, RELATIONS):
        part = stats[(stats["relation"] == relation) & stats["p"].notna()]
        index = part["layer"].to_numpy() * hidden + part["unit"].to_numpy()
        score = -np.log10(np.clip(part["p"].to_numpy(), 1e-300, None))
        colors = np.where(np.searchsorted(layers, part["layer"].to_numpy()) % 2 == 0, *palette)
        above = score > threshold
        capped = score > cap
        ax.scatter(index[~above], score[~above], s=3, c=colors[~above], rasterized=True)
        ax.scatter(index[above & ~capped], score[above & ~capped], s=14, color=SIGNIFICANT_COLOR,
                   zorder=3, label="significant unit")
        ax.scatter(index[capped], np.full(capped.sum(), cap), s=30, marker="^", color=SIGNIFICANT_COLOR,
                   zorder=3, label=f"significant, -log10 p > {cap:.0f} (drawn at the top)")
        ax.axhline(threshold, color="black", ls="--", lw=0.9,
                   label=f"Bonferroni: p < {alpha:g} / {len(stats)} tests")
        source, metric = relation.split("_")
        ax.set_title(f"{SOURCE_LABEL[source]} vs {METRIC_LABEL[metric]}: {int(above.sum())} significant",
                     fontsize=10, loc="left")
        ax.set_ylabel("-log10 p (panel HAC)")
    axes[0].set_ylim(0, cap * 1.08)
    handles, labels = [], []
    for ax in axes:  # one legend entry per kind, whichever panel has it
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="lower center", ncol=3, frameon=False, bbox_to_anchor=(0.5, -0.03))
    centres = layers * hidden + hidden / 2
    axes[-1].set_xticks(centres, [str(layer) for layer in layers])
    axes[-1].set_xlim(-hidden * 0.1, (layers.max() + 1) * hidden + hidden * 0.1)
    axes[-1].set_xlabel(f"layer (units 0..{hidden - 1} of each layer left to right; layers in alternating shades)")
    fig.suptitle("Significance of each hidden unit's HAC regression (lags within each setup and replicate), "
                 "along the network")
    fig.tight_layout()
    save_figure(fig, out_png, dpi=150, tight=True)

"""Figures of the study: leaning shares, quality and diversity across generations.

Every figure function takes the tidy tables the workflow writes (metrics/summary.csv,
per-article scores), draws one figure, and writes a PNG and a PDF beside it. Colours
come from `setup_colours`, so a setup looks the same in every figure.
"""

import functools
import hashlib
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator  # noqa: E402

from selfconsuming import LEANINGS  # noqa: E402
from selfconsuming.io import atomic_path  # noqa: E402
from selfconsuming.summary import mean_with_ci  # noqa: E402

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
    "ppl": "Perplexity (lower = more fluent)",
    "oracle_valid": "Valid, distinct sentences (oracle share)",
}
# The values a metric can take by its definition (None: no bound); a t band across a few
# replicates can reach past them (a share's below 0%), and is drawn cut at them.
SHARE_RANGE = (0.0, 1.0)
METRIC_RANGES = {"tqi": (0.0, 3.0), "ppl": (1.0, None), "oracle_valid": SHARE_RANGE,
                 "semantic_diversity": (0.0, 2.0),
                 **{m: SHARE_RANGE for m in DIVERSITY_METRICS if m != "semantic_diversity"},
                 **{f"{prefix}share_{leaning}": SHARE_RANGE for prefix in ("", "oracle_") for leaning in LEANINGS}}

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


def with_replicates(summary):
    """The summary with a `replicate` column (0 for model rows, -1 for references when absent).

    Summaries written before replicates existed hold one run per setup; reading them as
    replicate 0 lets every figure and table take both shapes.
    """
    _require_columns(summary, ["setup", "generation", "kind"], "summary")
    if "replicate" in summary.columns:
        return summary
    return summary.assign(replicate=np.where(summary["kind"] == "model", 0, -1))


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
    """The human row, or the sampled base row (setup "base"), or None when absent.

    Base rows decoded like a setup (setup "base-<decoding>") are the like-for-like
    comparison of generation 0 and are picked by `_base_row_for`, never here.
    """
    rows = summary[(summary["kind"] == kind) & (summary["setup"] == kind)]
    if rows.empty:
        rows = summary[summary["kind"] == kind]
        rows = rows[~rows["setup"].astype(str).str.startswith(f"{kind}-")]
    return None if rows.empty else rows.iloc[0]


def _base_row_for(summary, decoding):
    """The base model's row decoded with `decoding` (setup "base-<decoding>"), or None."""
    rows = summary[(summary["kind"] == "base") & (summary["setup"] == f"base-{decoding}")]
    return None if rows.empty else rows.iloc[0]


def _setup_decoding(summary, setup):
    """Decoding of a setup's model rows (the summary's `decoding` column), or None."""
    if "decoding" not in summary.columns:
        return None
    values = _model_rows(summary, setup)["decoding"].dropna()
    return str(values.iloc[0]) if len(values) else None


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


def replicate_interval(rows, mean_col, lo_col=None, hi_col=None, alpha=0.05):
    """(mean, lo, hi, n, basis) of one cell (setup x generation) over its replicates.

    With two or more replicates: their mean with a t interval across replicates (the
    spread of the loop itself, basis "replicates"). With one: that corpus's own
    interval from lo_col/hi_col (Wilson for shares, t over articles; basis "corpus"),
    so a single run still shows its sampling uncertainty. NaN values are left out.
    """
    finite = rows[rows[mean_col].notna()]
    n = len(finite)
    if n == 0:
        return (np.nan, np.nan, np.nan, 0, "none")
    if n == 1:
        row = finite.iloc[0]
        lo = row[lo_col] if lo_col else np.nan
        hi = row[hi_col] if hi_col else np.nan
        basis = "corpus" if pd.notna(lo) and pd.notna(hi) else "none"
        return (float(row[mean_col]), lo, hi, 1, basis)
    mean, lo, hi = mean_with_ci(finite[mean_col], alpha=alpha)
    return (mean, lo, hi, n, "replicates")


def replicate_summary(summary, metric, setups=None, alpha=0.05):
    """Per model (setup, generation): the replicate mean of `metric` with its 95% interval.

    Columns setup, generation, mean, lo, hi, n_replicates, basis (see
    `replicate_interval`). `metric` is a summary column or the stem of <metric>_mean.
    """
    summary = with_replicates(summary)
    mean_col, lo_col, hi_col = _metric_columns(summary, metric)
    models = summary[summary["kind"] == "model"]
    if setups is not None:
        models = models[models["setup"].isin(list(setups))]
    rows = []
    for (setup, generation), cell in models.groupby(["setup", "generation"], sort=False):
        mean, lo, hi, n, basis = replicate_interval(cell, mean_col, lo_col, hi_col, alpha)
        rows.append({"setup": setup, "generation": generation, "mean": mean, "lo": lo,
                     "hi": hi, "n_replicates": n, "basis": basis})
    columns = ["setup", "generation", "mean", "lo", "hi", "n_replicates", "basis"]
    return pd.DataFrame(rows, columns=columns).sort_values(["setup", "generation"],
                                                          kind="stable", ignore_index=True)


def cut_to_range(bands, metric):
    """The bands with lo and hi cut at the values `metric` can take (METRIC_RANGES); column
    `cut` says which rows reached past them."""
    low, high = METRIC_RANGES.get(metric.removesuffix("_mean"), (None, None))
    lo, hi = bands["lo"].astype(float), bands["hi"].astype(float)
    cut_lo, cut_hi = lo.clip(lower=low, upper=high), hi.clip(lower=low, upper=high)
    cut = (cut_lo != lo) & lo.notna() | (cut_hi != hi) & hi.notna()
    return bands.assign(lo=cut_lo, hi=cut_hi, cut=cut)


def spread_note(bands):
    """One line saying what the bands are: across replicates (with R) or within one corpus."""
    counts = bands.loc[bands["n_replicates"] > 0, "n_replicates"]
    if counts.empty:
        return ""
    low, high = int(counts.min()), int(counts.max())
    cut = ", clipped" if "cut" in bands and bands["cut"].any() else ""  # to the metric's range (cut_to_range)
    if low >= 2:
        r = str(low) if low == high else f"{low}-{high}"
        return f"mean of R = {r} replicates (thin lines), 95% t CI across replicates{cut}"
    if high == 1:
        return "R = 1 replicate: 95% CI within the corpus"
    return (f"R = {low}-{high} replicates: 95% t CI across replicates{cut}, "
            "within-corpus CI where R = 1")


def setup_labels(recipes, n_human=None) -> dict:
    """Legend label per setup naming what sets it apart, read from the run's recipes.

    A recipe field is named when it differs from the value most setups share
    (e.g. "overfit (10 epochs, wd 0)"), decoding when it is not greedy, and the data
    rules always ("preserve (+5 real, 10%)" with the count ceil(fraction x n_human)).
    So legends state this run's values, never the study's typed-in ones.
    """
    recipes = dict(recipes or {})
    common = {}
    for field in ("epochs", "lr", "weight_decay", "batch_size", "init"):
        values = pd.Series([r["finetune"].get(field) for r in recipes.values()], dtype=object)
        common[field] = values.mode().iloc[0] if len(values.dropna()) else None
    names = {"epochs": "{} epochs", "lr": "lr {}", "weight_decay": "wd {}",
             "batch_size": "batch {}", "init": "init {}"}
    labels = {}
    for setup, recipe in recipes.items():
        parts = []
        synthesis, data = recipe.get("synthesis", {}), recipe.get("data", {})
        decoding = recipe["decoding"]
        if decoding == "beam":
            parts.append(f"{synthesis.get('num_beams')} beams" if synthesis.get("num_beams")
                         else "beam")
        elif decoding == "nucleus":
            parts.append(f"top-p {synthesis.get('top_p')}")
            if synthesis.get("temperature") not in (None, 1, 1.0):
                parts.append(f"T {synthesis['temperature']}")
        for field, template in names.items():
            value = recipe["finetune"].get(field)
            if value != common[field]:
                parts.append(template.format(f"{value:g}" if isinstance(value, float) else value))
        fraction = data.get("preserve_fraction") or 0
        if fraction > 0:
            count = f"+{math.ceil(fraction * n_human)} real, " if n_human else ""
            parts.append(f"{count}{fraction:.0%}")
        if data.get("accumulate"):
            parts.append("all data so far")
        if (data.get("window") or 1) > 1:
            parts.append(f"last {data['window']} corpora")
        if data.get("start_labels"):
            parts.append("start: " + "+".join(data["start_labels"]))
        if data.get("synthetic_budget"):
            parts.append(f"budget {data['synthetic_budget']}")
        labels[setup] = f"{setup} ({', '.join(parts)})" if parts else f"{setup} ({decoding})"
    return labels


def _label(labels, setup):
    return (labels or {}).get(setup, setup)


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
    with atomic_path(out_pdf) as tmp:  # no creation date: the same run writes the same bytes
        fig.savefig(tmp, format="pdf", metadata={"CreationDate": None}, **extra)
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


def reference_label(row) -> str:
    """Legend name of a reference row: the human corpus, or the base model with its decoding.

    The sampled base row (setup "base", decoding nucleus) is "base model, sampled"; a
    base row decoded like a setup ("base-greedy") is "base model, greedy".
    """
    if row["kind"] == "human":
        return REFERENCE_LABELS["human"]
    decoding = row.get("decoding") if hasattr(row, "get") else None
    if not isinstance(decoding, str) or not decoding:
        setup = str(row["setup"])
        decoding = setup[len("base-"):] if setup.startswith("base-") else None
    if decoding is None:
        return REFERENCE_LABELS["base"]
    if row["setup"] == "base":
        return "base model, sampled (nucleus)" if decoding == "nucleus" \
            else f"base model ({decoding})"
    return f"base model, {decoding}"


def _reference_lines(ax, summary, mean_col, scale=1.0):
    """Horizontal lines for the human corpus and the sampled base model (when they have a value)."""
    for kind in REFERENCE_KINDS:
        row = _reference_row(summary, kind)
        if row is None or pd.isna(row.get(mean_col)):
            continue
        ax.axhline(row[mean_col] * scale, color=REFERENCE_COLOURS[kind],
                   linestyle=REFERENCE_STYLES[kind], linewidth=1.1,
                   label=reference_label(row))


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


def _replicate_lines(ax, summary, setup, mean_col, colour, scale=1.0):
    """Each replicate's trajectory as a thin line (only when there are two or more)."""
    rows = _model_rows(summary, setup)
    replicates = sorted(rows["replicate"].unique())
    if len(replicates) < 2:
        return
    for replicate in replicates:
        run = rows[rows["replicate"] == replicate]
        ax.plot(run["generation"], run[mean_col] * scale, color=colour, linewidth=0.6,
                alpha=0.45, zorder=1)


def _draw_metric(ax, summary, metric, setups, colours, scale=1.0, labels=None):
    """Per setup: replicate mean with its 95% band and every replicate as a thin line.

    Returns the bands (see `replicate_summary`) so the caller can say what they are.
    """
    summary = with_replicates(summary)
    mean_col, _, _ = _metric_columns(summary, metric)
    bands = cut_to_range(replicate_summary(summary, metric, setups), metric)
    for setup in setups:
        _replicate_lines(ax, summary, setup, mean_col, colours[setup], scale)
        band = bands[bands["setup"] == setup]
        has_band = band["lo"].notna().any()
        _line_with_band(ax, band["generation"], band["mean"],
                        band["lo"].astype(float) if has_band else None,
                        band["hi"].astype(float) if has_band else None,
                        colours[setup], _label(labels, setup), setup_marker(setup), scale)
    _reference_lines(ax, summary, mean_col, scale)
    _integer_generations(ax)
    return bands


def _short_note(bands):
    """What a line and its band are, in a few words (for crowded panels)."""
    if (bands["n_replicates"] > 1).any():
        return f"replicate means (R = {int(bands['n_replicates'].max())}), 95% t bands"
    return "one replicate, 95% within-corpus bands"


def _title_with_note(ax, title, bands):
    """Title on the first line, what the bands mean (replicates or corpus) below it."""
    note = spread_note(bands)
    ax.set_title(f"{title}\n{note}" if note else title)


def _paper_style(plot):
    """Draw with paper-sized fonts (rc settings are read when each artist is made)."""
    @functools.wraps(plot)
    def wrapper(*args, **kwargs):
        with plt.rc_context(PAPER_RC):
            return plot(*args, **kwargs)
    return wrapper


# ---------------------------------------------------------------- figures

def _reference_bar(row, colour, hatch=None):
    """A leaning bar of a reference corpus: its shares with their Wilson intervals."""
    return {"label": reference_label(row), "colour": colour, "hatch": hatch,
            "mean": np.array([row[f"share_{x}"] for x in LEANINGS], dtype=float),
            "lo": np.array([row[f"share_{x}_lo"] for x in LEANINGS], dtype=float),
            "hi": np.array([row[f"share_{x}_hi"] for x in LEANINGS], dtype=float),
            "points": None, "n": 1}


def _first_generation_bar(summary, setup, colour, labels):
    """A leaning bar of a setup's first generation (0): replicate mean, interval and replicates."""
    rows = _model_rows(summary, setup)
    first = rows[rows["generation"] == rows["generation"].min()]
    generation = int(first["generation"].iloc[0])
    cells = [replicate_interval(first, f"share_{x}", f"share_{x}_lo", f"share_{x}_hi")
             for x in LEANINGS]
    n = max(c[3] for c in cells)
    lo, hi = np.array([c[1] for c in cells], dtype=float), np.array([c[2] for c in cells], dtype=float)
    return {"label": f"{_label(labels, setup)}, gen {generation}", "colour": colour,
            "hatch": None, "n": n,
            "mean": np.array([c[0] for c in cells], dtype=float),
            "lo": np.clip(lo, *SHARE_RANGE), "hi": np.clip(hi, *SHARE_RANGE),  # a share's t interval cut at 0 and 100%
            "cut": bool(np.any(lo < SHARE_RANGE[0]) or np.any(hi > SHARE_RANGE[1])),
            "points": [first[f"share_{x}"].to_numpy(dtype=float) for x in LEANINGS]
            if n > 1 else None}


def _leaning_bars(summary, labels=None):
    """Bars of the leaning figure in groups: references, then per decoding the base model
    decoded that way followed by the generation 0 of every setup with that decoding."""
    colours = _colours_for(summary)
    groups = [[]]
    for kind in REFERENCE_KINDS:
        row = _reference_row(summary, kind)
        if row is not None:
            groups[0].append(_reference_bar(row, colours[kind]))
    by_decoding = {}
    for setup in _setups_of(summary):
        by_decoding.setdefault(_setup_decoding(summary, setup), []).append(setup)
    for decoding, setups in by_decoding.items():
        group = []
        base = _base_row_for(summary, decoding) if decoding else None
        if base is not None:
            group.append(_reference_bar(base, "#c7c7c7", hatch="////"))
        group += [_first_generation_bar(summary, s, colours[s], labels) for s in setups]
        groups.append(group)
    return [g for g in groups if g]


@_paper_style
def plot_leaning_distribution(summary, out_png, labels=None):
    """Leaning shares before the loop: human corpus, base model and each setup's generation 0.

    Each generation 0 sits under the base model decoded the SAME way (summary rows
    "base-<decoding>", hatched), the like-for-like comparison: what one fine-tuning
    on human text changed. The sampled base row (setup "base") is its own bar, the
    model's distribution rather than its mode. Generation 0 bars are replicate means
    with a t interval across replicates (dots: single replicates); reference bars and
    R = 1 bars carry their Wilson interval. A setup without generation 0 shows its
    first generation (named in its label).
    """
    summary = with_replicates(summary)
    share_cols = [f"share_{x}{s}" for x in LEANINGS for s in ("", "_lo", "_hi")]
    _require_columns(summary, share_cols, "summary")
    groups = _leaning_bars(summary, labels)
    if not groups:
        raise ValueError("summary has no human, base or model rows to plot")
    positions, bars, y = [], [], 0.0
    for group in groups:
        for bar in group:
            positions.append(y)
            bars.append(bar)
            y += 1
        y += 0.6  # gap between decoding groups
    fig, axes = _new_figure(1, len(LEANINGS), width=7.2, height=0.24 * len(bars) + 1.6,
                            sharey=True)
    for j, (ax, leaning) in enumerate(zip(axes[0], LEANINGS)):
        for pos, bar in zip(positions, bars):
            mean, lo, hi = bar["mean"][j] * 100, bar["lo"][j] * 100, bar["hi"][j] * 100
            ax.barh(pos, mean, 0.8, color=bar["colour"], hatch=bar["hatch"],
                    edgecolor="#555555" if bar["hatch"] else "white", linewidth=0.4)
            if pd.notna(lo) and pd.notna(hi):
                ax.errorbar(mean, pos, xerr=[[max(mean - lo, 0)], [max(hi - mean, 0)]],
                            fmt="none", ecolor="#888888" if bar["colour"] == "#000000"
                            else "#333333", elinewidth=0.9, capsize=1.5)
            if bar["points"] is not None:
                points = bar["points"][j] * 100
                ax.scatter(points, np.full(len(points), pos), s=5, color="black", zorder=3,
                           linewidths=0)
        ax.axvline(100 / len(LEANINGS), color="#bbbbbb", linewidth=0.8, zorder=0)
        ax.set_title(LEANING_LABELS[leaning].capitalize())
        ax.set_xlabel("Share of articles (%)")
    axes[0, 0].set_yticks(positions, [bar["label"] for bar in bars])
    axes[0, 0].invert_yaxis()
    replicated = max(bar["n"] for bar in bars) > 1
    cut = ", clipped to 0-100%" if any(bar.get("cut") for bar in bars) else ""
    fig.suptitle("Leaning before the loop: each generation 0 under the base model decoded "
                 "the same way (hatched)\n" +
                 (f"generation 0: replicate mean (dots: replicates), 95% t CI across replicates{cut}; "
                  "references: 95% Wilson CI" if replicated else
                  "95% Wilson CIs; thin line: uniform mix (33.3%)"), fontsize=8)
    return save_figure(fig, out_png)


@_paper_style
def plot_share_across_generations(summary, out_png, leaning="right", setups=None, title=None,
                                  labels=None):
    """Share of articles labelled `leaning` per generation: per setup the replicate mean,
    its 95% band and every replicate as a thin line."""
    if leaning not in LEANINGS:
        raise ValueError(f"leaning must be one of {LEANINGS}, got {leaning!r}")
    summary = with_replicates(summary)
    colours = _colours_for(summary)
    setups = _setups_of(summary, setups)
    fig, axes = _new_figure(width=5.0, height=3.8)
    ax = axes[0, 0]
    bands = _draw_metric(ax, summary, f"share_{leaning}", setups, colours, scale=100,
                         labels=labels)
    ax.set_ylabel(f"{LEANING_LABELS[leaning].capitalize()} articles (%)")
    _title_with_note(ax, title or f"Share of {LEANING_LABELS[leaning]} articles", bands)
    _legend_below(fig, axes, ncol=2)
    return save_figure(fig, out_png)


@_paper_style
def plot_all_shares(summary, out_png, setups=None, labels=None):
    """Left, center and right shares side by side (one panel each, shared legend)."""
    summary = with_replicates(summary)
    colours = _colours_for(summary)
    setups = _setups_of(summary, setups)
    fig, axes = _new_figure(1, 3, width=7.2, height=3.3, sharey=True)
    for ax, leaning in zip(axes[0], LEANINGS):
        bands = _draw_metric(ax, summary, f"share_{leaning}", setups, colours, scale=100,
                             labels=labels)
        ax.set_title(LEANING_LABELS[leaning].capitalize())
    fig.suptitle(spread_note(bands), fontsize=8)
    axes[0, 0].set_ylabel("Share of articles (%)")
    _legend_below(fig, axes, ncol=3)
    return save_figure(fig, out_png)


@_paper_style
def plot_metric_across_generations(summary, out_png, metric, ylabel=None, setups=None,
                                   title=None, log=False, labels=None):
    """A metric per generation (tqi, ppl, oracle_valid, ...): per setup the replicate mean
    with its 95% band and every replicate as a thin line."""
    summary = with_replicates(summary)
    colours = _colours_for(summary)
    setups = _setups_of(summary, setups)
    mean_col, _, _ = _metric_columns(summary, metric)
    if summary.loc[summary["kind"] == "model", mean_col].isna().all():
        return _message_figure(out_png, f"No values of {mean_col} in this run\n"
                               "(e.g. oracle measures exist only on the news world)")
    fig, axes = _new_figure(width=5.0, height=3.8)
    ax = axes[0, 0]
    bands = _draw_metric(ax, summary, metric, setups, colours, labels=labels)
    if log:
        ax.set_yscale("log")
        plain = FuncFormatter(lambda value, _: f"{value:g}")
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(plain)
    ax.set_ylabel(ylabel or METRIC_LABELS.get(metric, metric))
    _title_with_note(ax, title or f"{METRIC_LABELS.get(metric, metric).split(' (')[0]} "
                     "across generations", bands)
    _legend_below(fig, axes, ncol=2)
    return save_figure(fig, out_png)


def _grid(n, ncols):
    ncols = min(ncols, n)
    return int(np.ceil(n / ncols)), ncols


def _replicate_means(rows, generations, column):
    """Per generation, the mean of `column` in each replicate (x, y arrays for dots)."""
    if "replicate" not in rows.columns or rows["replicate"].nunique() < 2:
        return np.array([]), np.array([])
    means = rows.groupby(["generation", "replicate"])[column].mean().reset_index()
    means = means[means["generation"].isin(generations)]
    return means["generation"].to_numpy(dtype=float), means[column].to_numpy(dtype=float)


@_paper_style
def plot_tqi_distributions(scores, out_png, setups=None, labels=None):
    """Per setup, the distribution of per-article TQI at each generation (box plots).

    Boxes pool the articles of every replicate; with two or more replicates each
    replicate's mean TQI is a black dot beside the box, so spread between runs shows
    next to spread between articles. Rows whose setup is `human` or `base...` (or whose
    generation is negative) are the references: the human corpus and the sampled base
    model are drawn as horizontal lines at their median.
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
    fig, axes = _new_figure(nrows, ncols, width=7.2, height=2.3 * nrows + 0.6,
                            sharey=True)
    replicated = False
    for ax, setup in zip(axes.flat, setups):
        rows = models[models["setup"] == setup]
        generations = sorted(rows["generation"].unique())
        data = [rows.loc[rows["generation"] == g, "tqi"].dropna().to_numpy() for g in generations]
        box = ax.boxplot(data, positions=generations, widths=0.55, patch_artist=True,
                         showfliers=True, flierprops={"markersize": 1.5, "alpha": 0.4},
                         medianprops={"color": "black", "linewidth": 1.0})
        for patch in box["boxes"]:
            patch.set_facecolor(colours[setup])
            patch.set_alpha(0.7)
        x, y = _replicate_means(rows, generations, "tqi")
        if len(x):
            replicated = True
            ax.scatter(x + 0.38, y, s=5, color="black", zorder=3, linewidths=0,
                       label="replicate mean")
        for kind in REFERENCE_KINDS:
            ref = scores.loc[scores["setup"] == kind, "tqi"].dropna()
            if len(ref):
                ax.axhline(ref.median(), color=REFERENCE_COLOURS[kind],
                           linestyle=REFERENCE_STYLES[kind], linewidth=1.0,
                           label=f"{'human corpus' if kind == 'human' else 'base model, sampled'}"
                                 " (median)")
        ax.set_title(_label(labels, setup))
        step = max(1, int(np.ceil(len(generations) / 11)))
        ax.set_xticks(generations[::step], [str(int(g)) for g in generations[::step]])
        ax.set_xlabel("Generation")
    for ax in axes.flat[len(setups):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("TQI per article (0-3)")
    if replicated:
        fig.suptitle("Boxes pool every replicate's articles; dots: each replicate's mean",
                     fontsize=8)
    _legend_below(fig, axes, ncol=3)
    return save_figure(fig, out_png)


@_paper_style
def plot_diversity(summary, out_png, setups=None, metrics=None, labels=None):
    """One panel per diversity metric across generations: replicate means with 95% bands,
    replicates as thin lines; human corpus dashed, sampled base model dotted."""
    summary = with_replicates(summary)
    if metrics is None:
        metrics = [m for m in DIVERSITY_METRICS if m in summary.columns
                   and summary[m].notna().any()]
    if not metrics:
        raise ValueError(f"summary has none of the diversity columns {list(DIVERSITY_METRICS)}")
    colours = _colours_for(summary)
    setups = _setups_of(summary, setups)
    nrows, ncols = _grid(len(metrics), 3)
    fig, axes = _new_figure(nrows, ncols, width=7.2, height=2.1 * nrows + 0.8)
    for ax, metric in zip(axes.flat, metrics):
        bands = _draw_metric(ax, summary, metric, setups, colours, labels=labels)
        title, unit = DIVERSITY_METRICS.get(metric, (metric, ""))
        ax.set_title(title)
        ax.set_ylabel(unit)
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 6), useMathText=True)
    for ax in axes.flat[len(metrics):]:
        ax.set_visible(False)
    for ax in axes.flat[:len(metrics) - ncols]:
        ax.set_xlabel("")
    note = spread_note(bands)
    if note and "within the corpus" in note:
        note = "R = 1 replicate: one value per corpus (no interval)"
    fig.suptitle(note, fontsize=8)
    _legend_below(fig, axes, ncol=3)
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


def _oracle_sizes(values, smallest=6.0, largest=60.0):
    """Marker areas proportional to oracle_n (articles the oracle could label)."""
    values = np.asarray(values, dtype=float)
    top = np.nanmax(values) if np.isfinite(values).any() else np.nan
    if not np.isfinite(top) or top <= 0:
        return np.full(len(values), 14.0)
    return np.clip(largest * np.nan_to_num(values) / top, smallest, largest)


def _errors(frame, mean, lo, hi, scale=1.0):
    """Asymmetric error-bar lengths from interval columns (zeros where absent)."""
    if lo not in frame.columns or hi not in frame.columns:
        return None
    m = frame[mean].to_numpy(dtype=float)
    down = np.clip(m - frame[lo].to_numpy(dtype=float), 0, None)
    up = np.clip(frame[hi].to_numpy(dtype=float) - m, 0, None)
    return np.nan_to_num(np.vstack([down, up])) * scale


def _interval_of(column):
    """The lo/hi columns of a summary value column (share_right, tqi_mean, ...)."""
    stem = column[:-len("_mean")] if column.endswith("_mean") else column
    return f"{stem}_lo", f"{stem}_hi"


def _corpus_scatter(ax, rows, x, y, colour, marker, sizes, scale=1.0):
    """One point per corpus (every replicate and generation) with its own 95% intervals."""
    xerr = _errors(rows, x, *_interval_of(x), scale)
    yerr = _errors(rows, y, *_interval_of(y), scale)
    ax.errorbar(rows[x] * scale, rows[y] * scale, xerr=xerr, yerr=yerr, fmt="none",
                ecolor=colour, elinewidth=0.5, alpha=0.35, zorder=1)
    ax.scatter(rows[x] * scale, rows[y] * scale, color=colour, marker=marker, s=sizes,
               alpha=0.85, linewidths=0, zorder=2)


def _size_legend(ax, oracle_n):
    """Legend of marker areas: the smallest, middle and largest oracle_n of the points."""
    values = np.asarray(oracle_n, dtype=float)
    values = values[np.isfinite(values)]
    if not len(values):
        return
    shown = sorted({int(np.min(values)), int(np.median(values)), int(np.max(values))})
    areas = _oracle_sizes(np.append(values, shown))[-len(shown):]
    handles = [ax.scatter([], [], s=a, color="#777777", linewidths=0) for a in areas]
    ax.legend(handles, [f"oracle_n = {v}" for v in shown], loc="upper left", fontsize=6.5,
              frameon=False, title="articles the oracle labels", title_fontsize=6.5,
              handletextpad=0.3, borderaxespad=0.2)


@_paper_style
def plot_oracle_vs_classifier(summary, out_png, setups=None, labels=None):
    """The world's exact oracle beside the model-based measures.

    Top left: share of right-leaning articles by the classifier (solid) and the oracle
    (dashed) per generation, replicate means with 95% bands. Top right: every model
    corpus (setup x replicate x generation) as a point, classifier against oracle with
    both Wilson intervals (the oracle's over the oracle_n articles it could label),
    point area proportional to oracle_n, and the y = x line. Bottom: the same for
    quality, TQI (0-3, left axis, solid) against the oracle's share of valid,
    distinct sentences (0-1, right axis, dashed); the scales differ, so the scatter shows
    correlation, not agreement.
    """
    if not all(c in summary.columns for c in ORACLE_COLUMNS) or \
            summary[list(ORACLE_COLUMNS)].isna().all().all():
        return _message_figure(out_png, "No oracle on this corpus\n(oracle columns are empty: "
                               "the data are not the built-in news world)")
    _require_columns(summary, ["share_right", "tqi_mean", "oracle_valid_mean"], "summary")
    summary = with_replicates(summary)
    colours = _colours_for(summary)
    setups = _setups_of(summary, setups)
    models = summary[(summary["kind"] == "model") & summary["setup"].isin(setups)]
    oracle_n = models["oracle_n"] if "oracle_n" in models.columns else \
        pd.Series(np.nan, index=models.index)
    sizes = pd.Series(_oracle_sizes(oracle_n), index=models.index)
    fig, axes = _new_figure(2, 2, width=7.2, height=6.0)

    # Leaning: same quantity, same scale.
    ax_line, ax_scatter = axes[0]
    for setup in setups:
        style = dict(color=colours[setup], marker=setup_marker(setup), markersize=3)
        for column, dashed in (("share_right", False), ("oracle_share_right", True)):
            band = cut_to_range(replicate_summary(summary, column, [setup]), column)
            ax_line.plot(band["generation"], band["mean"] * 100, linewidth=1.0 if dashed else 1.3,
                         linestyle="--" if dashed else "-",
                         markerfacecolor="white" if dashed else colours[setup],
                         label=None if dashed else _label(labels, setup), **style)
            if band["lo"].notna().any():
                ax_line.fill_between(band["generation"], band["lo"].astype(float) * 100,
                                     band["hi"].astype(float) * 100, color=colours[setup],
                                     alpha=0.08 if dashed else 0.15, linewidth=0)
        rows = models[models["setup"] == setup]
        _corpus_scatter(ax_scatter, rows, "oracle_share_right", "share_right", colours[setup],
                        setup_marker(setup), sizes[rows.index], scale=100)
    both = models[["share_right", "oracle_share_right"]].dropna() * 100
    if len(both):
        lo, hi = both.min().min(), both.max().max()
        pad = 0.05 * (hi - lo or 1)
        ax_scatter.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="#999999",
                        linewidth=0.8, linestyle=":", zorder=0)
    _size_legend(ax_scatter, oracle_n)
    ax_line.set_ylabel("Right-leaning articles (%)")
    bands = replicate_summary(summary, "share_right", setups)
    ax_line.set_title("Right share: classifier (solid), oracle (dashed)\n"
                      + _short_note(bands))
    _integer_generations(ax_line)
    ax_scatter.set_xlabel("Oracle: right-leaning (%), Wilson CI over oracle_n")
    ax_scatter.set_ylabel("Classifier: right-leaning (%), Wilson CI")
    ax_scatter.set_title(f"Classifier vs oracle, one point per corpus\n"
                         f"({len(both)} corpora, r = {_pearson(both):.2f}; dotted: y = x)")

    # Quality: different quantities and scales, so two y axes.
    ax_line, ax_scatter = axes[1]
    ax_valid = ax_line.twinx()
    ax_valid.spines["right"].set_visible(True)
    for setup in setups:
        style = dict(color=colours[setup], marker=setup_marker(setup), markersize=3)
        tqi = replicate_summary(summary, "tqi", [setup])
        valid = replicate_summary(summary, "oracle_valid", [setup])
        ax_line.plot(tqi["generation"], tqi["mean"], linewidth=1.3, **style)
        ax_valid.plot(valid["generation"], valid["mean"], linewidth=1.0, linestyle="--",
                      markerfacecolor="white", **style)
        rows = models[models["setup"] == setup]
        _corpus_scatter(ax_scatter, rows, "oracle_valid_mean", "tqi_mean", colours[setup],
                        setup_marker(setup), 14)
    ax_line.set_ylabel("TQI (0-3), solid")
    ax_valid.set_ylabel("Oracle valid share (0-1), dashed")
    ax_line.set_title("Quality: TQI (solid), oracle valid share (dashed)\n"
                      + _short_note(replicate_summary(summary, "tqi", setups)).split(",")[0])
    _integer_generations(ax_line)
    both = models[["tqi_mean", "oracle_valid_mean"]].dropna()
    ax_scatter.set_xlabel("Oracle: share of valid, distinct sentences (0-1)")
    ax_scatter.set_ylabel("TQI (0-3)")
    ax_scatter.set_title(f"TQI vs oracle valid share, per corpus\n"
                         f"({len(both)} corpora, r = {_pearson(both):.2f}; bars: 95% t CI)")
    _legend_below(fig, axes, ncol=3)
    return save_figure(fig, out_png)


def _pearson(pair):
    """Pearson r of a two-column frame (NaN when under three points or constant)."""
    if len(pair) < 3 or (pair.std() == 0).any():
        return float("nan")
    return float(pair.iloc[:, 0].corr(pair.iloc[:, 1]))

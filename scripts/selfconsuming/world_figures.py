"""The world's leaning mix: pretraining corpus, human corpus and the base model's own continuations."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from . import LEANINGS  # noqa: E402
from .figures import save_figure  # noqa: E402
from .summary import share_with_ci  # noqa: E402

LEANING_COLOURS = {"left": "#2166ac", "center": "#8c8c8c", "right": "#b2182b"}


def leaning_mix_table(oracle_scores: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Oracle leaning shares with 95% Wilson intervals, one row per (corpus, leaning)."""
    rows = []
    for corpus, scores in oracle_scores.items():
        labels = scores["oracle_label"].tolist()
        for leaning in LEANINGS:
            share, lo, hi = share_with_ci(labels, leaning)
            rows.append({"corpus": corpus, "leaning": leaning, "share": share, "lo": lo, "hi": hi,
                         "n_articles": len(labels), "n_scored": sum(isinstance(l, str) for l in labels),
                         "mean_valid_share": float(scores["oracle_valid_share"].mean())})
    return pd.DataFrame(rows)


def plot_leaning_mix(table: pd.DataFrame, out_png) -> None:
    corpora = list(dict.fromkeys(table["corpus"]))
    x = np.arange(len(corpora))
    width = 0.26
    fig, ax = plt.subplots(figsize=(7, 4))
    for k, leaning in enumerate(LEANINGS):
        part = table[table["leaning"] == leaning].set_index("corpus").loc[corpora]
        err = np.vstack([part["share"] - part["lo"], part["hi"] - part["share"]])
        ax.bar(x + (k - 1) * width, part["share"], width, yerr=err, capsize=3, label=leaning,
               color=LEANING_COLOURS[leaning])
    scored = table.drop_duplicates("corpus").set_index("corpus").loc[corpora]
    # the oracle labels only articles with a parseable sentence: show how many that is
    ax.set_xticks(x, [f"{c}\n({s} of {n} articles scored)" for c, s, n in
                      zip(corpora, scored["n_scored"], scored["n_articles"])])
    ax.set_ylabel("share of articles (oracle label)")
    ax.set_ylim(0, 1)
    ax.set_title("Leaning mix in the world (95% CIs)")
    ax.legend(title="leaning", frameon=False)
    fig.tight_layout()
    save_figure(fig, out_png, dpi=150)

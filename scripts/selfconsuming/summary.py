"""Per-corpus summaries: leaning shares and means with 95% confidence intervals."""

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from . import LEANINGS


def share_with_ci(labels, leaning: str, alpha: float = 0.05) -> tuple[float, float, float]:
    """Share of `leaning` among labels with a Wilson interval (well behaved near 0 and 1)."""
    labels = [l for l in labels if isinstance(l, str)]
    n = len(labels)
    if n == 0:
        return (np.nan, np.nan, np.nan)
    k = sum(l == leaning for l in labels)
    lo, hi = proportion_confint(k, n, alpha=alpha, method="wilson")
    return (k / n, float(lo), float(hi))


def mean_with_ci(values, alpha: float = 0.05) -> tuple[float, float, float]:
    """Mean with a t interval over the finite values."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return (np.nan, np.nan, np.nan)
    m = float(x.mean())
    if len(x) < 2:
        return (m, np.nan, np.nan)
    half = float(stats.sem(x) * stats.t.ppf(1 - alpha / 2, len(x) - 1))
    return (m, m - half, m + half)


def _put(row: dict, name: str, triple, mean_suffix: str = "") -> None:
    """Store (value, lo, hi) as name<mean_suffix>, name_lo, name_hi."""
    row[f"{name}{mean_suffix}"], row[f"{name}_lo"], row[f"{name}_hi"] = triple


def summarise_scores(scores: pd.DataFrame, diversity: dict) -> dict:
    """One summary row (without setup/generation) from a corpus's per-article scores and diversity."""
    row = {"n_articles": len(scores)}
    has_oracle = "oracle_label" in scores and scores["oracle_label"].notna().any()
    # articles the oracle could label (a parseable sentence): the n behind every oracle share
    row["oracle_n"] = int(scores["oracle_label"].notna().sum()) if "oracle_label" in scores else np.nan
    for leaning in LEANINGS:
        _put(row, f"share_{leaning}", share_with_ci(scores["label"], leaning))
        if has_oracle:
            _put(row, f"oracle_share_{leaning}", share_with_ci(scores["oracle_label"], leaning))
        else:
            _put(row, f"oracle_share_{leaning}", (np.nan,) * 3)
    valid = scores["oracle_valid_share"] if "oracle_valid_share" in scores else []
    _put(row, "oracle_valid", mean_with_ci(valid), "_mean")
    _put(row, "tqi", mean_with_ci(scores["tqi"]), "_mean")
    _put(row, "ppl", mean_with_ci(scores["ppl"]), "_mean")
    row["ppl_median"] = float(np.nanmedian(scores["ppl"])) if len(scores) else np.nan
    for key in ("unique_1", "unique_2", "unique_3", "distinct_1", "distinct_2", "distinct_3",
                "self_bleu_diversity", "semantic_diversity", "syntactic_diversity"):
        row[key] = diversity.get(key, np.nan)
    return row


def corpus_identity(corpus: str) -> dict:
    """corpus, setup, replicate, generation and kind of a scored corpus name.

    Names: human, base (the base model's sampled continuations), base-<decoding> (the base
    model decoded like the setups of that decoding), <setup>/rep<r>/gen<g>. Reference rows
    have replicate and generation -1.
    """
    if corpus == "human" or corpus == "base" or corpus.startswith("base-"):
        kind = "human" if corpus == "human" else "base"
        return {"corpus": corpus, "setup": corpus, "replicate": -1, "generation": -1, "kind": kind}
    setup, rep, gen = corpus.split("/")
    if not (rep.startswith("rep") and gen.startswith("gen")):
        raise ValueError(f"corpus name {corpus!r} is not <setup>/rep<r>/gen<g>")
    return {"corpus": corpus, "setup": setup, "replicate": int(rep[3:]), "generation": int(gen[3:]), "kind": "model"}

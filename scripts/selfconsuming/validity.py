"""Instrument validity: every metric of the study checked against the world's exact oracle.

The study's trends are read off three instruments: the trained leaning classifier
(label, p_left/center/right), the text quality index (TQI, 0-3) and perplexity. On the
built-in news world an exact oracle gives, per article, the leaning (`oracle_label`) and
the share of sentences that belong to the world and do not repeat an earlier sentence of
the article (`oracle_valid_share`; `oracle_parsed_share` counts repeats too), so each
instrument can be scored against the truth, per corpus and across the model corpora.
On real data there is no oracle: the tables keep the instruments' own numbers, and the
overall checks say so and report the classifier's held-out macro F1 instead.

`validity_table` -> one row per corpus; `validity_overall` -> one tidy row per check;
`validity_figure` draws the three agreement panels; `validity_table_html` renders both
tables for the report.
"""

import html
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from scipy import stats  # noqa: E402
from sklearn.exceptions import UndefinedMetricWarning  # noqa: E402
from sklearn.metrics import cohen_kappa_score  # noqa: E402
from statsmodels.stats.proportion import proportion_confint  # noqa: E402

from selfconsuming import LEANINGS  # noqa: E402
from selfconsuming.figures import (PAPER_RC, REFERENCE_COLOURS, REFERENCE_LABELS,  # noqa: E402
                                   STUDY_SETUPS, _legend_below, save_figure, setup_colours,
                                   setup_marker)
from selfconsuming.tables import _html_document, table_html  # noqa: E402

REFERENCE_CORPORA = ("human", "base")
# Targets of issue 13: an instrument tracks the oracle well enough to read trends off it.
TARGET_R_RIGHT_SHARE = 0.8
TARGET_R_TQI_VALID = 0.8
NO_ORACLE_NOTE = ("no oracle on real data: agreement with the truth cannot be measured; "
                  "only the classifier's held-out F1 on human text is known")

SCORE_COLUMNS = ("corpus", "setup", "replicate", "generation", "id", "label", "tqi", "ppl")
TABLE_COLUMNS = ["corpus", "kind", "setup", "replicate", "generation", "n_articles", "oracle_n",
                 "agreement", "kappa", "classifier_right_share", "oracle_right_share",
                 "classifier_right_share_all", "tqi_mean", "oracle_valid_mean", "oracle_parsed_mean",
                 "r_tqi_valid", "ppl_median", "r_logppl_valid"]
# Oracle (rows) x classifier (columns) counts per corpus, so kappa can be pooled exactly.
CONFUSION_COLUMNS = [f"n_oracle_{o}_clf_{c}" for o in LEANINGS for c in LEANINGS]
# How sure the oracle is of an article's leaning (its largest posterior): one valid sentence
# often leaves it near a coin toss, and agreement with a coin toss says little of the classifier.
CONFIDENCE_BINS = (("weak", 0.0, 0.6), ("moderate", 0.6, 0.9), ("sure", 0.9, 1.0))
CONFIDENCE_COLUMNS = [f"n_{what}_{name}" for name, _, _ in CONFIDENCE_BINS for what in ("oracle", "agree")]
# The right share two more ways, to say where classifier and oracle part: on the articles the
# oracle is at least moderately sure of, and as the mean probability of right (no argmax).
DECISIVE = CONFIDENCE_BINS[1][1]
SHARE_COLUMNS = ["oracle_n_decisive", "classifier_right_share_decisive", "oracle_right_share_decisive",
                 "classifier_p_right_mean", "oracle_p_right_mean"]
OVERALL_COLUMNS = ["check", "value", "ci_lo", "ci_hi", "n", "target", "met", "note"]


# ---------------------------------------------------------------- statistics

def _require_columns(df, columns, what):
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s) {missing}; has {list(df.columns)}")


def has_oracle(scores: pd.DataFrame) -> bool:
    """Whether the scores carry the world's oracle (real corpora: no oracle columns, or all NaN)."""
    return ("oracle_label" in scores.columns and "oracle_valid_share" in scores.columns
            and bool(scores["oracle_valid_share"].notna().any()))


def _pearson(x, y) -> tuple[float, float, float, int]:
    """(r, ci_lo, ci_hi, n) over the finite pairs; NaN when under three pairs or a side is constant.

    The 95% interval is scipy's Fisher-z interval (unbounded, i.e. [-1, 1], at n = 3).
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    n = int(keep.sum())
    if n < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan"), float("nan"), float("nan"), n
    result = stats.pearsonr(x, y)
    ci = result.confidence_interval(confidence_level=0.95)
    return float(result.statistic), float(ci.low), float(ci.high), n


def _kappa(oracle, classifier) -> float:
    """Cohen's kappa (sklearn) of two label lists; NaN when empty or undefined (one class)."""
    if len(oracle) == 0:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", UndefinedMetricWarning)  # one shared class: NaN below
        value = cohen_kappa_score(list(oracle), list(classifier), labels=list(LEANINGS))
    return float(value) if np.isfinite(value) else float("nan")


def _log(values) -> np.ndarray:
    """Natural log of positive finite values, NaN elsewhere (perplexity can be inf or missing)."""
    v = np.asarray(values, dtype=float)
    out = np.full(v.shape, np.nan)
    ok = np.isfinite(v) & (v > 0)
    out[ok] = np.log(v[ok])
    return out


def _kind(corpus, setup) -> str:
    """human / base for the reference corpora, model for every fine-tuned model's corpus."""
    for name in (corpus, setup):
        if name in REFERENCE_CORPORA:
            return name
    return "model"


# ---------------------------------------------------------------- per corpus

def _corpus_row(corpus: str, part: pd.DataFrame, oracle: bool) -> dict:
    """Validity numbers of one corpus (oracle columns NaN without an oracle)."""
    first = part.iloc[0]
    row = {"corpus": corpus, "kind": _kind(corpus, first["setup"]), "setup": first["setup"],
           "replicate": int(first["replicate"]), "generation": int(first["generation"]),
           "n_articles": len(part)}
    labels = part["label"]
    row["classifier_right_share_all"] = float((labels[labels.notna()] == "right").mean()) \
        if labels.notna().any() else float("nan")
    row["tqi_mean"] = float(part["tqi"].mean())
    row["ppl_median"] = float(part["ppl"].median())
    if not oracle:
        row.update(oracle_n=0, agreement=np.nan, kappa=np.nan, classifier_right_share=np.nan,
                   oracle_right_share=np.nan, oracle_valid_mean=np.nan, oracle_parsed_mean=np.nan,
                   r_tqi_valid=np.nan,
                   r_logppl_valid=np.nan, **{c: 0 for c in CONFUSION_COLUMNS + CONFIDENCE_COLUMNS},
                   **{c: 0 if c == "oracle_n_decisive" else np.nan for c in SHARE_COLUMNS})
        return row
    labelled = part[part["oracle_label"].isin(LEANINGS) & part["label"].isin(LEANINGS)]
    row["oracle_n"] = len(labelled)
    row["agreement"] = float((labelled["label"] == labelled["oracle_label"]).mean()) \
        if len(labelled) else float("nan")
    row["kappa"] = _kappa(labelled["oracle_label"], labelled["label"])
    row["classifier_right_share"] = float((labelled["label"] == "right").mean()) \
        if len(labelled) else float("nan")
    row["oracle_right_share"] = float((labelled["oracle_label"] == "right").mean()) \
        if len(labelled) else float("nan")
    row["oracle_valid_mean"] = float(part["oracle_valid_share"].mean())
    row["oracle_parsed_mean"] = float(part["oracle_parsed_share"].mean()) \
        if "oracle_parsed_share" in part else float("nan")
    row["r_tqi_valid"] = _pearson(part["tqi"], part["oracle_valid_share"])[0]
    row["r_logppl_valid"] = _pearson(_log(part["ppl"]), part["oracle_valid_share"])[0]
    counts = pd.crosstab(labelled["oracle_label"], labelled["label"]).reindex(
        index=list(LEANINGS), columns=list(LEANINGS), fill_value=0)
    row.update({f"n_oracle_{o}_clf_{c}": int(counts.loc[o, c]) for o in LEANINGS for c in LEANINGS})
    row.update(_confidence_counts(labelled))
    row.update(_share_variants(labelled))
    return row


def _right_share(labels: pd.Series) -> float:
    return float((labels == "right").mean()) if len(labels) else float("nan")


def _share_variants(labelled: pd.DataFrame) -> dict:
    """Right shares on the articles the oracle is sure of (>= DECISIVE), and mean P(right) of both."""
    decisive = labelled[oracle_confidence(labelled) >= DECISIVE]
    has_p = "p_right" in labelled.columns and "oracle_p_right" in labelled.columns
    return {"oracle_n_decisive": len(decisive),
            "classifier_right_share_decisive": _right_share(decisive["label"]),
            "oracle_right_share_decisive": _right_share(decisive["oracle_label"]),
            "classifier_p_right_mean": float(labelled["p_right"].mean()) if has_p and len(labelled) else np.nan,
            "oracle_p_right_mean": float(labelled["oracle_p_right"].mean()) if has_p and len(labelled) else np.nan}


def oracle_confidence(scores: pd.DataFrame) -> pd.Series:
    """The oracle's largest posterior per article (NaN where the scores lack oracle_p_*)."""
    columns = [f"oracle_p_{leaning}" for leaning in LEANINGS]
    if not set(columns) <= set(scores.columns):
        return pd.Series(np.nan, index=scores.index)
    return scores[columns].max(axis=1)


def _confidence_counts(labelled: pd.DataFrame) -> dict:
    """Per CONFIDENCE_BINS bin: articles the oracle labelled with that confidence, and agreements."""
    sure = oracle_confidence(labelled)
    agree = labelled["label"] == labelled["oracle_label"]
    out = {}
    for i, (name, lo, hi) in enumerate(CONFIDENCE_BINS):
        inside = (sure >= lo) & ((sure < hi) if i < len(CONFIDENCE_BINS) - 1 else (sure <= hi))
        out[f"n_oracle_{name}"] = int(inside.sum())
        out[f"n_agree_{name}"] = int((inside & agree).sum())
    return out


def _order(table: pd.DataFrame) -> pd.DataFrame:
    """Human, base, then the model corpora by setup (study order first), replicate, generation."""
    kind_rank = table["kind"].map({"human": 0, "base": 1}).fillna(2)
    setups = list(STUDY_SETUPS) + sorted(set(table["setup"].astype(str)) - set(STUDY_SETUPS))
    setup_rank = table["setup"].astype(str).map({s: i for i, s in enumerate(setups)})
    keys = pd.DataFrame({"k": kind_rank, "s": setup_rank, "r": table["replicate"],
                         "g": table["generation"]})
    return table.loc[keys.sort_values(["k", "s", "r", "g"], kind="stable").index] \
        .reset_index(drop=True)


def validity_table(scores: pd.DataFrame) -> pd.DataFrame:
    """One row per corpus: classifier, TQI and perplexity beside the oracle (NaN without one).

    `oracle_n` counts articles both the oracle and the classifier labelled; agreement,
    kappa and both right shares are on those, `classifier_right_share_all` on every
    article. The per-corpus confusion counts (`n_oracle_<o>_clf_<c>`) let
    `validity_overall` pool kappa exactly; `n_oracle_<bin>` and `n_agree_<bin>` count
    those articles and the agreements per bin of the oracle's confidence (CONFIDENCE_BINS).
    """
    _require_columns(scores, SCORE_COLUMNS, "scores")
    if scores.empty:
        raise ValueError("scores is empty: no corpus to validate")
    oracle = has_oracle(scores)
    rows = [_corpus_row(corpus, part, oracle)
            for corpus, part in scores.groupby("corpus", sort=False)]
    table = pd.DataFrame(rows)[TABLE_COLUMNS + CONFUSION_COLUMNS + CONFIDENCE_COLUMNS + SHARE_COLUMNS]
    return _order(table)


# ---------------------------------------------------------------- across corpora

def _check(check, value, ci_lo=np.nan, ci_hi=np.nan, n=None, target=None, note=""):
    """One tidy row; `met` is None without a target and False when the value is undefined."""
    met = None if target is None else bool(np.isfinite(value) and value >= target)
    return {"check": check, "value": value, "ci_lo": ci_lo, "ci_hi": ci_hi, "n": n,
            "target": target, "met": met, "note": note}


def _r_check(check, x, y, target=None, note="", unit="model corpora"):
    r, lo, hi, n = _pearson(x, y)
    if not np.isfinite(r):
        note = (note + "; " if note else "") + f"undefined with {n} {unit} (needs 3 and variation)"
    return _check(check, r, lo, hi, n, target, note)


def _pooled_labels(table: pd.DataFrame) -> tuple[list, list]:
    """(oracle labels, classifier labels) rebuilt from the summed confusion counts."""
    oracle, classifier = [], []
    for o in LEANINGS:
        for c in LEANINGS:
            k = int(table[f"n_oracle_{o}_clf_{c}"].sum())
            oracle += [o] * k
            classifier += [c] * k
    return oracle, classifier


def _agreement_checks(table: pd.DataFrame, what: str) -> list[dict]:
    """Pooled per-article agreement (Wilson 95% CI) and Cohen's kappa over the given corpora."""
    oracle, classifier = _pooled_labels(table)
    n = len(oracle)
    if n == 0:
        return [_check(f"agreement with oracle label ({what})", np.nan, n=0,
                       note="the oracle labelled no article")]
    hits = int(sum(o == c for o, c in zip(oracle, classifier)))
    lo, hi = proportion_confint(hits, n, alpha=0.05, method="wilson")
    return [_check(f"agreement with oracle label ({what})", hits / n, float(lo), float(hi), n,
                   note="pooled over articles"),
            _check(f"Cohen's kappa with oracle label ({what})", _kappa(oracle, classifier), n=n,
                   note="pooled over articles; chance-corrected")]


def _confidence_checks(models: pd.DataFrame) -> list[dict]:
    """Pooled agreement (Wilson 95% CI) per bin of the oracle's confidence, over the model corpora."""
    if not all(c in models.columns for c in CONFIDENCE_COLUMNS):
        return []
    rows = []
    for name, lo, hi in CONFIDENCE_BINS:
        n, hits = int(models[f"n_oracle_{name}"].sum()), int(models[f"n_agree_{name}"].sum())
        check = f"agreement with oracle label (model corpora, oracle {name}: posterior {lo:g}-{hi:g})"
        if n == 0:
            rows.append(_check(check, np.nan, n=0, note="no article in this bin"))
            continue
        ci_lo, ci_hi = proportion_confint(hits, n, alpha=0.05, method="wilson")
        rows.append(_check(check, hits / n, float(ci_lo), float(ci_hi), n,
                           note="pooled over articles; the oracle's largest posterior in this range"))
    return rows


def _share_variant_checks(models: pd.DataFrame, min_oracle_n: int) -> list[dict]:
    """The right-share r again, without the articles the oracle barely reads, and without argmax."""
    if not all(c in models.columns for c in SHARE_COLUMNS):
        return []
    decisive = models[models["oracle_n_decisive"] >= min_oracle_n]
    enough = models[models["oracle_n"] >= min_oracle_n]
    return [_r_check(f"r(classifier right share, oracle right share), oracle posterior >= {DECISIVE:g}",
                     decisive["classifier_right_share_decisive"], decisive["oracle_right_share_decisive"],
                     note=f"only the articles the oracle is at least moderately sure of; model corpora "
                          f"with {min_oracle_n} or more ({len(decisive)} of {len(models)})"),
            _r_check("r(classifier mean P(right), oracle mean P(right))",
                     enough["classifier_p_right_mean"], enough["oracle_p_right_mean"],
                     note=f"probabilities, not argmax labels; model corpora with oracle_n >= "
                          f"{min_oracle_n} ({len(enough)} of {len(models)})")]


def _classifier_checks(classifier_metrics) -> list[dict]:
    """Held-out macro F1 of the chosen backbone (the only check of the classifier on real data)."""
    if classifier_metrics is None or len(classifier_metrics) == 0:
        return [_check("classifier held-out macro F1", np.nan,
                       note="no classifier metrics given")]
    _require_columns(classifier_metrics, ["backbone", "val_macro_f1", "test_macro_f1"],
                     "classifier_metrics")
    chosen = classifier_metrics
    if "chosen" in classifier_metrics.columns and classifier_metrics["chosen"].astype(bool).any():
        chosen = classifier_metrics[classifier_metrics["chosen"].astype(bool)]
    row = chosen.iloc[0]
    note = f"backbone {row['backbone']}; held-out human articles only, not synthetic text"
    return [_check(f"classifier {split} macro F1", float(row[f"{split}_macro_f1"]), note=note)
            for split in ("val", "test")]


def validity_overall(table: pd.DataFrame, min_oracle_n: int = 15,
                     classifier_metrics: pd.DataFrame | None = None) -> pd.DataFrame:
    """Across the model corpora: how closely each instrument tracks the oracle, against the targets.

    r(classifier right share, oracle right share) uses corpora with at least
    `min_oracle_n` oracle-labelled articles (a share over fewer is mostly noise);
    r(TQI mean, oracle valid share) and r(log median perplexity, oracle valid share)
    use every model corpus. Each r has its Fisher-z 95% CI and `n` = corpora. Without
    an oracle the rows say so, and the classifier's held-out macro F1 (the chosen
    row of `classifier_metrics`, as in classifier/metrics.csv) is the only evidence.
    r(TQI, log perplexity) is reported either way: two instruments that should agree.
    """
    _require_columns(table, TABLE_COLUMNS, "validity table")
    models = table[table["kind"] == "model"]
    oracle = bool(table["oracle_n"].sum() > 0) or bool(table["oracle_valid_mean"].notna().any())
    rows = []
    if oracle:
        enough = models[models["oracle_n"] >= min_oracle_n]
        rows.append(_r_check("r(classifier right share, oracle right share)",
                             enough["classifier_right_share"], enough["oracle_right_share"],
                             TARGET_R_RIGHT_SHARE,
                             note=f"model corpora with oracle_n >= {min_oracle_n} "
                                  f"({len(enough)} of {len(models)})"))
        rows.append(_r_check("r(classifier right share as reported, oracle right share)",
                             enough["classifier_right_share_all"], enough["oracle_right_share"],
                             note="the share the summary and the figures report (every article the classifier "
                                  "labels, also those the oracle cannot read) against the oracle's; model "
                                  f"corpora with oracle_n >= {min_oracle_n} ({len(enough)} of {len(models)})"))
        rows += _share_variant_checks(models, min_oracle_n)
        rows.append(_r_check("r(TQI mean, oracle valid share)", models["tqi_mean"],
                             models["oracle_valid_mean"], TARGET_R_TQI_VALID,
                             note="all model corpora"))
        if models["oracle_parsed_mean"].notna().any():
            rows.append(_r_check("r(TQI mean, oracle parsed share)", models["tqi_mean"],
                                 models["oracle_parsed_mean"],
                                 note="all model corpora; repeats of an earlier sentence counted as "
                                      "valid, so greedy loops of one valid sentence score high"))
        rows.append(_r_check("r(log perplexity median, oracle valid share)",
                             _log(models["ppl_median"]), models["oracle_valid_mean"],
                             note="all model corpora; expected negative"))
        rows += _agreement_checks(models, "model corpora")
        rows += _confidence_checks(models)
        for kind in REFERENCE_CORPORA:
            ref = table[table["kind"] == kind]
            if len(ref):
                rows += _agreement_checks(ref, f"{kind} corpus")
    else:
        for check, target in (("r(classifier right share, oracle right share)",
                               TARGET_R_RIGHT_SHARE),
                              ("r(TQI mean, oracle valid share)", TARGET_R_TQI_VALID)):
            row = _check(check, np.nan, n=0, note=NO_ORACLE_NOTE)
            row["target"], row["met"] = target, None  # not measurable, so neither met nor failed
            rows.append(row)
    rows.append(_r_check("r(TQI mean, log perplexity median)", models["tqi_mean"],
                         _log(models["ppl_median"]),
                         note="all model corpora; two quality instruments, expected negative"))
    rows += _classifier_checks(classifier_metrics)
    overall = pd.DataFrame(rows, columns=OVERALL_COLUMNS)
    overall["met"] = overall["met"].astype(object)
    overall["n"] = overall["n"].astype("Int64")
    return overall


# ---------------------------------------------------------------- figure

def _overall_value(overall, check):
    """(r, n) of a named check, (NaN, 0) when absent."""
    row = overall[overall["check"] == check]
    if row.empty:
        return float("nan"), 0
    n = row["n"].iloc[0]
    return float(row["value"].iloc[0]), int(n) if pd.notna(n) else 0


def _title(ax, what, overall, check):
    r, n = _overall_value(overall, check)
    ax.set_title(f"{what}\nr = {r:.2f}, n = {n} model corpora" if np.isfinite(r)
                 else f"{what}\nr undefined, n = {n} model corpora")


def _scatter_corpora(ax, table, x, y, sizes=None):
    """Model corpora coloured by setup; human and base as large labelled markers."""
    colours = setup_colours(table.loc[table["kind"] == "model", "setup"].unique())
    models = table[table["kind"] == "model"]
    top = max(float(table[sizes].max()), 1.0) if sizes is not None else 1.0
    for setup, part in models.groupby("setup", sort=False):
        rgba = np.tile(to_rgba(colours[setup]), (len(part), 1))
        size = 18.0
        if sizes is not None:  # few oracle-labelled articles -> small and faint
            weight = np.clip(part[sizes].to_numpy(float) / top, 0.0, 1.0)
            size = 6 + 40 * weight
            rgba[:, 3] = 0.2 + 0.8 * weight
        else:
            rgba[:, 3] = 0.8
        ax.scatter(part[x], part[y], s=size, c=rgba, marker=setup_marker(setup), label=setup,
                   linewidths=0)
    for kind, marker in zip(REFERENCE_CORPORA, ("*", "D")):
        ref = table[table["kind"] == kind]
        if len(ref) and ref[[x, y]].notna().all(axis=None):
            ax.scatter(ref[x], ref[y], s=90 if marker == "*" else 45, marker=marker,
                       color=REFERENCE_COLOURS[kind], edgecolors="white", linewidths=0.6,
                       label=REFERENCE_LABELS[kind], zorder=5)


def _identity_line(ax, table, x, y):
    values = table[[x, y]].to_numpy(float)
    values = values[np.isfinite(values)]
    if values.size:
        lo, hi = values.min(), values.max()
        pad = 0.05 * (hi - lo or 1)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="#999999", linestyle=":",
                linewidth=0.9, zorder=0, label="y = x")


def _oracle_panels(axes, table, overall):
    plot = table.assign(log_ppl=_log(table["ppl_median"]))
    ax = axes[0]
    _scatter_corpora(ax, plot, "oracle_right_share", "classifier_right_share", sizes="oracle_n")
    _identity_line(ax, plot, "oracle_right_share", "classifier_right_share")
    ax.set_xlabel("Oracle: right-leaning share")
    ax.set_ylabel("Classifier: right-leaning share")
    _title(ax, "Leaning: classifier vs oracle\n(size, opacity: oracle-labelled articles)",
           overall, "r(classifier right share, oracle right share)")
    ax = axes[1]
    _scatter_corpora(ax, plot, "oracle_valid_mean", "tqi_mean")
    ax.set_xlabel("Oracle: share of valid, distinct sentences")
    ax.set_ylabel("TQI mean (0-3)")
    _title(ax, "Quality: TQI vs oracle", overall, "r(TQI mean, oracle valid share)")
    ax = axes[2]
    _scatter_corpora(ax, plot, "oracle_valid_mean", "log_ppl")
    ax.set_xlabel("Oracle: share of valid, distinct sentences")
    ax.set_ylabel("log median perplexity")
    _title(ax, "Fluency: perplexity vs oracle", overall,
           "r(log perplexity median, oracle valid share)")


def _real_data_panels(axes, table, overall):
    """Without an oracle: the instruments per generation, and TQI against perplexity."""
    colours = setup_colours(table.loc[table["kind"] == "model", "setup"].unique())
    models = table[table["kind"] == "model"]
    for ax, column, label in ((axes[0], "classifier_right_share_all",
                               "Classifier: right-leaning share"),
                              (axes[1], "tqi_mean", "TQI mean (0-3)")):
        for (setup, replicate), part in models.groupby(["setup", "replicate"], sort=False):
            ax.plot(part["generation"], part[column], color=colours[setup],
                    marker=setup_marker(setup), markersize=3, linewidth=1,
                    label=setup if replicate == models["replicate"].min() else None)
        for kind in REFERENCE_CORPORA:
            ref = table[table["kind"] == kind]
            if len(ref) and ref[column].notna().all():
                ax.axhline(ref[column].iloc[0], color=REFERENCE_COLOURS[kind],
                           linestyle="--" if kind == "human" else ":", linewidth=1,
                           label=REFERENCE_LABELS[kind])
        ax.set_xlabel("Generation")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(label)
        ax.set_title(f"{label.split(':')[0]}: no oracle on real data")
    f1, _ = _overall_value(overall, "classifier test macro F1")
    if np.isfinite(f1):
        axes[0].set_title(f"Classifier: no oracle on real data\n"
                          f"(test macro F1 {f1:.2f} on held-out human text)")
    plot = table.assign(log_ppl=_log(table["ppl_median"]))
    _scatter_corpora(axes[2], plot, "log_ppl", "tqi_mean")
    axes[2].set_xlabel("log median perplexity")
    axes[2].set_ylabel("TQI mean (0-3)")
    _title(axes[2], "TQI vs perplexity (no oracle)", overall,
           "r(TQI mean, log perplexity median)")


def validity_figure(table: pd.DataFrame, overall: pd.DataFrame, path_png):
    """Three panels of instrument against oracle, one point per corpus; PNG and PDF via save_figure.

    With an oracle: classifier vs oracle right share (points sized and faded by
    oracle_n, y = x line), TQI vs oracle valid share, log perplexity vs oracle valid
    share. Without one it says "no oracle on real data" and shows the classifier and TQI
    per generation and TQI against perplexity. Human and base are marked throughout.
    """
    _require_columns(table, TABLE_COLUMNS, "validity table")
    oracle = bool(table["oracle_valid_mean"].notna().any())
    with plt.rc_context(PAPER_RC):
        fig, axes = plt.subplots(1, 3, figsize=(10.5, 3.9), layout="constrained")
        if oracle:
            _oracle_panels(axes, table, overall)
        else:
            _real_data_panels(axes, table, overall)
            fig.suptitle("No oracle on real data: agreement with the truth cannot be measured")
        _legend_below(fig, axes, ncol=8)
        return save_figure(fig, path_png)


# ---------------------------------------------------------------- report table

def _format_overall(overall: pd.DataFrame) -> pd.DataFrame:
    """Readable checks: value, 95% CI as one cell, target as '>= t', met as yes / no / blank."""
    def ci(row):
        if pd.isna(row["ci_lo"]) or pd.isna(row["ci_hi"]):
            return ""
        return f"[{row['ci_lo']:.2f}, {row['ci_hi']:.2f}]"
    return pd.DataFrame({
        "check": overall["check"],
        "value": overall["value"].map(lambda v: "" if pd.isna(v) else f"{v:.3f}"),
        "95% CI": overall.apply(ci, axis=1),
        "n": overall["n"].map(lambda v: "" if pd.isna(v) else str(int(v))),
        "target": overall["target"].map(lambda t: "" if pd.isna(t) else f">= {t:g}"),
        "met": overall["met"].map(lambda m: "" if m is None or pd.isna(m) else
                                  ("yes" if m else "no")),
        "note": overall["note"],
    })


def _format_corpora(table: pd.DataFrame) -> pd.DataFrame:
    """The per-corpus columns a reader compares, shares in percent."""
    out = table[["corpus", "n_articles", "oracle_n", "agreement", "kappa"]].copy()
    out["classifier right % (oracle-labelled)"] = table["classifier_right_share"] * 100
    out["oracle right %"] = table["oracle_right_share"] * 100
    out["classifier right % (all)"] = table["classifier_right_share_all"] * 100
    for column in ("tqi_mean", "oracle_valid_mean", "r_tqi_valid", "ppl_median",
                   "r_logppl_valid"):
        out[column] = table[column]
    return out


def validity_table_html(table: pd.DataFrame, overall: pd.DataFrame) -> str:
    """A standalone HTML page for the report: the overall checks first, then one row per corpus."""
    oracle = bool(table["oracle_valid_mean"].notna().any())
    heading = "Instrument validity against the world's oracle" if oracle else \
        "Instrument validity: no oracle on real data"
    body = (f"<h3>{html.escape(heading)}</h3>\n"
            + table_html(_format_overall(overall), "Checks: r over corpora, agreement pooled over articles")
            + "\n" + table_html(_format_corpora(table), "Per corpus"))
    return _html_document(heading, body)

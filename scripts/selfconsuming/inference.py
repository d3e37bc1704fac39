"""Findings with uncertainty across replicates: change, trend and mitigation per setup and metric.

One run of the self-consuming loop is one draw of a chaotic process, so a finding is
stated from the distribution over replicates, never from one trajectory.

Method (R >= 2 replicates): two-stage summary statistics. Stage one reduces each
replicate's trajectory to one number (last generation minus generation 0, or the OLS
slope over generations); stage two is a one-sample t interval and t test over those R
numbers with R - 1 degrees of freedom (for the mitigation effect, a paired t over
replicates: replicate r of every setup starts from the same generation-0 model when the
recipes agree, so the difference of changes cancels that shared start). Why this and
not the alternatives with 2-5 replicates:

- it is exact under normal replicate effects whatever the within-replicate noise
  (articles, decoding), because that noise is already inside each replicate's number;
- for a balanced design (same generations in every replicate) its estimate equals the
  fixed slope of a linear mixed model with random replicate intercept and slope
  (statsmodels MixedLM), but the mixed model's Wald z interval ignores that the
  variance comes from R - 1 degrees of freedom and is liberal for small R;
- cluster-robust (sandwich) errors by replicate estimate a variance from R clusters;
  with 3 clusters they are badly liberal against a normal reference and unreliable
  even with small-sample corrections (Cameron, Gelbach and Miller 2008).

With R = 1 there is no replicate variation to use: per-article metrics get an article
bootstrap (resample the articles of each corpus; when all corpora hold the same
article ids, one resample of ids is shared by every corpus, so generations and setups
stay paired through their common prompts) with percentile intervals and a two-sided
bootstrap p; corpus-level diversity metrics get the estimate alone.

Perplexity is analysed as ln(mean perplexity) ("log_ppl_mean"): perplexity is
multiplicative and heavy-tailed, so a change on the log scale is a log ratio that is
comparable across models and closer to normal across replicates.

All p-values of one call form one family, Holm-adjusted (statsmodels multipletests),
unless `family_by` splits it (e.g. one family per metric). With R = 3 (df = 2) and the
whole family of a default run (about 240 tests) Holm asks for p < 0.05 / 240, a t of
about 70: only very sharp effects are declared; the intervals still say how large.
"""

from dataclasses import dataclass
import html
import warnings

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests

FINDINGS_COLUMNS = ["setup", "metric", "effect", "estimate", "ci_lo", "ci_hi", "p", "p_adj",
                    "verdict", "method", "n_replicates"]
EFFECTS = ("change", "trend", "vs_baseline")
EFFECT_LABELS = {"change": "Change (last - gen 0)", "trend": "Trend (per generation)",
                 "vs_baseline": "vs baseline (change difference)"}
REFERENCE_SETUPS = ("human", "base")

METHOD_TWO_STAGE = "two-stage t over replicates (df = R - 1)"
METHOD_PAIRED = "paired two-stage t over replicates (df = R - 1)"
METHOD_BOOTSTRAP = "article bootstrap (R=1)"
METHOD_CORPUS_R1 = "corpus-level metric with R=1: estimate only, no interval"
METHOD_NO_SCORES = "R=1 without article scores: estimate only, no interval"
SHORT_METHODS = {METHOD_TWO_STAGE: "t over replicates", METHOD_PAIRED: "t over replicates",
                 METHOD_BOOTSTRAP: "article bootstrap", METHOD_CORPUS_R1: "none (corpus-level)",
                 METHOD_NO_SCORES: "none (no article scores)"}


@dataclass(frozen=True)
class Metric:
    """How one metric is read: its summary column, and per article (None for corpus-level)."""

    name: str
    label: str
    column: str
    article_column: str | None = None
    match: str | None = None    # per-article indicator: article_column == match
    log: bool = False            # analyse ln of the corpus value

    def corpus_value(self, summary_values):
        """The analysed corpus value from the summary column (ln when `log`)."""
        x = np.asarray(summary_values, dtype=float)
        if not self.log:
            return x
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(x > 0, np.log(x), np.nan)

    def article_values(self, scores: pd.DataFrame) -> np.ndarray:
        """Per-article values whose mean is the corpus value (NaN where the article has none)."""
        col = scores[self.article_column]
        if self.match is None:
            return pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)
        labelled = col.map(lambda v: isinstance(v, str))
        return np.where(labelled, (col == self.match).astype(float), np.nan)

    def aggregate(self, values: np.ndarray, axis=-1) -> np.ndarray:
        """Corpus value from per-article values (nan-mean, then ln when `log`)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            m = np.nanmean(values, axis=axis)
        return self.corpus_value(m)


_DIVERSITY = {
    "unique_1": "Unique-1", "unique_2": "Unique-2", "unique_3": "Unique-3",
    "distinct_1": "Distinct-1", "distinct_2": "Distinct-2", "distinct_3": "Distinct-3",
    "self_bleu_diversity": "Self-BLEU diversity", "semantic_diversity": "Semantic diversity",
    "syntactic_diversity": "Syntactic diversity",
}
METRICS = {m.name: m for m in [
    Metric("share_right", "Right share (classifier)", "share_right", "label", "right"),
    Metric("oracle_share_right", "Right share (oracle)", "oracle_share_right", "oracle_label",
           "right"),
    Metric("tqi_mean", "Text quality index", "tqi_mean", "tqi"),
    Metric("oracle_valid_mean", "Valid distinct sentences (oracle)", "oracle_valid_mean",
           "oracle_valid_share"),
    Metric("log_ppl_mean", "Perplexity (ln of mean)", "ppl_mean", "ppl", log=True),
    *[Metric(k, v, k) for k, v in _DIVERSITY.items()],
]}
DEFAULT_METRICS = tuple(METRICS)


# ---------------------------------------------------------------- replicate statistics

def ols_slope(x, y) -> float:
    """OLS slope of y on x over the finite points (NaN with fewer than two)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 2 or np.ptp(x) == 0:
        return np.nan
    xc = x - x.mean()
    return float(xc @ (y - y.mean()) / (xc @ xc))


def t_summary(values, alpha: float = 0.05) -> dict:
    """Mean, t interval and two-sided one-sample t test against 0 over replicate estimates.

    With a single finite value, or no spread at all, the interval and p are NaN:
    the replicates carry no information about their own variation.
    """
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    out = {"estimate": float(x.mean()) if len(x) else np.nan, "ci_lo": np.nan,
           "ci_hi": np.nan, "p": np.nan, "n_replicates": len(x)}
    if len(x) < 2 or np.ptp(x) == 0:
        return out
    sem = stats.sem(x)
    half = float(sem * stats.t.ppf(1 - alpha / 2, len(x) - 1))
    out.update(ci_lo=out["estimate"] - half, ci_hi=out["estimate"] + half,
               p=float(stats.ttest_1samp(x, 0.0).pvalue))
    return out


def bootstrap_summary(point: float, draws, alpha: float = 0.05) -> dict:
    """Percentile interval and two-sided bootstrap p (share of draws across 0) around a point."""
    b = np.asarray(draws, dtype=float)
    b = b[np.isfinite(b)]
    if len(b) == 0:
        return {"estimate": point, "ci_lo": np.nan, "ci_hi": np.nan, "p": np.nan}
    lo, hi = np.quantile(b, [alpha / 2, 1 - alpha / 2])
    tail = min(np.sum(b <= 0), np.sum(b >= 0))
    p = min(1.0, 2 * (1 + tail) / (len(b) + 1))
    return {"estimate": point, "ci_lo": float(lo), "ci_hi": float(hi), "p": float(p)}


def _slopes(gens: np.ndarray, values: np.ndarray) -> np.ndarray:
    """OLS slope over generations of every column of values (generations x draws)."""
    gc = gens - gens.mean()
    return gc @ (values - values.mean(axis=0)) / (gc @ gc)


# ---------------------------------------------------------------- trajectories

def _with_replicate(df: pd.DataFrame) -> pd.DataFrame:
    """Add replicate 0 to tables written before replicates existed."""
    return df if "replicate" in df.columns else df.assign(replicate=0)


def model_rows(summary: pd.DataFrame) -> pd.DataFrame:
    """Summary rows of model corpora (no human/base reference rows)."""
    df = _with_replicate(summary)
    keep = df["generation"] >= 0
    if "kind" in df.columns:
        keep &= df["kind"] == "model"
    return df[keep & ~df["setup"].isin(REFERENCE_SETUPS)]


def trajectories(rows: pd.DataFrame, setup: str, metric: Metric) -> pd.DataFrame:
    """Replicate x generation table of a setup's analysed metric values (NaN where missing)."""
    df = rows[rows["setup"] == setup]
    values = df.assign(_v=metric.corpus_value(df[metric.column]))
    return values.pivot_table(index="replicate", columns="generation", values="_v",
                              aggfunc="mean", dropna=False).sort_index(axis=1)


def last_common_generation(traj: pd.DataFrame) -> int | None:
    """Last generation every replicate reached with a value, if generation 0 has one too."""
    finite = traj.notna()
    if traj.empty or 0 not in traj.columns or not finite[0].all():
        return None
    reached = [int(finite.columns[row.to_numpy()].max()) for _, row in finite.iterrows()]
    last = min(reached)
    return last if last > 0 else None


def replicate_effects(traj: pd.DataFrame, last: int) -> pd.DataFrame:
    """Per replicate: change (generation `last` minus 0) and OLS slope over generations 0..last."""
    window = traj.loc[:, [g for g in traj.columns if 0 <= g <= last]]
    gens = np.asarray(window.columns, dtype=float)
    return pd.DataFrame({
        "change": (window[last] - window[0]) if last in window else np.nan,
        "trend": [ols_slope(gens, row) for row in window.to_numpy()],
    }, index=traj.index)


# ---------------------------------------------------------------- article bootstrap

class ArticleBootstrap:
    """Bootstrap draws of per-corpus metric values from per-article scores.

    When every model corpus holds the same article ids (one continuation per human
    article), one resample of ids is shared by all corpora, which keeps generations and
    setups paired through their common prompts; otherwise each corpus is resampled on
    its own.
    """

    def __init__(self, scores: pd.DataFrame, n_boot: int, seed: int):
        self.scores = _with_replicate(scores)
        self.n_boot = n_boot
        self.rng = np.random.default_rng(seed)
        self.groups = {key: g for key, g in
                       self.scores.groupby(["setup", "replicate", "generation"], sort=False)}
        id_sets = {frozenset(g["id"]) for g in self.groups.values()}
        unique_ids = all(g["id"].is_unique for g in self.groups.values())
        self.ids = sorted(next(iter(id_sets))) if len(id_sets) == 1 and unique_ids else None
        if self.ids is not None:
            self.index = self.rng.integers(0, len(self.ids), (n_boot, len(self.ids)))

    def covers(self, setup: str, replicate: int, generations, metric: Metric) -> bool:
        """Whether every listed corpus has scores with the metric's per-article column."""
        return (metric.article_column in self.scores.columns
                and all((setup, replicate, g) in self.groups for g in generations))

    def corpus(self, setup: str, replicate: int, generation: int, metric: Metric):
        """(point value, bootstrap draws) of a metric on one corpus."""
        df = self.groups[(setup, replicate, generation)]
        if self.ids is not None:
            values = metric.article_values(df.set_index("id").loc[self.ids].reset_index())
            index = self.index
        else:
            values = metric.article_values(df)
            index = self.rng.integers(0, len(values), (self.n_boot, len(values)))
        return float(metric.aggregate(values)), metric.aggregate(values[index], axis=1)

    def effects(self, setup: str, replicate: int, generations, metric: Metric) -> dict:
        """effect -> (point, draws) of change (last listed minus first) and OLS trend."""
        pairs = [self.corpus(setup, replicate, g, metric) for g in generations]
        point = np.array([p for p, _ in pairs])
        draws = np.vstack([d for _, d in pairs])
        gens = np.asarray(generations, dtype=float)
        return {"change": (point[-1] - point[0], draws[-1] - draws[0]),
                "trend": (ols_slope(gens, point), _slopes(gens, draws))}


# ---------------------------------------------------------------- findings

def _generations(traj: pd.DataFrame, replicate, last: int) -> list[int]:
    """Generations 0..last with a value in one replicate's trajectory."""
    row = traj.loc[replicate]
    return [int(g) for g in row.index if g <= last and np.isfinite(row[g])]


def _single_effect(terms, effect, last, metric, trajs, boot, alpha) -> tuple[str, dict]:
    """(method, result) of a signed sum of single-replicate effects, e.g. setup minus baseline.

    terms are (sign, setup, replicate). Per-article metrics with scores for every corpus
    get the article bootstrap; the rest get the estimate alone.
    """
    gens = {(s, r): _generations(trajs[s], r, last) for _, s, r in terms}
    if boot is not None and metric.article_column is not None and all(
            boot.covers(s, r, gens[(s, r)], metric) for _, s, r in terms):
        parts = [(sign, boot.effects(s, r, gens[(s, r)], metric)[effect]) for sign, s, r in terms]
        point = sum(sign * p for sign, (p, _) in parts)
        draws = sum(sign * d for sign, (_, d) in parts)
        return METHOD_BOOTSTRAP, {**bootstrap_summary(point, draws, alpha), "n_replicates": 1}
    method = METHOD_CORPUS_R1 if metric.article_column is None else METHOD_NO_SCORES
    total = 0.0
    for sign, s, r in terms:
        effects = replicate_effects(trajs[s].loc[[r]], last).iloc[0]
        total += sign * effects[effect]
    return method, {"estimate": float(total), "ci_lo": np.nan, "ci_hi": np.nan, "p": np.nan,
                    "n_replicates": 1}


def _setup_rows(setup, metric, trajs, lasts, baseline, boot, alpha) -> list[dict]:
    """change, trend and (unless it is the baseline) vs_baseline rows of one setup."""
    traj, last = trajs[setup], lasts[setup]
    rows = []
    for effect in ("change", "trend"):
        if len(traj) >= 2:
            method, result = METHOD_TWO_STAGE, t_summary(replicate_effects(traj, last)[effect],
                                                         alpha)
        else:
            method, result = _single_effect([(1, setup, traj.index[0])], effect, last, metric,
                                            trajs, boot, alpha)
        rows.append({"setup": setup, "metric": metric.name, "effect": effect, "method": method,
                     **result})
    if setup == baseline or lasts.get(baseline) is None:
        return rows
    common = traj.index.intersection(trajs[baseline].index)
    end = min(last, lasts[baseline])
    if len(common) >= 2:
        diff = (replicate_effects(traj.loc[common], end)["change"]
                - replicate_effects(trajs[baseline].loc[common], end)["change"])
        method, result = METHOD_PAIRED, t_summary(diff, alpha)
    elif len(common) == 1:
        r = common[0]
        method, result = _single_effect([(1, setup, r), (-1, baseline, r)], "change", end,
                                        metric, trajs, boot, alpha)
    else:
        return rows
    rows.append({"setup": setup, "metric": metric.name, "effect": "vs_baseline",
                 "method": method, **result})
    return rows


def available_metrics(summary: pd.DataFrame, metrics=DEFAULT_METRICS) -> list[Metric]:
    """The requested metrics whose summary column exists with a value for some model corpus.

    Oracle columns are all NaN on real data (no oracle), so they drop out here.
    """
    rows = model_rows(summary)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; known: {list(METRICS)}")
    return [METRICS[m] for m in metrics
            if METRICS[m].column in rows.columns and rows[METRICS[m].column].notna().any()]


def holm(p) -> np.ndarray:
    """Holm-adjusted p-values over the finite entries (NaN stays NaN)."""
    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method="holm")[1]
    return out


def verdict(estimate, ci_lo, ci_hi, p_adj, alpha: float = 0.05) -> str:
    """increase / decrease when the adjusted p is below alpha and the CI excludes 0."""
    if np.isfinite(p_adj) and p_adj < alpha:
        if ci_lo > 0 and estimate > 0:
            return "increase"
        if ci_hi < 0 and estimate < 0:
            return "decrease"
    return "no evidence"


def _bootstrap_for(rows: pd.DataFrame, scores, baseline: str, n_boot: int, seed: int):
    """ArticleBootstrap over the scores of single-replicate setups and the baseline, if any."""
    counts = rows.groupby("setup")["replicate"].nunique()
    single = set(counts.index[counts == 1])
    if scores is None or scores.empty or not single:
        return None
    scores = model_rows(scores)
    return ArticleBootstrap(scores[scores["setup"].isin(single | {baseline})], n_boot, seed)


def findings(summary: pd.DataFrame, scores: pd.DataFrame | None = None,
             metrics=DEFAULT_METRICS, baseline: str = "deterministic", alpha: float = 0.05,
             n_boot: int = 2000, seed: int = 0, family_by=None) -> pd.DataFrame:
    """Tidy findings (FINDINGS_COLUMNS): per setup and metric, change, trend and vs_baseline.

    summary: metrics/summary.csv (one row per corpus, with replicate). scores: per-article
    scores of the model corpora, needed only for setups with one replicate (article
    bootstrap). Setups keep their order of appearance; a setup needs generation 0 and a
    later generation reached by all its replicates. "change" uses the last generation all
    replicates reached; vs_baseline uses the last generation both setups reached.
    Holm runs over every row with a p-value, or within groups of `family_by` columns
    (e.g. ["metric"]) when given.
    """
    rows_in = model_rows(summary)
    setups = list(dict.fromkeys(rows_in["setup"]))
    boot = _bootstrap_for(rows_in, scores, baseline, n_boot, seed)
    out = []
    for metric in available_metrics(summary, metrics):
        trajs = {s: trajectories(rows_in, s, metric).dropna(how="all") for s in setups}
        lasts = {s: last_common_generation(t) for s, t in trajs.items()}
        for setup in setups:
            if lasts[setup] is not None:
                out += _setup_rows(setup, metric, trajs, lasts, baseline, boot, alpha)
    df = pd.DataFrame(out, columns=[c for c in FINDINGS_COLUMNS if c not in ("p_adj", "verdict")])
    df["p_adj"] = (holm(df["p"]) if not family_by or df.empty else
                   df.groupby(family_by, sort=False)["p"].transform(holm))
    df["verdict"] = [verdict(*v, alpha=alpha) for v in
                     df[["estimate", "ci_lo", "ci_hi", "p_adj"]].to_numpy(dtype=float)]
    df["n_replicates"] = df["n_replicates"].astype(int)
    return df[FINDINGS_COLUMNS].reset_index(drop=True)


# ---------------------------------------------------------------- report table

def _number(x) -> str:
    """Three significant digits; scientific only for tiny non-zero values."""
    if not np.isfinite(x):
        return ""
    return f"{x:.1e}" if 0 < abs(x) < 1e-3 else f"{x:.3g}"


def _cell(row) -> str:
    """estimate [ci_lo, ci_hi] with an arrow when the verdict is an increase or decrease."""
    text = _number(row["estimate"])
    if np.isfinite(row["ci_lo"]) and np.isfinite(row["ci_hi"]):
        text += f" [{_number(row['ci_lo'])}, {_number(row['ci_hi'])}]"
    mark = {"increase": " \u25b2", "decrease": " \u25bc"}.get(row["verdict"], "")
    return text + mark


def findings_table_html(findings: pd.DataFrame, alpha: float = 0.05,
                        caption: str | None = None) -> str:
    """A compact <table> for the report: one row per setup x metric, one column per effect.

    Cells read "estimate [95% CI]" with an up/down arrow where the Holm-adjusted test
    finds an increase/decrease; the last columns give the replicates and interval method.
    """
    if findings.empty:
        return "<p>No findings: no setup reached a generation beyond 0.</p>"
    df = findings.assign(cell=[_cell(r) for _, r in findings.iterrows()])
    wide = df.pivot_table(index=["setup", "metric"], columns="effect", values="cell",
                          aggfunc="first", sort=False)
    info = df.groupby(["setup", "metric"], sort=False).agg(
        method=("method", "first"), n=("n_replicates", "max"))
    effects = [e for e in EFFECTS if e in wide.columns]
    head = "".join(f"<th>{html.escape(h)}</th>" for h in
                   ["Setup", "Metric", *[EFFECT_LABELS[e] for e in effects], "R", "Interval"])
    body, previous = [], None
    for (setup, metric), cells in wide.iterrows():
        label = METRICS[metric].label if metric in METRICS else metric
        shown = "" if setup == previous else setup
        previous = setup
        tds = [f"<td style='text-align:left'>{html.escape(str(shown))}</td>",
               f"<td style='text-align:left'>{html.escape(label)}</td>"]
        tds += [f"<td>{html.escape(cells[e]) if isinstance(cells[e], str) else ''}</td>"
                for e in effects]
        m = info.loc[(setup, metric)]
        tds.append(f"<td>{int(m['n'])}</td><td style='text-align:left'>"
                   f"{html.escape(SHORT_METHODS.get(m['method'], m['method']))}</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    caption = caption or (
        f"Findings across replicates: estimate [{1 - alpha:.0%} CI]; \u25b2/\u25bc = "
        f"increase/decrease with Holm-adjusted p < {alpha:g}. R = replicates; intervals are t "
        "intervals over replicates, or an article bootstrap when R = 1. Perplexity on the ln "
        "scale (change = log ratio).")
    return (f"<table>\n<caption>{html.escape(caption)}</caption>\n<thead><tr>{head}</tr></thead>"
            f"\n<tbody>\n" + "\n".join(body) + "\n</tbody>\n</table>\n")


# ---------------------------------------------------------------- regimes against the baseline

# The questions the regimes table answers, each with the sign of a setup's change minus the
# baseline's change that means "slower than the baseline": collapse lowers quality and
# diversity (a larger change is slower collapse); amplification raises the right share.
SLOWER_SIGN = {"oracle_valid_mean": 1, "tqi_mean": 1, "semantic_diversity": 1, "distinct_1": 1,
               "self_bleu_diversity": 1, "oracle_share_right": -1, "share_right": -1}
QUESTIONS = {"oracle_valid_mean": "collapse", "tqi_mean": "collapse", "semantic_diversity": "diversity loss",
             "distinct_1": "diversity loss", "self_bleu_diversity": "diversity loss",
             "oracle_share_right": "amplification", "share_right": "amplification"}


ARROWS = " \u25b2\u25bc"


def regime_verdict(row) -> str:
    """slower / faster / no evidence: a vs-baseline verdict read in the metric's direction."""
    if row["verdict"] not in ("increase", "decrease"):
        return "no evidence"
    up = row["verdict"] == "increase"
    return "slower" if up == (SLOWER_SIGN[row["metric"]] > 0) else "faster"


def regimes_table(findings: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """Per setup and question: the baseline's own change (its verdict: increase, decrease, no evidence),
    then every other setup's verdict against it (slower, faster, no evidence)."""
    rows = []
    for metric in SLOWER_SIGN:
        base = findings[(findings["setup"] == baseline) & (findings["metric"] == metric) & (findings["effect"] == "change")]
        rows += [{**r, "regime_verdict": r["verdict"]} for r in base.to_dict("records")]
        vs = findings[(findings["metric"] == metric) & (findings["effect"] == "vs_baseline")]
        rows += [{**r, "regime_verdict": regime_verdict(r)} for r in vs.to_dict("records")]
    return pd.DataFrame(rows)


def regime_levels(summary: pd.DataFrame, setup: str, metric: str) -> tuple[int, float, float] | None:
    """(last generation, mean at generation 0, mean at the last) of a setup's metric over its replicates.

    A verdict on a change needs the level it started from: a regime whose generation 0 is
    already at the floor cannot lose much, so "slower" there says nothing about the regime.
    """
    traj = trajectories(model_rows(summary), setup, METRICS[metric]).dropna(how="all")
    last = last_common_generation(traj)
    if last is None:
        return None
    return last, float(traj[0].mean()), float(traj[last].mean())


def regimes_table_html(findings: pd.DataFrame, baseline: str, alpha: float = 0.05,
                       summary: pd.DataFrame | None = None) -> str:
    """One row per setup, one column per metric: did the setup slow collapse, diversity loss and
    amplification against the baseline (its change minus the baseline's, paired by replicate)?
    With the summary, each cell also gives the setup's own mean at generation 0 and at the last."""
    table = regimes_table(findings, baseline)
    if table.empty or not (table["effect"] == "vs_baseline").any():
        return ""
    metrics = [m for m in SLOWER_SIGN if m in set(table["metric"])]
    head = "".join(f"<th>{html.escape(h)}</th>" for h in
                   ["Setup", *[f"{METRICS[m].label} ({QUESTIONS[m]})" for m in metrics]])
    body = []
    for setup in dict.fromkeys(table["setup"]):
        cells = []
        for m in metrics:
            hit = table[(table["setup"] == setup) & (table["metric"] == m)]
            if hit.empty:
                cells.append("")
                continue
            cell = f"{hit.iloc[0]['regime_verdict']}: {_cell(hit.iloc[0]).rstrip(ARROWS)}"
            levels = None if summary is None else regime_levels(summary, setup, m)
            if levels:
                cell += f" (gen 0 {levels[1]:.3g} \u2192 gen {levels[0]} {levels[2]:.3g})"
            cells.append(cell)
        label = f"{setup} (its own change)" if setup == baseline else setup
        body.append(f"<tr><td style='text-align:left'>{html.escape(label)}</td>"
                    + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    caption = (f"Regimes against {baseline}: the first row is {baseline}'s own change from generation 0 to the "
               f"last; every other row is that setup's change minus {baseline}'s, paired by replicate, "
               f"estimate [{1 - alpha:.0%} CI]. 'slower' / 'faster': the setup's collapse (valid sentences, "
               "text quality), diversity loss or right-share amplification is slower / faster than the "
               f"baseline's, with Holm-adjusted p < {alpha:g}; 'no evidence': the replicates do not tell."
               + (" In brackets, the setup's own mean at generation 0 and at the last generation: a "
                  "regime that starts at the floor cannot lose much, so read 'slower' against where it "
                  "started." if summary is not None else ""))
    return (f"<table>\n<caption>{html.escape(caption)}</caption>\n<thead><tr>{head}</tr></thead>\n<tbody>\n"
            + "\n".join(body) + "\n</tbody>\n</table>\n")


# ---------------------------------------------------------------- two runs

def compare_findings(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Two runs' findings side by side (e.g. two seeds): one row per (setup, metric, effect) in both.

    `agreement` is "same" (equal verdicts), "opposite" (one says increase, the other
    decrease: the reproducibility failure a replicated design must avoid) or "one
    undecided" (one verdict is "no evidence"); `ci_overlap` says whether the two 95%
    intervals share any value.
    """
    keys = ["setup", "metric", "effect"]
    both = a[keys + ["estimate", "ci_lo", "ci_hi", "verdict"]].merge(
        b[keys + ["estimate", "ci_lo", "ci_hi", "verdict"]], on=keys, suffixes=("_a", "_b"))
    decided = {"increase", "decrease"}
    both["agreement"] = np.where(
        both["verdict_a"] == both["verdict_b"], "same",
        np.where(both["verdict_a"].isin(decided) & both["verdict_b"].isin(decided), "opposite",
                 "one undecided"))
    both["ci_overlap"] = (both["ci_lo_a"] <= both["ci_hi_b"]) & (both["ci_lo_b"] <= both["ci_hi_a"])
    return both


def comparison_counts(compared: pd.DataFrame) -> pd.DataFrame:
    """Per effect (and overall): tests, same / opposite / one-undecided verdicts, non-overlapping CIs."""
    def counts(part):
        return pd.Series({"tests": len(part),
                          **{k: int((part["agreement"] == k).sum()) for k in ("same", "opposite", "one undecided")},
                          "ci_disjoint": int((~part["ci_overlap"]).sum())})
    per_effect = compared.groupby("effect").apply(counts, include_groups=False)
    per_effect.loc["all"] = counts(compared)
    return per_effect.reset_index()

"""Tables of the study as HTML (for the report) and CSV (for reuse).

Each `*_table` function turns a workflow output into a display DataFrame;
`write_html_table` / `write_data_table` write it. `example_continuations` renders one
human article beside what each setup's models made of it.
"""

import html
import re
from pathlib import Path

import numpy as np
import pandas as pd

from selfconsuming import LEANINGS
from selfconsuming.figures import reference_label, replicate_interval, with_replicates
from selfconsuming.io import atomic_path, write_table
from selfconsuming.summary import mean_with_ci

STYLE = """
body { font-family: sans-serif; font-size: 13px; margin: 1em; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
caption { caption-side: top; text-align: left; font-weight: bold; padding: 0.4em 0; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: right; vertical-align: top; }
th { background: #f2f2f2; }
td.text { text-align: left; max-width: 60em; }
div.text { max-height: 14em; overflow: auto; white-space: pre-wrap; }
"""


# ---------------------------------------------------------------- writing

def _format_number(x):
    """Readable numbers: integers as such, small values to 3 decimals, large to 1."""
    if pd.isna(x):
        return ""
    if float(x).is_integer() and abs(x) >= 1:
        return f"{int(x):,}" if abs(x) >= 10_000 else str(int(x))
    return f"{x:.3f}" if abs(x) < 10 else f"{x:.1f}"


def _html_document(title, body):
    return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>{STYLE}</style></head>\n<body>\n{body}\n</body></html>\n")


def write_html(document, path):
    """Write an HTML string atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(document, encoding="utf-8")
    return Path(path)


def table_html(df, caption, index=False):
    """The <table> element of a DataFrame with its caption (values HTML-escaped)."""
    body = df.to_html(index=index, float_format=_format_number, na_rep="", border=0,
                      escape=True)
    return body.replace(">\n  <thead>", f">\n  <caption>{html.escape(caption)}</caption>\n"
                                        "  <thead>", 1)


def write_html_table(df, path, caption, index=False):
    """Write a DataFrame as a small standalone HTML page with a caption."""
    return write_html(_html_document(caption, table_html(df, caption, index)), path)


def write_data_table(df, html_path, caption):
    """Write HTML and a CSV of the same table beside it (same stem)."""
    html_path = Path(html_path)
    write_html_table(df, html_path, caption)
    write_table(df, html_path.with_suffix(".csv"))
    return html_path, html_path.with_suffix(".csv")


def _require_columns(df, columns, what):
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s) {missing}; has {list(df.columns)}")


# ---------------------------------------------------------------- tables

def classifier_table(metrics):
    """Leaning classifier per backbone: macro F1 and accuracy; the chosen one first."""
    _require_columns(metrics, ["backbone", "val_macro_f1", "test_macro_f1"], "classifier metrics")
    table = metrics.copy()
    if "chosen" not in table.columns:
        table["chosen"] = False
    table["chosen"] = table["chosen"].astype(bool)
    table = table.sort_values(["chosen", "val_macro_f1"], ascending=[False, False])
    columns = {"backbone": "backbone", "chosen": "chosen",
               "val_macro_f1": "val macro F1", "test_macro_f1": "test macro F1",
               "val_accuracy": "val accuracy", "test_accuracy": "test accuracy",
               "n_train": "n train", "n_val": "n val", "n_test": "n test"}
    table = table[[c for c in columns if c in table.columns]].rename(columns=columns)
    table["chosen"] = table["chosen"].map({True: "yes", False: ""})
    return table.reset_index(drop=True)


def _with_interval(mean, lo, hi, scale=1.0, digits=1):
    if pd.isna(mean):
        return ""
    if pd.isna(lo) or pd.isna(hi):
        return f"{mean * scale:.{digits}f}"
    return f"{mean * scale:.{digits}f} [{lo * scale:.{digits}f}, {hi * scale:.{digits}f}]"


def _setup_order(summary):
    """Model setups in order of first appearance."""
    return list(dict.fromkeys(summary.loc[summary["kind"] == "model", "setup"]))


def _references(summary):
    """Reference rows in reading order: human, sampled base, then base-<decoding> rows."""
    refs = summary[summary["kind"] != "model"]
    key = refs["kind"].map({"human": 0, "base": 1}).fillna(2) * 2 + \
        (refs["setup"] != refs["kind"]).astype(int)
    return refs.assign(_key=key).sort_values("_key", kind="stable").drop(columns="_key")


def _cells(summary):
    """(setup, generation, rows) per model cell, setups by first appearance, generations ascending."""
    models = summary[summary["kind"] == "model"]
    for setup in _setup_order(summary):
        rows = models[models["setup"] == setup]
        for generation in sorted(rows["generation"].unique()):
            yield setup, generation, rows[rows["generation"] == generation]


def _interval_text(rows, mean_col, lo_col, hi_col, scale=1.0, digits=1):
    """'mean [lo, hi]' of a cell over its replicates (see figures.replicate_interval)."""
    if mean_col not in rows.columns:
        return ""
    lo_col = lo_col if lo_col in rows.columns else None
    hi_col = hi_col if hi_col in rows.columns else None
    mean, lo, hi, _, _ = replicate_interval(rows, mean_col, lo_col, hi_col)
    return _with_interval(mean, lo, hi, scale, digits)


def _summary_row(name, generation, rows):
    """One display row of the summary table from the corpora of one cell (or one reference)."""
    articles = rows["n_articles"].dropna() if "n_articles" in rows.columns else pd.Series([])
    row = {"setup": name, "generation": generation,
           "replicates": len(rows) if generation != "" else "",
           "articles": articles.iloc[0] if articles.nunique() == 1 else
           (articles.mean() if len(articles) else np.nan)}
    for leaning in LEANINGS:
        row[f"{leaning} % [95% CI]"] = _interval_text(
            rows, f"share_{leaning}", f"share_{leaning}_lo", f"share_{leaning}_hi", scale=100)
    row["oracle right % [95% CI]"] = _interval_text(
        rows, "oracle_share_right", "oracle_share_right_lo", "oracle_share_right_hi", scale=100)
    if "oracle_n" in rows.columns:
        n = rows["oracle_n"].dropna()
        row["oracle n"] = "" if n.empty else (int(n.iloc[0]) if n.nunique() == 1
                                              else f"{int(n.min())}-{int(n.max())}")
    row["oracle valid share"] = _interval_text(rows, "oracle_valid_mean", "oracle_valid_lo",
                                               "oracle_valid_hi", digits=3)
    row["TQI [95% CI]"] = _interval_text(rows, "tqi_mean", "tqi_lo", "tqi_hi", digits=3)
    row["perplexity [95% CI]"] = _interval_text(rows, "ppl_mean", "ppl_lo", "ppl_hi", digits=1)
    return row


def summary_table(summary):
    """Per reference corpus and per (setup, generation): leaning shares (%), oracle, TQI and
    perplexity with 95% intervals.

    A model cell with R >= 2 replicates shows the replicate mean with a t interval across
    replicates (`replicates` column = R); with R = 1 the corpus's own interval (Wilson for
    shares, t over articles). One row per cell keeps the table readable; the per-replicate
    values are in summary.csv.
    """
    _require_columns(summary, [f"share_{x}" for x in LEANINGS], "summary")
    summary = with_replicates(summary)
    rows = [_summary_row(reference_label(ref), "", summary.loc[[i]])
            for i, ref in _references(summary).iterrows()]
    rows += [_summary_row(setup, int(g), cell) for setup, g, cell in _cells(summary)]
    table = pd.DataFrame(rows)
    has_oracle = "oracle_share_right" in summary.columns and \
        summary["oracle_share_right"].notna().any()
    if not has_oracle:
        table = table.drop(columns=[c for c in table.columns if c.startswith("oracle")])
    return table


DIVERSITY_COLUMNS = ("unique_1", "unique_2", "unique_3", "distinct_1", "distinct_2",
                     "distinct_3", "self_bleu_diversity", "semantic_diversity",
                     "syntactic_diversity")


def _mean_pm(values):
    """Replicate mean of one diversity cell, '± half-width' of its 95% t interval when R >= 2."""
    mean, lo, hi = mean_with_ci(values)
    if pd.isna(mean):
        return ""
    if pd.isna(lo):
        return f"{mean:.3f}"
    return f"{mean:.3f} ± {(hi - lo) / 2:.3f}"


def diversity_table(summary, metrics=None):
    """Diversity metric x generation, one block per setup (as in Guo et al.'s table).

    Columns: setup, replicates, metric, human, base (sampled), base (same decoding as the
    setup, the like-for-like reference of generation 0), gen 0, gen 1, ... With one
    replicate per setup the cells are the values; with more they read "mean ± half-width
    of the 95% t interval across replicates". References repeat in every block so each
    block reads alone.
    """
    metrics = [m for m in (metrics or DIVERSITY_COLUMNS) if m in summary.columns]
    if not metrics:
        raise ValueError(f"summary has none of the diversity columns {list(DIVERSITY_COLUMNS)}")
    summary = with_replicates(summary)
    models = summary[summary["kind"] == "model"]
    generations = sorted(models["generation"].unique())
    replicated = models.groupby(["setup", "generation"]).size().max() > 1
    references = _references(summary)
    human = references[references["kind"] == "human"]
    base = references[(references["kind"] == "base") & (references["setup"] == "base")]
    rows = []
    for setup in _setup_order(summary):
        own = models[models["setup"] == setup]
        decoding = own["decoding"].dropna().iloc[0] if "decoding" in own.columns and \
            own["decoding"].notna().any() else None
        like = references[references["setup"] == f"base-{decoding}"]
        for metric in metrics:
            row = {"setup": setup, "replicates": own["replicate"].nunique(), "metric": metric,
                   "human": human[metric].iloc[0] if len(human) else np.nan,
                   "base (sampled)": base[metric].iloc[0] if len(base) else np.nan,
                   "base (same decoding)": like[metric].iloc[0] if len(like) else np.nan}
            for g in generations:
                values = own.loc[own["generation"] == g, metric]
                row[f"gen {int(g)}"] = _mean_pm(values) if replicated else \
                    (values.iloc[0] if len(values) else np.nan)
            rows.append(row)
    table = pd.DataFrame(rows)
    return table.drop(columns=[c for c in ("base (same decoding)",) if table[c].isna().all()])


def neuron_sets_table(sets):
    """Counts of significant units per relation and their overlaps.

    The tidy form of `neurons.neuron_sets` (source, quantity, value) is spread to one
    row per source and one column per quantity; any other frame is shown as given.
    """
    if not isinstance(sets, pd.DataFrame) or sets.empty:
        raise ValueError("neuron sets table is empty or not a DataFrame")
    table = sets.copy()
    if {"source", "quantity", "value"} <= set(table.columns):
        quantities = list(dict.fromkeys(table["quantity"]))
        sources = list(dict.fromkeys(table["source"]))
        table = (table.pivot(index="source", columns="quantity", values="value")
                 .loc[sources, quantities].reset_index())
        table.columns.name = None
    for column in table.columns:
        if pd.api.types.is_float_dtype(table[column]):
            whole = table[column].dropna()
            if len(whole) and (whole == whole.round()).all() and not column.startswith(
                    ("jaccard", "n_both_expected")):
                table[column] = table[column].astype("Int64")
            else:
                table[column] = table[column].round(3)
    return table.rename(columns=lambda c: str(c).replace("_", " "))


# ---------------------------------------------------------------- example continuations

def _pick_generations(available, wanted):
    """The wanted generations that exist, plus the last one when the run is shorter."""
    available = sorted(available)
    chosen = [g for g in wanted if g in available]
    if available and max(wanted) > available[-1] and available[-1] not in chosen:
        chosen.append(available[-1])
    return chosen or available[:1]


def _pick_article(human_ids, synthetic_by_setup_gen, cells):
    """The first human id present in every shown synthetic corpus (else in the most)."""
    id_sets = [{row["id"] for row in synthetic_by_setup_gen[cell]} for cell in cells]
    counts = [sum(i in ids for ids in id_sets) for i in human_ids]
    if not counts:
        raise ValueError("no human articles given")
    return human_ids[int(np.argmax(counts))]


def _score_line(scores, article_id, setup, generation):
    if scores is None or scores.empty:
        return {}
    match = scores[(scores["id"].astype(str) == str(article_id)) & (scores["setup"] == setup)]
    if generation is not None and "generation" in scores.columns:
        match = match[match["generation"] == generation]
    if match.empty:
        return {}
    r = match.iloc[0]
    return {k: r[k] for k in ("label", "tqi", "ppl", "oracle_label") if k in r and pd.notna(r[k])}


def _text_cell(text):
    return f"<td class='text'><div class='text'>{html.escape(text)}</div></td>"


def _scores_cells(s):
    return (f"<td>{html.escape(str(s.get('label', '')))}</td>"
            f"<td>{_format_number(s['tqi']) if 'tqi' in s else ''}</td>"
            f"<td>{_format_number(s['ppl']) if 'ppl' in s else ''}</td>")


CORPUS_NAME = re.compile(r"^(?P<setup>.+?)(?:/rep(?P<replicate>\d+))?/gen(?P<generation>\d+)$")


def replicate_corpora(corpora, paths, replicate=0) -> dict:
    """{(setup, generation): path} of one replicate's synthetic corpora.

    corpora are the workflow's model corpus names "<setup>/rep<r>/gen<g>" (a name
    without "/rep<r>" is replicate 0), in the order of `paths`; the example table
    follows one replicate so its rows are one loop, not a mix of runs.
    """
    if len(corpora) != len(paths):
        raise ValueError(f"{len(corpora)} corpus names for {len(paths)} paths")
    chosen = {}
    for name, path in zip(corpora, paths):
        match = CORPUS_NAME.match(str(name))
        if match is None:
            raise ValueError(f"corpus name {name!r} is not <setup>/rep<r>/gen<g>")
        if int(match["replicate"] or 0) == replicate:
            chosen[(match["setup"], int(match["generation"]))] = path
    if not chosen:
        raise ValueError(f"no corpus of replicate {replicate} among {list(corpora)[:5]}...")
    return chosen


def _scores_of_replicate(scores, replicate):
    """Score rows of one replicate plus the references (replicate < 0 or no such column)."""
    if scores is None or scores.empty or "replicate" not in scores.columns:
        return scores
    keep = scores["replicate"].isna() | (scores["replicate"] < 0) | \
        (scores["replicate"] == replicate)
    return scores[keep]


def example_continuations(human_articles, synthetic_by_setup_gen, scores=None,
                          article_id=None, generations=(0, 4, 10), replicate=0):
    """HTML: one human article beside its synthetic versions at a few generations.

    synthetic_by_setup_gen maps (setup, generation) to the rows of that synthetic
    corpus (id, title, text) of replicate `replicate`. scores holds per-article scores
    (id, setup, replicate, generation, label, tqi, ppl); only that replicate's rows are
    used; the human article's own scores are its rows with setup "human". Without
    article_id the first human id present in every shown corpus is used.
    """
    scores = _scores_of_replicate(scores, replicate)
    human = {str(a["id"]): a for a in human_articles}
    if not human:
        raise ValueError("no human articles given")
    if not synthetic_by_setup_gen:
        raise ValueError("no synthetic corpora given")
    by_setup = {}
    for setup, generation in synthetic_by_setup_gen:
        by_setup.setdefault(setup, []).append(generation)
    cells = [(setup, g) for setup, gens in by_setup.items()
             for g in _pick_generations(gens, list(generations))]
    if article_id is None:
        article_id = _pick_article(list(human), synthetic_by_setup_gen, cells)
    article_id = str(article_id)
    if article_id not in human:
        raise ValueError(f"article id {article_id!r} is not among the human articles")
    article = human[article_id]

    header = ("<tr><th>setup</th><th>generation</th><th>classifier label</th><th>TQI</th>"
              "<th>perplexity</th><th>text</th></tr>")
    rows = [f"<tr><td>human</td><td></td>{_scores_cells(_score_line(scores, article_id, 'human', None))}"
            f"{_text_cell(article['text'])}</tr>"]
    for setup, generation in cells:
        found = [r for r in synthetic_by_setup_gen[(setup, generation)]
                 if str(r["id"]) == article_id]
        text = found[0]["text"] if found else "(this article is missing from the corpus)"
        rows.append(f"<tr><td>{html.escape(str(setup))}</td><td>{generation}</td>"
                    f"{_scores_cells(_score_line(scores, article_id, setup, generation))}"
                    f"{_text_cell(text)}</tr>")
    title = (f"Article {html.escape(article_id)}: {html.escape(str(article.get('title', '')))}"
             f" (human label: {html.escape(str(article.get('label', '?')))})")
    body = (f"<h3>{title}</h3>\n<table>\n<caption>The human article and its synthetic "
            f"versions in replicate {replicate} at generations "
            f"{', '.join(map(str, generations))} (or the last that exist), with their "
            f"scores</caption>\n{header}\n" + "\n".join(rows) +
            "\n</table>")
    return _html_document(f"Example continuations of article {article_id}", body)

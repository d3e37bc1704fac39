"""Tables of the study as HTML (for the report) and CSV (for reuse).

Each `*_table` function turns a workflow output into a display DataFrame;
`write_html_table` / `write_data_table` write it. `example_continuations` renders one
human article beside what each setup's models made of it.
"""

import html
from pathlib import Path

import numpy as np
import pandas as pd

from selfconsuming import LEANINGS
from selfconsuming.io import atomic_path, write_table

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


def _ordered_rows(summary):
    """Human, base, then models by setup (first appearance) and generation."""
    _require_columns(summary, ["setup", "generation", "kind"], "summary")
    order = {"human": 0, "base": 1, "model": 2}
    setups = {s: i for i, s in enumerate(dict.fromkeys(summary["setup"]))}
    key = summary["kind"].map(order).fillna(3) * 1e6 + summary["setup"].map(setups) * 1e3
    return summary.assign(_key=key + summary["generation"]).sort_values("_key").drop(columns="_key")


def _row_name(row):
    return {"human": "human corpus", "base": "base model"}.get(row["kind"], row["setup"])


def summary_table(summary):
    """Per (setup, generation): leaning shares (%), TQI and perplexity with 95% CIs."""
    _require_columns(summary, [f"share_{x}" for x in LEANINGS], "summary")
    has_oracle = "oracle_share_right" in summary.columns and \
        summary["oracle_share_right"].notna().any()
    rows = []
    for _, r in _ordered_rows(summary).iterrows():
        row = {"setup": _row_name(r),
               "generation": "" if r["kind"] != "model" else int(r["generation"]),
               "articles": r.get("n_articles", np.nan)}
        for leaning in LEANINGS:
            row[f"{leaning} % [95% CI]"] = _with_interval(
                r[f"share_{leaning}"], r.get(f"share_{leaning}_lo"),
                r.get(f"share_{leaning}_hi"), scale=100)
        if has_oracle:
            row["oracle right % [95% CI]"] = _with_interval(
                r["oracle_share_right"], r.get("oracle_share_right_lo"),
                r.get("oracle_share_right_hi"), scale=100)
            row["oracle valid share"] = _with_interval(
                r.get("oracle_valid_mean"), r.get("oracle_valid_lo"), r.get("oracle_valid_hi"),
                digits=3)
        row["TQI [95% CI]"] = _with_interval(r.get("tqi_mean"), r.get("tqi_lo"),
                                             r.get("tqi_hi"), digits=3)
        row["perplexity [95% CI]"] = _with_interval(r.get("ppl_mean"), r.get("ppl_lo"),
                                                    r.get("ppl_hi"), digits=1)
        rows.append(row)
    return pd.DataFrame(rows)


DIVERSITY_COLUMNS = ("unique_1", "unique_2", "unique_3", "distinct_1", "distinct_2",
                     "distinct_3", "self_bleu_diversity", "semantic_diversity",
                     "syntactic_diversity")


def diversity_table(summary, metrics=None):
    """Diversity metric x generation, one block per setup (as in Guo et al.'s table).

    Columns: setup, metric, human, base, gen 0, gen 1, ...; the human and base values
    repeat in every block so each block reads alone.
    """
    metrics = [m for m in (metrics or DIVERSITY_COLUMNS) if m in summary.columns]
    if not metrics:
        raise ValueError(f"summary has none of the diversity columns {list(DIVERSITY_COLUMNS)}")
    _require_columns(summary, ["setup", "generation", "kind"], "summary")
    references = {kind: summary[summary["kind"] == kind] for kind in ("human", "base")}
    models = summary[summary["kind"] == "model"]
    generations = sorted(models["generation"].unique())
    rows = []
    for setup in dict.fromkeys(models["setup"]):
        by_generation = models[models["setup"] == setup].set_index("generation")
        for metric in metrics:
            row = {"setup": setup, "metric": metric}
            for kind, ref in references.items():
                row[kind] = ref[metric].iloc[0] if len(ref) else np.nan
            for g in generations:
                row[f"gen {int(g)}"] = by_generation[metric].get(g, np.nan)
            rows.append(row)
    return pd.DataFrame(rows)


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


def example_continuations(human_articles, synthetic_by_setup_gen, scores=None,
                          article_id=None, generations=(0, 4, 10)):
    """HTML: one human article beside its synthetic versions at a few generations.

    synthetic_by_setup_gen maps (setup, generation) to the rows of that synthetic
    corpus (id, title, text). scores holds per-article scores (id, setup, generation,
    label, tqi, ppl); the human article's own scores are its rows with setup "human".
    Without article_id the first human id present in every shown corpus is used.
    """
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
            f"versions at generations {', '.join(map(str, generations))} (or the last "
            f"that exist), with their scores</caption>\n{header}\n" + "\n".join(rows) +
            "\n</table>")
    return _html_document(f"Example continuations of article {article_id}", body)

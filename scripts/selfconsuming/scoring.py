"""Per-article scores of one corpus: leaning (classifier and, on the world, the oracle) and quality."""

import logging

import numpy as np
import pandas as pd

from . import LEANINGS

log = logging.getLogger(__name__)


def bias_table(articles: list[dict], classifier) -> pd.DataFrame:
    from .classifier import score_leaning

    return score_leaning(articles, classifier).reset_index(drop=True)


def oracle_table(articles: list[dict]) -> pd.DataFrame:
    """Exact bias and validity from the world's oracle.

    A synthetic article is a join of 64-token continuations, each starting and
    ending mid-sentence; each continuation is scored with its edge fragments
    excluded, then counts and likelihoods are pooled over the article.
    """
    from .world import Oracle

    oracle = Oracle()
    rows = []
    for a in articles:
        pieces = a.get("continuations")
        scored = oracle.score_texts(pieces, partial_edges=True) if pieces else oracle.score_texts([a["text"]])
        n_sent = scored["oracle_n_sentences"].to_numpy(float)
        n_valid = np.round(scored["oracle_valid_share"].to_numpy(float) * n_sent)
        logp = np.log(np.clip(scored[[f"oracle_p_{l}" for l in LEANINGS]].to_numpy(float), 1e-300, None))
        logp = logp[n_valid > 0].sum(axis=0) if (n_valid > 0).any() else np.zeros(len(LEANINGS))
        post = np.exp(logp - logp.max())
        post /= post.sum()
        total = n_sent.sum()
        rows.append({
            "oracle_n_sentences": int(total),
            "oracle_valid_share": float(n_valid.sum() / total) if total else np.nan,
            **{f"oracle_p_{l}": float(p) for l, p in zip(LEANINGS, post)},
            "oracle_label": LEANINGS[int(np.argmax(post))] if n_valid.sum() > 0 else None,
        })
    return pd.DataFrame(rows)


def quality_table(articles: list[dict], detector, lm, tokenizer, *, scoring: str, ppl_stride, ppl_batch_size: int,
                  device: str, with_oracle: bool) -> pd.DataFrame:
    """TQI and perplexity per article (plus the oracle's scores on the world)."""
    from .quality import article_perplexities, text_quality_index

    texts = [a["text"] for a in articles]
    tqi, _ = text_quality_index(texts, detector, scoring=scoring)
    ppl = article_perplexities(texts, lm, tokenizer, stride=ppl_stride, batch_size=ppl_batch_size, device=device)
    table = pd.DataFrame({"id": [a["id"] for a in articles], "tqi": tqi, "ppl": ppl})
    if with_oracle:
        table = pd.concat([table, oracle_table(articles)], axis=1)
    return table

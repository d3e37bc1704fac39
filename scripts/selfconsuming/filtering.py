"""Scores that filter a synthetic corpus before it trains the next generation (Guo et al.'s regime).

Each score is the instrument the workflow already trusts for that quantity: the text quality
index of the trained detector, perplexity under the scoring reference model
(`quality.perplexity_model`, the base model by default: a fixed judge, unlike the generating
model, which finds its own mode likeliest), and on the world the oracle's valid-sentence share.
"""

import pandas as pd

from .training_data import FILTER_HIGHER_IS_BETTER, filter_keep


def filter_score_values(articles: list[dict], by: str, *, detector=None, scoring: str = "expected",
                        tqi_sentences: str, lm=None, tokenizer=None, ppl_stride=None,
                        ppl_batch_size: int = 8, device: str = "cpu"):
    """One score per article for the filter `by` (tqi, perplexity or oracle_valid)."""
    texts = [a["text"] for a in articles]
    if by == "tqi":
        from .quality import articles_tqi

        return articles_tqi(articles, detector, scoring, tqi_sentences)
    if by == "perplexity":
        from .quality import article_perplexities

        return article_perplexities(texts, lm, tokenizer, stride=ppl_stride, batch_size=ppl_batch_size, device=device)
    if by == "oracle_valid":
        from .scoring import oracle_table

        return oracle_table(articles)["oracle_valid_share"].to_numpy(float)
    raise ValueError(f"unknown filter score {by!r}: expected one of {sorted(FILTER_HIGHER_IS_BETTER)}")


def filter_table(articles: list[dict], scores, by: str, drop: float, seed: int) -> pd.DataFrame:
    """Per article: id, the score, and whether the filter keeps it (what the next generation trains on)."""
    keep = filter_keep(scores, drop, FILTER_HIGHER_IS_BETTER[by], seed)
    return pd.DataFrame({"id": [a["id"] for a in articles], "by": by, "score": scores, "kept": keep})

"""Per-article scores of one corpus: leaning (classifier and, on the world, the oracle) and quality."""

import logging

import numpy as np
import pandas as pd

from . import LEANINGS

log = logging.getLogger(__name__)


SYNTHETIC_TEXT_RULES = ("distinct_whole", "full")  # classifier.synthetic_text, see leaning_inputs


def leaning_inputs(articles: list[dict], synthetic_text: str) -> list[dict]:
    """What the leaning classifier reads of each article.

    A synthetic article (one with `continuations`) is read without its title, which is the
    human prompt article's, not the model's. `distinct_whole` reads it as the oracle does:
    each continuation's whole sentences (the halves cut at the 64-token seams dropped),
    each distinct sentence once (a repeat adds no evidence of a leaning), or the generated
    text as it is where no sentence is whole (its words are all the evidence there is);
    `full` reads the generated text as it is. A human article is read whole, title included.
    """
    from .quality import distinct_sentences, whole_sentences

    if synthetic_text not in SYNTHETIC_TEXT_RULES:
        raise ValueError(f"classifier.synthetic_text must be one of {SYNTHETIC_TEXT_RULES}, got {synthetic_text!r}")
    inputs = []
    for a in articles:
        pieces = a.get("continuations")
        if not pieces:
            inputs.append(a)
        elif synthetic_text == "full":
            inputs.append({"id": a["id"], "text": a["text"]})
        else:
            sentences = distinct_sentences([s for piece in pieces for s in whole_sentences(piece)])
            inputs.append({"id": a["id"], "text": " ".join(sentences) or a["text"]})
    return inputs


def bias_table(articles: list[dict], classifier, synthetic_text: str) -> pd.DataFrame:
    from .classifier import score_leaning

    return score_leaning(leaning_inputs(articles, synthetic_text), classifier).reset_index(drop=True)


def _kept_sentences(oracle, piece: str, partial_edges: bool) -> list[tuple[str, dict | None]]:
    """(sentence, oracle score) of one text; with partial_edges the halves of sentences cut at a
    64-token continuation's edges are dropped (`Oracle.cut_edges`, as `Oracle.score_text` does)."""
    from .text import split_sentences

    sentences = split_sentences(piece or "")
    scored = [(s, oracle.score_sentence(s)) for s in sentences]
    if partial_edges and scored:
        keep = oracle.cut_edges(sentences, [score for _, score in scored])
        scored = [x for x, k in zip(scored, keep) if k]
    return scored


def article_oracle_scores(oracle, pieces: list[str], partial_edges: bool) -> dict:
    """The oracle's reading of one article, each distinct sentence counted once.

    The world writes an article as a sequence of distinct draws (a sentence repeats within
    an article about 1% of the time); the loop's degenerate text repeats one valid sentence
    dozens of times. So a sentence is *valid* if it belongs to the world and is not a repeat
    of an earlier sentence of the article, and the leaning posterior multiplies the
    likelihoods of the distinct valid sentences (a repeat carries no new evidence).
    `oracle_parsed_share` keeps the plain share of sentences that parse, repeats included.
    """
    seen, n, parsed, evidence = set(), 0, 0, []
    for piece in pieces:
        for sentence, score in _kept_sentences(oracle, piece, partial_edges):
            n += 1
            key = " ".join(sentence.lower().split())
            if score is not None:
                parsed += 1
                if key not in seen:
                    evidence.append([score[l] for l in LEANINGS])
            seen.add(key)
    loglik = np.sum(evidence, axis=0) if evidence else np.zeros(len(LEANINGS))
    if np.isneginf(loglik).all():  # a mix no single leaning can produce
        loglik = np.zeros(len(LEANINGS))
    post = np.exp(loglik - loglik.max())
    post /= post.sum()
    return {
        "oracle_n_sentences": n,
        "oracle_valid_share": len(evidence) / n if n else np.nan,
        "oracle_parsed_share": parsed / n if n else np.nan,
        **{f"oracle_p_{l}": float(p) for l, p in zip(LEANINGS, post)},
        "oracle_label": LEANINGS[int(np.argmax(post))] if evidence else None,
    }


def oracle_table(articles: list[dict]) -> pd.DataFrame:
    """Exact bias and validity from the world's oracle, one row per article.

    A synthetic article is a join of 64-token continuations, each starting and ending
    mid-sentence: each continuation's edge fragments are excluded, then sentences are
    pooled over the article (see `article_oracle_scores`).
    """
    from .world import Oracle

    oracle = Oracle()
    rows = []
    for a in articles:
        pieces = a.get("continuations")
        rows.append(article_oracle_scores(oracle, pieces if pieces else [a["text"]], partial_edges=bool(pieces)))
    return pd.DataFrame(rows)


def quality_table(articles: list[dict], detector, lm, tokenizer, *, scoring: str, tqi_sentences: str, ppl_stride,
                  ppl_batch_size: int, device: str, with_oracle: bool) -> pd.DataFrame:
    """TQI and perplexity per article (plus the oracle's scores on the world)."""
    from .quality import article_perplexities, articles_tqi

    texts = [a["text"] for a in articles]
    tqi = articles_tqi(articles, detector, scoring, tqi_sentences)
    ppl = article_perplexities(texts, lm, tokenizer, stride=ppl_stride, batch_size=ppl_batch_size, device=device)
    table = pd.DataFrame({"id": [a["id"] for a in articles], "tqi": tqi, "ppl": ppl})
    if with_oracle:
        table = pd.concat([table, oracle_table(articles)], axis=1)
    return table

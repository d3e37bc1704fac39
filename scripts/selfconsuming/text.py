"""Plain-text helpers shared by the oracle, the quality scores and the diversity metrics."""

import re

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'”’)]*\s+")


def split_sentences(text: str) -> list[str]:
    """Split text into sentences at ., ! or ? followed by whitespace.

    A trailing fragment without end punctuation is kept as its own sentence, so
    truncated model output is scored rather than silently dropped.
    """
    text = " ".join(text.split())
    if not text:
        return []
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def leading_sentences(text: str, max_words: int) -> str:
    """The article's first sentences within `max_words` words (at least its first sentence, cut to that).

    Keeps whole sentences so a shortened article still reads as written; whitespace is normalised.
    """
    if max_words < 1:
        raise ValueError(f"max_words must be >= 1, got {max_words}")
    kept, used = [], 0
    for sentence in split_sentences(text):
        words = sentence.split()
        if used + len(words) > max_words:
            if not kept:
                kept.append(" ".join(words[:max_words]))
            break
        kept.append(sentence)
        used += len(words)
    return " ".join(kept)


def article_text(article) -> str:
    """An article as models read it: title, a blank line, the body (a plain string passes through)."""
    if isinstance(article, str):
        return article
    title = (article.get("title") or "").strip()
    body = (article.get("text") or "").strip()
    return f"{title}\n\n{body}" if title else body

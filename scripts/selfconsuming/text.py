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


def article_text(article) -> str:
    """An article as models read it: title, a blank line, the body (a plain string passes through)."""
    if isinstance(article, str):
        return article
    title = (article.get("title") or "").strip()
    body = (article.get("text") or "").strip()
    return f"{title}\n\n{body}" if title else body

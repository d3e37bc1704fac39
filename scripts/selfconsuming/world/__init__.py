"""A ground-truth news world: a seeded article generator with a known leaning and topic,
and an exact oracle for the leaning and validity of any text."""

from selfconsuming.world.generator import (
    check_leaning_mix,
    check_topics,
    counts_from_mix,
    generate_articles,
    generate_corpus,
    sample_article,
)
from selfconsuming.world.grammar import load_grammar
from selfconsuming.world.oracle import Oracle

TOPICS: tuple[str, ...] = load_grammar().topics

__all__ = [
    "TOPICS",
    "Oracle",
    "check_leaning_mix",
    "check_topics",
    "counts_from_mix",
    "generate_articles",
    "generate_corpus",
    "load_grammar",
    "sample_article",
]

"""Exact bias and quality of any text, measured against the world that generated it.

For a sentence, the oracle sums the generator's probability over every derivation
(frame plus fillers) that yields exactly that string, with a forward pass over the
frame's literal pieces and slots. Topics are marginalised with a uniform prior.
Leads and body sentences are told apart by their first word, so a sentence gets the
probability of the slot it belongs to. A text's leaning posterior multiplies its valid
sentences' likelihoods (uniform prior): exact for a generated article, because every
topic-specific sentence names its topic and fillers that do not depend on the leaning
cancel in the ratio.
"""

import math

import numpy as np
import pandas as pd

from selfconsuming import LEANINGS
from selfconsuming.text import split_sentences
from selfconsuming.world.grammar import Grammar, capitalise, first_words, load_grammar

_END = (".", "!", "?")


class _SlotTable:
    """Phrase -> probability (a float, or a (T,3)/(1,3) array) for one (bank, capitalise)."""

    def __init__(self, bank, cap: bool):
        table: dict = {}
        for phrase, probs in zip(bank.phrases, bank.probs):
            key = capitalise(phrase) if cap else phrase
            if np.allclose(probs, probs[0, 0]):
                value = float(probs[0, 0])
            elif np.allclose(probs, probs[:1]):
                value = probs[:1].copy()
            else:
                value = probs.copy()
            table[key] = table[key] + value if key in table else value
        self.table = table
        self.lengths = sorted({len(k) for k in table})
        self.max_length = self.lengths[-1]


class Oracle:
    """Build once (a fraction of a second), then score many texts."""

    def __init__(self, grammar: Grammar | None = None, cache_size: int = 200_000):
        self.grammar = grammar or load_grammar()
        self._slot_tables: dict = {}
        self._compiled = []  # (elements with slot tables, probs)
        self._index: dict[str, list[int]] = {}
        for tpl in self.grammar.by_class["lead"] + self.grammar.by_class["body"]:
            elements = []
            for el in tpl.elements:
                if isinstance(el, str):
                    elements.append(el)
                else:
                    key = el
                    if key not in self._slot_tables:
                        self._slot_tables[key] = _SlotTable(self.grammar.banks[el[0]], el[1])
                    elements.append(self._slot_tables[key])
            # Literal pieces, longest first: a cheap test that rejects most candidate frames.
            literals = sorted((e for e in elements if isinstance(e, str)), key=len, reverse=True)
            self._compiled.append((elements, tpl.probs, literals))
            for word in first_words(tpl, self.grammar.banks):
                self._index.setdefault(word, []).append(len(self._compiled) - 1)
        self._cache: dict = {}
        self._cache_size = cache_size
        self._n_topics = len(self.grammar.topics)
        # the longest sentence any frame can spell: its literals and its slots' longest fillers
        self.max_sentence_chars = max(sum(len(e) if isinstance(e, str) else e.max_length for e in elements)
                                      for elements, _, _ in self._compiled)

    # -- sentences ---------------------------------------------------------------

    @staticmethod
    def _forward(elements, sentence: str):
        """Total probability of all ways the frame's pieces spell the sentence (None if none)."""
        states = {0: 1.0}
        for i, el in enumerate(elements):
            new: dict = {}
            if isinstance(el, str):
                for pos, mass in states.items():
                    if sentence.startswith(el, pos):
                        new[pos + len(el)] = mass
            else:
                table = el.table
                follow = elements[i + 1] if i + 1 < len(elements) else None
                for pos, mass in states.items():
                    for end in Oracle._slot_ends(el, follow, sentence, pos):
                        value = table.get(sentence[pos:end])
                        if value is not None:
                            m = mass * value
                            new[end] = new[end] + m if end in new else m
            if not new:
                return None
            states = new
        return states.get(len(sentence))

    @staticmethod
    def _slot_ends(slot, follow, sentence: str, pos: int):
        """Where a filler starting at pos may end: just before each later occurrence of the
        literal that follows the slot, else after each phrase length of the bank."""
        if isinstance(follow, str):
            ends = []
            end = sentence.find(follow, pos + 1)
            while end != -1 and end - pos <= slot.max_length:
                ends.append(end)
                end = sentence.find(follow, end + 1)
            return ends
        if follow is None:
            return (len(sentence),)
        return [pos + n for n in slot.lengths]

    def sentence_probs(self, sentence: str) -> np.ndarray | None:
        """P(sentence | topic, leaning) as a (topics, 3) array, or None if no frame derives it."""
        sentence = " ".join(sentence.split())
        if sentence in self._cache:
            return self._cache[sentence]
        total = None
        for i in self._index.get(sentence.split(" ", 1)[0], ()):
            elements, probs, literals = self._compiled[i]
            if not all(lit in sentence for lit in literals):
                continue
            mass = self._forward(elements, sentence)
            if mass is not None:
                p = probs * mass
                total = p if total is None else total + p
        if total is not None and not total.any():
            total = None
        if len(self._cache) >= self._cache_size:
            self._cache.clear()
        self._cache[sentence] = total
        return total

    def score_sentence_by_topic(self, sentence: str) -> dict[str, dict[str, float]] | None:
        """{topic: {leaning: log P(sentence | topic, leaning)}}, or None if not a sentence of the world."""
        probs = self.sentence_probs(sentence)
        if probs is None:
            return None
        with np.errstate(divide="ignore"):
            logs = np.log(probs)
        return {t: dict(zip(LEANINGS, map(float, logs[i]))) for i, t in enumerate(self.grammar.topics)}

    def score_sentence(self, sentence: str) -> dict[str, float] | None:
        """{leaning: log P(sentence | leaning)} with topics marginalised uniformly, or None."""
        probs = self.sentence_probs(sentence)
        if probs is None:
            return None
        marginal = probs.sum(axis=0) / self._n_topics
        return {l: (math.log(p) if p > 0 else -math.inf) for l, p in zip(LEANINGS, marginal)}

    # -- texts -------------------------------------------------------------------

    def cut_edges(self, pieces: list[str], scores: list) -> list[bool]:
        """Which sentences of a continuation to keep: an unparsable first piece and an unparsable
        last piece without end punctuation are dropped as the halves of a sentence cut at the
        64-token seams, unless longer than any sentence of the world (then no world sentence was
        cut there: the model wrote text of its own, an unbroken loop say, and it counts invalid)."""
        def could_be_cut(piece: str) -> bool:
            return len(" ".join(piece.split())) <= self.max_sentence_chars

        keep = [True] * len(pieces)
        if pieces and scores[0] is None and could_be_cut(pieces[0]):
            keep[0] = False
        if pieces and scores[-1] is None and not pieces[-1].endswith(_END) and could_be_cut(pieces[-1]):
            keep[-1] = False
        return keep

    def score_text(self, text: str, partial_edges: bool = False) -> dict:
        """Leaning posterior and share of parsable sentences for one text.

        partial_edges=True drops the halves of sentences cut at a continuation's edges
        instead of counting them invalid (`cut_edges`), since a continuation of a 64-token
        block starts and ends mid-sentence.
        """
        pieces = split_sentences(text or "")
        scores = [self.score_sentence(s) for s in pieces]
        if partial_edges and pieces:
            scores = [s for s, k in zip(scores, self.cut_edges(pieces, scores)) if k]
        valid = [s for s in scores if s is not None]
        loglik = np.array([sum(s[l] for s in valid) for l in LEANINGS]) if valid else np.zeros(3)
        if np.isneginf(loglik).all():  # a mix no single leaning can produce
            loglik = np.zeros(3)
        post = np.exp(loglik - loglik.max())
        post /= post.sum()
        n = len(scores)
        return {
            "n_sentences": n,
            "n_valid": len(valid),
            "valid_share": len(valid) / n if n else 0.0,
            "p_left": float(post[0]),
            "p_center": float(post[1]),
            "p_right": float(post[2]),
            "label": LEANINGS[int(post.argmax())] if valid else None,
        }

    def score_texts(self, texts, partial_edges: bool = False) -> pd.DataFrame:
        """One row per text: oracle_n_sentences, oracle_valid_share, oracle_p_*, oracle_label."""
        rows = [self.score_text(t, partial_edges) for t in texts]
        cols = ["n_sentences", "valid_share", "p_left", "p_center", "p_right", "label"]
        return pd.DataFrame({f"oracle_{c}": [r[c] for r in rows] for c in cols})

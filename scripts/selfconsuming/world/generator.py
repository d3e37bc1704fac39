"""Sample news articles with a known leaning and topic from the world's grammar.

An article is a title, one lead sentence and i.i.d. body sentences. Each sentence is
drawn by choosing a frame from P(frame | topic, leaning) and filling its slots from
P(phrase | topic, leaning); the generator keeps the log-probability of what it drew,
which is what the oracle must recover.
"""

import bisect
import math
import random
from dataclasses import dataclass
from itertools import accumulate

from selfconsuming import LEANINGS
from selfconsuming.world.grammar import Grammar, capitalise, load_grammar


@dataclass
class Sentence:
    text: str
    logprob: float  # log P(sentence's derivation | topic, leaning), sticky fillers counted at their marginal
    template_id: int


@dataclass
class Article:
    leaning: str
    topic: str
    title: str
    sentences: list[Sentence]

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.sentences)


class _Sampler:
    """Cumulative-weight tables per (choice, topic, leaning), built lazily."""

    def __init__(self, grammar: Grammar):
        self.g = grammar
        self._tables: dict = {}

    def _table(self, key, options, probs):
        cached = self._tables.get(key)
        if cached is None:
            keep = [(o, p) for o, p in zip(options, probs) if p > 0]
            cached = ([o for o, _ in keep], list(accumulate(p for _, p in keep)), [p for _, p in keep])
            self._tables[key] = cached
        return cached

    def choose(self, rng: random.Random, key, options, probs) -> tuple[object, float]:
        opts, cum, ps = self._table(key, options, probs)
        i = bisect.bisect_right(cum, rng.random() * cum[-1])
        i = min(i, len(opts) - 1)
        return opts[i], math.log(ps[i])

    def phrase(self, rng, bank_name, ti, li):
        bank = self.g.banks[bank_name]
        return self.choose(rng, ("bank", bank_name, ti, li), bank.phrases, bank.probs[:, ti, li])

    def template(self, rng, klass, ti, li):
        tpls = self.g.by_class[klass]
        return self.choose(rng, ("tpl", klass, ti, li), tpls, [t.probs[ti, li] for t in tpls])


def _realise(sampler: _Sampler, rng, tpl, ti, li, sticky: dict) -> tuple[str, float]:
    parts, logprob = [], 0.0
    for el in tpl.elements:
        if isinstance(el, str):
            parts.append(el)
            continue
        name, cap = el
        bank = sampler.g.banks[name]
        if bank.sticky:
            phrase = sticky[name]
            lp = math.log(bank.probs[bank.phrases.index(phrase), ti, li])
        else:
            phrase, lp = sampler.phrase(rng, name, ti, li)
        parts.append(capitalise(phrase) if cap else phrase)
        logprob += lp
    return "".join(parts), logprob


def sample_article(rng: random.Random, leaning: str, topic: str, sampler: _Sampler | None = None) -> Article:
    """One article; `rng` is the only source of randomness."""
    sampler = sampler or _Sampler(load_grammar())
    g = sampler.g
    ti, li = g.topic_index(topic), LEANINGS.index(leaning)
    sticky = {name: sampler.phrase(rng, name, ti, li)[0] for name, b in g.banks.items() if b.sticky}
    lo, hi = g.article_sentences
    n_sentences = rng.randint(lo, hi)

    def draw(klass):
        tpl, lp_tpl = sampler.template(rng, klass, ti, li)
        text, lp = _realise(sampler, rng, tpl, ti, li, sticky)
        return Sentence(text, lp_tpl + lp, tpl.id)

    title = draw("title").text
    sentences = [draw("lead")] + [draw("body") for _ in range(n_sentences - 1)]
    return Article(leaning, topic, title, sentences)


def check_topics(names) -> list[str]:
    """Return the names as a list; raise naming any topic the world does not have."""
    topics = load_grammar().topics
    names = list(names)
    unknown = [n for n in names if n not in topics]
    if unknown:
        raise ValueError(f"unknown topics {unknown}; the world has {list(topics)}")
    if not names:
        raise ValueError("topics must not be empty")
    return names


def check_leaning_mix(mix: dict) -> dict[str, float]:
    """Validate a {leaning: share} mix: known leanings, non-negative shares summing to 1."""
    if not isinstance(mix, dict) or not mix:
        raise ValueError(f"leaning mix must be a non-empty dict, got {mix!r}")
    unknown = [k for k in mix if k not in LEANINGS]
    if unknown:
        raise ValueError(f"unknown leanings {unknown} in mix; expected keys from {LEANINGS}")
    negative = {k: v for k, v in mix.items() if v < 0}
    if negative:
        raise ValueError(f"negative shares in leaning mix: {negative}")
    total = sum(mix.values())
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"leaning mix shares sum to {total}, not 1: {mix}")
    return {k: float(mix.get(k, 0.0)) for k in LEANINGS}


def counts_from_mix(n: int, mix: dict) -> dict[str, int]:
    """Split n articles by a leaning mix with the largest-remainder method (sums to n)."""
    if int(n) != n or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    mix = check_leaning_mix(mix)
    exact = {k: n * mix[k] for k in LEANINGS}
    counts = {k: int(math.floor(v)) for k, v in exact.items()}
    left_over = int(n) - sum(counts.values())
    # Ties break in LEANINGS order so the split is deterministic.
    by_remainder = sorted(LEANINGS, key=lambda k: (-(exact[k] - counts[k]), LEANINGS.index(k)))
    for k in by_remainder[:left_over]:
        counts[k] += 1
    return counts


def generate_articles(counts: dict, seed: int, topics: list[str] | None = None,
                      id_prefix: str = "world") -> list[dict]:
    """Exactly counts[leaning] articles per leaning, topics balanced within each leaning,
    shuffled; records {id, title, text, label, topic}. Same arguments, same output."""
    unknown = [k for k in counts if k not in LEANINGS]
    if unknown:
        raise ValueError(f"unknown leanings {unknown} in counts; expected keys from {LEANINGS}")
    bad = {k: v for k, v in counts.items() if int(v) != v or v < 0}
    if bad:
        raise ValueError(f"counts must be non-negative integers: {bad}")
    grammar = load_grammar()
    topics = check_topics(topics if topics is not None else grammar.topics)
    rng = random.Random(seed)
    sampler = _Sampler(grammar)
    plan = []
    for leaning in LEANINGS:
        n = int(counts.get(leaning, 0))
        order = topics[:]
        rng.shuffle(order)
        plan += [(leaning, order[i % len(order)]) for i in range(n)]
    rng.shuffle(plan)
    rows = []
    for i, (leaning, topic) in enumerate(plan):
        article = sample_article(rng, leaning, topic, sampler)
        rows.append({"id": f"{id_prefix}-{i:06d}", "title": article.title, "text": article.text,
                     "label": leaning, "topic": topic})
    return rows


def generate_corpus(n: int, mix: dict, seed: int, topics: list[str] | None = None,
                    id_prefix: str = "world") -> list[dict]:
    """n articles with a leaning mix (e.g. right-heavy pretraining, balanced study corpus)."""
    return generate_articles(counts_from_mix(n, mix), seed, topics, id_prefix)

"""Generation quality: the text quality index (TQI) and perplexity under a fixed LM.

TQI follows Wang et al. ("Bias Amplification"): every sentence of an article is
classified and given the value of its class, and the article's TQI is the mean over
its sentences. The study's four classes are clean / mild gibberish / word salad /
noise, worth 3 / 2 / 1 / 0. The offline detector adds the two defects a
self-consuming loop produces that a sentence alone cannot show:

- ``repeated`` (1): the sentence repeats an earlier sentence of the same article, or
  a phrase loops inside it. It reads fluently but adds nothing, like word salad it
  keeps real words and loses the information, so it gets word salad's value.
- ``fragment`` (1): pieces cut mid-sentence and glued, as at the 64-token block
  edges of a synthetic article. Real phrases, broken sentence: again word salad's 1
  (mild gibberish, 2, is a sentence with a slip, not two half sentences).

The classifier is either a transformers sequence-classification model (the study
used the hub model madhurjindal/autonlp-Gibberish-Detector-492513457, 4 classes) or
an offline scikit-learn detector that the workflow trains on corrupted world (or
human) articles and that reads each sentence with its article context.
"""

import json
import math
import re
import time
import zlib
from collections import Counter, deque
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from selfconsuming.io import atomic_path
from selfconsuming.text import split_sentences

CLASSES = ("clean", "mild", "word_salad", "noise", "repeated", "fragment")
STUDY_CLASSES = CLASSES[:4]  # the hub detector's classes; a 4-column detector scores these
CLASS_VALUES = np.array([3.0, 2.0, 1.0, 0.0, 1.0, 1.0])
SCORINGS = ("expected", "study")
TQI_SENTENCE_RULES = ("whole", "all")  # quality.tqi_sentences, see tqi_sentences
_OPENS_SENTENCE = re.compile(r"^[\"'“‘(]?[A-Z]")
_ENDS_SENTENCE = re.compile(r"[.!?][\"'”’)]*$")

_DETECTOR_JSON = "detector.json"
_DETECTOR_MODEL = "model.joblib"

# Label names seen in gibberish-detector configs, normalised (lowercase, "_" for
# anything not alphanumeric), mapped onto CLASSES.
_LABEL_ALIASES = {
    "clean": "clean",
    "mild": "mild",
    "mild_gibberish": "mild",
    "word_salad": "word_salad",
    "wordsalad": "word_salad",
    "noise": "noise",
    "repeated": "repeated",
    "repetition": "repeated",
    "fragment": "fragment",
}


@runtime_checkable
class GibberishDetector(Protocol):
    """Anything that gives, per sentence, probabilities over CLASSES (or STUDY_CLASSES), in that order.

    A detector that also has ``predict_proba_articles(per_article)`` (sentences grouped by
    article, flat rows back) gets each sentence with its article context from
    text_quality_index; otherwise sentences are scored alone.
    """

    def predict_proba(self, sentences: list[str]) -> np.ndarray:  # (n, 6) or (n, 4)
        ...


# ---------------------------------------------------------------------------
# Corruptions: the training data of the offline detector
# ---------------------------------------------------------------------------

def _split_end_punctuation(sentence: str) -> tuple[list[str], str]:
    """Words of the sentence and its final punctuation, so corruptions keep the end in place."""
    stripped = sentence.rstrip()
    end = ""
    while stripped and stripped[-1] in ".!?\"'”’)":
        end = stripped[-1] + end
        stripped = stripped[:-1]
    return stripped.split(), end


def _recapitalise(words: list[str], original_first: str) -> list[str]:
    """Move sentence-initial capitalisation to the new first word.

    Without this a shuffled sentence would give itself away by a capital letter
    mid-sentence, and the detector would learn that instead of word order.
    """
    words = list(words)
    if original_first[:1].isupper() and not original_first.isupper():
        for i, w in enumerate(words):
            if w == original_first:
                words[i] = w[:1].lower() + w[1:]
                break
    if words:
        words[0] = words[0][:1].upper() + words[0][1:]
    return words


def _mild(words: list[str], rng: np.random.Generator) -> list[str]:
    """A few local slips: a dropped word, a doubled word, two neighbours swapped."""
    words = list(words)
    n_edits = int(rng.integers(1, max(1, len(words) // 8) + 1))
    for _ in range(n_edits):
        op = rng.choice(["drop", "duplicate", "swap"])
        i = int(rng.integers(0, len(words) - 1))
        if op == "drop" and len(words) > 3:
            del words[i]
        elif op == "duplicate":
            words.insert(i, words[i])
        else:
            words[i], words[i + 1] = words[i + 1], words[i]
    return words


def _word_salad(words: list[str], rng: np.random.Generator) -> list[str]:
    """The same words in random order (a different order whenever one exists)."""
    for _ in range(10):
        shuffled = [words[i] for i in rng.permutation(len(words))]
        if shuffled != words:
            return shuffled
    return shuffled


_ALNUM = np.array(list("abcdefghijklmnopqrstuvwxyz0123456789"))
_PRINTABLE = np.array(list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789     .,;:!?'-#@&*()/"))


def _noise(sentence: str, words: list[str], rng: np.random.Generator) -> str:
    """Random tokens (letter-digit strings the length of the words) or random characters."""
    if rng.random() < 0.5:
        tokens = ["".join(rng.choice(_ALNUM, size=max(2, len(w)))) for w in words]
        return " ".join(tokens) + "."
    return "".join(rng.choice(_PRINTABLE, size=max(8, len(sentence)))).strip()


def phrase_loop(sentence: str, rng: np.random.Generator) -> str:
    """The sentence with a 2-6 word phrase looping 2-5 extra times in place, as greedy decoding does."""
    words, end = _split_end_punctuation(sentence)
    if len(words) < 3:
        raise ValueError(f"sentence needs at least 3 words to loop a phrase, got {sentence!r}")
    length = int(rng.integers(2, min(6, len(words)) + 1))
    start = int(rng.integers(0, len(words) - length + 1))
    phrase = words[start:start + length]
    looped = words[:start + length] + phrase * int(rng.integers(2, 6)) + words[start + length:]
    return " ".join(looped) + end


def corrupt_sentence(sentence: str, kind: str, rng: np.random.Generator) -> str:
    """Turn a clean sentence into an example of `kind`: clean, mild, word_salad, noise, or repeated (a phrase loop).

    `fragment` and sentence-level repetition need an article: see glue_fragments and loop_article.
    """
    if kind not in CLASSES[:5]:
        raise ValueError(f"corruption kind must be one of {CLASSES[:5]}, got {kind!r}")
    if kind == "clean":
        return sentence
    words, end = _split_end_punctuation(sentence)
    if len(words) < 3:
        raise ValueError(f"sentence needs at least 3 words to corrupt, got {sentence!r}")
    if kind == "noise":
        return _noise(sentence, words, rng)
    if kind == "repeated":
        return phrase_loop(sentence, rng)
    changed = _mild(words, rng) if kind == "mild" else _word_salad(words, rng)
    return " ".join(_recapitalise(changed, words[0])) + end


def loop_article(sentences: list[str], rng: np.random.Generator, max_cycles: int = 12):
    """An article that falls into a loop: its first m sentences, then its last 1-3 repeated 2..max_cycles times.

    Returns (sentences, labels): the first m are "clean", every copy in the loop is
    "repeated"; the loop may end on a copy cut mid-sentence (a "fragment"), as a
    block of generated tokens does.
    """
    if not sentences:
        raise ValueError("loop_article needs at least one sentence")
    m = int(rng.integers(1, len(sentences) + 1))
    cycle = sentences[m - int(rng.integers(1, min(3, m) + 1)):m]
    copies = cycle * int(rng.integers(2, max(2, max_cycles) + 1))
    out = list(sentences[:m]) + copies
    labels = ["clean"] * m + ["repeated"] * len(copies)
    words = out[-1].split()
    if len(words) > 3 and rng.random() < 0.5:
        out[-1] = " ".join(words[:int(rng.integers(1, len(words) - 1))])
        labels[-1] = "fragment"
    return out, labels


def glue_fragments(sentences: list[str], rng: np.random.Generator, min_words: int = 6, max_words: int = 40):
    """An article glued from word windows of the text with gaps between them (block-edge gluing).

    A synthetic article joins 64-token continuations that start and end mid-sentence,
    and the next continuation completes a different sentence. Here windows of
    min_words..max_words words are kept, each gap runs past at least one sentence end
    (so a seam joins two different sentences), and the windows are joined. Returns
    (pieces, labels) after sentence splitting: a piece that is one of the input
    sentences is "clean", any other (a suffix, a prefix, or a prefix glued to another
    sentence's suffix) is "fragment".
    """
    words, ends = [], []
    for s in sentences:
        words += s.split()
        ends.append(len(words))  # index just past each sentence's last word
    kept, pos = [], int(rng.integers(0, max(1, min(max_words, len(words) // 2))))
    while pos < len(words):
        stop = min(len(words), pos + int(rng.integers(min_words, max_words + 1)))
        kept += words[pos:stop]
        following = [e for e in ends if e > stop]
        if not following:
            break
        pos = following[0] + int(rng.integers(1, max(2, max_words // 2)))
    pieces = split_sentences(" ".join(kept))
    whole = {_sentence_key(s) for s in sentences}
    labels = ["clean" if _sentence_key(p) in whole else "fragment" for p in pieces]
    return pieces, labels


# ---------------------------------------------------------------------------
# Sentence features: shape and article context (what no bag of n-grams can see)
# ---------------------------------------------------------------------------

_WORD = re.compile(r"\w+")
CONTEXT_FEATURES = ("prior_copies", "many_prior_copies", "prior_ngram_share", "self_loop_share",
                    "recent_repeat_share", "starts_lower", "ends_open", "odd_quotes", "log_words")


def _words(sentence: str) -> list[str]:
    return _WORD.findall(sentence.lower())


def _sentence_key(sentence: str) -> str:
    """Case- and punctuation-blind identity of a sentence, for exact repeats."""
    return " ".join(_words(sentence))


def _ngrams(words: list[str], n: int) -> list[tuple]:
    return [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]


def context_features(per_article: list[list[str]]) -> np.ndarray:
    """One row of CONTEXT_FEATURES per sentence, articles in order.

    Repetition is only visible against the sentences before it in the same article:
    how often this exact sentence already occurred (log1p, and whether twice or
    more), the share of its word 4-grams that occurred earlier, the share of its
    3-grams that repeat inside it (a looping phrase), and the share of the previous
    3 sentences that were repeats (inside a loop). Shape features tell fragments:
    a lowercase start, no end punctuation, an odd number of double quotes.
    """
    rows = []
    for sentences in per_article:
        copies: Counter = Counter()
        seen_grams: set = set()
        recent: deque = deque(maxlen=3)
        for s in sentences:
            words = _words(s)
            key = " ".join(words)
            grams = _ngrams(words, 4)
            prior = float(np.mean([g in seen_grams for g in grams])) if grams else float(copies[key] > 0)
            tri = _ngrams(words, 3)
            loop = 1.0 - len(set(tri)) / len(tri) if tri else 0.0
            stripped = s.strip().rstrip("\"'”’)")
            rows.append((
                math.log1p(copies[key]),
                float(copies[key] >= 2),
                prior,
                loop,
                float(np.mean(recent)) if recent else 0.0,
                float(s.strip()[:1].islower()),
                float(not stripped.endswith((".", "!", "?"))),
                float((s.count('"') + s.count("“") + s.count("”")) % 2 == 1),
                math.log1p(len(words)) / 4.0,
            ))
            recent.append(float(copies[key] > 0 or prior > 0.5 or loop > 0.2))
            copies[key] += 1
            seen_grams.update(grams)
    return np.array(rows, dtype=float).reshape(len(rows), len(CONTEXT_FEATURES))


def sentence_frame(per_article: list[list[str]]):
    """The detector pipeline's input: a DataFrame with the sentence and its CONTEXT_FEATURES."""
    import pandas as pd

    frame = pd.DataFrame(context_features(per_article), columns=list(CONTEXT_FEATURES))
    frame.insert(0, "sentence", [s for sentences in per_article for s in sentences])
    return frame


_TOKEN = re.compile(r"\w+|[^\w\s]")


def _lm_tokens(sentence: str) -> list[str]:
    """Tokens for the novelty statistics: lowercase, digits -> #, a capitalised word
    inside the sentence -> <cap> (names and places are open classes; their
    combinations are not what makes a sentence broken)."""
    out = []
    for i, tok in enumerate(_TOKEN.findall(re.sub(r"\d+", "#", sentence))):
        after_quote = i > 0 and out[-1] in ('"', "“", "'")
        out.append("<cap>" if tok[:1].isupper() and i > 0 and not after_quote else tok.lower())
    return out


def _novelty_keys(sentence: str) -> tuple[set, set]:
    """Stable integer keys of the sentence's bigrams (with start/end marks) and of its unordered word pairs."""
    tokens = _lm_tokens(sentence)
    marked = ["<s>", *tokens, "</s>"]
    bigrams = {zlib.crc32(f"{a} {b}".encode()) for a, b in zip(marked, marked[1:])}
    words = sorted({t for t in tokens if t[0].isalnum() or t == "<cap>"})
    pairs = {zlib.crc32(f"{a}|{b}".encode()) for i, a in enumerate(words) for b in words[i + 1:]}
    return bigrams, pairs


NOVELTY_FEATURES = ("unseen_bigram_share", "unseen_bigrams", "unseen_pair_share", "unseen_pairs")


class _ReferenceCountsTransformer:
    """The scikit-learn transformer protocol shared by the count-based sentence features: without
    reference text each training sentence is left out of its own counts (leave_out=1)."""

    def transform(self, X):
        return self._features(X, leave_out=0)

    def fit_transform(self, X, y=None):
        leave_out = int(self.reference is None)
        return self.fit(X)._features(X, leave_out=leave_out)

    def get_params(self, deep=True):
        return {"column": self.column, "reference": self.reference}

    def set_params(self, **params):
        for k, v in params.items():
            setattr(self, k, v)
        return self


class NgramNovelty(_ReferenceCountsTransformer):
    """How much of a sentence clean reference text has never shown: bigrams and word pairs.

    A glued fragment has an unseen bigram at the seam and, above all, word pairs that
    never share a sentence in clean text (the start of one sentence with the end of
    another); a slip (drop, swap, doubled word) makes unseen bigrams but no new pairs;
    word salad makes many unseen bigrams. Features: share and log-count of unseen
    bigrams, share and log-count of unseen word pairs.

    `reference` (clean sentences) is what fit counts; without it fit counts the
    distinct training sentences and fit_transform leaves each sentence out of its own
    counts, so training rows see the statistic an unseen sentence would.
    """

    def __init__(self, column: str = "sentence", reference=None):
        self.column = column
        self.reference = reference

    def fit(self, X, y=None):
        texts = self.reference if self.reference is not None else X[self.column]
        self.bigrams_, self.pairs_ = Counter(), Counter()
        for s in set(texts):
            bigrams, pairs = _novelty_keys(s)
            self.bigrams_.update(bigrams)
            self.pairs_.update(pairs)
        self.reference = None  # counted; do not pickle the sentences
        return self

    def _features(self, X, leave_out: int) -> np.ndarray:
        out = np.zeros((len(X), len(NOVELTY_FEATURES)))
        for i, s in enumerate(X[self.column]):
            for j, (keys, seen) in enumerate(zip(_novelty_keys(s), (self.bigrams_, self.pairs_))):
                if keys:
                    unseen = sum(seen.get(k, 0) - leave_out <= 0 for k in keys)
                    out[i, 2 * j:2 * j + 2] = (unseen / len(keys), math.log1p(unseen) / 3.0)
        return out



FLUENCY_FEATURES = ("doubled_words", "unseen_bigrams", "unseen_trigrams", "unseen_trigram_share",
                    "repairable_breaks", "unrepairable_breaks", "min_logprob", "mean_logprob",
                    "first_break_position", "longest_seen_run")


def _fluency_tokens(sentence: str) -> list[str]:
    """_lm_tokens with two start marks and an end mark: every token has a trigram history."""
    return ["<s>", "<s>", *_lm_tokens(sentence), "</s>"]


class WordFluency(_ReferenceCountsTransformer):
    """How a sentence reads under a word trigram model of clean reference text.

    A slip (dropped, doubled or swapped word) and a glued seam both break the word
    sequence, but a slip breaks it in a way one edit repairs: the two words around a
    break are seen one word apart (a drop), or dropping one of them mends it (a
    doubling), or swapping them does. A seam joins two unrelated sentences, so no
    single edit mends it. Features (FLUENCY_FEATURES): doubled words (case-blind, so
    "Group Group" counts although names map to <cap>), unseen bigrams and trigrams
    (log-count, share), breaks one edit repairs and breaks it does not, the lowest and
    mean token log-probability under a backoff trigram model, where the first unseen
    trigram sits, and the longest run of seen trigrams (relative to the length).

    Counts are per distinct sentence (document frequency). `reference` (clean
    sentences) is what fit counts; without it fit counts the distinct training
    sentences and fit_transform leaves each sentence out of its own counts.
    """

    def __init__(self, column: str = "sentence", reference=None):
        self.column = column
        self.reference = reference

    def fit(self, X, y=None):
        texts = self.reference if self.reference is not None else X[self.column]
        uni, bi, tri, skip = Counter(), Counter(), Counter(), Counter()
        for s in set(texts):
            t = _fluency_tokens(s)
            uni.update(set(t[2:]))
            bi.update(set(zip(t[1:], t[2:])))
            tri.update(set(zip(t, t[1:], t[2:])))
            skip.update(set(zip(t[1:], t[3:])))
        self.history2_, self.history1_ = Counter(), Counter()
        for (a, b, _), n in tri.items():
            self.history2_[(a, b)] += n
        for (a, _), n in bi.items():
            self.history1_[a] += n
        self.unigrams_, self.bigrams_, self.trigrams_, self.skips_ = uni, bi, tri, skip
        self.total_ = sum(uni.values())
        self.reference = None  # counted; do not pickle the sentences
        return self

    def _logprob(self, u: str, v: str, w: str, leave_out: int) -> float:
        """Stupid-backoff log-probability of w after (u, v): trigram, else 0.4 x bigram, else 0.16 x add-one unigram."""
        c3 = self.trigrams_.get((u, v, w), 0) - leave_out
        if c3 > 0:
            return math.log(min(1.0, c3 / max(1, self.history2_.get((u, v), 0) - leave_out)))
        c2 = self.bigrams_.get((v, w), 0) - leave_out
        if c2 > 0:
            return math.log(min(1.0, 0.4 * c2 / max(1, self.history1_.get(v, 0) - leave_out)))
        c1 = max(0, self.unigrams_.get(w, 0) - leave_out)
        return math.log(0.16 * (c1 + 1) / (self.total_ + len(self.unigrams_) + 1))

    def _repairable(self, t: list[str], i: int, leave_out: int) -> bool:
        """Whether one edit mends the unseen bigram (t[i-1], t[i]): a word put back, one dropped, or a swap undone."""
        def seen(table, key):
            return table.get(key, 0) - leave_out > 0

        prev, a, b = t[i - 2], t[i - 1], t[i]
        nxt = t[i + 1] if i + 1 < len(t) else None
        return (seen(self.skips_, (a, b))
                or seen(self.bigrams_, (prev, b))
                or (nxt is not None and seen(self.bigrams_, (a, nxt)))
                or (nxt is not None and seen(self.bigrams_, (prev, b)) and seen(self.bigrams_, (b, a))
                    and seen(self.bigrams_, (a, nxt))))

    def _row(self, sentence: str, leave_out: int) -> tuple:
        t = _fluency_tokens(sentence)
        raw = _words(sentence)
        n = len(t) - 2  # predicted tokens
        positions = range(2, len(t))
        bigram_ok = [self.bigrams_.get((t[i - 1], t[i]), 0) - leave_out > 0 for i in positions]
        trigram_ok = [self.trigrams_.get((t[i - 2], t[i - 1], t[i]), 0) - leave_out > 0 for i in positions]
        fixable = [self._repairable(t, i, leave_out) for i, ok in zip(positions, bigram_ok) if not ok]
        logps = [self._logprob(t[i - 2], t[i - 1], t[i], leave_out) for i in positions]
        breaks = [k for k, ok in enumerate(trigram_ok) if not ok]
        run = longest = 0
        for ok in trigram_ok:
            run = run + 1 if ok else 0
            longest = max(longest, run)
        return (math.log1p(sum(a == b for a, b in zip(raw, raw[1:]))),
                math.log1p(len(fixable)), math.log1p(len(breaks)), len(breaks) / n,
                math.log1p(sum(fixable)), math.log1p(len(fixable) - sum(fixable)),
                min(logps) / 10.0, float(np.mean(logps)) / 5.0,
                breaks[0] / n if breaks else 1.0, longest / n)

    def _features(self, X, leave_out: int) -> np.ndarray:
        rows = [self._row(s, leave_out) for s in X[self.column]]
        return np.array(rows, dtype=float).reshape(len(rows), len(FLUENCY_FEATURES))



# ---------------------------------------------------------------------------
# Training articles: disjoint source articles per class, corrupted article by article
# ---------------------------------------------------------------------------

def _derive(kind: str, sentences: list[str], rng: np.random.Generator):
    """One derived article from a source article, and which of its sentences are examples of `kind`.

    Sentences that are not examples (the clean lead-in of a loop, whole sentences
    that survive gluing) stay as context, so the class's examples come only from
    this class's source articles.
    """
    if kind == "clean":
        return sentences, [True] * len(sentences)
    if kind in ("mild", "word_salad", "noise"):
        usable = [s for s in sentences if len(s.split()) >= 3]
        return [corrupt_sentence(s, kind, rng) for s in usable], [True] * len(usable)
    if kind == "repeated":
        if rng.random() < 0.5:
            out, labels = loop_article(sentences, rng)
            return out, [label == "repeated" for label in labels]
        looped = rng.random(len(sentences)) < 0.5
        out = [phrase_loop(s, rng) if loop and len(s.split()) >= 3 else s for s, loop in zip(sentences, looped)]
        return out, [o != s for o, s in zip(out, sentences)]
    pieces, labels = glue_fragments(sentences, rng)
    return pieces, [label == "fragment" for label in labels]


def build_detector_dataset(texts, seed: int, max_sentences: int = 20000, min_words: int = 5,
                           test_fraction: float = 0.2, reference_share: float = 0.25):
    """A DataFrame of detector examples: sentence, CONTEXT_FEATURES, label, article, split.

    After a seeded shuffle, a reference_share of the articles becomes clean reference
    text (split "reference": what NgramNovelty counts, never an example), and the
    rest are dealt round-robin to the classes, so every class is made from its own
    source sentences. Within a class a test_fraction of the source articles is held
    out (split "test"), so a held-out example never has its source in training or in
    the reference. Each class keeps at most max_sentences // len(CLASSES) examples
    (a seeded subsample, same share per split). Articles with fewer than 2 sentences
    of >= min_words words are skipped.
    """
    import pandas as pd

    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if not 0 <= reference_share < 1:
        raise ValueError(f"reference_share must be in [0, 1), got {reference_share}")
    if isinstance(texts, str):
        raise TypeError("texts must be a list of article texts, not one string")
    articles = [[s for s in split_sentences(t or "") if len(s.split()) >= min_words] for t in texts]
    articles = [a for a in articles if len(a) >= 2]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(articles))
    n_reference = int(reference_share * len(articles))
    n_needed = 2 * len(CLASSES)
    if len(articles) - n_reference < n_needed:
        raise ValueError(f"need at least {n_needed} articles with 2+ sentences of >= {min_words} words besides the "
                         f"reference share to build a detector dataset (2 per class, one held out), "
                         f"the texts gave {len(articles)}")
    reference = sentence_frame([articles[i] for i in order[:n_reference]])
    reference["label"], reference["article"], reference["split"] = "clean", "reference", "reference"
    order = order[n_reference:]
    per_class = max(1, max_sentences // len(CLASSES))
    frames = []
    for k, kind in enumerate(CLASSES):
        sources = [articles[i] for i in order[k::len(CLASSES)]]
        n_test = min(len(sources) - 1, max(1, round(test_fraction * len(sources))))
        # fragments give fewer examples per article: cut each source three times
        passes = 3 if kind == "fragment" else 1
        for j, source in enumerate(sources):
            split = "test" if j < n_test else "train"
            for p in range(passes):
                derived, is_example = _derive(kind, source, rng)
                frame = sentence_frame([derived])
                frame["label"] = kind
                frame["article"] = f"{kind}-{j}-{p}"
                frame["split"] = split
                frames.append(frame[np.asarray(is_example, dtype=bool)])
    data = pd.concat(frames, ignore_index=True)
    keep = []
    for (kind, split), rows in data.groupby(["label", "split"], sort=False):
        cap = round(per_class * (test_fraction if split == "test" else 1 - test_fraction))
        keep.append(rows.index.to_numpy() if len(rows) <= cap else rng.choice(rows.index.to_numpy(), cap, replace=False))
    data = data.loc[np.sort(np.concatenate(keep))]
    return pd.concat([data, reference], ignore_index=True)


def detector_world_texts(n_articles: int, seed: int, topics=None) -> list[str]:
    """Texts of a fresh world sample for the detector (its own purpose seed: disjoint from the study's corpora)."""
    from selfconsuming import LEANINGS
    from selfconsuming.prepare import world_articles

    if n_articles < 2 * len(CLASSES):
        raise ValueError(f"the detector needs at least {2 * len(CLASSES)} world articles, got {n_articles}")
    counts = {l: n_articles // len(LEANINGS) + (i < n_articles % len(LEANINGS)) for i, l in enumerate(LEANINGS)}
    return [a["text"] for a in world_articles("detector", counts, seed, topics)]


# ---------------------------------------------------------------------------
# Offline detector: TF-IDF + novelty + fluency + context features; linear model and trees
# ---------------------------------------------------------------------------

def _dense_tail(X, n_columns: int) -> np.ndarray:
    """The last n_columns of the feature matrix (the dense features after the TF-IDF blocks), as a dense array."""
    tail = X[:, X.shape[1] - n_columns:]
    return tail.toarray() if hasattr(tail, "toarray") else np.asarray(tail)


def make_detector_pipeline(C: float = 20.0, seed: int = 0, reference=None):
    """Word 1-2 grams (word order), char 2-4 grams (noise, typos), n-gram novelty and word
    fluency against `reference` clean sentences (seams and slips, see NgramNovelty and
    WordFluency), and the context features; two classifiers vote with equal weight on
    the class probabilities.

    Logistic regression (inverse regularisation C) reads everything; gradient-boosted
    trees read only the dense features, where the classes differ by interactions a
    linear model misses (a break that one edit mends is a slip, one that no edit mends
    in a sentence with open ends is a seam). Input is a sentence_frame. The saga solver
    with a loose tolerance fits ~20k sentences in seconds on one core.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier, VotingClassifier
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    features = ColumnTransformer([
        ("words", TfidfVectorizer(ngram_range=(1, 2), token_pattern=r"(?u)\b\w+\b", sublinear_tf=True), "sentence"),
        ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), min_df=2, sublinear_tf=True), "sentence"),
        ("novelty", NgramNovelty("sentence", reference), ["sentence"]),
        ("fluency", WordFluency("sentence", reference), ["sentence"]),
        ("context", "passthrough", list(CONTEXT_FEATURES)),
    ])
    n_dense = len(NOVELTY_FEATURES) + len(FLUENCY_FEATURES) + len(CONTEXT_FEATURES)
    trees = Pipeline([
        ("dense", FunctionTransformer(_dense_tail, kw_args={"n_columns": n_dense}, accept_sparse=True)),
        ("boost", HistGradientBoostingClassifier(random_state=seed)),
    ])
    linear = LogisticRegression(C=C, solver="saga", tol=1e-3, max_iter=1000, random_state=seed)
    classify = VotingClassifier([("linear", linear), ("trees", trees)], voting="soft")
    return Pipeline([("features", features), ("classify", classify)])


class SklearnGibberishDetector:
    """A fitted detector pipeline; probabilities come out in CLASSES order (0 for a class it lacks)."""

    def __init__(self, pipeline):
        known = list(pipeline.classes_)
        missing = [c for c in STUDY_CLASSES if c not in known]
        if missing:
            raise ValueError(f"detector pipeline lacks classes {missing}; it knows {known}")
        self.pipeline = pipeline
        self._columns = [(known.index(c), j) for j, c in enumerate(CLASSES) if c in known]

    def _predict(self, per_article: list[list[str]]) -> np.ndarray:
        n = sum(len(a) for a in per_article)
        out = np.zeros((n, len(CLASSES)))
        if n:
            probs = self.pipeline.predict_proba(sentence_frame(per_article))
            for src, dst in self._columns:
                out[:, dst] = probs[:, src]
        return out

    def predict_proba(self, sentences: list[str]) -> np.ndarray:
        """Each sentence alone (no article context: repetition across sentences is not seen)."""
        return self._predict([[s] for s in sentences])

    def predict_proba_articles(self, per_article: list[list[str]]) -> np.ndarray:
        """Every sentence of every article read after the sentences before it; rows in article order."""
        return self._predict([list(a) for a in per_article])


def train_gibberish_detector(texts, seed: int, out_dir, max_sentences: int = 20000,
                             test_fraction: float = 0.2, C: float = 20.0, source: str = "texts") -> dict:
    """Train the offline detector on corrupted articles; save it; return held-out metrics.

    `texts` are clean article texts (a fresh world sample on the world, else the
    human corpus). `out_dir` receives model.joblib and detector.json (classes, values,
    sizes, accuracy, per-class recall = held-out accuracy per class, F1, confusion
    matrix, fit seconds), written atomically. Load it with load_gibberish_detector(out_dir).
    """
    import joblib
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, recall_score

    data = build_detector_dataset(texts, seed, max_sentences, test_fraction=test_fraction)
    train, test = data[data["split"] == "train"], data[data["split"] == "test"]
    reference = data.loc[data["split"] == "reference", "sentence"].tolist()
    columns = ["sentence", *CONTEXT_FEATURES]
    start, cpu_start = time.perf_counter(), time.process_time()
    pipeline = make_detector_pipeline(C=C, seed=seed, reference=reference or None)
    pipeline.fit(train[columns], train["label"])
    fit_seconds, fit_cpu = time.perf_counter() - start, time.process_time() - cpu_start
    predicted = pipeline.predict(test[columns])
    labels = list(CLASSES)
    recall = recall_score(test["label"], predicted, labels=labels, average=None, zero_division=0)
    f1 = f1_score(test["label"], predicted, labels=labels, average=None, zero_division=0)
    metrics = {
        "classes": labels,
        "values": CLASS_VALUES.tolist(),
        "seed": seed,
        "source": source,
        "n_articles": len(texts),
        "n_train": len(train),
        "n_test": len(test),
        "n_test_per_class": {c: int((test["label"] == c).sum()) for c in labels},
        "n_reference_sentences": len(reference),
        "accuracy": float(accuracy_score(test["label"], predicted)),
        "recall": {c: float(v) for c, v in zip(labels, recall)},
        "f1": {c: float(v) for c, v in zip(labels, f1)},
        "macro_f1": float(np.mean(f1)),
        "confusion": {"labels": labels, "rows_true": confusion_matrix(test["label"], predicted, labels=labels).tolist()},
        "fit_seconds": round(fit_seconds, 2),
        "fit_cpu_seconds": round(fit_cpu, 2),
    }
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        joblib.dump(pipeline, tmp / _DETECTOR_MODEL)
        (tmp / _DETECTOR_JSON).write_text(json.dumps(metrics, indent=2))
    return metrics


# ---------------------------------------------------------------------------
# Transformers detector (the study's hub model, or any sequence classifier)
# ---------------------------------------------------------------------------

def _normalise_label(name) -> str:
    text = "".join(ch if ch.isalnum() else "_" for ch in str(name).strip().lower())
    return "_".join(part for part in text.split("_") if part)


def _class_of(name, where: str) -> str:
    cls = _LABEL_ALIASES.get(_normalise_label(name))
    if cls is None:
        raise ValueError(f"{where}: label {name!r} is none of {CLASSES} (or aliases {sorted(_LABEL_ALIASES)})")
    return cls


def label_columns(id2label: dict, label_map: dict | None = None) -> np.ndarray:
    """For each model output index, the index in CLASSES it stands for (the 4 STUDY_CLASSES must all appear).

    Without `label_map` the names in the model's id2label are used (normalised, so
    "mild gibberish" -> mild, "word salad" -> word_salad). `label_map` maps model
    label ids (int or digit string) or label names onto CLASSES names.
    """
    n = len(id2label)
    columns = np.empty(n, dtype=int)
    for i in range(n):
        name = id2label[i]
        if label_map is None:
            cls = _class_of(name, "model config id2label (pass quality.label_map to map generic labels)")
        else:
            keyed = {_normalise_label(k): v for k, v in label_map.items()}
            key = next((k for k in (str(i), _normalise_label(name)) if k in keyed), None)
            if key is None:
                raise ValueError(f"label_map has no entry for model label {i} ({name!r}); it has {list(label_map)}")
            cls = _class_of(keyed[key], "label_map")
        columns[i] = CLASSES.index(cls)
    missing = [c for j, c in enumerate(STUDY_CLASSES) if j not in columns]
    if missing:
        raise ValueError(f"the detector's labels {dict(id2label)} give no column for {missing}")
    return columns


class TransformersGibberishDetector:
    """A sequence-classification model scored in batches, sentences cut at `max_length` tokens."""

    def __init__(self, model, tokenizer, columns, batch_size: int = 64, max_length: int = 128, device="cpu"):
        self.model = model.to(device).eval()
        self.tokenizer = tokenizer
        self.columns = np.asarray(columns)
        self.batch_size = batch_size
        self.max_length = max_length
        self.device = device

    def predict_proba(self, sentences: list[str]) -> np.ndarray:
        import torch

        sentences = list(sentences)
        order = np.argsort([len(s) for s in sentences], kind="stable")  # similar lengths batch with little padding
        out = np.zeros((len(sentences), len(CLASSES)))
        for start in range(0, len(sentences), self.batch_size):
            rows = order[start:start + self.batch_size]
            enc = self.tokenizer([sentences[i] for i in rows], padding=True, truncation=True,
                                 max_length=self.max_length, return_tensors="pt").to(self.device)
            with torch.inference_mode():
                probs = torch.softmax(self.model(**enc).logits.float(), dim=-1).cpu().numpy()
            for j, col in enumerate(self.columns):
                out[rows, col] += probs[:, j]
        return out


def load_gibberish_detector(ref: str, label_map: dict | None = None, device: str = "cpu",
                            batch_size: int = 64, max_length: int = 128, allow_download: bool = False):
    """A detector from a train_gibberish_detector folder, or a transformers classifier (hub id or dir)."""
    folder = Path(str(ref))
    if (folder / _DETECTOR_JSON).is_file():
        import joblib

        return SklearnGibberishDetector(joblib.load(folder / _DETECTOR_MODEL))

    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from selfconsuming.models import parse_model_reference, pick_device

    mref = parse_model_reference(ref)
    kwargs = mref.from_pretrained_kwargs(allow_download)
    tokenizer = AutoTokenizer.from_pretrained(mref.path, **kwargs)
    tokenizer.padding_side = "right"  # absolute position embeddings: real tokens start at 0
    model = AutoModelForSequenceClassification.from_pretrained(mref.path, **kwargs)
    columns = label_columns(model.config.id2label, label_map)
    return TransformersGibberishDetector(model, tokenizer, columns, batch_size, max_length, pick_device(device))


# ---------------------------------------------------------------------------
# Text quality index
# ---------------------------------------------------------------------------

def _full_width(probs: np.ndarray) -> np.ndarray:
    """Probabilities over CLASSES: a 4-column (STUDY_CLASSES) detector gets 0 for repeated and fragment."""
    probs = np.asarray(probs, dtype=float)
    if probs.ndim != 2 or probs.shape[1] not in (len(STUDY_CLASSES), len(CLASSES)):
        raise ValueError(f"probabilities must have shape (n, {len(STUDY_CLASSES)}) or (n, {len(CLASSES)}), "
                         f"got {probs.shape}")
    if probs.shape[1] == len(CLASSES):
        return probs
    return np.hstack([probs, np.zeros((len(probs), len(CLASSES) - len(STUDY_CLASSES)))])


def sentence_scores(probs: np.ndarray, scoring: str = "expected") -> np.ndarray:
    """Quality of each sentence from its class probabilities (columns in CLASSES or STUDY_CLASSES order).

    "expected" (default): the sum over classes of class value x probability,
    3 p_clean + 2 p_mild + 1 p_word_salad + 0 p_noise + 1 p_repeated + 1 p_fragment.
    Smooth in the probabilities: a sentence the detector is unsure about sits
    between the classes, and a small shift in belief gives a small shift in score.
    "study": the value of the most likely class, as Wang et al. define TQI (a sentence
    counts as its predicted class whatever the detector's confidence).
    """
    probs = _full_width(probs)
    if scoring == "expected":
        return probs @ CLASS_VALUES
    if scoring == "study":
        return CLASS_VALUES[probs.argmax(axis=1)] if len(probs) else np.zeros(0)
    raise ValueError(f"scoring must be one of {SCORINGS}, got {scoring!r}")


def _detector_probs(detector: GibberishDetector, per_article: list[list[str]]) -> np.ndarray:
    """Sentence probabilities, with article context when the detector can read it."""
    n = sum(len(a) for a in per_article)
    if n == 0:
        return np.zeros((0, len(CLASSES)))
    if hasattr(detector, "predict_proba_articles"):
        probs = detector.predict_proba_articles(per_article)
    else:
        probs = detector.predict_proba([s for sents in per_article for s in sents])
    probs = np.asarray(probs, dtype=float)
    if probs.ndim != 2 or probs.shape[0] != n or probs.shape[1] not in (len(STUDY_CLASSES), len(CLASSES)):
        raise ValueError(f"detector returned shape {probs.shape} for {n} sentences; expected "
                         f"({n}, {len(CLASSES)}) or ({n}, {len(STUDY_CLASSES)})")
    return _full_width(probs)


def text_quality_index(texts, detector: GibberishDetector, scoring: str = "expected"):
    """Per-article TQI (mean sentence score; NaN for an article with no sentence) and the sentence scores.

    Every sentence of each text is scored (`sentence_quality_index` has the core).
    """
    if isinstance(texts, str):
        raise TypeError("texts must be a list of article texts, not one string")
    return sentence_quality_index([split_sentences(t or "") for t in texts], detector, scoring)


def sentence_quality_index(per_article: list[list[str]], detector: GibberishDetector,
                           scoring: str = "expected"):
    """TQI of articles given as their sentences: (per-article mean, per-article sentence scores).

    All sentences of all articles go to the detector in one call, which batches them;
    a context-aware detector (predict_proba_articles) sees each sentence after the
    earlier sentences of its article, so repetition counts against the article.
    """
    scores = sentence_scores(_detector_probs(detector, per_article), scoring)
    tqi = np.full(len(per_article), np.nan)
    by_article, start = [], 0
    for i, sents in enumerate(per_article):
        part = scores[start:start + len(sents)]
        start += len(sents)
        by_article.append(part)
        if len(part):
            tqi[i] = part.mean()
    return tqi, by_article


def whole_sentences(continuation: str) -> list[str]:
    """A continuation's sentences without the pieces cut at its seams.

    A 64-token continuation starts and ends mid-sentence, so its first and last pieces
    are halves that, glued to the neighbouring continuations, read as sentences nobody
    wrote. A first piece that does not open like a sentence (an optional opening quote,
    then a capital) and a last piece without end punctuation are dropped; a continuation
    that is a single piece is kept, so no continuation goes unscored.
    """
    sentences = split_sentences(continuation or "")
    if len(sentences) <= 1:
        return sentences
    if not _OPENS_SENTENCE.match(sentences[0]):
        sentences = sentences[1:]
    if sentences and not _ENDS_SENTENCE.search(sentences[-1]):
        sentences = sentences[:-1]
    return sentences


def distinct_sentences(sentences: list[str]) -> list[str]:
    """Each sentence once, at its first place (case and punctuation ignored, as `repeated` is judged)."""
    seen, kept = set(), []
    for sentence in sentences:
        key = _sentence_key(sentence)
        if key not in seen:
            seen.add(key)
            kept.append(sentence)
    return kept


def tqi_sentences(article: dict, rule: str) -> list[str]:
    """The sentences of an article that its TQI scores (`quality.tqi_sentences`).

    `whole`: a synthetic article's continuations each give their whole sentences
    (`whole_sentences`), so fragments cut at the 64-token seams, which the oracle
    skips too, do not count; `all`: every sentence of the text, as the study scored it.
    An article without continuations (the human corpus) is scored on all its sentences.
    """
    if rule not in TQI_SENTENCE_RULES:
        raise ValueError(f"quality.tqi_sentences must be one of {TQI_SENTENCE_RULES}, got {rule!r}")
    pieces = article.get("continuations")
    if rule == "whole" and pieces:
        return [s for piece in pieces for s in whole_sentences(piece)]
    return split_sentences(article.get("text") or "")


def articles_tqi(articles: list[dict], detector: GibberishDetector, scoring: str,
                 sentences: str) -> np.ndarray:
    """Per-article TQI of a corpus, on the sentences `tqi_sentences` picks."""
    return sentence_quality_index([tqi_sentences(a, sentences) for a in articles], detector, scoring)[0]


# ---------------------------------------------------------------------------
# Perplexity under a fixed causal LM
# ---------------------------------------------------------------------------

def _context_length(model, tokenizer) -> int:
    for name in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(model.config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    value = getattr(tokenizer, "model_max_length", None)
    if isinstance(value, int) and 0 < value < 1_000_000:
        return value
    raise ValueError("cannot tell the model's context length; pass max_length")


def sliding_windows(n_tokens: int, window: int, stride: int) -> list[tuple[int, int, int]]:
    """(begin, end, n_new) windows over a sequence; only the n_new last tokens of each are scored.

    As in the transformers perplexity guide: every token after the first is scored
    exactly once, with up to `window - stride` tokens of earlier context.
    """
    windows, prev_end = [], 0
    for begin in range(0, n_tokens, stride):
        end = min(begin + window, n_tokens)
        windows.append((begin, end, end - prev_end))
        prev_end = end
        if end == n_tokens:
            break
    return windows


def article_perplexities(texts, model, tokenizer, max_length: int | None = None, stride: int | None = None,
                         batch_size: int = 8, device: str = "cpu") -> np.ndarray:
    """Per-article perplexity exp(mean NLL of every token after the first) under a fixed causal LM.

    Articles longer than the window (the model's context, or max_length) are scored
    with a sliding window moving by `stride` (default half the window). Windows of
    all articles are batched together (right padding, pads labelled -100, so the
    result does not depend on the batch). An article with fewer than 2 tokens -> NaN.
    """
    import torch

    if isinstance(texts, str):
        raise TypeError("texts must be a list of article texts, not one string")
    window = int(max_length or _context_length(model, tokenizer))
    stride = int(stride or max(1, window // 2))
    if window < 2 or not 0 < stride <= window:
        raise ValueError(f"need max_length >= 2 and 0 < stride <= max_length, got {window} and {stride}")
    model = model.to(device).eval()
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    ids = [tokenizer(t or "", add_special_tokens=True)["input_ids"] for t in texts]
    items = []  # (article, token ids of the window, number of scored tokens at its end)
    for a, seq in enumerate(ids):
        for begin, end, n_new in sliding_windows(len(seq), window, stride):
            items.append((a, seq[begin:end], n_new))
    items.sort(key=lambda item: len(item[1]))  # similar lengths together: little padding

    nll = np.zeros(len(texts))
    count = np.zeros(len(texts))
    for start in range(0, len(items), batch_size):
        batch = items[start:start + batch_size]
        width = max(len(seq) for _, seq, _ in batch)
        input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        for row, (_, seq, n_new) in enumerate(batch):
            input_ids[row, :len(seq)] = torch.tensor(seq)
            attention[row, :len(seq)] = 1
            labels[row, len(seq) - n_new:len(seq)] = torch.tensor(seq[len(seq) - n_new:])
        with torch.inference_mode():
            logits = model(input_ids=input_ids.to(device), attention_mask=attention.to(device)).logits
            # position t predicts token t + 1; keep only the scored predictions
            targets = labels[:, 1:].to(device)
            scored = targets != -100
            token_nll = torch.nn.functional.cross_entropy(logits[:, :-1][scored].float(), targets[scored],
                                                          reduction="none")
            rows = torch.arange(len(batch), device=device).unsqueeze(1).expand_as(scored)[scored]
            sums = torch.zeros(len(batch), dtype=torch.float64, device=device).index_add_(0, rows, token_nll.double())
        sums = sums.cpu().numpy()
        counts = scored.sum(dim=1).cpu().numpy()
        for row, (a, _, _) in enumerate(batch):
            nll[a] += sums[row]
            count[a] += counts[row]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, np.exp(nll / np.maximum(count, 1)), math.nan)

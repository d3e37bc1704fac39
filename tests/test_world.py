"""The ground-truth news world: generator determinism, oracle exactness and the
done-when targets (oracle recovers the leaning, parses its own text, rejects noise)."""

import math
import random
import re
import string

import numpy as np
import pandas as pd
import pytest

from selfconsuming import LEANINGS
from selfconsuming.text import split_sentences
from selfconsuming.world import (
    TOPICS,
    Oracle,
    check_leaning_mix,
    check_topics,
    counts_from_mix,
    generate_articles,
    generate_corpus,
    load_grammar,
    sample_article,
)


@pytest.fixture(scope="module")
def oracle():
    return Oracle()


@pytest.fixture(scope="module")
def held_out():
    """200 articles per leaning from a seed no other test uses."""
    return generate_articles({"left": 200, "center": 200, "right": 200}, seed=12345, id_prefix="heldout")


def sampled_articles(n, seed=0):
    rng = random.Random(seed)
    return [sample_article(rng, LEANINGS[i % 3], TOPICS[i % len(TOPICS)]) for i in range(n)]


# -- checks and counts ---------------------------------------------------------------


def test_topics_and_check_topics():
    assert len(TOPICS) >= 12 and len(set(TOPICS)) == len(TOPICS)
    assert check_topics(["immigration", "taxes"]) == ["immigration", "taxes"]
    with pytest.raises(ValueError, match="astrology.*cooking|cooking.*astrology"):
        check_topics(["astrology", "taxes", "cooking"])
    with pytest.raises(ValueError):
        check_topics([])


def test_check_leaning_mix():
    assert check_leaning_mix({"left": 0.2, "center": 0.3, "right": 0.5 + 5e-7})["right"] == pytest.approx(0.5)
    assert check_leaning_mix({"right": 1.0}) == {"left": 0.0, "center": 0.0, "right": 1.0}
    with pytest.raises(ValueError, match="liberal"):
        check_leaning_mix({"liberal": 0.5, "right": 0.5})
    with pytest.raises(ValueError, match="sum"):
        check_leaning_mix({"left": 0.5, "right": 0.4})
    with pytest.raises(ValueError, match="negative"):
        check_leaning_mix({"left": -0.2, "center": 0.2, "right": 1.0})


@pytest.mark.parametrize("n,mix,expected", [
    (1000, {"left": 0.2, "center": 0.3, "right": 0.5}, {"left": 200, "center": 300, "right": 500}),
    (10, {"left": 1 / 3, "center": 1 / 3, "right": 1 / 3}, {"left": 4, "center": 3, "right": 3}),
    (7, {"left": 0.1, "center": 0.2, "right": 0.7}, {"left": 1, "center": 1, "right": 5}),
    (0, {"right": 1.0}, {"left": 0, "center": 0, "right": 0}),
])
def test_counts_from_mix(n, mix, expected):
    counts = counts_from_mix(n, mix)
    assert counts == expected and sum(counts.values()) == n


def test_counts_from_mix_is_largest_remainder():
    rng = random.Random(1)
    for _ in range(200):
        w = [rng.random() for _ in range(3)]
        mix = dict(zip(LEANINGS, np.array(w) / sum(w)))
        n = rng.randrange(0, 500)
        counts = counts_from_mix(n, mix)
        assert sum(counts.values()) == n
        for k in LEANINGS:  # never more than one away from the exact share
            assert abs(counts[k] - n * mix[k]) < 1
    with pytest.raises(ValueError):
        counts_from_mix(-1, {"left": 1.0})


# -- generator -----------------------------------------------------------------------


def test_generate_articles_counts_records_and_topics():
    rows = generate_articles({"left": 7, "center": 0, "right": 11}, seed=3, topics=["guns", "housing"], id_prefix="t")
    assert [r["label"] for r in rows].count("left") == 7
    assert [r["label"] for r in rows].count("right") == 11
    assert all(set(r) == {"id", "title", "text", "label", "topic"} for r in rows)
    assert len({r["id"] for r in rows}) == len(rows) and all(r["id"].startswith("t-") for r in rows)
    assert {r["topic"] for r in rows} == {"guns", "housing"}
    right_topics = [r["topic"] for r in rows if r["label"] == "right"]
    assert abs(right_topics.count("guns") - right_topics.count("housing")) <= 1  # balanced within a leaning
    labels = [r["label"] for r in rows]
    assert labels != sorted(labels, key=LEANINGS.index)  # shuffled
    with pytest.raises(ValueError, match="moderate"):
        generate_articles({"moderate": 3}, seed=1)
    with pytest.raises(ValueError, match="unknown topics"):
        generate_articles({"left": 3}, seed=1, topics=["gardening"])


def test_generation_is_deterministic_and_ignores_global_rng():
    counts = {"left": 5, "center": 5, "right": 5}
    random.seed(1)
    np.random.seed(1)
    a = generate_articles(counts, seed=42)
    random.seed(2)
    np.random.seed(2)
    b = generate_articles(counts, seed=42)
    c = generate_articles(counts, seed=43)
    assert a == b
    assert [r["text"] for r in a] != [r["text"] for r in c]


def test_generate_corpus_uses_the_mix():
    rows = generate_corpus(20, {"left": 0.1, "center": 0.2, "right": 0.7}, seed=5)
    assert [r["label"] for r in rows].count("right") == 14


def test_text_format_matches_the_splitter():
    """split_sentences must cut a body exactly into the generated sentences."""
    lo, hi = load_grammar().article_sentences
    for article in sampled_articles(300, seed=4):
        pieces = split_sentences(article.text)
        assert pieces == [s.text for s in article.sentences]
        assert lo <= len(pieces) <= hi
        assert article.text.isascii() and article.title.isascii()
        assert all(p[-1] in ".!?" and (p[0].isupper() or p[0] == '"') for p in pieces)
        assert not re.search(r"[.!?]$", article.title)
        assert 100 <= len(article.text.split()) <= 320


def test_vocabulary_is_modest_but_articles_vary():
    rows = generate_articles({"left": 300, "center": 300, "right": 300}, seed=9)
    words = {w for r in rows for w in re.findall(r"[A-Za-z0-9'-]+", r["title"] + " " + r["text"])}
    assert 1000 < len(words) < 3000
    assert len({r["text"] for r in rows}) == len(rows)
    first_sentences = [split_sentences(r["text"])[0] for r in rows]
    assert len(set(first_sentences)) > 0.95 * len(rows)


# -- oracle: exactness ----------------------------------------------------------------


def test_round_trip_likelihood_equals_generator_probability(oracle):
    """Each generated sentence parses, and its likelihood under the article's topic and
    leaning is exactly the generator's probability (derivations are unique)."""
    for article in sampled_articles(200, seed=11):
        for s in article.sentences:
            by_topic = oracle.score_sentence_by_topic(s.text)
            assert by_topic is not None, s.text
            assert by_topic[article.topic][article.leaning] == pytest.approx(s.logprob, rel=1e-9, abs=1e-9)
            marginal = oracle.score_sentence(s.text)
            for lean in LEANINGS:
                expected = np.logaddexp.reduce([by_topic[t][lean] for t in TOPICS]) - math.log(len(TOPICS))
                assert marginal[lean] == pytest.approx(expected, rel=1e-9)


def test_text_posterior_is_the_exact_article_posterior(oracle):
    """Because topic-specific sentences name their topic and leaning-free fillers cancel,
    the per-sentence product equals the posterior given the true topic."""
    for article in sampled_articles(30, seed=12):
        loglik = np.array([sum(oracle.score_sentence_by_topic(s.text)[article.topic][l]
                               for s in article.sentences) for l in LEANINGS])
        exact = np.exp(loglik - loglik.max())
        exact /= exact.sum()
        got = oracle.score_text(article.text)
        assert [got["p_left"], got["p_center"], got["p_right"]] == pytest.approx(list(exact), rel=1e-6, abs=1e-12)


def test_probabilities_sum_to_one_over_a_small_frame():
    """Summing the oracle over every realisation of a frame gives the frame's probability."""
    g = load_grammar()
    oracle = Oracle()
    tpl = next(t for t in g.by_class["body"] if t.text == "The {chamber} will reconvene on {weekday}.")
    total = sum(oracle.sentence_probs(f"The {c} will reconvene on {d}.")
                for c in g.banks["chamber"].phrases for d in g.banks["weekday"].phrases)
    np.testing.assert_allclose(total, tpl.probs)


def test_neutral_and_loaded_sentences(oracle):
    neutral = oracle.score_sentence("The vote is expected to be close.")
    assert neutral["left"] == pytest.approx(neutral["center"]) == pytest.approx(neutral["right"])
    loaded = oracle.score_sentence("For many illegal aliens, the stakes could hardly be higher.")
    assert loaded["right"] > loaded["center"] and loaded["right"] > loaded["left"]
    loaded = oracle.score_sentence("For many undocumented immigrants, the stakes could hardly be higher.")
    assert max(loaded, key=loaded.get) == "left"
    shares = []
    for article in sampled_articles(60, seed=13):
        for s in article.sentences:
            ll = oracle.score_sentence(s.text)
            shares.append(max(ll.values()) - min(ll.values()) < 1e-12)
    assert 0.05 < np.mean(shares) < 0.5  # some neutral sentences, most carry a signal


def test_oracle_normalises_whitespace_and_rejects_foreign_text(oracle):
    assert oracle.score_sentence("  The vote   is expected\nto be close. ") is not None
    assert oracle.score_sentence("The cat sat on the mat.") is None
    assert oracle.score_sentence("") is None
    assert oracle.score_sentence("the vote is expected to be close.") is None


# -- oracle: done-when targets --------------------------------------------------------


def test_oracle_recovers_leaning_on_held_out_articles(oracle, held_out):
    scores = oracle.score_texts([r["text"] for r in held_out])
    accuracy = np.mean(scores["oracle_label"].to_numpy() == np.array([r["label"] for r in held_out]))
    assert accuracy >= 0.98
    assert scores["oracle_valid_share"].mean() >= 0.99
    assert (scores["oracle_n_sentences"] >= 10).all()


def test_word_shuffled_articles_are_invalid(oracle, held_out):
    rng = random.Random(0)

    def shuffle_words(text):
        words = text.split()
        rng.shuffle(words)
        return " ".join(words)

    scores = oracle.score_texts([shuffle_words(r["text"]) for r in held_out[:200]])
    assert scores["oracle_valid_share"].mean() < 0.1


def test_corrupted_sentences_are_invalid(oracle, held_out):
    rng = random.Random(1)
    sentences = [s for r in held_out[:100] for s in split_sentences(r["text"])]

    def drop_word(s):
        w = s.split()
        i = rng.randrange(len(w))
        return " ".join(w[:i] + w[i + 1:])

    def duplicate_word(s):
        w = s.split()
        i = rng.randrange(len(w))
        return " ".join(w[:i + 1] + w[i:])

    def random_chars(s):
        i = rng.randrange(len(s))
        return s[:i] + "".join(rng.choice(string.ascii_letters) for _ in range(3)) + s[i:]

    def valid_share(corrupt):
        return np.mean([oracle.score_sentence(corrupt(s)) is not None for s in sentences])

    # Dropping a word can rarely leave another sentence of the world
    # ("MAGA Republicans" -> "Republicans"), hence a small tolerance.
    assert valid_share(drop_word) < 0.03
    assert valid_share(duplicate_word) < 0.01
    assert valid_share(random_chars) < 0.01


def test_partial_edges(oracle, held_out):
    text = held_out[0]["text"]
    sentences = split_sentences(text)
    cut = text[len(sentences[0]) // 2: len(text) - len(sentences[-1]) // 2]  # mid-sentence at both ends
    strict = oracle.score_text(cut)
    lenient = oracle.score_text(cut, partial_edges=True)
    assert strict["n_sentences"] == len(sentences)
    assert strict["n_valid"] == len(sentences) - 2
    assert lenient["n_sentences"] == lenient["n_valid"] == len(sentences) - 2
    assert lenient["valid_share"] == 1.0
    assert lenient["label"] == strict["label"]
    # A broken last piece that does end with a period is a real sentence, counted invalid.
    broken_end = oracle.score_text(cut + " Vote the close expected.", partial_edges=True)
    assert broken_end["n_sentences"] == len(sentences) - 1 and broken_end["n_valid"] == len(sentences) - 2
    # Interior garbage is never excused.
    middle = " ".join(sentences[:3] + ["Banana banana banana."] + sentences[3:])
    assert oracle.score_text(middle, partial_edges=True)["n_valid"] == len(sentences)
    assert oracle.score_text(middle, partial_edges=True)["n_sentences"] == len(sentences) + 1
    # A single fragment is excluded entirely.
    lone = oracle.score_text("the border crisis and", partial_edges=True)
    assert lone["n_sentences"] == 0 and lone["label"] is None


def test_an_edge_piece_longer_than_any_world_sentence_is_no_cut_sentence(oracle, held_out):
    """An unbroken loop at a continuation's end is the model's own text, not half a sentence of the world."""
    from selfconsuming.scoring import article_oracle_scores

    longest = max(len(s) for a in held_out for s in split_sentences(a["text"]))
    assert longest <= oracle.max_sentence_chars < 2 * longest  # the bound is the world's, and not loose
    sentence = split_sentences(held_out[0]["text"])[1]
    loop = '"Every dollar we take is' + " a dollar" * (oracle.max_sentence_chars // 9 + 1)
    for pieces in ([" to measure. " + sentence + " " + loop], [" in a" + " a dollar" * 40]):
        text = " ".join(pieces)
        scored = oracle.score_text(text, partial_edges=True)
        assert scored["n_sentences"] == scored["n_valid"] + 1  # the loop counts, invalid
        article = article_oracle_scores(oracle, pieces, partial_edges=True)
        assert article["oracle_n_sentences"] == scored["n_sentences"]
    cut_short = oracle.score_text(" to measure. " + sentence + ' "Every dollar we take is', partial_edges=True)
    assert cut_short["n_sentences"] == cut_short["n_valid"] == 1  # a short cut fragment is still excused


def test_score_text_without_valid_sentences(oracle):
    for text in ["", "Nothing here parses at all.", "   "]:
        result = oracle.score_text(text)
        assert result["label"] is None and result["n_valid"] == 0
        assert result["p_left"] == result["p_center"] == result["p_right"] == pytest.approx(1 / 3)
    assert oracle.score_text("")["valid_share"] == 0.0


def test_score_texts_frame(oracle, held_out):
    texts = [r["text"] for r in held_out[:5]] + ["Gibberish words here."]
    frame = oracle.score_texts(texts)
    assert list(frame.columns) == ["oracle_n_sentences", "oracle_valid_share", "oracle_p_left",
                                   "oracle_p_center", "oracle_p_right", "oracle_label"]
    assert len(frame) == 6
    one = oracle.score_text(texts[2])
    assert frame.loc[2, "oracle_p_right"] == one["p_right"] and frame.loc[2, "oracle_label"] == one["label"]
    np.testing.assert_allclose(frame[["oracle_p_left", "oracle_p_center", "oracle_p_right"]].sum(axis=1), 1.0)
    assert pd.isna(frame.loc[5, "oracle_label"]) and frame.loc[5, "oracle_valid_share"] == 0.0


def test_leaning_is_learnable_from_words(held_out):
    """Loaded terms are strong enough for a bag-of-words classifier (macro F1 >= 0.9)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    train = generate_articles({"left": 300, "center": 300, "right": 300}, seed=777)
    vectoriser = TfidfVectorizer(sublinear_tf=True)
    features = vectoriser.fit_transform([r["text"] for r in train])
    model = LogisticRegression(max_iter=2000, C=10.0).fit(features, [r["label"] for r in train])
    predicted = model.predict(vectoriser.transform([r["text"] for r in held_out]))
    assert f1_score([r["label"] for r in held_out], predicted, average="macro") >= 0.9


# -- grammar validation --------------------------------------------------------------

MINI_COMMON = """
loaded_weights: {own: 0.6, other: 0.2}
body_kinds: {neutral: 1.0}
article_sentences: [2, 3]
sticky: [city]
banks:
  city: [Reno, Omaha]
  word: [alpha, beta]
templates:
  title: ['News from {city}']
  lead: ['On Monday, {city} met.']
  neutral: ['%s']
"""
MINI_TOPICS = """
one:
  banks: {thing: [a cat, a dog]}
two:
  banks: {thing: [%s, a cow]}
"""


def write_world(tmp_path, neutral="The {word} saw {thing}.", thing="a fox"):
    (tmp_path / "common.yaml").write_text(MINI_COMMON % neutral)
    (tmp_path / "topics.yaml").write_text(MINI_TOPICS % thing)
    return str(tmp_path)


def test_a_small_world_loads(tmp_path):
    g = load_grammar(write_world(tmp_path))
    assert g.topics == ("one", "two")
    oracle = Oracle(g)
    probs = oracle.sentence_probs("The alpha saw a cow.")
    np.testing.assert_allclose(probs, [[0, 0, 0], [0.25, 0.25, 0.25]])


@pytest.mark.parametrize("neutral,thing,message", [
    ("The {word} saw {thing}.", "a cat", "shared between topics"),
    ("In {city} and {city}, {word} rose.", "a fox", "sticky slot twice"),
    ("The {word} saw {nothing}.", "a fox", "unknown slot"),
    ("The {word} saw {thing}", "a fox", "must end with"),
    ("On {word} we saw {thing}.", "a fox", "share first words"),
])
def test_bad_worlds_are_rejected(tmp_path, neutral, thing, message):
    with pytest.raises(ValueError, match=message):
        load_grammar(write_world(tmp_path, neutral, thing))


def test_article_oracle_counts_each_distinct_sentence_once(oracle, held_out):
    """A loop of one valid sentence is not valid text and adds no leaning evidence."""
    from selfconsuming.scoring import article_oracle_scores, oracle_table

    article = next(a for a in held_out if len(set(split_sentences(a["text"]))) == len(split_sentences(a["text"])))
    plain = article_oracle_scores(oracle, [article["text"]], partial_edges=False)
    exact = oracle.score_text(article["text"])
    assert plain["oracle_valid_share"] == plain["oracle_parsed_share"] == exact["valid_share"] == 1.0
    assert plain["oracle_label"] == exact["label"]
    assert np.isclose(plain["oracle_p_right"], exact["p_right"])

    first, *rest = split_sentences(article["text"])
    looped = " ".join([first] * 9 + rest)  # greedy decoding's loop: one sentence nine times
    scores = article_oracle_scores(oracle, [looped], partial_edges=False)
    n = 9 + len(rest)
    assert scores["oracle_n_sentences"] == n
    assert scores["oracle_parsed_share"] == 1.0
    assert np.isclose(scores["oracle_valid_share"], (1 + len(rest)) / n)
    assert np.isclose(scores["oracle_p_right"], exact["p_right"])  # the repeats carry no new evidence

    # repeats are found across continuations too, and edge fragments are dropped as before
    pieces = [f"ment cut mid-word. {first} {rest[0]}", f"{first} {rest[1]} and a cut"]
    table = oracle_table([{"id": "a", "text": " ".join(pieces), "continuations": pieces}])
    assert table.loc[0, "oracle_n_sentences"] == 4
    assert np.isclose(table.loc[0, "oracle_valid_share"], 3 / 4)
    assert np.isclose(table.loc[0, "oracle_parsed_share"], 1.0)

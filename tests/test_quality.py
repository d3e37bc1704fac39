import json
import math
import os

import numpy as np
import pytest

from tiny_models import save_tiny_bert, save_tiny_gpt2

from selfconsuming import quality as q
from selfconsuming.text import split_sentences

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SUBJECTS = ["The mayor", "A local teacher", "The union leader", "Our reporter", "The new coach",
            "A young farmer", "The health minister", "Several residents", "The company founder", "A city judge"]
VERBS = ["visited", "criticised", "praised", "described", "opened", "questioned", "defended", "inspected"]
OBJECTS = ["the old train station", "a controversial housing plan", "the crowded river market",
           "the proposed tax on fuel", "a small family bakery", "the hospital's emergency ward",
           "the annual harvest festival", "a report on school lunches"]
ENDINGS = ["on Tuesday morning", "after weeks of debate", "despite heavy rain", "in front of cameras",
           "for the first time", "without any warning", "during a long interview"]


def english_sentences(n, seed):
    rng = np.random.default_rng(seed)
    return [f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(ENDINGS)}."
            for _ in range(n)]


def articles(n_articles, per_article, seed):
    sents = english_sentences(n_articles * per_article, seed)
    return [" ".join(sents[i * per_article:(i + 1) * per_article]) for i in range(n_articles)]


class FixedDetector:
    """Returns the same probability row for every sentence."""

    def __init__(self, row):
        self.row = np.asarray(row, dtype=float)
        self.calls = 0

    def predict_proba(self, sentences):
        self.calls += 1
        return np.tile(self.row, (len(sentences), 1))


# --- corruptions and dataset ---------------------------------------------------

def test_corruptions_change_sentence_as_described():
    rng = np.random.default_rng(0)
    s = "The mayor visited the old train station on Tuesday morning."
    assert q.corrupt_sentence(s, "clean", rng) == s
    salad = q.corrupt_sentence(s, "word_salad", rng)
    assert salad != s and salad.endswith(".")
    assert sorted(w.lower() for w in salad[:-1].split()) == sorted(w.lower() for w in s[:-1].split())
    mild = q.corrupt_sentence(s, "mild", rng)
    assert mild != s and abs(len(mild.split()) - len(s.split())) <= 2
    noise = q.corrupt_sentence(s, "noise", rng)
    assert not set(noise.lower().split()) & {"mayor", "visited", "station"}
    looped = q.corrupt_sentence(s, "repeated", rng)
    assert len(looped.split()) >= len(s.split()) + 4 and looped.endswith(".")
    with pytest.raises(ValueError, match="corruption kind"):
        q.corrupt_sentence(s, "typo", rng)


def test_loop_and_glue_make_the_loops_and_seams_they_label():
    rng = np.random.default_rng(1)
    sents = english_sentences(8, 7)
    looped, labels = q.loop_article(sents, rng)
    m = labels.count("clean")
    assert looped[:m] == sents[:m] and labels.count("repeated") >= 2
    assert all(s in sents[:m] for s, label in zip(looped, labels) if label == "repeated")
    pieces, labels = q.glue_fragments(sents, rng)
    assert "fragment" in labels
    assert all((p in sents) == (label == "clean") for p, label in zip(pieces, labels))


def test_context_features_see_repeats_loops_and_open_ends():
    a, b = english_sentences(2, 3)
    feats = q.context_features([[a, b, a, a, "and then the mayor", "The vote the vote the vote the vote passed."]])
    col = {name: feats[:, i] for i, name in enumerate(q.CONTEXT_FEATURES)}
    np.testing.assert_allclose(col["prior_copies"][:4], np.log1p([0, 0, 1, 2]))
    assert col["many_prior_copies"].tolist()[:4] == [0, 0, 0, 1]
    assert col["prior_ngram_share"][2] == 1.0 and col["prior_ngram_share"][0] == 0.0
    assert col["recent_repeat_share"][3] > 0 and col["recent_repeat_share"][1] == 0
    assert col["starts_lower"][4] == 1 and col["ends_open"][4] == 1 and col["ends_open"][0] == 0
    assert col["self_loop_share"][5] > 0.3 and col["self_loop_share"][0] == 0
    # a sentence alone has no context
    assert q.context_features([[a], [a]])[:, 0].tolist() == [0, 0]


def _fluency(sentence, model):
    row = model.transform(_frame([sentence]))[0]
    return dict(zip(q.FLUENCY_FEATURES, row))


def _frame(sentences):
    import pandas as pd

    return pd.DataFrame({"sentence": sentences})


def test_word_fluency_tells_slips_that_one_edit_mends_from_seams():
    reference = english_sentences(400, 0)
    model = q.WordFluency(reference=reference).fit(_frame([]))
    clean = _fluency("The mayor visited the old train station on Tuesday morning.", model)
    assert clean["unseen_bigrams"] == 0 and clean["unseen_trigrams"] == 0 and clean["longest_seen_run"] == 1.0
    assert clean["first_break_position"] == 1.0 and clean["unrepairable_breaks"] == 0
    slips = ["The mayor visited the train station on Tuesday morning.",             # "old" dropped
             "The mayor visited the old old train station on Tuesday morning.",     # "old" doubled
             "The mayor visited old the train station on Tuesday morning."]         # two words swapped
    for slip in slips:
        row = _fluency(slip, model)
        assert row["repairable_breaks"] > 0 and row["unrepairable_breaks"] == 0, (slip, row)
        assert row["min_logprob"] < clean["min_logprob"]
    assert _fluency(slips[1], model)["doubled_words"] == pytest.approx(np.log1p(1))
    seam = _fluency("The mayor visited the old a report on school lunches for the first time.", model)
    assert seam["unrepairable_breaks"] > 0 and seam["longest_seen_run"] < 1.0
    # "Group Group": names map to <cap>, the doubling is still counted
    assert _fluency("The Civic Group Group said so.", model)["doubled_words"] > 0


def test_word_fluency_without_reference_leaves_each_sentence_out():
    sents = english_sentences(50, 1)
    unique = "A city judge inspected the annual harvest festival without any warning."
    frame = _frame(sents + [unique])
    left_out = q.WordFluency().fit_transform(frame)
    counted = q.WordFluency().fit(frame).transform(frame)
    col = q.FLUENCY_FEATURES.index("unseen_trigrams")
    # a training sentence sees the statistic an unseen sentence would, not its own n-grams
    assert left_out[:, col].sum() > counted[:, col].sum() == 0


def test_detector_dataset_disjoint_sources_balanced_and_seeded():
    texts = q.detector_world_texts(120, seed=3)
    data = q.build_detector_dataset(texts, seed=0, max_sentences=600)
    examples = data[data["split"] != "reference"]
    counts = examples.groupby("label").size()
    assert set(counts.index) == set(q.CLASSES) and counts.max() <= 100
    # no source article serves two classes or both splits
    assert examples.groupby("article")[["label", "split"]].nunique().max().max() == 1
    # (the world itself repeats stock sentences across articles, so sentences may recur; articles do not)
    assert not set(data.query("split == 'train'")["article"]) & set(data.query("split == 'test'")["article"])
    pd_testing = pytest.importorskip("pandas").testing
    pd_testing.assert_frame_equal(data, q.build_detector_dataset(texts, seed=0, max_sentences=600))
    with pytest.raises(ValueError, match="at least"):
        q.build_detector_dataset(["Too short. Really."], seed=0)


# --- scoring -----------------------------------------------------------------

def test_expected_and_study_scoring_by_hand():
    probs = np.array([[0.5, 0.0, 0.1, 0.4],    # expected 1.5 + 0.1 = 1.6; study: clean -> 3
                      [0.1, 0.2, 0.3, 0.4],    # expected 0.3 + 0.4 + 0.3 = 1.0; study: noise -> 0
                      [0.4, 0.0, 0.0, 0.6]])   # expected 1.2; study: noise -> 0
    np.testing.assert_allclose(q.sentence_scores(probs, "expected"), [1.6, 1.0, 1.2])
    np.testing.assert_allclose(q.sentence_scores(probs, "study"), [3.0, 0.0, 0.0])
    six = np.array([[0.1, 0.1, 0.0, 0.0, 0.7, 0.1],   # repeated: expected 0.3 + 0.2 + 0.7 + 0.1 = 1.3
                    [0.3, 0.0, 0.0, 0.0, 0.0, 0.7]])  # fragment: 0.9 + 0.7 = 1.6
    np.testing.assert_allclose(q.sentence_scores(six, "expected"), [1.3, 1.6])
    # study = the value of the argmax class, whatever its probability
    rng = np.random.default_rng(0)
    random = rng.dirichlet(np.ones(6), size=50)
    np.testing.assert_array_equal(q.sentence_scores(random, "study"), q.CLASS_VALUES[random.argmax(axis=1)])
    with pytest.raises(ValueError, match="scoring"):
        q.sentence_scores(probs, "top")
    with pytest.raises(ValueError, match="shape"):
        q.sentence_scores(np.ones((2, 3)))


def test_tqi_averages_sentences_batches_once_and_empty_is_nan():
    det = FixedDetector([0.5, 0.0, 0.1, 0.4])
    texts = ["One sentence here. And two here.", "", "Single line without a stop"]
    tqi, per_sentence = q.text_quality_index(texts, det)
    assert det.calls == 1
    assert [len(s) for s in per_sentence] == [2, 0, 1]
    np.testing.assert_allclose(tqi[[0, 2]], [1.6, 1.6])
    assert math.isnan(tqi[1])
    tqi_study, _ = q.text_quality_index(texts, det, scoring="study")
    np.testing.assert_allclose(tqi_study[[0, 2]], [3.0, 3.0])
    all_empty, _ = q.text_quality_index(["", "   "], det)
    assert np.isnan(all_empty).all()


def test_tqi_rejects_bad_detector_output():
    class Wrong:
        def predict_proba(self, sentences):
            return np.ones((len(sentences), 3))

    with pytest.raises(ValueError, match="detector returned shape"):
        q.text_quality_index(["A sentence."], Wrong())


@pytest.fixture(scope="module")
def trained_detector(tmp_path_factory):
    out = tmp_path_factory.mktemp("det") / "detector"
    texts = q.detector_world_texts(1200, seed=5)
    metrics = q.train_gibberish_detector(texts, seed=0, out_dir=out, max_sentences=12000)
    return out, metrics


def test_trained_detector_saves_reports_and_reloads(trained_detector):
    out, metrics = trained_detector
    saved = json.loads((out / "detector.json").read_text())
    assert saved["classes"] == list(q.CLASSES) and saved["accuracy"] == metrics["accuracy"]
    assert set(metrics["recall"]) == set(q.CLASSES) and set(metrics["f1"]) == set(q.CLASSES)
    assert metrics["n_train"] + metrics["n_test"] <= 12000
    assert np.sum(metrics["confusion"]["rows_true"]) == metrics["n_test"]
    det = q.load_gibberish_detector(str(out))
    probs = det.predict_proba(["The mayor visited a small family bakery during a long interview."])
    assert probs.shape == (1, 6) and probs.sum() == pytest.approx(1.0)


def test_held_out_recall_per_class(trained_detector):
    recall = trained_detector[1]["recall"]
    for kind in q.CLASSES:
        assert recall[kind] >= 0.9, recall


@pytest.fixture(scope="module")
def fresh_world():
    from selfconsuming.prepare import world_articles

    return [a["text"] for a in world_articles("test-quality", {"left": 10, "center": 10, "right": 10}, 11)]


def test_degenerate_articles_score_below_their_clean_source(trained_detector, fresh_world):
    det = q.load_gibberish_detector(str(trained_detector[0]))
    rng = np.random.default_rng(5)
    sources = [split_sentences(t) for t in fresh_world]
    looped = [" ".join(s[:2] + s[1:3] * 8) for s in sources]                   # a loop of 2 sentences
    phrase = [" ".join(q.phrase_loop(x, rng) for x in s) for s in sources]      # looping phrases
    glued = [" ".join(q.glue_fragments(s, rng, 6, 20)[0]) for s in sources]    # block-edge seams
    salad = [" ".join(q.corrupt_sentence(x, "word_salad", rng) for x in s) for s in sources]
    noise = [" ".join(q.corrupt_sentence(x, "noise", rng) for x in s) for s in sources]
    clean, _ = q.text_quality_index(fresh_world, det)
    assert clean.mean() > 2.7
    for name, texts in [("looped", looped), ("phrase", phrase), ("glued", glued), ("salad", salad)]:
        tqi, _ = q.text_quality_index(texts, det)
        assert (tqi < clean).mean() >= 0.9, name
        assert tqi.mean() < clean.mean() - 0.8, (name, tqi.mean(), clean.mean())
    tqi_noise, _ = q.text_quality_index(noise, det)
    assert tqi_noise.mean() < 0.5
    # the loop is seen through the article context: sentence by sentence alone it scores higher
    in_context, _ = q.text_quality_index(looped, det)
    alone = [q.sentence_scores(det.predict_proba(split_sentences(t))).mean() for t in looped]
    assert np.mean(alone) > in_context.mean() + 1.0 and (np.asarray(alone) > in_context).all()


def test_study_tqi_is_mean_argmax_value(trained_detector, fresh_world):
    det = q.load_gibberish_detector(str(trained_detector[0]))
    texts = fresh_world[:5]
    tqi, per_sentence = q.text_quality_index(texts, det, scoring="study")
    probs = det.predict_proba_articles([split_sentences(t) for t in texts])
    flat = np.concatenate(per_sentence)
    np.testing.assert_array_equal(flat, q.CLASS_VALUES[probs.argmax(axis=1)])
    np.testing.assert_allclose(tqi, [p.mean() for p in per_sentence])


# --- transformers detector ---------------------------------------------------

def _tiny_bert(folder, id2label):
    words = {w.strip(".,").lower() for s in english_sentences(200, 0) for w in s.split()}
    return save_tiny_bert(folder, words, id2label)


def test_transformers_detector_maps_hub_labels(tmp_path):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    # the hub detector's order: 0 clean, 1 mild gibberish, 2 noise, 3 word salad
    folder = _tiny_bert(tmp_path / "bert", {0: "clean", 1: "mild gibberish", 2: "noise", 3: "word salad"})
    det = q.load_gibberish_detector(str(folder), batch_size=2)
    sents = english_sentences(5, 3) + ["x " * 300]  # the last one needs truncation
    probs = det.predict_proba(sents)
    assert probs.shape == (6, 6) and not probs[:, 4:].any()  # a 4-class model says nothing of repeated/fragment
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)

    model = AutoModelForSequenceClassification.from_pretrained(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    with torch.no_grad():
        raw = torch.softmax(model(**tok(sents[:1], return_tensors="pt")).logits, -1).numpy()[0]
    # CLASSES order (clean, mild, word_salad, noise) <- model order (clean, mild, noise, word salad)
    np.testing.assert_allclose(probs[0, :4], raw[[0, 1, 3, 2]], atol=1e-5)
    # the study's scoring of a 4-class detector: the value of the argmax class
    tqi, _ = q.text_quality_index([" ".join(sents[:5])], det, scoring="study")
    assert tqi[0] == pytest.approx(np.mean(q.CLASS_VALUES[probs[:5].argmax(axis=1)]))


def test_transformers_detector_generic_labels_need_label_map(tmp_path):
    folder = _tiny_bert(tmp_path / "bert", {i: f"LABEL_{i}" for i in range(4)})
    with pytest.raises(ValueError, match="label_map"):
        q.load_gibberish_detector(str(folder))
    det = q.load_gibberish_detector(str(folder), label_map={0: "clean", 1: "mild", "2": "noise", "LABEL_3": "word salad"})
    assert list(det.columns) == [0, 1, 3, 2]
    with pytest.raises(ValueError, match="no entry for model label 3"):
        q.load_gibberish_detector(str(folder), label_map={0: "clean", 1: "mild", 2: "noise"})


# --- perplexity --------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_gpt2(tmp_path_factory):
    from selfconsuming.models import load_causal_lm, load_tokenizer

    folder = save_tiny_gpt2(tmp_path_factory.mktemp("gpt2") / "model", english_sentences(300, 0), n_positions=64)
    return load_causal_lm(folder), load_tokenizer(folder)


def test_sliding_windows_score_every_token_once():
    for n, window, stride in [(10, 4, 2), (10, 4, 4), (3, 8, 4), (9, 5, 3)]:
        windows = q.sliding_windows(n, window, stride)
        assert sum(n_new for _, _, n_new in windows) == n
        assert windows[-1][1] == n
        assert all(end - begin <= window and n_new <= end - begin for begin, end, n_new in windows)


def test_perplexity_matches_model_loss_and_batching(tiny_gpt2):
    import torch

    model, tok = tiny_gpt2
    texts = english_sentences(6, 4)
    texts[2] = " ".join(texts[:3])  # longer than the others: padding in a batch
    batched = q.article_perplexities(texts, model, tok, batch_size=4)
    alone = np.array([q.article_perplexities([t], model, tok, batch_size=1)[0] for t in texts])
    np.testing.assert_allclose(batched, alone, rtol=1e-4)
    ids = tok(texts[0], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        loss = model(input_ids=ids, labels=ids).loss.item()
    assert batched[0] == pytest.approx(math.exp(loss), rel=1e-4)


def test_perplexity_sliding_window_and_edge_cases(tiny_gpt2):
    model, tok = tiny_gpt2
    long_text = " ".join(english_sentences(20, 5))
    assert len(tok(long_text)["input_ids"]) > 3 * 64
    ppl = q.article_perplexities([long_text, "", "a"], model, tok)  # window = the model's 64 positions
    assert np.isfinite(ppl[0]) and ppl[0] > 1
    assert np.isnan(ppl[1]) and np.isnan(ppl[2])
    # a smaller window gives a similar value (random model: context matters little)
    small = q.article_perplexities([long_text], model, tok, max_length=32, stride=16)[0]
    assert small == pytest.approx(ppl[0], rel=0.1)
    with pytest.raises(ValueError, match="stride"):
        q.article_perplexities([long_text], model, tok, max_length=16, stride=32)


def test_repeated_text_lower_perplexity_after_training_on_it(tiny_gpt2):
    import copy

    import torch

    model, tok = tiny_gpt2
    model = copy.deepcopy(model).train()
    seen = "The mayor visited the old train station on Tuesday morning."
    unseen = "A city judge questioned the proposed tax on fuel without any warning."
    before = q.article_perplexities([seen, unseen], model, tok)
    ids = tok(seen, return_tensors="pt")["input_ids"]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    torch.manual_seed(0)
    for _ in range(20):
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    after = q.article_perplexities([seen, unseen], model, tok)
    assert after[0] < before[0] / 2
    assert after[0] < after[1]


def test_whole_sentences_drop_the_pieces_cut_at_a_continuations_seams():
    cut = " to measure. A recent poll found 58 percent of voters in favour. \"We will see,\" she said. A report from"
    assert q.whole_sentences(cut) == ["A recent poll found 58 percent of voters in favour.", "\"We will see,\" she said."]
    # a piece that opens like a sentence and ends with its stop is whole, wherever it sits
    assert q.whole_sentences("The mayor spoke. She left early!") == ["The mayor spoke.", "She left early!"]
    # one piece (a loop with no stop, or a short continuation) is kept so every continuation counts
    assert q.whole_sentences("a dollar a dollar a dollar a dollar") == ["a dollar a dollar a dollar a dollar"]
    # two halves and nothing whole between them: nothing to score
    assert q.whole_sentences("of the bill. The mayor said that") == []
    assert q.whole_sentences("") == []


def test_tqi_sentences_rules():
    pieces = [" of the bill. The mayor spoke. The council", " met on Monday. Voters were told. And then"]
    synthetic = {"text": "".join(pieces).strip(), "continuations": pieces}
    human = {"text": "The mayor spoke. the council met"}
    assert q.tqi_sentences(synthetic, "whole") == ["The mayor spoke.", "Voters were told."]
    assert q.tqi_sentences(synthetic, "all") == split_sentences(synthetic["text"])
    assert len(q.tqi_sentences(synthetic, "all")) == 5  # the seams glue halves into "sentences"
    for rule in q.TQI_SENTENCE_RULES:  # no continuations: every sentence, whatever the rule
        assert q.tqi_sentences(human, rule) == ["The mayor spoke.", "the council met"]
    with pytest.raises(ValueError, match="tqi_sentences"):
        q.tqi_sentences(human, "some")


class SeamDetector:
    """Clean for a sentence that opens with a capital and ends with a stop, fragment otherwise."""

    def predict_proba(self, sentences):
        whole = [s[:1].isupper() and s.endswith(".") for s in sentences]
        return np.array([[1.0, 0, 0, 0, 0, 0] if w else [0, 0, 0, 0, 0, 1.0] for w in whole])


def test_tqi_of_a_synthetic_corpus_skips_seam_fragments_and_the_filter_agrees():
    from selfconsuming.filtering import filter_score_values

    pieces = [" of the bill. The mayor spoke. The council", " approved it, he said. Voters were told. And then"]
    corpus = [{"id": "a", "text": "".join(pieces).strip(), "continuations": pieces},
              {"id": "h", "text": "The mayor spoke. the council met"}]
    det = SeamDetector()
    np.testing.assert_allclose(q.articles_tqi(corpus, det, "expected", "whole"), [3.0, 2.0])
    np.testing.assert_allclose(q.articles_tqi(corpus, det, "expected", "all"), [2.2, 2.0])  # 3 of 5 pass, fragments are worth 1
    np.testing.assert_allclose(filter_score_values(corpus, "tqi", detector=det, tqi_sentences="whole"),
                               q.articles_tqi(corpus, det, "expected", "whole"))

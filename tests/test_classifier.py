"""The leaning classifier end to end on tiny data: TF-IDF and a tiny random BERT."""

import json
import os
import random
from collections import Counter

os.environ["HF_HUB_OFFLINE"] = "1"

import numpy as np
import pytest

from tiny_models import save_tiny_bert
import torch

from selfconsuming import LEANINGS
from selfconsuming.classifier import (
    default_params,
    article_text,
    fit_temperature,
    load_leaning_classifier,
    piece_splits,
    score_leaning,
    split_articles,
    train_classifiers,
)

torch.set_num_threads(1)

WORDS = {
    "left": "workers union equity climate justice healthcare wages progressive".split(),
    "center": "officials report data committee schedule analysts survey percent".split(),
    "right": "taxes border liberty freedom enterprise faith security deregulation".split(),
}
SHARED = "the a said on in and of new week state city people".split()


def synthetic_articles(per_label=40, seed=0):
    """Articles whose leaning shows in their vocabulary, with shared filler words."""
    rng = random.Random(seed)
    articles = []
    for label in LEANINGS:
        for i in range(per_label):
            words = rng.choices(WORDS[label], k=6) + rng.choices(SHARED, k=10)
            rng.shuffle(words)
            articles.append({"id": f"{label}-{i}", "title": f"{label} story {i}", "text": " ".join(words), "label": label})
    return articles


@pytest.fixture
def tiny_bert(tmp_path):
    """A randomly initialised 2-layer BERT with a word-level vocab, saved like a hub model."""
    words = {w for ws in WORDS.values() for w in ws} | set(SHARED) | {"left", "center", "right", "story"}
    return save_tiny_bert(tmp_path / "tiny-bert", words | {str(i) for i in range(10)}, max_positions=64)


def test_article_text_joins_title_and_body():
    assert article_text({"title": "T", "text": "Body."}) == "T\n\nBody."
    assert article_text({"title": "", "text": "Body."}) == "Body."
    assert article_text("already text") == "already text"


def test_split_is_stratified_and_seeded():
    articles = synthetic_articles(per_label=20)
    splits = split_articles(articles, seed=1)
    assert [len(splits[s]) for s in ("train", "valid", "test")] == [42, 9, 9]
    for part in splits.values():
        assert Counter(a["label"] for a in part) == {label: len(part) // 3 for label in LEANINGS}
    ids = [a["id"] for s in ("train", "valid", "test") for a in splits[s]]
    assert sorted(ids) == sorted(a["id"] for a in articles)
    assert splits == split_articles(articles, seed=1)


def test_split_uses_corpus_split_and_carves_test_from_valid():
    articles = synthetic_articles(per_label=10)
    for i, a in enumerate(articles):
        a["split"] = "train" if i % 10 < 6 else "valid"
    splits = split_articles(articles, seed=0)
    assert len(splits["train"]) == 18
    assert len(splits["valid"]) + len(splits["test"]) == 12 and len(splits["test"]) == 6
    assert {a["split"] for a in splits["test"]} == {"valid"}


def test_tfidf_end_to_end(tmp_path):
    articles = synthetic_articles()
    table = train_classifiers(articles, ["tfidf"], {"tfidf_C": [1.0, 10.0]}, tmp_path / "clf", seed=0)
    row = table.iloc[0]
    assert list(table.columns[:9]) == ["backbone", "val_macro_f1", "test_macro_f1", "val_accuracy", "test_accuracy",
                                       "n_train", "n_val", "n_test", "chosen"]
    assert row["chosen"] and row["n_train"] + row["n_val"] + row["n_test"] == len(articles)
    assert row["val_macro_f1"] > 0.8 and row["test_macro_f1"] > 0.8
    info = json.loads((tmp_path / "clf" / "classifier.json").read_text())
    assert info["kind"] == "sklearn" and info["labels"] == list(LEANINGS)

    classifier = load_leaning_classifier(tmp_path / "clf")
    scores = score_leaning(articles, classifier)
    assert list(scores.columns) == ["id", "p_left", "p_center", "p_right", "label"]
    assert np.allclose(scores[["p_left", "p_center", "p_right"]].sum(axis=1), 1)
    assert (scores["label"] == [a["label"] for a in articles]).mean() > 0.9
    texts = score_leaning(["workers union equity climate", "taxes border liberty freedom"], classifier)
    assert list(texts["label"]) == ["left", "right"] and "id" not in texts.columns


def test_tiny_bert_fine_tune_saves_loads_and_predicts(tmp_path, tiny_bert):
    articles = synthetic_articles(per_label=12)
    params = {"epochs": 1, "max_length": 32, "batch_size": 8, "learning_rate": 1e-3}
    out = tmp_path / "clf"
    table = train_classifiers(articles, [str(tiny_bert), "tfidf"], params, out, seed=0, chosen=str(tiny_bert))
    assert list(table["chosen"]) == [True, False]
    detail = json.loads(table.iloc[0]["detail"])
    assert detail["best_epoch"] == 1 and detail["temperature"] > 0
    info = json.loads((out / "classifier.json").read_text())
    assert info["kind"] == "transformers" and info["max_length"] == 32
    assert info["temperature"] == pytest.approx(detail["temperature"], rel=1e-3) and len(info["logit_offset"]) == 3
    assert (out / "model" / "config.json").is_file() and (out / "model" / "tokenizer_config.json").is_file()

    classifier = load_leaning_classifier(out)
    probs = classifier.predict_proba([article_text(a) for a in articles[:5]] + ["", "unseen zebra words"])
    assert probs.shape == (7, 3) and np.allclose(probs.sum(axis=1), 1) and (probs >= 0).all()
    # batching and length sorting do not change the answer
    assert np.allclose(probs, classifier.predict_proba([article_text(a) for a in articles[:5]] + ["", "unseen zebra words"], batch_size=2), atol=1e-5)
    # contextual calibration: the empty text's logits are the offset, so it scores exactly uniform
    assert np.allclose(probs[5], 1 / 3, atol=1e-6)


def test_ready_classifier_with_label_map(tmp_path, tiny_bert):
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    config = BertConfig.from_pretrained(tiny_bert, num_labels=3)  # id2label LABEL_0..2
    torch.manual_seed(1)
    model = BertForSequenceClassification(config).eval()
    folder = tmp_path / "ready"
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_bert).save_pretrained(folder)

    texts = ["workers union", "taxes border liberty", "report data"]
    tokenizer = AutoTokenizer.from_pretrained(folder)
    with torch.no_grad():
        raw = torch.softmax(model(**tokenizer(texts, padding=True, return_tensors="pt")).logits, -1).numpy()

    by_name = load_leaning_classifier(folder, label_map={"LABEL_0": "right", "LABEL_1": "left", "LABEL_2": "center"})
    assert np.allclose(by_name.predict_proba(texts), raw[:, [1, 2, 0]], atol=1e-5)
    by_index = load_leaning_classifier(folder, label_map={0: "right", "1": "Left", 2: "center"})
    assert np.allclose(by_index.predict_proba(texts), raw[:, [1, 2, 0]], atol=1e-5)

    with pytest.raises(ValueError, match="label_map"):
        load_leaning_classifier(folder)  # LABEL_0.. say nothing about leanings
    with pytest.raises(ValueError, match=r"\['center'\]"):
        load_leaning_classifier(folder, label_map={0: "left", 1: "right"})

    model.config.id2label = {0: "Right", 1: "LEFT", 2: "center"}
    model.config.label2id = {v: k for k, v in model.config.id2label.items()}
    model.save_pretrained(folder)
    from_config = load_leaning_classifier(folder)
    assert np.allclose(from_config.predict_proba(texts), raw[:, [1, 2, 0]], atol=1e-5)


def test_bad_arguments_name_the_key(tmp_path):
    articles = synthetic_articles(per_label=10)
    with pytest.raises(ValueError, match="classifier.chosen"):
        train_classifiers(articles, ["tfidf"], {}, tmp_path / "c", seed=0, chosen="minilm")
    with pytest.raises(ValueError, match="classifier.params"):
        train_classifiers(articles, ["tfidf"], {"learning_rat": 1}, tmp_path / "c", seed=0)
    with pytest.raises(ValueError, match="classifier.backbones"):
        train_classifiers(articles, [], {}, tmp_path / "c", seed=0)


def test_evidence_free_text_scores_near_uniform(tmp_path):
    """No learned preference: empty text and text of words every leaning uses alike score ~1/3 each."""
    train_classifiers(synthetic_articles(), ["tfidf"], {}, tmp_path / "clf", seed=0)
    classifier = load_leaning_classifier(tmp_path / "clf")
    texts = ["", " ".join(SHARED), " ".join(SHARED[:4]), "the said and of the city people week"]
    scores = score_leaning(texts, classifier)
    probs = scores[["p_left", "p_center", "p_right"]].to_numpy()
    assert np.abs(probs - 1 / 3).max() < 0.05, probs
    assert scores["label"].isna().all()  # no evidence, no label (shares skip it)
    # evidence still counts, after calibration as before
    assert list(score_leaning(["workers union equity", "taxes border liberty"], classifier)["label"]) == ["left", "right"]


def test_pieces_are_in_the_training_data(tmp_path, monkeypatch):
    """Each training article adds continuation-length pieces and fragments cut mid-sentence, with its label."""
    from sklearn.linear_model import LogisticRegression

    articles = synthetic_articles(per_label=20)
    for a in articles:  # long bodies, so windows are shorter than articles
        a["text"] = " ".join([a["text"]] * 12)
    params = {**default_params(), "tfidf_C": [1.0]}
    splits = split_articles(articles, seed=0)
    pieces = piece_splits(splits, params, seed=0)
    per_article = params["pieces_per_article"] + params["fragments_per_article"]
    assert len(pieces["train"]) == per_article * len(splits["train"])
    bodies = {a["id"]: a for a in articles}
    for piece in pieces["train"] + pieces["valid"]:
        source = bodies[piece["id"].split("#")[0]]
        low, high = params["piece_words" if piece["piece"] == "piece" else "fragment_words"]
        assert piece["label"] == source["label"] and piece["text"] in source["text"]
        assert low <= len(piece["text"].split()) <= high and piece["title"] == ""
    assert {p["id"].split("#")[0] for p in pieces["train"]} == {a["id"] for a in splits["train"]}

    fitted_rows = []
    fit = LogisticRegression.fit
    monkeypatch.setattr(LogisticRegression, "fit", lambda self, X, y, **kw: fitted_rows.append(X.shape[0]) or fit(self, X, y, **kw))
    table = train_classifiers(articles, ["tfidf"], {"tfidf_C": [1.0]}, tmp_path / "clf", seed=0)
    assert fitted_rows == [len(splits["train"]) + len(pieces["train"])]
    row = table.iloc[0]
    assert row["n_train_pieces"] == len(pieces["train"])
    assert 0 < row["val_piece_macro_f1"] <= 1 and 0 < row["test_piece_accuracy"] <= 1


def test_fit_temperature_recovers_the_temperature_that_made_the_labels():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3.0, size=(4000, 3))
    scaled = np.exp(logits / 2.5)
    labels = np.array([rng.choice(3, p=p / p.sum()) for p in scaled])
    assert fit_temperature(logits, labels) == pytest.approx(2.5, rel=0.1)


def test_config_block_maps_onto_training_parameters():
    """The schema holds every default: a validated config's classifier block is a full parameter set."""
    from selfconsuming.classifier import params_from_config
    from selfconsuming.config import schema_defaults

    block = {**schema_defaults("classifier"), "lr": 1e-4, "pieces_per_article": 5}
    params = params_from_config(block, allow_download=False)
    assert set(params) == set(default_params())
    assert params["learning_rate"] == 1e-4 and params["pieces_per_article"] == 5
    assert default_params()["learning_rate"] == schema_defaults("classifier")["lr"]

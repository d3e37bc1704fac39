"""The validity stage on world corpora whose leaning mix and damage are known.

Builds 40 stand-in "model corpora" of held-out world articles, each with its own
leaning mix (Dirichlet) and its own damage rate q (each sentence corrupted with
probability q by quality.corrupt_sentence, and with probability q the article falls
into a loop by quality.loop_article), plus a balanced clean "human" corpus and a
right-heavy clean "base" corpus. Scores them as the workflow does: the tfidf leaning
classifier trained on the default run's classifier corpus, the offline gibberish
detector (TQI), the world oracle (scoring.oracle_table), and perplexity under a
Laplace word-bigram model of a clean world sample (a cheap stand-in for the reference
LM). Then runs validity_table / validity_overall and writes the figure and HTML.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_validity.py [--out /tmp/bench_validity]
        [--backbone tfidf] [--params '{"tfidf_select_fdr": null}']
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from nltk.lm import Laplace
from nltk.lm.preprocessing import padded_everygram_pipeline
from nltk.util import bigrams, pad_sequence

from selfconsuming import LEANINGS, classifier, quality, validity
from selfconsuming.config import schema_defaults
from selfconsuming.prepare import classifier_corpus, world_articles
from selfconsuming.scoring import oracle_table
from selfconsuming.text import split_sentences

KINDS = ("mild", "word_salad", "noise", "repeated")


def damaged(text, q, rng):
    """The article with each sentence corrupted with probability q, and looping with probability q."""
    sentences = split_sentences(text)
    out = [quality.corrupt_sentence(s, str(rng.choice(KINDS)), rng)
           if rng.random() < q and len(s.split()) >= 3 else s for s in sentences]
    if rng.random() < q:
        out, _ = quality.loop_article(out, rng)
    return " ".join(out)


def bigram_lm(texts):
    """Laplace word-bigram model of clean text (the perplexity reference)."""
    train, vocab = padded_everygram_pipeline(2, [t.lower().split() for t in texts])
    lm = Laplace(2)
    lm.fit(train, vocab)
    return lm


def perplexity(lm, text):
    words = list(pad_sequence(text.lower().split(), 2, pad_left=True, left_pad_symbol="<s>",
                              pad_right=True, right_pad_symbol="</s>"))
    return float(lm.perplexity(list(bigrams(words))))


def corpora(pool, rng, n_models, size):
    """(corpus, setup, generation, articles) for human, base and the damaged model corpora."""
    by_label = {label: [a for a in pool if a["label"] == label] for label in LEANINGS}

    def draw(mix, q):
        labels = rng.choice(LEANINGS, size=size, p=mix)
        picks = [by_label[label][rng.integers(len(by_label[label]))] for label in labels]
        return [{"id": f"{a['id']}-{k}", "label": a["label"],
                 "text": damaged(a["text"], q, rng)} for k, a in enumerate(picks)]

    yield "human", "human", -1, draw(np.ones(3) / 3, 0.0)
    yield "base", "base", -1, draw(np.array([0.2, 0.2, 0.6]), 0.0)
    for m in range(n_models):
        setup = ("deterministic", "nucleus")[m % 2]
        generation = m // 2
        yield (f"{setup}/rep0/gen{generation}", setup, generation,
               draw(rng.dirichlet(np.ones(3)), float(rng.uniform(0, 0.9))))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="/tmp/bench_validity")
    parser.add_argument("--models", type=int, default=40)
    parser.add_argument("--size", type=int, default=30)
    parser.add_argument("--backbone", default="tfidf")
    parser.add_argument("--params", default="{}", help="classifier params as JSON")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    t0 = time.time()

    metrics = classifier.train_classifiers(
        classifier_corpus(schema_defaults("data"), 42), [args.backbone], json.loads(args.params),
        out / "classifier", seed=42)
    leaning = classifier.load_leaning_classifier(out / "classifier")
    quality.train_gibberish_detector(quality.detector_world_texts(300, 42), 42, out / "detector",
                                     max_sentences=5000)
    detector = quality.load_gibberish_detector(str(out / "detector"))
    lm = bigram_lm([a["text"] for a in world_articles("bench-lm", {l: 100 for l in LEANINGS}, 42)])
    print(f"instruments trained in {time.time() - t0:.0f}s")

    pool = world_articles("bench-validity", {l: 80 for l in LEANINGS}, 42)
    rng = np.random.default_rng(7)
    frames = []
    for corpus, setup, generation, articles in corpora(pool, rng, args.models, args.size):
        texts = [a["text"] for a in articles]
        tqi, _ = quality.text_quality_index(texts, detector)
        frame = pd.concat([classifier.score_leaning(texts, leaning),
                           oracle_table(articles)], axis=1)
        frame["tqi"] = tqi
        frame["ppl"] = [perplexity(lm, t) for t in texts]
        frame["id"] = [a["id"] for a in articles]
        frames.append(frame.assign(corpus=corpus, setup=setup, generation=generation,
                                   replicate=-1 if generation < 0 else 0))
    scores = pd.concat(frames, ignore_index=True)
    print(f"scored {scores['corpus'].nunique()} corpora in {time.time() - t0:.0f}s")

    table = validity.validity_table(scores)
    overall = validity.validity_overall(table, classifier_metrics=metrics)
    with pd.option_context("display.width", 200, "display.max_colwidth", 60):
        print(overall.drop(columns="note").to_string(index=False))
        print(table[["corpus", "oracle_n", "agreement", "kappa", "classifier_right_share",
                     "oracle_right_share", "tqi_mean", "oracle_valid_mean", "r_tqi_valid",
                     "ppl_median"]].head(8).to_string(index=False))
    validity.validity_figure(table, overall, out / "validity.png")
    (out / "validity.html").write_text(validity.validity_table_html(table, overall))
    print(f"done in {time.time() - t0:.0f}s; figure {out / 'validity.png'}")


if __name__ == "__main__":
    main()

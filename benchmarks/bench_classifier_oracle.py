"""The leaning classifier against the world's oracle on the kinds of text it scores.

Trains the classifier on the default run's classifier corpus (300 world articles per
leaning, seed 42), then scores held-out world text with the classifier and with the
oracle (partial_edges=True, as the workflow does for continuations):

- whole:     whole held-out articles (title and body);
- piece:     continuation-length windows (64-128 words) cut at arbitrary word positions;
- fragment:  8-30-word windows, mid-sentence at both ends;
- glued:     3-5 fragments glued together from articles of at least two leanings;
- repeated:  one sentence or one fragment of an article repeated 3-8 times.

Reports per kind the per-piece agreement with the oracle label (argmax, where the
oracle parsed at least one sentence and its posterior is not a tie), the right-share
correlation across 66 groups of 30 pieces with random leaning mixes (like 66 models),
the share called right among degenerate pieces that mostly do / do not parse, and the
probabilities given to evidence-free text (empty, only leaning-neutral words).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_classifier_oracle.py [--old path/to/classifier.py]
        [--backbones tfidf] [--out /tmp/clf]

`--old` trains and scores with another copy of classifier.py (e.g. the previous commit's)
so before and after are measured on the same text.
"""

import argparse
import importlib.util
import json
import random
import sys

import numpy as np
import pandas as pd
import torch
from scipy import stats
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.feature_selection import f_classif

from selfconsuming import LEANINGS
from selfconsuming.config import schema_defaults
from selfconsuming.prepare import classifier_corpus, world_articles
from selfconsuming.text import split_sentences
from selfconsuming.world import Oracle

KINDS = ("whole", "piece", "fragment", "glued", "repeated")
DEGENERATE = ("fragment", "glued", "repeated")


def load_module(path):
    """classifier.py from another path (the before version), importable next to the package."""
    if path is None:
        from selfconsuming import classifier

        return classifier
    spec = importlib.util.spec_from_file_location("classifier_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def window(words, rng, low, high):
    """A run of low..high words starting at an arbitrary word."""
    n = min(len(words), rng.randint(low, high))
    start = rng.randint(0, len(words) - n)
    return " ".join(words[start:start + n])


def eval_items(articles, rng, per_article=2):
    """(kind, source label, text) for every kind of text, from held-out articles."""
    by_label = {label: [a for a in articles if a["label"] == label] for label in LEANINGS}
    items = []
    for a in articles:
        words = a["text"].split()
        items.append(("whole", a["label"], f"{a['title']}\n\n{a['text']}"))
        for _ in range(per_article):
            items.append(("piece", a["label"], window(words, rng, 64, 128)))
            items.append(("fragment", a["label"], window(words, rng, 8, 30)))
            others = rng.sample([l for l in LEANINGS if l != a["label"]], rng.randint(1, 2))
            sources = [a] + [rng.choice(by_label[l]) for l in others]
            sources += [rng.choice(sources) for _ in range(rng.randint(0, 2))]
            rng.shuffle(sources)
            items.append(("glued", a["label"], " ".join(window(s["text"].split(), rng, 8, 30) for s in sources)))
            unit = rng.choice(split_sentences(a["text"])) if rng.random() < 0.5 else window(words, rng, 8, 20)
            items.append(("repeated", a["label"], " ".join([unit] * rng.randint(3, 8))))
    return pd.DataFrame(items, columns=["kind", "source", "text"])


def neutral_words(articles, n=40):
    """Frequent words whose relative frequency does not depend on the leaning (ANOVA F-test p > 0.5)."""
    vectorizer = CountVectorizer(min_df=0.05)
    counts = vectorizer.fit_transform([a["text"] for a in articles]).toarray().astype(float)
    rates = counts / counts.sum(axis=1, keepdims=True)
    _, p = f_classif(rates, [a["label"] for a in articles])
    words = vectorizer.get_feature_names_out()
    order = np.argsort(-counts.sum(axis=0))
    return [words[i] for i in order if p[i] > 0.5][:n]


def group_correlation(table, rng, groups=66, size=30):
    """Pearson r of classifier vs oracle right share over groups of pieces with random leaning mixes."""
    pools = {label: table.index[table["source"] == label].to_numpy() for label in LEANINGS}
    np_rng = np.random.default_rng(rng.randint(0, 2**31))
    ours, theirs = [], []
    for _ in range(groups):
        mix = np_rng.dirichlet(np.ones(3))
        picks = [np_rng.choice(pools[LEANINGS[k]]) for k in np_rng.choice(3, size=size, p=mix)]
        group = table.loc[picks]
        labelled = group[group["oracle_ok"]]
        if len(labelled) == 0:
            continue
        ours.append((group["label"] == "right").mean())
        theirs.append((labelled["oracle_label"] == "right").mean())
    return float(stats.pearsonr(ours, theirs)[0]) if len(ours) > 2 else float("nan")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--old", default=None, help="a classifier.py to measure instead of the package's")
    parser.add_argument("--backbones", nargs="+", default=["tfidf"])
    parser.add_argument("--params", default="{}", help="classifier params as JSON")
    parser.add_argument("--out", default="/tmp/bench_classifier")
    parser.add_argument("--heldout", type=int, default=60, help="held-out articles per leaning")
    args = parser.parse_args()
    torch.set_num_threads(1)
    module = load_module(args.old)

    corpus = classifier_corpus(schema_defaults("data"), 42)
    metrics = module.train_classifiers(corpus, args.backbones, json.loads(args.params), args.out, seed=42)
    print(metrics.drop(columns=["detail"]).to_string(index=False))
    classifier = module.load_leaning_classifier(args.out)

    rng = random.Random(7)
    heldout = world_articles("oracle-check", {label: args.heldout for label in LEANINGS}, 42)
    table = eval_items(heldout, rng)
    oracle = Oracle().score_texts(table["text"], partial_edges=True)
    table = pd.concat([table, oracle], axis=1)
    post = table[[f"oracle_p_{l}" for l in LEANINGS]].to_numpy()
    top2 = np.sort(post, axis=1)[:, -2:]
    table["oracle_ok"] = (table["oracle_valid_share"] > 0) & (top2[:, 1] - top2[:, 0] > 1e-9)
    scores = module.score_leaning(list(table["text"]), classifier)
    table = pd.concat([table, scores], axis=1)

    rows = []
    for kind in KINDS + ("degenerate",):
        part = table[table["kind"].isin(DEGENERATE if kind == "degenerate" else [kind])].reset_index(drop=True)
        labelled = part[part["oracle_ok"]]
        rows.append({
            "kind": kind, "n": len(part), "oracle_labelled": len(labelled),
            "agree_oracle": (labelled["label"] == labelled["oracle_label"]).mean(),
            "agree_source": (part["label"] == part["source"]).mean(),
            "right_share": (part["label"] == "right").mean(),
            "oracle_right_share": (labelled["oracle_label"] == "right").mean(),
            "r_right_share": group_correlation(part, rng),
        })
    print(pd.DataFrame(rows).round(3).to_string(index=False))

    degenerate = table[table["kind"].isin(DEGENERATE)]
    parse = degenerate["oracle_valid_share"] >= 0.5
    print(f"degenerate called right: mostly unparseable {(degenerate[~parse]['label'] == 'right').mean():.3f} "
          f"(n={int((~parse).sum())}), parseable {(degenerate[parse]['label'] == 'right').mean():.3f} "
          f"(n={int(parse.sum())})")
    neutral = neutral_words(corpus)
    free = module.score_leaning(["", " ".join(neutral), " ".join(neutral[:8])], classifier)
    free.insert(0, "text", ["empty", f"{len(neutral)} neutral words", "8 neutral words"])
    print("neutral words:", " ".join(neutral))
    print(free.round(3).to_string(index=False))


if __name__ == "__main__":
    sys.exit(main())

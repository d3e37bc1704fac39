"""Does the offline detector's TQI track the world oracle on degenerate text?

Trains the detector as the workflow does on the world (its own fresh sample, default
sizes, one thread), then scores hand-made corpora built from an unseen world sample:
clean text, sentence loops, looping phrases, glued block fragments, word salad, slips
and noise, each at several strengths. Prints per-class held-out recall, training time,
and per corpus the mean TQI (expected and study) next to the oracle's valid share and
a repetition-aware share (valid and not a copy of an earlier sentence of the article),
with Pearson r across corpora.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_detector.py [--articles 2400] [--sentences 20000]
"""

import argparse
import os
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.stats import pearsonr  # noqa: E402

from selfconsuming import quality as q  # noqa: E402
from selfconsuming.prepare import world_articles  # noqa: E402
from selfconsuming.text import split_sentences  # noqa: E402
from selfconsuming.world import Oracle  # noqa: E402


def degrade(sources, kind, strength, rng):
    """Articles from source sentence lists: `strength` (0..1) of each article's sentences affected."""
    out = []
    for s in sources:
        if kind == "loop":  # the article falls into a loop of its 1-2 last kept sentences
            m = max(1, round(len(s) * (1 - strength)))
            cycle = s[max(0, m - 2):m]
            out.append(" ".join(s[:m] + cycle * max(1, round(strength * len(s) / len(cycle)))))
        elif kind == "glued":  # block-edge seams; shorter blocks, more seams
            out.append(" ".join(q.glue_fragments(s, rng, 4, int(8 + 40 * (1 - strength)))[0]))
        else:
            hit = rng.random(len(s)) < strength
            corrupt = {"phrase_loop": "repeated"}.get(kind, kind)
            out.append(" ".join(q.corrupt_sentence(x, corrupt, rng) if h else x for x, h in zip(s, hit)))
    return out


def oracle_shares(texts, oracle):
    """Oracle valid share, and the share valid and not an exact copy of an earlier sentence."""
    valid, fresh = [], []
    for t in texts:
        sents = split_sentences(t)
        ok = [oracle.sentence_probs(x) is not None for x in sents]
        seen, new = set(), []
        for x, v in zip(sents, ok):
            new.append(v and x not in seen)
            seen.add(x)
        valid.append(np.mean(ok))
        fresh.append(np.mean(new))
    return np.mean(valid), np.mean(fresh)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=2400)
    parser.add_argument("--sentences", type=int, default=20000)
    parser.add_argument("--eval-articles", type=int, default=60)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        cpu = time.process_time()
        texts = q.detector_world_texts(args.articles, args.seed)
        metrics = q.train_gibberish_detector(texts, args.seed, f"{tmp}/det", args.sentences, source="world")
        cpu = time.process_time() - cpu
        detector = q.load_gibberish_detector(f"{tmp}/det")
    print(f"trained on {args.articles} world articles, {metrics['n_train']} examples: "
          f"fit {metrics['fit_cpu_seconds']:.1f} s CPU, all (sample, dataset, fit, eval) {cpu:.1f} s CPU")
    print(f"held-out accuracy {metrics['accuracy']:.3f}; recall " +
          ", ".join(f"{c} {v:.3f}" for c, v in metrics["recall"].items()))

    n = args.eval_articles // 3
    sources = [split_sentences(a["text"]) for a in world_articles("bench-detector", {"left": n, "center": n,
                                                                                    "right": n}, args.seed)]
    rng = np.random.default_rng(args.seed)
    oracle = Oracle()
    rows = []
    corpora = [("clean", 0.0)] + [(k, s) for k in ("loop", "phrase_loop", "glued", "word_salad", "mild", "noise")
                                  for s in (0.25, 0.5, 0.75, 1.0)]
    for kind, strength in corpora:
        corpus = degrade(sources, kind, strength, rng) if strength else [" ".join(s) for s in sources]
        valid, fresh = oracle_shares(corpus, oracle)
        rows.append({"corpus": kind, "strength": strength,
                     "tqi_expected": np.nanmean(q.text_quality_index(corpus, detector, "expected")[0]),
                     "tqi_study": np.nanmean(q.text_quality_index(corpus, detector, "study")[0]),
                     "oracle_valid_share": valid, "oracle_fresh_valid_share": fresh})
    table = pd.DataFrame(rows)
    pd.set_option("display.width", 160)
    print(table.round(3).to_string(index=False))
    for label, part in [("all corpora", table), ("without sentence loops", table[table.corpus != "loop"])]:
        for tqi in ("tqi_expected", "tqi_study"):
            for truth in ("oracle_valid_share", "oracle_fresh_valid_share"):
                print(f"{label:<24} r({tqi}, {truth}) = {pearsonr(part[tqi], part[truth])[0]:.3f}")
    top = table.loc[table.tqi_expected.idxmax(), ["corpus", "strength"]].tolist()
    print(f"highest mean TQI (expected): {top}")


if __name__ == "__main__":
    main()

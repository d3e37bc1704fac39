"""TQI against two oracle quality measures on a finished run's model corpora.

The oracle's valid share counts every sentence that belongs to the world, including a
sentence the article already said (greedy loops repeat valid sentences). The detector
scores such repeats as `repeated` (value 1). This script recomputes, per article, the
share of sentences that are valid *and new in the article* and reports per-model
Pearson r of mean TQI with both measures, so the two readings of "quality" can be
compared. Usage: python benchmarks/bench_tqi_oracle.py results/<run>
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from selfconsuming.io import read_jsonl  # noqa: E402
from selfconsuming.text import split_sentences  # noqa: E402
from selfconsuming.world import Oracle  # noqa: E402


def article_shares(oracle, article) -> tuple[float, float]:
    """(valid share, valid-and-new share) over the continuation sentences, edges as the oracle treats them."""
    seen, n, valid, novel = set(), 0, 0, 0
    for piece in article.get("continuations") or [article["text"]]:
        sentences = split_sentences(piece)
        ok = [oracle.score_sentence(s) is not None for s in sentences]
        keep = [True] * len(sentences)
        if sentences and not ok[0]:
            keep[0] = False  # a continuation starts mid-sentence
        if sentences and not ok[-1] and not sentences[-1].rstrip().endswith((".", "!", "?", '"')):
            keep[-1] = False  # and ends mid-sentence
        for s, good, k in zip(sentences, ok, keep):
            if not k:
                continue
            n += 1
            key = " ".join(s.lower().split())
            valid += good
            novel += good and key not in seen
            seen.add(key)
    return (valid / n, novel / n) if n else (np.nan, np.nan)


def main(run: Path) -> None:
    oracle = Oracle()
    rows = []
    for path in sorted((run / "synthetic").glob("*/rep*/gen*.jsonl")):
        setup, rep, gen = path.parent.parent.name, path.parent.name, path.stem
        scored = run / "scores" / setup / rep / f"{gen}.parquet"
        if not scored.exists():
            continue  # not summarised yet
        scores = pd.read_parquet(scored)
        shares = np.array([article_shares(oracle, a) for a in read_jsonl(path)])
        rows.append({"corpus": f"{setup}/{rep}/{gen}", "tqi": scores["tqi"].mean(),
                     "valid": np.nanmean(shares[:, 0]), "valid_new": np.nanmean(shares[:, 1])})
    table = pd.DataFrame(rows)
    for column in ("valid", "valid_new"):
        r, p = stats.pearsonr(table["tqi"], table[column])
        print(f"r(TQI mean, oracle {column} share) = {r:.3f} (p {p:.2g}, {len(table)} model corpora)")
    print(table.describe().round(3).to_string())


if __name__ == "__main__":
    main(Path(sys.argv[1]))

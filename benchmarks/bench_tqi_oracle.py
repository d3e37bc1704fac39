"""TQI against the oracle's two quality readings on a finished run's model corpora.

`oracle_valid_share` (what the workflow reports) counts a sentence as valid if it
belongs to the world and does not repeat an earlier sentence of the article;
`oracle_parsed_share` counts every sentence that belongs to the world, repeats included
(a greedy loop of one valid sentence scores 1.0). This script re-scores every model
corpus with `scoring.oracle_table` (so it also works on runs scored before the
repeat rule) and prints per-model Pearson r of mean TQI with both readings.
Usage: python benchmarks/bench_tqi_oracle.py [results/<run>, default results/default]
"""

import sys
from pathlib import Path

import pandas as pd
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from selfconsuming.io import read_jsonl  # noqa: E402
from selfconsuming.scoring import oracle_table  # noqa: E402


def main(run: Path) -> None:
    rows = []
    for path in sorted((run / "synthetic").glob("*/rep*/gen*.jsonl")):
        setup, rep, gen = path.parent.parent.name, path.parent.name, path.stem
        scored = run / "scores" / setup / rep / f"{gen}.parquet"
        if not scored.exists():
            continue  # not summarised yet
        oracle = oracle_table(read_jsonl(path))
        rows.append({"corpus": f"{setup}/{rep}/{gen}", "tqi": pd.read_parquet(scored)["tqi"].mean(),
                     "valid": oracle["oracle_valid_share"].mean(), "parsed": oracle["oracle_parsed_share"].mean()})
    table = pd.DataFrame(rows)
    for column in ("valid", "parsed"):
        r, p = stats.pearsonr(table["tqi"], table[column])
        print(f"r(TQI mean, oracle {column} share) = {r:.3f} (p {p:.2g}, {len(table)} model corpora)")
    print(table.describe().round(3).to_string())


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "results/default"))

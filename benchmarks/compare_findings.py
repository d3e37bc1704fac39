"""Compare the findings of two runs of one config (e.g. two seeds): do their verdicts agree?

Usage: python benchmarks/compare_findings.py results/<run-a> results/<run-b> [out.csv]
Prints, per effect (change, trend, vs_baseline) and overall, how many verdicts are the
same, opposite (increase in one run, decrease in the other) or decided in only one run,
and how many pairs of 95% intervals do not overlap; then lists every opposite or
disjoint pair. With out.csv it writes the row-by-row comparison.
"""

import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from selfconsuming.inference import compare_findings, comparison_counts  # noqa: E402


def main(run_a: Path, run_b: Path, out: Path | None = None) -> None:
    compared = compare_findings(pd.read_csv(run_a / "metrics" / "findings.csv"),
                                pd.read_csv(run_b / "metrics" / "findings.csv"))
    print(f"a = {run_a}, b = {run_b}")
    print(comparison_counts(compared).to_string(index=False))
    notable = compared[(compared["agreement"] == "opposite") | ~compared["ci_overlap"]]
    if len(notable):
        print("\nopposite verdicts or disjoint intervals:")
        print(notable.round(4).to_string(index=False))
    if out:
        compared.to_csv(out, index=False)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]) if len(sys.argv) > 3 else None)

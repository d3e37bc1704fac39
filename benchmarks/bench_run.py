"""Where a finished run spent its time: per rule, jobs and job-seconds; and how well the jobs filled the run.

Reads results/<run>/benchmarks/**/*.tsv (Snakemake's benchmark format: column `s` is the
job's wall seconds, the file is written when the job ends) and results/<run>/logs/**/*.log.
A job's end is its benchmark file's mtime and its start that minus `s`; the run's wall time
runs from the first job start to the last job end (or last log write). Fine-tuning jobs are
also matched with their model's training.json, so the start-up overhead (job seconds minus
training seconds) is printed per rule.

Usage: python benchmarks/bench_run.py [results/<run>, default results/default]
"""

import json
import sys
from pathlib import Path

import pandas as pd


def benchmark_table(run_dir: Path) -> pd.DataFrame:
    """One row per benchmarked job: rule (first path level), job name, seconds, cpu_time, start, end."""
    root = run_dir / "benchmarks"
    rows = []
    for path in sorted(root.rglob("*.tsv")):
        table = pd.read_csv(path, sep="\t")
        if table.empty or "s" not in table:
            continue
        name = path.relative_to(root).with_suffix("")
        end = path.stat().st_mtime
        seconds = float(table["s"].iloc[-1])
        rows.append({"rule": name.parts[0], "job": str(name), "s": seconds,
                     "cpu_time": float(table["cpu_time"].iloc[-1]) if "cpu_time" in table else float("nan"),
                     "start": end - seconds, "end": end})
    return pd.DataFrame(rows, columns=["rule", "job", "s", "cpu_time", "start", "end"])


def training_seconds(run_dir: Path, job: str) -> float | None:
    """Training seconds a fine-tuning job logged in its model's training.json (None when there is none)."""
    parts = Path(job).parts
    if parts[0] != "finetune":
        return None
    info = run_dir / "models" / Path(*parts[1:]) / "training.json"
    if not info.is_file():
        return None
    return float(json.loads(info.read_text())["stats"]["seconds"])


def per_rule(jobs: pd.DataFrame, run_dir: Path) -> pd.DataFrame:
    """Jobs, job-seconds and mean seconds per rule; for fine-tuning, mean seconds outside training."""
    jobs = jobs.assign(train_s=[training_seconds(run_dir, j) for j in jobs["job"]])
    jobs["overhead_s"] = jobs["s"] - jobs["train_s"]
    table = jobs.groupby("rule").agg(jobs=("s", "size"), job_seconds=("s", "sum"), mean_s=("s", "mean"),
                                     mean_cpu_s=("cpu_time", "mean"), mean_overhead_s=("overhead_s", "mean"))
    return table.sort_values("job_seconds", ascending=False)


def run_span(jobs: pd.DataFrame, run_dir: Path) -> tuple[float, float]:
    """First job start and last job end (or last log write, for jobs without a benchmark)."""
    logs = [p.stat().st_mtime for p in (run_dir / "logs").rglob("*.log")] if (run_dir / "logs").is_dir() else []
    return float(jobs["start"].min()), max([float(jobs["end"].max()), *logs])


def main(run_dir: str) -> None:
    run = Path(run_dir)
    jobs = benchmark_table(run)
    if jobs.empty:
        raise SystemExit(f"no benchmark files under {run / 'benchmarks'}")
    with pd.option_context("display.width", 120, "display.float_format", "{:.1f}".format):
        print(per_rule(jobs, run))
    first, last = run_span(jobs, run)
    wall, busy = last - first, jobs["s"].sum()
    print(f"\n{len(jobs)} jobs, {busy:.0f} job-seconds; run wall {wall:.0f} s (first job start to last job end); "
          f"job-seconds / wall = {busy / wall:.2f} (the cores kept busy on average)")
    print("mean_cpu_s is the CPU of each job's own process: a job the local job server ran in a forked "
          "worker shows only the hand-over (job_server: false measures the work itself)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "results/default")

"""Where a finished run spent its time: per rule, jobs and job-seconds; how well the jobs filled the run;
and how close the run came to its compute (the seconds the jobs spent training, generating and scoring).

Reads results/<run>/benchmarks/**/*.tsv (Snakemake's benchmark format: column `s` is the
job's wall seconds, the file is written when the job ends) and results/<run>/logs/**/*.log.
A job's end is its benchmark file's mtime and its start that minus `s`; the run's wall time
runs from the first job start to the last job end (or last log write). Fine-tuning jobs are
also matched with their model's training.json, so the start-up overhead (job seconds minus
training seconds) is printed per rule.

Pure compute per job, read from what the jobs log: fine-tuning and pretraining, the training
seconds they report; synthesis, from its "N articles -> M blocks" line to its "wrote" line;
scoring, from loading the sentence encoder (the last model a score_quality job loads, spaCy
aside) to its last corpus line. Start-up, imports, loading and saving fall outside it.

Usage: python benchmarks/bench_run.py [results/<run>, default results/default] [cores, default 2]
"""

import json
import re
import sys
from datetime import datetime
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


STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (\S+) INFO (.*)$")


def log_lines(path: Path) -> list[tuple[float, str, str]]:
    """(time, logger, message) of a job log's timestamped INFO lines."""
    out = []
    for line in path.read_text(errors="replace").splitlines():
        match = STAMP.match(line)
        if match:
            when = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            out.append((when, match.group(2), match.group(3)))
    return out


def compute_seconds(run_dir: Path, job: str) -> float | None:
    """Seconds of a job's own work (training, generation, scoring), None for other rules or without a log."""
    rule = Path(job).parts[0]
    if rule == "finetune":
        return training_seconds(run_dir, job)
    log = run_dir / "logs" / (job + ".log")
    if not log.is_file():
        return None
    lines = log_lines(log)
    if rule == "pretrain_base":
        done = [m for _, _, m in lines if m.startswith("pretraining done:")]
        found = re.search(r"'seconds': ([0-9.]+)", done[-1]) if done else None
        return float(found.group(1)) if found else None
    if rule == "synthesize":
        start = [t for t, _, m in lines if " blocks, decoding " in m]
        end = [t for t, _, m in lines if m.startswith("wrote ")]
    elif rule == "score_quality":
        start = [t for t, name, m in lines if name.startswith("sentence_transformers") and "Loading" in m]
        end = [t for t, name, m in lines if name == "rule.score_quality" and "mean tqi" in m]
    else:
        return None
    return end[-1] - start[0] if start and end else None


def pure_compute(jobs: pd.DataFrame, run_dir: Path) -> pd.DataFrame:
    """Per rule with a compute measure: job-seconds, compute seconds, and the share of the jobs' time it is."""
    jobs = jobs.assign(compute_s=[compute_seconds(run_dir, j) for j in jobs["job"]]).dropna(subset=["compute_s"])
    table = jobs.groupby("rule").agg(jobs=("s", "size"), job_seconds=("s", "sum"), compute_s=("compute_s", "sum"))
    table["compute_share"] = table["compute_s"] / table["job_seconds"]
    return table.sort_values("job_seconds", ascending=False)


def main(run_dir: str, cores: int = 2) -> None:
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
    compute = pure_compute(jobs, run)
    with pd.option_context("display.width", 120, "display.float_format", "{:.2f}".format):
        print("\npure compute (training, generation, scoring seconds the jobs log):")
        print(compute)
    other = busy - compute["job_seconds"].sum()
    bound = (compute["compute_s"].sum() + other) / cores
    print(f"the run's wall {wall:.0f} s over its compute on {cores} cores ({compute['compute_s'].sum():.0f} s of "
          f"training, generation and scoring, plus {other:.0f} job-seconds of the other rules, / {cores}: "
          f"{bound:.0f} s) = {wall / bound:.2f} (a job on several threads, like pretraining, counts once: the bound "
          f"is a little low)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "results/default", int(sys.argv[2]) if len(sys.argv) > 2 else 2)

"""Snakemake's own work on a finished run: a dry run (`-n`) that checks every job of the run is up to date,
for this checkout and, side by side, another one (before vs after).

Each checkout is copied (tracked files, `git archive`) with every file dated a day before the run's
outputs, and runs on hard links of the finished run (results/<run> and .snakemake/metadata), so
nothing is planned unless the checkout's rules need it. `--rerun-triggers mtime`: the input-set
trigger would replan every job whose list of input files changed between checkouts.

Prints the run's wall and CPU seconds (the Snakemake process: DAG, file checks) and the jobs planned;
then the same with --forceall (every job planned), and --forceall --touch: every job passes through
the scheduler as in a real run (job selection, input sizes, one round per finished job), its work
replaced by touching its outputs.

Usage: python benchmarks/bench_dag.py [checkout holding results/default and .snakemake: .] [other checkout]
"""

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def copy_checkout(checkout: Path, dest: Path, mtime: float) -> Path:
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(checkout), "archive", "HEAD"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    for path in [dest, *dest.rglob("*")]:
        os.utime(path, (mtime, mtime), follow_symlinks=False)
    return dest


def dry_run(checkout: Path, workdir: Path, *extra: str) -> tuple[float, float, int]:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(checkout / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(checkout / "config" / "config.yaml"), "--cores", "2", "--rerun-triggers", "mtime", *extra]
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir)
    wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(proc.stdout[-3000:] + proc.stderr[-3000:])
    out = proc.stdout + proc.stderr
    planned = sum(line.strip().startswith(("rule ", "localrule ")) for line in out.splitlines())
    planned = planned or out.count("Touching output file")
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, planned


def main(run_checkout: str = ".", other: str | None = None) -> None:
    source = Path(run_checkout).resolve()
    results = source / "results" / "default"
    oldest = min(p.stat().st_mtime for p in (results / "data").iterdir())
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        work = tmp / "work"
        (work / "results").mkdir(parents=True)
        # a real copy, not hard links: --touch below sets the outputs' times
        subprocess.run(["cp", "-a", str(results), str(work / "results" / "default")], check=True)
        shutil.copytree(source / ".snakemake" / "metadata", work / ".snakemake" / "metadata")
        checkouts = {"this": REPO, **({"other": Path(other).resolve()} if other else {})}
        copies = {name: copy_checkout(path, tmp / name, oldest - 86400) for name, path in checkouts.items()}
        for extra in (["-n"], ["-n", "--forceall"], ["--forceall", "--touch"]):
            for _ in range(2):
                for name, copy in copies.items():
                    wall, cpu, planned = dry_run(copy, work, *extra)
                    print(f"{name} ({checkouts[name]}): dry run {' '.join(extra)} {wall:.1f} s wall, {cpu:.1f} s CPU, "
                          f"{planned} jobs planned", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:3])

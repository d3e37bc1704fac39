"""Running the workflow from tests: a tiny config on a tiny randomly initialised GPT-2."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def build_tiny_world_gpt2(out_dir) -> str:
    """A 2-layer GPT-2 with a BPE tokenizer learned from world text, randomly initialised."""
    from selfconsuming.text import article_text
    from selfconsuming.world import generate_articles
    from tiny_models import save_tiny_gpt2

    articles = generate_articles({"left": 20, "center": 20, "right": 20}, seed=7)
    return save_tiny_gpt2(out_dir, [article_text(a) for a in articles], vocab_size=400)


def tiny_config(base_model: str, run: str = "tiny") -> dict:
    return {
        "run": run,
        "generations": 1,
        "device": "cpu",
        "seed": 3,
        "model": {"base": base_model, "base_continuations": {"decoding": "nucleus", "top_p": 0.9, "samples": 2}},
        "data": {"source": "world", "per_label": 3, "classifier_per_label": 20},
        "setups": {
            "deterministic": {"decoding": "greedy"},
            "beam": {"decoding": "beam", "num_beams": 2},
            "nucleus": {"decoding": "nucleus", "top_p": 0.9},
            "overfit": {"decoding": "greedy", "epochs": 2, "weight_decay": 0.0},
            "preserve": {"decoding": "greedy", "preserve_fraction": 0.34},
            "accumulate": {"decoding": "greedy", "accumulate": True},
        },
        "finetune": {"epochs": 1, "lr": 1.0e-3, "batch_size": 4, "max_length": 256},
        "synthesis": {"block_tokens": 32, "new_tokens": 8, "batch_size": 16},
        "classifier": {"backbones": ["tfidf"]},
        "quality": {"detector_sentences": 400,
                    "diversity": {"sample_tokens": 200, "selfbleu_sample": 4, "semantic_sample": 4,
                                  "syntactic_sample": 10}},
        "neurons": {"max_prompts": 8, "batch_size": 8},
        "theory": {
            "weighted_mle": {"replicates": 2, "sample_size": 300, "generations": 2, "pretrain_size": 1000},
            "softmax_collapse": {"replicates": 20, "generations": 5, "max_generations": 50},
            "regression_accumulate": {"replicates": 20, "iterations": 3},
            "gaussian_refit": {"replicates": 50, "generations": 3},
        },
    }


def write_config(config: dict, path) -> str:
    Path(path).write_text(yaml.safe_dump(config))
    return str(path)


def run_snakemake(workdir, configfile, *args, check=True, timeout=1800) -> subprocess.CompletedProcess:
    cmd = SNAKEMAKE + ["--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
                       "--configfile", str(configfile), "--cores", "2", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-5000:]}\n{proc.stderr[-8000:]}")
    return proc


def planned_jobs(dry_run_output: str) -> list[tuple[str, str]]:
    """(rule, wildcards) of every job a dry run lists."""
    jobs, rule = [], None
    for line in dry_run_output.splitlines():
        m = re.match(r"^(?:local)?rule (\w+):", line.strip())
        if m:
            rule = m.group(1)
            jobs.append((rule, ""))
            continue
        m = re.match(r"^wildcards: (.*)$", line.strip())
        if m and jobs:
            jobs[-1] = (jobs[-1][0], m.group(1))
    return jobs


def dry_run_jobs(workdir, configfile) -> list[tuple[str, str]]:
    proc = run_snakemake(workdir, configfile, "-n")
    return planned_jobs(proc.stdout + "\n" + proc.stderr)


# ---- comparing two runs' results ----------------------------------------------------------

WALL_CLOCK = re.compile(r"(^|_)seconds$|per_second$")  # timing fields: the one thing two runs may differ in


def _without_timings(value):
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if not WALL_CLOCK.search(k)}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def comparable(name: str, data: bytes):
    """A result file's content as two runs of the same work must agree on it: bytes, but JSON and
    CSV without their timing fields (seconds, tokens per second). Pickled scikit-learn models
    (*.joblib) are left out: a fitted TfidfVectorizer keeps the id() of its stop-word list and
    Counters keep the process's string-hash order, so equal models pickle to different bytes;
    what they compute is compared through the scores they wrote (scores/, quality/, metrics/)."""
    if name.endswith(".joblib"):
        return None
    if name.endswith(".json"):
        return _without_timings(json.loads(data))
    if name.endswith(".csv"):
        import io

        import pandas as pd

        table = pd.read_csv(io.BytesIO(data))
        return table.drop(columns=[c for c in table.columns if WALL_CLOCK.search(str(c))]).to_csv(index=False)
    return data


def differing_files(left: dict[str, bytes], right: dict[str, bytes]) -> dict[str, str]:
    """The files (of both trees) whose comparable content differs, each with what differs: for a
    table the columns, how many rows and the largest absolute difference, so that a failure says
    whether two runs differ in the last bits of a float or in a result."""
    return {name: _what_differs(name, left[name], right[name]) for name in sorted(left)
            if name in right and comparable(name, left[name]) != comparable(name, right[name])}


def _what_differs(name: str, a: bytes, b: bytes) -> str:
    import io

    import pandas as pd

    if not name.endswith((".parquet", ".csv")):
        return "content"
    read = pd.read_parquet if name.endswith(".parquet") else pd.read_csv
    x, y = read(io.BytesIO(a)), read(io.BytesIO(b))
    if list(x.columns) != list(y.columns) or len(x) != len(y):
        return f"shape {x.shape} vs {y.shape}"
    out = []
    for column in x.columns:
        if x[column].equals(y[column]):
            continue
        if x[column].dtype.kind == "f" and y[column].dtype.kind == "f":
            gap = (x[column] - y[column]).abs()
            out.append(f"{column}: {int((gap > 0).sum())} rows, max |diff| {gap.max():.3g}")
        else:
            out.append(f"{column}: {int((x[column] != y[column]).sum())} rows")
    return "; ".join(out) or "bytes only"


def tree(root: Path) -> dict[str, bytes]:
    """Every file under root (symlinks as their targets), but logs and benchmarks (timings)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root)
        if rel.parts[:1] in (("logs",), ("benchmarks",)):
            continue
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            if path.is_symlink():
                out[str(rel / name)] = b"-> " + os.readlink(path).encode()
            elif path.is_file():
                out[str(rel / name)] = path.read_bytes()
    return out

"""Operating the workflow: interruption, determinism, GPUs, the SLURM profile."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from selfconsuming.gpus import claim_gpu
from workflow_helpers import REPO, SNAKEMAKE, build_tiny_world_gpt2, run_snakemake, tiny_config, write_config

GPU_RULES = {"pretrain_base", "finetune_gen0", "finetune", "synthesize", "synthesize_base", "train_classifier",
             "score_bias", "score_quality", "neuron_activations"}


def _start(workdir, configfile):
    """Start the workflow in the background (first lifting the lock a killed run leaves, as a user would)."""
    run_snakemake(workdir, configfile, "--unlock")
    cmd = SNAKEMAKE + ["--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir), "--configfile",
                       str(configfile), "--cores", "2", "--rerun-incomplete"]
    return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def _kill_when(proc, started: Path, timeout=900):
    """Kill the whole workflow (SIGKILL to its process group) once `started` (a job's log) exists."""
    deadline = time.time() + timeout
    while not started.exists():
        assert proc.poll() is None, "workflow ended before the job to interrupt started"
        assert time.time() < deadline, f"{started} never appeared"
        time.sleep(0.2)
    time.sleep(1.0)
    killed_at = time.time()
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return killed_at


def _files(root: Path, pattern: str) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.glob(pattern))}


@pytest.mark.slow
def test_interrupted_runs_resume_and_equal_an_uninterrupted_run(tmp_path):
    """Kill during fine-tuning, then during synthesis; resume; compare with a clean run of the same config.

    The comparison also shows determinism: greedy and beam corpora byte-identical,
    seeded nucleus output identical, identical metrics.
    """
    base = build_tiny_world_gpt2(tmp_path / "tiny-gpt2")
    config = tiny_config(base)
    # the jobs to interrupt must outlast the kill's 1 s delay on an idle machine (tiny jobs end in ~0.3 s)
    config["setups"]["deterministic"].update(epochs=40, new_tokens=96, synthesis_batch_size=1)
    clean, interrupted = tmp_path / "clean", tmp_path / "interrupted"
    for d in (clean, interrupted):
        d.mkdir()
    configfile = write_config(config, tmp_path / "config.yaml")
    res = interrupted / "results/tiny"

    killed_at = _kill_when(_start(interrupted, configfile), res / "logs/finetune/deterministic/rep0/gen1.log")
    assert not (res / "models/deterministic/rep0/gen1").exists(), "a killed fine-tune left a complete-looking model"
    # outputs finished well before the kill (a job ending at the kill is not yet recorded complete)
    done_before = {p: p.stat().st_mtime for p in (res / "synthetic").rglob("*.jsonl")
                   if p.stat().st_mtime < killed_at - 5}
    assert done_before, "nothing had finished before the first kill"

    _kill_when(_start(interrupted, configfile), res / "logs/synthesize/deterministic/rep0/gen1.log")
    assert not (res / "synthetic/deterministic/rep0/gen1.jsonl").exists(), "a killed synthesis left a complete-looking file"
    for path, mtime in done_before.items():
        assert path.stat().st_mtime == mtime, f"{path} was redone although it was complete"

    run_snakemake(interrupted, configfile, "--unlock")
    run_snakemake(interrupted, configfile, "--rerun-incomplete")
    run_snakemake(clean, configfile)

    for pattern in ("synthetic/*/rep*/gen*.jsonl", "synthetic/base*.jsonl", "metrics/summary.csv", "neurons/stats.csv"):
        a, b = _files(clean / "results/tiny", pattern), _files(res, pattern)
        assert a.keys() == b.keys() and a, pattern
        for name in a:
            assert a[name] == b[name], f"{name} differs between the clean and the interrupted run"
    metrics = [pd.read_csv(d / "classifier/metrics.csv").drop(columns="train_seconds") for d in (clean / "results/tiny", res)]
    pd.testing.assert_frame_equal(*metrics)  # equal but for the wall-clock column


def test_gpu_claims_are_exclusive(tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    code = ("import os, sys, time; sys.path.insert(0, {scripts!r}); from selfconsuming.gpus import claim_gpu; "
            "print(claim_gpu(n_gpus=2, lock_dir={locks!r}), flush=True); time.sleep(3)")
    code = code.format(scripts=str(REPO / "scripts"), locks=str(tmp_path))
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    outs = sorted(p.communicate(timeout=60)[0].strip() for p in procs)
    assert outs == ["0", "1"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    assert claim_gpu(n_gpus=2, lock_dir=str(tmp_path)) == "3"  # the scheduler's choice is kept


@pytest.mark.parametrize("device", ["cuda", "cpu"])
def test_slurm_profile_resources_follow_the_config(tmp_path, device):
    """GPU rules ask for a GPU, its CPUs and the GPU partition only under cuda; CPU rules never do."""
    paper = yaml.safe_load(open(REPO / "config/paper.yaml"))
    paper["data"].update(path=str(REPO / "tests/fixtures/webis_data_public.csv"), per_label=2)  # a tiny fixture
    paper["device"] = device
    threads = paper["resources"]["gpu_rules"]["threads"]
    configfile = write_config(paper, tmp_path / "paper.yaml")
    cmd = SNAKEMAKE + ["--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path), "--configfile",
                       configfile, "--profile", str(REPO / "profiles/slurm"), "-n"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    resources = _job_resources(out)
    assert {rule for rule, _ in resources} >= {"synthesize", "finetune", "score_quality", "neuron_activations"}
    for rule, res in resources:
        if rule in GPU_RULES and device == "cuda":
            assert res.get("gpu") == "1" and res.get("cpus_per_gpu") == str(threads), (rule, res)
            assert res.get("slurm_partition") == paper["resources"]["slurm_gpu_partition"], (rule, res)
        elif rule != "all":
            assert res.get("gpu", "0") == "0" and "cpus_per_gpu" not in res, (rule, res)
            assert res.get("slurm_partition") == "CHANGE_ME_partition", (rule, res)
        assert "slurm_extra" not in res


@pytest.mark.parametrize("device, gpus", [("cuda", "1"), ("cpu", "0")])
def test_scoring_rules_ask_for_the_device_they_use(tmp_path, device, gpus):
    """score_bias and score_quality run models on the job's device, so under cuda they ask for a card."""
    config = {**tiny_config("world-gpt2"), "device": device}
    cmd = SNAKEMAKE + ["--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path), "--configfile",
                       write_config(config, tmp_path / "c.yaml"), "--cores", "2", "-n"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    resources = _job_resources(proc.stdout + proc.stderr)
    for rule in ("score_bias", "score_quality"):
        found = [res for r, res in resources if r == rule]
        assert found and all(res.get("gpu") == gpus for res in found), (rule, found[:1])


def _job_resources(output: str) -> list[tuple[str, dict]]:
    """(rule, resources) of each job in a dry run's output."""
    jobs, rule = [], None
    for line in output.splitlines():
        line = line.strip()
        if line.startswith(("rule ", "localrule ")) and line.endswith(":"):
            rule = line.split()[1].rstrip(":")
        elif line.startswith("resources:") and rule:
            pairs = [kv.split("=", 1) for kv in line[len("resources:"):].split(", ") if "=" in kv]
            jobs.append((rule, {k.strip(): v.strip() for k, v in pairs}))
            rule = None
    return jobs

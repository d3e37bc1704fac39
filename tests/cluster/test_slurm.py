"""The SLURM profile on a real SLURM cluster: `tests/cluster/local-slurm.sh up`, then `pytest -m slurm`.

A tiny config (1 generation, 3 setups, 1 replicate) runs through `snakemake --profile
profiles/slurm`, the README's cluster command, with the profile's partition and account
placeholders given on the command line. Checked against what the cluster itself recorded
(`sacct`, `squeue`): every job but the local rules went through SLURM; each job's CPUs,
memory, time limit, partition and GPUs are its rule's resources from the config, for
`device: cpu` and for `device: cuda`; an `scancel` during fine-tuning fails the run
promptly and a re-run redoes exactly that job; the outputs equal a local run's.

The cluster's GPUs are fake (local-slurm.sh): under `device: cuda` the GPU rules' jobs
are submitted, granted their GPU and started, and then stop at "torch sees no CUDA
device". So the cuda run goes only as far as the first GPU rules (`--until`), and
checks what SLURM was asked for and granted, not the results.
"""

import json
import os
import re
import shutil
import subprocess
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml

from workflow_helpers import (REPO, SNAKEMAKE, build_tiny_world_gpt2, differing_files, run_snakemake,
                              tiny_config, tree, write_config)

# What tests/cluster/local-slurm.sh brings up.
CPU_PARTITION, GPU_PARTITION, ACCOUNT = "cpu", "gpu", "selfconsuming"
# The README's cluster command, with the placeholders filled in. The status-check interval
# only makes the tiny jobs' states be polled sooner than the plugin's default 40 s.
CLUSTER_ARGS = ["--profile", "profiles/slurm",
                "--default-resources", f"slurm_partition={CPU_PARTITION}", f"slurm_account={ACCOUNT}",
                "--slurm-init-seconds-before-status-checks", "5"]
# After an scancel Snakemake submits nothing new and, as it says ("Will exit after finishing currently
# running jobs"), lets the jobs already submitted finish: the run must end within this of the later of
# the scancel and those jobs' end, and no job may be submitted later than this after the scancel.
NOTICE_LIMIT_S = 60
CANCEL_WAIT_S = 420  # the run is killed (and the test fails) if it has not ended this long after the scancel
RUN_TIMEOUT_S = 3600  # one run, on a busy machine (on 2 idle cores a run takes minutes)
# 3 setups: the neuron regressions need at least 3 (setup, replicate) series of 1 generation
SETUPS = ("deterministic", "beam", "nucleus")
CANCELLED_SETUP = "deterministic"
# Distinct values, so that a job given the wrong kind's resources shows.
RESOURCES = {"gpu_rules": {"mem_mb": 3000, "runtime": 25, "threads": 2},
             "cpu_rules": {"mem_mb": 2000, "runtime": 15, "threads": 1},
             "gpus_per_job": 1, "slurm_gpu_partition": GPU_PARTITION}
SACCT_FIELDS = ["JobID", "JobName", "Partition", "Account", "ReqCPUS", "ReqMem", "Timelimit", "Submit", "Start",
                "End", "ReqTRES", "AllocTRES", "State", "Comment"]


def _cluster_problem() -> str | None:
    """Why the test cluster cannot be used, or None."""
    for tool in ("sinfo", "sbatch", "squeue", "sacct", "scancel"):
        if shutil.which(tool) is None:
            return f"no SLURM cluster: `{tool}` is not installed (bring one up: tests/cluster/local-slurm.sh up)"
    try:
        info = subprocess.run(["sinfo", "-h", "-o", "%R %t"], capture_output=True, text=True, timeout=20)
        acct = subprocess.run(["sacct", "-n", "-X", "-S", "now-1hour"], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "no SLURM cluster: sinfo or sacct did not answer within 20 s"
    if info.returncode != 0:
        why = (info.stderr.strip().splitlines() or ["no output"])[-1][:200]
        return f"no SLURM cluster answers sinfo ({why}); bring one up: tests/cluster/local-slurm.sh up"
    if acct.returncode != 0:
        why = (acct.stderr.strip().splitlines() or ["no output"])[-1][:200]
        return f"the SLURM cluster has no accounting (sacct: {why})"
    partitions = {line.split()[0] for line in info.stdout.splitlines() if line.strip()}
    if not {CPU_PARTITION, GPU_PARTITION} <= partitions:
        return f"the SLURM cluster is not tests/cluster/local-slurm.sh's (partitions {sorted(partitions)})"
    return None


_PROBLEM = _cluster_problem()
if _PROBLEM and os.environ.get("SELFCONSUMING_SLURM_REQUIRED") == "1":  # make test-cluster: a skip would hide it
    pytest.fail(_PROBLEM, pytrace=False)
pytestmark = [pytest.mark.slurm, pytest.mark.skipif(_PROBLEM is not None, reason=_PROBLEM or "")]


# ---- the workflow's own declarations ---------------------------------------------------

def rule_kinds() -> dict[str, str]:
    """rule -> "gpu" (resources **GPU_JOB), "cpu" (**CPU_JOB) or "local" (neither: localrules and `all`)."""
    kinds = {}
    for path in [REPO / "Snakefile", *sorted((REPO / "workflow/rules").glob("*.smk"))]:
        blocks = re.split(r"^rule (\w+):", path.read_text(), flags=re.M)
        for name, body in zip(blocks[1::2], blocks[2::2]):
            kinds[name] = "gpu" if "**GPU_JOB" in body else "cpu" if "**CPU_JOB" in body else "local"
    return kinds


def localrules() -> set[str]:
    text = "\n".join(p.read_text() for p in (REPO / "workflow/rules").glob("*.smk"))
    names = set()
    for block in re.findall(r"^localrules:\s*\n((?:[ \t]+\w+,?\s*\n)+)", text, flags=re.M):
        names |= set(re.findall(r"\w+", block))
    return names


def expected_request(rule: str, device: str) -> dict:
    """What SLURM must be asked for by a job of `rule`, from the config's `resources:`."""
    kind = rule_kinds()[rule]
    res = RESOURCES["gpu_rules"] if kind == "gpu" else RESOURCES["cpu_rules"]
    gpus = RESOURCES["gpus_per_job"] if kind == "gpu" and device == "cuda" else 0
    return {"partition": GPU_PARTITION if gpus else CPU_PARTITION,
            "account": ACCOUNT,
            # CPU rules run single-threaded (`threads: 1`); GPU rules use resources.gpu_rules.threads
            # (as --cpus-per-task, or as --cpus-per-gpu when they ask for a GPU)
            "cpus": res["threads"] if kind == "gpu" else 1,
            "mem_mb": res["mem_mb"],
            "minutes": res["runtime"],
            "gpus": gpus}


# ---- running and asking the cluster ------------------------------------------------------

def cluster_config(base_model: str, device: str) -> dict:
    config = tiny_config(base_model)
    config["setups"] = {s: config["setups"][s] for s in SETUPS}
    config["replicates"] = 1
    config["device"] = device
    config["resources"] = json.loads(json.dumps(RESOURCES))
    return config


def cluster_command(workdir, configfile, *extra) -> list[str]:
    return SNAKEMAKE + ["--directory", str(workdir), "--configfile", str(configfile), *CLUSTER_ARGS, *extra]


def run_uuids(log_text: str) -> list[str]:
    """The plugin's run id (the SLURM job name of every job it submits)."""
    return re.findall(r"SLURM run ID: (\S+)", log_text)


def planned_jobs(workdir, configfile, *extra) -> list[tuple[str, str]]:
    """(rule, the plugin's comment for the job) of every job the cluster command would run."""
    proc = subprocess.run(cluster_command(workdir, configfile, "-n", *extra), capture_output=True, text=True,
                          cwd=REPO, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    jobs = []
    for line in out.splitlines():
        line = line.strip()
        m = re.match(r"^(?:local)?rule (\w+):$", line)
        if m:
            jobs.append([m.group(1), ""])
        elif line.startswith("wildcards: ") and jobs:
            values = [kv.split("=", 1)[1] for kv in line[len("wildcards: "):].split(", ")]
            jobs[-1][1] = "_".join(values).replace("/", "_")
    return [(rule, f"rule_{rule}" + (f"_wildcards_{wc}" if wc else "")) for rule, wc in jobs]


def sacct_jobs(names: list[str], since: datetime) -> list[dict]:
    """The allocations (sacct -X) of every job named after one of the plugin's run ids."""
    proc = subprocess.run(["sacct", "-X", "-P", "-n", "-S", since.strftime("%Y-%m-%dT%H:%M:%S"),
                           "--name", ",".join(names), "-o", ",".join(f"{f}%200" for f in SACCT_FIELDS)],
                          capture_output=True, text=True, timeout=60, check=True)
    return [dict(zip(SACCT_FIELDS, line.split("|"))) for line in proc.stdout.splitlines() if line.strip()]


def settled_sacct_jobs(names, since, expected_count, timeout=60) -> list[dict]:
    """sacct once slurmdbd has recorded every job's end (it trails slurmctld by a little)."""
    deadline = time.time() + timeout
    while True:
        rows = sacct_jobs(names, since)
        if len(rows) >= expected_count and not any(r["State"] in ("PENDING", "RUNNING") for r in rows):
            return rows
        if time.time() > deadline:
            return rows
        time.sleep(2)


def when(field: str) -> datetime | None:
    """A sacct time (Submit, Start, End), or None for a job that never started or has not ended."""
    try:
        return datetime.fromisoformat(field)
    except ValueError:
        return None


def tres(field: str) -> dict[str, str]:
    return dict(kv.split("=", 1) for kv in field.split(",") if "=" in kv)


def mem_mb(value: str) -> int:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT]?)", value)
    assert m, value
    return round(float(m.group(1)) * {"K": 1 / 1024, "M": 1, "": 1, "G": 1024, "T": 1024 ** 2}[m.group(2)])


def minutes(limit: str) -> int:
    days, _, hms = limit.rpartition("-")
    h, m, s = (int(x) for x in hms.split(":"))
    return (int(days) if days else 0) * 1440 + h * 60 + m + (s > 0)


def observed_request(row: dict) -> dict:
    req, alloc = tres(row["ReqTRES"]), tres(row["AllocTRES"])
    return {"partition": row["Partition"],
            "account": row["Account"],
            # a GPU job's --cpus-per-gpu is not in ReqCPUS (1); the allocation shows it
            "cpus": int(alloc.get("cpu", row["ReqCPUS"])),
            "mem_mb": mem_mb(req["mem"]),
            "minutes": minutes(row["Timelimit"]),
            "gpus": int(req.get("gres/gpu", 0))}


def rule_of(comment: str) -> str:
    return comment[len("rule_"):].split("_wildcards_")[0]


def request_table(rows: list[dict], device: str) -> str:
    """One line per rule and request: what sacct recorded, and the jobs' end states."""
    lines = [f"device: {device}",
             f"{'rule':26} {'partition':9} {'cpus':>4} {'mem_mb':>6} {'min':>4} {'gpus':>4}  jobs (states)"]
    seen = {}
    for row in rows:
        obs = observed_request(row)
        key = (rule_of(row["Comment"]), tuple(obs.values()))
        seen.setdefault(key, []).append(row["State"].split()[0])
    for (rule, vals), states in sorted(seen.items()):
        part, _, cpus, mem, mins, gpus = vals
        counts = ", ".join(f"{s} {states.count(s)}" for s in sorted(set(states)))
        lines.append(f"{rule:26} {part:9} {cpus:>4} {mem:>6} {mins:>4} {gpus:>4}  {len(states)} ({counts})")
    return "\n".join(lines)


def squeue_running() -> dict[str, str]:
    """job id -> comment of every running job."""
    proc = subprocess.run(["squeue", "-h", "-t", "RUNNING", "-o", "%i|%k"], capture_output=True, text=True,
                          timeout=30)
    return dict(line.split("|", 1) for line in proc.stdout.splitlines() if "|" in line)


# ---- the runs ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return build_tiny_world_gpt2(tmp_path_factory.mktemp("slurm-model") / "tiny-gpt2")


@pytest.fixture(scope="module")
def cpu_runs(tiny_model, tmp_path_factory):
    """device: cpu. A local run; a cluster run cancelled (scancel) during a fine-tuning, then re-run."""
    work = tmp_path_factory.mktemp("slurm-cpu")
    configfile = write_config(cluster_config(tiny_model, "cpu"), work / "config.yaml")
    local, cluster = work / "local", work / "cluster"
    local.mkdir(), cluster.mkdir()
    since = datetime.now() - timedelta(minutes=1)
    timings = {}

    t = time.time()
    run_snakemake(local, configfile, timeout=RUN_TIMEOUT_S)
    timings["local run"] = time.time() - t
    planned = planned_jobs(cluster, configfile)

    # First cluster run: cancel the fine-tuning of generation 1 while it trains.
    res = cluster / "results/tiny"
    target = f"rule_finetune_wildcards_{CANCELLED_SETUP}_0_1"
    started = res / f"logs/finetune/{CANCELLED_SETUP}/rep0/gen1.log"
    log1 = work / "cluster-run1.log"
    t = time.time()
    with open(log1, "w") as out:
        proc = subprocess.Popen(cluster_command(cluster, configfile), cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            deadline = time.time() + RUN_TIMEOUT_S
            job = None
            while job is None:
                assert proc.poll() is None, f"the cluster run ended before {target} ran:\n{log1.read_text()[-5000:]}"
                assert time.time() < deadline, f"{target} never ran:\n{log1.read_text()[-5000:]}"
                running = [j for j, comment in squeue_running().items() if comment == target]
                if running and started.exists():
                    job = running[0]
                else:
                    time.sleep(0.2)
            timings["cluster run until the cancel"] = time.time() - t
            subprocess.run(["scancel", job], check=True, timeout=30)
            cancelled_at = datetime.now()
            try:
                rc1 = proc.wait(timeout=CANCEL_WAIT_S)
            except subprocess.TimeoutExpired:
                rc1 = None
            exited_at = datetime.now()
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, 9)
                proc.wait()
    model_after_cancel = (res / f"models/{CANCELLED_SETUP}/rep0/gen1").exists()

    # Second cluster run: the same command.
    t = time.time()
    rerun = subprocess.run(cluster_command(cluster, configfile), cwd=REPO, capture_output=True, text=True,
                           timeout=RUN_TIMEOUT_S)
    timings["cluster re-run"] = time.time() - t
    (work / "cluster-run2.log").write_text(rerun.stdout + rerun.stderr)
    uuids = run_uuids(log1.read_text()) + run_uuids(rerun.stdout + rerun.stderr)
    remote = [(r, c) for r, c in planned if rule_kinds()[r] != "local"]
    rows = settled_sacct_jobs(uuids, since, len(remote) + 1)
    return {"work": work, "local": local / "results/tiny", "cluster": res, "planned": planned, "remote": remote,
            "cancelled_job": job, "cancelled_comment": target, "rc1": rc1, "cancelled_at": cancelled_at,
            "exited_at": exited_at, "run1": run_uuids(log1.read_text()),
            "log1": log1.read_text(), "model_after_cancel": model_after_cancel, "rerun": rerun, "uuids": uuids,
            "rows": rows, "timings": timings}


@pytest.fixture(scope="module")
def cuda_run(tiny_model, tmp_path_factory):
    """device: cuda, as far as the first GPU rules: their jobs get a (fake) GPU, start, and fail."""
    work = tmp_path_factory.mktemp("slurm-cuda")
    configfile = write_config(cluster_config(tiny_model, "cuda"), work / "config.yaml")
    until = ["--until", "pretrain_base", "train_classifier"]
    planned = planned_jobs(work, configfile, *until)
    since = datetime.now() - timedelta(minutes=1)
    t = time.time()
    proc = subprocess.run(cluster_command(work, configfile, "--keep-going", *until), cwd=REPO, capture_output=True,
                          text=True, timeout=RUN_TIMEOUT_S)
    seconds = time.time() - t
    out = proc.stdout + proc.stderr
    remote = [(r, c) for r, c in planned if rule_kinds()[r] != "local"]
    rows = settled_sacct_jobs(run_uuids(out), since, len(remote))
    return {"work": work, "proc": proc, "out": out, "planned": planned, "remote": remote, "rows": rows,
            "seconds": seconds}


# ---- device: cpu -------------------------------------------------------------------------

def test_cancelled_finetune_fails_the_run_promptly(cpu_runs):
    r = cpu_runs
    cancelled, exited = r["cancelled_at"], r["exited_at"]
    others = [row for row in r["rows"] if row["JobName"] in r["run1"] and row["JobID"] != r["cancelled_job"]]
    waited_for = max([when(row["End"]) or exited for row in others if when(row["Start"])] + [cancelled])
    print(f"\nscancel {r['cancelled_job']} ({r['cancelled_comment']}): the run exited {r['rc1']} "
          f"{(exited - cancelled).total_seconds():.0f} s later, {(exited - waited_for).total_seconds():.0f} s after "
          f"the last of its other jobs ended")
    assert r["rc1"] is not None, f"the run still waited {CANCEL_WAIT_S} s after the scancel:\n{r['log1'][-5000:]}"
    assert r["rc1"] != 0, r["log1"][-5000:]
    late = [row["Comment"] for row in others if (when(row["Submit"]) - cancelled).total_seconds() > NOTICE_LIMIT_S]
    assert not late, f"jobs submitted over {NOTICE_LIMIT_S} s after the scancel: {late}"
    assert (exited - waited_for).total_seconds() < NOTICE_LIMIT_S, \
        f"the run ended {(exited - waited_for).total_seconds():.0f} s after its last running job"
    states = {row["JobID"]: row["State"] for row in r["rows"]}
    assert states[r["cancelled_job"]].startswith("CANCELLED"), states[r["cancelled_job"]]
    assert not r["model_after_cancel"], "the cancelled fine-tune left a complete-looking model"


def test_rerun_completes_and_redoes_only_what_did_not_finish(cpu_runs):
    r = cpu_runs
    assert r["rerun"].returncode == 0, (r["rerun"].stdout + r["rerun"].stderr)[-8000:]
    assert len(r["uuids"]) == 2, r["uuids"]
    completed = [row["Comment"] for row in r["rows"] if row["State"] == "COMPLETED"]
    redone = {row["Comment"] for row in r["rows"] if row["JobName"] == r["uuids"][1]}
    assert r["cancelled_comment"] in redone
    assert len(completed) == len(set(completed)), "a job that had completed was run again"
    # what the re-run did is what the first run had not completed
    first_completed = {row["Comment"] for row in r["rows"] if row["JobName"] == r["uuids"][0]
                       and row["State"] == "COMPLETED"}
    assert redone == {c for _, c in r["remote"]} - first_completed


def test_every_job_but_the_local_rules_went_through_slurm(cpu_runs):
    r = cpu_runs
    local = {rule for rule, kind in rule_kinds().items() if kind == "local"}
    assert local == localrules() | {"all"}, "a rule without cluster resources is not a localrule"
    planned_rules = {rule for rule, _ in r["planned"]}
    assert {"link_shared_gen0", "finetune_gen0", "finetune", "synthesize", "score_quality", "train_classifier",
            "simulate"} <= planned_rules, planned_rules
    completed = sorted(row["Comment"] for row in r["rows"] if row["State"] == "COMPLETED")
    assert completed == sorted(c for _, c in r["remote"])
    assert not [row for row in r["rows"] if rule_of(row["Comment"]) in local]
    print(f"\n{len(completed)} jobs through SLURM; local: "
          f"{sorted(c for rule, c in r['planned'] if rule in local)}")


def test_cpu_requests_match_the_rules_resources(cpu_runs):
    r = cpu_runs
    print("\n" + request_table(r["rows"], "cpu"))
    print("timings: " + ", ".join(f"{k} {v:.0f} s" for k, v in r["timings"].items()))
    for row in r["rows"]:
        assert observed_request(row) == expected_request(rule_of(row["Comment"]), "cpu"), row


def test_outputs_equal_a_local_run(cpu_runs):
    r = cpu_runs
    local, cluster = tree(r["local"]), tree(r["cluster"])
    assert local.keys() == cluster.keys(), set(local) ^ set(cluster)
    assert differing_files(local, cluster) == {}


# ---- device: cuda -------------------------------------------------------------------------

def test_cuda_requests_match_the_rules_resources(cuda_run):
    r = cuda_run
    print("\n" + request_table(r["rows"], "cuda") + f"\ncuda run: {r['seconds']:.0f} s")
    submitted = sorted(row["Comment"] for row in r["rows"])
    assert submitted == sorted(c for _, c in r["remote"]), r["out"][-5000:]
    gpu_rows = [row for row in r["rows"] if rule_of(row["Comment"]) in ("pretrain_base", "train_classifier")]
    assert len(gpu_rows) == 2
    for row in r["rows"]:
        assert observed_request(row) == expected_request(rule_of(row["Comment"]), "cuda"), row
        # granted what it asked for, and started on the node
        assert tres(row["AllocTRES"]).get("gres/gpu", "0") == str(observed_request(row)["gpus"]), row
    for row in gpu_rows:
        assert row["State"] in ("FAILED", "COMPLETED"), row  # ran; pretrain_base fails for want of CUDA
    assert "torch sees no CUDA device" in r["out"], r["out"][-5000:]
    assert r["proc"].returncode != 0

# Helpers shared by the rules: paths, recipes, resources. No rule lives here.

import os
import shutil
import sys
import tempfile
from pathlib import Path

from selfconsuming.code_deps import code_stamp
from selfconsuming.recipes import (base_decodings, filters, gen0_key, replicate_seed, setup_recipe,
                                   synthetic_generations_for)
from selfconsuming.summary import corpus_identity
from selfconsuming.theory import SIMULATIONS

RESULTS = f"results/{config['run']}"
SETUPS = list(config["setups"])
GENERATIONS = list(range(config["generations"] + 1))
REPLICATES = list(range(config["replicates"]))
RECIPES = {s: setup_recipe(config, s) for s in SETUPS}
WORLD = config["data"]["source"] == "world"
# The data block as the human corpus and the quality detector read it (all but the classifier's
# corpus size), and as the pretraining corpus reads it: sizing the classifier's corpus re-runs
# the classifier and its scores, not the study built on the other corpora.
STUDY_DATA = {k: v for k, v in config["data"].items() if k != "classifier_per_label"}
PRETRAIN_DATA = {"topics": config["data"].get("topics")}
# The classifier block as training reads it: how the scores read synthetic text re-runs the scores only.
CLASSIFIER_TRAINING = {k: v for k, v in config["classifier"].items() if k != "synthetic_text"}
# The base model's own continuations: model.base_continuations decoding (sampled; its
# distribution) and, for like-for-like comparisons with generation 0, each setup's decoding.
BASE_RECIPE = setup_recipe({**config, "setups": {"base": config["model"]["base_continuations"]}}, "base")
BASE_SAMPLES = config["model"]["base_continuations"]["samples"]
BASE_DECODINGS = base_decodings(RECIPES)  # {"base-greedy": recipe, ...}
# Setups that score and filter each synthetic corpus before it trains the next generation.
FILTER_SETUPS = [s for s in SETUPS if filters(RECIPES[s])]


wildcard_constraints:
    setup="|".join(SETUPS),
    rep=r"\d+",
    g=r"\d+",
    key=r"[0-9a-f]{10}",
    base=r"base(-[a-z0-9-]+)?",
    group=r"human|base(-[a-z0-9-]+)?|(" + "|".join(SETUPS) + r")/rep\d+",


def logged(name):
    return f"{RESULTS}/logs/{name}.log"


def benchmarked(name):
    return f"{RESULTS}/benchmarks/{name}.tsv"


def uses_gpu():
    """Whether GPU rules should ask the scheduler for a GPU."""
    if config["device"] == "cuda":
        return True
    return config["device"] == "auto" and shutil.which("nvidia-smi") is not None


def gpu_resources():
    res = dict(config["resources"]["gpu_rules"])
    res.setdefault("threads", 1)
    res["gpu"] = config["resources"]["gpus_per_job"] if uses_gpu() else 0
    return res


def cpu_resources():
    res = dict(config["resources"]["cpu_rules"])
    res.setdefault("threads", 1)
    return res


GPU = gpu_resources()
CPU = cpu_resources()


def job_resources(kind):
    """A rule's `resources:` (mem_mb, runtime, and for GPU rules gpu), derived from the config.

    A GPU rule asks for GPUs only when the config's device is CUDA; then it also books its
    threads as cpus_per_gpu and, when resources.slurm_gpu_partition is set, that partition
    (SLURM reads these; a workstation ignores them). CPU rules never name the GPU partition.
    """
    res = GPU if kind == "gpu" else CPU
    out = {"mem_mb": res["mem_mb"], "runtime": res["runtime"]}
    if kind == "gpu":
        out["gpu"] = res["gpu"]
        if res["gpu"]:
            out["cpus_per_gpu"] = res["threads"]
            if config["resources"]["slurm_gpu_partition"]:
                out["slurm_partition"] = config["resources"]["slurm_gpu_partition"]
    return out


GPU_JOB = job_resources("gpu")
CPU_JOB = job_resources("cpu")


# ---- models ---------------------------------------------------------------
# Every setup runs in config["replicates"] independent replicates: models, corpora and
# scores of replicate r live under <setup>/rep<r>/. The base model, the human corpus and
# the scorers are shared by all replicates.

def base_model_input():
    return [f"{RESULTS}/models/base"] if config["model"]["base"] == "world-gpt2" else []


def shared_gen0_dir(setup, rep):
    return f"{RESULTS}/models/_shared/rep{rep}/gen0-{gen0_key(RECIPES[setup])}"


def setups_with_gen0_key(key):
    return [s for s in SETUPS if gen0_key(RECIPES[s]) == key]


def setup_recipe_param(wildcards):
    return RECIPES[wildcards.setup]


def gen0_recipe_param(wildcards):
    """The recipe behind a shared generation-0 model (any setup with that key has the same)."""
    return RECIPES[setups_with_gen0_key(wildcards.key)[0]]


def replicate_seed_param(wildcards):
    """The seed of everything replicate `rep` draws (training order, sampling, preserved articles)."""
    return replicate_seed(config["seed"], int(wildcards.rep))


def shared_gen0_input(wildcards):
    return shared_gen0_dir(wildcards.setup, wildcards.rep)


def model_dir(setup, rep, g):
    return f"{RESULTS}/models/{setup}/rep{rep}/gen{int(g)}"


def finetune_init_input(wildcards):
    """The model a generation starts from: the previous generation's, or the base model."""
    recipe = RECIPES[wildcards.setup]
    if recipe["finetune"]["init"] == "previous":
        return model_dir(wildcards.setup, wildcards.rep, int(wildcards.g) - 1)
    return base_model_input()


def synthetic_jsonl(setup, rep, g):
    return f"{RESULTS}/synthetic/{setup}/rep{rep}/gen{int(g)}.jsonl"


def filter_scores_file(setup, rep, g):
    return f"{RESULTS}/synthetic/{setup}/rep{rep}/gen{int(g)}.filter.parquet"


def pretrain_corpus_input(recipe):
    """The base model's pretraining corpus, for a from-scratch setup that trains on it too."""
    return {"pretrain": f"{RESULTS}/data/pretrain.jsonl"} if recipe["data"]["scratch_pretrain_articles"] is not None else {}


def training_synthetic_inputs(wildcards):
    """The synthetic corpora a setup trains on at generation g (window, accumulate), their filter
    scores for a filtering setup, and the pretraining corpus when the setup trains on it."""
    recipe = RECIPES[wildcards.setup]
    wanted = synthetic_generations_for(recipe, int(wildcards.g))
    inputs = {f"g{k}": synthetic_jsonl(wildcards.setup, wildcards.rep, k) for k in wanted}
    if filters(recipe):
        inputs.update({f"filter_g{k}": filter_scores_file(wildcards.setup, wildcards.rep, k) for k in wanted})
    return {**inputs, **pretrain_corpus_input(recipe)}


def gen0_extra_inputs(wildcards):
    """The pretraining corpus, when the shared generation-0 model of this key trains on it (from scratch)."""
    return pretrain_corpus_input(RECIPES[setups_with_gen0_key(wildcards.key)[0]])


def filter_param(wildcards):
    return RECIPES[wildcards.setup]["data"]["filter"]


def filter_scorer_inputs(wildcards):
    """What scores a filtering setup's corpora: the detector (tqi), the perplexity model, or nothing (oracle)."""
    by = RECIPES[wildcards.setup]["data"]["filter"]["by"]
    if by == "tqi":
        return {"detector": detector_input()}
    if by == "perplexity":
        return {"lm": perplexity_model_input()}
    return {}


def base_recipe_param(wildcards):
    """The decoding recipe of one base-continuation corpus: `base` (sampled) or `base-<decoding>`."""
    return BASE_RECIPE if wildcards.base == "base" else BASE_DECODINGS[wildcards.base]


def base_samples_param(wildcards):
    return BASE_SAMPLES if wildcards.base == "base" else 1


# ---- corpora and scores ----------------------------------------------------
# A scored corpus is named human, base, base-<decoding>, or <setup>/rep<r>/gen<g>.

BASE_CORPORA = ["base"] + list(BASE_DECODINGS)


def corpus_jsonl(corpus):
    """The article file behind a scored corpus name."""
    if corpus == "human":
        return f"{RESULTS}/data/human.jsonl"
    return f"{RESULTS}/synthetic/{corpus}.jsonl"


def series_name(setup, rep):
    return f"{setup}/rep{rep}"


SERIES = [series_name(s, r) for s in SETUPS for r in REPLICATES]


def series_corpora(series):
    return [f"{series}/gen{g}" for g in GENERATIONS]


def model_corpora():
    return [c for series in SERIES for c in series_corpora(series)]


# Scoring jobs take a group of corpora (the human corpus, one base corpus, or every
# generation of one (setup, replicate) series) so the scorers are loaded once per group.
SCORE_GROUPS = ["human"] + BASE_CORPORA + SERIES


def group_corpora(group):
    return series_corpora(group) if group in SERIES else [group]


def group_corpora_param(wildcards):
    return group_corpora(wildcards.group)


def group_corpus_inputs(wildcards):
    return [corpus_jsonl(c) for c in group_corpora(wildcards.group)]


def setup_model_input(wildcards):
    return model_dir(wildcards.setup, wildcards.rep, wildcards.g)


def series_model_inputs(wildcards):
    return [model_dir(wildcards.setup, wildcards.rep, g) for g in GENERATIONS]


def scored_corpora():
    return [c for group in SCORE_GROUPS for c in group_corpora(group)]


def corpus_decoding(corpus):
    """How a scored corpus was written: the decoding of its setup or base recipe ("human" for the human one)."""
    if corpus == "human":
        return "human"
    if corpus == "base":
        return BASE_RECIPE["decoding"]
    if corpus in BASE_DECODINGS:
        return BASE_DECODINGS[corpus]["decoding"]
    return RECIPES[corpus_identity(corpus)["setup"]]["decoding"]


def classifier_input():
    return [] if config["classifier"]["ready"] else [f"{RESULTS}/classifier/chosen"]


def detector_input():
    return [f"{RESULTS}/quality/detector"] if config["quality"]["detector"] == "train" else []


def perplexity_model_reference():
    """The perplexity reference model from the config ("base" means the base model)."""
    ref = config["quality"]["perplexity_model"]
    return config["model"]["base"] if ref == "base" else ref


def perplexity_model_input():
    return base_model_input() if config["quality"]["perplexity_model"] == "base" else []


# ---- package code a rule depends on ---------------------------------------

SCRIPTS = Path(workflow.basedir) / "scripts"


def code_of(script):
    """The rule's code input: a stamp file standing for the package modules in the import closure of
    its script (computed, not listed), as new as the newest of them, so editing any re-runs the rule."""
    return [str(code_stamp(SCRIPTS / script, SCRIPTS, f"{RESULTS}/.code"))]


def all_outputs():
    outs = [
        f"{RESULTS}/data/report.json",
        f"{RESULTS}/metrics/summary.csv",
        f"{RESULTS}/metrics/findings.csv",
        f"{RESULTS}/metrics/validity.csv",
        f"{RESULTS}/classifier/metrics.csv",
        f"{RESULTS}/neurons/stats.csv",
        f"{RESULTS}/neurons/sets.csv",
        f"{RESULTS}/figures/.done",
    ]
    outs += [f"{RESULTS}/theory/{sim}.csv" for sim in SIMULATIONS]
    if WORLD:
        outs.append(f"{RESULTS}/world/leaning_mix.csv")
    return outs


def theory_overrides(wildcards):
    """The config's parameter overrides for one simulation (empty: its defaults)."""
    return config["theory"].get(wildcards.simulation, {})


def world_mix_corpora(wildcards):
    """Corpora whose oracle leaning mix the world table shows (pretraining only for world-gpt2)."""
    corpora = {"human": f"{RESULTS}/data/human.jsonl"}
    corpora.update({name: corpus_jsonl(name) for name in BASE_CORPORA})
    if config["model"]["base"] == "world-gpt2":
        corpora["pretrain"] = f"{RESULTS}/data/pretrain.jsonl"
    return corpora


def ref_from_input(name, reference):
    """A params function: the rule's input `name` when it has one (a model the workflow made), else `reference`
    (a hub id or path from the config that is not a workflow output)."""

    def param(wildcards, input):
        value = input.get(name, [])
        value = [value] if isinstance(value, str) else list(value)
        return value[0] if value else reference

    return param


# ---- figure groups ---------------------------------------------------------

def mitigation_setups():
    """Setups drawn with the mitigation figures: every setup but the non-greedy decodings."""
    return [s for s in SETUPS if s not in ("beam", "nucleus")]


def decoding_setups():
    return [s for s in SETUPS if s in ("deterministic", "beam", "nucleus")] or SETUPS


JOB_SERVER = {}


def start_job_server():
    """Local runs: model jobs fork from one process with torch and transformers imported
    (selfconsuming.jobserver, Linux only); cluster jobs, jobs in a conda env and `job_server: false`
    run each job in a fresh python."""
    from selfconsuming.jobserver import ENV, start_server

    os.environ.pop(ENV, None)  # a server of another run (an outer one, a shell's) never takes this run's jobs
    if config["job_server"] and workflow.local_exec and sys.platform.startswith("linux"):
        JOB_SERVER["folder"] = tempfile.mkdtemp(prefix="selfconsuming-jobs-")
        JOB_SERVER["process"], _ = start_server(JOB_SERVER["folder"])


def stop_job_server():
    """At the run's end or first error; jobs still running finish on their own."""
    if JOB_SERVER:
        from selfconsuming.jobserver import stop_server

        stop_server(JOB_SERVER.pop("process"))
        shutil.rmtree(JOB_SERVER.pop("folder"), ignore_errors=True)

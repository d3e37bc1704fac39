# Helpers shared by the rules: paths, recipes, resources. No rule lives here.

import shutil
from pathlib import Path

from selfconsuming.recipes import gen0_key, setup_recipe, synthetic_generations_for
from selfconsuming.theory import SIMULATIONS

RESULTS = f"results/{config['run']}"
SETUPS = list(config["setups"])
GENERATIONS = list(range(config["generations"] + 1))
RECIPES = {s: setup_recipe(config, s) for s in SETUPS}
WORLD = config["data"]["source"] == "world"
# The base model's own continuations: model.base_continuations decoding, synthesis defaults.
BASE_RECIPE = setup_recipe({**config, "setups": {"base": config["model"]["base_continuations"]}}, "base")


wildcard_constraints:
    setup="|".join(SETUPS),
    g=r"\d+",
    key=r"[0-9a-f]{10}",
    group=r"human|base|" + "|".join(SETUPS),


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


# ---- models ---------------------------------------------------------------

def base_model_input():
    return [f"{RESULTS}/models/base"] if config["model"]["base"] == "world-gpt2" else []


def shared_gen0_dir(setup):
    return f"{RESULTS}/models/_shared/gen0-{gen0_key(RECIPES[setup])}"


def setups_with_gen0_key(key):
    return [s for s in SETUPS if gen0_key(RECIPES[s]) == key]


def setup_recipe_param(wildcards):
    return RECIPES[wildcards.setup]


def gen0_recipe_param(wildcards):
    """The recipe behind a shared generation-0 model (any setup with that key has the same)."""
    return RECIPES[setups_with_gen0_key(wildcards.key)[0]]


def shared_gen0_input(wildcards):
    return shared_gen0_dir(wildcards.setup)


def model_dir(setup, g):
    return f"{RESULTS}/models/{setup}/gen{int(g)}"


def finetune_init_input(wildcards):
    """The model a generation starts from: the previous generation's, or the base model."""
    recipe = RECIPES[wildcards.setup]
    if recipe["finetune"]["init"] == "previous":
        return model_dir(wildcards.setup, int(wildcards.g) - 1)
    return base_model_input()


def training_synthetic_inputs(wildcards):
    """The synthetic corpora a setup trains on at generation g (window, accumulate)."""
    recipe = RECIPES[wildcards.setup]
    return {
        f"g{k}": f"{RESULTS}/synthetic/{wildcards.setup}/gen{k}.jsonl"
        for k in synthetic_generations_for(recipe, int(wildcards.g))
    }


# ---- corpora and scores ----------------------------------------------------

def corpus_jsonl(corpus):
    """The article file behind a scored corpus name: human, base or <setup>/gen<g>."""
    if corpus == "human":
        return f"{RESULTS}/data/human.jsonl"
    if corpus == "base":
        return f"{RESULTS}/synthetic/base.jsonl"
    return f"{RESULTS}/synthetic/{corpus}.jsonl"


def setup_corpora(setup):
    return [f"{setup}/gen{g}" for g in GENERATIONS]


def model_corpora():
    return [c for s in SETUPS for c in setup_corpora(s)]


# Scoring jobs take a group of corpora (the human corpus, the base model's continuations,
# or every generation of one setup) so the scorers are loaded once per group, not per model.
SCORE_GROUPS = ["human", "base"] + SETUPS


def group_corpora(group):
    return setup_corpora(group) if group in SETUPS else [group]


def group_corpora_param(wildcards):
    return group_corpora(wildcards.group)


def group_corpus_inputs(wildcards):
    return [corpus_jsonl(c) for c in group_corpora(wildcards.group)]


def setup_model_input(wildcards):
    return model_dir(wildcards.setup, wildcards.g)


def setup_model_inputs(wildcards):
    return [model_dir(wildcards.setup, g) for g in GENERATIONS]


def scored_corpora():
    return [c for group in SCORE_GROUPS for c in group_corpora(group)]


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

def package_code(*modules):
    """Source files of package modules a rule imports, so editing them re-runs the rule."""
    root = Path(workflow.basedir) / "scripts" / "selfconsuming"
    files = []
    for m in modules:
        path = root / m
        files += sorted(str(p) for p in path.rglob("*.py")) if path.is_dir() else [str(path.with_suffix(".py"))]
    return files


def all_outputs():
    outs = [
        f"{RESULTS}/data/report.json",
        f"{RESULTS}/metrics/summary.csv",
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
    corpora = {"human": f"{RESULTS}/data/human.jsonl", "base": f"{RESULTS}/synthetic/base.jsonl"}
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

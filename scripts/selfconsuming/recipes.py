"""Setups are data: a recipe is the finetune/synthesis defaults overlaid by one setup's fields."""

import functools
import hashlib
import json
import zlib

FINETUNE_FIELDS = ("epochs", "lr", "batch_size", "weight_decay", "max_length", "init", "optimizer", "warmup_ratio",
                   "max_grad_norm", "grad_accum", "bf16")
SYNTHESIS_FIELDS = ("block_tokens", "new_tokens", "batch_size", "num_beams", "top_p", "temperature")
DATA_FIELDS = ("preserve_fraction", "accumulate", "window", "start_labels", "synthetic_budget", "fresh_human_folds",
               "synthetic_ratio", "synthetic_share", "filter", "scratch_pretrain_articles")
# A model trained from scratch takes the pretraining recipe: these fields fall back to
# model.world_gpt2's rather than finetune's, and its schedule and warmup come along.
SCRATCH_FALLBACKS = ("epochs", "lr", "batch_size")
SCRATCH_FIELDS = ("schedule", "warmup")
# The fields that decide what the generation-0 model is: setups that agree on all
# of them share one trained generation-0 model.
GEN0_FIELDS = ("epochs", "lr", "batch_size", "weight_decay", "max_length", "start_labels")


@functools.lru_cache(maxsize=1)
def _recipe_field_defaults() -> tuple:
    from .config import SCHEMA

    import yaml

    fields = yaml.safe_load(SCHEMA.read_text())["definitions"]["recipe"]["properties"]
    return tuple((k, v["default"]) for k, v in fields.items() if "default" in v)


def recipe_field_defaults() -> dict:
    """Defaults of a setup's own fields (the schema's recipe definition), read from the schema once."""
    return {k: (list(v) if isinstance(v, list) else v) for k, v in _recipe_field_defaults()}


def setup_recipe(config: dict, setup: str) -> dict:
    """The full recipe of one setup: defaults from `finetune` and `synthesis`, then the setup's own fields.

    `config` is a validated config: every default comes from the schema.
    """
    overrides = {**recipe_field_defaults(), **config["setups"][setup]}
    scratch = overrides.get("init", config["finetune"]["init"]) == "scratch"
    pretraining = config["model"]["world_gpt2"] if scratch else {}
    fallback = {k: pretraining[k] if scratch and k in SCRATCH_FALLBACKS else config["finetune"][k] for k in FINETUNE_FIELDS}
    finetune = {k: overrides.get(k, fallback[k]) for k in FINETUNE_FIELDS}
    if scratch:
        finetune.update({k: pretraining[k] for k in SCRATCH_FIELDS})
    synthesis = {k: overrides.get(k, config["synthesis"][k]) for k in SYNTHESIS_FIELDS}
    if "synthesis_batch_size" in overrides:
        synthesis["batch_size"] = overrides["synthesis_batch_size"]
    data = {k: overrides[k] for k in DATA_FIELDS}
    data["start_labels"] = sorted(data["start_labels"] or [])
    return {
        "setup": setup,
        "decoding": overrides["decoding"],
        "finetune": finetune,
        "synthesis": synthesis,
        "data": data,
    }


def is_scratch(recipe: dict) -> bool:
    """Whether every generation of the setup (generation 0 too) starts from a fresh random model."""
    return recipe["finetune"]["init"] == "scratch"


def gen0_recipe(recipe: dict) -> dict:
    """The part of a recipe that determines the generation-0 model.

    A from-scratch setup's generation 0 is trained from scratch too, so the scratch fields
    join its key; other setups keep the key they always had.
    """
    merged = {**recipe["finetune"], **recipe["data"]}
    fields = GEN0_FIELDS + (("init", "scratch_pretrain_articles") + SCRATCH_FIELDS if is_scratch(recipe) else ())
    return {k: merged[k] for k in fields}


def gen0_key(recipe: dict) -> str:
    """Short stable hash naming the shared generation-0 model of every setup with this recipe."""
    blob = json.dumps(gen0_recipe(recipe), sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:10]


def stable_seed(base_seed: int, *parts) -> int:
    """A seed for (setup, generation, purpose) that does not depend on Python's hash salt."""
    text = ":".join(str(p) for p in (base_seed, *parts))
    return zlib.crc32(text.encode()) & 0x7FFFFFFF


def replicate_seed(base_seed: int, replicate: int) -> int:
    """The base seed of one replicate: replicate 0 keeps the config's seed, the others get their own."""
    return base_seed if replicate == 0 else stable_seed(base_seed, "replicate", replicate)


def synthesis_key(recipe: dict) -> tuple:
    """What decides how a model continues a block: the decoding and its synthesis fields."""
    return (recipe["decoding"], json.dumps(recipe["synthesis"], sort_keys=True))


def base_decodings(recipes: dict[str, dict]) -> dict[str, dict]:
    """One base-continuation recipe per distinct decoding among the setups, named base-<decoding>.

    Generation 0 of a setup is compared with the base model decoded the same way. Setups
    of one decoding with different synthesis fields get base-<decoding>-<k> (k = 2, 3, ...).
    """
    named: dict[str, dict] = {}
    seen: dict[tuple, str] = {}
    for recipe in recipes.values():
        key = synthesis_key(recipe)
        if key in seen:
            continue
        name = f"base-{recipe['decoding']}"
        k = 2
        while name in named:
            name, k = f"base-{recipe['decoding']}-{k}", k + 1
        seen[key] = name
        named[name] = {**recipe, "setup": name, "data": {**recipe["data"], "start_labels": []}}
    return named


def base_decoding_of(recipes: dict[str, dict], setup: str) -> str:
    """The name of the base-continuation corpus decoded like `setup`."""
    key = synthesis_key(recipes[setup])
    return next(name for name, r in base_decodings(recipes).items() if synthesis_key(r) == key)


def synthetic_generations_for(recipe: dict, generation: int) -> list[int]:
    """Which earlier synthetic corpora (by generation) train the model of `generation`."""
    if generation == 0:
        return []
    if recipe["data"]["accumulate"]:
        return list(range(generation))
    window = recipe["data"]["window"]
    return list(range(max(0, generation - window), generation))


def uses_all_human(recipe: dict, generation: int) -> bool:
    return generation == 0 or recipe["data"]["accumulate"]


def target_ratio(data: dict) -> float | None:
    """Synthetic articles per real one the training set of generation g >= 1 holds (None: no fixed ratio)."""
    if data["synthetic_share"] is not None:
        share = data["synthetic_share"]
        return share / (1 - share)
    return data["synthetic_ratio"]


def filters(recipe: dict) -> bool:
    """Whether the setup filters its synthetic corpora before they train the next generation."""
    return recipe["data"]["filter"] is not None

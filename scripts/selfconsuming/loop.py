"""One step of the self-consuming loop: fine-tune a generation, or synthesize its corpus."""

import json
import logging

from .finetune import OptimizerRecipe, finetune_causal_lm
from .io import read_jsonl, write_jsonl
from .models import load_causal_lm, load_tokenizer, parse_model_reference, save_model
from .recipes import is_scratch, stable_seed
from .synthesis import synthesize_articles
from .text import article_text
from .training_data import composition, compose_training_corpus, starting_corpus

log = logging.getLogger(__name__)


def fresh_model_like(base_ref: str, seed: int, device: str = "cpu", allow_download: bool = False):
    """A randomly initialised model with the base model's architecture, and the base's tokenizer."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    tokenizer = load_tokenizer(base_ref, allow_download)
    reference = parse_model_reference(base_ref)
    config = AutoConfig.from_pretrained(reference.path, **reference.from_pretrained_kwargs(allow_download))
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = model.config.eos_token_id
    return model.to(device), tokenizer


def read_filter_scores(paths: dict[int, str]) -> dict[int, dict[str, float]]:
    """generation -> {article id: filter score} from the filter files beside the synthetic corpora."""
    if not paths:
        return {}  # no filter: pandas (a second of start-up) stays unimported
    import pandas as pd

    return {g: dict(zip(t["id"], t["score"])) for g, t in ((g, pd.read_parquet(p)) for g, p in paths.items())}


def train_generation(recipe: dict, generation: int, init_model: str, human_path: str,
                     synthetic_paths: dict[int, str], out_dir: str, seed: int, device: str = "cpu",
                     allow_download: bool = False, filter_paths: dict[int, str] | None = None,
                     pretrain_path: str | None = None) -> dict:
    """Train the model of (setup, generation) and save it, with a training.json describing its data.

    `init_model` is the model fine-tuning starts from; for a from-scratch recipe it is the
    base model whose architecture and tokenizer the fresh model takes.
    """
    human = read_jsonl(human_path)
    synthetic = {g: read_jsonl(p) for g, p in synthetic_paths.items()}
    scores = read_filter_scores(filter_paths or {})
    pretrain = read_jsonl(pretrain_path) if pretrain_path else None
    rows = compose_training_corpus(recipe, generation, human, synthetic, seed, filter_scores=scores, pretrain=pretrain)
    counts = composition(rows)
    log.info("setup %s generation %d trains on %d articles: %s", recipe["setup"], generation, len(rows), counts)
    ft = recipe["finetune"]
    # generation 0 is shared by setups with one recipe, so its seed must not name a setup
    seed_parts = ("gen0",) if generation == 0 else (recipe["setup"], generation)
    texts = [article_text(r) for r in rows]
    if is_scratch(recipe):
        from .pretrain import pretrain_causal_lm  # only from-scratch recipes pretrain

        model, tokenizer = fresh_model_like(init_model, stable_seed(seed, *seed_parts, "scratch"), device, allow_download)
        stats = pretrain_causal_lm(
            model, tokenizer, texts, epochs=ft["epochs"], lr=ft["lr"], batch_size=ft["batch_size"],
            weight_decay=ft["weight_decay"], max_length=ft["max_length"], seed=stable_seed(seed, *seed_parts, "finetune"),
            schedule=ft["schedule"], warmup=ft["warmup"], device=device,
        )
    else:
        tokenizer = load_tokenizer(init_model, allow_download)
        model = load_causal_lm(init_model, device, allow_download)
        stats = finetune_causal_lm(
            model, tokenizer, texts,
            epochs=ft["epochs"], lr=ft["lr"], batch_size=ft["batch_size"], weight_decay=ft["weight_decay"],
            max_length=ft["max_length"], seed=stable_seed(seed, *seed_parts, "finetune"), device=device,
            optimizer=OptimizerRecipe.from_finetune(ft),
        )
    info = {"setup": recipe["setup"], "generation": generation, "init": init_model, "recipe": recipe,
            "from_scratch": is_scratch(recipe), "composition": counts, "filtered": filtered_counts(synthetic, rows),
            "training_ids": [r["id"] for r in rows], "stats": stats}
    save_model(model, tokenizer, out_dir, {"training.json": json.dumps(info, indent=2)})
    return info


def filtered_counts(synthetic: dict[int, list[dict]], rows: list[dict]) -> dict[str, dict[str, int]]:
    """Per synthetic corpus: its articles and how many of them made it into the training set
    (what a filter, a budget or a ratio left of it)."""
    used = composition(rows)
    return {f"g{g}": {"articles": len(arts), "used": used.get(f"synthetic:g{g}", 0)} for g, arts in synthetic.items()}


def synthesize_generation(recipe: dict, model_ref: str, human_path: str, out_path: str, seed_parts: tuple,
                          seed: int, device: str = "cpu", allow_download: bool = False, samples: int = 1) -> int:
    """Continue the setup's human articles with the model; write one synthetic article per human one.

    With `samples` > 1 (sampled decoding) each article is continued that many times, each
    pass with its own seed (the first keeps the single-sample seed) and ids `<id>~<k>`.
    """
    articles = starting_corpus(read_jsonl(human_path), recipe)
    tokenizer = load_tokenizer(model_ref, allow_download)
    model = load_causal_lm(model_ref, device, allow_download)
    syn = recipe["synthesis"]
    rows = []
    for k in range(samples):
        part = synthesize_articles(
            model, tokenizer, articles, decoding=recipe["decoding"], block_tokens=syn["block_tokens"],
            new_tokens=syn["new_tokens"], batch_size=syn["batch_size"], num_beams=syn["num_beams"],
            top_p=syn["top_p"], temperature=syn["temperature"],
            seed=stable_seed(seed, *seed_parts, *([k] if k else [])), device=device,
        )
        rows += [{**r, "id": f"{r['id']}~{k}"} for r in part] if samples > 1 else part
    write_jsonl(rows, out_path)
    return len(rows)

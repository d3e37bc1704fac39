"""One step of the self-consuming loop: fine-tune a generation, or synthesize its corpus."""

import json
import logging

from .finetune import OptimizerRecipe, finetune_causal_lm
from .io import read_jsonl, write_jsonl
from .models import load_causal_lm, load_tokenizer, save_model
from .recipes import stable_seed
from .synthesis import synthesize_articles
from .text import article_text
from .training_data import composition, compose_training_corpus, starting_corpus

log = logging.getLogger(__name__)


def train_generation(recipe: dict, generation: int, init_model: str, human_path: str,
                     synthetic_paths: dict[int, str], out_dir: str, seed: int, device: str = "cpu",
                     allow_download: bool = False) -> dict:
    """Fine-tune the model of (setup, generation) and save it, with a training.json describing its data."""
    human = read_jsonl(human_path)
    synthetic = {g: read_jsonl(p) for g, p in synthetic_paths.items()}
    rows = compose_training_corpus(recipe, generation, human, synthetic, seed)
    counts = composition(rows)
    log.info("setup %s generation %d trains on %d articles: %s", recipe["setup"], generation, len(rows), counts)
    tokenizer = load_tokenizer(init_model, allow_download)
    model = load_causal_lm(init_model, device, allow_download)
    ft = recipe["finetune"]
    # generation 0 is shared by setups with one recipe, so its seed must not name a setup
    seed_parts = ("gen0",) if generation == 0 else (recipe["setup"], generation)
    stats = finetune_causal_lm(
        model, tokenizer, [article_text(r) for r in rows],
        epochs=ft["epochs"], lr=ft["lr"], batch_size=ft["batch_size"], weight_decay=ft["weight_decay"],
        max_length=ft["max_length"], seed=stable_seed(seed, *seed_parts, "finetune"), device=device,
        optimizer=OptimizerRecipe.from_finetune(ft),
    )
    info = {"setup": recipe["setup"], "generation": generation, "init": init_model, "recipe": recipe,
            "composition": counts, "training_ids": [r["id"] for r in rows], "stats": stats}
    save_model(model, tokenizer, out_dir, {"training.json": json.dumps(info, indent=2)})
    return info


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

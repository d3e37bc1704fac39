import numpy as np

from selfconsuming.io import read_jsonl
from selfconsuming.models import load_causal_lm, load_tokenizer
from selfconsuming.neurons import mean_block_activations
from selfconsuming.runner import job_device, rule_logging
from selfconsuming.synthesis import corpus_blocks
from selfconsuming.training_data import starting_corpus

with rule_logging(snakemake) as log:
    device = job_device(snakemake)
    p = snakemake.params.neurons
    tokenizer = load_tokenizer(snakemake.input.model)
    model = load_causal_lm(snakemake.input.model, device)
    recipe = snakemake.params.recipe
    articles = starting_corpus(read_jsonl(snakemake.input.human), recipe)
    prompts = corpus_blocks(tokenizer, articles, recipe["synthesis"]["block_tokens"])[0][: p["max_prompts"]]
    values = mean_block_activations(model, prompts, tokenizer.pad_token_id, batch_size=p["batch_size"], device=device)
    log.info("%d prompts -> %d unit activations", len(prompts), len(values))
    np.save(snakemake.output[0], values)

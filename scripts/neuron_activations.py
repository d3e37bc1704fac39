from selfconsuming.io import read_jsonl, write_arrays
from selfconsuming.models import load_causal_lm, load_tokenizer
from selfconsuming.neurons import mean_block_activations
from selfconsuming.runner import job_device, rule_logging
from selfconsuming.synthesis import corpus_blocks
from selfconsuming.training_data import starting_corpus

with rule_logging(snakemake) as log:
    device = job_device(snakemake)
    p = snakemake.params.neurons
    recipe = snakemake.params.recipe
    articles = starting_corpus(read_jsonl(snakemake.input.human), recipe)
    values = {}
    for g, model_path in enumerate(snakemake.input.models):
        tokenizer = load_tokenizer(model_path)
        model = load_causal_lm(model_path, device)
        prompts = corpus_blocks(tokenizer, articles, recipe["synthesis"]["block_tokens"])[0][: p["max_prompts"]]
        values[f"gen{g}"] = mean_block_activations(model, prompts, tokenizer.pad_token_id,
                                                   batch_size=p["batch_size"], device=device)
        log.info("generation %d: %d prompts -> %d unit activations", g, len(prompts), len(values[f"gen{g}"]))
    write_arrays(values, snakemake.output[0])

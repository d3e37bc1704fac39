from selfconsuming.jobserver import delegate

delegate(__real_file__)  # __real_file__: the job script Snakemake wrote; a local run hands it to a preloaded worker

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
    models = list(snakemake.input.models)
    # Every generation of a setup is fine-tuned from one base and saved with its tokenizer,
    # so the prompt blocks (the ones synthesis continues) are cut once for all of them.
    tokenizer = load_tokenizer(models[0])
    articles = starting_corpus(read_jsonl(snakemake.input.human), recipe)
    prompts = corpus_blocks(tokenizer, articles, recipe["synthesis"]["block_tokens"])[0][: p["max_prompts"]]
    values = {}
    for g, model_path in enumerate(models):
        model = load_causal_lm(model_path, device)
        values[f"gen{g}"] = mean_block_activations(model, prompts, tokenizer.pad_token_id,
                                                   batch_size=p["batch_size"], device=device)
    log.info("%d models x %d prompts -> %d unit activations each", len(values), len(prompts), len(values["gen0"]))
    write_arrays(values, snakemake.output[0])

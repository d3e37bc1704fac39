from selfconsuming.io import read_jsonl, write_jsonl
from selfconsuming.models import load_causal_lm, load_tokenizer
from selfconsuming.recipes import stable_seed
from selfconsuming.runner import job_device, rule_logging
from selfconsuming.synthesis import synthesize_articles

with rule_logging(snakemake) as log:
    device = job_device(snakemake)
    recipe, samples = snakemake.params.recipe, snakemake.params.samples
    model = snakemake.params.model
    allow = snakemake.config["allow_download"]
    tokenizer, lm = load_tokenizer(model, allow), load_causal_lm(model, device, allow)
    articles = read_jsonl(snakemake.input.human)
    syn = recipe["synthesis"]
    rows = []
    # Several sampled continuations per human article narrow the base leaning's interval;
    # sample k has its own seed and id suffix (sample 0 keeps the seed a single sample uses).
    for k in range(samples):
        seed = stable_seed(snakemake.params.seed, "base", "base", "synthesis", *([k] if k else []))
        part = synthesize_articles(
            lm, tokenizer, articles, decoding=recipe["decoding"], block_tokens=syn["block_tokens"],
            new_tokens=syn["new_tokens"], batch_size=syn["batch_size"], num_beams=syn["num_beams"],
            top_p=syn["top_p"], temperature=syn["temperature"], seed=seed, device=device,
        )
        rows += [{**r, "id": f"{r['id']}~{k}"} if samples > 1 else r for r in part]
    write_jsonl(rows, snakemake.output[0])
    log.info("wrote %d continuations (%d per human article)", len(rows), samples)

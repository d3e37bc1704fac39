from selfconsuming.diversity import diversity_metrics
from selfconsuming.io import read_jsonl, write_json, write_table
from selfconsuming.models import load_causal_lm, load_tokenizer
from selfconsuming.quality import load_gibberish_detector
from selfconsuming.runner import job_device, rule_logging
from selfconsuming.scoring import quality_table

with rule_logging(snakemake) as log:
    device = job_device(snakemake)
    q = snakemake.params.quality
    articles = read_jsonl(snakemake.input.corpus)
    detector = load_gibberish_detector(snakemake.params.detector, q["label_map"], device=device)
    lm = load_causal_lm(snakemake.params.lm, device, snakemake.config["allow_download"])
    tokenizer = load_tokenizer(snakemake.params.lm, snakemake.config["allow_download"])
    table = quality_table(
        articles, detector, lm, tokenizer, scoring=q["scoring"], ppl_stride=q["perplexity_stride"],
        ppl_batch_size=q["perplexity_batch_size"], device=device, with_oracle=snakemake.params.world,
    )
    diversity = diversity_metrics([a["text"] for a in articles], seed=snakemake.params.seed, params=q["diversity"])
    log.info("mean tqi %.3f, mean ppl %.2f, diversity %s", table["tqi"].mean(), table["ppl"].mean(), diversity)
    write_table(table, snakemake.output.scores)
    write_json(diversity, snakemake.output.diversity)

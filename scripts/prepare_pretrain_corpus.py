from selfconsuming.io import write_jsonl
from selfconsuming.prepare import pretrain_corpus
from selfconsuming.runner import rule_logging

with rule_logging(snakemake) as log:
    articles = pretrain_corpus(snakemake.params.world_gpt2, snakemake.params.data, snakemake.params.seed)
    log.info("pretraining corpus: %d articles", len(articles))
    write_jsonl(articles, snakemake.output[0])

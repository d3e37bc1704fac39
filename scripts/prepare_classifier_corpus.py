from selfconsuming.io import write_jsonl
from selfconsuming.prepare import classifier_corpus
from selfconsuming.runner import rule_logging

with rule_logging(snakemake) as log:
    articles = classifier_corpus(snakemake.params.data, snakemake.params.seed, snakemake.config["allow_download"])
    log.info("classifier corpus: %d articles", len(articles))
    write_jsonl(articles, snakemake.output[0])

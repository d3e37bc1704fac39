from selfconsuming.io import write_json, write_jsonl
from selfconsuming.prepare import human_corpus
from selfconsuming.runner import rule_logging

with rule_logging(snakemake) as log:
    articles, report = human_corpus(snakemake.params.data, snakemake.params.seed,
                                   snakemake.config["allow_download"])
    log.info("human corpus: %d articles; report %s", len(articles), report)
    write_jsonl(articles, snakemake.output.corpus)
    write_json(report, snakemake.output.report)

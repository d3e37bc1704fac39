from selfconsuming.classifier import params_from_config, train_classifiers
from selfconsuming.io import read_jsonl, write_table
from selfconsuming.runner import job_device, rule_logging

with rule_logging(snakemake) as log:
    device = job_device(snakemake)
    c = snakemake.params.classifier
    metrics = train_classifiers(
        read_jsonl(snakemake.input.corpus), c["backbones"], params_from_config(c, snakemake.config["allow_download"]),
        snakemake.output.chosen, seed=snakemake.params.seed, chosen=c.get("chosen"), device=device,
    )
    log.info("classifier grid:\n%s", metrics.to_string())
    write_table(metrics, snakemake.output.metrics)

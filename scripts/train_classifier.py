from selfconsuming.classifier import train_classifiers
from selfconsuming.io import read_jsonl, write_table
from selfconsuming.runner import job_device, rule_logging

with rule_logging(snakemake) as log:
    device = job_device(snakemake)
    c = snakemake.params.classifier
    recipe = {"learning_rate": c["lr"], "batch_size": c["batch_size"], "epochs": c["epochs"],
              "max_length": c["max_length"], "weight_decay": c["weight_decay"],
              "allow_download": snakemake.config["allow_download"]}
    metrics = train_classifiers(
        read_jsonl(snakemake.input.corpus), c["backbones"], recipe, snakemake.output.chosen,
        seed=snakemake.params.seed, chosen=c.get("chosen"), device=device,
    )
    log.info("classifier grid:\n%s", metrics.to_string())
    write_table(metrics, snakemake.output.metrics)

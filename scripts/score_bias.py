from selfconsuming.classifier import load_leaning_classifier
from selfconsuming.io import read_jsonl, write_table
from selfconsuming.runner import job_device, rule_logging
from selfconsuming.scoring import bias_table

with rule_logging(snakemake) as log:
    device = job_device(snakemake)
    classifier = load_leaning_classifier(snakemake.params.classifier, snakemake.params.label_map, device=device)
    table = bias_table(read_jsonl(snakemake.input.corpus), classifier)
    log.info("label counts: %s", table["label"].value_counts().to_dict())
    write_table(table, snakemake.output[0])

from selfconsuming.jobserver import delegate

delegate(__real_file__)  # __real_file__: the job script Snakemake wrote; a local run hands it to a preloaded worker

import pandas as pd

from selfconsuming.classifier import load_leaning_classifier
from selfconsuming.io import read_jsonl, write_table
from selfconsuming.runner import job_device, rule_logging
from selfconsuming.scoring import bias_table

with rule_logging(snakemake) as log:
    device = job_device(snakemake)
    classifier = load_leaning_classifier(snakemake.params.classifier, snakemake.params.label_map, device=device)
    tables = []
    for corpus, path in zip(snakemake.params.corpora, snakemake.input.corpora):
        table = bias_table(read_jsonl(path), classifier, snakemake.params.synthetic_text)
        log.info("%s label counts: %s", corpus, table["label"].value_counts().to_dict())
        tables.append(table.assign(corpus=corpus))
    write_table(pd.concat(tables, ignore_index=True), snakemake.output[0])

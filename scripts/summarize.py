import json

import pandas as pd

from selfconsuming.io import write_table
from selfconsuming.runner import rule_logging
from selfconsuming.summary import corpus_identity, summarise_scores

with rule_logging(snakemake) as log:
    bias = pd.concat([pd.read_parquet(p) for p in snakemake.input.bias], ignore_index=True)
    quality = pd.concat([pd.read_parquet(p) for p in snakemake.input.quality], ignore_index=True)
    diversity = {}
    for path in snakemake.input.diversity:
        with open(path) as f:
            diversity.update(json.load(f))
    rows = []
    for corpus, out_path in zip(snakemake.params.corpora, snakemake.output.scores):
        who = corpus_identity(corpus)
        scores = bias[bias["corpus"] == corpus].drop(columns="corpus").merge(
            quality[quality["corpus"] == corpus].drop(columns="corpus"), on="id", validate="one_to_one")
        scores.insert(1, "setup", who["setup"])
        scores.insert(2, "replicate", who["replicate"])
        scores.insert(3, "generation", who["generation"])
        write_table(scores, out_path)
        decoding = snakemake.params.decodings[corpus]
        rows.append({**who, "decoding": decoding, **summarise_scores(scores, diversity[corpus])})
    summary = pd.DataFrame(rows)
    log.info("summary of %d corpora", len(summary))
    write_table(summary, snakemake.output.summary)

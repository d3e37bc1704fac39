import json

import pandas as pd

from selfconsuming.io import write_table
from selfconsuming.runner import rule_logging
from selfconsuming.summary import corpus_identity, summarise_scores

with rule_logging(snakemake) as log:
    rows = []
    parts = zip(snakemake.params.corpora, snakemake.input.bias, snakemake.input.quality,
                snakemake.input.diversity, snakemake.output.scores)
    for corpus, bias_path, quality_path, diversity_path, out_path in parts:
        who = corpus_identity(corpus)
        scores = pd.read_parquet(bias_path).merge(pd.read_parquet(quality_path), on="id", validate="one_to_one")
        scores.insert(1, "setup", who["setup"])
        scores.insert(2, "generation", who["generation"])
        write_table(scores, out_path)
        with open(diversity_path) as f:
            diversity = json.load(f)
        rows.append({**who, **summarise_scores(scores, diversity)})
    summary = pd.DataFrame(rows)
    log.info("summary of %d corpora", len(summary))
    write_table(summary, snakemake.output.summary)

import numpy as np

from selfconsuming.neurons import checkpoint_weight_summary
from selfconsuming.runner import rule_logging

with rule_logging(snakemake) as log:
    values = checkpoint_weight_summary(snakemake.input.model, snakemake.params.summary)
    log.info("%d unit weight summaries (%s)", len(values), snakemake.params.summary)
    np.save(snakemake.output[0], values)

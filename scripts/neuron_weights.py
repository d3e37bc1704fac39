import numpy as np

from selfconsuming.models import load_causal_lm
from selfconsuming.neurons import mlp_output_weight_summary
from selfconsuming.runner import rule_logging

with rule_logging(snakemake) as log:
    model = load_causal_lm(snakemake.input.model, "cpu")
    values = mlp_output_weight_summary(model, snakemake.params.summary)
    log.info("%d unit weight summaries (%s)", len(values), snakemake.params.summary)
    np.save(snakemake.output[0], values)

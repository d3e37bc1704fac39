import numpy as np

from selfconsuming.io import write_table
from selfconsuming.models import load_causal_lm
from selfconsuming.neurons import unit_table
from selfconsuming.runner import rule_logging
from selfconsuming.summary import corpus_identity

with rule_logging(snakemake) as log:
    config = load_causal_lm(snakemake.input.model, "cpu").config
    ids = [corpus_identity(c) for c in snakemake.params.corpora]
    for kind in ("activations", "weights"):
        values = np.stack([np.load(p) for p in snakemake.input[kind]])
        table = unit_table(values, [i["setup"] for i in ids], [i["generation"] for i in ids], config.num_hidden_layers)
        log.info("%s: %s", kind, table.shape)
        write_table(table, snakemake.output[kind])

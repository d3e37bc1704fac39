import numpy as np

from selfconsuming.io import write_table
from selfconsuming.models import load_causal_lm
from selfconsuming.neurons import unit_frame
from selfconsuming.runner import rule_logging
from selfconsuming.summary import corpus_identity

with rule_logging(snakemake) as log:
    config = load_causal_lm(snakemake.input.model, "cpu").config
    ids = [corpus_identity(c) for c in snakemake.params.corpora]
    for kind in ("activations", "weights"):
        records = [(i["setup"], i["generation"], np.load(p)) for i, p in zip(ids, snakemake.input[kind])]
        table = unit_frame(records, config.num_hidden_layers, config.hidden_size)
        log.info("%s: %s", kind, table.shape)
        write_table(table, snakemake.output[kind])

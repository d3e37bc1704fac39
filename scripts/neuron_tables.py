import numpy as np

from selfconsuming.io import write_table
from selfconsuming.models import load_causal_lm
from selfconsuming.neurons import unit_frame
from selfconsuming.runner import rule_logging

with rule_logging(snakemake) as log:
    config = load_causal_lm(snakemake.input.model, "cpu").config
    for kind in ("activations", "weights"):
        records = []
        for setup, path in zip(snakemake.params.setups, snakemake.input[kind]):
            with np.load(path) as arrays:
                records += [(setup, g, arrays[f"gen{g}"]) for g in snakemake.params.generations]
        table = unit_frame(records, config.num_hidden_layers, config.hidden_size)
        log.info("%s: %s", kind, table.shape)
        write_table(table, snakemake.output[kind])

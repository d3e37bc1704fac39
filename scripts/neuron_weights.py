from selfconsuming.io import write_arrays
from selfconsuming.neurons import checkpoint_weight_summary
from selfconsuming.runner import rule_logging

with rule_logging(snakemake) as log:
    values = {f"gen{g}": checkpoint_weight_summary(model, snakemake.params.summary)
              for g, model in enumerate(snakemake.input.models)}
    log.info("%d models x %d unit weight summaries (%s)", len(values), len(values["gen0"]), snakemake.params.summary)
    write_arrays(values, snakemake.output[0])

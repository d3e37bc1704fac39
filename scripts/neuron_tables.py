from pathlib import Path

from transformers import AutoConfig

from selfconsuming.io import write_table
from selfconsuming.neurons import config_unit_shape, unit_table_from_parts
from selfconsuming.runner import rule_logging

with rule_logging(snakemake) as log:
    series = list(snakemake.params.series)
    # Every model of the run has the base model's shape; read it from the first one's config.
    config = AutoConfig.from_pretrained(str(Path(series[0]["models"][0]).resolve()), local_files_only=True)
    n_layers, hidden = config_unit_shape(config)
    run_dir = Path(snakemake.output.activations).parent.parent  # results/<run>/neurons/x.parquet
    for kind in ("activations", "weights"):
        table = unit_table_from_parts(series, snakemake.input[kind], snakemake.params.generations,
                                      run_dir, n_layers, hidden)
        log.info("%s: %s (%d distinct models)", kind, table.shape, table["model"].nunique())
        write_table(table, snakemake.output[kind])

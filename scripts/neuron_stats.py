import pandas as pd

from selfconsuming.io import write_table
from selfconsuming.neuron_plots import plot_pvalues_by_unit, plot_r_by_layer
from selfconsuming.neurons import neuron_sets, neuron_statistics
from selfconsuming.runner import rule_logging

with rule_logging(snakemake) as log:
    p = snakemake.params.neurons
    stats = neuron_statistics(
        pd.read_parquet(snakemake.input.activations), pd.read_parquet(snakemake.input.weights),
        pd.read_csv(snakemake.input.summary), bias_column=p["bias_metric"], quality_column=p["quality_metric"],
        hac_lags=p["hac_lags"], alpha=p["alpha"], differenced=p["differenced"],
    )
    sets = neuron_sets(stats)
    log.info("significant sets:\n%s", sets.to_string())
    write_table(stats, snakemake.output.stats)
    write_table(sets, snakemake.output.sets)
    plot_r_by_layer(stats, snakemake.output.r_by_layer)
    plot_pvalues_by_unit(stats, snakemake.output.pvalues, p["alpha"])

from selfconsuming.io import write_table
from selfconsuming.runner import rule_logging
from selfconsuming.theory import DEFAULT_PARAMS, SIMULATIONS
from selfconsuming.theory_plots import plot_simulation

with rule_logging(snakemake) as log:
    name = snakemake.wildcards.simulation
    params = {**DEFAULT_PARAMS[name], **snakemake.params.overrides}
    table = SIMULATIONS[name](params, snakemake.params.seed)
    log.info("%s with %s: %d rows", name, params, len(table))
    write_table(table, snakemake.output.table)
    plot_simulation(name, table, snakemake.output.figure)

from selfconsuming.io import write_table
from selfconsuming.runner import rule_logging
from selfconsuming.theory import run_simulation
from selfconsuming.theory_plots import plot_simulation

with rule_logging(snakemake) as log:
    name = snakemake.wildcards.simulation
    table = run_simulation(name, dict(snakemake.params.overrides), snakemake.params.seed)
    log.info("%s: %d rows", name, len(table))
    write_table(table, snakemake.output.table)
    plot_simulation(name, table, snakemake.output.figure)

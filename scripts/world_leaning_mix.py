import pandas as pd

from selfconsuming.io import read_jsonl, write_table
from selfconsuming.runner import rule_logging
from selfconsuming.scoring import oracle_table
from selfconsuming.world_figures import leaning_mix_table, plot_leaning_mix

with rule_logging(snakemake) as log:
    corpora = {
        "pretraining corpus": read_jsonl(snakemake.input.pretrain),
        "human corpus": read_jsonl(snakemake.input.human),
        "base model continuations": read_jsonl(snakemake.input.base),
    }
    table = leaning_mix_table({name: oracle_table(arts) for name, arts in corpora.items()})
    log.info("world leaning mix:\n%s", table.to_string())
    write_table(table, snakemake.output.table)
    plot_leaning_mix(table, snakemake.output.figure)

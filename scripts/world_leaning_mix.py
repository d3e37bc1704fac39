
from selfconsuming.io import read_jsonl, write_table
from selfconsuming.runner import rule_logging
from selfconsuming.scoring import oracle_table
from selfconsuming.world_figures import leaning_mix_table, plot_leaning_mix

with rule_logging(snakemake) as log:
    names = {"pretrain": "pretraining corpus", "human": "human corpus", "base": "base model continuations (sampled)"}
    names.update({key: f"base model continuations, {key[len('base-'):]}" for key in snakemake.input.keys()
                  if key.startswith("base-")})
    corpora = {label: read_jsonl(snakemake.input[key]) for key, label in names.items() if key in snakemake.input.keys()}
    table = leaning_mix_table({name: oracle_table(arts) for name, arts in corpora.items()})
    log.info("world leaning mix:\n%s", table.to_string())
    write_table(table, snakemake.output.table)
    plot_leaning_mix(table, snakemake.output.figure)

import pandas as pd

from selfconsuming.io import write_table
from selfconsuming.runner import rule_logging
from selfconsuming.tables import write_html
from selfconsuming.validity import validity_figure, validity_overall, validity_table, validity_table_html

with rule_logging(snakemake) as log:
    scores = pd.concat([pd.read_parquet(p).assign(corpus=c) for c, p in zip(snakemake.params.corpora, snakemake.input.scores)],
                       ignore_index=True)
    table = validity_table(scores)
    overall = validity_overall(table, classifier_metrics=pd.read_csv(snakemake.input.classifier))
    log.info("instrument validity:\n%s", overall.to_string())
    write_table(table, snakemake.output.table)
    write_table(overall, snakemake.output.overall)
    validity_figure(table, overall, snakemake.output.figure)
    write_html(validity_table_html(table, overall), snakemake.output.html)

import pandas as pd

from selfconsuming.inference import findings, findings_table_html, regimes_table_html
from selfconsuming.io import write_table
from selfconsuming.runner import rule_logging
from selfconsuming.tables import _html_document, write_html

with rule_logging(snakemake) as log:
    summary = pd.read_csv(snakemake.input.summary)
    scores = pd.concat([pd.read_parquet(p) for p in snakemake.input.scores], ignore_index=True)
    f = snakemake.params.findings
    table = findings(summary, scores, baseline=f["baseline"], alpha=f["alpha"], n_boot=f["bootstrap"],
                     seed=snakemake.params.seed, family_by=f["holm_family"] or None)
    log.info("findings:\n%s", table.to_string())
    write_table(table, snakemake.output.table)
    title = "Findings: change, trend and mitigation effect per setup, with 95% CIs across replicates"
    regimes = regimes_table_html(table, f["baseline"], alpha=f["alpha"], summary=summary)
    write_html(_html_document(title, regimes + findings_table_html(table, alpha=f["alpha"])), snakemake.output.html)

import pandas as pd

from selfconsuming import figures, tables
from selfconsuming.io import read_jsonl
from selfconsuming.runner import rule_logging

with rule_logging(snakemake) as log:
    fig = dict(zip(snakemake.params.figure_names, snakemake.output.figures))
    tab = dict(zip(snakemake.params.table_names, snakemake.output.tables))
    summary = pd.read_csv(snakemake.input.summary)
    scores = pd.concat([pd.read_parquet(p) for p in snakemake.input.scores], ignore_index=True)
    decoding, mitigation = snakemake.params.decoding, snakemake.params.mitigation
    labels = figures.setup_labels(snakemake.params.recipes, snakemake.params.n_human)

    figures.plot_leaning_distribution(summary, fig["leaning_distribution"], labels=labels)
    figures.plot_share_across_generations(summary, fig["share_right_decoding"], "right", decoding,
                                          title="Right-leaning share, decoding setups", labels=labels)
    figures.plot_share_across_generations(summary, fig["share_right_mitigation"], "right", mitigation,
                                          title="Right-leaning share, mitigation setups", labels=labels)
    figures.plot_all_shares(summary, fig["shares_all"], labels=labels)
    figures.plot_metric_across_generations(summary, fig["tqi_decoding"], "tqi", None, decoding,
                                           title="Text quality index, decoding setups", labels=labels)
    figures.plot_metric_across_generations(summary, fig["tqi_mitigation"], "tqi", None, mitigation,
                                           title="Text quality index, mitigation setups", labels=labels)
    figures.plot_tqi_distributions(scores, fig["tqi_distributions"], labels=labels)
    figures.plot_metric_across_generations(summary, fig["perplexity"], "ppl", None, log=True, labels=labels)
    figures.plot_diversity(summary, fig["diversity"], labels=labels)
    figures.plot_oracle_vs_classifier(summary, fig["oracle_vs_classifier"], labels=labels)

    tables.write_data_table(tables.classifier_table(pd.read_csv(snakemake.input.classifier)), tab["classifier"],
                            "Leaning classifier: macro F1 and accuracy per backbone")
    tables.write_data_table(tables.summary_table(summary), tab["summary"],
                            "Per-generation summary: replicate means with 95% CIs")
    tables.write_data_table(tables.diversity_table(summary), tab["diversity"], "Linguistic diversity by generation")
    tables.write_data_table(tables.neuron_sets_table(pd.read_csv(snakemake.input.neuron_sets)), tab["neuron_sets"],
                            "Units significant for bias and for quality, and their overlap")
    paths = tables.replicate_corpora(snakemake.params.corpora, snakemake.input.synthetic, replicate=0)
    synthetic = {cell: read_jsonl(path) for cell, path in paths.items()}
    html = tables.example_continuations(read_jsonl(snakemake.input.human), synthetic, scores, replicate=0)
    tables.write_html(html, tab["examples"])
    log.info("wrote %d figures and %d tables", len(fig), len(tab))

from selfconsuming.filtering import filter_score_values, filter_table
from selfconsuming.io import read_jsonl, write_table
from selfconsuming.runner import job_device, rule_logging
from selfconsuming.training_data import filter_seed

with rule_logging(snakemake) as log:
    device = job_device(snakemake)
    spec, q = snakemake.params.filter, snakemake.params.quality
    articles = read_jsonl(snakemake.input.corpus)
    scorers = {}
    if spec["by"] == "tqi":
        from selfconsuming.quality import load_gibberish_detector

        scorers["detector"] = load_gibberish_detector(snakemake.params.detector, q["label_map"], device=device)
    elif spec["by"] == "perplexity":
        from selfconsuming.models import load_causal_lm, load_tokenizer

        scorers["lm"] = load_causal_lm(snakemake.params.lm, device, snakemake.config["allow_download"])
        scorers["tokenizer"] = load_tokenizer(snakemake.params.lm, snakemake.config["allow_download"])
    scores = filter_score_values(articles, spec["by"], scoring=q["scoring"], tqi_sentences=q["tqi_sentences"],
                                 ppl_stride=q["perplexity_stride"],
                                 ppl_batch_size=q["perplexity_batch_size"], device=device, **scorers)
    seed = filter_seed(snakemake.params.seed, snakemake.wildcards.setup, int(snakemake.wildcards.g))
    table = filter_table(articles, scores, spec["by"], spec["drop"], seed)
    write_table(table, snakemake.output[0])
    log.info("%s filter: kept %d of %d articles (dropped the worst %.0f%%); mean score %.3f -> %.3f",
             spec["by"], table["kept"].sum(), len(table), 100 * spec["drop"], table["score"].mean(),
             table.loc[table["kept"], "score"].mean())

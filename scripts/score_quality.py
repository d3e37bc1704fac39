from selfconsuming.jobserver import delegate

delegate(__real_file__)  # __real_file__: the job script Snakemake wrote; a local run hands it to a preloaded worker

import pandas as pd

from selfconsuming.diversity import (
    EncodedOnce, ParsedOnce, diversity_metrics, load_sentence_encoder, load_spacy, resolve_params,
)
from selfconsuming.io import read_jsonl, write_json, write_table
from selfconsuming.models import load_causal_lm, load_tokenizer
from selfconsuming.quality import load_gibberish_detector
from selfconsuming.runner import job_device, rule_logging
from selfconsuming.scoring import quality_table

with rule_logging(snakemake) as log:
    device = job_device(snakemake)
    q = snakemake.params.quality
    detector = load_gibberish_detector(snakemake.params.detector, q["label_map"], device=device)
    lm = load_causal_lm(snakemake.params.lm, device, snakemake.config["allow_download"])
    tokenizer = load_tokenizer(snakemake.params.lm, snakemake.config["allow_download"])
    diversity_params = resolve_params(q["diversity"])
    # the job's device, like every scorer; a text the series repeats is embedded and parsed once
    encoder = EncodedOnce(load_sentence_encoder(diversity_params["encoder"], device))
    nlp = ParsedOnce(load_spacy(diversity_params["spacy_model"]))
    tables, diversity = [], {}
    for corpus, path in zip(snakemake.params.corpora, snakemake.input.corpora):
        articles = read_jsonl(path)
        table = quality_table(
            articles, detector, lm, tokenizer, scoring=q["scoring"], tqi_sentences=q["tqi_sentences"],
            ppl_stride=q["perplexity_stride"], ppl_batch_size=q["perplexity_batch_size"], device=device,
            with_oracle=snakemake.params.world,
        )
        diversity[corpus] = diversity_metrics([a["text"] for a in articles], seed=snakemake.params.seed,
                                              params=diversity_params, encoder=encoder, nlp=nlp)
        log.info("%s: mean tqi %.3f, mean ppl %.2f, diversity %s", corpus, table["tqi"].mean(),
                 table["ppl"].mean(), diversity[corpus])
        tables.append(table.assign(corpus=corpus))
    write_table(pd.concat(tables, ignore_index=True), snakemake.output.scores)
    write_json(diversity, snakemake.output.diversity)

from selfconsuming.io import read_jsonl
from selfconsuming.quality import train_gibberish_detector
from selfconsuming.runner import rule_logging

with rule_logging(snakemake) as log:
    texts = [a["text"] for a in read_jsonl(snakemake.input.human)]
    metrics = train_gibberish_detector(
        texts, seed=snakemake.params.seed, out_dir=snakemake.output[0], max_sentences=snakemake.params.sentences,
    )
    log.info("gibberish detector: %s", metrics)

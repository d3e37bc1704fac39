from selfconsuming.io import read_jsonl
from selfconsuming.prepare import detector_texts
from selfconsuming.quality import detector_world_texts, train_gibberish_detector
from selfconsuming.runner import rule_logging

with rule_logging(snakemake) as log:
    data = snakemake.params.data
    if data["source"] == "world":
        # a fresh world sample of its own (purpose "detector"), never the study's human corpus
        texts = detector_world_texts(snakemake.params.articles, snakemake.params.seed, data.get("topics"))
        source = "world"
    else:
        texts = detector_texts(read_jsonl(snakemake.input.corpus), snakemake.params.articles, snakemake.params.seed)
        source = data["source"]
    metrics = train_gibberish_detector(
        texts, seed=snakemake.params.seed, out_dir=snakemake.output[0], max_sentences=snakemake.params.sentences,
        source=source,
    )
    log.info("gibberish detector trained on %d %s articles in %.1f s (%.1f s CPU): held-out accuracy %.3f",
             len(texts), source, metrics["fit_seconds"], metrics["fit_cpu_seconds"], metrics["accuracy"])
    log.info("held-out recall per class: %s",
             ", ".join(f"{c} {v:.3f}" for c, v in metrics["recall"].items()))
    log.info("gibberish detector: %s", metrics)

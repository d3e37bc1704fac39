# Scores per corpus (the human corpus, the base model's continuations, every model's
# synthetic corpus): leaning, text quality, perplexity, diversity; then the summary.
# A scoring job handles one group of corpora (see SCORE_GROUPS) and writes one row per
# article with its corpus, so each scorer is loaded once per setup rather than per model.


rule train_detector:
    output:
        directory(f"{RESULTS}/quality/detector"),
    input:
        human=f"{RESULTS}/data/human.jsonl",
        code=package_code("quality"),
    params:
        sentences=config["quality"]["detector_sentences"],
        seed=config["seed"],
    log:
        logged("train_detector"),
    benchmark:
        benchmarked("train_detector")
    threads: 1
    resources:
        mem_mb=CPU["mem_mb"],
        runtime=CPU["runtime"],
    conda:
        "../../envs/scoring.yaml"
    script:
        "../../scripts/train_detector.py"


rule score_bias:
    output:
        f"{RESULTS}/scores/parts/{{group}}.bias.parquet",
    input:
        corpora=group_corpus_inputs,
        classifier=classifier_input(),
        code=package_code("scoring", "classifier", "models"),
    params:
        classifier=ref_from_input("classifier", config["classifier"]["ready"]),
        label_map=config["classifier"]["label_map"],
        corpora=group_corpora_param,
    log:
        logged("score_bias/{group}"),
    benchmark:
        benchmarked("score_bias/{group}")
    threads: 1
    resources:
        mem_mb=CPU["mem_mb"],
        runtime=CPU["runtime"],
    conda:
        "../../envs/scoring.yaml"
    script:
        "../../scripts/score_bias.py"


rule score_quality:
    output:
        scores=f"{RESULTS}/scores/parts/{{group}}.quality.parquet",
        diversity=f"{RESULTS}/scores/parts/{{group}}.diversity.json",
    input:
        corpora=group_corpus_inputs,
        detector=detector_input(),
        lm=perplexity_model_input(),
        code=package_code("scoring", "quality", "diversity", "world", "models"),
    params:
        quality=config["quality"],
        detector=ref_from_input("detector", config["quality"]["detector"]),
        lm=ref_from_input("lm", perplexity_model_reference()),
        world=WORLD,
        seed=config["seed"],
        corpora=group_corpora_param,
    log:
        logged("score_quality/{group}"),
    benchmark:
        benchmarked("score_quality/{group}")
    threads: GPU["threads"]
    resources:
        mem_mb=GPU["mem_mb"],
        runtime=GPU["runtime"],
        gpu=GPU["gpu"],
    conda:
        "../../envs/scoring.yaml"
    script:
        "../../scripts/score_quality.py"


rule summarize:
    output:
        summary=report(f"{RESULTS}/metrics/summary.csv", caption="../report/summary.rst", category="Summary"),
        scores=[f"{RESULTS}/scores/{c}.parquet" for c in scored_corpora()],
    input:
        bias=[f"{RESULTS}/scores/parts/{g}.bias.parquet" for g in SCORE_GROUPS],
        quality=[f"{RESULTS}/scores/parts/{g}.quality.parquet" for g in SCORE_GROUPS],
        diversity=[f"{RESULTS}/scores/parts/{g}.diversity.json" for g in SCORE_GROUPS],
        code=package_code("summary"),
    params:
        corpora=scored_corpora(),
    log:
        logged("summarize"),
    benchmark:
        benchmarked("summarize")
    threads: 1
    resources:
        mem_mb=CPU["mem_mb"],
        runtime=CPU["runtime"],
    conda:
        "../../envs/analysis.yaml"
    script:
        "../../scripts/summarize.py"

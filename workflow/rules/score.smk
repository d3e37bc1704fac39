# Scores per corpus (the human corpus, the base model's continuations, every model's
# synthetic corpus): leaning, text quality, perplexity, diversity; then the summary.


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
        f"{RESULTS}/scores/parts/{{corpus}}.bias.parquet",
    input:
        corpus=corpus_jsonl,
        classifier=classifier_input(),
        code=package_code("scoring", "classifier", "models"),
    params:
        classifier=ref_from_input("classifier", config["classifier"]["ready"]),
        label_map=config["classifier"]["label_map"],
    log:
        logged("score_bias/{corpus}"),
    benchmark:
        benchmarked("score_bias/{corpus}")
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
        scores=f"{RESULTS}/scores/parts/{{corpus}}.quality.parquet",
        diversity=f"{RESULTS}/scores/parts/{{corpus}}.diversity.json",
    input:
        corpus=corpus_jsonl,
        detector=detector_input(),
        lm=perplexity_model_input(),
        code=package_code("scoring", "quality", "diversity", "world", "models"),
    params:
        quality=config["quality"],
        detector=ref_from_input("detector", config["quality"]["detector"]),
        lm=ref_from_input("lm", perplexity_model_reference()),
        world=WORLD,
        seed=config["seed"],
    log:
        logged("score_quality/{corpus}"),
    benchmark:
        benchmarked("score_quality/{corpus}")
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
        bias=[f"{RESULTS}/scores/parts/{c}.bias.parquet" for c in scored_corpora()],
        quality=[f"{RESULTS}/scores/parts/{c}.quality.parquet" for c in scored_corpora()],
        diversity=[f"{RESULTS}/scores/parts/{c}.diversity.json" for c in scored_corpora()],
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

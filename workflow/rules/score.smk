# Scores per corpus (the human corpus, the base model's continuations, every model's
# synthetic corpus): leaning, text quality, perplexity, diversity; then the summary.
# A scoring job handles one group of corpora (see SCORE_GROUPS) and writes one row per
# article with its corpus, so each scorer is loaded once per (setup, replicate) series.


rule train_detector:
    output:
        directory(f"{RESULTS}/quality/detector"),
    # On the world: a fresh world sample of its own; on real data a draw from the labelled corpus.
    # Never the human sample the loop starts from.
    input:
        corpus=f"{RESULTS}/data/human.jsonl" if WORLD else f"{RESULTS}/data/classifier.jsonl",
        code=code_of("train_detector.py"),
    params:
        data=STUDY_DATA,
        articles=config["quality"]["detector_articles"],
        sentences=config["quality"]["detector_sentences"],
        seed=config["seed"],
    log:
        logged("train_detector"),
    benchmark:
        benchmarked("train_detector")
    threads: 1
    resources:
        **CPU_JOB,
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
        code=code_of("score_bias.py"),
    params:
        classifier=ref_from_input("classifier", config["classifier"]["ready"]),
        label_map=config["classifier"]["label_map"],
        synthetic_text=config["classifier"]["synthetic_text"],
        corpora=group_corpora_param,
    log:
        logged("score_bias/{group}"),
    benchmark:
        benchmarked("score_bias/{group}")
    # a transformers classifier runs on the job's device: a GPU rule, so it asks for (and locks) a card
    threads: GPU["threads"]
    resources:
        **GPU_JOB,
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
        code=code_of("score_quality.py"),
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
        **GPU_JOB,
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
        code=code_of("summarize.py"),
    params:
        corpora=scored_corpora(),
        decodings={c: corpus_decoding(c) for c in scored_corpora()},
    log:
        logged("summarize"),
    benchmark:
        benchmarked("summarize")
    threads: 1
    resources:
        **CPU_JOB,
    conda:
        "../../envs/analysis.yaml"
    script:
        "../../scripts/summarize.py"


rule validity:
    # Every instrument against the world's oracle (on real data: the classifier's held-out F1 only).
    output:
        table=f"{RESULTS}/metrics/validity.csv",
        overall=f"{RESULTS}/metrics/validity_overall.csv",
        figure=report(f"{RESULTS}/figures/validity.png", caption="../report/validity.rst", category="Instruments"),
        html=report(f"{RESULTS}/tables/validity.html", caption="../report/validity.rst", category="Instruments"),
    input:
        scores=[f"{RESULTS}/scores/{c}.parquet" for c in scored_corpora()],
        classifier=f"{RESULTS}/classifier/metrics.csv",
        code=code_of("validity.py"),
    params:
        corpora=scored_corpora(),
    log:
        logged("validity"),
    benchmark:
        benchmarked("validity")
    threads: 1
    resources:
        **CPU_JOB,
    conda:
        "../../envs/analysis.yaml"
    script:
        "../../scripts/validity.py"


rule findings:
    # Change, trend and mitigation effect per setup and metric, with CIs across replicates.
    output:
        table=report(f"{RESULTS}/metrics/findings.csv", caption="../report/findings.rst", category="Findings"),
        html=report(f"{RESULTS}/tables/findings.html", caption="../report/findings.rst", category="Findings"),
    input:
        summary=f"{RESULTS}/metrics/summary.csv",
        scores=[f"{RESULTS}/scores/{c}.parquet" for c in model_corpora()],
        code=code_of("findings.py"),
    params:
        findings=config["findings"],
        seed=config["seed"],
    log:
        logged("findings"),
    benchmark:
        benchmarked("findings")
    threads: 1
    resources:
        **CPU_JOB,
    conda:
        "../../envs/analysis.yaml"
    script:
        "../../scripts/findings.py"

# The political-leaning classifier the bias scores rely on.


rule train_classifier:
    output:
        metrics=report(f"{RESULTS}/classifier/metrics.csv", caption="../report/classifier_metrics.rst", category="Classifier"),
        chosen=directory(f"{RESULTS}/classifier/chosen"),
    input:
        corpus=f"{RESULTS}/data/classifier.jsonl",
        code=code_of("train_classifier.py"),
    params:
        classifier=CLASSIFIER_TRAINING,
        seed=config["seed"],
    log:
        logged("train_classifier"),
    benchmark:
        benchmarked("train_classifier")
    threads: GPU["threads"]
    resources:
        **GPU_JOB,
    conda:
        "../../envs/scoring.yaml"
    script:
        "../../scripts/train_classifier.py"

# The corpora a run starts from and, offline, the base model pretrained on the world.


rule prepare_corpus:
    output:
        corpus=f"{RESULTS}/data/human.jsonl",
        report=f"{RESULTS}/data/report.json",
    input:
        code=code_of("prepare_corpus.py"),
    params:
        data=STUDY_DATA,
        seed=config["seed"],
    log:
        logged("prepare_corpus"),
    benchmark:
        benchmarked("prepare_corpus")
    threads: 1
    resources:
        **CPU_JOB,
    conda:
        "../../envs/scoring.yaml"
    script:
        "../../scripts/prepare_corpus.py"


rule prepare_classifier_corpus:
    output:
        f"{RESULTS}/data/classifier.jsonl",
    input:
        code=code_of("prepare_classifier_corpus.py"),
    params:
        data=config["data"],
        seed=config["seed"],
    log:
        logged("prepare_classifier_corpus"),
    benchmark:
        benchmarked("prepare_classifier_corpus")
    threads: 1
    resources:
        **CPU_JOB,
    conda:
        "../../envs/scoring.yaml"
    script:
        "../../scripts/prepare_classifier_corpus.py"


rule prepare_pretrain_corpus:
    output:
        f"{RESULTS}/data/pretrain.jsonl",
    input:
        code=code_of("prepare_pretrain_corpus.py"),
    params:
        world_gpt2=config["model"]["world_gpt2"],
        data=PRETRAIN_DATA,
        seed=config["seed"],
    log:
        logged("prepare_pretrain_corpus"),
    benchmark:
        benchmarked("prepare_pretrain_corpus")
    threads: 1
    resources:
        **CPU_JOB,
    conda:
        "../../envs/scoring.yaml"
    script:
        "../../scripts/prepare_pretrain_corpus.py"


rule pretrain_base:
    output:
        directory(f"{RESULTS}/models/base"),
    input:
        corpus=f"{RESULTS}/data/pretrain.jsonl",
        code=code_of("pretrain_base.py"),
    params:
        world_gpt2=config["model"]["world_gpt2"],
        seed=config["seed"],
    log:
        logged("pretrain_base"),
    benchmark:
        benchmarked("pretrain_base")
    threads: config["model"]["world_gpt2"]["threads"]  # fixed by the recipe (local and SLURM alike)
    resources:
        **GPU_JOB,
    conda:
        "../../envs/lm.yaml"
    script:
        "../../scripts/pretrain_base.py"


rule world_leaning_mix:
    output:
        table=report(f"{RESULTS}/world/leaning_mix.csv", caption="../report/world_leaning_mix.rst", category="World"),
        figure=report(f"{RESULTS}/figures/world_leaning_mix.png", caption="../report/world_leaning_mix.rst", category="World"),
    input:
        unpack(world_mix_corpora),
        code=code_of("world_leaning_mix.py"),
    log:
        logged("world_leaning_mix"),
    benchmark:
        benchmarked("world_leaning_mix")
    threads: 1
    resources:
        **CPU_JOB,
    conda:
        "../../envs/scoring.yaml"
    script:
        "../../scripts/world_leaning_mix.py"

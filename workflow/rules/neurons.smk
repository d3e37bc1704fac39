# Which hidden units move with bias and which with quality, across every model.


rule neuron_activations:
    # One job per (setup, replicate) series: every generation's model, one array per generation.
    output:
        f"{RESULTS}/neurons/parts/{{setup}}/rep{{rep}}.activations.npz",
    input:
        models=series_model_inputs,
        human=f"{RESULTS}/data/human.jsonl",
        code=code_of("neuron_activations.py"),
    params:
        recipe=setup_recipe_param,
        neurons=config["neurons"],
    log:
        logged("neuron_activations/{setup}/rep{rep}"),
    benchmark:
        benchmarked("neuron_activations/{setup}/rep{rep}")
    threads: GPU["threads"]
    resources:
        **GPU_JOB,
    conda:
        "../../envs/lm.yaml"
    script:
        "../../scripts/neuron_activations.py"


rule neuron_weights:
    output:
        f"{RESULTS}/neurons/parts/{{setup}}/rep{{rep}}.weights.npz",
    input:
        models=series_model_inputs,
        code=code_of("neuron_weights.py"),
    params:
        summary=config["neurons"]["weight_summary"],
    log:
        logged("neuron_weights/{setup}/rep{rep}"),
    benchmark:
        benchmarked("neuron_weights/{setup}/rep{rep}")
    threads: 1
    resources:
        **CPU_JOB,
    conda:
        "../../envs/lm.yaml"
    script:
        "../../scripts/neuron_weights.py"


rule neuron_tables:
    output:
        activations=f"{RESULTS}/neurons/activations.parquet",
        weights=f"{RESULTS}/neurons/weights.parquet",
    input:
        activations=[f"{RESULTS}/neurons/parts/{s}.activations.npz" for s in SERIES],
        weights=[f"{RESULTS}/neurons/parts/{s}.weights.npz" for s in SERIES],
        code=code_of("neuron_tables.py"),
    params:
        series=[
            {"setup": s, "replicate": r, "models": [model_dir(s, r, g) for g in GENERATIONS]}
            for s in SETUPS
            for r in REPLICATES
        ],
        generations=GENERATIONS,
    log:
        logged("neuron_tables"),
    benchmark:
        benchmarked("neuron_tables")
    threads: 1
    resources:
        **CPU_JOB,
    conda:
        "../../envs/analysis.yaml"
    script:
        "../../scripts/neuron_tables.py"


rule neuron_stats:
    output:
        stats=f"{RESULTS}/neurons/stats.csv",
        sets=report(f"{RESULTS}/neurons/sets.csv", caption="../report/neuron_sets.rst", category="Neurons"),
        r_by_layer=report(f"{RESULTS}/figures/neurons_r_by_layer.png", caption="../report/neurons_r_by_layer.rst", category="Neurons"),
        pvalues=report(f"{RESULTS}/figures/neurons_pvalues.png", caption="../report/neurons_pvalues.rst", category="Neurons"),
    input:
        activations=f"{RESULTS}/neurons/activations.parquet",
        weights=f"{RESULTS}/neurons/weights.parquet",
        summary=f"{RESULTS}/metrics/summary.csv",
        code=code_of("neuron_stats.py"),
    params:
        neurons=config["neurons"],
    log:
        logged("neuron_stats"),
    benchmark:
        benchmarked("neuron_stats")
    threads: 1
    resources:
        **CPU_JOB,
    conda:
        "../../envs/analysis.yaml"
    script:
        "../../scripts/neuron_stats.py"

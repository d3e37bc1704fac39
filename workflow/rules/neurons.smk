# Which hidden units move with bias and which with quality, across every model.


rule neuron_activations:
    output:
        f"{RESULTS}/neurons/parts/{{setup}}/gen{{g}}.activations.npy",
    input:
        model=setup_model_input,
        human=f"{RESULTS}/data/human.jsonl",
        code=package_code("neurons", "models", "training_data", "synthesis"),
    params:
        recipe=setup_recipe_param,
        neurons=config["neurons"],
    log:
        logged("neuron_activations/{setup}/gen{g}"),
    benchmark:
        benchmarked("neuron_activations/{setup}/gen{g}")
    threads: GPU["threads"]
    resources:
        mem_mb=GPU["mem_mb"],
        runtime=GPU["runtime"],
        gpu=GPU["gpu"],
    conda:
        "../../envs/lm.yaml"
    script:
        "../../scripts/neuron_activations.py"


rule neuron_weights:
    output:
        f"{RESULTS}/neurons/parts/{{setup}}/gen{{g}}.weights.npy",
    input:
        model=setup_model_input,
        code=package_code("neurons", "models"),
    params:
        summary=config["neurons"]["weight_summary"],
    log:
        logged("neuron_weights/{setup}/gen{g}"),
    benchmark:
        benchmarked("neuron_weights/{setup}/gen{g}")
    threads: 1
    resources:
        mem_mb=CPU["mem_mb"],
        runtime=CPU["runtime"],
    conda:
        "../../envs/lm.yaml"
    script:
        "../../scripts/neuron_weights.py"


rule neuron_tables:
    output:
        activations=f"{RESULTS}/neurons/activations.parquet",
        weights=f"{RESULTS}/neurons/weights.parquet",
    input:
        activations=[f"{RESULTS}/neurons/parts/{c}.activations.npy" for c in model_corpora()],
        weights=[f"{RESULTS}/neurons/parts/{c}.weights.npy" for c in model_corpora()],
        model=model_dir(SETUPS[0], 0),
        code=package_code("neurons"),
    params:
        corpora=model_corpora(),
    log:
        logged("neuron_tables"),
    benchmark:
        benchmarked("neuron_tables")
    threads: 1
    resources:
        mem_mb=CPU["mem_mb"],
        runtime=CPU["runtime"],
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
        code=package_code("neurons", "neuron_plots"),
    params:
        neurons=config["neurons"],
    log:
        logged("neuron_stats"),
    benchmark:
        benchmarked("neuron_stats")
    threads: 1
    resources:
        mem_mb=CPU["mem_mb"],
        runtime=CPU["runtime"],
    conda:
        "../../envs/analysis.yaml"
    script:
        "../../scripts/neuron_stats.py"

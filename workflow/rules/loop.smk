# The self-consuming loop: fine-tune generation g on its recipe's data, then let it write
# the synthetic corpus that trains generation g+1. Each (setup, replicate) is one series.


rule finetune_gen0:
    # Generation 0 of every setup whose fine-tuning recipe is the same is trained once per replicate.
    output:
        directory(f"{RESULTS}/models/_shared/rep{{rep}}/gen0-{{key}}"),
    input:
        unpack(gen0_extra_inputs),
        base=base_model_input(),
        human=f"{RESULTS}/data/human.jsonl",
        code=code_of("finetune.py"),
    params:
        recipe=gen0_recipe_param,
        init=ref_from_input("base", config["model"]["base"]),
        seed=replicate_seed_param,
    log:
        logged("finetune/_shared/rep{rep}/gen0-{key}"),
    benchmark:
        benchmarked("finetune/_shared/rep{rep}/gen0-{key}")
    threads: GPU["threads"]
    resources:
        **GPU_JOB,
    conda:
        "../../envs/lm.yaml"
    script:
        "../../scripts/finetune.py"


localrules:
    link_shared_gen0,


rule link_shared_gen0:
    # models/<setup>/rep<r>/gen0 points at the shared generation-0 model of its recipe.
    output:
        directory(f"{RESULTS}/models/{{setup}}/rep{{rep}}/gen0"),
    input:
        shared_gen0_input,
    log:
        logged("finetune/{setup}/rep{rep}/gen0"),
    threads: 1
    resources:
        mem_mb=100,
        runtime=1,
    conda:
        "../../envs/lm.yaml"
    shell:
        "ln -sfn ../../_shared/rep{wildcards.rep}/$(basename {input}) {output} 2> {log}"


rule finetune:
    output:
        directory(f"{RESULTS}/models/{{setup}}/rep{{rep}}/gen{{g}}"),
    wildcard_constraints:
        g=r"[1-9]\d*",
    input:
        unpack(training_synthetic_inputs),
        init=finetune_init_input,
        human=f"{RESULTS}/data/human.jsonl",
        code=code_of("finetune.py"),
    params:
        recipe=setup_recipe_param,
        init=ref_from_input("init", config["model"]["base"]),
        seed=replicate_seed_param,
    log:
        logged("finetune/{setup}/rep{rep}/gen{g}"),
    benchmark:
        benchmarked("finetune/{setup}/rep{rep}/gen{g}")
    threads: GPU["threads"]
    resources:
        **GPU_JOB,
    conda:
        "../../envs/lm.yaml"
    script:
        "../../scripts/finetune.py"


rule synthesize:
    output:
        f"{RESULTS}/synthetic/{{setup}}/rep{{rep}}/gen{{g}}.jsonl",
    input:
        model=setup_model_input,
        human=f"{RESULTS}/data/human.jsonl",
        code=code_of("synthesize.py"),
    params:
        recipe=setup_recipe_param,
        seed=replicate_seed_param,
    log:
        logged("synthesize/{setup}/rep{rep}/gen{g}"),
    benchmark:
        benchmarked("synthesize/{setup}/rep{rep}/gen{g}")
    threads: GPU["threads"]
    resources:
        **GPU_JOB,
    conda:
        "../../envs/lm.yaml"
    script:
        "../../scripts/synthesize.py"


rule filter_synthetic:
    # Only setups with a `filter`: score a synthetic corpus and mark the worst share dropped;
    # the next generation's composition drops exactly those (training_data.filter_keep).
    output:
        f"{RESULTS}/synthetic/{{setup}}/rep{{rep}}/gen{{g}}.filter.parquet",
    wildcard_constraints:
        setup="|".join(FILTER_SETUPS) or "(?!)",
    input:
        unpack(filter_scorer_inputs),
        corpus=f"{RESULTS}/synthetic/{{setup}}/rep{{rep}}/gen{{g}}.jsonl",
        code=code_of("filter_synthetic.py"),
    params:
        filter=filter_param,
        quality=config["quality"],
        detector=ref_from_input("detector", config["quality"]["detector"]),
        lm=ref_from_input("lm", perplexity_model_reference()),
        seed=replicate_seed_param,
    log:
        logged("filter_synthetic/{setup}/rep{rep}/gen{g}"),
    benchmark:
        benchmarked("filter_synthetic/{setup}/rep{rep}/gen{g}")
    threads: GPU["threads"]
    resources:
        **GPU_JOB,
    conda:
        "../../envs/scoring.yaml"
    script:
        "../../scripts/filter_synthetic.py"


rule synthesize_base:
    # The base model's own continuations of the human corpus: `base` with model.base_continuations
    # (sampled: its pre-existing leaning), `base-<decoding>` decoded like the setups of that decoding.
    output:
        f"{RESULTS}/synthetic/{{base}}.jsonl",
    input:
        base=base_model_input(),
        human=f"{RESULTS}/data/human.jsonl",
        code=code_of("synthesize.py"),
    params:
        recipe=base_recipe_param,
        samples=base_samples_param,
        model=ref_from_input("base", config["model"]["base"]),
        seed=config["seed"],
    log:
        logged("synthesize/{base}"),
    benchmark:
        benchmarked("synthesize/{base}")
    threads: GPU["threads"]
    resources:
        **GPU_JOB,
    conda:
        "../../envs/lm.yaml"
    script:
        "../../scripts/synthesize.py"

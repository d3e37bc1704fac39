# The self-consuming loop: fine-tune generation g on its recipe's data, then let it write
# the synthetic corpus that trains generation g+1.


rule finetune_gen0:
    # Generation 0 of every setup whose fine-tuning recipe is the same is trained once.
    output:
        directory(f"{RESULTS}/models/_shared/gen0-{{key}}"),
    input:
        base=base_model_input(),
        human=f"{RESULTS}/data/human.jsonl",
        code=package_code("loop", "finetune", "training_data", "recipes", "models"),
    params:
        recipe=gen0_recipe_param,
        init=ref_from_input("base", config["model"]["base"]),
        seed=config["seed"],
    log:
        logged("finetune/_shared/gen0-{key}"),
    benchmark:
        benchmarked("finetune/_shared/gen0-{key}")
    threads: GPU["threads"]
    resources:
        mem_mb=GPU["mem_mb"],
        runtime=GPU["runtime"],
        gpu=GPU["gpu"],
    conda:
        "../../envs/lm.yaml"
    script:
        "../../scripts/finetune.py"


rule link_shared_gen0:
    # models/<setup>/gen0 points at the shared generation-0 model of its recipe.
    output:
        directory(f"{RESULTS}/models/{{setup}}/gen0"),
    input:
        shared_gen0_input,
    log:
        logged("finetune/{setup}/gen0"),
    threads: 1
    resources:
        mem_mb=100,
        runtime=1,
    conda:
        "../../envs/lm.yaml"
    shell:
        "ln -sfn ../_shared/$(basename {input}) {output} 2> {log}"


rule finetune:
    output:
        directory(f"{RESULTS}/models/{{setup}}/gen{{g}}"),
    wildcard_constraints:
        g=r"[1-9]\d*",
    input:
        unpack(training_synthetic_inputs),
        init=finetune_init_input,
        human=f"{RESULTS}/data/human.jsonl",
        code=package_code("loop", "finetune", "training_data", "recipes", "models"),
    params:
        recipe=setup_recipe_param,
        init=ref_from_input("init", config["model"]["base"]),
        seed=config["seed"],
    log:
        logged("finetune/{setup}/gen{g}"),
    benchmark:
        benchmarked("finetune/{setup}/gen{g}")
    threads: GPU["threads"]
    resources:
        mem_mb=GPU["mem_mb"],
        runtime=GPU["runtime"],
        gpu=GPU["gpu"],
    conda:
        "../../envs/lm.yaml"
    script:
        "../../scripts/finetune.py"


rule synthesize:
    output:
        f"{RESULTS}/synthetic/{{setup}}/gen{{g}}.jsonl",
    input:
        model=setup_model_input,
        human=f"{RESULTS}/data/human.jsonl",
        code=package_code("loop", "synthesis", "training_data", "recipes", "models"),
    params:
        recipe=setup_recipe_param,
        seed=config["seed"],
    log:
        logged("synthesize/{setup}/gen{g}"),
    benchmark:
        benchmarked("synthesize/{setup}/gen{g}")
    threads: GPU["threads"]
    resources:
        mem_mb=GPU["mem_mb"],
        runtime=GPU["runtime"],
        gpu=GPU["gpu"],
    conda:
        "../../envs/lm.yaml"
    script:
        "../../scripts/synthesize.py"


rule synthesize_base:
    # The base model's own continuations of the human corpus (model.base_continuations): its pre-existing leaning.
    output:
        f"{RESULTS}/synthetic/base.jsonl",
    input:
        base=base_model_input(),
        human=f"{RESULTS}/data/human.jsonl",
        code=package_code("loop", "synthesis", "recipes", "models"),
    params:
        recipe=BASE_RECIPE,
        samples=config["model"]["base_continuations"].get("samples", 1),
        model=ref_from_input("base", config["model"]["base"]),
        seed=config["seed"],
    log:
        logged("synthesize/base"),
    benchmark:
        benchmarked("synthesize/base")
    threads: GPU["threads"]
    resources:
        mem_mb=GPU["mem_mb"],
        runtime=GPU["runtime"],
        gpu=GPU["gpu"],
    conda:
        "../../envs/lm.yaml"
    script:
        "../../scripts/synthesize.py"

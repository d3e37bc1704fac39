# Statistical simulations with known closed forms, beside the language-model study.


rule simulate:
    output:
        table=report(f"{RESULTS}/theory/{{simulation}}.csv", caption="../report/theory.rst", category="Theory"),
        figure=report(f"{RESULTS}/figures/theory_{{simulation}}.png", caption="../report/theory.rst", category="Theory"),
    wildcard_constraints:
        simulation="|".join(SIMULATIONS),
    input:
        code=code_of("simulate.py"),
    params:
        overrides=theory_overrides,
        seed=config["seed"],
    log:
        logged("simulate/{simulation}"),
    benchmark:
        benchmarked("simulate/{simulation}")
    threads: 1
    resources:
        **CPU_JOB,
    conda:
        "../../envs/analysis.yaml"
    script:
        "../../scripts/simulate.py"

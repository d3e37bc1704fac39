# Figures and tables for the paper and for `snakemake --report`.

FIGURES = {
    "leaning_distribution": "leaning distribution of the base model's continuations and of generation 0",
    "share_right_decoding": "share of right-leaning articles, decoding setups",
    "share_right_mitigation": "share of right-leaning articles, mitigation setups",
    "shares_all": "left, center and right shares across generations",
    "tqi_decoding": "mean text quality index, decoding setups",
    "tqi_mitigation": "mean text quality index, mitigation setups",
    "tqi_distributions": "text quality index distributions per generation",
    "perplexity": "perplexity across generations",
    "diversity": "linguistic diversity across generations",
    "oracle_vs_classifier": "the world oracle's bias and quality next to the classifier's",
}
TABLES = ["classifier", "summary", "diversity", "neuron_sets", "examples"]


rule figures:
    output:
        done=touch(f"{RESULTS}/figures/.done"),
        figures=[
            report(f"{RESULTS}/figures/{name}.png", caption=f"../report/{name}.rst", category="Figures")
            for name in FIGURES
        ],
        tables=[
            report(f"{RESULTS}/tables/{name}.html", caption=f"../report/table_{name}.rst", category="Tables")
            for name in TABLES
        ],
    input:
        summary=f"{RESULTS}/metrics/summary.csv",
        scores=[f"{RESULTS}/scores/{c}.parquet" for c in scored_corpora()],
        classifier=f"{RESULTS}/classifier/metrics.csv",
        neuron_sets=f"{RESULTS}/neurons/sets.csv",
        human=f"{RESULTS}/data/human.jsonl",
        synthetic=[f"{RESULTS}/synthetic/{c}.jsonl" for c in model_corpora()],
        code=code_of("make_figures.py"),
    params:
        figure_names=list(FIGURES),
        table_names=TABLES,
        corpora=model_corpora(),
        decoding=decoding_setups(),
        mitigation=mitigation_setups(),
        recipes=RECIPES,
        n_human=3 * config["data"]["per_label"],
    log:
        logged("figures"),
    benchmark:
        benchmarked("figures")
    threads: 1
    resources:
        **CPU_JOB,
    conda:
        "../../envs/analysis.yaml"
    script:
        "../../scripts/make_figures.py"

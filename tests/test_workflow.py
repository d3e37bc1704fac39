"""The whole DAG on a tiny configuration, and what Snakemake plans after edits."""

import json
import os

import pandas as pd
import pytest

from workflow_helpers import REPO, build_tiny_world_gpt2, dry_run_jobs, run_snakemake, tiny_config, write_config

pytestmark = pytest.mark.slow
AGGREGATIONS = {"summarize", "neuron_tables", "neuron_stats", "figures", "findings", "validity", "world_leaning_mix",
                "all"}
BASE_CORPORA = {"base", "base-greedy", "base-beam", "base-nucleus"}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """Run the tiny workflow once, with its report; later tests read and re-plan it."""
    work = tmp_path_factory.mktemp("tiny-workflow")
    base = build_tiny_world_gpt2(work / "tiny-gpt2")
    config = tiny_config(base)
    configfile = write_config(config, work / "config.yaml")
    run_snakemake(work, configfile)
    run_snakemake(work, configfile, "--report", str(work / "results/tiny/report.html"))
    return work, config, configfile


def test_every_output_of_the_contract_exists(tiny_run):
    work, config, _ = tiny_run
    res = work / "results/tiny"
    setups = list(config["setups"])
    summary = pd.read_csv(res / "metrics/summary.csv")
    assert len(summary) == len(setups) * 2 + 1 + len(BASE_CORPORA)
    assert set(summary["setup"]) == set(setups) | {"human"} | BASE_CORPORA
    assert set(summary.loc[summary["kind"] == "model", "replicate"]) == {0}
    assert set(summary.loc[summary["kind"] != "model", "replicate"]) == {-1}
    assert summary[["tqi_mean", "ppl_mean", "unique_1", "semantic_diversity", "oracle_n"]].notna().all().all()
    # a share is undefined only where no article of the corpus gave the classifier any evidence
    # (the tiny models' text often has none once the human prompt's title is not read with it)
    assert summary.loc[summary["kind"] != "model", "share_right"].notna().all()
    for corpus in summary.loc[summary["share_right"].isna(), "corpus"]:
        assert pd.read_parquet(res / f"scores/{corpus}.parquet")["label"].isna().all(), corpus
    for s in setups:
        for g in (0, 1):
            assert (res / f"models/{s}/rep0/gen{g}/config.json").exists()
            rows = [json.loads(l) for l in open(res / f"synthetic/{s}/rep0/gen{g}.jsonl")]
            assert len(rows) == 9 and all(r["text"] for r in rows)
            scores = pd.read_parquet(res / f"scores/{s}/rep0/gen{g}.parquet")
            assert {"p_left", "p_center", "p_right", "label", "tqi", "ppl", "oracle_valid_share", "replicate"} <= set(scores.columns)
    findings = pd.read_csv(res / "metrics/findings.csv")
    assert {"setup", "metric", "estimate", "ci_lo", "ci_hi", "p", "p_adj", "verdict"} <= set(findings.columns)
    assert set(findings["verdict"]) <= {"increase", "decrease", "no evidence"}
    assert findings["method"].str.contains("bootstrap").any()  # R = 1: the article-level bootstrap
    validity = pd.read_csv(res / "metrics/validity.csv")
    assert {"agreement", "kappa", "oracle_n", "r_tqi_valid"} <= set(validity.columns)
    base = [json.loads(l) for l in open(res / "synthetic/base.jsonl")]
    assert len(base) == 2 * 9 and len({r["id"] for r in base}) == 18  # two samples per human article
    assert len(pd.read_parquet(res / "scores/base.parquet")) == 18
    assert len(pd.read_parquet(res / "neurons/activations.parquet")) == len(setups) * 2
    assert {"relation", "layer", "unit", "r", "p", "significant"} <= set(pd.read_csv(res / "neurons/stats.csv").columns)
    assert pd.read_csv(res / "classifier/metrics.csv")["chosen"].sum() == 1
    for sim in ("weighted_mle", "softmax_collapse", "regression_accumulate", "gaussian_refit"):
        assert (res / f"theory/{sim}.csv").stat().st_size > 0
    assert len(list((res / "figures").glob("*.png"))) >= 15
    report = (res / "report.html").read_text(errors="ignore")
    assert len(report) > 10_000


def test_generation0_is_shared_by_setups_with_the_same_recipe(tiny_run):
    work, _, _ = tiny_run
    models = work / "results/tiny/models"
    targets = {s: os.path.realpath(models / s / "rep0/gen0") for s in ("deterministic", "beam", "nucleus", "preserve",
                                                                   "accumulate", "overfit")}
    assert len({targets[s] for s in ("deterministic", "beam", "nucleus", "preserve", "accumulate")}) == 1
    assert targets["overfit"] != targets["deterministic"]
    assert all("_shared" in t for t in targets.values())


def test_training_data_composition_per_setup(tiny_run):
    work, _, _ = tiny_run
    def composition(setup, g):
        return json.loads((work / f"results/tiny/models/{setup}/rep0/gen{g}/training.json").read_text())["composition"]

    assert composition("deterministic", 0) == {"human": 9}
    assert composition("deterministic", 1) == {"synthetic:g0": 9}
    assert composition("beam", 1) == {"synthetic:g0": 9}
    assert composition("preserve", 1) == {"synthetic:g0": 9, "human": 4}  # ceil(0.34 * 9)
    assert composition("accumulate", 1) == {"human": 9, "synthetic:g0": 9}


def test_every_job_wrote_a_log(tiny_run):
    work, _, _ = tiny_run
    logs = list((work / "results/tiny/logs").rglob("*.log"))
    assert len(logs) > 50
    assert any("fine-tune" in p.read_text() for p in (work / "results/tiny/logs/finetune").rglob("*.log"))


def test_changing_one_setup_replans_only_that_setup(tiny_run, tmp_path):
    work, config, _ = tiny_run
    edited = json.loads(json.dumps(config))
    edited["setups"]["beam"]["num_beams"] = 3
    jobs = dry_run_jobs(work, write_config(edited, tmp_path / "edited.yaml"))
    assert jobs
    for rule, wildcards in jobs:
        assert rule in AGGREGATIONS or "beam" in wildcards, (rule, wildcards)
    assert ("synthesize", "setup=beam, rep=0, g=0") in jobs


def test_changing_a_scoring_parameter_replans_scoring_onward(tiny_run, tmp_path):
    work, config, _ = tiny_run
    edited = json.loads(json.dumps(config))
    edited["quality"]["scoring"] = "study"
    jobs = dry_run_jobs(work, write_config(edited, tmp_path / "edited.yaml"))
    rules = {rule for rule, _ in jobs}
    assert "score_quality" in rules
    assert rules <= {"score_quality"} | AGGREGATIONS, rules


def test_sizing_the_classifier_corpus_replans_the_classifier_onward(tiny_run, tmp_path):
    work, config, _ = tiny_run
    edited = json.loads(json.dumps(config))
    edited["data"]["classifier_per_label"] += 5
    jobs = dry_run_jobs(work, write_config(edited, tmp_path / "edited.yaml"))
    rules = {rule for rule, _ in jobs}
    classifier_branch = {"prepare_classifier_corpus", "train_classifier", "score_bias"}
    assert classifier_branch <= rules
    assert rules <= classifier_branch | AGGREGATIONS, rules - AGGREGATIONS


def _rule_scripts() -> dict[str, str]:
    """rule name -> its script, read from the rule files."""
    import re

    scripts = {}
    for smk in (REPO / "workflow/rules").glob("*.smk"):
        for block in re.split(r"(?m)^rule ", smk.read_text())[1:]:
            m = re.search(r'"\.\./\.\./scripts/([\w]+\.py)"', block)
            if m:
                scripts[block.split(":", 1)[0].strip()] = m.group(1)
    return scripts


def _planned_with_reasons(output: str) -> list[tuple[str, str]]:
    """(rule, reason) of every job a dry run lists."""
    import re

    jobs, rule = [], None
    for line in output.splitlines():
        line = line.strip()
        m = re.match(r"^(?:local)?rule (\w+):", line)
        if m:
            rule = m.group(1)
        elif line.startswith("reason:") and rule:
            jobs.append((rule, line[len("reason:"):].strip()))
            rule = None
    return jobs


def test_editing_any_package_module_replans_exactly_the_rules_that_import_it(tiny_run):
    """For every module of the package: a real edit re-plans the rules whose script imports it
    (directly or through other modules), and every other planned job only follows one of those."""
    from selfconsuming.code_deps import script_modules

    work, _, configfile = tiny_run
    scripts = _rule_scripts()
    package = REPO / "scripts/selfconsuming"
    modules = sorted(p for p in package.rglob("*") if p.is_file() and p.suffix in (".py", ".yaml")
                     and "__pycache__" not in p.parts)
    closures = {rule: set(script_modules(REPO / "scripts" / script, REPO / "scripts")) for rule, script in scripts.items()}
    planned = {rule for rule, _ in dry_run_jobs(work, configfile)}
    assert planned <= {"all"}, f"the finished tiny run should be up to date, plans {planned}"
    forced = run_snakemake(work, configfile, "-n", "--forceall")
    in_dag = {rule for rule, _ in _planned_with_reasons(forced.stdout + "\n" + forced.stderr)}
    for module in modules:
        original, stat = module.read_bytes(), module.stat()
        try:
            module.write_bytes(original + b"\n# an edit\n")
            proc = run_snakemake(work, configfile, "-n")
        finally:
            module.write_bytes(original)
            os.utime(module, (stat.st_atime, stat.st_mtime))
        jobs = _planned_with_reasons(proc.stdout + "\n" + proc.stderr)
        planned = {rule for rule, _ in jobs}
        # Snakemake names a job's own updated inputs only when nothing upstream re-runs, so an
        # importer downstream of another importer may show up as "updated by another job"
        direct = {rule for rule, reason in jobs if "Updated input files" in reason}
        importers = {rule for rule, files in closures.items() if module.resolve() in files} & in_dag
        name = module.relative_to(package)
        assert importers <= planned, (str(name), importers - planned)  # every importer re-runs
        assert direct <= importers, (str(name), direct - importers)  # no one else is triggered
        assert bool(direct) == bool(importers), (str(name), direct)  # e.g. code_deps.py: only the Snakefile uses it
        for rule, reason in jobs:
            assert rule in importers or rule == "all" or reason.startswith("Input files updated by another job"), \
                (str(name), rule, reason)


def test_adding_a_replicate_plans_only_its_jobs_and_the_aggregations(tiny_run, tmp_path):
    work, config, _ = tiny_run
    edited = {**json.loads(json.dumps(config)), "replicates": 2}
    jobs = dry_run_jobs(work, write_config(edited, tmp_path / "edited.yaml"))
    assert ("synthesize", "setup=nucleus, rep=1, g=1") in jobs
    for rule, wildcards in jobs:
        assert rule in AGGREGATIONS or "rep=1" in wildcards or "/rep1" in wildcards, (rule, wildcards)


def test_default_config_plans_66_syntheses_per_replicate(tmp_path):
    import yaml

    jobs = dry_run_jobs(tmp_path, REPO / "config/config.yaml")
    replicates = yaml.safe_load((REPO / "config/config.yaml").read_text())["replicates"]
    assert replicates == 3
    assert sum(rule == "synthesize" for rule, _ in jobs) == 66 * replicates
    assert sum(rule in ("finetune", "finetune_gen0") for rule, _ in jobs) <= 66 * replicates


def test_the_job_server_changes_no_output(tiny_run, tmp_path):
    """The tiny run's model and scoring jobs ran in workers forked from the job server; a run where
    every job starts its own python (job_server: false) writes the same results."""
    from workflow_helpers import differing_files, tree

    work, config, _ = tiny_run
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    run_snakemake(fresh, write_config({**config, "job_server": False}, tmp_path / "fresh.yaml"))
    served = {k: v for k, v in tree(work / "results/tiny").items() if k != "report.html"}
    alone = tree(fresh / "results/tiny")
    assert served.keys() == alone.keys(), set(served) ^ set(alone)
    assert differing_files(served, alone) == {}

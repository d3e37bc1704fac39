"""What a loop job costs outside its real work: one finetune and one synthesize job, each run the way
Snakemake runs a `script:` rule (a fresh `python` on a script with Snakemake's preamble: unpickle the
`snakemake` object, import snakemake.logging and snakemake.iocontainers), on a finished run's files.

Each job runs twice side by side: in a fresh python, and handed to a job server (a worker forked
from one process with torch and transformers imported, as a local run does). Prints per job and way:
wall seconds of the process, training seconds (finetune) and wall minus training,
and which heavy packages the job imported (sklearn, pandas, matplotlib, spaCy, sentence-transformers
must not be). Needs a finished default run (its base model, a generation-0 model, human and
generation-0 synthetic corpora); outputs go to a temporary folder.

Usage: python benchmarks/bench_job.py [results/default] [repeats] [scripts folder, default this checkout's] [rules]
(another checkout's scripts folder measures that code: before vs after, side by side; rules: comma-separated
among finetune, synthesize (the default) and score_quality: one setup's 11 corpora, the same as a run's job)
"""

import json
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from snakemake.iocontainers import InputFiles, Log, OutputFiles, Params, ResourceList, Snakemake, Wildcards

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = Path(sys.argv[3]).resolve() if len(sys.argv) > 3 else REPO / "scripts"
sys.path.insert(0, str(SCRIPTS))

from selfconsuming import jobserver  # noqa: E402
from selfconsuming.config import validated_config  # noqa: E402
from selfconsuming.recipes import replicate_seed, setup_recipe  # noqa: E402

HEAVY = ("sklearn", "pandas", "matplotlib", "spacy", "sentence_transformers", "scipy", "statsmodels")
# Appended to the rule script: which heavy packages ended up imported (written to a side file).
REPORT = """
import json as _json, sys as _sys
_json.dump(sorted({m.split('.')[0] for m in _sys.modules} & set(HEAVY)), open(PATH, 'w'))
"""


def job_script(script: Path, smk: Snakemake, heavy_file: Path) -> str:
    """The rule script with Snakemake's preamble (as snakemake.script.PythonScript writes it)."""
    preamble = (f"import sys; sys.path.extend({[str(SCRIPTS)]!r}); import pickle; "
                f"snakemake = pickle.loads({pickle.dumps(smk, protocol=4)!r}); "
                "from snakemake.logging import logger; from snakemake.iocontainers import Snakemake; "
                f"__real_file__ = __file__; __file__ = {str(script)!r};\n")
    return preamble + script.read_text() + REPORT.replace("HEAVY", repr(HEAVY)).replace("PATH", repr(str(heavy_file)))


def run_job(script: Path, smk: Snakemake, workdir: Path) -> tuple[float, float, list[str]]:
    """Wall and CPU seconds of the job's process (CPU: what a busy machine does not inflate) and the
    heavy packages it imported."""
    path, heavy = workdir / f"{script.stem}.job.py", workdir / f"{script.stem}.heavy.json"
    path.write_text(job_script(script, smk, heavy))
    env = {**os.environ, "PYTHONPATH": str(SCRIPTS)}  # ahead of any installed copy of the package
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run([sys.executable, str(path)], check=True, env=env, cwd=workdir)
    wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, cpu, json.loads(heavy.read_text())


def named_files(cls, files: dict):
    """A Snakemake file list with names; a list value is one name over several files (as `corpora=[...]`)."""
    out = cls()
    for name, value in files.items():
        start = len(out)
        out.extend(value if isinstance(value, list) else [value])
        out._set_name(name, start, end=len(out) if isinstance(value, list) else None)
    return out


def snakemake_object(rule, inputs: dict, output, params: dict, wildcards: dict, config: dict, log: str):
    outputs = named_files(OutputFiles, output) if isinstance(output, dict) else OutputFiles([output])
    return Snakemake(named_files(InputFiles, inputs), outputs, Params(fromdict=params),
                     Wildcards(fromdict=wildcards), 1,
                     ResourceList(fromdict={"_cores": 1, "gpu": 0}), Log([log]), config, rule, None, str(SCRIPTS))


def main(run_dir: str = "results/default", repeats: int = 3, rules: str = "finetune,synthesize") -> None:
    run = Path(run_dir).resolve()
    config = validated_config(yaml.safe_load((REPO / "config" / "config.yaml").read_text()))
    config["device"] = "cpu"
    setup, rep = "deterministic", 0
    recipe = setup_recipe(config, setup)
    seed = replicate_seed(config["seed"], rep)
    gen0 = str(run / "models" / setup / f"rep{rep}" / "gen0")
    human = str(run / "data" / "human.jsonl")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        server = start_job_server(tmp)
        rows = []
        for k in range(repeats):
            for mode in ("fresh", "server"):  # side by side: a fresh python, then a preloaded worker
                if mode == "fresh":
                    os.environ.pop(jobserver.ENV, None)
                else:
                    os.environ[jobserver.ENV] = server
                if "score_quality" in rules:
                    rows.append(("score_quality", mode, *score_quality_job(run, config, tmp, k)))
                if "finetune" not in rules:
                    continue
                out = tmp / f"gen1-{k}-{mode}"
                smk = snakemake_object(
                    "finetune", {"init": gen0, "human": human,
                                 "g0": str(run / "synthetic" / setup / f"rep{rep}" / "gen0.jsonl")},
                    str(out), {"recipe": recipe, "init": gen0, "seed": seed}, {"setup": setup, "rep": str(rep), "g": "1"},
                    config, str(tmp / "finetune.log"))
                wall, cpu, heavy = run_job(SCRIPTS / "finetune.py", smk, tmp)
                train = json.loads((out / "training.json").read_text())["stats"]["seconds"]
                rows.append(("finetune", mode, wall, cpu, train, heavy))
                smk = snakemake_object(
                    "synthesize", {"model": gen0, "human": human}, str(tmp / f"gen0-{k}-{mode}.jsonl"),
                    {"recipe": recipe, "seed": seed}, {"setup": setup, "rep": str(rep), "g": "0"}, config,
                    str(tmp / "synthesize.log"))
                wall, cpu, heavy = run_job(SCRIPTS / "synthesize.py", smk, tmp)
                rows.append(("synthesize", mode, wall, cpu, None, heavy))
    for rule in rules.split(","):
        for mode in ("fresh", "server"):
            mine = [r[:1] + r[2:] for r in rows if r[0] == rule and r[1] == mode]
            walls = [r[1] for r in mine]
            line = (f"{rule} ({mode}): wall {min(walls):.2f} s best of {len(walls)} "
                    f"(runs {', '.join(f'{w:.2f}' for w in walls)})")
            if mode == "fresh":  # a worker's CPU is not the job process's: only a fresh job's is measured
                line += f", CPU {min(r[2] for r in mine):.2f} s"
            if rule == "finetune":
                over = [r[1] - r[3] for r in mine]
                line += (f"; training {min(r[3] for r in mine):.2f} s; wall - training best {min(over):.2f} s, "
                         f"mean {sum(over) / len(over):.2f} s (target <= 2 s)")
            # a worker holds what the server preloaded: only a fresh job shows what the job itself imports
            print(line + (f"; heavy imports: {mine[-1][4] or 'none'}" if mode == "fresh" else ""))


def start_job_server(folder: Path) -> str:
    """A job server as a local run starts one (selfconsuming.jobserver); returns its socket once it accepts."""
    process, path = jobserver.start_server(str(folder))
    jobserver.wait_until_accepting(process, path)
    return path


def score_quality_job(run: Path, config: dict, tmp: Path, k: int):
    """score_quality of one setup's replicate: its 11 corpora (generations 0-10), as the run groups them."""
    corpora = [f"deterministic/rep0/gen{g}" for g in range(config["generations"] + 1)]
    detector, lm = str(run / "quality" / "detector"), str(run / "models" / "base")
    smk = snakemake_object(
        "score_quality", {"corpora": [str(run / "synthetic" / f"{c}.jsonl") for c in corpora], "detector": detector,
                          "lm": lm},
        {"scores": str(tmp / f"q{k}.parquet"), "diversity": str(tmp / f"d{k}.json")},
        {"quality": config["quality"], "detector": detector, "lm": lm, "world": True, "seed": config["seed"],
         "corpora": corpora}, {"group": "deterministic/rep0"}, config, str(tmp / "score_quality.log"))
    wall, cpu, heavy = run_job(SCRIPTS / "score_quality.py", smk, tmp)
    return wall, cpu, None, heavy


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "results/default", int(sys.argv[2]) if len(sys.argv) > 2 else 3,
         *sys.argv[4:5])

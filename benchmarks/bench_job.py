"""What a loop job costs outside its real work: one finetune and one synthesize job, each run the way
Snakemake runs a `script:` rule (a fresh `python` on a script with Snakemake's preamble: unpickle the
`snakemake` object, import snakemake.logging and snakemake.iocontainers), on a finished run's files.

Prints per job: wall seconds of the process, training seconds (finetune) and wall minus training,
and which heavy packages the job imported (sklearn, pandas, matplotlib, spaCy, sentence-transformers
must not be). Needs a finished default run (its base model, a generation-0 model, human and
generation-0 synthetic corpora); outputs go to a temporary folder.

Usage: python benchmarks/bench_job.py [results/default] [repeats] [scripts folder, default this checkout's]
(another checkout's scripts folder measures that code: before vs after, side by side)
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


def snakemake_object(rule, inputs: dict, output: str, params: dict, wildcards: dict, config: dict, log: str):
    return Snakemake(InputFiles(fromdict=inputs), OutputFiles([output]), Params(fromdict=params),
                     Wildcards(fromdict=wildcards), 1,
                     ResourceList(fromdict={"_cores": 1, "gpu": 0}), Log([log]), config, rule, None, str(SCRIPTS))


def main(run_dir: str = "results/default", repeats: int = 3) -> None:
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
        rows = []
        for k in range(repeats):
            out = tmp / f"gen1-{k}"
            smk = snakemake_object(
                "finetune", {"init": gen0, "human": human, "g0": str(run / "synthetic" / setup / f"rep{rep}" / "gen0.jsonl")},
                str(out), {"recipe": recipe, "init": gen0, "seed": seed}, {"setup": setup, "rep": str(rep), "g": "1"},
                config, str(tmp / "finetune.log"))
            wall, cpu, heavy = run_job(SCRIPTS / "finetune.py", smk, tmp)
            train = json.loads((out / "training.json").read_text())["stats"]["seconds"]
            rows.append(("finetune", wall, cpu, train, heavy))
            smk = snakemake_object(
                "synthesize", {"model": gen0, "human": human}, str(tmp / f"gen0-{k}.jsonl"),
                {"recipe": recipe, "seed": seed}, {"setup": setup, "rep": str(rep), "g": "0"}, config,
                str(tmp / "synthesize.log"))
            wall, cpu, heavy = run_job(SCRIPTS / "synthesize.py", smk, tmp)
            rows.append(("synthesize", wall, cpu, None, heavy))
    for rule in ("finetune", "synthesize"):
        mine = [r for r in rows if r[0] == rule]
        walls = [r[1] for r in mine]
        line = (f"{rule}: wall {min(walls):.2f} s best of {len(walls)} (runs {', '.join(f'{w:.2f}' for w in walls)}), "
                f"CPU {min(r[2] for r in mine):.2f} s")
        if rule == "finetune":
            over = [r[1] - r[3] for r in mine]
            line += (f"; training {min(r[3] for r in mine):.2f} s; wall - training best {min(over):.2f} s, "
                     f"mean {sum(over) / len(over):.2f} s (target <= 2 s)")
        print(line + f"; heavy imports: {mine[-1][4] or 'none'}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "results/default", int(sys.argv[2]) if len(sys.argv) > 2 else 3)

"""Synthesis seconds per corpus on one core: a finished run's generation-0 model continues its human
corpus (45 articles in the default run) with each decoding of the default config, at its batch sizes.

With a second checkout's scripts folder, its synthesis module runs side by side in this process
(before vs after), each with its checkout's config (batch sizes), and the outputs must be identical.

Usage: python benchmarks/bench_synthesis.py [results/default] [other checkout's scripts folder]
"""

import importlib.util
import sys
import time
from pathlib import Path

import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

from selfconsuming import synthesis  # noqa: E402
from selfconsuming.config import validated_config  # noqa: E402
from selfconsuming.io import read_jsonl  # noqa: E402
from selfconsuming.models import load_causal_lm, load_tokenizer  # noqa: E402
from selfconsuming.recipes import setup_recipe  # noqa: E402

TARGETS = {"greedy": 3.0, "beam": 10.0}


def other_synthesis(scripts: str):
    """The synthesis module of another checkout (it imports nothing else from the package)."""
    spec = importlib.util.spec_from_file_location("synthesis_other", Path(scripts) / "selfconsuming" / "synthesis.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def timed(module, model, tokenizer, articles, recipe) -> tuple[float, float, list[str]]:
    """Wall and CPU seconds of one corpus (CPU time is what a shared machine cannot inflate), and its texts."""
    syn = recipe["synthesis"]
    start, cpu = time.perf_counter(), time.process_time()
    out = module.synthesize_articles(
        model, tokenizer, articles, decoding=recipe["decoding"], block_tokens=syn["block_tokens"],
        new_tokens=syn["new_tokens"], batch_size=syn["batch_size"], num_beams=syn["num_beams"], top_p=syn["top_p"],
        temperature=syn["temperature"], seed=0)
    return time.perf_counter() - start, time.process_time() - cpu, [a["text"] for a in out]


def seconds(result) -> str:
    return f"{result[0]:.2f} s wall, {result[1]:.2f} s CPU"


def main(run_dir: str = "results/default", other: str | None = None) -> None:
    torch.set_num_threads(1)
    run = Path(run_dir)
    configs = {name: validated_config(yaml.safe_load((root / "config" / "config.yaml").read_text()))
               for name, root in {"this": REPO, **({"other": Path(other).resolve().parent} if other else {})}.items()}
    config = configs["this"]
    model_dir = str(run / "models" / "deterministic" / "rep0" / "gen0")
    model, tokenizer = load_causal_lm(model_dir), load_tokenizer(model_dir)
    articles = read_jsonl(run / "data" / "human.jsonl")
    modules = {"this": synthesis, **({"other": other_synthesis(other)} if other else {})}
    timed(synthesis, model, tokenizer, articles[:3], setup_recipe(config, "deterministic"))  # warm-up
    for setup in ("deterministic", "beam", "nucleus"):
        recipe = setup_recipe(config, setup)
        results = {name: timed(module, model, tokenizer, articles, setup_recipe(configs[name], setup))
                   for name, module in modules.items()}
        line = f"{recipe['decoding']:8s} ({len(articles)} articles): this checkout {seconds(results['this'])}"
        if other:
            line += f", {other}: {seconds(results['other'])}"
            same = sum(a == b for a, b in zip(results["this"][2], results["other"][2]))
            line += f", identical articles {same}/{len(articles)}"
        target = TARGETS.get(recipe["decoding"])
        print(line + (f" (target <= {target:.0f} s)" if target else ""), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:3])

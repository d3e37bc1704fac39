"""What a setup trains on at each generation: the composition rules of DESIGN.md section 3."""

import math

import numpy as np

from .recipes import stable_seed, synthetic_generations_for, uses_all_human


def starting_corpus(human: list[dict], recipe: dict) -> list[dict]:
    """The human articles a setup starts from (all, or only the labels it names)."""
    labels = recipe["data"]["start_labels"]
    return [a for a in human if not labels or a["label"] in labels]


def preserved_count(fraction: float, n_start: int) -> int:
    """Real articles a preserving setup adds: ceil(fraction x n), so any positive fraction keeps at least one."""
    return min(n_start, math.ceil(round(fraction * n_start, 9)))


def compose_training_corpus(
    recipe: dict, generation: int, human: list[dict], synthetic: dict[int, list[dict]], seed: int
) -> list[dict]:
    """Articles for fine-tuning generation `generation` of a setup.

    `synthetic` maps generation -> that generation's synthetic articles (of this setup).
    Each returned row carries `origin` ("human" or "synthetic:g<k>") so the
    composition can be checked and reported.
    """
    start = starting_corpus(human, recipe)
    wanted = synthetic_generations_for(recipe, generation)
    missing = [g for g in wanted if g not in synthetic]
    if missing:
        raise ValueError(f"setup {recipe['setup']!r} generation {generation} needs synthetic corpora of generations {missing}")
    rows = []
    if uses_all_human(recipe, generation):
        rows += [{**a, "origin": "human"} for a in start]
    pool = [{**a, "origin": f"synthetic:g{g}"} for g in wanted for a in synthetic[g]]
    budget = recipe["data"]["synthetic_budget"]
    if budget is not None and len(pool) > budget:
        rng = np.random.default_rng(stable_seed(seed, recipe["setup"], generation, "budget"))
        keep = np.sort(rng.choice(len(pool), size=budget, replace=False))
        pool = [pool[i] for i in keep]
    rows += pool
    fraction = recipe["data"]["preserve_fraction"]
    if generation > 0 and fraction > 0 and not recipe["data"]["accumulate"]:
        n_real = preserved_count(fraction, len(start))
        rng = np.random.default_rng(stable_seed(seed, recipe["setup"], generation, "preserve"))
        pick = np.sort(rng.choice(len(start), size=n_real, replace=False))
        rows += [{**start[i], "origin": "human"} for i in pick]
    return rows


def composition(rows: list[dict]) -> dict[str, int]:
    """Count rows per origin, for the fine-tuning report and tests."""
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["origin"]] = counts.get(r["origin"], 0) + 1
    return counts

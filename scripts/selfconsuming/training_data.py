"""What a setup trains on at each generation: the composition rules of DESIGN.md section 3."""

import math

import numpy as np

from .recipes import stable_seed, synthetic_generations_for, target_ratio, uses_all_human

# Which way each filter score points: True when a higher score is a better article.
FILTER_HIGHER_IS_BETTER = {"tqi": True, "perplexity": False, "oracle_valid": True}


def starting_corpus(human: list[dict], recipe: dict) -> list[dict]:
    """The human articles a setup starts from (all, or only the labels it names)."""
    labels = recipe["data"]["start_labels"]
    return [a for a in human if not labels or a["label"] in labels]


def preserved_count(fraction: float, n_start: int) -> int:
    """Real articles a preserving setup adds: ceil(fraction x n), so any positive fraction keeps at least one."""
    return min(n_start, math.ceil(round(fraction * n_start, 9)))


def human_folds(start: list[dict], k: int, seed: int) -> list[list[dict]]:
    """K disjoint folds of the starting corpus, stratified by leaning: each leaning's articles are
    shuffled (seeded) and dealt round-robin, so every fold is as balanced as the corpus."""
    rng = np.random.default_rng(seed)
    folds: list[list[dict]] = [[] for _ in range(k)]
    dealt = 0
    for label in sorted({a["label"] for a in start}):
        members = [a for a in start if a["label"] == label]
        for j, i in enumerate(rng.permutation(len(members))):
            folds[(dealt + j) % k].append(members[i])
        dealt += len(members)
    return folds


def filter_keep(scores, drop: float, higher_is_better: bool, seed: int) -> np.ndarray:
    """Mask of the articles a filter keeps: it drops exactly floor(drop x n) with the worst scores.

    A missing score (NaN: no sentence to score) is the worst; ties are broken by a seeded draw
    so that the dropped share is exact however many articles share a score.
    """
    scores = np.asarray(scores, dtype=float)
    n = len(scores)
    n_drop = math.floor(round(drop * n, 9))
    badness = -scores if higher_is_better else scores
    badness = np.where(np.isnan(badness), np.inf, badness)
    tiebreak = np.random.default_rng(seed).random(n)
    order = np.lexsort((tiebreak, -badness))  # worst first
    keep = np.ones(n, dtype=bool)
    keep[order[:n_drop]] = False
    return keep


def filter_seed(seed: int, setup: str, generation: int) -> int:
    """Seed of the tie-break when filtering the synthetic corpus of (setup, generation)."""
    return stable_seed(seed, setup, generation, "filter")


def _subsample(rows: list[dict], size: int, seed: int) -> list[dict]:
    if len(rows) <= size:
        return rows
    keep = np.sort(np.random.default_rng(seed).choice(len(rows), size=size, replace=False))
    return [rows[i] for i in keep]


def _filtered(recipe: dict, generation: int, rows: list[dict], scores: dict[str, float] | None, seed: int) -> list[dict]:
    spec = recipe["data"]["filter"]
    if spec is None:
        return rows
    if scores is None:
        raise ValueError(f"setup {recipe['setup']!r} filters by {spec['by']}: the scores of its generation-{generation} "
                         "corpus are missing")
    keep = filter_keep([scores.get(r["id"], math.nan) for r in rows], spec["drop"],
                       FILTER_HIGHER_IS_BETTER[spec["by"]], filter_seed(seed, recipe["setup"], generation))
    return [r for r, k in zip(rows, keep) if k]


def _real_rows(recipe: dict, generation: int, start: list[dict], seed: int) -> tuple[list[dict], list[dict]]:
    """The human articles of a generation, as (rows before the synthetic pool, rows after it):
    all of them first (generation 0, accumulate), or a fresh fold and/or a preserved sample after."""
    data = recipe["data"]
    if uses_all_human(recipe, generation):
        return [{**a, "origin": "human"} for a in start], []
    rows = []
    if data["fresh_human_folds"]:
        k = data["fresh_human_folds"]
        fold = generation % k
        folds = human_folds(start, k, stable_seed(seed, recipe["setup"], "folds"))
        rows += [{**a, "origin": f"human:fold{fold}"} for a in folds[fold]]
    if data["preserve_fraction"] > 0:
        n_real = preserved_count(data["preserve_fraction"], len(start))
        rng = np.random.default_rng(stable_seed(seed, recipe["setup"], generation, "preserve"))
        pick = np.sort(rng.choice(len(start), size=n_real, replace=False))
        rows += [{**start[i], "origin": "human"} for i in pick]
    return [], rows


def _at_ratio(recipe: dict, generation: int, real: list[dict], pool: list[dict], start: list[dict], seed: int):
    """Real and synthetic rows in the ratio 1 : r, subsampling the larger side (seeded)."""
    ratio = target_ratio(recipe["data"])
    if not real:
        real = [{**a, "origin": "human"} for a in start]
    if len(pool) > ratio * len(real):
        pool = _subsample(pool, round(ratio * len(real)), stable_seed(seed, recipe["setup"], generation, "ratio"))
    elif ratio > 0:
        real = _subsample(real, max(1, round(len(pool) / ratio)), stable_seed(seed, recipe["setup"], generation, "ratio"))
    return real, pool


def compose_training_corpus(
    recipe: dict, generation: int, human: list[dict], synthetic: dict[int, list[dict]], seed: int,
    filter_scores: dict[int, dict[str, float]] | None = None, pretrain: list[dict] | None = None,
) -> list[dict]:
    """Articles for training generation `generation` of a setup (fine-tuning, or from scratch).

    `synthetic` maps generation -> that generation's synthetic articles (of this setup);
    `filter_scores` maps generation -> {article id: filter score} for a filtering setup;
    `pretrain` is the base model's pretraining corpus (sampled for scratch_pretrain_articles). In order:
    the real side (all human articles at generation 0 or when accumulating, else the fresh
    fold and/or the preserved sample, plus the pretraining corpus), the synthetic pool (each
    corpus filtered, then subsampled to synthetic_budget), then the fixed ratio. Each row
    carries `origin` ("human", "human:fold<k>", "pretrain", "synthetic:g<k>") so the
    composition can be checked and reported. `seed` is the replicate's seed.
    """
    data = recipe["data"]
    start = starting_corpus(human, recipe)
    wanted = synthetic_generations_for(recipe, generation)
    missing = [g for g in wanted if g not in synthetic]
    if missing:
        raise ValueError(f"setup {recipe['setup']!r} generation {generation} needs synthetic corpora of generations {missing}")
    n_pretrain = data["scratch_pretrain_articles"]
    if n_pretrain is not None and (pretrain is None or len(pretrain) < n_pretrain):
        raise ValueError(f"setup {recipe['setup']!r} trains on {n_pretrain} articles of the pretraining corpus: pass it")
    head, tail = _real_rows(recipe, generation, start, seed)
    if n_pretrain is not None:
        # one sample per replicate, the same for every generation and setup (generation 0 is shared)
        tail += [{**a, "origin": "pretrain"} for a in _subsample(pretrain, n_pretrain, stable_seed(seed, "pretrain-sample"))]
    pool = []
    for g in wanted:
        rows = [{**a, "origin": f"synthetic:g{g}"} for a in synthetic[g]]
        pool += _filtered(recipe, g, rows, (filter_scores or {}).get(g), seed)
    budget = data["synthetic_budget"]
    if budget is not None and len(pool) > budget:
        pool = _subsample(pool, budget, stable_seed(seed, recipe["setup"], generation, "budget"))
    if generation > 0 and target_ratio(data) is not None:
        real, pool = _at_ratio(recipe, generation, head + tail, pool, start, seed)
        return pool + real
    return head + pool + tail


def composition(rows: list[dict]) -> dict[str, int]:
    """Count rows per origin, for the fine-tuning report and tests."""
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["origin"]] = counts.get(r["origin"], 0) + 1
    return counts

"""The corpora a run starts from: the human corpus, the classifier corpus, the pretraining corpus."""

import logging

from . import LEANINGS
from .recipes import stable_seed

log = logging.getLogger(__name__)


def _world_report(purpose: str, articles: list[dict]) -> dict:
    per_label = {l: sum(a["label"] == l for a in articles) for l in LEANINGS}
    return {"source": "world", "purpose": purpose, "rows_read": len(articles), "rows_kept": len(articles),
            "dropped": {}, "per_label": per_label, "problems": []}


def corpus_options(data: dict, allow_download: bool = False) -> dict:
    """Adapter options from the data config (ABP: which split scheme; hub: split, columns, labels)."""
    if data["source"] == "abp":
        return {"split_scheme": data["split_scheme"]}
    if data["source"] == "hub":
        return {**data["hub"], "allow_download": allow_download}
    return {}


def world_articles(purpose: str, counts: dict[str, int], seed: int, topics=None) -> list[dict]:
    """A world sample for one purpose; each purpose has its own seed so samples do not overlap by design."""
    from .world import generate_articles

    return generate_articles(counts, seed=stable_seed(seed, "world", purpose), topics=topics, id_prefix=purpose)


def shortened(articles: list[dict], max_words: int) -> list[dict]:
    """Each article cut to its first sentences within `max_words` words (data.max_words)."""
    from .text import leading_sentences

    return [{**a, "text": leading_sentences(a["text"], max_words)} for a in articles]


def detector_texts(articles: list[dict], n: int, seed: int) -> list[str]:
    """Real-data detector articles: up to `n` of the labelled corpus, a seeded draw (not the human sample)."""
    import random

    texts = [a["text"] for a in articles if a.get("text")]
    random.Random(stable_seed(seed, "detector")).shuffle(texts)
    return texts[:n]


def human_corpus(data: dict, seed: int, allow_download: bool = False) -> tuple[list[dict], dict]:
    """The balanced human corpus of the study and its data report."""
    per_label = data["per_label"]
    if data["source"] == "world":
        articles = world_articles("human", {l: per_label for l in LEANINGS}, seed, data.get("topics"))
        return articles, _world_report("human", articles)
    from .corpora import load_corpus, stratified_sample

    articles, report = load_corpus(data["source"], data["path"], **corpus_options(data, allow_download))
    report = report.to_dict()
    sample = stratified_sample(articles, per_label, seed)
    report["sampled_per_label"] = {l: sum(a["label"] == l for a in sample) for l in LEANINGS}
    if data.get("max_words"):
        sample = shortened(sample, data["max_words"])
        report["max_words"] = data["max_words"]
    log.info("data report: %s", report)
    return sample, report


def classifier_corpus(data: dict, seed: int, allow_download: bool = False) -> list[dict]:
    """Labelled articles for training the leaning classifier (a separate world sample, or the whole corpus)."""
    if data["source"] == "world":
        n = data["classifier_per_label"]
        return world_articles("classifier", {l: n for l in LEANINGS}, seed, data.get("topics"))
    from .corpora import load_corpus

    articles, _ = load_corpus(data["source"], data["path"], **corpus_options(data, allow_download))
    return articles


def pretrain_corpus(world_gpt2: dict, data: dict, seed: int) -> list[dict]:
    """The leaning-skewed world sample world-gpt2 is pretrained on."""
    from .world import counts_from_mix

    counts = counts_from_mix(world_gpt2["pretrain_articles"], world_gpt2["leaning_mix"])
    return world_articles("pretrain", counts, seed, data.get("topics"))

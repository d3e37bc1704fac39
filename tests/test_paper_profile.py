"""config/paper.yaml end to end, with tiny randomly initialised stand-ins for its hub models."""

import csv
import json

import pandas as pd
import pytest
import yaml

from selfconsuming.world import generate_articles
from tiny_models import save_tiny_bert, save_tiny_gpt2
from workflow_helpers import REPO, run_snakemake, write_config

pytestmark = pytest.mark.slow
WEBIS_LABELS = {"left": "From the Left", "center": "From the Center", "right": "From the Right"}


def write_webis_csv(articles, path) -> str:
    """A corpus in Webis-Bias-Flipper-18's data_public.csv layout."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["story_id", "title", "body", "source", "original_title", "original_body", "bias"])
        for k, a in enumerate(articles):
            writer.writerow([f"s{k}", a["title"], a["text"], "outlet", a["title"], a["text"],
                             WEBIS_LABELS[a["label"]]])
    return str(path)


def test_paper_config_runs_end_to_end_with_stand_ins(tmp_path):
    articles = generate_articles({"left": 12, "center": 12, "right": 12}, seed=11)
    texts = [f"{a['title']}\n\n{a['text']}" for a in articles]
    words = {w.strip('.,"?!').lower() for t in texts for w in t.split()}
    gpt2 = save_tiny_gpt2(tmp_path / "gpt2", texts, vocab_size=400)
    backbones = [save_tiny_bert(tmp_path / name, words, max_positions=128) for name in ("distilbert", "roberta")]
    detector = save_tiny_bert(tmp_path / "gibberish", words, max_positions=128,
                              id2label={0: "clean", 1: "mild gibberish", 2: "noise", 3: "word salad"})

    config = yaml.safe_load(open(REPO / "config/paper.yaml"))
    config.update(run="paper-tiny", generations=1, device="cpu")
    config["model"]["base"] = gpt2
    config["data"].update(path=write_webis_csv(articles, tmp_path / "data_public.csv"), per_label=4)
    config["setups"]["beam"]["num_beams"] = 2
    config["setups"]["overfit"]["epochs"] = 2
    config["finetune"].update(epochs=1, max_length=256)
    config["synthesis"].update(block_tokens=32, new_tokens=8)
    config["classifier"].update(backbones=backbones, epochs=1, max_length=128)
    config["quality"].update(detector=detector, perplexity_model=gpt2,
                             diversity={"sample_tokens": 200, "selfbleu_sample": 4, "semantic_sample": 4,
                                        "syntactic_sample": 10})
    config["neurons"]["max_prompts"] = 8
    config["theory"] = {"weighted_mle": {"replicates": 2, "sample_size": 300, "generations": 2, "pretrain_size": 1000},
                        "softmax_collapse": {"replicates": 20, "generations": 5, "max_generations": 50},
                        "regression_accumulate": {"replicates": 20, "iterations": 3},
                        "gaussian_refit": {"replicates": 50, "generations": 3}}
    config["resources"] = {"gpu_rules": {"mem_mb": 4000, "runtime": 30, "threads": 1},
                           "cpu_rules": {"mem_mb": 2000, "runtime": 30, "threads": 1}}
    configfile = write_config(config, tmp_path / "paper-tiny.yaml")
    run_snakemake(tmp_path, configfile)

    res = tmp_path / "results/paper-tiny"
    report = json.loads((res / "data/report.json").read_text())
    assert report["source"] == "webis" and report["rows_kept"] == 36
    metrics = pd.read_csv(res / "classifier/metrics.csv")
    assert sorted(metrics["backbone"]) == sorted(backbones) and metrics["chosen"].sum() == 1
    summary = pd.read_csv(res / "metrics/summary.csv")
    # 6 setups x 2 generations, the human corpus, the sampled base corpus and one per decoding
    assert len(summary) == 6 * 2 + 1 + 1 + 3
    assert summary["tqi_mean"].between(0, 3).all() and summary["oracle_valid_mean"].isna().all()
    assert (res / "neurons/stats.csv").exists() and (res / "figures/.done").exists()
    overall = pd.read_csv(res / "metrics/validity_overall.csv")  # real data: no oracle, held-out F1 stated
    assert overall["note"].str.contains("no oracle").any() and overall["check"].str.contains("F1").any()
    assert set(pd.read_csv(res / "metrics/findings.csv")["method"]).issuperset({"article bootstrap (R=1)"})

"""The real path through the whole workflow, offline and small: a Llama-architecture base model
(tiny, random, saved like a real one) on a corpus read through data.source: hub, with the
Trainer recipe; no oracle, so the validity section must say so and show the classifier's F1."""

import json

import pandas as pd
import pytest

from workflow_helpers import run_snakemake, tiny_config, write_config

pytestmark = pytest.mark.slow
datasets = pytest.importorskip("datasets")


def save_tiny_llama(folder, texts, seed=0) -> str:
    """A 2-layer Llama with a BPE tokenizer learned from `texts`, saved like a hub model."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from selfconsuming.models import save_model
    from selfconsuming.pretrain import train_bpe_tokenizer

    tok = train_bpe_tokenizer(list(texts), vocab_size=400)
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id)
    save_model(LlamaForCausalLM(config), tok, folder)
    return str(folder)


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    from selfconsuming import LEANINGS
    from selfconsuming.world import generate_articles

    work = tmp_path_factory.mktemp("real-workflow")
    articles = generate_articles({l: 30 for l in LEANINGS}, seed=11)
    rows = [{"headline": a["title"], "body": a["text"], "side": LEANINGS.index(a["label"])} for a in articles]
    features = datasets.Features({"headline": datasets.Value("string"), "body": datasets.Value("string"),
                                  "side": datasets.ClassLabel(names=list(LEANINGS))})
    datasets.Dataset.from_list(rows, features=features).save_to_disk(str(work / "news"))
    base = save_tiny_llama(work / "tiny-llama", [a["text"] for a in articles])
    config = tiny_config(base, run="real")
    config["setups"] = {"deterministic": {"decoding": "greedy"}}
    config["replicates"] = 2
    config["generations"] = 2  # the differenced neuron regressions need >= 3 rows: 2 replicates x 2 steps
    config["data"] = {"source": "hub", "path": str(work / "news"), "per_label": 3, "max_words": 40,
                      "hub": {"columns": {"text": "body", "label": "side", "title": "headline"}}}
    config["finetune"].update(optimizer="trainer", warmup_ratio=0.1, max_grad_norm=1.0, grad_accum=2)
    config["quality"]["detector_articles"] = 60
    configfile = write_config(config, work / "config.yaml")
    run_snakemake(work, configfile)
    return work / "results/real", config


def test_the_llama_generations_train_with_the_trainer_recipe(real_run):
    res, _ = real_run
    info = json.loads((res / "models/deterministic/rep1/gen1/training.json").read_text())
    assert info["stats"]["optimizer"] == "trainer" and info["stats"]["final_lr"] == 0.0
    assert info["recipe"]["finetune"]["grad_accum"] == 2


def test_human_corpus_comes_through_the_hub_mapping_shortened(real_run):
    res, config = real_run
    human = [json.loads(l) for l in open(res / "data/human.jsonl")]
    assert len(human) == 9 and all(len(a["text"].split()) <= 40 for a in human)
    assert json.loads((res / "data/report.json").read_text())["source"] == "hub"


def test_validity_states_there_is_no_oracle_and_gives_the_classifier_f1(real_run):
    res, _ = real_run
    overall = pd.read_csv(res / "metrics/validity_overall.csv")
    assert overall["note"].fillna("").str.contains("no oracle on real data").any()
    f1 = overall[overall["check"] == "classifier test macro F1"]["value"]
    metrics = pd.read_csv(res / "classifier/metrics.csv")
    assert f1.iloc[0] == pytest.approx(metrics.loc[metrics["chosen"], "test_macro_f1"].iloc[0])


def test_neurons_read_the_llama_decoder_layers(real_run):
    res, _ = real_run
    acts = pd.read_parquet(res / "neurons/activations.parquet")
    units = [c for c in acts.columns if c.startswith("l") and "_u" in c]
    assert len(units) == 2 * 32  # layers x hidden of the tiny Llama
    summary = pd.read_csv(res / "metrics/summary.csv")
    assert summary.loc[summary["kind"] == "model", ["share_right", "tqi_mean", "ppl_mean"]].notna().all().all()

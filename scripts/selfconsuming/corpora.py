"""Readers for real political-news corpora, each returning articles plus a DataReport.

Every reader turns its format into the project's article record (dict with id,
title, text, label in LEANINGS, and source/topic/split where the corpus has them)
and accounts for every row it could not use: each dropped row is counted under a
reason in the report, and the first problems are listed with their line or file,
so a user can see what a messy file cost them instead of finding out later.
"""

import contextlib
import csv
import json
import random
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from selfconsuming import LEANINGS

MAX_PROBLEMS = 50

WEBIS_LABELS = {"from the left": "left", "from the center": "center", "from the right": "right"}
WEBIS_COLUMNS = ("story_id", "title", "body", "source", "bias")

ABP_SPLIT_NAMES = ("train", "valid", "test")

# A line that ends a Webis record: the last column is the bias, quoted or not.
_WEBIS_RECORD_END = re.compile(r',\s*"?from the (left|center|right)"?\s*$', re.IGNORECASE)
# Bytes that were not UTF-8, as decoded with errors="surrogateescape".
_UNDECODABLE = re.compile("[\udc80-\udcff]")


class InsufficientArticlesError(ValueError):
    """A leaning has fewer articles than data.per_label asks for."""


@dataclass
class DataReport:
    """What a reader saw: rows read and kept, and why every other row was dropped.

    `repaired` counts rows that were kept after a fix (e.g. undecodable bytes
    replaced by U+FFFD); `notes` holds file-level remarks (a split file that is
    absent, a quoting recovery that was used).
    """

    source: str
    path: str
    rows_read: int = 0
    rows_kept: int = 0
    dropped: dict = field(default_factory=dict)
    repaired: dict = field(default_factory=dict)
    per_label: dict = field(default_factory=dict)
    problems: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    def _problem(self, where, reason, detail=""):
        if len(self.problems) < MAX_PROBLEMS:
            row = dict(where) if isinstance(where, dict) else {"line": where}
            row["reason"] = reason
            if detail:
                row["detail"] = detail
            self.problems.append(row)

    def drop(self, reason, where, detail=""):
        self.dropped[reason] = self.dropped.get(reason, 0) + 1
        self._problem(where, reason, detail)

    def repair(self, reason, where, detail=""):
        self.repaired[reason] = self.repaired.get(reason, 0) + 1
        self._problem(where, reason, detail)

    def admit(self, article_id, seen: set, where, non_utf8: bool) -> bool:
        """False (and counted) for an id seen before; otherwise remember it and count a bytes repair."""
        if article_id in seen:
            self.drop("duplicate_id", where, article_id)
            return False
        seen.add(article_id)
        if non_utf8:
            self.repair("non_utf8", where)
        return True

    def keep(self, article):
        self.rows_kept += 1
        self.per_label[article["label"]] = self.per_label.get(article["label"], 0) + 1

    def to_dict(self) -> dict:
        out = asdict(self)
        out["per_label"] = {label: self.per_label.get(label, 0) for label in LEANINGS}
        return out


def normalise_label(value):
    """Map 0/1/2, "0"/"1"/"2", or a leaning name (any case) to a leaning; None if unknown."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and 0 <= value < len(LEANINGS):
        return LEANINGS[value]
    if isinstance(value, float) and value.is_integer():
        return normalise_label(int(value))
    if isinstance(value, str):
        name = value.strip().lower()
        if name in LEANINGS:
            return name
        if name in WEBIS_LABELS:
            return WEBIS_LABELS[name]
        if name.isdigit():
            return normalise_label(int(name))
    return None


def _split_lines(text: str) -> list[str]:
    """Lines ending at "\n" only (str.splitlines would also cut at \u2028, \x0c, ... inside articles)."""
    lines = [line + "\n" for line in text.split("\n")]
    lines[-1] = lines[-1][:-1]
    return lines if lines[-1] else lines[:-1]


def _fix_undecodable(text: str) -> tuple[str, bool]:
    """Replace surrogate-escaped bytes by U+FFFD; say whether there were any."""
    fixed, n = _UNDECODABLE.subn("\ufffd", text)
    return fixed, n > 0


# --------------------------------------------------------------------- Webis


class _LineFeed:
    """An iterator over lines whose position we can move, so one csv.reader can resync."""

    def __init__(self, lines):
        self.lines = lines
        self.pos = 0

    def __iter__(self):
        return self

    def __next__(self):
        if self.pos >= len(self.lines):
            raise StopIteration
        self.pos += 1
        return self.lines[self.pos - 1]


def _csv_records(lines, n_fields, record_end):
    """Yield (line_no, fields, status) per record: status "ok", "recovered" or why it broke.

    The csv module is tried first. A record with the wrong number of fields is
    usually an unbalanced quote that swallowed the rows after it; its lines are
    then cut at every line that ends like a record (`record_end`) and each piece
    is parsed on its own, so only the broken row is lost, not its neighbours.
    """
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 27))  # long article bodies are legitimate
    feed = _LineFeed(lines)
    reader = csv.reader(feed)
    while feed.pos < len(lines):
        start = feed.pos
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error:
            fields = None
        end = feed.pos
        if fields == []:  # blank line: not a row
            continue
        if fields is not None and len(fields) == n_fields:
            yield start + 1, fields, "ok"
            continue
        if end <= start:  # csv.Error before consuming a line; step over it
            end = start + 1
            feed.pos = end
        yield from _recover_span(lines, start, end, n_fields, record_end)


def _recover_span(lines, start, end, n_fields, record_end):
    piece_start = start
    for i in range(start, end):
        if record_end is not None and record_end.search(lines[i]) or i == end - 1:
            piece = lines[piece_start:i + 1]
            try:
                rows = [r for r in csv.reader(piece) if r]
            except csv.Error:
                rows = []
            if len(rows) == 1 and len(rows[0]) == n_fields:
                yield piece_start + 1, rows[0], "recovered"
            elif any(line.strip() for line in piece):
                got = f"{len(rows[0])} fields" if len(rows) == 1 else f"{len(rows)} records"
                yield piece_start + 1, None, f"unbalanced quoting: got {got}, expected {n_fields} fields"
            piece_start = i + 1


def read_webis(path, use_original=False):
    """Read Webis-Bias-Flipper-18's data_public.csv.

    Text is `body` (or `original_body` with use_original=True) and the title is
    `title` (or `original_title`). Bytes that are not UTF-8 are replaced by
    U+FFFD and the row is kept, counted under repaired["non_utf8"]: a stray byte
    in a long article should not cost the article. Rows whose quoting cannot be
    recovered are dropped as "malformed_row" with their first line number.
    """
    path = Path(path)
    report = DataReport(source="webis", path=str(path))
    text = path.read_bytes().decode("utf-8", errors="surrogateescape")
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = _split_lines(text)
    if not lines:
        raise ValueError(f"data.path: {path} is empty (expected the Webis data_public.csv)")
    header = [h.strip().lower() for h in next(csv.reader(lines[:1]))]
    missing = [c for c in WEBIS_COLUMNS if c not in header]
    if missing:
        raise ValueError(f"data.path: {path} lacks Webis columns {missing}; its header is {header}")
    col = {name: header.index(name) for name in header}
    title_col = "original_title" if use_original else "title"
    body_col = "original_body" if use_original else "body"
    for name in (title_col, body_col):
        if name not in col:
            raise ValueError(f"data.path: {path} has no column {name!r}")
    record_end = _WEBIS_RECORD_END if header[-1] == "bias" else None

    articles, seen = [], set()
    for line_no, fields, status in _csv_records(lines[1:], len(header), record_end):
        line_no += 1  # the header was line 1
        report.rows_read += 1
        if fields is None:
            report.drop("malformed_row", line_no, status)
            continue
        non_utf8 = False
        for i, value in enumerate(fields):
            fields[i], bad = _fix_undecodable(value)
            non_utf8 = non_utf8 or bad
        raw_label = fields[col["bias"]]
        label = WEBIS_LABELS.get(raw_label.strip().lower())
        if label is None:
            report.drop("unknown_label", line_no, repr(raw_label[:40]))
            continue
        body = fields[col[body_col]].strip()
        if not body:
            report.drop("empty_body", line_no)
            continue
        story_id = fields[col["story_id"]].strip()
        article_id = f"{story_id}:{label}"
        if not report.admit(article_id, seen, line_no, non_utf8):
            continue
        if status == "recovered":
            report.repair("quoting_recovered", line_no)
        article = {
            "id": article_id,
            "title": fields[col[title_col]].strip(),
            "text": body,
            "label": label,
            "source": fields[col["source"]].strip(),
            "story_id": story_id,
        }
        articles.append(article)
        report.keep(article)
    return articles, report


# ----------------------------------------------------------------------- ABP


def _abp_data_dir(path: Path) -> Path:
    for candidate in (path / "data", path):
        if (candidate / "jsons").is_dir():
            return candidate
    raise FileNotFoundError(f"data.path: {path} holds no jsons/ folder (expected the Article-Bias-Prediction repo root or its data/ folder)")


def _read_split_ids(data_dir: Path, scheme: str, report: DataReport) -> dict:
    """ID -> (split, tsv bias) for the chosen split scheme; absent split files become notes."""
    split_dir = data_dir / "splits" / scheme
    if not split_dir.is_dir():
        have = sorted(p.name for p in (data_dir / "splits").glob("*") if p.is_dir())
        raise ValueError(f"data.split_scheme: {scheme!r} has no folder {split_dir} (available: {have})")
    ids = {}
    for split in ABP_SPLIT_NAMES:
        tsv = split_dir / f"{split}.tsv"
        if not tsv.is_file():
            report.notes.append(f"split file {tsv.name} is absent in {split_dir}")
            continue
        with open(tsv, encoding="utf-8", errors="replace", newline="") as f:
            reader = csv.DictReader(f, delimiter="\t")
            if "ID" not in (reader.fieldnames or []):
                raise ValueError(f"{tsv} has no ID column (columns: {reader.fieldnames})")
            for row in reader:
                where = {"file": f"{scheme}/{tsv.name}", "line": reader.line_num}
                article_id = (row.get("ID") or "").strip()
                if not article_id:
                    report.rows_read += 1
                    report.drop("missing_id", where)
                elif article_id in ids:
                    report.rows_read += 1
                    report.drop("duplicate_id", where, article_id)
                else:
                    ids[article_id] = (split, row.get("bias"), where)
    return ids


def _abp_article(record: dict, article_id: str):
    """Article from one ABP json, or (None, reason)."""
    label = normalise_label(record.get("bias"))
    if label is None:
        label = normalise_label(record.get("bias_text"))
    if label is None:
        return None, "unknown_label"
    body = (record.get("content_original") or record.get("content") or "").strip()
    if not body:
        return None, "empty_body"
    article = {
        "id": str(record.get("ID") or article_id),
        "title": (record.get("title") or "").strip(),
        "text": body,
        "label": label,
        "source": record.get("source") or "",
        "topic": record.get("topic") or "",
    }
    return article, None


def read_abp(path, split_scheme="media"):
    """Read the Article-Bias-Prediction layout (data/jsons + data/splits/<scheme>/*.tsv).

    With a split scheme, the articles are those its tsv files list, each with
    `split`; listed IDs without a json are dropped as "missing_json", jsons no
    split lists as "not_in_split", and a tsv bias that disagrees with the json
    as "label_mismatch". split_scheme=None reads every json without a split.
    """
    data_dir = _abp_data_dir(Path(path))
    report = DataReport(source="abp", path=str(data_dir))
    json_files = {p.stem: p for p in sorted((data_dir / "jsons").glob("*.json"))}
    if split_scheme is None:
        listed = {article_id: (None, None, {"file": f"jsons/{article_id}.json"}) for article_id in json_files}
    else:
        listed = _read_split_ids(data_dir, split_scheme, report)

    articles = []
    for article_id, (split, tsv_bias, where) in listed.items():
        report.rows_read += 1
        json_path = json_files.get(article_id)
        if json_path is None:
            report.drop("missing_json", where, article_id)
            continue
        try:
            record = json.loads(json_path.read_bytes().decode("utf-8", errors="replace"))
        except json.JSONDecodeError as err:
            report.drop("bad_json", {"file": f"jsons/{json_path.name}"}, str(err))
            continue
        if not isinstance(record, dict):
            report.drop("bad_json", {"file": f"jsons/{json_path.name}"}, "not a JSON object")
            continue
        article, reason = _abp_article(record, article_id)
        if article is None:
            report.drop(reason, {"file": f"jsons/{json_path.name}"})
            continue
        if tsv_bias not in (None, "") and normalise_label(tsv_bias) != article["label"]:
            report.drop("label_mismatch", where, f"tsv {tsv_bias!r} vs json {article['label']!r}")
            continue
        if split is not None:
            article["split"] = split
        articles.append(article)
        report.keep(article)

    for article_id in sorted(set(json_files) - set(listed)):
        report.rows_read += 1
        report.drop("not_in_split", {"file": f"jsons/{article_id}.json"})
    return articles, report


# --------------------------------------------------------------------- JSONL


def read_jsonl_corpus(path):
    """Read one JSON object per line with `text` (or `title` + `body`) and `label`.

    Labels may be left/center/right in any case or 0/1/2. Optional fields id,
    title, source, topic and split are carried over; a missing id becomes
    "line<N>". Undecodable bytes are replaced and the row kept ("non_utf8").
    """
    path = Path(path)
    report = DataReport(source="jsonl", path=str(path))
    articles, seen = [], set()
    raw = path.read_bytes().decode("utf-8", errors="surrogateescape")
    for line_no, line in enumerate(_split_lines(raw), start=1):
        if not line.strip():
            continue
        report.rows_read += 1
        line, non_utf8 = _fix_undecodable(line)
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            report.drop("bad_json", line_no, str(err))
            continue
        if not isinstance(record, dict):
            report.drop("bad_json", line_no, "not a JSON object")
            continue
        label = normalise_label(record.get("label"))
        if label is None:
            report.drop("unknown_label", line_no, repr(record.get("label")))
            continue
        body = record.get("text") if record.get("text") is not None else record.get("body")
        body = body.strip() if isinstance(body, str) else ""
        if not body:
            report.drop("missing_text", line_no)
            continue
        article_id = str(record.get("id", f"line{line_no}"))
        if not report.admit(article_id, seen, line_no, non_utf8):
            continue
        article = {"id": article_id, "title": str(record.get("title") or "").strip(), "text": body, "label": label}
        for key in ("source", "topic", "split"):
            if record.get(key) is not None:
                article[key] = record[key]
        articles.append(article)
        report.keep(article)
    return articles, report


# ----------------------------------------------------------------------- hub

# load_dataset builders for a single local data file, by suffix
FILE_BUILDERS = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet"}


@contextlib.contextmanager
def _hub_offline(offline: bool):
    """datasets and huggingface_hub read their offline flags at import: set them for this load only."""
    import datasets.config
    import huggingface_hub.constants

    saved = datasets.config.HF_HUB_OFFLINE, huggingface_hub.constants.HF_HUB_OFFLINE
    if offline:
        datasets.config.HF_HUB_OFFLINE = huggingface_hub.constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE, huggingface_hub.constants.HF_HUB_OFFLINE = saved


def is_saved_dataset(path: Path) -> bool:
    """A folder written by Dataset.save_to_disk or DatasetDict.save_to_disk."""
    return path.is_dir() and ((path / "dataset_dict.json").is_file() or (path / "state.json").is_file())


def load_hub_dataset(ref: str, *, name=None, split="train", revision=None, allow_download=False):
    """One split of a Hugging Face dataset: a save_to_disk folder, a local .json/.jsonl/.csv/.parquet
    file, a local folder of data files, or a hub id from the local cache (downloads only if allowed)."""
    import datasets

    path = Path(ref)
    with _hub_offline(not allow_download):
        if is_saved_dataset(path):
            loaded = datasets.load_from_disk(str(path))
            if isinstance(loaded, datasets.DatasetDict):
                if split not in loaded:
                    raise ValueError(f"data.hub.split: {split!r} is not a split of {ref} (it has {sorted(loaded)})")
                loaded = loaded[split]
            return loaded
        if path.is_file():
            builder = FILE_BUILDERS.get(path.suffix.lower())
            if builder is None:
                raise ValueError(f"data.path: {ref} is a file, but not one of {sorted(FILE_BUILDERS)}")
            return datasets.load_dataset(builder, data_files={split: str(path)}, split=split)
        try:
            return datasets.load_dataset(ref, name, split=split, revision=revision)
        except (FileNotFoundError, ConnectionError, datasets.exceptions.DatasetNotFoundError) as err:
            hint = "" if allow_download else " (offline: not in the local cache; allow_download: true fetches it)"
            raise ValueError(f"data.path: cannot load dataset {ref!r}{hint}: {err}") from None


def _mapped_label(value, label_map: dict | None, names: list | None):
    """A row's leaning: through label_map (keys compared as text), else ClassLabel names, else as is."""
    if label_map:
        value = label_map.get(str(value))
    elif names is not None and isinstance(value, int) and 0 <= value < len(names):
        value = names[value]
    return normalise_label(value)


def read_hub(path, *, name=None, split="train", revision=None, columns=None, label_map=None,
             allow_download=False):
    """Articles from a Hugging Face dataset (see load_hub_dataset) through a column mapping.

    `columns` maps text, label and optionally title and id to the dataset's columns;
    `label_map` maps the label column's values to leanings (else ClassLabel names or
    left/center/right/0/1/2). Rows without text or with an unknown label are dropped
    and reported like every other reader's.
    """
    columns = {"text": "text", "label": "label", "title": None, "id": None, **(columns or {})}
    dataset = load_hub_dataset(str(path), name=name, split=split, revision=revision, allow_download=allow_download)
    missing = {k: c for k, c in columns.items() if c and c not in dataset.column_names}
    if missing:
        raise ValueError(f"data.hub.columns: {missing} are not columns of {path} (it has {dataset.column_names})")
    label_map = {str(k): v for k, v in label_map.items()} if label_map else None
    names = getattr(dataset.features[columns["label"]], "names", None)
    report = DataReport(source="hub", path=f"{path}[{split}]")
    articles, seen = [], set()
    for row_no, row in enumerate(dataset):
        report.rows_read += 1
        where = {"row": row_no}
        label = _mapped_label(row[columns["label"]], label_map, names)
        if label is None:
            report.drop("unknown_label", where, repr(row[columns["label"]]))
            continue
        body = row[columns["text"]]
        body = body.strip() if isinstance(body, str) else ""
        if not body:
            report.drop("missing_text", where)
            continue
        article_id = str(row[columns["id"]]) if columns["id"] else f"row{row_no}"
        if not report.admit(article_id, seen, where, False):
            continue
        title = row[columns["title"]] if columns["title"] else ""
        article = {"id": article_id, "title": str(title or "").strip(), "text": body, "label": label}
        articles.append(article)
        report.keep(article)
    return articles, report


# ------------------------------------------------------------------ dispatch


READERS = {"webis": read_webis, "abp": read_abp, "jsonl": read_jsonl_corpus, "hub": read_hub}


def is_local_corpus(source, path) -> bool:
    """Whether data.path names files here (every source but a hub id)."""
    return path is not None and (source != "hub" or Path(path).exists())


def load_corpus(source, path, **options):
    """Read a corpus by config name (data.source) from data.path; options go to the reader."""
    if source not in READERS:
        raise ValueError(f"data.source: unknown corpus {source!r}; expected one of {sorted(READERS)} (or 'world')")
    if source == "hub" and path:
        return read_hub(path, **options)
    if path is None or not Path(path).exists():
        raise FileNotFoundError(f"data.path: {path!r} does not exist (needed for data.source={source!r})")
    return READERS[source](path, **options)


def stratified_sample(articles, per_label, seed) -> list:
    """Exactly `per_label` articles of each leaning, drawn with a seeded RNG, then shuffled."""
    if not isinstance(per_label, int) or per_label < 1:
        raise ValueError(f"data.per_label must be a positive integer, got {per_label!r}")
    rng = random.Random(seed)
    by_label = {label: [a for a in articles if a["label"] == label] for label in LEANINGS}
    sample = []
    for label in LEANINGS:
        have = len(by_label[label])
        if have < per_label:
            raise InsufficientArticlesError(
                f"data.per_label = {per_label} but label {label!r} has only {have} articles "
                f"(requested {per_label}, available {have}); lower data.per_label or use a larger corpus"
            )
        sample.extend(rng.sample(by_label[label], per_label))
    rng.shuffle(sample)
    return sample

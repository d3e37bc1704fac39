"""The world's grammar, compiled once from data/*.yaml and shared by generator and oracle.

Both sides read the same probability tables, so the oracle's likelihood is the
generator's own probability by construction. Every probability is a (topic, leaning)
table: P(template | topic, leaning) for frames, P(phrase | topic, leaning) for fillers.
"""

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml


DATA_DIR = Path(__file__).parent / "data"
SLOT = re.compile(r"\{(\^?)([a-z][a-z0-9_]*)\}")
WEIGHT_PREFIX = re.compile(r"^\s*([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)\s*\|\s*")
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C parser is ~10x faster
CLASS_OF_KIND = {"title": "title", "lead": "lead"}  # every other kind is a body kind


@dataclass
class Bank:
    """A slot's fillers: probs[i, t, l] = P(phrases[i] | topic t, leaning l)."""

    name: str
    phrases: list[str]
    probs: np.ndarray
    sticky: bool = False


@dataclass
class Template:
    """A sentence frame: literal strings and (slot, capitalise) pairs, with P(frame | t, l)."""

    id: int
    kind: str
    klass: str
    text: str
    elements: list  # str (literal) or tuple (slot name, capitalise)
    probs: np.ndarray  # (T, 3)
    topic: str | None = None  # None: a common frame


@dataclass
class Grammar:
    topics: tuple[str, ...]
    banks: dict[str, Bank]
    templates: list[Template]
    body_kinds: dict[str, float]
    article_sentences: tuple[int, int]
    by_class: dict[str, list[Template]] = field(default_factory=dict)

    def topic_index(self, topic: str) -> int:
        return self.topics.index(topic)


def capitalise(phrase: str) -> str:
    return phrase[:1].upper() + phrase[1:]


def parse_frame(frame: str) -> tuple[np.ndarray, str]:
    """Split an optional 'l c r | ' weight prefix from a frame's text."""
    m = WEIGHT_PREFIX.match(frame)
    if not m:
        return np.ones(3), frame.strip()
    weights = np.array([float(x) for x in m.groups()])
    if (weights <= 0).any():
        raise ValueError(f"frame weights must be positive: {frame!r}")
    return weights, frame[m.end():].strip()


def frame_elements(text: str) -> list:
    """Literal pieces and (slot, capitalise) pairs, in order."""
    elements, pos = [], 0
    for m in SLOT.finditer(text):
        if m.start() > pos:
            elements.append(text[pos:m.start()])
        elements.append((m.group(2), m.group(1) == "^"))
        pos = m.end()
    if pos < len(text):
        elements.append(text[pos:])
    return elements


def bank_rows(spec, loaded_weights) -> tuple[list[str], np.ndarray]:
    """Phrases and their (n, 3) leaning weights from one bank spec (weights per leaning sum to 1)."""
    if isinstance(spec, dict) and "range" in spec:
        lo, hi = spec["range"]
        phrases = [str(i) for i in range(int(lo), int(hi) + 1)]
        return phrases, np.full((len(phrases), 3), 1.0 / len(phrases))
    if isinstance(spec, list) and spec and all(isinstance(x, list) for x in spec):
        if len(spec) != 3:
            raise ValueError(f"a loaded bank needs [left, center, right] lists, got {spec!r}")
        own, other = loaded_weights["own"], loaded_weights["other"]
        weights: dict[str, np.ndarray] = {}
        for li, variants in enumerate(spec):
            for phrase in variants:
                row = weights.setdefault(str(phrase), np.zeros(3))
                for lj in range(3):
                    row[lj] += (own if lj == li else other) / len(variants)
        return list(weights), np.array(list(weights.values()))
    if isinstance(spec, list) and spec:
        phrases = [str(x) for x in spec]
        if len(set(phrases)) != len(phrases):
            raise ValueError(f"duplicate phrases in bank {spec!r}")
        return phrases, np.full((len(phrases), 3), 1.0 / len(phrases))
    raise ValueError(f"cannot read bank spec {spec!r}")


def _read_banks(section: dict, loaded: dict, loaded_weights) -> dict[str, tuple[list[str], np.ndarray]]:
    out = {}
    for name, spec in (section or {}).items():
        if isinstance(spec, dict) and "same_as" in spec:
            continue
        out[name] = bank_rows(spec, loaded_weights)
    for name, spec in (section or {}).items():
        if isinstance(spec, dict) and "same_as" in spec:
            out[name] = out[spec["same_as"]]
    for name, spec in (loaded or {}).items():
        if name in out:
            raise ValueError(f"bank {name!r} defined twice")
        out[name] = bank_rows(spec, loaded_weights)
    return out


def _normalise_within_groups(templates: list[Template], share_of: dict) -> None:
    """Turn frame weights into P(frame | topic, leaning) with the hierarchy
    kind -> (common | topic) group -> frame, so common frames have the same
    probability under every topic."""
    by_group: dict[tuple, list[Template]] = {}
    for tpl in templates:
        by_group.setdefault((tpl.kind, tpl.topic), []).append(tpl)
    for (kind, topic), group in by_group.items():
        total = sum(t.probs for t in group)  # (T, 3) raw weights, zero where unavailable
        for tpl in group:
            with np.errstate(invalid="ignore", divide="ignore"):
                p = np.where(total > 0, tpl.probs / total, 0.0)
            tpl.probs = p * share_of(kind, topic)


@functools.cache
def load_grammar(data_dir: str | None = None) -> Grammar:
    """Read and validate the world from YAML; cached, as it is shared and immutable."""
    data_dir = Path(data_dir) if data_dir else DATA_DIR
    common = yaml.load((data_dir / "common.yaml").read_text(), Loader=YAML_LOADER)
    topic_specs = yaml.load((data_dir / "topics.yaml").read_text(), Loader=YAML_LOADER)
    topics = tuple(topic_specs)
    T = len(topics)
    lw = common["loaded_weights"]
    if abs(lw["own"] + 2 * lw["other"] - 1) > 1e-9:
        raise ValueError("loaded_weights: own + 2 * other must be 1")

    # Banks: common ones apply to every topic; topic ones only to their topic.
    banks: dict[str, Bank] = {}
    for name, (phrases, w) in _read_banks(common["banks"], common.get("loaded"), lw).items():
        probs = np.repeat(w[:, None, :], T, axis=1)
        banks[name] = Bank(name, phrases, probs, sticky=name in common.get("sticky", []))
    topic_rows: dict[str, dict[int, tuple]] = {}
    for ti, topic in enumerate(topics):
        spec = topic_specs[topic]
        for name, rows in _read_banks(spec.get("banks"), spec.get("loaded"), lw).items():
            if name in banks:
                raise ValueError(f"topic {topic!r} redefines common bank {name!r}")
            topic_rows.setdefault(name, {})[ti] = rows
    for name, per_topic in topic_rows.items():
        phrases: list[str] = []
        for _, (ph, _) in sorted(per_topic.items()):
            clash = set(ph) & set(phrases)
            if clash:
                raise ValueError(f"bank {name!r}: phrases shared between topics: {sorted(clash)}")
            phrases += ph
        probs = np.zeros((len(phrases), T, 3))
        row_of = {p: i for i, p in enumerate(phrases)}
        for ti, (ph, w) in per_topic.items():
            for p, wrow in zip(ph, w):
                probs[row_of[p], ti, :] = wrow
        banks[name] = Bank(name, phrases, probs)
    for name in common.get("sticky", []):
        b = banks[name]
        if not np.allclose(b.probs, b.probs[:, :1, :1]):
            raise ValueError(f"sticky bank {name!r} must not depend on topic or leaning")

    # Frames.
    templates: list[Template] = []

    def add(kind, frame, topic):
        weights, text = parse_frame(frame)
        probs = np.zeros((T, 3))
        if topic is None:
            probs[:] = weights
        else:
            probs[topics.index(topic)] = weights
        templates.append(Template(len(templates), kind, CLASS_OF_KIND.get(kind, "body"), text,
                                  frame_elements(text), probs, topic))

    for kind, frames in common["templates"].items():
        for frame in frames:
            add(kind, frame, None)
    for topic in topics:
        for kind, frames in (topic_specs[topic].get("templates") or {}).items():
            for frame in frames:
                add(kind, frame, topic)

    body_kinds = common["body_kinds"]
    if abs(sum(body_kinds.values()) - 1) > 1e-9:
        raise ValueError("body_kinds must sum to 1")
    generic_share = common.get("generic_share", {})
    kinds = {t.kind for t in templates}
    unknown = kinds - set(body_kinds) - set(CLASS_OF_KIND)
    if unknown:
        raise ValueError(f"frames of unknown kinds: {sorted(unknown)}")

    def share_of(kind, topic):
        g = generic_share.get(kind, 1.0)
        group = g if topic is None else 1.0 - g
        return group * body_kinds.get(kind, 1.0)

    _normalise_within_groups(templates, share_of)
    grammar = Grammar(topics, banks, templates, body_kinds, tuple(common["article_sentences"]))
    for klass in ("title", "lead", "body"):
        grammar.by_class[klass] = [t for t in templates if t.klass == klass]
    validate(grammar)
    return grammar


def validate(grammar: Grammar) -> None:
    """Fail loudly on a world the oracle could not score exactly."""
    for tpl in grammar.templates:
        if not tpl.text.isascii():
            raise ValueError(f"non-ASCII frame: {tpl.text!r}")
        if tpl.klass != "title" and tpl.text[-1] not in ".!?":
            raise ValueError(f"frame must end with . ! or ?: {tpl.text!r}")
        slots = [e[0] for e in tpl.elements if isinstance(e, tuple)]
        for s in slots:
            if s not in grammar.banks:
                raise ValueError(f"frame uses unknown slot {s!r}: {tpl.text!r}")
        sticky = [s for s in slots if grammar.banks[s].sticky]
        if len(sticky) != len(set(sticky)):
            raise ValueError(f"frame uses a sticky slot twice: {tpl.text!r}")
        # Every slot must have fillers wherever the frame can be drawn.
        for ti in np.flatnonzero(tpl.probs.sum(axis=1) > 0):
            for s in slots:
                if grammar.banks[s].probs[:, ti, :].sum() == 0:
                    raise ValueError(f"slot {s!r} has no fillers in topic "
                                     f"{grammar.topics[ti]!r}: {tpl.text!r}")
    for b in grammar.banks.values():
        for p in b.phrases:
            if not p or not p.isascii() or re.search(r"[.!?]\s|[.!?]$|\s\s|^\s|\s$", p):
                raise ValueError(f"bank {b.name!r}: bad phrase {p!r}")
    for klass in ("title", "lead", "body"):
        total = sum(t.probs for t in grammar.by_class[klass])
        if not np.allclose(total, 1.0):
            raise ValueError(f"{klass} frame probabilities do not sum to 1 for some topic: {total}")
    # Leads and body sentences must not share a first word, so each sentence has one class.
    lead_words = set().union(*(first_words(t, grammar.banks) for t in grammar.by_class["lead"]))
    body_words = set().union(*(first_words(t, grammar.banks) for t in grammar.by_class["body"]))
    if lead_words & body_words:
        raise ValueError(f"lead and body frames share first words: {sorted(lead_words & body_words)}")


def first_words(tpl: Template, banks: dict[str, Bank], limit: int = 100_000) -> set[str]:
    """All possible first words (text up to the first space) of a frame's sentences."""
    done, open_ = set(), {""}
    for el in tpl.elements:
        if isinstance(el, str):
            options = [el]
        else:
            name, cap = el
            options = [capitalise(p) if cap else p for p in banks[name].phrases]
        nxt = set()
        for prefix in open_:
            for opt in options:
                s = prefix + opt
                if " " in s:
                    done.add(s.split(" ", 1)[0])
                else:
                    nxt.add(s)
        if len(nxt) > limit:
            raise ValueError(f"frame starts with too many unspaced slots: {tpl.text!r}")
        open_ = nxt
        if not open_:
            break
    return done | open_

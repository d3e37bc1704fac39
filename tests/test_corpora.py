"""Corpus adapters on small fixtures in the real formats, and on the shared ABP slice."""

import json
from collections import Counter
from pathlib import Path

import pytest

from selfconsuming import LEANINGS
from selfconsuming.corpora import (
    InsufficientArticlesError,
    load_corpus,
    read_abp,
    read_jsonl_corpus,
    read_webis,
    stratified_sample,
)

FIXTURES = Path(__file__).parent / "fixtures"
SHARED_ABP = Path(__file__).resolve().parents[2] / "shared" / "data" / "article-bias-prediction"


def assert_accounts_for_every_row(report):
    assert report.rows_read == report.rows_kept + sum(report.dropped.values())
    assert sum(report.per_label.values()) == report.rows_kept


def assert_articles_well_formed(articles):
    for a in articles:
        assert isinstance(a["id"], str) and a["id"]
        assert a["label"] in LEANINGS
        assert a["text"].strip()
        assert isinstance(a["title"], str)
    assert len({a["id"] for a in articles}) == len(articles)


# ------------------------------------------------------------------ Webis


def test_webis_counts_every_problem():
    articles, report = read_webis(FIXTURES / "webis_data_public.csv")
    assert_accounts_for_every_row(report)
    assert_articles_well_formed(articles)
    assert report.rows_read == 9
    assert report.dropped == {"malformed_row": 1, "empty_body": 1, "unknown_label": 1}
    assert report.repaired == {"non_utf8": 1, "quoting_recovered": 2}
    reasons = {(p["line"], p["reason"]) for p in report.problems}
    # line 5 opens a quote it never closes; lines 6-7 were swallowed by it and recovered
    assert {(5, "malformed_row"), (6, "quoting_recovered"), (7, "quoting_recovered"),
            (8, "empty_body"), (9, "unknown_label"), (10, "non_utf8")} <= reasons
    assert report.per_label == {"left": 2, "center": 2, "right": 2}


def test_webis_keeps_multiline_quoted_body_and_repairs_bytes():
    articles, _ = read_webis(FIXTURES / "webis_data_public.csv")
    by_id = {a["id"]: a for a in articles}
    center = by_id["s1:center"]
    assert 'Senators said "enough" after weeks of talks.' in center["text"]
    assert center["source"] == "Reuters" and center["title"] == "Budget clears Senate"
    assert by_id["s3:left"]["text"] == "Talks stalled again, aides said."  # quoted label
    assert "\ufffd" in by_id["s4:right"]["text"]
    assert "s2:left" not in by_id and "s2:right" in by_id


def test_webis_original_columns():
    articles, report = read_webis(FIXTURES / "webis_data_public.csv", use_original=True)
    assert [a["id"] for a in articles] == ["s1:left"]  # only s1 has original bodies
    assert report.dropped["empty_body"] == 6


def test_webis_missing_columns_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("id,title,text\n1,a,b\n")
    with pytest.raises(ValueError, match="lacks Webis columns"):
        read_webis(bad)


# ------------------------------------------------------------------ ABP


def test_abp_media_split_counts_every_problem():
    articles, report = read_abp(FIXTURES / "abp", split_scheme="media")
    assert_accounts_for_every_row(report)
    assert_articles_well_formed(articles)
    assert report.dropped == {"empty_body": 1, "label_mismatch": 1, "missing_json": 1, "bad_json": 1, "not_in_split": 1}
    assert Counter(a["split"] for a in articles) == {"train": 3, "valid": 2, "test": 1}
    a1 = next(a for a in articles if a["id"] == "a1")
    assert a1 == {"id": "a1", "title": "Climate bill advances", "text": "Democrats pushed the climate bill forward.",
                  "label": "left", "source": "Outlet", "topic": "politics", "split": "train"}
    missing = [p for p in report.problems if p["reason"] == "missing_json"]
    assert missing == [{"file": "media/valid.tsv", "line": 4, "reason": "missing_json", "detail": "missing1"}]


def test_abp_accepts_data_folder_and_other_scheme():
    articles, report = read_abp(FIXTURES / "abp" / "data", split_scheme="random")
    assert Counter(a["split"] for a in articles) == {"train": 4, "valid": 2}
    assert any("test.tsv is absent" in note for note in report.notes)
    assert report.dropped == {"not_in_split": 4}


def test_abp_without_split_reads_every_json():
    articles, report = read_abp(FIXTURES / "abp", split_scheme=None)
    assert_accounts_for_every_row(report)
    assert report.rows_read == 10
    assert report.dropped == {"empty_body": 1, "bad_json": 1}
    assert all("split" not in a for a in articles)


def test_abp_unknown_scheme_names_the_key():
    with pytest.raises(ValueError, match="data.split_scheme"):
        read_abp(FIXTURES / "abp", split_scheme="by_topic")


@pytest.mark.skipif(not SHARED_ABP.is_dir(), reason="shared ABP slice not present")
def test_real_abp_slice():
    data = SHARED_ABP / "data"
    json_ids = {p.stem for p in (data / "jsons").glob("*.json")}
    listed = {}
    for tsv in sorted((data / "splits" / "media").glob("*.tsv")):
        with open(tsv) as f:
            next(f)
            listed.update({line.split("\t")[0]: tsv.stem for line in f if line.strip()})
    articles, report = read_abp(SHARED_ABP, split_scheme="media")
    assert_accounts_for_every_row(report)
    assert_articles_well_formed(articles)
    assert report.rows_read == len(listed) + len(json_ids - set(listed))
    assert report.dropped.get("missing_json", 0) == len(set(listed) - json_ids)
    assert report.dropped.get("not_in_split", 0) == len(json_ids - set(listed))
    assert Counter(a["split"] for a in articles) == Counter(
        split for article_id, split in listed.items() if article_id in json_ids)
    assert min(report.per_label.values()) >= 500  # a balanced slice: ~600 per leaning
    if not (data / "splits" / "media" / "test.tsv").exists():
        assert any("test.tsv" in note for note in report.notes)
    assert not any(" ’ s " in a["text"] for a in articles)  # content_original, not the tokenised content


# ------------------------------------------------------------------ JSONL


def test_jsonl_counts_every_problem():
    articles, report = read_jsonl_corpus(FIXTURES / "corpus.jsonl")
    assert_accounts_for_every_row(report)
    assert_articles_well_formed(articles)
    assert report.dropped == {"bad_json": 2, "missing_text": 1, "unknown_label": 1}
    assert report.repaired == {"non_utf8": 1}
    assert [(a["id"], a["label"]) for a in articles] == [("j1", "left"), ("j2", "center"), ("j3", "right"), ("j7", "right")]
    assert articles[1]["title"] == "Centrist title" and articles[1]["text"] == "Body only, no text key."
    assert articles[2]["topic"] == "economy"
    assert json.loads(json.dumps(report.to_dict()))["rows_read"] == 8


# ------------------------------------------------------------------ dispatch and sampling


def test_load_corpus_dispatches_and_names_keys(tmp_path):
    articles, report = load_corpus("jsonl", FIXTURES / "corpus.jsonl")
    assert report.source == "jsonl" and len(articles) == 4
    with pytest.raises(FileNotFoundError, match=r"data\.path.*nowhere"):
        load_corpus("webis", tmp_path / "nowhere.csv")
    with pytest.raises(FileNotFoundError, match=r"data\.path"):
        load_corpus("abp", None)
    with pytest.raises(ValueError, match=r"data\.source.*'reddit'"):
        load_corpus("reddit", FIXTURES / "corpus.jsonl")


def _articles(counts):
    return [{"id": f"{label}{i}", "title": "", "text": "x", "label": label}
            for label, n in counts.items() for i in range(n)]


def test_stratified_sample_exact_and_deterministic():
    articles = _articles({"left": 10, "center": 7, "right": 12})
    sample = stratified_sample(articles, per_label=5, seed=3)
    assert Counter(a["label"] for a in sample) == {"left": 5, "center": 5, "right": 5}
    assert len({a["id"] for a in sample}) == 15
    assert sample == stratified_sample(articles, per_label=5, seed=3)
    assert [a["id"] for a in sample] != [a["id"] for a in stratified_sample(articles, per_label=5, seed=4)]


def test_stratified_sample_error_names_key_label_and_counts():
    articles = _articles({"left": 10, "center": 3, "right": 12})
    with pytest.raises(InsufficientArticlesError) as err:
        stratified_sample(articles, per_label=5, seed=0)
    message = str(err.value)
    assert isinstance(err.value, ValueError)
    assert "data.per_label" in message and "'center'" in message and "5" in message and "3" in message


def test_webis_line_separators_inside_unquoted_body(tmp_path):
    path = tmp_path / "data_public.csv"
    path.write_text("story_id,title,body,source,original_title,original_body,bias\r\n"
                    "s1,T,Body with a form\x0cfeed and \u2028separator,CNN,,,From the Left\r\n"
                    "s2,T2,Second body,Fox,,,From the Right", encoding="utf-8")
    articles, report = read_webis(path)
    assert [a["id"] for a in articles] == ["s1:left", "s2:right"]
    assert "\u2028separator" in articles[0]["text"] and report.dropped == {}


def test_webis_quote_open_until_end_of_file_and_extra_fields(tmp_path):
    path = tmp_path / "data_public.csv"
    path.write_text("story_id,title,body,source,original_title,original_body,bias\n"
                    "s0,T0,too,many,fields,here,x,From the Center\n"
                    's1,T1,"open quote never closed,CNN,,,From the Left\n'
                    "s2,T2,plain,Fox,,,From the Right\n"
                    "s3,T3,plain three,AP,,,From the Center\n")
    articles, report = read_webis(path)
    assert_accounts_for_every_row(report)
    assert [a["id"] for a in articles] == ["s2:right", "s3:center"]
    assert report.dropped == {"malformed_row": 2}
    assert [p["line"] for p in report.problems if p["reason"] == "malformed_row"] == [2, 3]


def test_leading_sentences_keeps_whole_sentences_within_the_budget():
    from selfconsuming.text import leading_sentences

    text = "One two three. Four five six seven.  Eight nine."
    assert leading_sentences(text, 7) == "One two three. Four five six seven."
    assert leading_sentences(text, 6) == "One two three."
    assert leading_sentences("One two three four five. Six.", 3) == "One two three"  # first sentence cut
    assert leading_sentences(text, 100) == "One two three. Four five six seven. Eight nine."
    with pytest.raises(ValueError):
        leading_sentences(text, 0)


def test_detector_texts_are_a_seeded_draw_of_at_most_n():
    from selfconsuming.prepare import detector_texts

    articles = [{"text": f"article {i}"} for i in range(50)] + [{"text": ""}]
    draw = detector_texts(articles, 20, seed=3)
    assert len(draw) == 20 and len(set(draw)) == 20 and "" not in draw
    assert draw == detector_texts(articles, 20, seed=3) and draw != detector_texts(articles, 20, seed=4)
    assert len(detector_texts(articles, 500, seed=3)) == 50

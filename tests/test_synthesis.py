import pytest

from selfconsuming.models import load_causal_lm, load_tokenizer
from selfconsuming.synthesis import article_blocks, continue_blocks, generation_kwargs, synthesize_articles

from conftest import toy_articles


def test_article_blocks_cover_the_article():
    ids = list(range(150))
    blocks = article_blocks(ids, 64)
    assert [len(b) for b in blocks] == [64, 64, 22]
    assert sum(blocks, []) == ids


@pytest.mark.parametrize("decoding", ["greedy", "beam"])
def test_batched_generation_equals_each_block_alone(tiny_gpt2_dir, decoding):
    tok = load_tokenizer(tiny_gpt2_dir)
    model = load_causal_lm(tiny_gpt2_dir)
    ids = tok([a["text"] for a in toy_articles(3)], add_special_tokens=False)["input_ids"]
    blocks = [b for seq in ids for b in article_blocks(seq, 16)]
    assert len({len(b) for b in blocks}) > 1, "want blocks of different lengths, so padding is exercised"
    kwargs = generation_kwargs(decoding, 8, num_beams=3)
    batched = continue_blocks(model, blocks, tok.pad_token_id, kwargs, batch_size=len(blocks))
    alone = [continue_blocks(model, [b], tok.pad_token_id, kwargs, batch_size=1)[0] for b in blocks]
    assert batched == alone
    assert all(len(c) == 8 for c in batched)


def test_nucleus_is_seeded(tiny_gpt2_dir):
    tok = load_tokenizer(tiny_gpt2_dir)
    model = load_causal_lm(tiny_gpt2_dir)
    arts = toy_articles(2)
    kw = dict(decoding="nucleus", top_p=0.9, block_tokens=16, new_tokens=8)
    a = synthesize_articles(model, tok, arts, seed=1, **kw)
    b = synthesize_articles(model, tok, arts, seed=1, **kw)
    c = synthesize_articles(model, tok, arts, seed=2, **kw)
    assert a == b
    assert a != c


def test_synthetic_article_keeps_title_and_has_one_continuation_per_block(tiny_gpt2_dir):
    tok = load_tokenizer(tiny_gpt2_dir)
    model = load_causal_lm(tiny_gpt2_dir)
    arts = toy_articles(2)
    out = synthesize_articles(model, tok, arts, decoding="greedy", block_tokens=16, new_tokens=4)
    for art, syn in zip(arts, out):
        n_blocks = len(article_blocks(tok(art["text"], add_special_tokens=False)["input_ids"], 16))
        assert syn["title"] == art["title"] and syn["id"] == art["id"]
        assert len(syn["continuations"]) == n_blocks
        assert syn["text"] == "".join(syn["continuations"]).strip()


def test_unknown_decoding_is_rejected():
    with pytest.raises(ValueError, match="unknown decoding"):
        generation_kwargs("topk", 8)

import pytest
import torch

from selfconsuming.models import load_causal_lm, load_tokenizer
from selfconsuming.synthesis import (
    article_blocks, continue_blocks, generation_kwargs, left_padded, synthesize_articles,
)

from conftest import toy_articles


def test_article_blocks_cover_the_article():
    ids = list(range(150))
    blocks = article_blocks(ids, 64)
    assert [len(b) for b in blocks] == [64, 64, 22]
    assert sum(blocks, []) == ids


def _toy_blocks(tok, n_articles=3, block_tokens=16):
    ids = tok([a["text"] for a in toy_articles(n_articles)], add_special_tokens=False)["input_ids"]
    blocks = [b for seq in ids for b in article_blocks(seq, block_tokens)]
    assert len({len(b) for b in blocks}) > 1, "want blocks of different lengths, so padding is exercised"
    return blocks


@pytest.mark.parametrize("decoding", ["greedy", "beam"])
def test_batched_generation_equals_each_block_alone(tiny_gpt2_dir, decoding):
    tok = load_tokenizer(tiny_gpt2_dir)
    model = load_causal_lm(tiny_gpt2_dir)
    blocks = _toy_blocks(tok)
    kwargs = generation_kwargs(decoding, 8, num_beams=3)
    batched = continue_blocks(model, blocks, tok.pad_token_id, kwargs, batch_size=len(blocks))
    alone = [continue_blocks(model, [b], tok.pad_token_id, kwargs, batch_size=1)[0] for b in blocks]
    assert batched == alone
    assert all(len(c) == 8 for c in batched)


def _generate_reference(model, blocks, pad_id, kwargs, batch_size):
    """What transformers' `generate` writes for the blocks, batched the way continue_blocks batches them."""
    torch.manual_seed(5)
    order = sorted(range(len(blocks)), key=lambda i: (-len(blocks[i]), i))
    out = [None] * len(blocks)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        input_ids, attention = left_padded([blocks[i] for i in idx], pad_id)
        new = model.generate(input_ids=input_ids, attention_mask=attention, pad_token_id=pad_id, **kwargs)
        for i, row in zip(idx, new[:, input_ids.shape[1]:].tolist()):
            out[i] = row
    return out


@pytest.mark.parametrize("decoding", ["greedy", "beam", "nucleus"])
def test_decode_loops_match_transformers_generate(tiny_gpt2_dir, decoding):
    """The plain decode loops are the same search as `generate` (nucleus: the same draws for one seed)."""
    tok = load_tokenizer(tiny_gpt2_dir)
    model = load_causal_lm(tiny_gpt2_dir).eval()
    blocks = _toy_blocks(tok)
    kwargs = generation_kwargs(decoding, 8, num_beams=4, top_p=0.9, temperature=1.0)
    ours = continue_blocks(model, blocks, tok.pad_token_id, kwargs, batch_size=7, seed=5)
    assert ours == _generate_reference(model, blocks, tok.pad_token_id, kwargs, batch_size=7)


@pytest.mark.parametrize("decoding", ["greedy", "beam", "nucleus"])
def test_every_block_gets_exactly_new_tokens_and_no_eos(tiny_gpt2_dir, decoding):
    """Even a model that wants to stop at once writes new_tokens tokens: EOS is forbidden inside a continuation."""
    tok = load_tokenizer(tiny_gpt2_dir)
    model = load_causal_lm(tiny_gpt2_dir)
    eos = tok.eos_token_id

    def favour_eos(module, inputs, logits):  # EOS becomes by far the likeliest next token
        logits[..., eos] += 100.0
        return logits

    model.get_output_embeddings().register_forward_hook(favour_eos)
    blocks = _toy_blocks(tok)
    unforced = model.generate(input_ids=torch.tensor([blocks[0]]), max_new_tokens=1, do_sample=False,
                              pad_token_id=tok.pad_token_id)[0, -1].item()
    assert unforced == tok.eos_token_id, "the doctored model should want EOS"
    out = continue_blocks(model, blocks, tok.pad_token_id, generation_kwargs(decoding, 6, num_beams=3, top_p=0.9, temperature=1.0), seed=1)
    assert all(len(c) == 6 and tok.eos_token_id not in c for c in out)


def test_nucleus_is_seeded(tiny_gpt2_dir):
    tok = load_tokenizer(tiny_gpt2_dir)
    model = load_causal_lm(tiny_gpt2_dir)
    arts = toy_articles(2)
    kw = dict(decoding="nucleus", top_p=0.9, temperature=1.0, block_tokens=16, new_tokens=8, batch_size=64)
    a = synthesize_articles(model, tok, arts, seed=1, **kw)
    b = synthesize_articles(model, tok, arts, seed=1, **kw)
    c = synthesize_articles(model, tok, arts, seed=2, **kw)
    assert a == b
    assert a != c


def test_synthetic_article_keeps_title_and_has_one_continuation_per_block(tiny_gpt2_dir):
    tok = load_tokenizer(tiny_gpt2_dir)
    model = load_causal_lm(tiny_gpt2_dir)
    arts = toy_articles(2)
    out = synthesize_articles(model, tok, arts, decoding="greedy", block_tokens=16, new_tokens=4, batch_size=64)
    for art, syn in zip(arts, out):
        n_blocks = len(article_blocks(tok(art["text"], add_special_tokens=False)["input_ids"], 16))
        assert syn["title"] == art["title"] and syn["id"] == art["id"]
        assert len(syn["continuations"]) == n_blocks
        assert syn["text"] == "".join(syn["continuations"]).strip()


def test_unknown_decoding_is_rejected():
    with pytest.raises(ValueError, match="unknown decoding"):
        generation_kwargs("topk", 8)


def test_decoding_options_come_from_the_recipe_not_from_defaults_here():
    with pytest.raises(ValueError, match="num_beams"):
        generation_kwargs("beam", 8)
    with pytest.raises(ValueError, match="top_p"):
        generation_kwargs("nucleus", 8, temperature=1.0)


def test_memory_batch_size_fits_the_caches_of_gpt2_and_llama_configs():
    from transformers import GPT2Config, LlamaConfig

    from selfconsuming.synthesis import kv_cache_bytes, memory_batch_size

    gpt2 = GPT2Config(n_layer=12, n_embd=768, n_head=12, vocab_size=50257)
    assert kv_cache_bytes(gpt2, tokens=128) == 2 * 12 * 768 * 128 * 4
    llama = LlamaConfig(num_hidden_layers=30, hidden_size=576, num_attention_heads=9, num_key_value_heads=3,
                        vocab_size=49152)
    assert kv_cache_bytes(llama, tokens=128, dtype_bytes=2) == 2 * 30 * 3 * 64 * 128 * 2
    per_sequence = kv_cache_bytes(gpt2, 128) + gpt2.vocab_size * 4
    free = 100 * per_sequence
    assert memory_batch_size(gpt2, 1000, 128, 1, free) == 50  # half the free memory
    assert memory_batch_size(gpt2, 1000, 128, 10, free) == 5  # beams multiply the caches
    assert memory_batch_size(gpt2, 32, 128, 1, free) == 32  # never above the configured batch
    assert memory_batch_size(gpt2, 32, 128, 1, 0) == 1


def test_device_batch_size_keeps_the_configured_batch_on_a_cpu():
    from transformers import GPT2Config, GPT2LMHeadModel

    from selfconsuming.synthesis import device_batch_size

    model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50))
    assert device_batch_size(model, 64, 128, 10, "cpu") == 64


def test_shared_prompt_attention_is_attention_over_the_prompt_and_the_beams_own_keys():
    """Beams read their block's prompt keys once; the result is SDPA over the prompt copied to every beam."""
    from types import SimpleNamespace

    from selfconsuming.synthesis import SharedPrompt, shared_prompt_attention

    torch.manual_seed(0)
    rows, beams, heads, dim, prompt_len, generated = 3, 4, 2, 8, 6, 5
    attention = torch.ones((rows, prompt_len), dtype=torch.long)
    attention[1, :2] = 0  # left padding
    prompt_cache = SimpleNamespace(layers=[SimpleNamespace(keys=torch.randn(rows, heads, prompt_len, dim),
                                                           values=torch.randn(rows, heads, prompt_len, dim))])
    query = torch.randn(rows * beams, heads, 1, dim)
    keys, values = torch.randn(rows * beams, heads, generated, dim), torch.randn(rows * beams, heads, generated, dim)
    out, _ = shared_prompt_attention(SimpleNamespace(layer_idx=0), query, keys, values, None, scaling=dim ** -0.5,
                                     shared_prompt=SharedPrompt(prompt_cache, attention))
    layer = prompt_cache.layers[0]
    all_keys = torch.cat([layer.keys.repeat_interleave(beams, 0), keys], dim=2)
    all_values = torch.cat([layer.values.repeat_interleave(beams, 0), values], dim=2)
    mask = torch.cat([attention, torch.ones((rows, generated), dtype=torch.long)], 1).bool()
    expected = torch.nn.functional.scaled_dot_product_attention(
        query, all_keys, all_values, attn_mask=mask.repeat_interleave(beams, 0)[:, None, None, :])
    assert out.shape == (rows * beams, 1, heads, dim)
    assert torch.allclose(out, expected.transpose(1, 2), atol=1e-6)

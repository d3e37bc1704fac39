"""Synthetic articles: every 64-token block of a human article continued by 64 new tokens.

Blocks from all articles are generated together in left-padded batches with the
KV cache; blocks are sorted by length so full blocks never see padding.
"""

import logging

import torch
from tqdm.auto import tqdm

log = logging.getLogger(__name__)


def article_blocks(token_ids: list[int], block_tokens: int) -> list[list[int]]:
    """Cut an article's tokens into consecutive blocks of `block_tokens` (the last may be shorter)."""
    return [token_ids[i:i + block_tokens] for i in range(0, len(token_ids), block_tokens)]


def corpus_blocks(tokenizer, articles: list[dict], block_tokens: int) -> tuple[list[list[int]], list[int]]:
    """Every block of every article body, in corpus order, and the index of the article each came from.

    Synthesis continues these blocks and the neuron analysis reads activations on them.
    """
    bodies = tokenizer([a["text"] for a in articles], add_special_tokens=False)["input_ids"]
    blocks, owner = [], []
    for k, ids in enumerate(bodies):
        for block in article_blocks(ids, block_tokens):
            blocks.append(block)
            owner.append(k)
    return blocks, owner


def generation_kwargs(decoding: str, new_tokens: int, *, num_beams=None, top_p=None, temperature=None) -> dict:
    """transformers `generate` arguments for a setup's decoding strategy."""
    kwargs = {"max_new_tokens": new_tokens, "min_new_tokens": new_tokens}
    if decoding == "greedy":
        kwargs.update(do_sample=False, num_beams=1)
    elif decoding == "beam":
        kwargs.update(do_sample=False, num_beams=int(num_beams or 10))
    elif decoding == "nucleus":
        kwargs.update(do_sample=True, num_beams=1, top_p=float(top_p or 0.9), top_k=0,
                      temperature=float(temperature or 1.0))
    else:
        raise ValueError(f"unknown decoding {decoding!r}: expected greedy, beam or nucleus")
    return kwargs


@torch.no_grad()
def continue_blocks(model, blocks: list[list[int]], pad_id: int, gen_kwargs: dict,
                    batch_size: int = 64, seed: int = 0, device: str = "cpu") -> list[list[int]]:
    """New token ids for every block, in the order given."""
    torch.manual_seed(seed)
    order = sorted(range(len(blocks)), key=lambda i: (-len(blocks[i]), i))
    out: list[list[int]] = [None] * len(blocks)
    model.to(device).eval()
    for start in tqdm(range(0, len(order), batch_size), desc="synthesize", mininterval=5):
        idx = order[start:start + batch_size]
        width = max(len(blocks[i]) for i in idx)
        input_ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
        attention = torch.zeros((len(idx), width), dtype=torch.long)
        for row, i in enumerate(idx):
            input_ids[row, width - len(blocks[i]):] = torch.tensor(blocks[i])
            attention[row, width - len(blocks[i]):] = 1
        generated = model.generate(
            input_ids=input_ids.to(device), attention_mask=attention.to(device),
            pad_token_id=pad_id, use_cache=True, **gen_kwargs,
        )
        for row, i in enumerate(idx):
            out[i] = generated[row, width:].tolist()
    return out


def synthesize_articles(model, tokenizer, articles: list[dict], *, decoding: str, block_tokens: int = 64,
                        new_tokens: int = 64, batch_size: int = 64, num_beams=None, top_p=None,
                        temperature=None, seed: int = 0, device: str = "cpu") -> list[dict]:
    """One synthetic article per human article: title kept, body = the decoded continuations joined."""
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    blocks, owner = corpus_blocks(tokenizer, articles, block_tokens)
    gen_kwargs = generation_kwargs(decoding, new_tokens, num_beams=num_beams, top_p=top_p, temperature=temperature)
    log.info("%d articles -> %d blocks, decoding %s", len(articles), len(blocks), gen_kwargs)
    continuations = continue_blocks(model, blocks, pad_id, gen_kwargs, batch_size, seed, device)
    pieces: list[list[str]] = [[] for _ in articles]
    for k, new_ids in zip(owner, continuations):
        pieces[k].append(tokenizer.decode(new_ids, skip_special_tokens=True))
    return [
        {"id": a["id"], "title": a.get("title", ""), "text": "".join(p).strip(), "continuations": p}
        for a, p in zip(articles, pieces)
    ]

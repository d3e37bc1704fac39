"""Synthetic articles: every 64-token block of a human article continued by 64 new tokens.

Blocks from all articles are generated together in left-padded batches with a KV cache
that attends only over the positions filled so far; blocks are sorted by length so full
blocks never see padding. Greedy, nucleus and fixed-length beam decoding run plain loops
over the model's forward with that cache (no `generate` bookkeeping per step); any other
`generate` arguments fall back to `generate`.
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


def _needed(value, name: str, decoding: str):
    """A decoding option the recipe must give: its default lives in the config schema, not here."""
    if value is None:
        raise ValueError(f"{decoding} decoding needs {name} (the recipe's synthesis.{name})")
    return value


def generation_kwargs(decoding: str, new_tokens: int, *, num_beams=None, top_p=None, temperature=None) -> dict:
    """transformers `generate` arguments for a setup's decoding strategy."""
    kwargs = {"max_new_tokens": new_tokens, "min_new_tokens": new_tokens}
    if decoding == "greedy":
        kwargs.update(do_sample=False, num_beams=1)
    elif decoding == "beam":
        kwargs.update(do_sample=False, num_beams=int(_needed(num_beams, "num_beams", decoding)))
    elif decoding == "nucleus":
        kwargs.update(do_sample=True, num_beams=1, top_p=float(_needed(top_p, "top_p", decoding)), top_k=0,
                      temperature=float(_needed(temperature, "temperature", decoding)))
    else:
        raise ValueError(f"unknown decoding {decoding!r}: expected greedy, beam or nucleus")
    return kwargs


def left_padded(blocks: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Input ids and attention mask of a batch, padded on the left so every block ends at the last column."""
    width = max(len(b) for b in blocks)
    input_ids = torch.full((len(blocks), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(blocks), width), dtype=torch.long)
    for row, block in enumerate(blocks):
        input_ids[row, width - len(block):] = torch.tensor(block, dtype=torch.long)
        attention[row, width - len(block):] = 1
    return input_ids, attention


def _eos_ids(model) -> list[int]:
    """The token ids `generate` would stop at: they are forbidden inside a continuation."""
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if eos is None:
        eos = model.config.eos_token_id
    return [] if eos is None else [int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos])]


def _token_picker(gen_kwargs: dict):
    """Next-token rule for greedy or nucleus decoding, the same warpers `generate` applies."""
    if not gen_kwargs.get("do_sample"):
        # max(dim).indices is argmax (both document the first maximal index) at ~2.5x its speed on a CPU
        return lambda scores: scores.max(dim=-1).indices
    from transformers import LogitsProcessorList, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    warpers = LogitsProcessorList()
    temperature = gen_kwargs.get("temperature")
    if temperature is not None and temperature != 1.0:
        warpers.append(TemperatureLogitsWarper(temperature))
    if gen_kwargs.get("top_k"):
        warpers.append(TopKLogitsWarper(gen_kwargs["top_k"]))
    if gen_kwargs.get("top_p") is not None and gen_kwargs["top_p"] < 1.0:
        warpers.append(TopPLogitsWarper(gen_kwargs["top_p"]))

    def pick(scores):
        probs = warpers(None, scores).softmax(dim=-1)
        return torch.multinomial(probs, num_samples=1).squeeze(1)

    return pick


def _decode_loop(gen_kwargs: dict) -> str | None:
    """Which plain loop implements these `generate` arguments ("sample" or "beam"), or None for `generate`.

    The loops cover decoding of a fixed length (min_new_tokens == max_new_tokens, the only kind
    synthesis asks for): greedy or nucleus sampling, and deterministic beam search.
    """
    known = {"max_new_tokens", "min_new_tokens", "do_sample", "num_beams", "top_p", "top_k", "temperature"}
    if set(gen_kwargs) - known or gen_kwargs.get("min_new_tokens") != gen_kwargs["max_new_tokens"]:
        return None
    if gen_kwargs.get("num_beams", 1) == 1:
        return "sample"
    return None if gen_kwargs.get("do_sample") else "beam"


def growing_cache(model, max_len: int):
    """A KV cache allocated once for `max_len` positions that hands attention only the positions
    filled so far (a view, like DynamicCache's keys, without its copy per step).

    transformers' StaticCache attends over all `max_len` positions, empty ones masked: a third
    more attention work over a block's 64 + 64 positions. Each layer's `keys`/`values` stay the
    whole buffers, so beam search reorders them in place.
    """
    from transformers.cache_utils import Cache, StaticLayer

    class GrowingLayer(StaticLayer):
        is_compileable = False

        def __init__(self, max_cache_len: int):
            super().__init__(max_cache_len)
            self.length = 0

        def update(self, key_states, value_states, *args, **kwargs):
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            start, self.length = self.length, self.length + key_states.shape[-2]
            self.keys[:, :, start:self.length] = key_states
            self.values[:, :, start:self.length] = value_states
            return self.keys[:, :, :self.length], self.values[:, :, :self.length]

        def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
            return self.length + query_length, 0

        def get_seq_length(self) -> int:
            return self.length

    return Cache(layers=[GrowingLayer(max_len) for _ in range(model.config.num_hidden_layers)])


@torch.no_grad()
def decode_batch(model, input_ids: torch.Tensor, attention: torch.Tensor, new_tokens: int, pick,
                 forbidden: list[int]) -> torch.Tensor:
    """`new_tokens` new ids per row of a left-padded batch: one forward per token on the KV cache.

    Position ids count real tokens only (as `generate` does), so a padded row decodes as it would alone;
    `forbidden` ids (EOS) never come out, so every row gets exactly `new_tokens` tokens.
    """
    rows, width = input_ids.shape
    device = input_ids.device
    mask = torch.cat([attention, torch.ones((rows, new_tokens), dtype=attention.dtype, device=device)], dim=1)
    positions = (attention.cumsum(-1) - 1).clamp(min=0)
    next_position = positions[:, -1:] + 1
    cache = growing_cache(model, width + new_tokens)
    out = torch.empty((rows, new_tokens), dtype=torch.long, device=device)
    logits = model(input_ids=input_ids, attention_mask=attention, position_ids=positions, past_key_values=cache,
                   use_cache=True, logits_to_keep=1).logits[:, -1, :]
    for step in range(new_tokens):
        scores = logits.float()
        if forbidden:
            scores[:, forbidden] = -float("inf")
        token = pick(scores)
        out[:, step] = token
        if step + 1 == new_tokens:
            break
        logits = model(input_ids=token[:, None], attention_mask=mask[:, :width + step + 1],
                       position_ids=next_position + step, past_key_values=cache, use_cache=True,
                       logits_to_keep=1).logits[:, -1, :]
    return out


def _reorder_generated(cache, beam_idx: torch.Tensor, start: int, stop: int) -> None:
    """Point every cache row at its parent beam; only positions start:stop (the generated part) differ
    between beams of one block, so the shared prompt part is not copied."""
    for layer in cache.layers:
        for name in ("keys", "values"):
            generated = getattr(layer, name)[:, :, start:stop]
            generated.copy_(generated.index_select(0, beam_idx))


SHARED_PROMPT_ATTENTION = "shared_prompt_sdpa"


class SharedPrompt:
    """The prompt's keys and values per layer, one row per block, for beams that all continue it.

    `bias` is 0 over a block's real prompt positions and -inf over its left padding.
    """

    def __init__(self, prompt_cache, attention: torch.Tensor):
        self.keys = [layer.keys for layer in prompt_cache.layers]
        self.values = [layer.values for layer in prompt_cache.layers]
        self.bias = torch.zeros(attention.shape, dtype=self.keys[0].dtype, device=attention.device)
        self.bias = self.bias.masked_fill(attention == 0, -float("inf"))[:, None, None, :]


def shared_prompt_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, *,
                            shared_prompt: SharedPrompt | None = None, **kwargs):
    """One decode step of K beams per block: the block's prompt keys are read once for its K beams.

    The beams of a block share their prompt, so attention over it is one small matrix product per
    block (K queries against the prompt's keys) instead of K matrix-vector products over K copies;
    the generated keys, which differ per beam, come from the cache. The two parts' softmax terms
    are merged over their common maximum: the same attention as over the concatenated keys.
    Without a shared prompt (the prompt's own pass) it is transformers' SDPA attention.
    """
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if shared_prompt is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    rows_beams, heads, _, head_dim = query.shape
    prompt_keys = shared_prompt.keys[module.layer_idx]
    prompt_values = shared_prompt.values[module.layer_idx]
    rows, generated = prompt_keys.shape[0], key.shape[2]
    beams = rows_beams // rows
    scale = scaling if scaling is not None else head_dim ** -0.5
    by_block = query.view(rows, beams, heads, head_dim).transpose(1, 2)  # (rows, heads, beams, dim)
    prompt_scores = torch.matmul(by_block, prompt_keys.transpose(-1, -2)) * scale + shared_prompt.bias
    own_scores = (torch.matmul(query, key.transpose(-1, -2)) * scale).view(rows, beams, heads, generated)
    own_scores = own_scores.transpose(1, 2)  # (rows, heads, beams, generated)
    top = torch.maximum(prompt_scores.amax(-1, keepdim=True), own_scores.amax(-1, keepdim=True))
    prompt_weights, own_weights = (prompt_scores - top).exp(), (own_scores - top).exp()
    total = prompt_weights.sum(-1, keepdim=True) + own_weights.sum(-1, keepdim=True)
    own_out = torch.matmul(own_weights.transpose(1, 2).reshape(rows_beams, heads, 1, generated), value)
    out = torch.matmul(prompt_weights, prompt_values) + own_out.view(rows, beams, heads, head_dim).transpose(1, 2)
    out = out / total  # (rows, heads, beams, dim)
    return out.transpose(1, 2).reshape(rows_beams, 1, heads, head_dim), None


def _register_shared_prompt_attention() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    AttentionInterface.register(SHARED_PROMPT_ATTENTION, shared_prompt_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(SHARED_PROMPT_ATTENTION, sdpa_mask)


def shares_prompt(model) -> bool:
    """Whether beams can share the prompt's keys: a GPT-2 on SDPA attention (one key head per query head)."""
    return model.config.model_type == "gpt2" and model.config._attn_implementation in ("sdpa", SHARED_PROMPT_ATTENTION)


@torch.no_grad()
def beam_batch(model, input_ids: torch.Tensor, attention: torch.Tensor, new_tokens: int, num_beams: int,
               forbidden: list[int]) -> torch.Tensor:
    """Best beam of `new_tokens` new ids per row: the search `generate(num_beams=K, min_new_tokens=max_new_tokens)`
    runs, scored the same way (log-softmax, EOS set to -inf after it, running sums, top K of K x vocab).

    With a fixed length no hypothesis ends early, so the best sequence is the top candidate of the last step.
    The prompt is run once per block (not once per beam). A GPT-2 keeps its keys once per block and
    its beams attend to them together (`shared_prompt_attention`); other models copy them to the K beams.
    """
    from transformers import DynamicCache

    rows, width = input_ids.shape
    device = input_ids.device
    shared = shares_prompt(model)
    implementation = model.config._attn_implementation
    if shared:
        _register_shared_prompt_attention()
        model.set_attn_implementation(SHARED_PROMPT_ATTENTION)
    try:
        prompt_cache = DynamicCache(config=model.config)
        positions = (attention.cumsum(-1) - 1).clamp(min=0)
        logits = model(input_ids=input_ids, attention_mask=attention, position_ids=positions,
                       past_key_values=prompt_cache, use_cache=True, logits_to_keep=1).logits[:, -1, :]
        if shared:
            prompt = {"shared_prompt": SharedPrompt(prompt_cache, attention)}
            cache, start = growing_cache(model, new_tokens), 0
        else:
            prompt = {}
            cache, start = growing_cache(model, width + new_tokens), width
            for i, layer in enumerate(prompt_cache.layers):
                cache.update(layer.keys.repeat_interleave(num_beams, 0), layer.values.repeat_interleave(num_beams, 0), i)
            mask = torch.cat([attention, torch.ones((rows, new_tokens), dtype=attention.dtype, device=device)],
                             dim=1).repeat_interleave(num_beams, 0)
        del prompt_cache
        logits = logits.repeat_interleave(num_beams, 0)
        next_position = (positions[:, -1:] + 1).repeat_interleave(num_beams, 0)
        scores = torch.zeros((rows, num_beams), dtype=torch.float, device=device)
        scores[:, 1:] = -1e9
        sequences = torch.zeros((rows, num_beams, new_tokens), dtype=torch.long, device=device)
        offsets = (torch.arange(rows, device=device) * num_beams)[:, None]
        for step in range(new_tokens):
            log_probs = torch.nn.functional.log_softmax(logits.float(), dim=-1)
            if forbidden:
                log_probs[:, forbidden] = -float("inf")
            vocab = log_probs.shape[-1]
            total = (log_probs.view(rows, num_beams, vocab) + scores[:, :, None]).view(rows, num_beams * vocab)
            scores, flat = torch.topk(total, k=num_beams if step + 1 < new_tokens else 1)
            parent, token = flat // vocab, flat % vocab
            sequences = sequences.gather(1, parent[:, :, None].expand(-1, -1, new_tokens)).clone()
            sequences[:, :, step] = token
            if step + 1 == new_tokens:
                break
            beam_idx = (parent + offsets).view(-1)
            if step or not shared:  # a cache of generated positions only is empty before the first step
                _reorder_generated(cache, beam_idx, start, start + step)
            step_mask = None if shared else mask[:, :width + step + 1]
            logits = model(input_ids=token.view(-1, 1), attention_mask=step_mask, position_ids=next_position + step,
                           past_key_values=cache, use_cache=True, logits_to_keep=1, **prompt).logits[:, -1, :]
    finally:
        if shared:
            model.set_attn_implementation(implementation)
    return sequences[:, 0]


def kv_cache_bytes(config, tokens: int, dtype_bytes: int = 4) -> int:
    """Bytes of one sequence's key/value cache over `tokens` positions (GPT-2 or Llama-style config)."""
    layers = getattr(config, "num_hidden_layers", None) or config.n_layer
    heads = getattr(config, "num_attention_heads", None) or config.n_head
    hidden = getattr(config, "hidden_size", None) or config.n_embd
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or hidden // heads
    return 2 * layers * kv_heads * head_dim * tokens * dtype_bytes


def memory_batch_size(config, requested: int, tokens: int, beams: int, free_bytes: int,
                      dtype_bytes: int = 4, headroom: float = 0.5) -> int:
    """The largest batch (at most `requested`, at least 1) whose caches, beams and last-position
    logits fit in `headroom` of the free memory: the rest is for activations and fragmentation."""
    per_sequence = beams * (kv_cache_bytes(config, tokens, dtype_bytes) + config.vocab_size * 4)
    return max(1, min(requested, int(headroom * free_bytes) // per_sequence))


def device_batch_size(model, requested: int, tokens: int, beams: int, device: str) -> int:
    """On CUDA the configured batch is an upper bound cut to the free memory; elsewhere it is kept."""
    if not str(device).startswith("cuda"):
        return requested
    free, _ = torch.cuda.mem_get_info(torch.device(device))
    return memory_batch_size(model.config, requested, tokens, beams, free,
                             dtype_bytes=next(model.parameters()).element_size())


@torch.no_grad()
def continue_blocks(model, blocks: list[list[int]], pad_id: int, gen_kwargs: dict,
                    batch_size: int = 64, seed: int = 0, device: str = "cpu") -> list[list[int]]:
    """New token ids for every block, in the order given."""
    torch.manual_seed(seed)
    order = sorted(range(len(blocks)), key=lambda i: (-len(blocks[i]), i))
    out: list[list[int]] = [None] * len(blocks)
    model.to(device).eval()
    loop = _decode_loop(gen_kwargs)
    pick = _token_picker(gen_kwargs) if loop == "sample" else None
    forbidden = _eos_ids(model)
    width = max((len(b) for b in blocks), default=0) + gen_kwargs["max_new_tokens"]
    batch_size = device_batch_size(model, batch_size, width, gen_kwargs.get("num_beams", 1), device)
    for start in tqdm(range(0, len(order), batch_size), desc="synthesize", mininterval=5):
        idx = order[start:start + batch_size]
        input_ids, attention = left_padded([blocks[i] for i in idx], pad_id)
        input_ids, attention = input_ids.to(device), attention.to(device)
        if loop == "sample":
            new = decode_batch(model, input_ids, attention, gen_kwargs["max_new_tokens"], pick, forbidden)
        elif loop == "beam":
            new = beam_batch(model, input_ids, attention, gen_kwargs["max_new_tokens"], gen_kwargs["num_beams"],
                             forbidden)
        else:
            new = model.generate(input_ids=input_ids, attention_mask=attention, pad_token_id=pad_id,
                                 use_cache=True, **gen_kwargs)[:, input_ids.shape[1]:]
        for row, new_ids in zip(idx, new.tolist()):
            out[row] = new_ids
    return out


def synthesize_articles(model, tokenizer, articles: list[dict], *, decoding: str, block_tokens: int,
                        new_tokens: int, batch_size: int, num_beams=None, top_p=None,
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

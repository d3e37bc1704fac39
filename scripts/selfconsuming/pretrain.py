"""The offline base model `world-gpt2`: a byte-level BPE tokenizer and a small GPT-2 trained from scratch.

Pretraining on a leaning-skewed sample of the world gives the base model a
pre-existing leaning, the analogue of GPT-2's.
"""

import logging

import torch
from tokenizers import ByteLevelBPETokenizer
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from .finetune import finetune_causal_lm
from .text import article_text
from .models import save_model

log = logging.getLogger(__name__)

EOS = "<|endoftext|>"


def train_bpe_tokenizer(texts: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """A GPT-2-style byte-level BPE tokenizer learned from `texts`, EOS doubling as pad."""
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=vocab_size, min_frequency=2, special_tokens=[EOS], show_progress=False)
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, eos_token=EOS, bos_token=EOS, unk_token=EOS, pad_token=EOS)
    tok.padding_side = "left"
    return tok


def build_gpt2(tokenizer, n_layer: int, n_embd: int, n_head: int, n_positions: int, seed: int) -> GPT2LMHeadModel:
    """A randomly initialised GPT-2 sized for the tokenizer."""
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=n_positions, n_embd=n_embd, n_layer=n_layer, n_head=n_head,
        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.eos_token_id,
    )
    return GPT2LMHeadModel(config)


def pretrain_world_gpt2(articles: list[dict], out_dir, *, vocab_size: int, n_layer: int, n_embd: int, n_head: int,
                        n_positions: int, epochs: int, lr: float, batch_size: int, seed: int,
                        device: str = "cpu") -> dict:
    """Train tokenizer and model from scratch on `articles`; save a normal transformers model directory."""
    texts = [article_text(a) for a in articles]
    tokenizer = train_bpe_tokenizer(texts, vocab_size)
    model = build_gpt2(tokenizer, n_layer, n_embd, n_head, n_positions, seed)
    log.info("world-gpt2: %d parameters, vocab %d", sum(p.numel() for p in model.parameters()), len(tokenizer))
    stats = finetune_causal_lm(model, tokenizer, texts, epochs=epochs, lr=lr, batch_size=batch_size,
                               weight_decay=0.01, max_length=n_positions, seed=seed, device=device)
    save_model(model, tokenizer, out_dir)
    return stats

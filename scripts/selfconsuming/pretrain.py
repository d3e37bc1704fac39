"""The offline base model `world-gpt2`: a byte-level BPE tokenizer and a small GPT-2 trained from scratch.

Pretraining on a leaning-skewed sample of the world gives the base model a
pre-existing leaning, the analogue of GPT-2's.
"""

import logging
import math
import time

import numpy as np
import torch
from tokenizers import ByteLevelBPETokenizer
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast, get_scheduler

from .finetune import collate, length_grouped_batches, tokenize_articles
from .text import article_text
from .models import save_model

log = logging.getLogger(__name__)

EOS = "<|endoftext|>"
# Learning-rate schedules after warmup (names of transformers.get_scheduler).
SCHEDULES = {"constant": "constant_with_warmup", "linear": "linear", "cosine": "cosine"}


def train_bpe_tokenizer(texts: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """A GPT-2-style byte-level BPE tokenizer learned from `texts`, EOS doubling as pad."""
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=vocab_size, min_frequency=2, special_tokens=[EOS], show_progress=False)
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, eos_token=EOS, bos_token=EOS, unk_token=EOS, pad_token=EOS)
    tok.padding_side = "left"
    return tok


def build_gpt2(tokenizer, n_layer: int, n_embd: int, n_head: int, n_positions: int, seed: int, *,
               attention_dropout: float) -> GPT2LMHeadModel:
    """A randomly initialised GPT-2 sized for the tokenizer.

    GPT-2's tanh GELU comes as torch's fused kernel (`gelu_pytorch_tanh`, the same function as
    GPT-2's `gelu_new`). `attention_dropout` is GPT-2's attn_pdrop (see the config schema: at 0
    training takes the fused causal attention kernel on a CPU); embedding and residual dropout
    stay at GPT-2's 0.1.
    """
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=n_positions, n_embd=n_embd, n_head=n_head, n_layer=n_layer,
        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.eos_token_id,
        activation_function="gelu_pytorch_tanh", attn_pdrop=attention_dropout,
    )
    return GPT2LMHeadModel(config)


def lr_scheduler(optimizer, schedule: str, warmup: float, total_steps: int):
    """The learning-rate schedule: linear warmup over a `warmup` share of the steps, then `schedule`.

    From scratch a decaying rate lets the last epochs settle into the grammar a high
    constant rate keeps jumping around; warmup keeps the first Adam steps from blowing up.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}: expected one of {sorted(SCHEDULES)}")
    if not 0 <= warmup < 1:
        raise ValueError(f"warmup is a share of the steps in [0, 1), got {warmup}")
    return get_scheduler(SCHEDULES[schedule], optimizer, num_warmup_steps=round(warmup * total_steps),
                         num_training_steps=total_steps)


def pretrain_causal_lm(model, tokenizer, texts: list[str], *, epochs: int, lr: float, batch_size: int,
                       weight_decay: float, max_length: int, seed: int, schedule: str = "constant",
                       warmup: float = 0.0, device: str = "cpu") -> dict:
    """Train `model` in place with AdamW under a learning-rate schedule; loss and throughput statistics.

    Batches are length-grouped as in fine-tuning (finetune.py), so compute goes to real tokens.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    context = getattr(model.config, "n_positions", None) or getattr(model.config, "max_position_embeddings", max_length)
    sequences = tokenize_articles(tokenizer, texts, min(max_length, context))
    if not sequences:
        raise ValueError("pretraining corpus is empty")
    lengths = [len(s) for s in sequences]
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = lr_scheduler(optimizer, schedule, warmup, epochs * math.ceil(len(sequences) / batch_size))
    losses, real_tokens = [], 0
    start = time.perf_counter()
    for epoch in range(epochs):
        epoch_losses = []
        for batch_ids in length_grouped_batches(lengths, batch_size, rng):
            batch = collate([sequences[i] for i in batch_ids], tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id)
            loss = model(**{k: v.to(device) for k, v in batch.items()}).loss
            loss.backward()
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            epoch_losses.append(loss.item())
            real_tokens += sum(lengths[i] for i in batch_ids)
        losses.append(float(np.mean(epoch_losses)))
        log.info("epoch %d/%d mean loss %.4f (lr now %.2e)", epoch + 1, epochs, losses[-1], scheduler.get_last_lr()[0])
    seconds = time.perf_counter() - start
    model.eval()
    return {"articles": len(sequences), "epochs": epochs, "epoch_losses": losses, "real_tokens": real_tokens,
            "seconds": seconds, "real_tokens_per_second": real_tokens / max(seconds, 1e-9)}


def pretrain_world_gpt2(articles: list[dict], out_dir, *, vocab_size: int, n_layer: int, n_embd: int, n_head: int,
                        n_positions: int, attention_dropout: float, epochs: int, lr: float, batch_size: int,
                        seed: int, schedule: str, warmup: float, device: str = "cpu") -> dict:
    """Train tokenizer and model from scratch on `articles`; save a normal transformers model directory."""
    texts = [article_text(a) for a in articles]
    tokenizer = train_bpe_tokenizer(texts, vocab_size)
    model = build_gpt2(tokenizer, n_layer, n_embd, n_head, n_positions, seed, attention_dropout=attention_dropout)
    log.info("world-gpt2: %d parameters, vocab %d", sum(p.numel() for p in model.parameters()), len(tokenizer))
    stats = pretrain_causal_lm(model, tokenizer, texts, epochs=epochs, lr=lr, batch_size=batch_size,
                               weight_decay=0.01, max_length=n_positions, seed=seed, schedule=schedule,
                               warmup=warmup, device=device)
    save_model(model, tokenizer, out_dir)
    return stats

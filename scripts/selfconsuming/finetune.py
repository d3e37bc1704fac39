"""Causal-LM fine-tuning on articles, with length-grouped batches so compute goes to real tokens."""

import logging
import math
import time

import numpy as np
import torch
from tqdm.auto import tqdm

log = logging.getLogger(__name__)


def tokenize_articles(tokenizer, texts: list[str], max_length: int) -> list[list[int]]:
    """Token ids per article, EOS appended, capped at max_length tokens."""
    eos = tokenizer.eos_token_id
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    return [(seq + [eos])[:max_length] for seq in ids]


def length_grouped_batches(lengths: list[int], batch_size: int, rng: np.random.Generator) -> list[list[int]]:
    """Batches of indices of similar length, in a shuffled order.

    Sorting by length (with random tie-breaking) before cutting batches keeps
    padding small; shuffling the batch order keeps epochs from seeing lengths in order.
    """
    order = np.lexsort((rng.random(len(lengths)), np.asarray(lengths)))
    batches = [order[i:i + batch_size].tolist() for i in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return batches


def collate(sequences: list[list[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad a batch; padding gets label -100 so it never counts in the loss."""
    width = max(len(s) for s in sequences)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(sequences), width), dtype=torch.long)
    for i, s in enumerate(sequences):
        input_ids[i, : len(s)] = torch.tensor(s)
        attention[i, : len(s)] = 1
    labels = input_ids.masked_fill(attention == 0, -100)
    return {"input_ids": input_ids, "attention_mask": attention, "labels": labels}


def finetune_causal_lm(
    model,
    tokenizer,
    texts: list[str],
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    weight_decay: float,
    max_length: int,
    seed: int,
    device: str = "cpu",
    grouped: bool = True,
) -> dict:
    """Fine-tune `model` in place with AdamW; returns loss and throughput statistics.

    `grouped=False` pads every batch to max_length: kept only so the benchmark can
    measure what length grouping saves.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    context = getattr(model.config, "n_positions", None) or getattr(model.config, "max_position_embeddings", max_length)
    sequences = tokenize_articles(tokenizer, texts, min(max_length, context))
    if not sequences:
        raise ValueError("fine-tuning corpus is empty")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    lengths = [len(s) for s in sequences]
    real_tokens = 0
    losses = []
    start = time.perf_counter()
    steps = epochs * math.ceil(len(sequences) / batch_size)
    progress = tqdm(total=steps, desc="fine-tune", mininterval=5)
    for epoch in range(epochs):
        epoch_losses = []
        for batch_ids in length_grouped_batches(lengths, batch_size, rng):
            batch_seqs = [sequences[i] for i in batch_ids]
            if not grouped:
                batch_seqs = [s + [pad_id] * (max_length - len(s)) for s in batch_seqs]
            batch = collate(batch_seqs, pad_id)
            if not grouped:
                for row, i in enumerate(batch_ids):
                    batch["attention_mask"][row, lengths[i]:] = 0
                    batch["labels"][row, lengths[i]:] = -100
            batch = {k: v.to(device) for k, v in batch.items()}
            loss = model(**batch).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            epoch_losses.append(loss.item())
            real_tokens += sum(lengths[i] for i in batch_ids)
            progress.update(1)
        losses.append(float(np.mean(epoch_losses)))
        log.info("epoch %d/%d mean loss %.4f", epoch + 1, epochs, losses[-1])
    progress.close()
    seconds = time.perf_counter() - start
    model.eval()
    return {
        "articles": len(sequences),
        "epochs": epochs,
        "epoch_losses": losses,
        "real_tokens": real_tokens,
        "seconds": seconds,
        "real_tokens_per_second": real_tokens / max(seconds, 1e-9),
    }

"""Causal-LM fine-tuning on articles, with length-grouped batches so compute goes to real tokens.

Two optimizer recipes (`OptimizerRecipe.style`): `plain` (one AdamW group, constant rate,
no clipping: the offline default's) and `trainer`, the recipe the study got from
`transformers.Trainer`: AdamW without weight decay on biases and LayerNorm/RMSNorm weights,
linear warmup then linear decay to zero, gradient clipping at `max_grad_norm`.
"""

import contextlib
import logging
import math
import re
import time
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

log = logging.getLogger(__name__)

# transformers.Trainer.get_decay_parameter_names: parameters of LayerNorm modules and names
# matching these patterns get no weight decay
NO_DECAY_NAME_PATTERNS = (r"bias", r"layernorm", r"rmsnorm", r"(?:^|\.)norm(?:$|\.)", r"_norm(?:$|\.)")
STYLES = ("plain", "trainer")


@dataclass(frozen=True)
class OptimizerRecipe:
    """How the optimizer steps; the AdamW betas and epsilon are Trainer's defaults (torch's too)."""

    lr: float
    weight_decay: float
    style: str = "plain"
    warmup_ratio: float = 0.0
    max_grad_norm: float | None = None
    grad_accum: int = 1
    bf16: bool = True
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8

    def __post_init__(self):
        if self.style not in STYLES:
            raise ValueError(f"finetune.optimizer: unknown style {self.style!r}; expected one of {STYLES}")
        if self.style == "plain" and (self.warmup_ratio or self.max_grad_norm is not None):
            raise ValueError("finetune.warmup_ratio and finetune.max_grad_norm belong to optimizer: trainer")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"finetune.warmup_ratio is a share of the steps in [0, 1), got {self.warmup_ratio}")
        if self.grad_accum < 1:
            raise ValueError(f"finetune.grad_accum must be >= 1, got {self.grad_accum}")

    @classmethod
    def from_finetune(cls, ft: dict, weight_decay: float | None = None) -> "OptimizerRecipe":
        """From a recipe's `finetune` fields (a plain recipe where the optimizer fields are absent)."""
        style = ft.get("optimizer", "plain")
        return cls(lr=ft["lr"], weight_decay=ft["weight_decay"] if weight_decay is None else weight_decay,
                   style=style, warmup_ratio=ft.get("warmup_ratio", 0.0),
                   max_grad_norm=ft.get("max_grad_norm") if style == "trainer" else None,
                   grad_accum=ft.get("grad_accum", 1), bf16=ft.get("bf16", True))


def no_decay_parameter_names(model) -> set[str]:
    """Names of the parameters Trainer exempts from weight decay: biases and norm weights."""
    norm_types = (torch.nn.LayerNorm,)
    exempt = set()
    for module_name, module in model.named_modules():
        for name, _ in module.named_parameters(prefix=module_name, recurse=False):
            lowered = name.lower()
            if isinstance(module, norm_types) or any(re.search(p, lowered) for p in NO_DECAY_NAME_PATTERNS):
                exempt.add(name)
    return exempt


def parameter_groups(model, recipe: OptimizerRecipe) -> list[dict]:
    """AdamW parameter groups: one for `plain`; decayed and exempt (weight_decay 0) for `trainer`."""
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if recipe.style == "plain":
        return [{"params": [p for _, p in params], "weight_decay": recipe.weight_decay}]
    exempt = no_decay_parameter_names(model)
    return [
        {"params": [p for n, p in params if n not in exempt], "weight_decay": recipe.weight_decay},
        {"params": [p for n, p in params if n in exempt], "weight_decay": 0.0},
    ]


def optimizer_steps(n_batches: int, epochs: int, grad_accum: int) -> int:
    """Optimizer updates in a run: the last accumulation window of an epoch may be short (as in Trainer)."""
    return epochs * max(math.ceil(n_batches / grad_accum), 1)


def build_optimizer(model, recipe: OptimizerRecipe, total_steps: int):
    """(AdamW, LR scheduler) of the recipe: constant for `plain`, warmup + linear decay to zero for `trainer`."""
    from transformers import get_scheduler

    optimizer = torch.optim.AdamW(parameter_groups(model, recipe), lr=recipe.lr, betas=recipe.betas, eps=recipe.eps)
    if recipe.style == "plain":
        return optimizer, get_scheduler("constant", optimizer)
    warmup = math.ceil(total_steps * recipe.warmup_ratio)  # TrainingArguments.get_warmup_steps for a ratio
    return optimizer, get_scheduler("linear", optimizer, num_warmup_steps=warmup, num_training_steps=total_steps)


def autocast_context(device: str, bf16: bool):
    """bf16 autocast on a CUDA device that supports it; elsewhere full precision."""
    if bf16 and str(device).startswith("cuda") and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def target_tokens(batch: dict) -> int:
    """Tokens that count in a causal-LM loss: labels other than -100 after the one-token shift."""
    return int((batch["labels"][:, 1:] != -100).sum())


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
    """Right-pad a batch; padding gets label -100 so it never counts in the loss.

    No attention mask: padding sits after every real token, so the causal mask alone keeps
    it out of every real token's attention (the positions count from 0 either way). Without
    a mask the attention takes the fused causal kernel; the loss and gradients are the same
    (tested against the masked forward).
    """
    width = max(len(s) for s in sequences)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    labels = torch.full((len(sequences), width), -100, dtype=torch.long)
    for i, s in enumerate(sequences):
        input_ids[i, : len(s)] = labels[i, : len(s)] = torch.tensor(s)
    return {"input_ids": input_ids, "labels": labels}


class _RightPaddingNeedsNoMask(logging.Filter):
    """Drops transformers' advice to pass an attention mask with padded input ids: `collate`'s right
    padding needs none under the causal mask, so the advice would only mislead whoever reads the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "strongly recommend passing in an `attention_mask`" not in record.getMessage()


logging.getLogger("transformers.modeling_utils").addFilter(_RightPaddingNeedsNoMask())


def window_loss(model, batches: list[dict]) -> float:
    """Backward over one accumulation window; its loss is the mean over the window's target tokens.

    One batch keeps the model's own loss; several are summed token-wise and divided by
    the window's token count, so accumulating k batches steps like one batch of them all.
    """
    if len(batches) == 1:
        loss = model(**batches[0]).loss
        loss.backward()
        return loss.item()
    n_tokens = max(sum(target_tokens(b) for b in batches), 1)
    total = 0.0
    for batch in batches:
        logits = model(input_ids=batch["input_ids"]).logits
        loss = torch.nn.functional.cross_entropy(
            logits[:, :-1].flatten(0, 1).float(), batch["labels"][:, 1:].flatten(), ignore_index=-100,
            reduction="sum") / n_tokens
        loss.backward()
        total += loss.item()
    return total


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
    optimizer: OptimizerRecipe | None = None,
) -> dict:
    """Fine-tune `model` in place with AdamW; returns loss and throughput statistics.

    `optimizer` is the recipe (default: plain AdamW at `lr` and `weight_decay`);
    `batch_size` is per forward pass, `optimizer.grad_accum` passes make one step.
    `grouped=False` pads every batch to max_length: kept only so the benchmark can
    measure what length grouping saves.
    """
    recipe = optimizer or OptimizerRecipe(lr=lr, weight_decay=weight_decay)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    context = getattr(model.config, "n_positions", None) or getattr(model.config, "max_position_embeddings", max_length)
    sequences = tokenize_articles(tokenizer, texts, min(max_length, context))
    if not sequences:
        raise ValueError("fine-tuning corpus is empty")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    model.to(device).train()
    lengths = [len(s) for s in sequences]
    n_batches = math.ceil(len(sequences) / batch_size)
    opt, scheduler = build_optimizer(model, recipe, optimizer_steps(n_batches, epochs, recipe.grad_accum))
    real_tokens = steps = 0
    grad_norm_max = 0.0
    losses = []
    start = time.perf_counter()
    progress = tqdm(total=epochs * n_batches, desc="fine-tune", mininterval=5)
    for epoch in range(epochs):
        epoch_losses = []
        batches = length_grouped_batches(lengths, batch_size, rng)
        for w in range(0, len(batches), recipe.grad_accum):
            window = []
            for batch_ids in batches[w:w + recipe.grad_accum]:
                batch_seqs = [sequences[i] for i in batch_ids]
                if not grouped:
                    batch_seqs = [s + [pad_id] * (max_length - len(s)) for s in batch_seqs]
                batch = collate(batch_seqs, pad_id)
                if not grouped:
                    for row, i in enumerate(batch_ids):
                        batch["labels"][row, lengths[i]:] = -100
                window.append({k: v.to(device) for k, v in batch.items()})
                real_tokens += sum(lengths[i] for i in batch_ids)
            with autocast_context(device, recipe.bf16):
                epoch_losses.append(window_loss(model, window))
            if recipe.max_grad_norm is not None:
                norm = torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.max_grad_norm)
                grad_norm_max = max(grad_norm_max, float(norm))
            opt.step()
            steps += 1
            scheduler.step()
            opt.zero_grad(set_to_none=True)
            progress.update(len(window))
        losses.append(float(np.mean(epoch_losses)))
        log.info("epoch %d/%d mean loss %.4f (lr now %.2e)", epoch + 1, epochs, losses[-1], scheduler.get_last_lr()[0])
    progress.close()
    seconds = time.perf_counter() - start
    model.eval()
    return {
        "articles": len(sequences),
        "epochs": epochs,
        "optimizer": recipe.style,
        "optimizer_steps": steps,
        "final_lr": scheduler.get_last_lr()[0],
        "grad_norm_max": grad_norm_max if recipe.max_grad_norm is not None else None,
        "epoch_losses": losses,
        "real_tokens": real_tokens,
        "seconds": seconds,
        "real_tokens_per_second": real_tokens / max(seconds, 1e-9),
    }

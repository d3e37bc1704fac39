"""The fine-tuning loop's optimizer recipes against transformers.Trainer, and gradient accumulation."""

import pytest
import torch

from selfconsuming.finetune import (
    OptimizerRecipe, autocast_context, build_optimizer, collate, finetune_causal_lm, no_decay_parameter_names,
    optimizer_steps, window_loss,
)


def tiny_llama(seed=0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    return LlamaForCausalLM(LlamaConfig(hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                                        num_attention_heads=4, num_key_value_heads=2, vocab_size=97,
                                        max_position_embeddings=64))


def tiny_gpt2(seed=0):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    return GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=2, n_positions=64, vocab_size=97,
                                      bos_token_id=96, eos_token_id=96))


MODELS = {"llama": tiny_llama, "gpt2": tiny_gpt2}
TRAINER_RECIPE = OptimizerRecipe(lr=3e-4, weight_decay=0.01, style="trainer", warmup_ratio=0.1, max_grad_norm=1.0)


def hf_trainer(model, recipe: OptimizerRecipe, tmp_path, total_steps: int):
    """A transformers.Trainer with the same arguments, its optimizer and scheduler created."""
    from transformers import Trainer, TrainingArguments

    args = TrainingArguments(output_dir=str(tmp_path), learning_rate=recipe.lr, weight_decay=recipe.weight_decay,
                             warmup_steps=recipe.warmup_ratio, lr_scheduler_type="linear",
                             max_grad_norm=recipe.max_grad_norm, gradient_accumulation_steps=recipe.grad_accum,
                             optim="adamw_torch", use_cpu=True, report_to="none")
    trainer = Trainer(model=model, args=args)
    trainer.create_optimizer_and_scheduler(num_training_steps=total_steps)
    return trainer


def group_signature(model, optimizer) -> list[tuple]:
    """Per parameter group: its parameter names, weight decay, lr, betas and eps."""
    names = {id(p): n for n, p in model.named_parameters()}
    return sorted((tuple(sorted(names[id(p)] for p in g["params"])), g["weight_decay"], g["lr"],
                   tuple(g["betas"]), g["eps"]) for g in optimizer.param_groups if g["params"])


@pytest.mark.parametrize("arch", list(MODELS))
def test_no_decay_names_are_trainers(arch, tmp_path):
    model = MODELS[arch]()
    trainer = hf_trainer(model, TRAINER_RECIPE, tmp_path, 10)
    decayed = set(trainer.get_decay_parameter_names(model))
    exempt = no_decay_parameter_names(model)
    assert exempt and decayed
    assert exempt == {n for n, _ in model.named_parameters()} - decayed
    # RMSNorm (Llama) and LayerNorm (GPT-2) weights are among them
    assert any("norm" in n or ".ln_" in n for n in exempt)


@pytest.mark.parametrize("arch", list(MODELS))
def test_trainer_recipe_matches_trainers_optimizer_and_schedule(arch, tmp_path):
    model = MODELS[arch]()
    total = optimizer_steps(n_batches=7, epochs=3, grad_accum=2)
    ours, our_schedule = build_optimizer(model, TRAINER_RECIPE, total)
    trainer = hf_trainer(model, TRAINER_RECIPE, tmp_path, total)
    theirs, their_schedule = trainer.optimizer, trainer.lr_scheduler
    assert group_signature(model, ours) == group_signature(model, theirs)
    ours_lr, theirs_lr = [], []
    for _ in range(total):
        ours_lr.append(our_schedule.get_last_lr()[0])
        theirs_lr.append(their_schedule.get_last_lr()[0])
        ours.step()
        theirs.step()
        our_schedule.step()
        their_schedule.step()
    assert ours_lr == pytest.approx(theirs_lr)
    assert ours_lr[0] == 0.0 and max(ours_lr) == pytest.approx(TRAINER_RECIPE.lr)
    assert our_schedule.get_last_lr()[0] == pytest.approx(0.0)  # linear decay to zero at the last step


def test_plain_recipe_is_one_group_at_a_constant_rate():
    model = tiny_llama()
    recipe = OptimizerRecipe(lr=5e-4, weight_decay=0.01)
    optimizer, schedule = build_optimizer(model, recipe, 12)
    assert len(optimizer.param_groups) == 1 and optimizer.param_groups[0]["weight_decay"] == 0.01
    rates = []
    for _ in range(12):
        optimizer.step()
        schedule.step()
        rates.append(schedule.get_last_lr()[0])
    assert set(rates) == {5e-4}


def test_optimizer_steps_count_short_accumulation_windows():
    assert optimizer_steps(n_batches=7, epochs=3, grad_accum=2) == 12
    assert optimizer_steps(n_batches=7, epochs=3, grad_accum=1) == 21
    assert optimizer_steps(n_batches=1, epochs=2, grad_accum=4) == 2


@pytest.mark.parametrize("bad, key", [
    (dict(style="plain", warmup_ratio=0.1), "warmup_ratio"),
    (dict(style="plain", max_grad_norm=1.0), "max_grad_norm"),
    (dict(style="adafactor"), "optimizer"),
    (dict(style="trainer", warmup_ratio=1.0), "warmup_ratio"),
    (dict(grad_accum=0), "grad_accum"),
])
def test_recipe_rejects_inconsistent_fields(bad, key):
    with pytest.raises(ValueError, match=key):
        OptimizerRecipe(lr=1e-3, weight_decay=0.0, **bad)


def test_from_finetune_reads_the_config_fields():
    from selfconsuming.config import schema_defaults

    ft = schema_defaults("finetune")
    assert OptimizerRecipe.from_finetune(ft) == OptimizerRecipe(lr=ft["lr"], weight_decay=ft["weight_decay"])
    trainer = OptimizerRecipe.from_finetune({**ft, "optimizer": "trainer", "warmup_ratio": 0.05, "grad_accum": 4})
    assert trainer.style == "trainer" and trainer.max_grad_norm == ft["max_grad_norm"] and trainer.grad_accum == 4


def test_accumulating_two_batches_gives_the_gradient_of_one_batch_of_both():
    sequences = [[5, 6, 7, 8, 9, 10], [11, 12, 13], [14, 15, 16, 17], [18, 19, 20, 21, 22, 23, 24]]
    grads = []
    for windows in ([collate(sequences, 0)], [collate(sequences[:2], 0), collate(sequences[2:], 0)]):
        model = tiny_llama().double()
        loss = window_loss(model, windows)
        grads.append((loss, torch.cat([p.grad.flatten() for p in model.parameters()])))
    assert grads[0][0] == pytest.approx(grads[1][0], rel=1e-6)  # the model's own loss is float32
    assert torch.allclose(grads[0][1], grads[1][1], rtol=1e-5, atol=1e-8)


def test_a_trainer_run_steps_per_window_ends_at_rate_zero_and_clips():
    from transformers import PreTrainedTokenizerFast
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {w: i for i, w in enumerate(["<eos>"] + [f"w{i}" for i in range(96)])}
    raw = Tokenizer(models.WordLevel(vocab, unk_token="<eos>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, eos_token="<eos>", pad_token="<eos>")
    texts = [" ".join(f"w{(i * 7 + j) % 96}" for j in range(5 + i % 9)) for i in range(12)]
    recipe = OptimizerRecipe(lr=1e-2, weight_decay=0.01, style="trainer", warmup_ratio=0.2, max_grad_norm=0.5,
                             grad_accum=2)
    stats = finetune_causal_lm(tiny_llama(), tok, texts, epochs=2, lr=recipe.lr, batch_size=3,
                               weight_decay=recipe.weight_decay, max_length=32, seed=0, optimizer=recipe)
    assert stats["optimizer"] == "trainer" and stats["optimizer_steps"] == optimizer_steps(4, 2, 2) == 4
    assert stats["final_lr"] == 0.0
    assert stats["grad_norm_max"] > 0 and stats["real_tokens"] == 2 * sum(len(t.split()) + 1 for t in texts)


def test_autocast_is_off_on_the_cpu():
    with autocast_context("cpu", bf16=True):
        assert not torch.is_autocast_enabled()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_right_padded_batch_needs_no_attention_mask(name):
    """collate leaves the attention mask out: the causal mask alone keeps right padding from real tokens."""
    sequences = [[5, 6, 7, 8, 9, 10, 11], [12, 13, 14], [15, 16, 17, 18, 19]]
    batch = collate(sequences, 0)
    assert set(batch) == {"input_ids", "labels"}
    assert [int((row != -100).sum()) for row in batch["labels"]] == [len(s) for s in sequences]
    results = []
    for mask in (None, (batch["labels"] != -100).long()):
        model = MODELS[name]().double().eval()  # eval: no dropout draws to tell the two passes apart
        loss = model(input_ids=batch["input_ids"], attention_mask=mask, labels=batch["labels"]).loss
        loss.backward()
        results.append((loss.item(), torch.cat([p.grad.flatten() for p in model.parameters()])))
    assert results[0][0] == pytest.approx(results[1][0], rel=1e-12)
    assert torch.allclose(results[0][1], results[1][1], rtol=1e-9, atol=1e-12)

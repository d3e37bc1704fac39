"""Which hidden units move with bias and which with quality.

Every model of the study (one per setup, replicate and generation) is reduced to one number per
hidden unit, twice: the mean activation of the residual stream after each block, and a
summary of the MLP output weights that write into that residual dimension. Across the
models, each unit's values are then related to the model's bias (share of right-leaning
articles) and quality (mean text-quality index):

- Pearson r over all distinct models (levels; a generation-0 model shared by
  several setups of a replicate counts once), and
- OLS of the first-differenced metric on the first-differenced unit value, differences
  taken within each (setup, replicate) generation series and pooled, with panel
  Newey-West (HAC) standard errors whose lags never cross from one series into
  another; a unit is significant at Bonferroni over all units and relations.

The statistics are vectorised over units (tens of thousands of regressions in well
under a second) and tested against scipy / statsmodels run unit by unit.

A "unit" (layer l, dimension j) is dimension j of the residual stream after block l;
its columns are named ``l{l}_u{j}``.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

if TYPE_CHECKING:  # torch is imported where it is used, so the statistics load without it
    import torch

RELATIONS = ("weight_bias", "weight_quality", "activation_bias", "activation_quality")
WEIGHT_SUMMARIES = ("l2", "l1", "mean_abs", "max_abs")
KEY_COLUMNS = ("setup", "replicate", "generation", "model")  # key columns of the unit tables, in order
MERGE_KEYS = ("setup", "replicate", "generation")  # one model row; the join with the summary
SERIES_KEYS = ("setup", "replicate")  # one generation series
_UNIT_COLUMN = re.compile(r"^l(\d+)_u(\d+)$")


# ----------------------------------------------------------------------------
# Reading units out of a model


def transformer_blocks(model) -> torch.nn.ModuleList:
    """The list of transformer blocks: GPT-2 (`transformer.h`) or Llama-style (`model.layers`)."""
    import torch

    for path in (("transformer", "h"), ("model", "layers")):
        module = model
        for name in path:
            module = getattr(module, name, None)
            if module is None:
                break
        if isinstance(module, torch.nn.ModuleList):
            return module
    raise ValueError(
        f"cannot find the transformer blocks of {type(model).__name__}: expected "
        "model.transformer.h (GPT-2) or model.model.layers (Llama-style)"
    )


def _hidden_size(model) -> int:
    """Hidden size from a model or from its config."""
    config = getattr(model, "config", model)
    for name in ("hidden_size", "n_embd", "d_model"):
        if getattr(config, name, None):
            return int(getattr(config, name))
    raise ValueError(f"cannot read the hidden size from the config of {type(model).__name__}")


def left_pad(prompts: list[list[int]], pad_token_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack token lists into (input_ids, attention_mask), padding on the left."""
    import torch

    width = max(len(p) for p in prompts)
    input_ids = torch.full((len(prompts), width), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        if len(prompt):
            input_ids[row, width - len(prompt):] = torch.as_tensor(prompt, dtype=torch.long)
            attention_mask[row, width - len(prompt):] = 1
    return input_ids, attention_mask


def mean_block_activations(model, prompts: list[list[int]], pad_token_id: int,
                           batch_size: int = 32, device: str = "cpu") -> np.ndarray:
    """Mean residual-stream activation after every block, shape (n_layers * hidden,).

    The mean is token-weighted: the sum over every non-pad token of every prompt,
    divided by the number of such tokens. Each token is one sample of the state the
    model is in while writing, so long prompts count more; a per-prompt mean first
    would let a 3-token prompt weigh as much as a 64-token one. Pad tokens are
    excluded through the attention mask, and position ids are computed from the mask,
    so a prompt gives the same activations alone or batched with longer ones.
    The block output is taken before any final layer norm. The model is expected on
    `device`; it is put in eval mode for the pass and restored afterwards.
    """
    import torch

    if not prompts:
        raise ValueError("mean_block_activations needs at least one prompt")
    if any(len(p) == 0 for p in prompts):
        raise ValueError("mean_block_activations got an empty prompt (no tokens)")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")

    blocks = transformer_blocks(model)
    hidden = _hidden_size(model)
    sums = torch.zeros((len(blocks), hidden), dtype=torch.float64, device=device)
    current_mask = {}

    def make_hook(layer):
        def hook(module, inputs, output):
            states = output[0] if isinstance(output, (tuple, list)) else output
            keep = current_mask["mask"].unsqueeze(-1)
            # torch.where, not multiplication: pad rows may hold NaN in some kernels
            kept = torch.where(keep, states.double(), torch.zeros((), dtype=torch.float64, device=device))
            sums[layer] += kept.sum(dim=(0, 1))
        return hook

    handles = [block.register_forward_hook(make_hook(i)) for i, block in enumerate(blocks)]
    was_training = model.training
    model.eval()
    n_tokens = 0
    try:
        with torch.no_grad():
            for start in range(0, len(prompts), batch_size):
                input_ids, attention_mask = left_pad(prompts[start:start + batch_size], pad_token_id)
                input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
                position_ids = (attention_mask.cumsum(dim=1) - 1).clamp(min=0)
                current_mask["mask"] = attention_mask.bool()
                model(input_ids=input_ids, attention_mask=attention_mask,
                      position_ids=position_ids, use_cache=False)
                n_tokens += int(attention_mask.sum())
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return (sums / n_tokens).reshape(-1).cpu().numpy()


def _mlp_output_projection(block) -> tuple[torch.Tensor, int]:
    """The MLP output projection's weight and the axis that indexes the intermediate units.

    GPT-2's `mlp.c_proj` is a Conv1D with weight (intermediate, hidden): residual
    dimension j is fed by column weight[:, j], so the reduction runs over axis 0.
    Llama's `mlp.down_proj` is a Linear with weight (hidden, intermediate): dimension
    j is fed by row weight[j, :], so the reduction runs over axis 1.
    """
    import torch

    from transformers.pytorch_utils import Conv1D

    mlp = getattr(block, "mlp", None)
    for name in ("c_proj", "down_proj"):
        layer = getattr(mlp, name, None)
        if isinstance(layer, Conv1D):
            return layer.weight, 0
        if isinstance(layer, torch.nn.Linear):
            return layer.weight, 1
    raise ValueError(
        f"block {type(block).__name__} has no MLP output projection "
        "(expected mlp.c_proj as Conv1D or mlp.down_proj as Linear)"
    )


def summarise_projection(weight: np.ndarray, axis: int, summary: str = "l2") -> np.ndarray:
    """Reduce an MLP output projection over its intermediate axis to one value per residual unit."""
    if summary not in WEIGHT_SUMMARIES:
        raise ValueError(f"unknown weight summary {summary!r}; choose one of {WEIGHT_SUMMARIES}")
    w = np.asarray(weight, dtype=np.float64)
    if summary == "l2":
        return np.sqrt((w * w).sum(axis=axis))
    if summary == "l1":
        return np.abs(w).sum(axis=axis)
    if summary == "mean_abs":
        return np.abs(w).mean(axis=axis)
    return np.abs(w).max(axis=axis)


def mlp_output_weight_summary(model, summary: str = "l2") -> np.ndarray:
    """One scalar per residual unit from the weights that write into it, shape (n_layers * hidden,).

    L2 is the default because the squared L2 norm of the weights feeding dimension j
    is the gain from the MLP's intermediate units to j: with roughly uncorrelated
    intermediate activations of equal scale, the variance the MLP adds to j is
    proportional to it. It is blind to sign and to rotations of the intermediate
    space (which fine-tuning may shuffle), and, unlike max_abs, uses every weight.
    """
    values = []
    for block in transformer_blocks(model):
        weight, axis = _mlp_output_projection(block)
        values.append(summarise_projection(weight.detach().float().cpu().numpy(), axis, summary))
    return np.concatenate(values)


# GPT-2 Conv1D c_proj: (intermediate, hidden) -> reduce axis 0; Llama Linear down_proj:
# (hidden, intermediate) -> reduce axis 1. Same layouts on disk as in memory.
_CHECKPOINT_PROJECTIONS = (
    (re.compile(r"^(?:transformer\.)?h\.(\d+)\.mlp\.c_proj\.weight$"), 0),
    (re.compile(r"^(?:model\.)?layers\.(\d+)\.mlp\.down_proj\.weight$"), 1),
)


def checkpoint_weight_summary(model_dir, summary: str = "l2") -> np.ndarray:
    """mlp_output_weight_summary straight from a saved model's safetensors, without building the model.

    Reading the tensors needs neither transformers nor the model class, which makes
    the per-model weight job cheap.
    """
    from pathlib import Path

    from safetensors.numpy import load_file

    found: dict[int, np.ndarray] = {}
    for path in sorted(Path(model_dir).glob("*.safetensors")):
        for name, tensor in load_file(str(path)).items():
            for pattern, axis in _CHECKPOINT_PROJECTIONS:
                m = pattern.match(name)
                if m:
                    found[int(m.group(1))] = summarise_projection(tensor, axis, summary)
    if not found:
        raise ValueError(f"no MLP output projections (c_proj / down_proj) in the safetensors of {model_dir}")
    return np.concatenate([found[i] for i in sorted(found)])


def prompt_token_ids(tokenizer, texts: list[str], max_tokens: int = 64) -> list[list[int]]:
    """Token ids of the first `max_tokens` tokens of each non-empty text (no special tokens)."""
    prompts = []
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"][:max_tokens]
        if ids:
            prompts.append(list(ids))
    if not prompts:
        raise ValueError("no text gave any token; cannot build activation prompts")
    return prompts


# ----------------------------------------------------------------------------
# Wide tables: one row per (setup, replicate, generation), one column per unit


def model_identity(model_path, run_dir) -> str:
    """A model's identity: its real path (symlinks resolved) relative to the run directory.

    Setups that share a generation-0 model within a replicate point at it through
    symlinks; resolving them makes every such row carry the same identity, and
    relative paths keep the identity stable when the results folder moves.
    """
    return os.path.relpath(os.path.realpath(model_path), os.path.realpath(run_dir))


def config_unit_shape(config) -> tuple[int, int]:
    """(n_layers, hidden) of a transformers config: the shape of the unit vectors above."""
    for name in ("num_hidden_layers", "n_layer"):
        if getattr(config, name, None):
            return int(getattr(config, name)), _hidden_size(config)
    raise ValueError(f"cannot read the number of layers from the config {type(config).__name__}")


def unit_columns(n_layers: int, hidden: int) -> list[str]:
    """Column names l{layer}_u{unit}, layer-major (the order of the vectors above)."""
    return [f"l{layer}_u{unit}" for layer in range(n_layers) for unit in range(hidden)]


def parse_unit_columns(columns) -> tuple[np.ndarray, np.ndarray]:
    """(layer, unit) integer arrays from column names l{layer}_u{unit}."""
    names = pd.Index([str(c) for c in columns], dtype=object)
    parts = names.str.extract(_UNIT_COLUMN.pattern)
    bad = names[parts.isna().any(axis=1).to_numpy()]
    if len(bad):
        raise ValueError(f"column {bad[0]!r} is not a unit column (expected l<layer>_u<unit>)")
    return parts[0].to_numpy(dtype=int), parts[1].to_numpy(dtype=int)


def unit_frame(records, n_layers: int, hidden: int) -> pd.DataFrame:
    """Wide DataFrame from (setup, replicate, generation, model, vector) records.

    Columns: setup, replicate, generation, model (the model's identity, see
    model_identity), then one column per unit.
    """
    records = list(records)
    if not records:
        raise ValueError("unit_frame got no records")
    n_units = n_layers * hidden
    for record in records:
        if len(record) != len(KEY_COLUMNS) + 1:
            raise ValueError(f"a record is (setup, replicate, generation, model, vector); got {len(record)} fields")
        if np.shape(record[-1]) != (n_units,):
            raise ValueError(
                f"vector of {tuple(record[:3])} has shape {np.shape(record[-1])}, "
                f"expected ({n_units},) = n_layers {n_layers} x hidden {hidden}"
            )
    keys = pd.DataFrame({"setup": [str(r[0]) for r in records],
                         "replicate": [int(r[1]) for r in records],
                         "generation": [int(r[2]) for r in records],
                         "model": [str(r[3]) for r in records]})
    _check_unique(keys, "unit_frame")
    values = pd.DataFrame(np.stack([np.asarray(r[-1], dtype=float) for r in records]),
                          columns=unit_columns(n_layers, hidden))
    return pd.concat([keys, values], axis=1)


def unit_table_from_parts(series, part_paths, generations, run_dir, n_layers: int, hidden: int
                          ) -> pd.DataFrame:
    """The wide unit table of every (setup, replicate, generation) from per-series .npz parts.

    `series` holds one dict {"setup", "replicate", "models": [model path of each
    generation]} per part file, in the order of `part_paths`; each part holds arrays
    gen0..genG. The model column is model_identity(path, run_dir), so a generation-0
    model shared through symlinks gets one identity.
    """
    series, part_paths, generations = list(series), list(part_paths), [int(g) for g in generations]
    if len(series) != len(part_paths):
        raise ValueError(f"{len(series)} series but {len(part_paths)} part files; they must pair up in order")
    records = []
    for entry, path in zip(series, part_paths):
        models = list(entry["models"])
        if len(models) != len(generations):
            raise ValueError(f"series ({entry['setup']}, replicate {entry['replicate']}) lists "
                             f"{len(models)} models for {len(generations)} generations")
        with np.load(path) as arrays:
            absent = [f"gen{g}" for g in generations if f"gen{g}" not in arrays.files]
            if absent:
                raise ValueError(f"{path} lacks arrays {absent} (has {arrays.files})")
            records += [(entry["setup"], entry["replicate"], g, model_identity(model, run_dir), arrays[f"gen{g}"])
                        for g, model in zip(generations, models)]
    return unit_frame(records, n_layers, hidden)


def split_unit_frame(frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    """(keys [setup, replicate, generation, model], values (n_rows, n_units), unit column names)."""
    missing = [c for c in KEY_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"unit table lacks columns {missing}")
    columns = [c for c in frame.columns if c not in KEY_COLUMNS]
    parse_unit_columns(columns)
    if not columns:
        raise ValueError("unit table has no unit columns")
    return (frame[list(KEY_COLUMNS)].reset_index(drop=True),
            frame[columns].to_numpy(dtype=float), columns)


def _check_unique(keys: pd.DataFrame, name: str) -> None:
    """One row per (setup, replicate, generation)."""
    merge_keys = keys[list(MERGE_KEYS)]
    if merge_keys.duplicated().any():
        dupes = merge_keys[merge_keys.duplicated()].values.tolist()
        raise ValueError(f"{name} has duplicate (setup, replicate, generation) rows: {dupes}")


# ----------------------------------------------------------------------------
# Statistics, vectorised over units


def _units_and_metric(M, y, min_rows: int, what: str):
    """Float arrays of the unit matrix and the metric, checked to line up row by row."""
    M = np.asarray(M, dtype=float)
    y = np.asarray(y, dtype=float)
    n = len(y)
    if M.ndim != 2 or M.shape[0] != n:
        raise ValueError(f"the unit matrix must be (n_rows, n_units) with n_rows = len(y) = {n}, got {M.shape}")
    if n < min_rows:
        raise ValueError(f"{what} need(s) at least {min_rows} rows, got {n}")
    return M, y, n


def pearson_by_unit(U: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pearson r of each column of U with y, and its two-sided p (t with n-2 df, as scipy).

    A constant column has no correlation: r and p are NaN.
    """
    U, y, n = _units_and_metric(U, y, 3, "Pearson p-values")
    Uc = U - U.mean(axis=0)
    yc = y - y.mean()
    with np.errstate(invalid="ignore", divide="ignore"):
        suu = np.where(np.ptp(U, axis=0) > 0, (Uc**2).sum(axis=0), np.nan)  # constant -> NaN
        r = (yc @ Uc) / np.sqrt(suu * (yc**2).sum())
        r = np.clip(r, -1.0, 1.0)
        t = r * np.sqrt((n - 2) / (1.0 - r**2))
    p = 2.0 * scipy_stats.t.sf(np.abs(t), n - 2)
    return r, p


def merge_shared_models(U: np.ndarray, y: np.ndarray, models) -> tuple[np.ndarray, np.ndarray]:
    """One row per distinct model: rows with the same identity averaged (units and metric).

    A generation-0 model shared by several setups appears once per setup, each time
    with the metric of that setup's own corpus; counting it once keeps it from
    weighing k times in a correlation across models. Its weight summaries are
    identical across the copies; its activations may differ slightly (each setup
    cuts its own prompt blocks), and the mean is the model's value either way.
    Distinct models keep their first-appearance order.
    """
    U, y, n = _units_and_metric(U, y, 1, "merging shared models")
    codes, uniques = pd.factorize(np.asarray(models, dtype=object))
    if len(codes) != n:
        raise ValueError(f"got {len(codes)} model identities for {n} rows")
    if len(uniques) == n:
        return U, y
    counts = np.bincount(codes)
    U_models = U[np.unique(codes, return_index=True)[1]]  # first copy of each model, in code order
    for code in np.flatnonzero(counts > 1):  # the few shared models
        U_models[code] = U[codes == code].mean(axis=0)
    return U_models, np.bincount(codes, weights=y) / counts


def _contiguous_groups(groups, n: int) -> np.ndarray:
    """Integer group codes, checked to be length n and to form contiguous blocks."""
    codes, _ = pd.factorize(np.asarray(groups, dtype=object))
    if len(codes) != n:
        raise ValueError(f"groups must have one label per row ({n}), got {len(codes)}")
    n_runs = 1 + int(np.count_nonzero(codes[1:] != codes[:-1])) if n else 0
    if n_runs != codes.max(initial=-1) + 1:
        raise ValueError("each group's rows must be contiguous (stack the series one after another)")
    return codes


def ols_hac_by_unit(X: np.ndarray, y: np.ndarray, maxlags: int = 1, groups=None,
                    use_correction: bool = False) -> dict[str, np.ndarray]:
    """Slope of y on each column of X (with an intercept), with Newey-West standard errors.

    groups=None treats the rows as one consecutive series and matches statsmodels
    `OLS(y, add_constant(x)).fit(cov_type="HAC", cov_kwds={"maxlags": maxlags})`.
    With `groups` (one label per row, each group's rows contiguous and in time
    order) the lag products are summed within each group only, never across two
    groups: the panel (block-diagonal) HAC of statsmodels `cov_type="hac-panel"`,
    cov_kwds={"groups": groups, "maxlags": maxlags, "use_correction": "hac" if
    use_correction else False}. Bartlett weights 1 - l/(maxlags+1); use_correction
    scales the variance by n/(n-2); normal p-values (statsmodels' use_t=False).

    Returns beta, se, t, p (each of length n_units). A constant column gives NaN.
    """
    X, y, n = _units_and_metric(X, y, 3, "the regression")
    if int(maxlags) != maxlags or maxlags < 0:
        raise ValueError(f"maxlags must be a non-negative integer, got {maxlags!r}")
    maxlags = int(maxlags)
    codes = np.zeros(n, dtype=int) if groups is None else _contiguous_groups(groups, n)

    Xc = X - X.mean(axis=0)
    yc = y - y.mean()
    sxx = np.where(np.ptp(X, axis=0) > 0, (Xc**2).sum(axis=0), np.nan)  # constant -> NaN
    with np.errstate(invalid="ignore", divide="ignore"):
        beta = (yc @ Xc) / sxx
        resid = yc[:, None] - beta * Xc
        # The slope row of the sandwich (X'X)^-1 X'u reduces to sum_t a_t with
        # a_t = (x_t - mean x) u_t / sxx, so its HAC variance is the Bartlett-weighted
        # autocovariance sum of a (same as statsmodels' 2x2 algebra, better conditioned).
        # Lag pairs are kept only when both rows belong to the same group.
        a = Xc * resid / sxx
        var_beta = (a * a).sum(axis=0)
        for lag in range(1, min(maxlags, n - 1) + 1):
            weight = 1.0 - lag / (maxlags + 1.0)
            same = (codes[lag:] == codes[:-lag]).astype(float)  # 1 where both rows share a group
            var_beta += 2.0 * weight * (same @ (a[lag:] * a[:-lag]))
        if use_correction:
            var_beta *= n / (n - 2.0)
        se = np.sqrt(var_beta)
        t = beta / se
    p = 2.0 * scipy_stats.norm.sf(np.abs(t))
    return {"beta": beta, "se": se, "t": t, "p": p}


def _series_order(setups, replicates, generations) -> tuple[np.ndarray, np.ndarray]:
    """Row order by (setup, replicate, generation) and the series code of each sorted row."""
    keys = pd.DataFrame({"setup": np.asarray(setups, dtype=object),
                         "replicate": np.asarray(replicates).astype(int),
                         "generation": np.asarray(generations).astype(int)})
    _check_unique(keys, "the model rows")
    order = keys.sort_values(list(MERGE_KEYS), kind="stable").index.to_numpy()
    series = keys.iloc[order][list(SERIES_KEYS)]
    codes = series.groupby(list(SERIES_KEYS), sort=False).ngroup().to_numpy()
    return order, codes


def difference_within_series(U: np.ndarray, y: np.ndarray, setups, replicates, generations
                             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First differences of U and y within each (setup, replicate) series, stacked series by series.

    Returns (dU, dy, series): series is the integer code of the series each
    difference belongs to. Series are stacked by (setup, replicate) in sorted
    order, each in generation order; no difference spans two setups or two
    replicates, and a series with one model contributes nothing. Differences are
    between consecutive generations present (a missing generation makes one longer
    step).
    """
    U = np.asarray(U, dtype=float)
    y = np.asarray(y, dtype=float)
    order, codes = _series_order(setups, replicates, generations)
    U, y = U[order], y[order]
    same = codes[1:] == codes[:-1]
    return (U[1:] - U[:-1])[same], (y[1:] - y[:-1])[same], codes[1:][same]


def unit_regressions(U, y, setups, replicates, generations, maxlags: int = 1,
                     differenced: bool = True, use_correction: bool = True) -> dict[str, np.ndarray]:
    """Panel-HAC regression of the metric on each unit, on within-series differences or in levels.

    A series is one (setup, replicate). Rows are stacked series by series (sorted),
    generation order inside, and the HAC lags stay within a series (see
    ols_hac_by_unit with groups; by default with statsmodels hac-panel's n/(n-k)
    correction). Adds n_obs (rows regressed) and n_series (series contributing).
    """
    U = np.asarray(U, dtype=float)
    y = np.asarray(y, dtype=float)
    if differenced:
        X, target, series = difference_within_series(U, y, setups, replicates, generations)
    else:
        order, series = _series_order(setups, replicates, generations)
        X, target = U[order], y[order]
    result = ols_hac_by_unit(X, target, maxlags, groups=series, use_correction=use_correction)
    result["n_obs"] = len(target)
    result["n_series"] = len(np.unique(series))
    return result


def _model_rows(table: pd.DataFrame, name: str, columns) -> pd.DataFrame:
    """The model rows of a table (kind == "model" when it has a kind column, else generation >= 0), keys checked."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{name} lacks columns {missing}")
    keep = table["kind"] == "model" if "kind" in table.columns else table["generation"].astype(int) >= 0
    table = table[keep].copy()
    if table.empty:
        raise ValueError(f"{name} has no model rows")
    for column in ("replicate", "generation"):
        table[column] = table[column].astype(int)
    if (table["generation"] < 0).any():
        raise ValueError(f"{name}: model rows must have generation >= 0")
    _check_unique(table, name)
    return table


def _align(units: pd.DataFrame, summary: pd.DataFrame, metric_columns, name: str) -> pd.DataFrame:
    """Units joined to their model's metrics on (setup, replicate, generation); every model needs a
    summary row (a metric may be NaN there: see neuron_statistics)."""
    keys = list(MERGE_KEYS)
    merged = units.merge(summary[keys + list(metric_columns)], on=keys, how="left", indicator=True)
    absent = merged.loc[merged["_merge"] != "both", keys]
    if len(absent):
        raise ValueError(f"{name}: no summary row for models {absent.values.tolist()}")
    generations = merged.groupby("model")["generation"].nunique()
    if (generations > 1).any():
        several = list(generations[generations > 1].index)
        raise ValueError(f"{name}: one model identity at several generations: {several}")
    return merged.drop(columns="_merge")


def _undefined(count: int, n_units: int) -> list[np.ndarray]:
    return [np.full(n_units, np.nan) for _ in range(count)]


def _regressions_or_undefined(U, y, keys: pd.DataFrame, n_units: int, hac_lags: int, differenced: bool) -> dict:
    """unit_regressions, or NaN estimates when too few rows remain to fit one (the regression needs 3).

    The rows are counted from the keys alone: a series of m models gives m - 1 differences.
    """
    sizes = keys.groupby(list(SERIES_KEYS)).size()
    n_obs, n_series = (int((sizes - 1).sum()), int((sizes > 1).sum())) if differenced else (len(keys), len(sizes))
    if n_obs < 3:
        beta, se, t, p = _undefined(4, n_units)
        return {"beta": beta, "se": se, "t": t, "p": p, "n_obs": n_obs, "n_series": n_series}
    return unit_regressions(U, y, keys["setup"], keys["replicate"], keys["generation"],
                            maxlags=hac_lags, differenced=differenced)


def neuron_statistics(activations: pd.DataFrame, weights: pd.DataFrame, summary: pd.DataFrame,
                      bias_column: str = "share_right", quality_column: str = "tqi_mean",
                      hac_lags: int = 1, alpha: float = 0.05, differenced: bool = True
                      ) -> pd.DataFrame:
    """Per (relation, layer, unit): r, r_p, beta, se_hac, t, p, n_models, n_obs, n_series,
    n_models_undefined (model rows left out because their metric is NaN), significant.

    relation is weight_bias, weight_quality, activation_bias or activation_quality.
    The unit tables (keys setup, replicate, generation, model) meet the summary's
    model rows on (setup, replicate, generation). r is over distinct models (a
    shared generation-0 model once, see merge_shared_models; n_models counts them);
    beta / se_hac / t / p come from unit_regressions over the (setup, replicate)
    series. `significant` is Bonferroni on the HAC p over all tests of the table
    (4 x n_units when both tables have the same units) at `alpha`.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    for column in (bias_column, quality_column):
        if column not in summary.columns:
            raise ValueError(f"summary has no column {column!r}; it has {list(summary.columns)}")
    summary = _model_rows(summary, "summary", MERGE_KEYS)
    metrics = {"bias": bias_column, "quality": quality_column}

    parts = []
    for source, table in (("weight", weights), ("activation", activations)):
        table = _model_rows(table, f"{source} table", KEY_COLUMNS)
        merged = _align(table, summary, metrics.values(), f"{source} table")
        keys, U, columns = split_unit_frame(merged.drop(columns=list(metrics.values())))
        layers, units = parse_unit_columns(columns)
        for metric, column in metrics.items():
            # A model whose metric is undefined (e.g. no article of its corpus gave the classifier
            # any evidence) is left out of this relation; its series differences step over it.
            metric_values = merged[column].to_numpy(dtype=float)
            known = np.isfinite(metric_values)
            y, U_known, k = metric_values[known], U[known], keys[known]
            U_models, y_models = merge_shared_models(U_known, y, k["model"])
            r, r_p = pearson_by_unit(U_models, y_models) if len(y_models) >= 3 else _undefined(2, len(units))
            reg = _regressions_or_undefined(U_known, y, k, len(units), hac_lags, differenced)
            parts.append(pd.DataFrame({
                "relation": f"{source}_{metric}", "layer": layers, "unit": units,
                "r": r, "r_p": r_p, "beta": reg["beta"], "se_hac": reg["se"],
                "t": reg["t"], "p": reg["p"], "n_models": len(y_models), "n_obs": reg["n_obs"],
                "n_series": reg["n_series"], "n_models_undefined": int((~known).sum()),
            }))
    stats = pd.concat(parts, ignore_index=True)
    threshold = alpha / len(stats)
    stats["significant"] = (stats["p"] < threshold).to_numpy()  # NaN p -> False
    return stats


def neuron_sets(stats: pd.DataFrame) -> pd.DataFrame:
    """Significant-unit counts and bias-vs-quality overlap, tidy: source, quantity, value.

    For source weight and activation, quantities: n_units (tested), n_bias,
    n_quality (significant for each metric), n_both (intersection), n_either (union),
    jaccard (n_both / n_either; NaN when no unit is significant) and
    n_both_expected (n_bias * n_quality / n_units: the overlap if the two sets were
    drawn independently, the yardstick for "almost disjoint").
    """
    needed = {"relation", "layer", "unit", "significant"}
    if not needed <= set(stats.columns):
        raise ValueError(f"stats lacks columns {sorted(needed - set(stats.columns))}")
    rows = []
    for source in ("weight", "activation"):
        sets = {}
        n_units = None
        for metric in ("bias", "quality"):
            part = stats[stats["relation"] == f"{source}_{metric}"]
            if part.empty:
                raise ValueError(f"stats has no rows for relation {source}_{metric}")
            n_units = len(part)
            sets[metric] = set(zip(part.loc[part["significant"], "layer"],
                                   part.loc[part["significant"], "unit"]))
        both = sets["bias"] & sets["quality"]
        either = sets["bias"] | sets["quality"]
        values = {
            "n_units": n_units,
            "n_bias": len(sets["bias"]),
            "n_quality": len(sets["quality"]),
            "n_both": len(both),
            "n_either": len(either),
            "jaccard": len(both) / len(either) if either else float("nan"),
            "n_both_expected": len(sets["bias"]) * len(sets["quality"]) / n_units,
        }
        rows += [{"source": source, "quantity": k, "value": float(v)} for k, v in values.items()]
    return pd.DataFrame(rows)

"""Vectorised sweeps: one tidy DataFrame for any grid of plans, and the latency-throughput frontier.

A sweep is the product of *deployments* (model x GPU x weight format x KV dtype x TP) and
*operating points* (batch x prompt x output). Each deployment is reduced once to a ``Plan``
(Python, a few ms); every operating point of it is then one numpy broadcast through
``serving.evaluate`` (no per-row Python). A deployment the inputs make impossible (TP that
does not divide the heads, an unknown format) is left out and listed in ``df.attrs["skipped"]``
with the reason; a plan that does not fit in memory is a row with ``fits = False``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from . import api
from . import kv as kvmod
from .errors import PlannerInputError, require_positive_int
from .memory import MAX_BATCH, MAX_CONTEXT, Deployment
from .serving import evaluate
from .spec import ModelSpec

# The columns of a sweep, unit-suffixed, in order (the CLI's --csv and the dashboard's tables use them).
KEY_COLUMNS = ["model", "gpu", "weights", "kv_dtype", "engine", "tp", "pp", "batch", "prompt_tokens",
               "output_tokens"]
METRIC_COLUMNS = [
    "fits", "fits_avg_occupancy", "memory_total_bytes_per_gpu", "weights_bytes_per_gpu", "kv_cache_bytes_per_gpu",
    "activation_bytes_per_gpu", "overhead_bytes_per_gpu", "capacity_bytes_per_gpu", "headroom_bytes_per_gpu",
    "ttft_s", "tpot_s", "e2e_latency_s", "prefill_interference_s", "prefill_bound", "decode_bound",
    "decode_achieved_bytes_per_s", "decode_achieved_flops_per_s", "prefill_achieved_flops_per_s",
    "tokens_per_s_per_user", "output_tokens_per_s", "output_tokens_per_s_per_gpu", "input_tokens_per_s",
    "requests_per_s", "gpus_per_replica", "usd_per_hour", "gpu_hours_per_1m_output_tokens",
    "cost_usd_per_1m_output_tokens", "cost_usd_per_1m_input_tokens", "cost_usd_per_1m_tokens",
]
# A sweep evaluates the mean-value model only (10^6 plans a second); its latency columns say so, apart
# from ``api.plan``'s headline ttft_s / tpot_s, which are simulated under load.
MEAN_VALUE_NAMES = {"ttft_s": "ttft_lower_bound_s", "tpot_s": "tpot_mean_value_s", "e2e_latency_s": "e2e_mean_value_s"}
OUTPUT_METRIC_COLUMNS = [MEAN_VALUE_NAMES.get(c, c) for c in METRIC_COLUMNS]
# The largest grid one sweep builds: 4x the 10^6 plans of the benchmark, about 1.5 GB at peak.
MAX_ROWS = 4_000_000


def _ints(field: str, values: Iterable, maximum: int) -> np.ndarray:
    values = [values] if isinstance(values, int | np.integer) else list(values)
    vals = [require_positive_int(field, v, maximum=maximum) for v in values]
    if not vals:
        raise PlannerInputError(field, "is empty", f"give at least one {field}")
    return np.asarray(sorted(set(vals)), dtype=float)


def _names(field: str, values) -> list:
    vals = [values] if isinstance(values, str | ModelSpec | int) else list(values)
    if not vals:
        raise PlannerInputError(field, "is empty", f"give at least one {field}")
    return vals


def _check_grid(points: int, deployments: int) -> None:
    """Refuse a grid over MAX_ROWS before any of it is built (a MemoryError is not an answer)."""
    if points * deployments > MAX_ROWS:
        raise PlannerInputError("sweep", f"{points:,} operating points x {deployments:,} deployments = "
                                f"{points * deployments:,} rows, over the limit of {MAX_ROWS:,}",
                                "sweep fewer batch, prompt or output values (or split the grid into several runs)")


def sweep(models: Sequence[str | ModelSpec] | str | ModelSpec, gpus: Sequence[str] | str,
          batches: Iterable[int] | int, prompts: Iterable[int] | int, outputs: Iterable[int] | int,
          weights: Sequence[str | None] | str | None = None, kv_dtypes: Sequence[str] | str = "bf16",
          tps: Sequence[int] | int = 1, engine: str = "paged", pp: int = 1, server: str = "vllm",
          server_version: str | None = None) -> pd.DataFrame:
    """Every plan of the grid as one row (see KEY_COLUMNS, OUTPUT_METRIC_COLUMNS, ``provenance``); ``server``
    and ``server_version`` name the serving engine of a paged plan (its KV pool and fitted costs).

    ``weights=None`` means each model's own format (its quantization_config, else bf16).
    """
    models = [api.resolve_model(m) for m in _names("models", models)]
    gpus, kv_dtypes, tps = _names("gpus", gpus), _names("kv_dtypes", kv_dtypes), _names("tps", tps)
    weights = _names("weights", weights) if weights is not None else [None]
    b = _ints("batch", batches, MAX_BATCH)
    p = _ints("prompt", prompts, MAX_CONTEXT)
    o = _ints("output", outputs, MAX_CONTEXT)
    _check_grid(b.size * p.size * o.size, len(models) * len(gpus) * len(weights) * len(kv_dtypes) * len(tps))
    bb, pp_, oo = (a.ravel() for a in np.meshgrid(b, p, o, indexing="ij"))
    n = bb.size
    plans, skipped, seen = [], [], set()
    for spec, gpu, fmt, kvd, tp in itertools.product(models, gpus, weights, kv_dtypes, tps):
        fmt = fmt or api.default_weights(spec)
        try:
            plan = api.build_plan(spec, gpu, Deployment(weights=fmt, kv_dtype=kvd, engine=engine, tp=int(tp), pp=pp,
                                                        server=server, server_version=server_version))
        except PlannerInputError as e:
            skipped.append({"model": spec.name, "gpu": gpu, "weights": fmt, "kv_dtype": kvd, "tp": tp, "reason": str(e)})
            continue
        # the KV dtype the plan was built with ("auto": the engine's own, deploy.resolve); a grid naming one cache
        # twice (auto and what it resolves to) keeps one row
        names = (spec.name, plan.memory.gpu.id, fmt, kvmod.kv_dtype(plan.memory.dep.kv_dtype).name, engine,
                 plan.provenance)
        if (names, int(tp)) in seen:
            continue
        seen.add((names, int(tp)))
        plans.append((names, int(tp), plan))
    if not plans:
        raise PlannerInputError("sweep", "no deployment of the grid is valid: " + "; ".join(s["reason"] for s in skipped),
                                "change the TP degrees, formats or GPUs")
    # Build the frame column-block by column-block: one float matrix filled in place (pandas keeps
    # it as one block, no copy), categorical columns from integer codes (no per-row strings).
    numeric = [c for c in METRIC_COLUMNS if c not in ("prefill_bound", "decode_bound")]
    total = n * len(plans)
    block = np.empty((len(numeric), total))
    bound = {c: np.empty(total, dtype=np.int8) for c in ("prefill_bound", "decode_bound")}
    labels = [{} for _ in range(6)]
    codes = np.empty((6, total), dtype=np.int32)
    tp_col = np.empty(total, dtype=np.int64)
    for i, (names, tp, plan) in enumerate(plans):
        sl = slice(i * n, (i + 1) * n)
        m = evaluate(plan, bb, pp_, oo)
        for j, c in enumerate(numeric):
            block[j, sl] = m[c]
        for c in bound:
            bound[c][sl] = m[c] == "memory"
        for j, name in enumerate(names):
            codes[j, sl] = labels[j].setdefault(name, len(labels[j]))
        tp_col[sl] = tp
    df = pd.DataFrame(block.T, columns=numeric, copy=False)
    cat_names = ("model", "gpu", "weights", "kv_dtype", "engine", "provenance")
    keys = {c: pd.Categorical.from_codes(codes[j], categories=list(labels[j])) for j, c in enumerate(cat_names)
            if c != "provenance"}
    keys.update(tp=tp_col, pp=np.full(total, pp, dtype=np.int64), batch=np.tile(bb, len(plans)).astype(np.int64),
                prompt_tokens=np.tile(pp_, len(plans)).astype(np.int64),
                output_tokens=np.tile(oo, len(plans)).astype(np.int64))
    front = pd.DataFrame(keys)
    extra = pd.DataFrame({c: pd.Categorical.from_codes(v, categories=["compute", "memory"]) for c, v in bound.items()})
    extra["provenance"] = pd.Categorical.from_codes(codes[5], categories=list(labels[5]))
    df = pd.concat([front, df, extra], axis=1, copy=False)
    df["fits"] = df["fits"].astype(bool)
    df["fits_avg_occupancy"] = df["fits_avg_occupancy"].astype(bool)
    df["gpus_per_replica"] = df["gpus_per_replica"].astype(np.int64)
    df = df[KEY_COLUMNS + METRIC_COLUMNS + ["provenance"]].rename(columns=MEAN_VALUE_NAMES)
    df.attrs["skipped"] = skipped
    return df


def pareto_mask(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """True where no other point has x and y both at least as large and one larger (maximise both).

    Sort by x descending (ties: y descending); a point is on the frontier when its y beats every
    y seen before it. O(n log n).
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    order = np.lexsort((-y, -x))
    order = order[ok[order]]
    ys = y[order]
    best_before = np.concatenate([[-np.inf], np.maximum.accumulate(ys)[:-1]])
    keep = np.zeros(x.size, dtype=bool)
    keep[order[ys > best_before]] = True
    return keep


def pareto_frontier(df: pd.DataFrame, x: str = "tokens_per_s_per_user", y: str = "output_tokens_per_s_per_gpu",
                    by: Sequence[str] = (), fitting_only: bool = True) -> pd.DataFrame:
    """The rows on the latency-throughput frontier (both axes maximised), per group of ``by``."""
    d = df[df["fits"]] if fitting_only else df
    if d.empty:
        return d
    if not by:
        return d[pareto_mask(d[x].to_numpy(), d[y].to_numpy())].sort_values(x)
    parts = [g[pareto_mask(g[x].to_numpy(), g[y].to_numpy())] for _, g in d.groupby(list(by), observed=True)]
    return pd.concat(parts).sort_values([*by, x])

"""Fit the timing model's efficiencies and overheads per GPU and engine, by least squares.

The timing model (planner/timing.py) says a kernel or a forward pass takes

    t = fixed + max(FLOPs / (peak x compute), bytes / (bandwidth x memory))

so on memory-bound points ``t = fixed + (bytes / bandwidth) x (1 / memory)`` is linear in the
unknowns ``fixed`` and ``1 / memory``, and on compute-bound points ``t - fixed`` is linear in
``1 / compute``. The fits minimise the *relative* residual ((model - t) / t), so a 10 us kernel
weighs as much as a 10 ms one (numpy.linalg.lstsq on rows divided by t).

Two kinds of data feed it:

* per-kernel latencies (AIC vLLM 0.14, engine "paged"): memory-bound GEMMs (GEMV-like, datasheet
  memory time >= 4x the compute time) and decode attention give ``memory`` and the per-kernel
  constant; large compute-bound GEMMs give ``compute``. ``layer_overhead_s`` = the per-kernel
  constant x KERNELS_PER_LAYER. A step's fixed cost (scheduler, sampling) does not show in
  per-kernel data: ``step_overhead_s`` stays at its default.
* our profiler's runs (engine "transformers"): decode steps give ``memory``, ``step_overhead_s``
  and, when models with different layer counts were measured, ``layer_overhead_s``; prefills
  give ``compute``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from . import profiles
from . import reference as ref
from . import validate as val

BOUND_RATIO = 4.0        # a point is memory- (compute-) bound when that time is >= 4x the other
MIN_COMPUTE_FLOPS = 2e10  # compute fit: GEMMs of at least 20 GFLOP (e.g. 2048^3 x 1.2), past the ramp-up


@dataclass(frozen=True)
class LinearFit:
    """t = intercept + slope x x, fitted on relative residuals; ``rel_residual_pct``: median |(fit - t) / t|."""

    intercept: float
    slope: float
    n: int
    rel_residual_pct: float


def fit_relative(x, t, intercept: float | None = None) -> LinearFit:
    """Least squares of ``t ~ intercept + slope x x`` minimising sum(((fit - t) / t)^2).

    With ``intercept`` given, only the slope is fitted (the intercept held at that value).
    """
    x, t = np.asarray(x, dtype=float), np.asarray(t, dtype=float)
    if len(t) < (1 if intercept is not None else 2):
        raise ValueError(f"need at least {1 if intercept is not None else 2} points to fit, got {len(t)}")
    if intercept is None:
        sol = np.linalg.lstsq(np.column_stack([1 / t, x / t]), np.ones_like(t), rcond=None)[0]
        c, s = float(sol[0]), float(sol[1])
    else:
        c = float(intercept)
        s = float(np.linalg.lstsq((x / t)[:, None], 1 - c / t, rcond=None)[0][0])
    res = np.median(np.abs((c + s * x - t) / t)) * 100
    return LinearFit(c, s, len(t), float(res))


def fit_step_times(bytes_over_bw, layers, t, layer_overhead_default: float) -> dict:
    """Decode steps: t = step_overhead + layers x layer_overhead + (bytes / bw) / memory.

    All three are fitted when the points span more than one layer count; otherwise the layer
    term is held at ``layer_overhead_default`` and folded out before fitting the other two.
    """
    x, n_l, t = (np.asarray(v, dtype=float) for v in (bytes_over_bw, layers, t))
    if len(np.unique(n_l)) > 1 and len(t) >= 3:
        a = np.column_stack([1 / t, n_l / t, x / t])
        step, layer, inv_mem = np.linalg.lstsq(a, np.ones_like(t), rcond=None)[0]
    else:
        layer = layer_overhead_default
        f = fit_relative(x, t - n_l * layer)
        step, inv_mem = f.intercept, f.slope
    fit = step + n_l * layer + x * inv_mem
    return {"memory": float(1 / inv_mem), "step_overhead_s": float(step), "layer_overhead_s": float(layer),
            "n": int(len(t)), "rel_residual_pct": float(np.median(np.abs((fit - t) / t)) * 100)}


# ---- per-kernel reference data (engine "paged") -----------------------------------------------------
def fit_memory_bound_kernels(x, is_attn, t) -> dict:
    """t = c_gemm [GEMM] + c_attn [attention] + x / memory, on relative residuals (x = bytes / bw)."""
    x, a, t = (np.asarray(v, dtype=float) for v in (x, is_attn, t))
    cols = np.column_stack([(1 - a) / t, a / t, x / t])
    c_gemm, c_attn, inv_mem = np.linalg.lstsq(cols, np.ones_like(t), rcond=None)[0]
    fit = c_gemm * (1 - a) + c_attn * a + x * inv_mem
    return {"memory": float(1 / inv_mem), "gemm": float(c_gemm), "attention": float(c_attn), "n": int(len(t)),
            "rel_residual_pct": float(np.median(np.abs((fit - t) / t)) * 100)}


def fit_kernels(k: pd.DataFrame, gpu: str) -> dict:
    """memory, compute and the per-kernel constants of one GPU from AIC per-kernel rows.

    Memory-bound GEMMs and decode attention share one bandwidth efficiency (a decode step reads
    weights and KV cache in the same pass) with one fixed latency per kernel family; large
    compute-bound GEMMs then give ``compute`` with the GEMM constant held. Context (prefill)
    attention is fitted apart as ``attention_compute``: the timing model has no field for it yet.
    """
    spec = profiles.gpu(gpu)
    g = k[k["gpu"] == gpu]
    t_m = g["bytes"] / spec.memory_bandwidth_bytes_per_s  # at 100 % of the datasheet
    t_c = g["flops"] / spec.flops("bf16")
    mb = g["op"].isin(["gemm", "generation_attention"]) & (t_m >= BOUND_RATIO * t_c)
    fm = fit_memory_bound_kernels(t_m[mb], g.loc[mb, "op"] != "gemm", g.loc[mb, "measured"])
    cb = (g["op"] == "gemm") & (t_c >= BOUND_RATIO * t_m) & (g["flops"] >= MIN_COMPUTE_FLOPS)
    fc = fit_relative(t_c[cb], g.loc[cb, "measured"], intercept=fm["gemm"])
    ca = (g["op"] == "context_attention") & (t_c >= BOUND_RATIO * t_m) & (g["flops"] >= MIN_COMPUTE_FLOPS)
    fa = fit_relative(t_c[ca], g.loc[ca, "measured"], intercept=fm["attention"]) if ca.sum() else None
    kernels = {"gemm": fm["gemm"], "attention": fm["attention"]}
    return {"memory": fm["memory"], "compute": 1 / fc.slope,
            "attention_compute": 1 / fa.slope if fa else None,
            "kernel_latency_s": kernels,
            # four GEMMs (QKV, O, gate/up, down) and one attention per layer
            "layer_overhead_s": (ref.KERNELS_PER_LAYER - 1) * kernels["gemm"] + kernels["attention"],
            "step_overhead_s": profiles.efficiency_defaults()["step_overhead_s"],
            "points": {"memory_bound": fm["n"], "compute_bound_gemm": fc.n, "compute_bound_attention": fa.n if fa else 0},
            "fit_residual_pct": {"memory_bound": round(fm["rel_residual_pct"], 2),
                                 "compute_bound_gemm": round(fc.rel_residual_pct, 2),
                                 "compute_bound_attention": round(fa.rel_residual_pct, 2) if fa else None},
            "fitted_from": ref.AIC, "files": sorted(set(g["file"]))}


# ---- our profiler's runs (engine "transformers") ---------------------------------------------------
def fit_profiler(rows: pd.DataFrame, gpu: str) -> dict | None:
    """Decode-step and prefill fits of one GPU from the profiler's CSV rows (status ok)."""
    d = rows[(rows["gpu"] == gpu) & (rows["status"] == "ok")]
    if len(d) < 3 or gpu not in profiles.gpus():
        return None
    spec = profiles.gpu(gpu)
    defaults = profiles.efficiency_defaults()
    layers = d["model"].map(lambda m: val._spec(m, d.loc[d["model"] == m, "folder"].iloc[0]).num_layers)
    dec_t_m = d["decode_step_bytes"] / spec.memory_bandwidth_bytes_per_s
    dec_t_c = d["decode_step_flops"] / spec.flops(str(d["dtype"].iloc[0]))
    mb = dec_t_m >= BOUND_RATIO * dec_t_c
    if mb.sum() < 2:
        return None
    f = fit_step_times(dec_t_m[mb], layers[mb], d.loc[mb, "decode_step_median_s"], defaults["layer_overhead_s"])
    out = {**f, "compute": defaults["compute"], "points": {"decode_steps": f.pop("n"), "prefills": 0}}
    pre_t_c = d["prefill_flops"] / spec.flops(str(d["dtype"].iloc[0]))
    cb = pre_t_c >= BOUND_RATIO * d["prefill_bytes"] / spec.memory_bandwidth_bytes_per_s
    if cb.sum() >= 1:
        fixed = out["step_overhead_s"] + layers[cb] * out["layer_overhead_s"]
        fc = fit_relative(pre_t_c[cb], d.loc[cb, "prefill_s"] - fixed + 0.0, intercept=0.0)
        out.update(compute=1 / fc.slope, points={**out["points"], "prefills": fc.n})
    out["fitted_from"] = "profiler runs: " + ", ".join(sorted({Path(f).name for f in d["file"]}))
    return out


# ---- the whole calibration ---------------------------------------------------------------------
def calibrate(dirs=None, reference=None, gpus: list[str] | None = None, command: str = "") -> dict:
    """{gpu: {engine: fit}} from every source available, with error bands of the fitted model."""
    out: dict[str, dict[str, dict]] = {}
    date = datetime.now(UTC).date().isoformat()
    refdir = None if reference is False else ref.find_reference(None if reference in (None, True) else reference)
    if refdir is not None:
        k = ref.aic_kernels(refdir)
        for gpu in sorted(set(k["gpu"]) & set(profiles.gpus())) if not k.empty else []:
            if not gpus or gpu in gpus:
                out.setdefault(gpu, {})["paged"] = fit_kernels(k, gpu)
    rows = val.read_measurements(val.measurement_files(dirs))
    if not rows.empty:
        for gpu in sorted(set(rows["gpu"].astype(str))):
            f = fit_profiler(rows, gpu) if not gpus or gpu in gpus else None
            if f:
                out.setdefault(gpu, {})["transformers"] = f
    for engines in out.values():
        for fit in engines.values():
            fit.update(command=command, date=date)
    merged = {**profiles.load_calibrations()}
    for gpu, engines in out.items():
        merged[gpu] = {**merged.get(gpu, {}), **engines}
    bands = val.bands(val.validation_table(dirs, reference, calibration=merged))
    for gpu, engines in out.items():
        for fit in engines.values():
            fit["error_bands"] = bands.get(gpu, {})
    return out


def write(fits: dict, path: Path | None = None) -> Path:
    """Merge ``fits`` into profiles/calibration.json (other GPUs and engines are kept)."""
    path = path or profiles.calibration_path()
    old = profiles.read_for_update(path, {})
    for gpu, engines in fits.items():
        old.setdefault(gpu, {}).update(engines)
    path.write_text(json.dumps(_rounded(old), indent=2, sort_keys=True) + "\n")
    return path


def _rounded(x):
    if isinstance(x, float):
        return float(f"{x:.6g}")
    if isinstance(x, dict):
        return {k: _rounded(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_rounded(v) for v in x]
    return x

"""TensorRT-LLM's start-up KV pool (planner/startup.py ``trtllm_startup``) against published start-up logs.

profiles/validation/trtllm-startup.csv holds what public trtllm-serve / trtllm-bench logs printed (every row
names its page): the weights inside torch, the memory outside torch after loading, the profiling peak and the
KV memory TensorRT-LLM made available ("Peak memory during memory usage profiling ... available KV cache
memory when calculating max tokens: A GiB"). ``predict`` runs ``api.capacity(..., engine="trtllm")`` with the
row's model, GPU, TP, weights, KV dtype, fraction, max_num_tokens and max_batch_size and joins the two;
``summary`` gives the median and largest |error| of the pool, and of the pool recomputed with the weights
the log printed (the start-up rule apart from the weight estimate), over every row and over the rows the start-up
model describes (``clean``: no expert parallelism beyond TP, no piecewise CUDA graphs, no flagged figure).
Some rows are in the fit of the ``non_torch_bytes`` constant (profiles/engines/trtllm.json ``fitted_on``).
"""

from __future__ import annotations

import pandas as pd

from . import api, profiles
from .errors import PlannerInputError

CSV = "trtllm-startup.csv"
GIB = 2**30


def path():
    return profiles.ROOT / "validation" / CSV


def rows(file=None) -> pd.DataFrame:
    p = file or path()
    if not p.is_file():
        return pd.DataFrame()
    return pd.read_csv(p, dtype={"engine_version": str, "weights": str, "kv_dtype": str, "notes": str},
                       keep_default_na=False)


def _opt_int(v):
    return int(v) if str(v).strip() not in ("", "nan") else None


def _opt_float(v):
    return float(v) if str(v).strip() not in ("", "nan") else None


def clean(d: pd.DataFrame) -> pd.Series:
    """Rows the start-up model describes: TP only (EP = 1 or = TP), eager or decode-only CUDA graphs, no figure
    the collector flagged as inconsistent with its sibling runs."""
    return ((d["ep"].astype(int) == 1) | (d["ep"].astype(int) == d["tp"].astype(int))) & \
        ~d["piecewise_cuda_graphs"].astype(str).str.lower().eq("true") & \
        ~d["notes"].str.contains("against", regex=False)


def predict(d: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every row with the planner's pool and terms (GiB) and the error of the pool in %; ``why`` where none."""
    d = rows() if d is None else d.astype(object).where(d.notna(), "")  # a frame read without rows(): blanks as ""
    out = []
    for r in d.itertuples():
        rec = {"id": r.id, "why": ""}
        try:
            c = api.capacity(r.model, r.gpu, tp=int(r.tp), weights=r.weights or None, kv_dtype=r.kv_dtype or "auto",
                             engine="trtllm", engine_version=r.engine_version or None,
                             free_gpu_memory_fraction=_opt_float(r.free_gpu_memory_fraction),
                             max_num_batched_tokens=_opt_int(r.max_num_tokens),
                             max_num_seqs=_opt_int(r.max_batch_size))
        except PlannerInputError as e:
            rec["why"] = str(e)
            out.append(rec)
            continue
        t = {x["name"]: x["bytes"] / GIB for x in c["terms"]}
        rec.update(predicted_kv_gib=c["kv_budget_bytes_per_gpu"] / GIB, predicted_weights_gib=t["weights"],
                   predicted_activation_gib=t["activation_peak"], predicted_non_torch_gib=t["non_torch"],
                   device_total_gib=c["total_memory_bytes_per_gpu"] / GIB)
        out.append(rec)
    p = d.merge(pd.DataFrame(out), on="id", how="left")
    logged = pd.to_numeric(p["available_kv_gib"], errors="coerce")
    p["error_pct"] = (p["predicted_kv_gib"] - logged) / logged * 100
    # the start-up rule alone: the same pool with the weights the log printed in place of the planner's estimate
    # (the pool moves by the fraction x the difference: available = (total - peak) x fraction)
    w = pd.to_numeric(p["weights_inside_torch_gib"], errors="coerce")
    f = pd.to_numeric(p["free_gpu_memory_fraction"], errors="coerce")
    p["kv_given_weights_gib"] = p["predicted_kv_gib"] + (p["predicted_weights_gib"] - w) * f
    p["error_given_weights_pct"] = (p["kv_given_weights_gib"] - logged) / logged * 100
    p["clean"] = clean(p)
    return p


def summary(p: pd.DataFrame) -> pd.DataFrame:
    """Median and largest |error| of the pool, signed median, over every scored row and the clean ones."""
    recs = []
    for col, what in (("error_pct", "pool"), ("error_given_weights_pct", "pool with the logged weights")):
        for name, sel in (("all", p[col].notna()), ("clean", p[col].notna() & p["clean"])):
            e = p.loc[sel, col]
            recs.append({"figure": what, "rows": name, "n": int(sel.sum()),
                         "median_abs_pct": float(e.abs().median()) if len(e) else None,
                         "max_abs_pct": float(e.abs().max()) if len(e) else None,
                         "signed_median_pct": float(e.median()) if len(e) else None})
    return pd.DataFrame(recs)


def pool_band(p: pd.DataFrame) -> dict:
    """The spread of TensorRT-LLM's real pool around the prediction over the clean logs: low / high / median of
    (logged - predicted) / predicted in %, as ``capacity`` states a band (``benchmarks/bench_trtllm_pool.py
    --write`` stores it in profiles/engines/trtllm.json, ``startup_pool_band``)."""
    e = p.loc[p["clean"] & p["error_pct"].notna(), "error_pct"]
    real = (1 / (1 + e / 100) - 1) * 100
    return {"n": int(len(real)), "low_pct": round(float(real.min()), 2), "high_pct": round(float(real.max()), 2),
            "median_pct": round(float(real.median()), 2)}

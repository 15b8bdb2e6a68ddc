"""Published profiling data, in one tidy shape.

Two public sources, carried as compact slices under ``profiles/reference/`` (its README names the
source commit, the files and the licences; ``--reference DIR`` reads another copy):

* ai-dynamo/aiconfigurator @095f58a (``aic-core/src/aiconfigurator_core/systems/``): vLLM 0.14
  per-kernel latencies (bf16 GEMM, context and generation attention) on A100 / H100 / H200 SXM,
  and ``silicon_sample.csv``, end-to-end TTFT and TPOT of served deployments on H100 / H200.
* microsoft/vidur @7d47513 (``data/profiling/compute/<gpu>/meta-llama/Llama-2-7b-hf/mlp.csv``):
  per-layer median times of Llama-2-7B's linear layers by token count and TP, A100 and H100.

Each loader returns one row per measured kernel call with its shape, the FLOPs and bytes the
planner counts for it, and the measured seconds. Latencies in the files are ms per call (one
layer); they are converted to seconds here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from . import profiles
from .gpus import GpuSpec

if TYPE_CHECKING:  # timing imports the measured tables, which read this module's counts
    from .timing import Efficiency

AIC = "AIC vLLM 0.14 per-kernel latencies (ai-dynamo/aiconfigurator @095f58a)"
AIC_SILICON = "AIC silicon end-to-end runs (ai-dynamo/aiconfigurator @095f58a, systems/silicon_sample.csv)"
VIDUR = "vidur Llama-2-7B per-op medians (microsoft/vidur @7d47513, data/profiling/compute)"

# Reference system names -> our GPU profile ids (profiles/gpus/<id>.json).
GPU_MAP = {"h100_sxm": "H100-SXM", "h200_sxm": "H200", "a100_sxm": "A100-SXM-80GB"}
VIDUR_GPU = {"a100": "A100-SXM-80GB", "h100": "H100-SXM"}

BF16_BYTES = 2.0

# A decoder layer of a vLLM decode step runs five kernels whose time scales with the model: the
# fused QKV GEMM, attention, the O GEMM, the fused gate/up GEMM and the down GEMM (norms, rope
# and the activation are fused into neighbours or take well under a microsecond). The timing
# model's per-layer overhead is the per-kernel constant times this count, and a single kernel's
# prediction carries layer_overhead_s / KERNELS_PER_LAYER.
KERNELS_PER_LAYER = 5


def find_reference(path: str | Path | None = None) -> Path | None:
    """The reference-data folder: ``path`` (its ``profiling/`` subfolder if it has one), else the
    slices carried in ``profiles/reference``; None when neither exists."""
    return profiles.reference_dir(path)


def kernel_seconds(flops, bytes_, gpu: GpuSpec, eff: Efficiency, dtype: str = "bf16"):
    """Roofline time of one kernel: max(FLOPs / (peak x compute), bytes / (bw x memory)) + its share
    of the per-layer overhead (Williams et al., CACM 2009; units: FLOP, bytes, seconds)."""
    t_c = np.asarray(flops, dtype=float) / (gpu.flops(dtype) * eff.compute)
    t_m = np.asarray(bytes_, dtype=float) / (gpu.memory_bandwidth_bytes_per_s * eff.memory)
    return np.maximum(t_c, t_m) + eff.layer_overhead_s / KERNELS_PER_LAYER


def gemm_counts(m, n, k, dtype_bytes: float = BF16_BYTES) -> tuple[np.ndarray, np.ndarray]:
    """FLOPs 2mnk; bytes: A (m x k) and B (k x n) read once, C (m x n) written once."""
    m, n, k = (np.asarray(x, dtype=float) for x in (m, n, k))
    return 2 * m * n * k, dtype_bytes * (m * k + k * n + m * n)


def generation_attention_counts(batch, cached, heads, kv_heads, head_dim, kv_bytes: float = BF16_BYTES):
    """One decode step of one layer: every sequence reads K and V of ``cached + 1`` tokens
    (FLOPs: QK^T and PV, 2 x heads x 2 x head_dim per key; the same count as planner/timing.py)."""
    b, keys = np.asarray(batch, dtype=float), np.asarray(cached, dtype=float) + 1
    flops = b * 2 * heads * 2 * head_dim * keys
    bytes_ = b * keys * kv_heads * head_dim * 2 * kv_bytes + b * heads * head_dim * 2 * BF16_BYTES
    return flops, bytes_


def context_attention_counts(batch, isl, heads, kv_heads, head_dim, kv_bytes: float = BF16_BYTES):
    """A causal prefill of ``isl`` tokens of one layer (flash attention): isl(isl+1)/2 visible keys;
    bytes: Q and O of every token, K and V written and read once."""
    b, p = np.asarray(batch, dtype=float), np.asarray(isl, dtype=float)
    flops = b * 2 * heads * 2 * head_dim * p * (p + 1) / 2
    bytes_ = b * p * (heads * head_dim * 2 * BF16_BYTES + kv_heads * head_dim * 2 * kv_bytes)
    return flops, bytes_


def read_csv(ref: Path, name: str) -> pd.DataFrame | None:
    """``name`` (``.csv`` or ``.csv.gz``) from the reference folder, or None when absent."""
    return profiles.reference_table(ref, name)


def aic_kernels(ref: Path) -> pd.DataFrame:
    """Every AIC vLLM 0.14 bf16 kernel row: op, gpu, shape, flops, bytes, measured seconds, file."""
    frames = []
    for sysname, gpu in GPU_MAP.items():
        f = f"aic_vllm014_{sysname}_gemm_bf16.csv"
        d = read_csv(ref, f)
        if d is not None:
            flops, bytes_ = gemm_counts(d["m"], d["n"], d["k"])
            frames.append(pd.DataFrame({"op": "gemm", "gpu": gpu, "m": d["m"], "n": d["n"], "k": d["k"],
                                        "flops": flops, "bytes": bytes_, "measured": d["latency_ms"] / 1e3,
                                        "file": f}))
        for op, counts in (("generation_attention", generation_attention_counts),
                           ("context_attention", context_attention_counts)):
            f = f"aic_vllm014_{sysname}_{op}_bf16.csv"
            d = read_csv(ref, f)
            if d is None:
                continue
            length = d["step"] if op == "generation_attention" else d["isl"]
            flops, bytes_ = counts(d["batch_size"], length, d["num_heads"], d["num_key_value_heads"], d["head_dim"])
            frames.append(pd.DataFrame({"op": op, "gpu": gpu, "batch": d["batch_size"], "length": length,
                                        "heads": d["num_heads"], "kv_heads": d["num_key_value_heads"],
                                        "flops": flops, "bytes": bytes_, "measured": d["latency_ms"] / 1e3,
                                        "file": f}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def vidur_linears(ref: Path) -> pd.DataFrame:
    """vidur's Llama-2-7B linear layers as GEMMs (m = tokens; n, k = the TP shard's shape)."""
    frames = []
    for tag, gpu in VIDUR_GPU.items():
        f = f"vidur_{tag}_Llama-2-7b-hf_mlp_median.csv"
        d = read_csv(ref, f)
        if d is None:
            continue
        tp, h, ff = d["num_tensor_parallel_workers"], d["n_embd"], d["n_expanded_embd"]
        hd = h / d["n_head"]
        shapes = {"attn_pre_proj": ((d["n_head"] + 2 * d["n_kv_head"]) * hd / tp, h),
                  "attn_post_proj": (h, d["n_head"] * hd / tp),
                  "mlp_up_proj": (np.where(d["use_gated_mlp"], 2, 1) * ff / tp, h),
                  "mlp_down_proj": (h, ff / tp)}
        for op, (n, k) in shapes.items():
            flops, bytes_ = gemm_counts(d["num_tokens"], n, k)
            frames.append(pd.DataFrame({"op": op, "gpu": gpu, "m": d["num_tokens"], "n": n, "k": k, "tp": tp,
                                        "flops": flops, "bytes": bytes_,
                                        "measured": d[f"{op}_median_ms"] / 1e3, "file": f}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


# Reference model ids -> bundled names where the checkpoint is the same architecture.
SILICON_MODEL_ALIASES = {"Llama-3.1-8B-Instruct": "Llama-3.1-8B", "Llama-3.1-8B-Instruct-FP8": "Llama-3.1-8B"}


def silicon_rows(ref: Path, bundled: tuple[str, ...]) -> pd.DataFrame:
    """AIC silicon aggregated-serving rows on H100/H200 whose model we bundle.

    Kept: mode 'agg' (one engine does prefill and decode), no attention data-parallelism.
    ``batch_size`` is the client concurrency. Blank precision is read as bf16 (the engines'
    default for these checkpoints); fp8 as fp8 weights; fp4 / int4 as the checkpoint's own format.
    """
    f = "aic_silicon_sample_h100_h200.csv"
    d = read_csv(ref, f)
    if d is None:
        return pd.DataFrame()
    d = d[(d["mode"] == "agg") & (d["attention_dp_size"].fillna(1) <= 1)].copy()
    short = d["model_path"].str.split("/").str[-1]
    short = short.map(lambda s: SILICON_MODEL_ALIASES.get(s, s))
    low = {b.lower(): b for b in bundled}
    d["model"] = short.str.lower().map(low)
    d = d[d["model"].notna()]
    d["gpu"] = d["system"].map(GPU_MAP)
    d["weights"] = d["precision"].map({"fp8": "fp8", "bf16": "bf16", "fp16": "fp16"}).fillna(
        d["precision"].isna().map({True: "bf16", False: ""}))
    d["file"] = f
    return d.reset_index(drop=True)

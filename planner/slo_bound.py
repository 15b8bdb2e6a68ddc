"""Optimistic bounds for the SLO search: what a candidate could reach at best, without building its plan.

Building a plan (``api.build_plan``) resolves the serving engine and, on GPUs with measured
operator tables, interpolates them: 0.1-0.2 s the first time. The search cannot afford that for
hundreds of candidates, so it first bounds each one with arithmetic that can only be optimistic:

* **Memory.** Weights per GPU (``memory.weight_bytes_per_gpu``, the planner's own split) plus one
  request's KV cache at the workload's average occupancy, held token by token without paging
  blocks, must fit in the GPU's whole memory (no activations, no runtime overhead, utilisation 1).
  ``batch_ub`` = the most such requests that fit: at least the largest batch the plan allows.
* **Latency.** The timing model's own formulas (``TimingModel.prefill`` / ``tpot``) run as an ideal
  roofline: datasheet bandwidth and peak at efficiency 1, no fixed costs, no communication, one
  prefill chunk, no dequantisation traffic, KV read token by token, then multiplied by
  ``SCREEN_OPTIMISM`` (< 1) because measured operator tables can beat the datasheet roofline when a
  rank's weights sit in L2. No prefill interference. So TTFT, TPOT and end-to-end latency at every
  batch are lower bounds of the mean-value model's (tests/test_slo_search.py checks this over the
  bundled space).
* **Throughput and cost.** ``requests_per_s_ub`` = max over batches whose bounds meet the targets of
  ``batch / e2e_lb``; replicas >= rate / that; ``usd_per_hour_lb`` = replicas x GPUs x price. The
  mean-value model's cost, and the simulation's (which only adds replicas), are never lower.

A candidate whose bound already fails (memory, a latency target at batch 1, more GPUs than
allowed) is rejected here; the others are built cheapest bound first (planner/slo.py).
"""

from __future__ import annotations

import math
from dataclasses import replace
from functools import lru_cache

import numpy as np

from . import kv as kvmod
from . import profiles
from .gpus import GpuSpec
from .memory import Deployment, stage_layers, weight_bytes_per_gpu
from .optables import SYSTEMS
from .spec import ModelSpec
from .timing import Efficiency, KernelFactor, TimingModel, build_timing

IDEAL = Efficiency(memory=1.0, compute=1.0, attention_compute=0.0, step_overhead_s=0.0, layer_overhead_s=0.0,
                   allreduce_latency_s=0.0, eager_layer_overhead_s=0.0, graph_max_tokens=0, provenance="ideal")


def screen_optimism() -> float:
    """How far below the ideal roofline a built plan's step may go (profiles/kernels.json)."""
    return float(profiles.kernels()["slo_screen"]["optimism"]["value"])


def compute_dtype(fmt, gpu: GpuSpec) -> str:
    """The tensor-core dtype a format's matmuls run at on ``gpu`` (timing.build_timing's rule)."""
    dt = "fp16" if fmt.compute_dtype in ("fp16", "bf16") else fmt.compute_dtype
    return "fp16" if dt in ("fp8", "int8") and not gpu.has_native(dt) else dt


@lru_cache(maxsize=512)
def _reduced(spec: ModelSpec, fmt_id: str, tp: int, pp: int) -> TimingModel:
    """The timing scalars of (model, format, TP, PP): weights read, FLOPs per token. They do not depend
    on the GPU or the KV dtype, so one reduction serves every GPU; the transformers layout skips the
    measured-operator curves."""
    gpu = next(iter(profiles.gpus().values()))
    dep = Deployment(weights=fmt_id, engine="transformers", tp=tp, pp=pp)
    return build_timing(spec, gpu, dep, profiles.formats(), IDEAL, KernelFactor())


@lru_cache(maxsize=2048)
def _kv_groups(spec: ModelSpec, kv_dtype: str, tp: int, pp: int) -> tuple[kvmod.KvGroup, ...]:
    """The paged engine's cache groups on the fullest stage (as timing.build_timing rounds them)."""
    frac = stage_layers(spec.num_layers, pp).max() / spec.num_layers
    return tuple(kvmod.KvGroup(g.kind, int(round(g.layers * frac)) or 1, g.window, g.bytes_per_token, g.bytes_per_seq)
                 for g in kvmod.layer_groups(spec, kv_dtype, "paged", tp))


def optimistic_timing(spec: ModelSpec, gpu: GpuSpec, dep: Deployment, eff: Efficiency) -> tuple[TimingModel, float]:
    """The candidate's timing model at its most optimistic, and the factor its times are scaled by.

    On a GPU with measured operator tables (``optables.SYSTEMS``) a plan's step times come from those
    tables, which can beat the roofline: an ideal roofline (datasheet figures at efficiency 1, no
    fixed costs, no communication) scaled by ``screen_optimism()``. Elsewhere a plan is timed by the
    roofline with ``eff`` and its format's kernel factors: the same model, less what only adds time
    (paging blocks, prefill chunks, dequantisation traffic). Both hold the KV token by token and
    run every prompt in one pass (the transformers layout)."""
    fmt = profiles.formats().get(dep.weights)
    base = _reduced(spec, fmt.id, dep.tp, dep.pp)
    tdep = Deployment(weights=fmt.id, kv_dtype=dep.kv_dtype, engine="transformers", tp=dep.tp, pp=dep.pp)
    common = {"dep": tdep, "kv_groups": _kv_groups(spec, dep.kv_dtype, dep.tp, dep.pp),
              "compute_dtype": compute_dtype(fmt, gpu)}
    if dep.engine == "paged" and gpu.id in SYSTEMS:
        return replace(base, gpu=replace(gpu, interconnect_bytes_per_s=0.0), eff=IDEAL, kernel=KernelFactor(),
                       **common), screen_optimism()
    kf = profiles.kernel_family(fmt.family, fmt.id)
    kernel = KernelFactor(compute_factor=kf.get("compute_factor", 1.0), memory_factor=kf.get("memory_factor", 1.0))
    return replace(base, gpu=gpu, eff=replace(eff, eager_layer_overhead_s=0.0), kernel=kernel, **common), 1.0


@lru_cache(maxsize=4096)
def weights_per_gpu(spec: ModelSpec, fmt: str, tp: int, pp: int) -> float:
    """``memory.weight_bytes_per_gpu`` (the fullest GPU), cached: it depends on nothing else."""
    return weight_bytes_per_gpu(spec, profiles.formats(), Deployment(weights=fmt, tp=tp, pp=pp))


def memory_batch_ub(spec: ModelSpec, gpu: GpuSpec, dep: Deployment, prompt: int, output: int) -> tuple[int, float, float]:
    """(most requests at average occupancy that could fit, weight bytes per GPU, KV bytes per request)."""
    weights = weights_per_gpu(spec, dep.weights, dep.tp, dep.pp)
    frac = stage_layers(spec.num_layers, dep.pp).max() / spec.num_layers
    groups = kvmod.layer_groups(spec, dep.kv_dtype, "paged", dep.tp, state_bytes=2.0)
    per_req = float(kvmod.kv_cache_bytes(groups, 1, prompt + output // 2, "transformers")) * frac
    room = gpu.total_memory_bytes - weights
    if room <= 0:
        return 0, weights, per_req
    return (int(min(room // per_req, 1 << 30)) if per_req > 0 else 1 << 30), weights, per_req


def latency_lb(tm: TimingModel, k: float, batch: np.ndarray, prompt: int, output: int) -> dict[str, np.ndarray]:
    """Lower bounds of the mean-value TTFT, TPOT and end-to-end latency at each batch (seconds):
    ``tm``'s times scaled by ``k``, without the prefill interference."""
    ttft = k * tm.prefill(1, prompt, decode_batch=batch - 1, decode_context=prompt + output / 2)["time_s"]
    tpot = k * tm.tpot(batch, prompt, output)
    return {"ttft": ttft, "tpot": tpot, "e2e": ttft + max(output - 1, 0) * tpot}


def bound(spec: ModelSpec, gpu: GpuSpec, dep: Deployment, eff: Efficiency, rate: float, prompt: int, output: int,
          targets: list[tuple[str, float]], max_batch: int) -> dict:
    """The candidate at its best: ``failed`` (memory / ttft / tpot / e2e) with ``reason``, or
    ``requests_per_s_ub``, ``replicas_lb`` and ``usd_per_hour_lb``."""
    b_ub, weights, per_req = memory_batch_ub(spec, gpu, dep, prompt, output)
    gpus = dep.tp * dep.pp
    out = {"batch_ub": min(b_ub, max_batch), "gpus_per_replica": gpus}
    if b_ub < 1:
        return {**out, "failed": "memory", "reason": (
            f"memory: the weights alone take {weights / 2**30:.1f} GiB per GPU and one request of "
            f"{prompt}+{output} tokens at least {per_req / 2**30:.2f} GiB more; the GPU has "
            f"{gpu.total_memory_bytes / 2**30:.1f} GiB (add TP or PP, quantize weights or KV)")}
    b = np.arange(1, out["batch_ub"] + 1, dtype=float)
    lat = latency_lb(*optimistic_timing(spec, gpu, dep, eff), b, prompt, output)
    ok = np.ones(b.size, dtype=bool)
    for metric, target in targets:
        ok &= lat[metric] <= target
    if not ok[0]:
        misses = [f"{m.upper()} >= {float(lat[m][0]):.3g} s > {t:g} s" for m, t in targets if lat[m][0] > t]
        failed = next(m for m, t in targets if lat[m][0] > t)
        return {**out, "failed": failed, "reason": "latency at batch 1 (roofline lower bound): " + ", ".join(misses)
                + "; more replicas cannot help (a faster GPU, more TP or a smaller format can)"}
    rps = float(np.max(b[ok] / lat["e2e"][ok]))
    replicas = max(1, math.ceil(rate / rps))
    return {**out, "requests_per_s_ub": rps, "replicas_lb": replicas,
            "usd_per_hour_lb": replicas * gpus * gpu.price_usd_per_hour}

"""Datasheet rooflines of single operator calls: ``max(FLOPs / peak, bytes / bandwidth)`` in seconds.

planner/optables.py scales measured latencies by these outside the measured grid and never returns
less than them there (Williams et al., "Roofline", CACM 2009). No efficiency factor: the measured
tables carry the efficiency. GEMM and attention counts are the ones planner/reference.py validates
the timing model with (one rule in one place); the MoE count uses the experts-touched rule of
``timing.TimingModel.experts_touched`` (a test checks they agree).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from . import reference as ref
from .gpus import GpuSpec
from .spec import ModelSpec

Coords = Mapping[str, np.ndarray]

# bytes per weight element by table dtype, and the tensor-core peak its GEMMs run at
# (NVFP4: 4 bits and one fp8 scale per 16 weights, 4.5 bits; MXFP4: one 8-bit scale per 32, 4.25 bits;
# profiles/weight_formats.json)
WEIGHT_BYTES = {"bf16": 2.0, "fp8": 1.0, "fp8_block": 1.0, "w4a16": 0.5, "w4a16_mxfp4": 0.5, "w4a16_marlin": 0.5,
                "nvfp4": 4.5 / 8, "w4a8_mxfp4_mxfp8": 4.25 / 8}
PEAK_DTYPE = {"bf16": "bf16", "fp8": "fp8", "fp8_block": "fp8", "w4a16": "bf16", "w4a16_mxfp4": "bf16",
              "w4a16_marlin": "bf16", "nvfp4": "fp4", "w4a8_mxfp4_mxfp8": "fp8"}
KV_BYTES = {"bf16": 2.0, "fp8": 1.0}
ACT_BYTES = 2.0  # activations enter and leave every op in bf16
MLA_MODEL = "DeepSeek-V3"  # the model of AIC's MLA module tables (their 'model' column)


@dataclass(frozen=True)
class OpRoofline:
    """``counts(coords) -> (FLOPs, bytes)`` of one call, and the peaks that bound it."""

    counts: Callable[[Coords], tuple[np.ndarray, np.ndarray]]
    peak_flops: float
    bandwidth_bytes_per_s: float

    def __call__(self, c: Coords) -> np.ndarray:
        flops, bytes_ = self.counts(c)
        return np.maximum(np.asarray(flops, dtype=float) / self.peak_flops,
                          np.asarray(bytes_, dtype=float) / self.bandwidth_bytes_per_s)


def _peak(gpu: GpuSpec, dtype: str) -> float:
    d = PEAK_DTYPE[dtype]
    return gpu.flops(d if gpu.has_native(d) else "bf16")


def _hbm(gpu: GpuSpec, counts, peak: float) -> OpRoofline:
    return OpRoofline(counts, peak, gpu.memory_bandwidth_bytes_per_s)


def gemm(gpu: GpuSpec, dtype: str) -> OpRoofline:
    """2mnk FLOPs; A, B read and C written once at the dtype's width (reference.gemm_counts)."""
    wb = WEIGHT_BYTES[dtype]
    return _hbm(gpu, lambda c: ref.gemm_counts(c["m"], c["n"], c["k"], wb), _peak(gpu, dtype))


def attention_decode(gpu: GpuSpec, kv_dtype: str) -> OpRoofline:
    """Every sequence reads K and V of ``length + 1`` keys (reference.generation_attention_counts)."""
    kb = KV_BYTES[kv_dtype]
    return _hbm(gpu, lambda c: ref.generation_attention_counts(
        c["batch"], c["length"], c["group"] * c["kv_heads"], c["kv_heads"], c["head_dim"], kb), gpu.flops("bf16"))


def attention_prefill(gpu: GpuSpec, kv_dtype: str) -> OpRoofline:
    """Causal flash attention over ``length`` new tokens (reference.context_attention_counts)."""
    kb = KV_BYTES[kv_dtype]
    return _hbm(gpu, lambda c: ref.context_attention_counts(
        c["batch"], c["length"], c["group"] * c["kv_heads"], c["kv_heads"], c["head_dim"], kb), gpu.flops("bf16"))


class MoeShape(NamedTuple):
    """A MoE layer as AIC keys it: model-wide sizes and the layer's tensor / expert parallelism."""

    hidden: float
    intermediate: float
    experts: float
    topk: float
    tp: float
    ep: float


def experts_touched(experts, topk, tokens):
    """Expected distinct experts hit by ``tokens`` tokens choosing ``topk`` of ``experts`` uniformly:
    ``E (1 - (1 - k/E)^T)`` (the rule of timing.TimingModel.experts_touched)."""
    return experts * (1.0 - (1.0 - topk / experts) ** np.asarray(tokens, dtype=float))


def moe(gpu: GpuSpec, dtype: str, shapes: np.ndarray) -> OpRoofline:
    """Per rank: gated experts (3 matrices of hidden x intermediate/tp) over ``tokens x topk / ep``
    routed rows; bytes = the local experts touched plus the tokens in and out. ``shapes``: rows of
    MoeShape; a query names one by ``shape_id`` (row + 1)."""
    wb = WEIGHT_BYTES[dtype]

    def counts(c):
        t = np.asarray(c["tokens"], dtype=float)
        row = np.rint(np.asarray(c["shape_id"], dtype=float)).astype(int) - 1
        h, i, e, k, tp, ep = (shapes[:, j][row] for j in range(6))
        expert = 3 * h * i / tp
        return 2 * expert * t * k / ep, experts_touched(e, k, t) / ep * expert * wb + 2 * ACT_BYTES * t * h
    return _hbm(gpu, counts, _peak(gpu, dtype))


def moe_features(shapes: np.ndarray) -> np.ndarray:
    """What sets a MoE kernel's efficiency, per rank, in log space: hidden, the expert width on the
    rank, the experts on the rank, top-k and the model's expert count (columns of MoeShape)."""
    h, i, e, k, tp, ep = (shapes[:, j] for j in range(6))
    return np.log(np.stack([h, i / tp, e / ep, k, e], axis=1))


def mla(gpu: GpuSpec, kv_dtype: str, gemm_dtype: str, decode: bool, m: ModelSpec) -> OpRoofline:
    """The DeepSeek-V3 MLA module with ``heads`` per rank: q_a, q_b, kv_a, kv_b and o projections
    (weights read once) plus attention over the latent cache (kv_lora + rope per token); decode
    attention absorbed (scores over latent + rope, values over the latent), prefill causal."""
    kb, wb = KV_BYTES[kv_dtype], WEIGHT_BYTES[gemm_dtype]
    qk = m.qk_nope_head_dim + m.qk_rope_head_dim
    latent = m.kv_lora_rank + m.qk_rope_head_dim

    def counts(c):
        b, n, h = (np.asarray(c[x], dtype=float) for x in ("batch", "length", "heads"))
        params = (m.hidden_size * (m.q_lora_rank + latent)
                  + h * (m.q_lora_rank * qk + m.kv_lora_rank * (m.qk_nope_head_dim + m.v_head_dim)
                         + m.v_head_dim * m.hidden_size))
        if decode:
            tokens, keys = b, b * (n + 1)
            attn = 2 * h * (2 * m.kv_lora_rank + m.qk_rope_head_dim) * keys
        else:
            tokens, keys = b * n, b * n
            attn = b * 2 * h * (qk + m.v_head_dim) * n * (n + 1) / 2
        return (2 * params * tokens + attn,
                params * wb + keys * latent * kb + 2 * ACT_BYTES * tokens * m.hidden_size)
    return _hbm(gpu, counts, _peak(gpu, gemm_dtype))


def mla_attention(gpu: GpuSpec, kv_dtype: str, decode: bool, m: ModelSpec) -> OpRoofline:
    """The MLA attention kernel alone (SGLang's ``mla_{generation,context}`` tables), ``heads`` per rank:
    decode absorbed over the latent cache (kv_lora + rope per token, read once per sequence), prefill
    causal over per-head q / k (nope + rope) and v, as ``mla`` counts them without the projections."""
    kb = KV_BYTES[kv_dtype]
    qk = m.qk_nope_head_dim + m.qk_rope_head_dim
    latent = m.kv_lora_rank + m.qk_rope_head_dim

    def counts(c):
        b, n, h = (np.asarray(c[x], dtype=float) for x in ("batch", "length", "heads"))
        if decode:
            keys = b * (n + 1)
            return (2 * h * (2 * m.kv_lora_rank + m.qk_rope_head_dim) * keys,
                    keys * latent * kb + 2 * ACT_BYTES * b * h * latent)
        return (b * 2 * h * (qk + m.v_head_dim) * n * (n + 1) / 2,
                b * n * h * (2 * qk + 2 * m.v_head_dim) * ACT_BYTES)
    return _hbm(gpu, counts, gpu.flops("bf16"))


def mla_bmm(gpu: GpuSpec, dtype: str, m: ModelSpec) -> OpRoofline:
    """SGLang's absorbed MLA BMMs, either side of decode attention: per head, ``tokens`` x nope (128) against
    the head's kv_lora x nope slice of kv_b_proj (pre: into the latent; post: the latent back to v)."""
    wb = WEIGHT_BYTES[dtype]
    inner = m.kv_lora_rank * m.qk_nope_head_dim

    def counts(c):
        t, h = (np.asarray(c[x], dtype=float) for x in ("tokens", "heads"))
        return (2 * t * h * inner,
                h * inner * wb + t * h * (m.kv_lora_rank + m.qk_nope_head_dim) * ACT_BYTES)
    return _hbm(gpu, counts, _peak(gpu, dtype))


def allreduce(gpu: GpuSpec) -> OpRoofline:
    """Ring all-reduce: each rank sends ``2 (r - 1) / r`` of the message over its link (no FLOPs
    counted: the reductions are far below any peak)."""
    def counts(c):
        r = np.asarray(c["ranks"], dtype=float)
        ring = 2 * np.maximum(r - 1, 0) / np.maximum(r, 1) * np.asarray(c["message_bytes"], dtype=float)
        return np.zeros_like(ring), ring
    return OpRoofline(counts, gpu.flops("bf16"), gpu.interconnect_bytes_per_s or gpu.memory_bandwidth_bytes_per_s)

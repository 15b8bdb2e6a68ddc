"""KV-cache bytes per layer kind, per KV dtype and per engine layout.

The seed's formula, ``2 (K and V) x layers x kv_heads x head_dim x tokens x batch x bytes``,
generalised per layer kind (docs/formulas.md, section "KV cache"):

* full attention (MHA / GQA / MQA): ``kv_heads_per_rank x (head_dim + v_head_dim) x bytes`` per token;
* sliding window: the same per token, but only the last tokens of the window are held;
* MLA (DeepSeek): one latent of ``kv_lora_rank + qk_rope_head_dim`` per token, replicated on every
  TP rank (vLLM's MLAAttentionSpec; transformers 5.x caches the same latent);
* linear attention / SSM (Qwen3-Next, Jamba, Granite-4.0-H): a fixed state per sequence.

Two engine layouts:

* ``transformers``: its cache classes (``transformers/cache_utils.py``): a DynamicLayer keeps
  every token, a DynamicSlidingWindowLayer the last ``sliding_window - 1``.
* ``paged`` (vLLM v1, ``vllm/v1/kv_cache_interface.py``): blocks of ``block_size`` tokens, rounded
  up per sequence; a sliding layer needs at most ``window - 1 + max_num_batched_tokens`` tokens
  plus one block; KV heads split across TP ranks, at least one per rank.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import PlannerInputError
from .spec import CHUNKED, FULL, LINEAR, MAMBA, MLA, SLIDING, ModelSpec

ENGINES = ("transformers", "paged")


@dataclass(frozen=True)
class KvDtype:
    """Storage of one cached element. ``bits`` includes per-group scale/zero overhead."""

    name: str
    bits: float
    source: str


KV_DTYPES: dict[str, KvDtype] = {
    d.name: d
    for d in (
        KvDtype("fp32", 32, "IEEE 754 single precision"),
        KvDtype("fp16", 16, "IEEE 754 half precision"),
        KvDtype("bf16", 16, "bfloat16"),
        # vLLM fp8 KV cache: e4m3/e5m2 elements with a per-tensor (per-layer) scale: 8 bits each.
        KvDtype("fp8", 8, "vLLM docs, 'Quantized KV Cache' (fp8_e4m3 / fp8_e5m2, per-tensor scales)"),
        # transformers QuantizedCache (HQQ/quanto backends): per-channel groups of q_group_size=64
        # with an fp16 scale and an fp16 zero point each: nbits + 32/64 bits per element.
        KvDtype("int8", 8 + 32 / 64, "transformers cache_utils.QuantizedLayer (q_group_size=64, fp16 scale+zero)"),
        KvDtype("int4", 4 + 32 / 64, "transformers cache_utils.QuantizedLayer (nbits=4, q_group_size=64, fp16 scale+zero)"),
    )
}

# vLLM defaults (vllm/config: CacheConfig.block_size=16; SchedulerConfig max_num_batched_tokens
# 8192 for the V1 engine on a GPU server); both can be overridden per call.
PAGED_BLOCK_SIZE = 16
PAGED_MAX_NUM_BATCHED_TOKENS = 8192


def kv_dtype(name: str) -> KvDtype:
    key = str(name).lower().replace("bfloat16", "bf16").replace("float", "fp")
    aliases = {"auto": "bf16", "fp8_e4m3": "fp8", "fp8_e5m2": "fp8", "half": "fp16", "fp16": "fp16"}
    key = aliases.get(key, key)
    if key not in KV_DTYPES:
        raise PlannerInputError("kv_dtype", f"unknown KV dtype {name!r}", f"choose one of {', '.join(KV_DTYPES)}")
    return KV_DTYPES[key]


@dataclass(frozen=True)
class KvGroup:
    """Layers that cache alike: same kind, same window, same bytes per token."""

    kind: str
    layers: int
    window: int             # 0 when the layer keeps every token
    bytes_per_token: float  # per layer, per sequence, on one TP rank
    bytes_per_seq: float    # fixed state per layer, per sequence (SSM / linear attention)


def _kv_heads_per_rank(spec: ModelSpec, tp: int) -> int:
    """vLLM: max(1, kv_heads // tp): heads split across ranks, replicated when kv_heads < tp."""
    return max(1, spec.num_kv_heads // tp)


def _state_elems(spec: ModelSpec, kind: str, engine: str) -> int:
    d = spec.ssm_dims
    conv_keep = 0 if engine == "transformers" else -1  # vLLM keeps kernel-1 conv columns
    if kind == LINEAR:
        conv_dim = 2 * d["num_k_heads"] * d["k_head_dim"] + d["num_v_heads"] * d["v_head_dim"]
        return conv_dim * (d["conv_kernel"] + conv_keep) + d["num_v_heads"] * d["k_head_dim"] * d["v_head_dim"]
    if d.get("version") == 1:
        return d["d_inner"] * (d["d_conv"] + conv_keep) + d["d_inner"] * d["d_state"]
    conv_dim = d["d_inner"] + 2 * d["n_groups"] * d["d_state"]
    return conv_dim * (d["d_conv"] + conv_keep) + d["n_heads"] * d["head_dim"] * d["d_state"]


def layer_groups(spec: ModelSpec, kv_dtype_name: str = "bf16", engine: str = "paged", tp: int = 1,
                 state_bytes: float = 2.0) -> tuple[KvGroup, ...]:
    """Reduce a model to a few cache groups. ``state_bytes``: element size of SSM states (model dtype)."""
    if engine not in ENGINES:
        raise PlannerInputError("engine", f"unknown engine {engine!r}", f"choose one of {', '.join(ENGINES)}")
    b = kv_dtype(kv_dtype_name).bits / 8
    counts: dict[tuple[str, int], int] = {}
    for kind in spec.layer_kinds:
        window = spec.sliding_window if kind in (SLIDING, CHUNKED) else 0
        counts[(kind, window)] = counts.get((kind, window), 0) + 1
    groups = []
    for (kind, window), n in counts.items():
        per_tok, per_seq = 0.0, 0.0
        if kind in (FULL, SLIDING, CHUNKED):
            per_tok = _kv_heads_per_rank(spec, tp) * (spec.head_dim + spec.v_head_dim) * b
        elif kind == MLA:
            # Both engines cache the compressed latent plus the shared rope key (transformers 5.23
            # DeepseekV2/V3Attention update the cache with (k_nope latent, k_pe)); replicated per rank.
            per_tok = (spec.kv_lora_rank + spec.qk_rope_head_dim) * b
        elif kind in (LINEAR, MAMBA):
            per_seq = _state_elems(spec, kind, engine) * state_bytes / tp
        groups.append(KvGroup(kind, n, window, per_tok, per_seq))
    return tuple(groups)


def tokens_held(group: KvGroup, context, engine: str, block_size: int = PAGED_BLOCK_SIZE,
                max_num_batched_tokens: int = PAGED_MAX_NUM_BATCHED_TOKENS):
    """Tokens one sequence of ``context`` tokens holds in one layer of ``group`` (vectorised)."""
    ctx = np.asarray(context, dtype=np.float64)
    if group.bytes_per_token == 0:
        return np.zeros_like(ctx)
    if engine == "transformers":
        return np.minimum(ctx, group.window - 1) if group.window else ctx
    if group.window:
        need = np.minimum(ctx, group.window - 1 + max_num_batched_tokens)
        return (np.ceil(need / block_size) + 1) * block_size
    return np.ceil(ctx / block_size) * block_size


def kv_cache_bytes(groups: tuple[KvGroup, ...], batch, context, engine: str = "paged",
                   block_size: int = PAGED_BLOCK_SIZE, max_num_batched_tokens: int = PAGED_MAX_NUM_BATCHED_TOKENS):
    """Bytes of cache for ``batch`` sequences of ``context`` tokens each, on one rank (vectorised)."""
    batch = np.asarray(batch, dtype=np.float64)
    total = 0.0
    for g in groups:
        held = tokens_held(g, context, engine, block_size, max_num_batched_tokens)
        total = total + g.layers * (held * g.bytes_per_token + g.bytes_per_seq)
    return batch * total


def kv_bytes_per_token(groups: tuple[KvGroup, ...]) -> float:
    """All layers' cache bytes for one more token, for a context shorter than every window."""
    return float(sum(g.layers * g.bytes_per_token for g in groups))


def kv_state_bytes_per_seq(groups: tuple[KvGroup, ...]) -> float:
    return float(sum(g.layers * g.bytes_per_seq for g in groups))


def describe(groups: tuple[KvGroup, ...]) -> list[dict]:
    return [{"kind": g.kind, "layers": g.layers, "window": g.window or None,
             "bytes_per_token_per_layer": g.bytes_per_token, "state_bytes_per_seq_per_layer": g.bytes_per_seq}
            for g in groups]

"""The tensor inventory of a model and its parameter counts, total and active.

One row per weight tensor kind per layer (experts folded into ``count``), built from the
ModelSpec alone. Weight bytes (formats.py), FLOPs (timing.py) and the parameter breakdown
all read this one table. The counts equal what transformers builds on the meta device
(tests/test_params_meta.py checks every bundled config).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from .spec import LINEAR, MLA_KINDS, NONE, STATE_KINDS, ModelSpec

COMPONENTS = ("embeddings", "attention", "mlp", "experts", "router", "ssm", "norms", "lm_head", "vision")


@dataclass(frozen=True)
class Tensor:
    component: str   # one of COMPONENTS
    role: str        # what a weight format keys on (attn_v, mlp_down, expert_up, norm, ...)
    layer: int       # -1 for tensors outside the layer stack
    rows: int        # output features (1-D tensors: their length)
    cols: int        # input features (1 for 1-D tensors)
    count: int = 1   # experts hold ``count`` copies
    active: int = 1  # copies one token touches (experts_per_token for routed experts; 0 for the vision tower)
    matrix: bool = True  # 2-D weights a format may quantize; 1-D (norms, biases) stay high precision


def _vec(component: str, role: str, layer: int, n: int, count: int = 1, active: int = 1) -> Tensor:
    return Tensor(component, role, layer, n, 1, count, active, matrix=False)


def _mla(s: ModelSpec, i: int, h: int, nh: int, hd: int) -> list[Tensor]:
    """DeepSeek MLA: q (low-rank or not), the kv latent + shared rope key, its up-projection, o."""
    out: list[Tensor] = []
    if s.q_lora_rank:
        out += [Tensor("attention", "attn_q", i, s.q_lora_rank, h), _vec("norms", "norm", i, s.q_lora_rank),
                Tensor("attention", "attn_q", i, nh * hd, s.q_lora_rank)]
    else:
        out.append(Tensor("attention", "attn_q", i, nh * hd, h))
    out += [Tensor("attention", "attn_k", i, s.kv_lora_rank + s.qk_rope_head_dim, h),
            _vec("norms", "norm", i, s.kv_lora_rank),
            Tensor("attention", "attn_v", i, nh * (s.qk_nope_head_dim + s.v_head_dim), s.kv_lora_rank),
            Tensor("attention", "attn_o", i, h, nh * s.v_head_dim)]
    if s.has_indexer(i):  # the DSA indexer: its own queries, one shared key head, head weights
        ix = dict(s.indexer)
        q_in = s.q_lora_rank or h
        out += [Tensor("attention", "attn_q", i, ix["n_heads"] * ix["head_dim"], q_in),
                Tensor("attention", "attn_k", i, ix["head_dim"], h), _vec("norms", "norm", i, 2 * ix["head_dim"]),
                Tensor("attention", "attn_q", i, ix["n_heads"], h)]
    return out


def _attention(s: ModelSpec, i: int) -> list[Tensor]:
    h, kind = s.hidden_size, s.layer_kinds[i]
    if kind in MLA_KINDS:
        return _mla(s, i, h, s.num_heads, s.head_dim)
    a = s.attn_shape(kind)
    nh, hd, vd = a["num_heads"], a["head_dim"], a["v_head_dim"]
    q_rows = nh * hd * (2 if s.attn_output_gate else 1)
    own_kv = not s.kv_shared(i)  # a KV-sharing layer (Gemma 4) has no k/v projections of its own
    k_rows = a["num_kv_heads"] * hd * own_kv
    v_rows = a["num_kv_heads"] * vd * (own_kv and not a["k_eq_v"])
    out = [Tensor("attention", "attn_q", i, q_rows, h), Tensor("attention", "attn_o", i, h, nh * vd)]
    out += [Tensor("attention", "attn_k", i, k_rows, h)] if k_rows else []
    out += [Tensor("attention", "attn_v", i, v_rows, h)] if v_rows else []
    if s.q_bias:
        out.append(_vec("attention", "bias", i, q_rows))
    if s.kv_bias and k_rows + v_rows:
        out.append(_vec("attention", "bias", i, k_rows + v_rows))
    if s.o_bias:
        out.append(_vec("attention", "bias", i, h))
    if s.qk_norm:
        q_norm = nh * hd if s.qk_norm_full else hd
        k_norm = (a["num_kv_heads"] * hd if s.qk_norm_full else hd) * own_kv
        out.append(_vec("norms", "norm", i, q_norm + k_norm))
    if a["sinks"]:
        out.append(_vec("attention", "sinks", i, nh))
    if s.attn_gate_per_head:
        out.append(Tensor("attention", "attn_q", i, nh, h))
    return out


def _linear_attention(s: ModelSpec, i: int) -> list[Tensor]:
    """Gated DeltaNet (Qwen3-Next, Qwen3.5) or Kimi Delta Attention (Kimi Linear)."""
    d, h = s.ssm_dims, s.hidden_size
    if d.get("shortconv"):  # LFM2 (Lfm2ShortConv): in_proj h -> 3h (B, C, x), a depthwise conv, out_proj h -> h
        out = [Tensor("ssm", "ssm_in", i, 3 * h, h), _vec("ssm", "ssm_conv", i, h * d["conv_kernel"]),
               Tensor("ssm", "ssm_out", i, h, h)]
        return out + ([_vec("ssm", "bias", i, 3 * h + h + h)] if d["conv_bias"] else [])
    kd, vd = d["num_k_heads"] * d["k_head_dim"], d["num_v_heads"] * d["v_head_dim"]
    conv = 2 * kd + vd
    if d.get("kda"):  # q/k/v, conv, low-rank forget and output gates, beta per head, gated norm, o
        hd, heads = d["k_head_dim"], d["num_k_heads"]
        return [Tensor("ssm", "ssm_in", i, conv, h), _vec("ssm", "ssm_conv", i, conv * d["conv_kernel"]),
                Tensor("ssm", "ssm_in", i, 2 * hd + heads, h), Tensor("ssm", "ssm_in", i, 2 * kd, hd),
                _vec("ssm", "ssm_param", i, kd + heads), _vec("norms", "norm", i, hd), Tensor("ssm", "ssm_out", i, h, vd)]
    return [Tensor("ssm", "ssm_in", i, 2 * kd + 2 * vd, h), Tensor("ssm", "ssm_in", i, 2 * d["num_v_heads"], h),
            _vec("ssm", "ssm_conv", i, conv * d["conv_kernel"]), _vec("ssm", "ssm_param", i, 2 * d["num_v_heads"]),
            _vec("norms", "norm", i, d["v_head_dim"]), Tensor("ssm", "ssm_out", i, h, vd)]


def _ssm(s: ModelSpec, i: int) -> list[Tensor]:
    if s.layer_kinds[i] == LINEAR:
        return _linear_attention(s, i)
    d, h = s.ssm_dims, s.hidden_size
    inner, ds, dc = d["d_inner"], d["d_state"], d["d_conv"]
    pb = d["proj_bias"]
    if d["version"] == 1:  # Jamba's Mamba-1 mixer
        r = d["dt_rank"]
        out = [Tensor("ssm", "ssm_in", i, 2 * inner, h), _vec("ssm", "ssm_conv", i, inner * dc + inner * d["conv_bias"]),
               Tensor("ssm", "ssm_x", i, r + 2 * ds, inner), Tensor("ssm", "ssm_dt", i, inner, r),
               _vec("ssm", "ssm_param", i, inner + inner * ds + inner),  # dt_proj bias, A_log, D
               Tensor("ssm", "ssm_out", i, h, inner), _vec("norms", "norm", i, r + 2 * ds)]
        if pb:
            out.append(_vec("ssm", "bias", i, 2 * inner + h))
        return out
    heads, groups = d["n_heads"], d["n_groups"]  # Mamba-2 mixer (Granite-4.0-H, Bamba, Nemotron-H)
    conv = inner + 2 * groups * ds
    out = [Tensor("ssm", "ssm_in", i, inner + conv + heads, h),
           _vec("ssm", "ssm_conv", i, conv * dc + conv * d["conv_bias"]),
           _vec("ssm", "ssm_param", i, 3 * heads), _vec("norms", "norm", i, inner), Tensor("ssm", "ssm_out", i, h, inner)]
    if pb:
        out.append(_vec("ssm", "bias", i, inner + conv + heads + h))
    return out


def _mlp(component: str, prefix: str, i: int, h: int, inter: int, gated: bool, bias: bool,
         count: int = 1, active: int = 1) -> list[Tensor]:
    out = [Tensor(component, f"{prefix}_up", i, inter, h, count, active),
           Tensor(component, f"{prefix}_down", i, h, inter, count, active)]
    if gated:
        out.append(Tensor(component, f"{prefix}_gate", i, inter, h, count, active))
    if bias:
        out.append(_vec(component, "bias", i, inter * (2 if gated else 1) + h, count, active))
    return out


def _experts(s: ModelSpec, i: int, h: int) -> list[Tensor]:
    e, k = s.num_experts, s.experts_per_token
    width = s.moe_latent_size or h  # latent MoE (Nemotron-3): experts in a narrower space, projected in and out
    out = _mlp("experts", "expert", i, width, s.moe_intermediate_size, s.mlp_gated, s.expert_bias, e, k)
    out.append(Tensor("router", "router", i, e, h))
    if s.moe_latent_size:
        out += [Tensor("experts", "mlp_up", i, width, h), Tensor("experts", "mlp_down", i, h, width)]
    if s.router_bias:
        out.append(_vec("router", "bias", i, e))
    if s.router_score_bias:
        out.append(_vec("router", "bias", i, e))  # e_score_correction_bias (a buffer in transformers)
    if s.router_scale:
        out.append(_vec("router", "bias", i, h + e))  # Gemma 4: router.scale, router.per_expert_scale
    if s.moe_norms:
        out.append(_vec("norms", "norm", i, s.moe_norms * h))
    if s.shared_expert_intermediate_size:
        out += _mlp("experts", "mlp", i, h, s.shared_expert_intermediate_size, s.mlp_gated, s.shared_expert_bias)
        if s.shared_expert_gate:
            out.append(Tensor("router", "router", i, 1, h))
    return out


def _ffn(s: ModelSpec, i: int) -> list[Tensor]:
    h, out = s.hidden_size, []
    if s.has_dense_mlp(i) and s.intermediate_size:
        wide = 2 if s.double_wide_shared_mlp and s.kv_shared(i) else 1
        out += _mlp("mlp", "mlp", i, h, s.intermediate_size * wide, s.mlp_gated, s.mlp_bias)
    if s.moe_layers[i]:
        out += _experts(s, i, h)
    return out


def _layer(s: ModelSpec, i: int) -> list[Tensor]:
    kind = s.layer_kinds[i]
    mixer = _ssm(s, i) if kind in STATE_KINDS else [] if kind == NONE else _attention(s, i)
    norm_len = s.hidden_size * (2 if s.norm_bias else 1)
    out = mixer + _ffn(s, i) + [_vec("norms", "norm", i, norm_len * s.norms_per_layer)]
    if s.per_layer_input_size:  # Gemma 3n/4: gate the layer's own input embedding in, project back, norm
        p = s.per_layer_input_size
        out += [Tensor("mlp", "mlp_up", i, p, s.hidden_size), Tensor("mlp", "mlp_down", i, s.hidden_size, p),
                _vec("norms", "norm", i, s.hidden_size)]
    return out


def _outside(spec: ModelSpec) -> list[Tensor]:
    """Per-layer input embeddings (Gemma 3n/4), the vision tower and projector."""
    out: list[Tensor] = []
    if spec.per_layer_input_size:
        width = spec.num_layers * spec.per_layer_input_size
        out += [Tensor("embeddings", "embed_per_layer", -1, spec.per_layer_vocab_size, width),
                Tensor("embeddings", "embed_proj", -1, width, spec.hidden_size),
                _vec("norms", "norm", -1, spec.per_layer_input_size)]
    for role, rows, cols, count in spec.vision_tensors:
        out.append(Tensor("vision", role, -1, rows, cols, count, 0, matrix=cols > 1))
    return out


@lru_cache(maxsize=256)
def inventory(spec: ModelSpec) -> pd.DataFrame:
    """Every weight tensor of ``spec`` as a tidy frame (one row per tensor kind per layer)."""
    h, v = spec.hidden_size, spec.vocab_size
    emb_dim = spec.word_embed_proj_dim or h
    rows = [Tensor("embeddings", "embed", -1, v, emb_dim)]
    if spec.learned_positions:
        rows.append(Tensor("embeddings", "pos_embed", -1, spec.learned_positions, h))
    if spec.word_embed_proj_dim:  # OPT-350m projects 512 <-> 1024
        rows += [Tensor("embeddings", "embed_proj", -1, h, emb_dim), Tensor("embeddings", "embed_proj", -1, emb_dim, h)]
    for i in range(spec.num_layers):
        rows += _layer(spec, i)
    if spec.final_norm:
        rows.append(_vec("norms", "norm", -1, h * (2 if spec.norm_bias else 1)))
    if not spec.tie_word_embeddings:
        rows.append(Tensor("lm_head", "lm_head", -1, v, emb_dim))
    if spec.lm_head_bias:
        rows.append(_vec("lm_head", "bias", -1, v))
    rows += _outside(spec)
    df = pd.DataFrame([r.__dict__ for r in rows])
    df["params"] = df["rows"].astype(np.int64) * df["cols"] * df["count"]
    df["active_params"] = df["rows"].astype(np.int64) * df["cols"] * df["active"]
    return df


def param_breakdown(spec: ModelSpec) -> dict[str, int]:
    """Parameters per component; the values add up to ``params_total``."""
    per = inventory(spec).groupby("component")["params"].sum()
    return {c: int(per.get(c, 0)) for c in COMPONENTS}


def params_total(spec: ModelSpec) -> int:
    return int(inventory(spec)["params"].sum())


def params_active(spec: ModelSpec) -> int:
    """Parameters one token touches: every dense tensor plus k of E routed experts."""
    return int(inventory(spec)["active_params"].sum())


def matmul_params_per_token(spec: ModelSpec) -> int:
    """Weights multiplied per token (2 FLOPs each): active matrices except the embedding lookup."""
    inv = inventory(spec)
    used = inv["matrix"] & ~inv["role"].isin(["embed", "pos_embed"])
    n = int(inv.loc[used, "active_params"].sum())
    if spec.tie_word_embeddings:  # the tied embedding doubles as the lm_head matmul
        n += spec.vocab_size * (spec.word_embed_proj_dim or spec.hidden_size)
    return n

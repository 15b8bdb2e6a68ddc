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

from .spec import LINEAR, MAMBA, MLA, ModelSpec

COMPONENTS = ("embeddings", "attention", "mlp", "experts", "router", "ssm", "norms", "lm_head")


@dataclass(frozen=True)
class Tensor:
    component: str   # one of COMPONENTS
    role: str        # what a weight format keys on (attn_v, mlp_down, expert_up, norm, ...)
    layer: int       # -1 for tensors outside the layer stack
    rows: int        # output features (1-D tensors: their length)
    cols: int        # input features (1 for 1-D tensors)
    count: int = 1   # experts hold ``count`` copies
    active: int = 1  # copies one token touches (experts_per_token for routed experts)
    matrix: bool = True  # 2-D weights a format may quantize; 1-D (norms, biases) stay high precision


def _vec(component: str, role: str, layer: int, n: int, count: int = 1, active: int = 1) -> Tensor:
    return Tensor(component, role, layer, n, 1, count, active, matrix=False)


def _attention(s: ModelSpec, i: int) -> list[Tensor]:
    h, nh, hd = s.hidden_size, s.num_heads, s.head_dim
    if s.layer_kinds[i] == MLA:
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
        return out
    q_rows = nh * hd * (2 if s.attn_output_gate else 1)
    kv_rows = s.num_kv_heads * hd
    out = [Tensor("attention", "attn_q", i, q_rows, h), Tensor("attention", "attn_k", i, kv_rows, h),
           Tensor("attention", "attn_v", i, kv_rows, h), Tensor("attention", "attn_o", i, h, nh * hd)]
    if s.q_bias:
        out.append(_vec("attention", "bias", i, q_rows))
    if s.kv_bias:
        out.append(_vec("attention", "bias", i, 2 * kv_rows))
    if s.o_bias:
        out.append(_vec("attention", "bias", i, h))
    if s.qk_norm:
        out.append(_vec("norms", "norm", i, 2 * hd))
    if s.attention_sinks:
        out.append(_vec("attention", "sinks", i, nh))
    return out


def _ssm(s: ModelSpec, i: int) -> list[Tensor]:
    d, h = s.ssm_dims, s.hidden_size
    if s.layer_kinds[i] == LINEAR:  # Qwen3-Next gated DeltaNet
        kd, vd = d["num_k_heads"] * d["k_head_dim"], d["num_v_heads"] * d["v_head_dim"]
        conv = 2 * kd + vd
        return [Tensor("ssm", "ssm_in", i, 2 * kd + 2 * vd, h), Tensor("ssm", "ssm_in", i, 2 * d["num_v_heads"], h),
                _vec("ssm", "ssm_conv", i, conv * d["conv_kernel"]), _vec("ssm", "ssm_param", i, 2 * d["num_v_heads"]),
                _vec("norms", "norm", i, d["v_head_dim"]), Tensor("ssm", "ssm_out", i, h, vd)]
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
    heads, groups = d["n_heads"], d["n_groups"]  # Mamba-2 mixer (Granite-4.0-H, Bamba)
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


def _ffn(s: ModelSpec, i: int) -> list[Tensor]:
    h = s.hidden_size
    if not s.moe_layers[i]:
        return _mlp("mlp", "mlp", i, h, s.intermediate_size, s.mlp_gated, s.mlp_bias)
    e, k = s.num_experts, s.experts_per_token
    out = _mlp("experts", "expert", i, h, s.moe_intermediate_size, s.mlp_gated, s.expert_bias, e, k)
    out.append(Tensor("router", "router", i, e, h))
    if s.router_bias:
        out.append(_vec("router", "bias", i, e))
    if s.model_type == "deepseek_v3":
        out.append(_vec("router", "bias", i, e))  # e_score_correction_bias
    if s.shared_expert_intermediate_size:
        out += _mlp("experts", "mlp", i, h, s.shared_expert_intermediate_size, s.mlp_gated, False)
        if s.shared_expert_gate:
            out.append(Tensor("router", "router", i, 1, h))
    return out


def _layer(s: ModelSpec, i: int) -> list[Tensor]:
    mixer = _ssm(s, i) if s.layer_kinds[i] in (LINEAR, MAMBA) else _attention(s, i)
    norm_len = s.hidden_size * (2 if s.norm_bias else 1)
    return mixer + _ffn(s, i) + [_vec("norms", "norm", i, norm_len * s.norms_per_layer)]


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

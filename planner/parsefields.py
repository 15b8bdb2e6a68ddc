"""The parts of a ModelSpec read after its layer pattern: experts, MLA, recurrent states, embeddings tying,
quantization, dtype and rope. Every value through configschema.Section (names and defaults of the
config's class, validated by configread.ConfigReader).
"""

from __future__ import annotations

from typing import Any

from .configschema import Opened, Section
from .spec import (
    LINEAR,
    MAMBA,
    MAX_EXPERTS,
    MAX_HEAD_DIM,
    MAX_HEADS,
    MAX_HIDDEN,
    MAX_RANK,
    MAX_WIDTH,
    _encoded,
)
from .traits import trait_flag

# ---- mixture of experts -------------------------------------------------------------------------
_EXPERT_NAMES = ("num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts")


def num_experts(t: Section) -> int:
    names = [k for name in _EXPERT_NAMES for k in t.keys(name)]
    key = t.found(*dict.fromkeys(names))
    if key is None:
        d = next((t.class_default(n) for n in _EXPERT_NAMES if isinstance(t.class_default(n), int)), 0)
        if not d or (t.traits.get("moe_flag") and not t.switch(t.traits["moe_flag"], False)):
            return 0
        return t.size(next(n for n in _EXPERT_NAMES if t.class_default(n) == d), "expert count", low=0,
                      high=MAX_EXPERTS)
    if t.traits.get("moe_flag") and not t.switch(t.traits["moe_flag"], False):
        return 0
    return t.int("expert count", key, low=0, high=MAX_EXPERTS)


def moe_fields(t: Section, num_experts: int, inter: int, hidden: int) -> dict[str, Any]:
    if not num_experts:
        return {}
    moe_i = t.size("moe_intermediate_size", "expert width", default=0, low=0, high=MAX_WIDTH) or inter
    n_shared = t.size("n_shared_experts", "shared expert count", default=0, low=0, high=MAX_EXPERTS)
    shared_i = t.size("shared_expert_intermediate_size", "shared expert width", default=0, low=0, high=MAX_WIDTH)
    if t.traits.get("shared_expert_width") == "moe_intermediate_size" and not shared_i:
        shared_i = moe_i  # Llama 4: one shared expert as wide as a routed one
    if n_shared and not shared_i:
        shared_i = n_shared * moe_i
    tr = t.traits
    k = t.size("num_experts_per_tok", "experts per token", high=num_experts)
    return dict(num_experts=num_experts, moe_intermediate_size=moe_i, shared_expert_intermediate_size=shared_i,
                experts_per_token=k, shared_expert_gate=bool(tr.get("shared_expert_gate")),
                router_bias=bool(tr.get("router_bias")), expert_bias=bool(tr.get("expert_bias")),
                router_score_bias=trait_flag(t, tr.get("score_bias", False)))


# ---- MLA and recurrent layers -------------------------------------------------------------------
def mla(t: Section, d: dict) -> dict[str, int]:
    """MLA decompresses to one K/V per query head; head_dim is nope + rope."""
    rope = t.size("qk_rope_head_dim", "MLA rope dim", high=MAX_HEAD_DIM)
    nope = t.size("qk_nope_head_dim", "MLA nope dim", high=MAX_HEAD_DIM)
    v = t.value("v_head_dim")
    if v is None and "head_dim" in d:
        t.notes.append(f"{t.field('v_head_dim')} absent: taken as qk_nope_head_dim ({nope}), as DeepSeek and MiniCPM3")
    return {"q_lora_rank": t.size("q_lora_rank", "MLA query rank", default=0, low=0, high=MAX_RANK),
            "kv_lora_rank": t.size("kv_lora_rank", "MLA latent", high=MAX_RANK),
            "qk_rope_head_dim": rope, "qk_nope_head_dim": nope, "head_dim": rope + nope,
            "v_head_dim": t.size("v_head_dim", "MLA value dim", high=MAX_HEAD_DIM) if v is not None else nope}


def ssm(t: Section, hidden: int, kinds: tuple[str, ...]) -> tuple[tuple[str, int], ...]:
    if LINEAR in kinds:
        return _linear_dims(t, hidden)
    if MAMBA not in kinds:
        return ()
    version = 1 if t.traits.get("recurrent") == "mamba1" else 2
    expand = t.size("mamba_expand", "mamba expansion", default=2, high=64)
    bias = (("conv_bias", int(t.switch("mamba_conv_bias", True))), ("proj_bias", int(t.switch("mamba_proj_bias", False))))
    if version == 1:
        state = t.size("mamba_d_state", "mamba d_state", default=16, high=MAX_HEAD_DIM)
        return (("version", 1), ("d_inner", expand * hidden), ("d_state", state),
                ("d_conv", t.size("mamba_d_conv", "mamba conv", default=4, high=1024)),
                ("dt_rank", _dt_rank(t, hidden)), *bias)
    heads = t.size("mamba_n_heads", "mamba heads", high=MAX_HEADS)
    if t.value("mamba_d_head") == "auto":  # GraniteMoeHybrid: d_inner = expand x hidden, split over the heads
        head_dim = max(1, expand * hidden // heads)
    else:
        head_dim = t.size("mamba_d_head", "mamba head dim", high=MAX_HEAD_DIM)
    return (("version", 2), ("d_inner", heads * head_dim), ("n_heads", heads), ("head_dim", head_dim),
            ("n_groups", t.size("mamba_n_groups", "mamba groups", default=1, high=heads)),
            ("d_state", t.size("mamba_d_state", "mamba d_state", default=128, high=MAX_HEAD_DIM)),
            ("d_conv", t.size("mamba_d_conv", "mamba conv", default=4, high=1024)), *bias)


def _linear_dims(t: Section, hidden: int) -> tuple[tuple[str, int], ...]:
    """Gated DeltaNet (Qwen3-Next, Qwen3.5) and Kimi Delta Attention: heads and head dims of q/k and v; LFM2's
    short convolutions: a depthwise causal conv of conv_L_cache taps over the hidden size, no heads."""
    if t.traits.get("recurrent") == "shortconv":
        return (("conv_dim", hidden), ("conv_kernel", t.size("conv_L_cache", "short conv kernel", default=3, high=1024)),
                ("conv_bias", int(t.switch("conv_bias", False))), ("shortconv", 1))
    if t.traits.get("recurrent") == "kda":
        sec = t.sub("linear_attn_config") or t
        heads = sec.size("num_heads", "KDA heads", high=MAX_HEADS)
        hd = sec.size("head_dim", "KDA head dim", high=MAX_HEAD_DIM)
        conv = sec.size("short_conv_kernel_size", "KDA conv kernel", default=4, high=1024)
        return (("num_k_heads", heads), ("num_v_heads", heads), ("k_head_dim", hd), ("v_head_dim", hd),
                ("conv_kernel", conv), ("kda", 1))
    return (("num_k_heads", t.size("linear_num_key_heads", "linear heads", high=MAX_HEADS)),
            ("num_v_heads", t.size("linear_num_value_heads", "linear heads", high=MAX_HEADS)),
            ("k_head_dim", t.size("linear_key_head_dim", "linear head dim", high=MAX_HEAD_DIM)),
            ("v_head_dim", t.size("linear_value_head_dim", "linear head dim", high=MAX_HEAD_DIM)),
            ("conv_kernel", t.size("linear_conv_kernel_dim", "conv kernel", default=4, high=1024)))


def _dt_rank(t: Section, hidden: int) -> int:
    """Jamba's mamba_dt_rank: a number, or "auto" (transformers: ceil(hidden_size / 16))."""
    if t.value("mamba_dt_rank") == "auto":
        return -(-hidden // 16)
    return t.size("mamba_dt_rank", "mamba dt rank", default=-(-hidden // 16), high=MAX_HIDDEN)


# ---- embeddings, dtype, quantization ------------------------------------------------------------
def tied(op: Opened) -> bool:
    """tie_word_embeddings of the language model, else of the outer config, else the class default (noted)."""
    for s in (op.text, op.outer):
        if s.has("tie_word_embeddings"):
            return s.flag("tie_word_embeddings", False)
    for s in (op.outer, op.text):
        d = s.class_default("tie_word_embeddings")
        if isinstance(d, bool):
            op.notes.append(f"tie_word_embeddings absent: {s.entry['class']} default {d}")
            return d
    op.notes.append("tie_word_embeddings absent: assumed false (untied lm_head)")
    return False


_QUANT_INTS = {"bits": (1, 16), "w_bit": (1, 16), "group_size": (-1, 1 << 20), "q_group_size": (-1, 1 << 20)}
_QUANT_FLAGS = ("load_in_8bit", "load_in_4bit", "bnb_4bit_use_double_quant")
_QUANT_TEXTS = ("quant_method", "bnb_4bit_quant_type")


def quantization(r: Section) -> tuple[tuple[str, Any], ...]:
    """The quantization_config keys the weight formats read (formats.format_from_quantization_config)."""
    q = r.section("quantization_config")
    if q is None:
        return ()
    checked = dict(q.cfg)
    for k, (low, high) in _QUANT_INTS.items():
        if q.has(k):
            checked[k] = q.int(f"quantization {k}", k, low=low, high=high)
    checked.update({k: q.flag(k, False) for k in _QUANT_FLAGS if q.has(k)})
    checked.update({k: q.text(k) for k in _QUANT_TEXTS if q.has(k)})
    if q.has("weight_block_size"):
        checked["weight_block_size"] = list(q.ints("weight_block_size", "block size", 1, 1 << 20))
    return tuple(sorted((str(k), _encoded(v)) for k, v in checked.items() if v is not None))


_DTYPES = {"bfloat16": "bf16", "float16": "fp16", "half": "fp16", "float32": "fp32", "float": "fp32",
           "bf16": "bf16", "fp16": "fp16", "fp32": "fp32"}


def engine_fields(t: Section, op: Opened, head_dim: int, fam: dict) -> dict[str, Any]:
    """The checkpoint dtype, rope scaling and rotary width (what vLLM/SGLang derive defaults from)."""
    def first(d: dict) -> Any:
        return next((d[k] for k in ("torch_dtype", "dtype") if isinstance(d.get(k), str)), None)

    text = str(first(t.cfg) or first(op.outer.cfg) or "")
    dtype = _DTYPES.get(text.lower().replace("torch.", ""), "")
    if not dtype:
        dtype = "bf16"
        op.notes.append("torch_dtype absent or unknown: the checkpoint is taken as bf16")
    cfg = t.cfg
    rs = cfg.get("rope_scaling") or cfg.get("rope_parameters") or {}
    rope: tuple[tuple[str, Any], ...] = ()
    if isinstance(rs, dict) and rs and isinstance(rs.get("full_attention", rs), dict):
        rs = rs.get("full_attention", rs)  # per-kind rope parameters (Gemma 4): the global layers'
        kind = str(rs.get("rope_type", rs.get("type", "default")))[:40]
        factor = rs.get("factor", 1.0)
        orig = rs.get("original_max_position_embeddings", 0)
        if isinstance(factor, int | float) and isinstance(orig, int | float) and 0 < factor < 1e6 and 0 <= orig < 1e9:
            rope = (("type", kind), ("factor", float(factor)), ("original_max_position_embeddings", int(orig)))
    partial = cfg.get("partial_rotary_factor", rs.get("partial_rotary_factor", 1.0) if isinstance(rs, dict) else 1.0)
    partial = float(partial) if isinstance(partial, int | float) and 0 < partial <= 1 else 1.0
    rotary = 0 if fam.get("learned_positions") or cfg.get("alibi") else int(head_dim * partial)
    return {"dtype": dtype, "rope_scaling": rope, "rotary_dim": rotary}

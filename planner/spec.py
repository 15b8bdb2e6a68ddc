"""ModelSpec: one frozen, validated description of a causal LM, parsed from its config.json.

The parser knows the key aliases of the families bundled in ``profiles/models`` (Llama,
Mistral, Mixtral, Qwen2/3, Qwen3-MoE, Qwen3-Next, Gemma 2/3, Phi-3, Falcon, GPT-2, OPT,
DeepSeek-V2/V3, gpt-oss, Jamba, Granite-4.0-H). Defaults for keys a config omits are the
defaults of the matching transformers configuration class (transformers 5.23,
``models/<family>/configuration_<family>.py``); every default used is listed in
``assumptions`` so that nothing is silent. A given ``head_dim`` always wins over
``hidden_size // num_attention_heads`` (Qwen3, Gemma: they differ).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from .errors import PlannerInputError

# Layer kinds. A layer's kind decides what its cache holds per token (or per sequence).
FULL, SLIDING, CHUNKED, MLA, LINEAR, MAMBA = "full", "sliding", "chunked", "mla", "linear", "mamba"
ATTENTION_KINDS = (FULL, SLIDING, CHUNKED, MLA)

# tie_word_embeddings defaults of the transformers 5.23 configuration classes.
_TIE_DEFAULT = {"gemma2": True, "gemma3": True, "gemma3_text": True, "falcon": True, "gpt2": True, "opt": True}

_MAX_DIM = 10**7  # any size above this is a typo, not a model


def _get(cfg: dict, *keys: str, default: Any = None) -> Any:
    for k in keys:
        if k in cfg and cfg[k] is not None:
            return cfg[k]
    return default


def _int(cfg: dict, field_name: str, *keys: str, default: Any = ..., allow_zero: bool = False) -> int:
    value = _get(cfg, *keys)
    if value is None:
        if default is ...:
            raise PlannerInputError(
                f"config.json:{keys[0]}",
                f"missing (looked for {', '.join(keys)})",
                f"add '{keys[0]}' to the config; it is needed for {field_name}",
            )
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise PlannerInputError(f"config.json:{keys[0]}", f"must be a whole number, got {value!r}")
    value = int(value)
    if value < (0 if allow_zero else 1) or value > _MAX_DIM:
        raise PlannerInputError(
            f"config.json:{keys[0]}", f"{value} is not a possible {field_name}",
            f"give a value between {0 if allow_zero else 1} and {_MAX_DIM:,}",
        )
    return value


@dataclass(frozen=True)
class ModelSpec:
    """Everything the planner needs about a model's shapes. Sizes are counts, not bytes."""

    name: str
    model_type: str
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    v_head_dim: int
    intermediate_size: int
    layer_kinds: tuple[str, ...]
    moe_layers: tuple[bool, ...]
    sliding_window: int = 0
    max_position_embeddings: int = 0
    tie_word_embeddings: bool = False
    # attention details
    q_bias: bool = False
    kv_bias: bool = False
    o_bias: bool = False
    qk_norm: bool = False
    attn_output_gate: bool = False
    attention_sinks: bool = False
    # MLP and norms
    mlp_gated: bool = True
    mlp_bias: bool = False
    norm_bias: bool = False
    norms_per_layer: int = 2
    final_norm: bool = True
    learned_positions: int = 0
    word_embed_proj_dim: int = 0
    # mixture of experts
    num_experts: int = 0
    experts_per_token: int = 0
    moe_intermediate_size: int = 0
    shared_expert_intermediate_size: int = 0
    shared_expert_gate: bool = False
    router_bias: bool = False
    expert_bias: bool = False
    # multi-head latent attention (DeepSeek)
    q_lora_rank: int = 0
    kv_lora_rank: int = 0
    qk_rope_head_dim: int = 0
    qk_nope_head_dim: int = 0
    # linear-attention / SSM layers: named shapes, see params.py and kv.py
    ssm: tuple[tuple[str, int], ...] = ()
    quantization_config: tuple[tuple[str, Any], ...] = ()
    # what serving engines read besides the shapes (planner/startup.py)
    dtype: str = "bf16"                  # torch_dtype / dtype of the checkpoint
    rope_scaling: tuple[tuple[str, Any], ...] = ()   # type, factor, original_max_position_embeddings
    rotary_dim: int = 0                  # rotary dimensions per head (0: none, e.g. learned positions)
    assumptions: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self):
        if len(self.layer_kinds) != self.num_layers or len(self.moe_layers) != self.num_layers:
            raise PlannerInputError("layer_types", "needs one entry per layer",
                                    f"give exactly num_hidden_layers={self.num_layers} entries")
        if self.num_heads % self.num_kv_heads:
            raise PlannerInputError(
                "config.json:num_key_value_heads",
                f"{self.num_heads} attention heads cannot be split into {self.num_kv_heads} KV groups",
                "num_attention_heads must be a multiple of num_key_value_heads",
            )
        if any(self.moe_layers) and not (0 < self.experts_per_token <= self.num_experts):
            raise PlannerInputError("config.json:num_experts_per_tok",
                                    f"{self.experts_per_token} experts per token of {self.num_experts}",
                                    "experts per token must be between 1 and the number of experts")
        if SLIDING in self.layer_kinds and self.sliding_window < 1:
            raise PlannerInputError("config.json:sliding_window", "sliding layers need a window",
                                    "set sliding_window to a positive number of tokens")

    # ---- convenience --------------------------------------------------------------------
    @property
    def ssm_dims(self) -> dict[str, int]:
        return dict(self.ssm)

    @property
    def quant(self) -> dict[str, Any]:
        return {k: json.loads(v) if isinstance(v, str) and v[:1] in "[{" else v for k, v in self.quantization_config}

    @property
    def is_moe(self) -> bool:
        return any(self.moe_layers)

    @property
    def group_size(self) -> int:
        """Query heads per KV head: 1 is MHA, num_heads is MQA, anything between is GQA."""
        return self.num_heads // self.num_kv_heads

    @property
    def attention_label(self) -> str:
        if MLA in self.layer_kinds:
            return "MLA"
        if self.num_kv_heads == self.num_heads:
            return "MHA"
        if self.num_kv_heads == 1:
            return "MQA"
        return f"GQA ({self.num_kv_heads} KV heads)"

    def kind_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for k in self.layer_kinds:
            out[k] = out.get(k, 0) + 1
        return out

    def with_kv_heads(self, kv_heads: int) -> ModelSpec:
        """What-if: the same model with its attention regrouped to ``kv_heads`` KV heads.

        kv_heads=1 is MQA, kv_heads=num_heads is MHA. Such a model needs uptraining
        (Ainslie et al. 2023, GQA paper): the seed's MQA/GQA trade-off.
        """
        if MLA in self.layer_kinds:
            raise PlannerInputError("kv_heads", "an MLA model has no KV heads to regroup",
                                    "pick a model with MHA/GQA/MQA attention")
        if kv_heads < 1 or self.num_heads % kv_heads:
            divisors = [d for d in range(1, self.num_heads + 1) if self.num_heads % d == 0]
            raise PlannerInputError("kv_heads", f"{kv_heads} does not divide {self.num_heads} query heads",
                                    f"choose one of {divisors}")
        label = "MQA" if kv_heads == 1 else "MHA" if kv_heads == self.num_heads else f"GQA-{kv_heads}"
        return replace(self, num_kv_heads=kv_heads, name=f"{self.name} [{label} what-if]",
                       assumptions=self.assumptions + (f"what-if: attention regrouped to {kv_heads} KV heads "
                                                       "(needs uptraining, not a real checkpoint)",))

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def from_json_text(cls, text: str | bytes, name: str = "uploaded") -> ModelSpec:
        try:
            cfg = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise PlannerInputError("config.json", f"is not valid JSON ({e})", "upload the model's config.json file") from None
        return cls.from_hf_config(cfg, name=name)

    @classmethod
    def from_hf_config(cls, cfg: Any, name: str = "model") -> ModelSpec:
        if not isinstance(cfg, dict):
            raise PlannerInputError("config.json", "must be a JSON object", "upload the model's config.json file")
        return _parse(cfg, name)


# ---------------------------------------------------------------------------------------
def _flatten(cfg: dict, notes: list[str]) -> dict:
    """Multimodal configs keep the language model under text_config (Gemma 3, Llava...)."""
    if "text_config" in cfg and isinstance(cfg["text_config"], dict) and _get(cfg, "num_hidden_layers", "n_layer") is None:
        merged = dict(cfg["text_config"])
        for k in ("quantization_config", "tie_word_embeddings"):
            if k in cfg and k not in merged:
                merged[k] = cfg[k]
        merged.setdefault("model_type", cfg.get("model_type", "") + "_text")
        notes.append("multimodal config: the language model under text_config is planned; the vision tower is not counted")
        return merged
    return cfg


def _layer_kinds(cfg: dict, mt: str, n: int, window: int, is_mla: bool, notes: list[str]) -> tuple[str, ...]:
    full = MLA if is_mla else FULL
    types = cfg.get("layer_types")
    if isinstance(types, list) and types:
        mapping = {"full_attention": full, "attention": full, "sliding_attention": SLIDING,
                   "chunked_attention": CHUNKED, "linear_attention": LINEAR, "mamba": MAMBA}
        bad = sorted({str(t) for t in types if t not in mapping})
        if bad:
            raise PlannerInputError("config.json:layer_types", f"unknown layer type(s) {bad}",
                                    f"use one of {sorted(mapping)}")
        if len(types) != n:
            raise PlannerInputError("config.json:layer_types", f"has {len(types)} entries for {n} layers",
                                    "give one entry per hidden layer")
        return tuple(mapping[t] for t in types)
    if mt == "gemma2":
        return tuple(SLIDING if i % 2 == 0 else FULL for i in range(n))
    if mt in ("gemma3", "gemma3_text"):
        pattern = int(_get(cfg, "sliding_window_pattern", default=6))
        notes.append(f"Gemma 3 layer pattern: every {pattern}th layer global, others sliding") if "sliding_window_pattern" not in cfg else None
        return tuple(FULL if (i + 1) % pattern == 0 else SLIDING for i in range(n))
    if mt == "qwen3_next":
        interval = int(_get(cfg, "full_attention_interval", default=4))
        return tuple(FULL if (i + 1) % interval == 0 else LINEAR for i in range(n))
    if mt == "jamba":
        period, offset = int(_get(cfg, "attn_layer_period", default=8)), int(_get(cfg, "attn_layer_offset", default=4))
        return tuple(FULL if i % period == offset else MAMBA for i in range(n))
    if mt.startswith("qwen"):
        # transformers Qwen2/Qwen3: sliding only when use_sliding_window, from max_window_layers on
        if cfg.get("use_sliding_window") and window:
            start = int(_get(cfg, "max_window_layers", default=n))
            return tuple(SLIDING if i >= start else FULL for i in range(n))
        return (full,) * n
    if window and mt in ("mistral", "mixtral", "phi3", "starcoder2", "phi"):
        return (SLIDING,) * n
    return (full,) * n


def _moe_layers(cfg: dict, mt: str, n: int, num_experts: int) -> tuple[bool, ...]:
    if num_experts == 0:
        return (False,) * n
    if mt in ("deepseek_v2", "deepseek_v3", "kimi_k2"):
        first = int(_get(cfg, "first_k_dense_replace", default=0))
        freq = int(_get(cfg, "moe_layer_freq", default=1))
        return tuple(i >= first and i % freq == 0 for i in range(n))
    if mt == "jamba":
        period, offset = int(_get(cfg, "expert_layer_period", default=2)), int(_get(cfg, "expert_layer_offset", default=1))
        return tuple(i % period == offset for i in range(n))
    if mt.startswith("qwen"):
        step = int(_get(cfg, "decoder_sparse_step", default=1))
        dense = set(_get(cfg, "mlp_only_layers", default=[]) or [])
        return tuple(i not in dense and (i + 1) % step == 0 for i in range(n))
    return (True,) * n


def _ssm_dims(cfg: dict, mt: str, hidden: int) -> tuple[tuple[str, int], ...]:
    if mt == "qwen3_next":
        return (("num_k_heads", _int(cfg, "linear heads", "linear_num_key_heads")),
                ("num_v_heads", _int(cfg, "linear heads", "linear_num_value_heads")),
                ("k_head_dim", _int(cfg, "linear head dim", "linear_key_head_dim")),
                ("v_head_dim", _int(cfg, "linear head dim", "linear_value_head_dim")),
                ("conv_kernel", _int(cfg, "conv kernel", "linear_conv_kernel_dim", default=4)))
    if mt == "jamba":
        inner = int(_get(cfg, "mamba_expand", default=2)) * hidden
        return (("version", 1), ("d_inner", inner), ("d_state", _int(cfg, "mamba d_state", "mamba_d_state", default=16)),
                ("d_conv", _int(cfg, "mamba conv", "mamba_d_conv", default=4)),
                ("dt_rank", int(_get(cfg, "mamba_dt_rank", default=-(-hidden // 16)))),
                ("conv_bias", int(bool(_get(cfg, "mamba_conv_bias", default=True)))),
                ("proj_bias", int(bool(_get(cfg, "mamba_proj_bias", default=False)))))
    if mt in ("granitemoehybrid", "bamba", "nemotron_h", "falcon_h1"):
        heads = _int(cfg, "mamba heads", "mamba_n_heads")
        head_dim = _int(cfg, "mamba head dim", "mamba_d_head")
        inner = int(_get(cfg, "mamba_expand", default=2)) * hidden
        if heads * head_dim != inner:
            inner = heads * head_dim
        return (("version", 2), ("d_inner", inner), ("n_heads", heads), ("head_dim", head_dim),
                ("n_groups", _int(cfg, "mamba groups", "mamba_n_groups", default=1)),
                ("d_state", _int(cfg, "mamba d_state", "mamba_d_state", default=128)),
                ("d_conv", _int(cfg, "mamba conv", "mamba_d_conv", default=4)),
                ("conv_bias", int(bool(_get(cfg, "mamba_conv_bias", default=True)))),
                ("proj_bias", int(bool(_get(cfg, "mamba_proj_bias", default=False)))))
    return ()


def _parse(raw: dict, name: str) -> ModelSpec:
    notes: list[str] = []
    cfg = _flatten(raw, notes)
    mt = str(cfg.get("model_type", "")).lower()
    archs = cfg.get("architectures") or []
    if archs and not any(str(a).endswith(("ForCausalLM", "LMHeadModel", "ForConditionalGeneration", "Model")) for a in archs):
        raise PlannerInputError("config.json:architectures", f"{archs} is not a causal language model",
                                "use the config of a decoder-only (causal LM) model")
    hidden = _int(cfg, "hidden size", "hidden_size", "n_embd", "d_model", "model_dim")
    n_layers = _int(cfg, "layer count", "num_hidden_layers", "n_layer", "num_layers", "n_layers")
    heads = _int(cfg, "attention heads", "num_attention_heads", "n_head", "num_heads")
    vocab = _int(cfg, "vocabulary size", "vocab_size", "padded_vocab_size")

    # KV heads: explicit, Falcon's multi_query flag, or MHA (listed as an assumption).
    if _get(cfg, "num_key_value_heads", "n_head_kv", "num_kv_heads") is not None:
        kv_heads = _int(cfg, "KV heads", "num_key_value_heads", "n_head_kv", "num_kv_heads")
    elif mt == "falcon" and cfg.get("multi_query", True) and not cfg.get("new_decoder_architecture"):
        kv_heads = 1
    else:
        kv_heads = heads
        if mt not in ("gpt2", "opt"):
            notes.append("num_key_value_heads absent: assumed equal to num_attention_heads (MHA)")
    if kv_heads > heads:
        raise PlannerInputError("config.json:num_key_value_heads", f"{kv_heads} KV heads exceed {heads} query heads",
                                "KV heads must be at most the attention heads")

    if _get(cfg, "head_dim") is not None:
        head_dim = _int(cfg, "head dimension", "head_dim")
    else:
        if hidden % heads:
            raise PlannerInputError("config.json:num_attention_heads", f"hidden size {hidden} is not divisible by {heads} heads",
                                    "give head_dim explicitly or fix the head count")
        head_dim = hidden // heads

    is_mla = _get(cfg, "kv_lora_rank") is not None
    window = int(_get(cfg, "sliding_window", default=0) or 0)
    if "sliding_window" in cfg and cfg["sliding_window"] is not None and (not isinstance(cfg["sliding_window"], int) or window < 0):
        raise PlannerInputError("config.json:sliding_window", f"must be a positive integer, got {cfg['sliding_window']!r}")
    kinds = _layer_kinds(cfg, mt, n_layers, window, is_mla, notes)
    if SLIDING in kinds and window < 1:
        raise PlannerInputError("config.json:sliding_window", "the layer pattern has sliding layers but no window",
                                "set sliding_window")

    num_experts = int(_get(cfg, "num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts", default=0) or 0)
    moe = _moe_layers(cfg, mt, n_layers, num_experts)

    default_inter = 4 * hidden if mt in ("gpt2", "falcon", "opt") else None
    inter_keys = ("intermediate_size", "ffn_dim", "n_inner", "ffn_hidden_size")
    if all(moe) and num_experts and _get(cfg, *inter_keys) is None:
        inter = 0  # every layer is MoE: no dense width needed
    else:
        inter = _int(cfg, "MLP width", *inter_keys, default=default_inter if default_inter else ...)

    tie_default = _TIE_DEFAULT.get(mt, False)
    tie = bool(cfg.get("tie_word_embeddings", tie_default))
    if "tie_word_embeddings" not in cfg:
        notes.append(f"tie_word_embeddings absent: transformers' default for {mt or 'this family'} is {tie_default}")

    fam = _family_flags(cfg, mt, hidden, notes)
    v_head = head_dim
    mla: dict[str, int] = {}
    if is_mla:
        mla = {"q_lora_rank": int(_get(cfg, "q_lora_rank", default=0) or 0),
               "kv_lora_rank": _int(cfg, "MLA latent", "kv_lora_rank"),
               "qk_rope_head_dim": _int(cfg, "MLA rope dim", "qk_rope_head_dim"),
               "qk_nope_head_dim": _int(cfg, "MLA nope dim", "qk_nope_head_dim")}
        v_head = _int(cfg, "MLA value dim", "v_head_dim")
        head_dim = mla["qk_rope_head_dim"] + mla["qk_nope_head_dim"]
        kv_heads = heads  # MLA decompresses to one K/V per query head

    moe_fields: dict[str, Any] = {}
    if num_experts:
        moe_fields = dict(
            num_experts=num_experts,
            experts_per_token=_int(cfg, "experts per token", "num_experts_per_tok", "num_experts_per_token",
                                   "moe_top_k", "top_k", "experts_per_token"),
            moe_intermediate_size=int(_get(cfg, "moe_intermediate_size", default=0) or 0) or inter,
        )
        n_shared = int(_get(cfg, "n_shared_experts", "num_shared_experts", default=0) or 0)
        shared_i = int(_get(cfg, "shared_expert_intermediate_size", "shared_intermediate_size", default=0) or 0)
        if n_shared and not shared_i:
            shared_i = n_shared * moe_fields["moe_intermediate_size"]
        moe_fields["shared_expert_intermediate_size"] = shared_i
        moe_fields["shared_expert_gate"] = mt in ("qwen2_moe", "qwen3_next")
        moe_fields["router_bias"] = mt == "gpt_oss"
        moe_fields["expert_bias"] = mt == "gpt_oss"

    quant = cfg.get("quantization_config") or {}
    if quant and not isinstance(quant, dict):
        raise PlannerInputError("config.json:quantization_config", "must be an object")
    qtuple = tuple(sorted((str(k), json.dumps(v) if isinstance(v, list | dict) else v) for k, v in quant.items()))

    return ModelSpec(
        name=name, model_type=mt, vocab_size=vocab, hidden_size=hidden, num_layers=n_layers,
        num_heads=heads, num_kv_heads=kv_heads, head_dim=head_dim, v_head_dim=v_head,
        intermediate_size=inter, layer_kinds=kinds, moe_layers=moe, sliding_window=window,
        max_position_embeddings=int(_get(cfg, "max_position_embeddings", "n_positions", "max_sequence_length", default=0) or 0),
        tie_word_embeddings=tie, ssm=_ssm_dims(cfg, mt, hidden), quantization_config=qtuple,
        **_engine_fields(cfg, raw, head_dim if not is_mla else mla["qk_rope_head_dim"], fam, notes),
        assumptions=tuple(n for n in notes if n), **fam, **mla, **moe_fields,
    )


_DTYPES = {"bfloat16": "bf16", "float16": "fp16", "half": "fp16", "float32": "fp32", "float": "fp32",
           "bf16": "bf16", "fp16": "fp16", "fp32": "fp32"}


def _engine_fields(cfg: dict, raw: dict, head_dim: int, fam: dict, notes: list[str]) -> dict[str, Any]:
    """The checkpoint dtype, rope scaling and rotary width (what vLLM/SGLang derive defaults from)."""
    text = str(_get(cfg, "torch_dtype", "dtype", default=_get(raw, "torch_dtype", "dtype", default="")) or "")
    dtype = _DTYPES.get(text.lower().replace("torch.", ""), "")
    if not dtype:
        dtype = "bf16"
        notes.append("torch_dtype absent or unknown: the checkpoint is taken as bf16")
    rs = cfg.get("rope_scaling") or cfg.get("rope_parameters") or {}
    rope: tuple[tuple[str, Any], ...] = ()
    if isinstance(rs, dict) and rs:
        kind = str(rs.get("rope_type", rs.get("type", "default")))
        factor = rs.get("factor", 1.0)
        orig = rs.get("original_max_position_embeddings", 0)
        if isinstance(factor, int | float) and isinstance(orig, int | float) and factor > 0:
            rope = (("type", kind), ("factor", float(factor)), ("original_max_position_embeddings", int(orig)))
    partial = cfg.get("partial_rotary_factor", 1.0)
    partial = float(partial) if isinstance(partial, int | float) and 0 < partial <= 1 else 1.0
    rotary = 0 if fam.get("learned_positions") or cfg.get("alibi") else int(head_dim * partial)
    return {"dtype": dtype, "rope_scaling": rope, "rotary_dim": rotary}


def _family_flags(cfg: dict, mt: str, hidden: int, notes: list[str]) -> dict[str, Any]:
    """Bias, norm and embedding details that change parameter counts, per family."""
    attn_bias = bool(cfg.get("attention_bias", False))
    flags: dict[str, Any] = dict(q_bias=attn_bias, kv_bias=attn_bias, o_bias=attn_bias,
                                 mlp_bias=bool(cfg.get("mlp_bias", False)))
    if mt == "gpt2":
        flags.update(q_bias=True, kv_bias=True, o_bias=True, mlp_bias=True, mlp_gated=False, norm_bias=True,
                     learned_positions=_int(cfg, "positions", "n_positions", "max_position_embeddings"))
    elif mt == "opt":
        bias = bool(cfg.get("enable_bias", True))
        flags.update(q_bias=bias, kv_bias=bias, o_bias=bias, mlp_bias=bias, mlp_gated=False, norm_bias=True,
                     learned_positions=_int(cfg, "positions", "max_position_embeddings") + 2,  # OPT offsets positions by 2
                     final_norm=bool(cfg.get("do_layer_norm_before", True)) and not cfg.get("_remove_final_layer_norm", False))
        proj = int(_get(cfg, "word_embed_proj_dim", default=hidden))
        flags["word_embed_proj_dim"] = proj if proj != hidden else 0
    elif mt == "falcon":
        bias = bool(cfg.get("bias", False))
        new_arch = bool(cfg.get("new_decoder_architecture", False))
        parallel = bool(cfg.get("parallel_attn", True))
        if new_arch:
            norms = int(_get(cfg, "num_ln_in_parallel_attn", default=2))
        else:
            norms = 1 if parallel else 2
        flags.update(q_bias=bias, kv_bias=bias, o_bias=bias, mlp_bias=bias, mlp_gated=False, norm_bias=True,
                     norms_per_layer=norms)
        if cfg.get("alibi"):
            notes.append("ALiBi positions: no rotary or learned position parameters")
    elif mt in ("qwen2", "qwen2_moe"):
        flags.update(q_bias=True, kv_bias=True, o_bias=False)
    elif mt in ("qwen3", "qwen3_moe"):
        flags.update(qk_norm=True)
    elif mt == "qwen3_next":
        flags.update(qk_norm=True, attn_output_gate=True)
    elif mt == "gemma2":
        flags.update(norms_per_layer=4)
    elif mt in ("gemma3", "gemma3_text"):
        flags.update(norms_per_layer=4, qk_norm=True)
    elif mt == "gpt_oss":
        flags.update(q_bias=True, kv_bias=True, o_bias=True, attention_sinks=True)
    elif mt in ("deepseek_v2", "deepseek_v3"):
        flags.update(q_bias=False, kv_bias=False, o_bias=False)
    elif mt == "phi3":
        flags.update(q_bias=False, kv_bias=False, o_bias=False)
    return flags

"""ModelSpec: one frozen, validated description of a causal LM, parsed from its config.json.

The parser knows the key aliases of the families bundled in ``profiles/models`` (Llama,
Mistral, Mixtral, Qwen2/3, Qwen3-MoE, Qwen3-Next, Gemma 2/3, Phi-3, Falcon, GPT-2, OPT,
DeepSeek-V2/V3, gpt-oss, Jamba, Granite-4.0-H). Defaults for keys a config omits are the
defaults of the matching transformers configuration class (transformers 5.23,
``models/<family>/configuration_<family>.py``); every default used is listed in
``assumptions`` so that nothing is silent. A given ``head_dim`` always wins over
``hidden_size // num_attention_heads`` (Qwen3, Gemma: they differ).

Every value is read through ``configread.ConfigReader``: the right type, finite, whole where it
must be, within the bounds below, or a PlannerInputError naming the key and the fix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from typing import Any

from .configread import ConfigReader, loads
from .errors import PlannerInputError

# Layer kinds. A layer's kind decides what its cache holds per token (or per sequence).
FULL, SLIDING, CHUNKED, MLA, LINEAR, MAMBA = "full", "sliding", "chunked", "mla", "linear", "mamba"
ATTENTION_KINDS = (FULL, SLIDING, CHUNKED, MLA)

# tie_word_embeddings defaults of the transformers 5.23 configuration classes.
_TIE_DEFAULT = {"gemma2": True, "gemma3": True, "gemma3_text": True, "falcon": True, "gpt2": True, "opt": True}

# Bounds of a config's sizes: past these a value is a typo, not a model. In brackets the largest
# published figure we know of, so each bound leaves two orders of magnitude or more.
MAX_LAYERS = 4096          # 126 (Llama 3.1 405B)
MAX_HIDDEN = 1 << 18       # 18,432 (Falcon 180B: 14,848)
MAX_HEADS = 1 << 14        # 128 (DeepSeek-V3, Llama 3.1 405B)
MAX_HEAD_DIM = 1 << 14     # 512 (Gemma 3 27B: 128; MLA latents are ranks)
MAX_WIDTH = 1 << 22        # any MLP or expert width: 53,248 (Llama 3.1 405B)
MAX_VOCAB = 1 << 24        # 262,144 (Gemma 3)
MAX_EXPERTS = 1 << 14      # 512 (Qwen3-Next)
MAX_RANK = 1 << 16         # MLA latent ranks: 1,536 (DeepSeek-V3 q_lora_rank)
MAX_POSITIONS = 1 << 24    # 10,485,760 (Llama 4 Scout); the planner's longest context (memory.MAX_CONTEXT)
MAX_PARAMS = 10**14        # 1.0e14 parameters: 50x the largest published model (~2e12)


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
        _check_counts(self)
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
        _check_size(self)

    # ---- convenience --------------------------------------------------------------------
    @property
    def ssm_dims(self) -> dict[str, int]:
        return dict(self.ssm)

    @property
    def quant(self) -> dict[str, Any]:
        return {k: _decoded(v) for k, v in self.quantization_config}

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
        """Parsed as JSON only, within configread's size and depth limits."""
        return cls.from_hf_config(loads(text, "config.json"), name=name)

    @classmethod
    def from_hf_config(cls, cfg: Any, name: str = "model") -> ModelSpec:
        if not isinstance(cfg, dict):
            raise PlannerInputError("config.json", "must be a JSON object", "upload the model's config.json file")
        return _parse(cfg, name)


# ---- checks on creation ---------------------------------------------------------------------------
_REQUIRED = ("vocab_size", "hidden_size", "num_layers", "num_heads", "num_kv_heads", "head_dim", "v_head_dim")


def _check_counts(s: ModelSpec) -> None:
    """Every size a whole number, the required ones at least 1: a spec built by hand or by
    ``dataclasses.replace`` is held to what the parser guarantees."""
    if not isinstance(s.name, str):
        raise PlannerInputError("model", f"the name must be text, got {type(s.name).__name__}", "name the model")
    for f in fields(s):
        v = getattr(s, f.name)
        if f.type in ("int", int) and (isinstance(v, bool) or not isinstance(v, int) or v < (f.name in _REQUIRED)):
            raise PlannerInputError(f.name, f"must be a whole number of at least {int(f.name in _REQUIRED)}, got {v!r}",
                                    "fix the config")


def _check_size(s: ModelSpec) -> None:
    """Refuse a config whose sizes multiply to more parameters than any model has: the counts
    downstream are int64 and would wrap to negative numbers. An upper bound, in Python integers."""
    h, n = s.hidden_size, s.num_layers
    attn = h * (2 * s.num_heads * max(s.head_dim, s.v_head_dim) + 2 * s.num_kv_heads * s.head_dim)
    attn += (h + s.num_heads * s.head_dim) * (s.q_lora_rank + s.kv_lora_rank + s.qk_rope_head_dim)
    ssm = 8 * h * max([v for k, v in s.ssm if k != "version"], default=0)
    terms = {"vocab_size": 2 * s.vocab_size * (s.word_embed_proj_dim + h) + s.learned_positions * h,
             "num_attention_heads": n * attn, "intermediate_size": n * 3 * h * s.intermediate_size,
             "num_experts": n * 3 * h * (s.num_experts * s.moe_intermediate_size + s.shared_expert_intermediate_size),
             "ssm": n * ssm}
    total = sum(terms.values())
    if total > MAX_PARAMS:
        worst = max(terms, key=terms.get)
        raise PlannerInputError(f"config.json:{worst}", f"the sizes describe about {total:.2e} parameters, more than "
                                f"any model (limit {MAX_PARAMS:.0e})", f"check {worst} and the sizes it multiplies")


def _decoded(v: Any) -> Any:
    return json.loads(v) if isinstance(v, str) and v[:1] in '[{"' else v


def _encoded(v: Any) -> Any:
    """Hashable: lists and objects as JSON text (and text that would read as JSON, quoted)."""
    return json.dumps(v) if isinstance(v, list | dict) or (isinstance(v, str) and v[:1] in '[{"') else v


# ---- parsing --------------------------------------------------------------------------------------
def _flatten(cfg: dict, notes: list[str]) -> dict:
    """Multimodal configs keep the language model under text_config (Gemma 3, Llava...)."""
    r = ConfigReader(cfg)
    if isinstance(cfg.get("text_config"), dict) and not r.has("num_hidden_layers", "n_layer"):
        merged = dict(cfg["text_config"])
        for k in ("quantization_config", "tie_word_embeddings"):
            if k in cfg and k not in merged:
                merged[k] = cfg[k]
        merged.setdefault("model_type", r.text("model_type") + "_text")
        notes.append("multimodal config: the language model under text_config is planned; the vision tower is not counted")
        return merged
    return cfg


_LAYER_TYPES = {"full_attention": FULL, "attention": FULL, "sliding_attention": SLIDING,
                "chunked_attention": CHUNKED, "linear_attention": LINEAR, "mamba": MAMBA}


def _given_layer_kinds(r: ConfigReader, n: int, full: str) -> tuple[str, ...] | None:
    types = r.texts("layer_types")
    if not types:
        return None
    bad = sorted({t for t in types if t not in _LAYER_TYPES})
    if bad:
        raise PlannerInputError(r.field("layer_types"), f"unknown layer type(s) {[b[:40] for b in bad[:5]]}",
                                f"use one of {sorted(_LAYER_TYPES)}")
    if len(types) != n:
        raise PlannerInputError(r.field("layer_types"), f"has {len(types)} entries for {n} layers",
                                "give one entry per hidden layer")
    return tuple(full if _LAYER_TYPES[t] == FULL else _LAYER_TYPES[t] for t in types)


def _every(period: int, offset: int, n: int) -> tuple[bool, ...]:
    """Layer i is picked when i % period == offset."""
    return tuple(i % period == offset for i in range(n))


def _layer_kinds(r: ConfigReader, mt: str, n: int, window: int, is_mla: bool, notes: list[str]) -> tuple[str, ...]:
    full = MLA if is_mla else FULL
    given = _given_layer_kinds(r, n, full)
    if given is not None:
        return given
    if mt == "gemma2":
        return tuple(SLIDING if i % 2 == 0 else FULL for i in range(n))
    if mt in ("gemma3", "gemma3_text"):
        pattern = r.int("layer pattern", "sliding_window_pattern", default=6, high=MAX_LAYERS)
        if not r.has("sliding_window_pattern"):
            notes.append(f"Gemma 3 layer pattern: every {pattern}th layer global, others sliding")
        return tuple(FULL if (i + 1) % pattern == 0 else SLIDING for i in range(n))
    if mt == "qwen3_next":
        interval = r.int("full-attention interval", "full_attention_interval", default=4, high=MAX_LAYERS)
        return tuple(FULL if (i + 1) % interval == 0 else LINEAR for i in range(n))
    if mt == "jamba":
        period = r.int("attention layer period", "attn_layer_period", default=8, high=MAX_LAYERS)
        offset = r.int("attention layer offset", "attn_layer_offset", default=4, low=0, high=period - 1)
        return tuple(FULL if a else MAMBA for a in _every(period, offset, n))
    if mt.startswith("qwen"):
        # transformers Qwen2/Qwen3: sliding only when use_sliding_window, from max_window_layers on
        if r.flag("use_sliding_window", False) and window:
            start = r.int("first sliding layer", "max_window_layers", default=n, low=0, high=MAX_LAYERS)
            return tuple(SLIDING if i >= start else FULL for i in range(n))
        return (full,) * n
    if window and mt in ("mistral", "mixtral", "phi3", "starcoder2", "phi"):
        return (SLIDING,) * n
    return (full,) * n


def _moe_layers(r: ConfigReader, mt: str, n: int, num_experts: int) -> tuple[bool, ...]:
    if num_experts == 0:
        return (False,) * n
    if mt in ("deepseek_v2", "deepseek_v3", "kimi_k2"):
        first = r.int("first MoE layer", "first_k_dense_replace", default=0, low=0, high=MAX_LAYERS)
        freq = r.int("MoE layer frequency", "moe_layer_freq", default=1, high=MAX_LAYERS)
        return tuple(i >= first and i % freq == 0 for i in range(n))
    if mt == "jamba":
        period = r.int("expert layer period", "expert_layer_period", default=2, high=MAX_LAYERS)
        return _every(period, r.int("expert layer offset", "expert_layer_offset", default=1, low=0, high=period - 1), n)
    if mt.startswith("qwen"):
        step = r.int("MoE layer step", "decoder_sparse_step", default=1, high=MAX_LAYERS)
        dense = set(r.ints("mlp_only_layers", "layer index", 0, MAX_LAYERS))
        return tuple(i not in dense and (i + 1) % step == 0 for i in range(n))
    return (True,) * n


def _ssm_dims(r: ConfigReader, mt: str, hidden: int) -> tuple[tuple[str, int], ...]:
    if mt == "qwen3_next":
        return (("num_k_heads", r.int("linear heads", "linear_num_key_heads", high=MAX_HEADS)),
                ("num_v_heads", r.int("linear heads", "linear_num_value_heads", high=MAX_HEADS)),
                ("k_head_dim", r.int("linear head dim", "linear_key_head_dim", high=MAX_HEAD_DIM)),
                ("v_head_dim", r.int("linear head dim", "linear_value_head_dim", high=MAX_HEAD_DIM)),
                ("conv_kernel", r.int("conv kernel", "linear_conv_kernel_dim", default=4, high=1024)))
    if mt == "jamba":
        return (("version", 1), ("d_inner", _mamba_expand(r) * hidden), *_mamba_state(r, 16),
                ("dt_rank", _dt_rank(r, hidden)), *_mamba_bias(r))
    if mt in ("granitemoehybrid", "bamba", "nemotron_h", "falcon_h1"):
        heads = r.int("mamba heads", "mamba_n_heads", high=MAX_HEADS)
        head_dim = r.int("mamba head dim", "mamba_d_head", high=MAX_HEAD_DIM)
        inner = _mamba_expand(r) * hidden
        if heads * head_dim != inner:
            inner = heads * head_dim
        return (("version", 2), ("d_inner", inner), ("n_heads", heads), ("head_dim", head_dim),
                ("n_groups", r.int("mamba groups", "mamba_n_groups", default=1, high=heads)),
                *_mamba_state(r, 128), *_mamba_bias(r))
    return ()


def _mamba_expand(r: ConfigReader) -> int:
    return r.int("mamba expansion", "mamba_expand", default=2, high=64)


def _mamba_state(r: ConfigReader, d_state: int) -> tuple[tuple[str, int], ...]:
    return (("d_state", r.int("mamba d_state", "mamba_d_state", default=d_state, high=MAX_HEAD_DIM)),
            ("d_conv", r.int("mamba conv", "mamba_d_conv", default=4, high=1024)))


def _mamba_bias(r: ConfigReader) -> tuple[tuple[str, int], ...]:
    return (("conv_bias", int(r.flag("mamba_conv_bias", True))), ("proj_bias", int(r.flag("mamba_proj_bias", False))))


def _dt_rank(r: ConfigReader, hidden: int) -> int:
    """Jamba's mamba_dt_rank: a number, or "auto" (transformers: ceil(hidden_size / 16))."""
    if r.cfg.get("mamba_dt_rank") == "auto":
        return -(-hidden // 16)
    return r.int("mamba dt rank", "mamba_dt_rank", default=-(-hidden // 16), high=MAX_HIDDEN)


def _check_architectures(r: ConfigReader) -> None:
    archs = r.texts("architectures")
    if archs and not any(a.endswith(("ForCausalLM", "LMHeadModel", "ForConditionalGeneration", "Model")) for a in archs):
        raise PlannerInputError(r.field("architectures"), f"{[a[:60] for a in archs[:3]]} is not a causal language model",
                                "use the config of a decoder-only (causal LM) model")


def _kv_heads(r: ConfigReader, mt: str, heads: int, notes: list[str]) -> int:
    """Explicit, Falcon's multi_query flag, or MHA (listed as an assumption)."""
    if r.has("num_key_value_heads", "n_head_kv", "num_kv_heads"):
        kv = r.int("KV head count", "num_key_value_heads", "n_head_kv", "num_kv_heads", high=MAX_HEADS)
    elif mt == "falcon" and r.flag("multi_query", True) and not r.flag("new_decoder_architecture", False):
        kv = 1
    else:
        kv = heads
        if mt not in ("gpt2", "opt"):
            notes.append("num_key_value_heads absent: assumed equal to num_attention_heads (MHA)")
    if kv > heads:
        raise PlannerInputError(r.field(r.found("num_key_value_heads", "n_head_kv", "num_kv_heads") or "num_key_value_heads"),
                                f"{kv} KV heads exceed {heads} query heads", "KV heads must be at most the attention heads")
    return kv


def _head_dim(r: ConfigReader, hidden: int, heads: int) -> int:
    if r.has("head_dim"):
        return r.int("head dimension", "head_dim", high=MAX_HEAD_DIM)
    if hidden % heads:
        raise PlannerInputError(r.field("num_attention_heads"), f"hidden size {hidden} is not divisible by {heads} heads",
                                "give head_dim explicitly or fix the head count")
    return hidden // heads


def _window(r: ConfigReader) -> int:
    return r.int("sliding window (tokens)", "sliding_window", default=0, low=0, high=MAX_POSITIONS)


def _mla(r: ConfigReader, heads: int) -> tuple[dict[str, int], int, int, int]:
    """(MLA fields, head_dim, v_head_dim, kv_heads): MLA decompresses to one K/V per query head."""
    mla = {"q_lora_rank": r.int("MLA query rank", "q_lora_rank", default=0, low=0, high=MAX_RANK),
           "kv_lora_rank": r.int("MLA latent", "kv_lora_rank", high=MAX_RANK),
           "qk_rope_head_dim": r.int("MLA rope dim", "qk_rope_head_dim", high=MAX_HEAD_DIM),
           "qk_nope_head_dim": r.int("MLA nope dim", "qk_nope_head_dim", high=MAX_HEAD_DIM)}
    v_head = r.int("MLA value dim", "v_head_dim", high=MAX_HEAD_DIM)
    return mla, mla["qk_rope_head_dim"] + mla["qk_nope_head_dim"], v_head, heads


_EXPERT_KEYS = ("num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts")
_INTER_KEYS = ("intermediate_size", "ffn_dim", "n_inner", "ffn_hidden_size")


def _moe_fields(r: ConfigReader, mt: str, num_experts: int, inter: int) -> dict[str, Any]:
    if not num_experts:
        return {}
    moe_i = r.int("expert width", "moe_intermediate_size", default=0, low=0, high=MAX_WIDTH) or inter
    n_shared = r.int("shared expert count", "n_shared_experts", "num_shared_experts", default=0, low=0, high=MAX_EXPERTS)
    shared_i = r.int("shared expert width", "shared_expert_intermediate_size", "shared_intermediate_size",
                     default=0, low=0, high=MAX_WIDTH)
    if n_shared and not shared_i:
        shared_i = n_shared * moe_i
    return dict(num_experts=num_experts, moe_intermediate_size=moe_i, shared_expert_intermediate_size=shared_i,
                experts_per_token=r.int("experts per token", "num_experts_per_tok", "num_experts_per_token",
                                        "moe_top_k", "top_k", "experts_per_token", high=num_experts),
                shared_expert_gate=mt in ("qwen2_moe", "qwen3_next"), router_bias=mt == "gpt_oss",
                expert_bias=mt == "gpt_oss")


def _intermediate(r: ConfigReader, mt: str, hidden: int, moe: tuple[bool, ...], num_experts: int) -> int:
    if all(moe) and num_experts and not r.has(*_INTER_KEYS):
        return 0  # every layer is MoE: no dense width needed
    default = 4 * hidden if mt in ("gpt2", "falcon", "opt") else ...
    return r.int("MLP width", *_INTER_KEYS, default=default, high=MAX_WIDTH)


# the quantization_config keys the weight formats read (formats.format_from_quantization_config)
_QUANT_INTS = {"bits": (1, 16), "w_bit": (1, 16), "group_size": (-1, 1 << 20), "q_group_size": (-1, 1 << 20)}
_QUANT_FLAGS = ("load_in_8bit", "load_in_4bit", "bnb_4bit_use_double_quant")
_QUANT_TEXTS = ("quant_method", "bnb_4bit_quant_type")


def _quantization(r: ConfigReader) -> tuple[tuple[str, Any], ...]:
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


def _parse(raw: dict, name: str) -> ModelSpec:
    notes: list[str] = []
    r = ConfigReader(_flatten(raw, notes))
    mt = r.text("model_type").lower()
    _check_architectures(r)
    hidden = r.int("hidden size", "hidden_size", "n_embd", "d_model", "model_dim", high=MAX_HIDDEN)
    n_layers = r.int("layer count", "num_hidden_layers", "n_layer", "num_layers", "n_layers", high=MAX_LAYERS)
    heads = r.int("attention head count", "num_attention_heads", "n_head", "num_heads", high=MAX_HEADS)
    vocab = r.int("vocabulary size", "vocab_size", "padded_vocab_size", high=MAX_VOCAB)
    kv_heads = _kv_heads(r, mt, heads, notes)
    head_dim = _head_dim(r, hidden, heads)
    is_mla = r.has("kv_lora_rank")
    window = _window(r)
    kinds = _layer_kinds(r, mt, n_layers, window, is_mla, notes)
    if SLIDING in kinds and window < 1:
        raise PlannerInputError(r.field("sliding_window"), "the layer pattern has sliding layers but no window",
                                "set sliding_window")
    num_experts = r.int("expert count", *_EXPERT_KEYS, default=0, low=0, high=MAX_EXPERTS)
    moe = _moe_layers(r, mt, n_layers, num_experts)
    inter = _intermediate(r, mt, hidden, moe, num_experts)
    tie_default = _TIE_DEFAULT.get(mt, False)
    tie = r.flag("tie_word_embeddings", tie_default)
    if not r.has("tie_word_embeddings"):
        notes.append(f"tie_word_embeddings absent: transformers' default for {mt or 'this family'} is {tie_default}")
    fam = _family_flags(r, mt, hidden, notes)
    v_head, mla = head_dim, {}
    if is_mla:
        mla, head_dim, v_head, kv_heads = _mla(r, heads)
    return ModelSpec(
        name=name, model_type=mt, vocab_size=vocab, hidden_size=hidden, num_layers=n_layers,
        num_heads=heads, num_kv_heads=kv_heads, head_dim=head_dim, v_head_dim=v_head,
        intermediate_size=inter, layer_kinds=kinds, moe_layers=moe, sliding_window=window,
        max_position_embeddings=r.int("context length", "max_position_embeddings", "n_positions", "max_sequence_length",
                                      default=0, high=MAX_POSITIONS),
        tie_word_embeddings=tie, ssm=_ssm_dims(r, mt, hidden), quantization_config=_quantization(r),
        **_engine_fields(r.cfg, raw, mla.get("qk_rope_head_dim", head_dim), fam, notes),
        assumptions=tuple(n for n in notes if n), **fam, **mla, **_moe_fields(r, mt, num_experts, inter),
    )


_DTYPES = {"bfloat16": "bf16", "float16": "fp16", "half": "fp16", "float32": "fp32", "float": "fp32",
           "bf16": "bf16", "fp16": "fp16", "fp32": "fp32"}


def _engine_fields(cfg: dict, raw: dict, head_dim: int, fam: dict, notes: list[str]) -> dict[str, Any]:
    """The checkpoint dtype, rope scaling and rotary width (what vLLM/SGLang derive defaults from)."""
    def first(d: dict) -> Any:
        return next((d[k] for k in ("torch_dtype", "dtype") if isinstance(d.get(k), str)), None)

    text = str(first(cfg) or first(raw) or "")
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




def _family_flags(r: ConfigReader, mt: str, hidden: int, notes: list[str]) -> dict[str, Any]:
    """Bias, norm and embedding details that change parameter counts, per family."""
    attn_bias = r.flag("attention_bias", False)
    flags: dict[str, Any] = dict(q_bias=attn_bias, kv_bias=attn_bias, o_bias=attn_bias,
                                 mlp_bias=r.flag("mlp_bias", False))
    if mt == "gpt2":
        flags.update(q_bias=True, kv_bias=True, o_bias=True, mlp_bias=True, mlp_gated=False, norm_bias=True,
                     learned_positions=r.int("position count", "n_positions", "max_position_embeddings",
                                             high=MAX_POSITIONS))
    elif mt == "opt":
        bias = r.flag("enable_bias", True)
        flags.update(q_bias=bias, kv_bias=bias, o_bias=bias, mlp_bias=bias, mlp_gated=False, norm_bias=True,
                     learned_positions=r.int("position count", "max_position_embeddings", high=MAX_POSITIONS) + 2,  # OPT offsets positions by 2
                     final_norm=r.flag("do_layer_norm_before", True) and not r.flag("_remove_final_layer_norm", False))
        proj = r.int("embedding projection width", "word_embed_proj_dim", default=hidden, high=MAX_HIDDEN)
        flags["word_embed_proj_dim"] = proj if proj != hidden else 0
    elif mt == "falcon":
        bias = r.flag("bias", False)
        if r.flag("new_decoder_architecture", False):
            norms = r.int("norms per layer", "num_ln_in_parallel_attn", default=2, high=2)
        else:
            norms = 1 if r.flag("parallel_attn", True) else 2
        flags.update(q_bias=bias, kv_bias=bias, o_bias=bias, mlp_bias=bias, mlp_gated=False, norm_bias=True,
                     norms_per_layer=norms)
        if r.flag("alibi", False):
            notes.append("ALiBi positions: no rotary or learned position parameters")
    else:
        flags.update(_FAMILY_FLAGS.get(mt, {}))
    return flags


# Families whose only differences from the defaults are fixed flags.
_FAMILY_FLAGS: dict[str, dict[str, Any]] = {
    "qwen2": dict(q_bias=True, kv_bias=True, o_bias=False), "qwen2_moe": dict(q_bias=True, kv_bias=True, o_bias=False),
    "qwen3": dict(qk_norm=True), "qwen3_moe": dict(qk_norm=True), "qwen3_next": dict(qk_norm=True, attn_output_gate=True),
    "gemma2": dict(norms_per_layer=4), "gemma3": dict(norms_per_layer=4, qk_norm=True),
    "gemma3_text": dict(norms_per_layer=4, qk_norm=True),
    "gpt_oss": dict(q_bias=True, kv_bias=True, o_bias=True, attention_sinks=True),
    "deepseek_v2": dict(q_bias=False, kv_bias=False, o_bias=False),
    "deepseek_v3": dict(q_bias=False, kv_bias=False, o_bias=False), "phi3": dict(q_bias=False, kv_bias=False, o_bias=False),
}

"""ModelSpec: one frozen, validated description of a causal LM's shapes, parsed from its config.json.

planner/parse.py reads a config the way transformers' configuration classes do (names, defaults and
sub-configs from profiles/config_schema.json; layer rules and architecture traits from
profiles/model_families.json) and builds a ModelSpec; every default used is listed in ``assumptions`` so
that nothing is silent. A given ``head_dim`` always wins over ``hidden_size // num_attention_heads``
(Qwen3, Gemma: they differ).

Each layer has a mixer kind (``layer_kinds``: what its cache holds, planner/layerkinds.py) and its feed-forward
parts (``moe_layers``, ``dense_layers``). Layer kinds whose attention shape differs from the model's
(Gemma 4's global layers, MiMo's sliding ones) carry it in ``attn_overrides``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from typing import Any

from .configread import loads
from .errors import PlannerInputError

# Layer kinds: a layer's mixer decides what its cache holds per token (or per sequence).
FULL, SLIDING, CHUNKED, MLA, LINEAR, MAMBA = "full", "sliding", "chunked", "mla", "linear", "mamba"
SPARSE_MLA = "sparse_mla"  # MLA with a DeepSeek sparse-attention indexer (DeepSeek-V3.2, GLM-5)
CROSS = "cross"            # cross-attention to encoder (image) tokens (Llama 3.2 Vision)
NONE = "none"              # no mixer: an MLP- or MoE-only block (Nemotron-H)
ATTENTION_KINDS = (FULL, SLIDING, CHUNKED, MLA, SPARSE_MLA, CROSS)
STATE_KINDS = (LINEAR, MAMBA)
MLA_KINDS = (MLA, SPARSE_MLA)
KINDS = ATTENTION_KINDS + STATE_KINDS + (NONE,)
SHAPE_KEYS = ("num_heads", "num_kv_heads", "head_dim", "v_head_dim", "k_eq_v", "sinks")
_FLAG_KEYS = ("k_eq_v", "sinks")  # 0/1 shape entries

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
    # per-layer structure beyond the kinds
    dense_layers: tuple[bool, ...] = ()  # layers with a dense MLP; () means the layers without experts
    attn_overrides: tuple[tuple[str, tuple[tuple[str, int], ...]], ...] = ()  # per layer kind: SHAPE_KEYS
    attention_chunk_size: int = 0        # CHUNKED layers attend within chunks of this many tokens (Llama 4)
    kv_shared_layers: int = 0            # the last layers reuse earlier layers' K/V: no K/V weights, no cache
    indexer: tuple[tuple[str, int], ...] = ()  # DSA indexer of SPARSE_MLA layers: n_heads, head_dim, topk
    own_indexer: tuple[bool, ...] = ()   # SPARSE_MLA layers with their own indexer (GLM-5 shares it); () all
    attn_gate_per_head: bool = False     # a sigmoid/softplus output gate per head (Laguna g_proj)
    moe_latent_size: int = 0             # experts work in this latent width, projected from/to hidden (Nemotron-3)
    qk_norm_full: bool = False           # q/k norms over all heads' width (MiniMax-M2), not one head's
    router_score_bias: bool = False      # e_score_correction_bias per MoE layer (DeepSeek-V3, GLM-4.5)
    router_scale: bool = False           # Gemma 4's router: a scale over hidden and one per expert
    moe_norms: int = 0                   # extra norms in an MoE layer (Gemma 4: 3)
    lm_head_bias: bool = False
    shared_expert_bias: bool = False  # the shared experts' Linear layers carry biases (ERNIE 4.5 with use_bias)
    per_layer_input_size: int = 0        # Gemma 3n/4 per-layer input embeddings: width per layer
    per_layer_vocab_size: int = 0        # ... and their vocabulary
    double_wide_shared_mlp: bool = False  # Gemma 4: the KV-sharing layers' MLP is twice as wide
    # the vision tower and projector (planner/vision.py): (role, rows, cols, count) per tensor kind
    vision_tensors: tuple[tuple[str, int, int, int], ...] = ()
    vision_tokens_per_image: int = 0     # as the config states it (0: not stated, e.g. dynamic resolution)
    assumptions: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self):
        _check_counts(self)
        n = self.num_layers
        if len(self.layer_kinds) != n or len(self.moe_layers) != n or len(self.dense_layers) not in (0, n) \
                or len(self.own_indexer) not in (0, n):
            raise PlannerInputError("layer_types", "needs one entry per layer",
                                    f"give exactly num_hidden_layers={n} entries")
        _check_kinds(self)
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
    def is_mla(self) -> bool:
        return any(k in MLA_KINDS for k in self.layer_kinds)

    def has_dense_mlp(self, i: int) -> bool:
        return self.dense_layers[i] if self.dense_layers else not self.moe_layers[i]

    def has_indexer(self, i: int) -> bool:
        """A SPARSE_MLA layer with its own DSA indexer (weights and key cache); GLM-5's 'shared' layers reuse one."""
        return self.layer_kinds[i] == SPARSE_MLA and (self.own_indexer[i] if self.own_indexer else True)

    def kv_shared(self, i: int) -> bool:
        """Layer i reads an earlier layer's K/V (Gemma 4's last num_kv_shared_layers): it caches nothing."""
        return i >= self.num_layers - self.kv_shared_layers

    def attn_shape(self, kind: str) -> dict[str, int]:
        """Heads, KV heads, head dims of the layers of ``kind``: the model's, with the kind's overrides."""
        over = dict(dict(self.attn_overrides).get(kind, ()))
        v_head_dim = over.get("head_dim", self.head_dim) if self.v_head_dim == self.head_dim else self.v_head_dim
        base = {"num_heads": self.num_heads, "num_kv_heads": self.num_kv_heads, "head_dim": self.head_dim,
                "v_head_dim": v_head_dim, "k_eq_v": 0, "sinks": int(self.attention_sinks)}
        return {**base, **over}

    @property
    def group_size(self) -> int:
        """Query heads per KV head: 1 is MHA, num_heads is MQA, anything between is GQA."""
        return self.num_heads // self.num_kv_heads

    @property
    def attention_label(self) -> str:
        if self.is_mla:
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
        if self.is_mla:
            raise PlannerInputError("kv_heads", "an MLA model has no KV heads to regroup",
                                    "pick a model with MHA/GQA/MQA attention")
        if kv_heads < 1 or self.num_heads % kv_heads:
            divisors = [d for d in range(1, self.num_heads + 1) if self.num_heads % d == 0]
            raise PlannerInputError("kv_heads", f"{kv_heads} does not divide {self.num_heads} query heads",
                                    f"choose one of {divisors}")
        label = "MQA" if kv_heads == 1 else "MHA" if kv_heads == self.num_heads else f"GQA-{kv_heads}"
        overrides = tuple((k, tuple(kv for kv in o if kv[0] != "num_kv_heads")) for k, o in self.attn_overrides)
        return replace(self, num_kv_heads=kv_heads, name=f"{self.name} [{label} what-if]", attn_overrides=overrides,
                       assumptions=self.assumptions + (f"what-if: attention regrouped to {kv_heads} KV heads "
                                                       "(needs uptraining, not a real checkpoint)",))

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def from_json_text(cls, text: str | bytes, name: str = "uploaded") -> ModelSpec:
        """Parsed as JSON only, within configread's size and depth limits."""
        return cls.from_hf_config(loads(text, "config.json"), name=name)

    @classmethod
    def from_hf_config(cls, cfg: Any, name: str = "model") -> ModelSpec:
        """Read as transformers' configuration classes read it (planner/parse.py)."""
        if not isinstance(cfg, dict):
            raise PlannerInputError("config.json", "must be a JSON object", "upload the model's config.json file")
        from .parse import (
            parse,  # parse builds ModelSpecs: imported here to keep the modules acyclic
        )
        return parse(cfg, name)


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


_STATE_DIMS = {LINEAR: ("num_k_heads", "num_v_heads", "k_head_dim", "v_head_dim", "conv_kernel"),
               MAMBA: ("version", "d_inner", "d_state", "d_conv")}
_SHORT_CONV_DIMS = ("conv_dim", "conv_kernel")  # LFM2's short convolutions (linear_attention layers of their own)


def _check_kinds(s: ModelSpec) -> None:
    """Every layer kind known and given what its cache and weights need."""
    bad = sorted(set(s.layer_kinds) - set(KINDS))
    if bad:
        raise PlannerInputError("layer_types", f"unknown layer kind(s) {bad[:5]}", f"use one of {list(KINDS)}")
    for kind, over in s.attn_overrides:
        shape = dict(over)
        if kind not in ATTENTION_KINDS or set(shape) - set(SHAPE_KEYS) or any(
                isinstance(v, bool) or not isinstance(v, int) or v < (k not in _FLAG_KEYS) for k, v in shape.items()):
            raise PlannerInputError("attn_overrides", f"{kind!r}: {shape} is not an attention shape",
                                    f"give {SHAPE_KEYS} as whole numbers for an attention kind")
        full = s.attn_shape(kind)
        if full["num_heads"] % full["num_kv_heads"]:
            raise PlannerInputError("config.json:num_key_value_heads", f"{kind} layers: {full['num_heads']} heads cannot "
                                    f"be split into {full['num_kv_heads']} KV groups", "heads must be a multiple of KV heads")
    if not 0 <= s.kv_shared_layers < s.num_layers:
        raise PlannerInputError("config.json:num_kv_shared_layers", f"{s.kv_shared_layers} of {s.num_layers} layers",
                                "at least one layer must compute its own K/V")
    needs = {CHUNKED: ("attention_chunk_size", s.attention_chunk_size > 0),
             SPARSE_MLA: ("index_head_dim", {"n_heads", "head_dim", "topk"} <= dict(s.indexer).keys()),
             MLA: ("kv_lora_rank", s.kv_lora_rank > 0)}
    needs[SPARSE_MLA] = needs[SPARSE_MLA] if s.kv_lora_rank > 0 else needs[MLA]
    for kind in STATE_KINDS:
        dims = _SHORT_CONV_DIMS if kind == LINEAR and s.ssm_dims.get("shortconv") else _STATE_DIMS[kind]
        needs[kind] = ("ssm", set(dims) <= s.ssm_dims.keys())
    for kind in set(s.layer_kinds) & needs.keys():
        key, ok = needs[kind]
        if not ok:
            raise PlannerInputError(f"config.json:{key}", f"{kind} layers need it", f"give {key} for the {kind} layers")


def _check_size(s: ModelSpec) -> None:
    """Refuse a config whose sizes multiply to more parameters than any model has: the counts
    downstream are int64 and would wrap to negative numbers. An upper bound, in Python integers."""
    h, n = s.hidden_size, s.num_layers
    attn = h * (2 * s.num_heads * max(s.head_dim, s.v_head_dim) + 2 * s.num_kv_heads * s.head_dim)
    attn += (h + s.num_heads * s.head_dim) * (s.q_lora_rank + s.kv_lora_rank + s.qk_rope_head_dim)
    wide = max([s.attn_shape(k)["head_dim"] + s.attn_shape(k)["v_head_dim"] for k, _ in s.attn_overrides], default=0)
    attn += 2 * h * wide * max([dict(o).get("num_heads", s.num_heads) for _, o in s.attn_overrides], default=0)
    attn += h * sum(v for _, v in s.indexer)
    ssm = 8 * h * max([v for k, v in s.ssm if k != "version"], default=0)
    terms = {"vocab_size": 2 * s.vocab_size * (s.word_embed_proj_dim + h) + s.learned_positions * h
             + s.per_layer_vocab_size * n * s.per_layer_input_size + 2 * n * h * s.per_layer_input_size,
             "vision_config": sum(r * c * k for _, r, c, k in s.vision_tensors),
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



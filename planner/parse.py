"""config.json -> ModelSpec, read the way transformers' configuration classes read it.

planner/configschema.py finds the language model (the config or its ``text_config``), each key by the
class's own name with its defaults; planner/layerrules.py says which layer is which; the family's
traits (profiles/model_families.json, read by planner/traits.py: biases, gated MLPs, norms, per-kind
attention shapes) say what each layer holds; planner/parsefields.py reads experts, MLA, recurrent states,
dtype and quantization; planner/vision.py the vision tower. Families differ only in that data, apart from
four odd layouts with small handlers in traits.py. Every value goes through configread.ConfigReader: the right type,
finite, whole, in bounds, or a PlannerInputError naming the key and the fix. A feature the planner does
not model is refused in one line naming it (``unsupported`` in the families file).
"""

from __future__ import annotations

from typing import Any

from . import layerrules, traits, vision
from . import parsefields as fields
from .configschema import Opened, Section, open_config
from .errors import PlannerInputError
from .spec import (
    CHUNKED,
    CROSS,
    FULL,
    LINEAR,
    MAMBA,
    MAX_HEAD_DIM,
    MAX_HEADS,
    MAX_HIDDEN,
    MAX_LAYERS,
    MAX_POSITIONS,
    MAX_VOCAB,
    MAX_WIDTH,
    MLA,
    NONE,
    SLIDING,
    SPARSE_MLA,
    ModelSpec,
)

# transformers layer types -> the planner's layer kinds (attention ones become MLA in an MLA model)
_KIND = {"full_attention": FULL, "sliding_attention": SLIDING, "chunked_attention": CHUNKED,
         "indexed_attention": SPARSE_MLA, "cross_attention": CROSS, "moe": NONE, "mlp": NONE}
_STATE = {"gdn": LINEAR, "kda": LINEAR, "shortconv": LINEAR, "mamba1": MAMBA, "mamba2": MAMBA}
_NOT_MODELLED = {"compressed_sparse_attention": "DeepSeek-V4 compressed sparse attention",
                 "heavily_compressed_attention": "DeepSeek-V4 heavily compressed attention",
                 "hybrid": "layers mixing attention and a recurrent state in one block (Zamba2, Falcon-H1)",
                 "hybrid_sliding": "layers mixing sliding attention and a recurrent state in one block",
                 "minimax_m3_sparse": "MiniMax-M3 sparse attention",
                 "window_attention": "non-overlapping window attention", "reference_sliding_attention":
                 "reference sliding attention (full over the prompt, sliding over the output)"}


def parse(raw: dict, name: str) -> ModelSpec:
    op = open_config(raw)
    t = op.text
    _check_architectures(op.outer)
    _check_generates(op)
    _refuse_unsupported(t)
    d = _dims(t)
    n = d["num_layers"]
    types = layerrules.layer_types(t, n)
    kinds = _kinds(t, types, n, d)
    window = _window(t, kinds)
    num_experts = fields.num_experts(t)
    moe = layerrules.moe_layers(t, n, types) if num_experts else (False,) * n
    num_experts = num_experts if any(moe) else 0
    dense = _dense_layers(t, kinds, moe)
    inter = _intermediate(t, d["hidden_size"], dense)
    fam = traits.traits(t, d, kinds)
    mla = fields.mla(t, d) if any(k in (MLA, SPARSE_MLA) for k in kinds) else {}
    if mla:
        d.update(head_dim=mla.pop("head_dim"), v_head_dim=mla.pop("v_head_dim"), num_kv_heads=d["num_heads"])
    return ModelSpec(
        name=name, model_type=t.model_type, **d, intermediate_size=inter, layer_kinds=kinds, moe_layers=moe,
        dense_layers=dense, sliding_window=window,
        max_position_embeddings=t.size("max_position_embeddings", "context length", default=0, low=0,
                                       high=MAX_POSITIONS),
        tie_word_embeddings=fields.tied(op), ssm=fields.ssm(t, d["hidden_size"], kinds),
        quantization_config=fields.quantization(t),
        **fields.engine_fields(t, op, mla.get("qk_rope_head_dim", d["head_dim"]), fam),
        **fam, **mla, **fields.moe_fields(t, num_experts, inter, d["hidden_size"]), **_shapes(t, d, kinds),
        **vision.from_config(op), assumptions=_assumptions(op),
    )


def _assumptions(op: Opened) -> tuple[str, ...]:
    return tuple(dict.fromkeys(x for x in op.notes if x))


# ---- what the config is -------------------------------------------------------------------------
_GENERATION = ("ForCausalLM", "LMHeadModel", "ForConditionalGeneration")


def _check_architectures(r: Section) -> None:
    """A generation class, or (remote code only: InternVLChatModel) any ``...Model``; BertModel is refused."""
    archs = r.texts("architectures")
    allowed = _GENERATION if r.entry is not None else _GENERATION + ("Model",)
    if archs and not any(a.endswith(allowed) for a in archs):
        raise PlannerInputError(r.field("architectures"), f"{[a[:60] for a in archs[:3]]} is not a causal language model",
                                "use the config of a decoder-only (causal LM) model")


def _generates(s: Section) -> bool:
    return bool(s.entry is None or s.entry.get("causal_lm") or s.entry.get("image_text_to_text"))


def _check_generates(op: Opened) -> None:
    """A model_type transformers knows but maps to no causal-LM or image-text-to-text class is an encoder
    (BERT), a vision or audio model: refused by name."""
    if op.outer.entry is not None and not _generates(op.outer) and (op.text is op.outer or not _generates(op.text)):
        raise PlannerInputError(op.outer.field("model_type"), f"{op.outer.model_type!r} has no text-generation class "
                                "in transformers (an encoder, vision or audio model?)",
                                "use the config of a decoder-only (causal LM) model")


def _refuse_unsupported(t: Section) -> None:
    """A family's feature the planner does not model: one line naming it (families file, ``unsupported``)."""
    for key, feature in t.family.get("unsupported", {}).items():
        if t.value(key) not in (None, False, [], {}, 0, ""):  # given, or the class default
            raise PlannerInputError(t.field(key), f"{feature} is not modelled by the planner",
                                    "plan a model without it, or open an issue with this config")
    if t.model_type and not t.family["known"]:
        who = f"known to transformers ({t.entry['class']})" if t.entry else "unknown to transformers"
        t.notes.append(f"model_type {t.model_type!r} is {who} but has no entry in profiles/model_families.json: "
                       "its layers are read as a Llama-style decoder's (gated MLP, RMSNorm); inspect --verify "
                       "checks the count against transformers")


def _dims(t: Section) -> dict[str, int]:
    hidden = t.size("hidden_size", "hidden size", high=MAX_HIDDEN)
    heads = t.size("num_attention_heads", "attention head count", high=MAX_HEADS)
    n = _num_layers(t)
    d = {"hidden_size": hidden, "num_layers": n, "num_heads": heads,
         "vocab_size": t.size("vocab_size", "vocabulary size", high=MAX_VOCAB),
         "num_kv_heads": _kv_heads(t, heads)}
    # MLA: head_dim is nope + rope (hidden / heads need not divide: Kimi-K3); _mla reads it again
    d["head_dim"] = fields.mla(t, d)["head_dim"] if _is_mla(t) else _head_dim(t, hidden, heads)
    d["v_head_dim"] = t.size("v_head_dim", "value head dim", default=d["head_dim"], high=MAX_HEAD_DIM) \
        if t.traits.get("v_head_dim") else d["head_dim"]
    return d


def _num_layers(t: Section) -> int:
    """num_hidden_layers, or the length of the layer list when only that is given (Nemotron-3-Ultra)."""
    if t.given("num_hidden_layers") or not (t.given("layer_types") or t.family.get("layers", {}).get("rule") == "pattern"):
        if not t.traits.get("layers_from_list"):
            return t.size("num_hidden_layers", "layer count", high=MAX_LAYERS)
    listed = t.names("layer_types") if t.given("layer_types") else ()
    if not listed and t.family.get("layers", {}).get("rule") == "pattern":
        listed = tuple(t.text(t.family["layers"]["key"]))
    if not listed or len(listed) > MAX_LAYERS:
        return t.size("num_hidden_layers", "layer count", high=MAX_LAYERS)
    return len(listed)


def _is_mla(t: Section) -> bool:
    """A latent rank given, or the class's default one (DeepseekV3Config: 512)."""
    rank = t.value("kv_lora_rank")
    return isinstance(rank, int | float) and not isinstance(rank, bool) or t.given("kv_lora_rank")


def _kv_heads(t: Section, heads: int) -> int:
    """Given, a multi-query flag (GPT-BigCode, Falcon, ChatGLM), else the class default, else MHA (noted)."""
    rule = t.traits.get("kv_heads_rule")
    if rule == "multi_query" and t.switch("multi_query", True) and not t.switch("new_decoder_architecture", False) \
            and not t.given("num_key_value_heads"):
        return 1
    if rule == "chatglm" and not t.switch("multi_query_attention", False):
        return heads
    if t.given("num_key_value_heads") or isinstance(t.class_default("num_key_value_heads"), int):
        kv = t.size("num_key_value_heads", "KV head count", high=MAX_HEADS)
    else:
        kv = heads
        if t.traits.get("mha_default") is not True:
            t.notes.append("num_key_value_heads absent: assumed equal to num_attention_heads (MHA)")
    if kv > heads:
        key = t.found(*t.keys("num_key_value_heads")) or "num_key_value_heads"
        raise PlannerInputError(t.field(key), f"{kv} KV heads exceed {heads} query heads",
                                "KV heads must be at most the attention heads")
    if heads % kv:
        raise PlannerInputError(t.field(t.found(*t.keys("num_key_value_heads")) or "num_key_value_heads"),
                                f"{heads} attention heads cannot be split into {kv} KV groups",
                                "num_attention_heads must be a multiple of num_key_value_heads")
    return kv


def _head_dim(t: Section, hidden: int, heads: int) -> int:
    for key in t.traits.get("head_dim_keys", ()):
        if t.has(key):
            return t.int("head dimension", key, high=MAX_HEAD_DIM)
    if t.given("head_dim") or isinstance(t.class_default("head_dim"), int):
        return t.size("head_dim", "head dimension", high=MAX_HEAD_DIM)
    if hidden % heads:
        raise PlannerInputError(t.field(t.found(*t.keys("num_attention_heads")) or "num_attention_heads"),
                                f"hidden size {hidden} is not divisible by {heads} heads",
                                "give head_dim explicitly or fix the head count")
    return hidden // heads


# ---- layers -------------------------------------------------------------------------------------
def _kinds(t: Section, types: tuple[str, ...], n: int, d: dict) -> tuple[str, ...]:
    if len(types) != n:
        raise PlannerInputError(t.field(t.found(*t.keys("layer_types")) or "layer_types"),
                                f"has {len(types)} entries for {n} layers", "give one entry per hidden layer")
    is_mla = _is_mla(t)
    state = _STATE.get(_recurrent(t)) if "linear_attention" in types else None
    out = []
    for typ in types:
        if typ in _NOT_MODELLED:
            raise PlannerInputError(t.field("layer_types"), f"{_NOT_MODELLED[typ]} ({typ!r}) is not modelled by the "
                                    "planner", "plan a model without it, or open an issue with this config")
        if typ == "linear_attention":
            out.append(state)
            continue
        kind = _KIND.get(typ)
        if kind is None:
            raise PlannerInputError(t.field("layer_types"), f"unknown layer type {typ[:40]!r}",
                                    f"use one of {sorted(_KIND) + ['linear_attention']}")
        out.append(MLA if is_mla and kind in (FULL, SLIDING, CHUNKED) else kind)
    return tuple(out)


_MAMBA_KEYS = ("mamba_n_heads", "mamba_d_state", "mamba_expand", "mamba_d_conv")


def _recurrent(t: Section) -> str:
    """What the linear_attention layers hold: the family says, else the keys show (GDN or Mamba)."""
    if t.traits.get("recurrent"):
        return t.traits["recurrent"]
    if t.given("linear_num_key_heads"):
        return "gdn"
    if any(t.given(k) for k in _MAMBA_KEYS):
        return "mamba1" if t.given("mamba_dt_rank") else "mamba2"
    raise PlannerInputError(t.field("layer_types"), f"the recurrent layers of {t.model_type or 'this model'} "
                            "(neither Gated DeltaNet nor Mamba keys) are not modelled by the planner",
                            "plan a model without them, or open an issue with this config")


def _window(t: Section, kinds: tuple[str, ...]) -> int:
    w = t.value("sliding_window")
    if SLIDING not in kinds:
        return t.size("sliding_window", "sliding window (tokens)", default=0, low=0, high=MAX_POSITIONS) \
            if isinstance(w, int | float) and not isinstance(w, bool) and w else 0
    plus = t.traits.get("window_plus_one")  # MiMo-V2: sliding_window_size previous tokens plus the query
    if plus and t.given(plus):
        return t.size(plus, "sliding window (tokens)", high=MAX_POSITIONS - 1) + 1
    if w is None:
        raise PlannerInputError(t.field("sliding_window"), "the layer pattern has sliding layers but no window",
                                "set sliding_window")
    return t.size("sliding_window", "sliding window (tokens)", high=MAX_POSITIONS)


def _dense_layers(t: Section, kinds: tuple[str, ...], moe: tuple[bool, ...]) -> tuple[bool, ...]:
    """A dense MLP: on the layers without experts; on every layer too where the family keeps both (Gemma 4);
    on a block-per-layer model, only on its MLP blocks (Nemotron-H ``-``)."""
    if any(k == NONE for k in kinds):
        return tuple(k == NONE and not m for k, m in zip(kinds, moe, strict=True))
    if t.traits.get("moe_with_dense"):
        return (True,) * len(kinds)
    return tuple(not m for m in moe)


def _intermediate(t: Section, hidden: int, dense: tuple[bool, ...]) -> int:
    """The dense MLP width (per matrix): 0 when no layer has a dense MLP."""
    if not any(dense):  # every layer routes to experts: the width (if any) is the experts' fallback
        return t.size("intermediate_size", "MLP width", default=0, low=0, high=MAX_WIDTH)
    rule = t.traits.get("default_mlp_width")
    default = 4 * hidden if rule == "4h" else ...
    v = t.value("intermediate_size")
    if v is None and default is not ...:
        t.notes.append(f"{t.field('intermediate_size')} absent: 4 x hidden_size, as the modelling code does")
        return default
    width = t.size("intermediate_size", "MLP width", high=MAX_WIDTH, default=default)
    if t.traits.get("mlp_width_rule") == "lfm2":
        return _lfm2_width(t, width)
    factor = t.traits.get("mlp_width_factor", 1)
    return int(width * factor) if factor != 1 else width


def _lfm2_width(t: Section, width: int) -> int:
    """LFM2 (transformers 5.23 Lfm2MLP): with block_auto_adjust_ff_dim, int(2/3 x block_ff_dim), then x
    block_ffn_dim_multiplier and rounded up to block_multiple_of (12,288 -> 8,192 for LFM2-1.2B)."""
    if not t.switch("block_auto_adjust_ff_dim", True):
        return width
    width = int(2 * width / 3)
    mult = t.value("block_ffn_dim_multiplier")
    if mult is None:
        return width
    if isinstance(mult, bool) or not isinstance(mult, int | float) or not 0 < mult <= 64:
        raise PlannerInputError(t.field("block_ffn_dim_multiplier"), f"must be a number in (0, 64], got {str(mult)[:20]}",
                                "use the checkpoint's own config.json")
    of = t.size("block_multiple_of", "MLP width multiple", default=256, high=MAX_WIDTH)
    return of * ((int(mult * width) + of - 1) // of)


def _kind_shape(t: Section, kind: str, spec: dict, d: dict) -> tuple[tuple[str, int], ...]:
    """One kind's attention shape: each field from its key, else its ``default`` (or ``scale`` x the model's
    own value: MiMo's sliding layers have twice the KV heads), when its ``when`` flag holds."""
    shape = {}
    for field, how in spec.items():
        if how.get("when") and not t.switch(how["when"], how.get("when_default", False)):
            continue
        if field in ("k_eq_v", "sinks"):
            shape[field] = 1
            continue
        default = how["scale"] * d[field] if "scale" in how else how.get("default", ...)
        if t.given(how["key"]) or default is not ...:
            shape[field] = t.size(how["key"], f"{kind} layers' {field}", default=default,
                                  high=MAX_HEAD_DIM if "dim" in field else MAX_HEADS)
    return tuple(sorted(shape.items()))


def _shapes(t: Section, d: dict, kinds: tuple[str, ...]) -> dict[str, Any]:
    """Per-kind attention shapes, chunk size, KV sharing, the DSA indexer: what some layers do differently."""
    over = ((kind, _kind_shape(t, kind, spec, d)) for kind, spec in t.traits.get("kind_shapes", {}).items()
            if kind in kinds)
    out: dict[str, Any] = {"attn_overrides": tuple((k, s) for k, s in over if s)}
    if CHUNKED in kinds:
        out["attention_chunk_size"] = t.size("attention_chunk_size", "attention chunk (tokens)", high=MAX_POSITIONS)
    if t.traits.get("kv_sharing"):
        out["kv_shared_layers"] = t.size("num_kv_shared_layers", "KV-sharing layers", default=0, low=0,
                                         high=d["num_layers"] - 1)
    if SPARSE_MLA in kinds and t.given("indexer_types"):  # GLM-5: "shared" layers reuse the last indexer
        owns = t.names("indexer_types")
        if len(owns) != len(kinds):
            raise PlannerInputError(t.field("indexer_types"), f"has {len(owns)} entries for {len(kinds)} layers",
                                    "give one entry per layer")
        out["own_indexer"] = tuple(x != "shared" for x in owns)
    if t.given("moe_latent_size"):
        out["moe_latent_size"] = t.size("moe_latent_size", "MoE latent width", high=MAX_HIDDEN)
    heads_key = t.traits.get("heads_per_layer")
    if heads_key and t.given(heads_key):
        out["attn_overrides"] = _heads_per_kind(t, heads_key, kinds, dict(out["attn_overrides"]))
    if SPARSE_MLA in kinds:
        out["indexer"] = (("head_dim", t.size("index_head_dim", "indexer head dim", high=MAX_HEAD_DIM)),
                          ("n_heads", t.size("index_n_heads", "indexer heads", high=MAX_HEADS)),
                          ("topk", t.size("index_topk", "indexer top-k tokens", high=MAX_POSITIONS)))
    return out


def _heads_per_kind(t: Section, key: str, kinds: tuple[str, ...], over: dict) -> tuple:
    """Per-layer head counts (Laguna) as per-kind overrides; refused when a kind's layers differ."""
    heads = t.ints(t.found(*t.keys(key)), "attention heads", 1, MAX_HEADS)
    if len(heads) != len(kinds):
        raise PlannerInputError(t.field(key), f"has {len(heads)} entries for {len(kinds)} layers", "give one per layer")
    per: dict[str, set[int]] = {}
    for k, n in zip(kinds, heads, strict=True):
        per.setdefault(k, set()).add(n)
    if any(len(v) > 1 for v in per.values()):
        raise PlannerInputError(t.field(key), "head counts that differ between layers of one kind are not modelled",
                                "plan a model whose layers of a kind share one head count")
    for k, v in per.items():
        over[k] = tuple(sorted({**dict(over.get(k, ())), "num_heads": v.pop()}.items()))
    return tuple(over.items())



"""Which layers are which: the layer pattern and the MoE placement of a config, as transformers builds them.

A config may list its layers (``layer_types``, ``mlp_layer_types``); otherwise transformers' configuration
class computes them in code from a few keys (Gemma 3: every 6th layer global; Qwen3.5: every 4th full,
the rest Gated DeltaNet; Nemotron-H: a pattern string ``M-M*-``; DeepSeek: dense before
``first_k_dense_replace``). Those pieces of code are written here once as a handful of rule kinds, and each
family's parameters are data (``profiles/model_families.json``, ``layers`` and ``moe``), checked against
transformers by ``scripts/gen_config_schema.py``. A family without a rule takes the period its class's
defaults show (``layer_pattern`` in profiles/config_schema.json), then transformers' generic reading
(a ``sliding_window`` makes every layer sliding, an ``attention_chunk_size`` chunked).

Layer types are transformers' names (``full_attention``, ``sliding_attention``, ``linear_attention``, ...);
MoE placement is ``sparse`` / ``dense`` per layer, as transformers' ``mlp_layer_types``.
"""

from __future__ import annotations

from .configschema import Section
from .errors import PlannerInputError

MAX_PERIOD = 4096
# transformers' configuration_utils._LEGACY_LAYER_TYPE_REMAP, and the older names configs still carry
LEGACY = {"mamba": "linear_attention", "attention": "full_attention", "deepseek_sparse_attention": "indexed_attention",
          "global": "full_attention", "local": "sliding_attention", "hybrid_attention": "full_attention",
          "conv": "linear_attention"}  # LFM2's layer_types: short-convolution layers


def _period(s: Section, rule: dict, what: str) -> int:
    """The rule's period: its key when given (or the class default), else its fixed ``period``."""
    key = rule.get("period_key")
    default = int(rule.get("period", 1))
    return s.size(key, what, high=MAX_PERIOD, default=default) if key else default


def _every(s: Section, rule: dict, n: int) -> tuple[str, ...]:
    """Layer i is ``hit`` when (i + 1) is a multiple of the period (Gemma 3, Qwen3.5, Llama 4)."""
    p = _period(s, rule, "layer pattern period")
    phase, first, skip = rule.get("phase", 0), rule.get("first", False), rule.get("skip_first", False)
    hits = (((i + 1 - phase) % p == 0 and not (skip and i == 0)) or (first and i == 0) for i in range(n))
    return tuple(rule["hit"] if h else rule["miss"] for h in hits)


def _from_index(s: Section, rule: dict, n: int) -> tuple[str, ...]:
    """Layers from index ``start`` on are ``hit`` (Qwen2/3 with use_sliding_window)."""
    when = rule.get("when")
    if (when and not s.switch(when, False)) or s.value("sliding_window") is None:
        return (rule["miss"],) * n
    start = s.size(rule["start_key"], "first sliding layer", low=0, high=MAX_PERIOD, default=n)
    return tuple(rule["hit"] if i >= start else rule["miss"] for i in range(n))


def _alternate_below(s: Section, rule: dict, n: int) -> tuple[str, ...]:
    """Qwen2-MoE: with use_sliding_window, every other layer below max_window_layers slides (from layer 0)."""
    if not s.switch(rule["when"], False):
        return (rule["miss"],) * n
    start = s.size(rule["start_key"], "sliding layers' bound", low=0, high=MAX_PERIOD, default=n)
    return tuple(rule["hit"] if (i + 1) % 2 and i < start else rule["miss"] for i in range(n))


def _period_offset(s: Section, rule: dict, n: int) -> tuple[bool, ...]:
    """Layer i is picked when i % period == offset (Jamba)."""
    p = _period(s, rule, "layer period")
    key = rule.get("offset_key")
    off = s.size(key, "layer offset", low=0, high=p - 1, default=rule.get("offset", 0)) if key else rule.get("offset", 0)
    if not 0 <= off < p:
        raise PlannerInputError(s.field(key or "offset"), f"offset {off} is not below the period {p}",
                                f"give an offset from 0 to {p - 1}")
    return tuple(i % p == off for i in range(n))


def _pattern(s: Section, rule: dict, n: int | None) -> tuple[str, ...] | None:
    """A string with one character per layer (Nemotron-H ``hybrid_override_pattern``: M mamba, * attention,
    - MLP, E MoE)."""
    key = rule["key"]
    text = s.text(key)
    if not text:
        return None
    bad = sorted(set(text) - set(rule["map"]))
    if bad:
        raise PlannerInputError(s.field(key), f"has characters {bad[:5]} this family does not use",
                                f"use only {sorted(rule['map'])}")
    return tuple(rule["map"][c] for c in text)


def _listed(s: Section, rule: dict, n: int) -> tuple[str, ...] | None:
    """A per-layer list of numbers mapped to types (MiMo ``hybrid_layer_pattern``, Llama 4 ``no_rope_layers``)."""
    key = rule["key"]
    if not s.given(key):
        return None
    values = s.ints(s.found(*s.keys(key)), "layer flag", 0, 1 << 20)
    if not values:
        return None
    try:
        return tuple(rule["map"][str(v)] for v in values)
    except KeyError:
        raise PlannerInputError(s.field(key), f"holds values other than {sorted(rule['map'])}",
                                f"write one of {sorted(rule['map'])} per layer") from None


def _index_lists(s: Section, rule: dict, n: int) -> tuple[str, ...] | None:
    """Lists of layer numbers per type (Kimi Linear ``linear_attn_config``: full_attn_layers, kda_layers, from 1),
    the layers no list names ``rest`` (LFM2: full_attn_idxs, the rest short convolutions)."""
    sec = s.sub(rule["section"]) if rule.get("section") else s
    if sec is None or not all(sec.has(k) for k in rule["lists"]):
        return None
    out: list[str | None] = [rule.get("rest")] * n
    base = rule.get("base", 0)
    for key, kind in rule["lists"].items():
        for i in sec.ints(key, "layer number", base, n - 1 + base):
            out[i - base] = kind
    if any(k is None for k in out):
        missing = [i + base for i, k in enumerate(out) if k is None][:5]
        raise PlannerInputError(sec.field(next(iter(rule["lists"]))), f"does not place layers {missing}",
                                "list every layer in one of " + ", ".join(rule["lists"]))
    return tuple(out)  # type: ignore[arg-type]


def _from_rule(s: Section, rule: dict, n: int) -> tuple[str, ...] | None:
    """The rule's layer types, else (``None``) its ``else`` rule's."""
    out = _one_rule(s, rule, n)
    if out is None and rule.get("else"):
        return _from_rule(s, rule["else"], n)
    return out


def _one_rule(s: Section, rule: dict, n: int) -> tuple[str, ...] | None:
    kind = rule["rule"]
    if kind not in LAYER_RULES:
        raise ValueError(f"unknown layer rule {kind!r}")  # a bad families file, not bad input
    return LAYER_RULES[kind](s, rule, n)


# profiles/model_families.json "layers" rule -> the layer types it gives
LAYER_RULES = {
    "every": _every,
    "from_index": _from_index,
    "alternate_below": _alternate_below,
    "period_offset": lambda s, rule, n: tuple(rule["hit"] if x else rule["miss"] for x in _period_offset(s, rule, n)),
    "pattern": _pattern,
    "list": _listed,
    "index_lists": _index_lists,
    "all": lambda s, rule, n: (rule["type"],) * n,
}


def _generic(s: Section, n: int) -> tuple[str, ...]:
    """transformers' cache_utils.get_layer_types_and_kwargs when a config has no layer_types."""
    if s.value("sliding_window") is not None and s.traits.get("window_means_sliding", True):
        return ("sliding_attention",) * n
    if s.value("attention_chunk_size") is not None:
        return ("chunked_attention",) * n
    return ("full_attention",) * n


def _class_pattern(s: Section, n: int) -> tuple[str, ...] | None:
    pattern = (s.entry or {}).get("layer_pattern")
    if not pattern:
        return None
    s.notes.append(f"{s.field('layer_types')} absent: the period of {s.entry['class']}'s default pattern "
                   f"({len(pattern)} layers) repeated")
    return tuple(pattern[i % len(pattern)] for i in range(n))


def layer_types(s: Section, n: int) -> tuple[str, ...]:
    """One transformers layer type per layer: given, by the family's rule, by the class's default
    pattern, or transformers' generic reading. Legacy names remapped as transformers does."""
    rule = s.family.get("layers")
    if s.given("layer_types"):
        types = s.names("layer_types")
    else:
        types = (_from_rule(s, rule, n) if rule else None) or _class_pattern(s, n) or _generic(s, n)
    types = tuple(LEGACY.get(t, t) for t in types)
    if rule and rule.get("last") and types:  # Gemma 4 forces its last layer global, given or not
        types = types[:-1] + (rule["hit"],)
    return types


def _first_k(s: Section, rule: dict, n: int) -> tuple[bool, ...]:
    """DeepSeek: dense before first_k_dense_replace, then MoE every moe_layer_freq layers (or a per-layer list)."""
    first = s.size(rule.get("first_key", "first_k_dense_replace"), "first MoE layer", low=0, high=MAX_PERIOD,
                   default=rule.get("first", 0))
    freq_key = rule.get("freq_key", "moe_layer_freq")
    if isinstance(s.value(freq_key), list):
        flags = s.ints(s.found(*s.keys(freq_key)), "MoE flag", 0, 1)
        if len(flags) != n:
            raise PlannerInputError(s.field(freq_key), f"has {len(flags)} entries for {n} layers",
                                    "give one 0/1 per layer")
        return tuple(bool(f) for f in flags)
    freq = s.size(freq_key, "MoE layer frequency", high=MAX_PERIOD, default=1)
    return tuple(i >= first and i % freq == 0 for i in range(n))


def _sparse_step(s: Section, rule: dict, n: int) -> tuple[bool, ...]:
    """Qwen MoE: layer i is MoE when (i + 1) % decoder_sparse_step == 0 and i is not in mlp_only_layers."""
    step = s.size("decoder_sparse_step", "MoE layer step", high=MAX_PERIOD, default=1)
    key = s.found(*s.keys("mlp_only_layers"))
    dense = set(s.ints(key, "layer index", 0, MAX_PERIOD)) if key else set()
    return tuple(i not in dense and (i + 1) % step == 0 for i in range(n))


def _start_end(s: Section, rule: dict, n: int) -> tuple[bool, ...]:
    """ERNIE 4.5: MoE where (i + 1) % moe_layer_interval == 0 and moe_layer_start_index <= i <= moe_layer_end_index
    (-1: the last layer; transformers 5.23 Ernie4_5_MoeDecoderLayer)."""
    start = s.size("moe_layer_start_index", "first MoE layer", low=0, high=MAX_PERIOD, default=1)
    end = s.value("moe_layer_end_index")
    end = n - 1 if end is None or end == -1 else s.size("moe_layer_end_index", "last MoE layer", low=0, high=MAX_PERIOD)
    step = s.size("moe_layer_interval", "MoE layer interval", high=MAX_PERIOD, default=1)
    return tuple((i + 1) % step == 0 and start <= i <= end for i in range(n))


def _interleave(s: Section, rule: dict, n: int) -> tuple[bool, ...]:
    """Llama 4: the listed moe_layers, else every interleave_moe_layer_step-th layer (from step - 1)."""
    key = s.found(*s.keys("moe_layers"))
    if key and isinstance(s.cfg.get(key), list):
        picked = set(s.ints(key, "layer index", 0, MAX_PERIOD))
        return tuple(i in picked for i in range(n))
    step = s.size("interleave_moe_layer_step", "MoE layer step", high=MAX_PERIOD, default=1)
    return tuple(i % step == step - 1 for i in range(n))


def moe_layers(s: Section, n: int, types: tuple[str, ...]) -> tuple[bool, ...]:
    """Which layers route to experts (callers check there are experts at all)."""
    key = s.found(*s.keys("mlp_layer_types"))
    if key:
        given = s.texts(key)
        if len(given) != n:
            raise PlannerInputError(s.field(key), f"has {len(given)} entries for {n} layers", "give one per layer")
        return tuple(t in ("sparse", "moe", "hash_moe") for t in given)
    if any(t in ("moe", "mlp") for t in types):  # block-per-layer families: the pattern says it
        return tuple(t == "moe" for t in types)
    rule = s.family.get("moe") or {}
    return MOE_RULES.get(rule.get("rule", "all"), MOE_RULES["all"])(s, rule, n)


# profiles/model_families.json "moe" rule -> which layers route to experts (any other: every layer)
MOE_RULES = {
    "first_k": _first_k,
    "sparse_step": _sparse_step,
    "interleave": _interleave,
    "start_end": _start_end,
    "period_offset": _period_offset,
    "all": lambda s, rule, n: (True,) * n,
}

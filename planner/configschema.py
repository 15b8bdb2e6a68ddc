"""Reading a config.json the way transformers' configuration classes read it, without importing them.

transformers knows about 800 ``model_type``s. What its configuration classes do to a config.json is
recorded offline (``scripts/gen_config_schema.py``) in ``profiles/config_schema.json``: per model_type
the class's ``attribute_map`` (``n_embd`` is ``hidden_size`` for GPT-2), the defaults of its fields
(what a config that leaves a key out gets) and its sub-configs (``text_config``, ``vision_config``: which
class reads each, with which defaults). ``profiles/model_families.json`` adds what the classes do in
code and the modelling files decide: extra key names, the layer-pattern rules, the architecture traits
(biases, gated MLPs, norms), each with its transformers source file. Importing this module never imports
transformers (planner/ stays pure; a CLI call stays fast).

``open_config(raw)`` finds the language model (the config itself, or its ``text_config``), the vision
tower's section and the outer config, each as a ``Section``: a ``ConfigReader`` that reads by the
canonical name (``hidden_size``), tries the class's own name first, falls back to the class default and
lists every default it used. A model_type neither file knows is read by the generic names below, and
the spec says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from .configread import ConfigReader
from .errors import PlannerInputError

# Names remote-code configs (not in transformers) and older files use for the canonical fields.
# The class's attribute_map and the family's own aliases are tried first.
ALIASES: dict[str, tuple[str, ...]] = {
    "hidden_size": ("n_embd", "d_model", "model_dim", "dim"),
    "num_hidden_layers": ("n_layer", "num_layers", "n_layers"),
    "num_attention_heads": ("n_head", "num_heads", "n_heads"),
    "num_key_value_heads": ("n_head_kv", "num_kv_heads", "n_kv_heads", "multi_query_group_num"),
    "intermediate_size": ("ffn_dim", "n_inner", "ffn_hidden_size"),
    "vocab_size": ("padded_vocab_size",),
    "max_position_embeddings": ("n_positions", "max_sequence_length", "seq_length"),
    "num_experts": ("num_local_experts", "n_routed_experts", "moe_num_experts"),
    "num_experts_per_tok": ("num_experts_per_token", "moe_top_k", "top_k_experts", "moe_k", "moe_topk",
                            "experts_per_token"),
    "shared_expert_intermediate_size": ("shared_intermediate_size", "moe_shared_expert_intermediate_size"),
    "n_shared_experts": ("num_shared_experts",),
    "sliding_window": ("sliding_window_size",),
    "layer_types": ("layers_block_type",),
    "mamba_n_heads": ("mamba_num_heads",),
    "mamba_d_head": ("mamba_head_dim",),
    "mamba_d_state": ("ssm_state_size",),
    "mamba_d_conv": ("conv_kernel",),
    "mamba_expand": ("expand",),
    "mamba_n_groups": ("n_groups",),
    "mamba_conv_bias": ("use_conv_bias",),
}
TEXT_KEYS = ("text_config", "llm_config", "language_config")  # where wrappers keep the language model
INHERITED = ("quantization_config", "torch_dtype", "dtype")   # the outer config's, when the text part lacks them


@lru_cache(maxsize=1)
def schema() -> dict:
    """profiles/config_schema.json: generated from transformers' configuration classes (read by
    planner/profiles.py, the one module that reads files; imported here when first needed, since
    profiles imports the spec that imports this module)."""
    from . import profiles
    return profiles.read_json(profiles.ROOT / "config_schema.json", "config_schema.json")


@lru_cache(maxsize=1)
def families() -> dict:
    """profiles/model_families.json: aliases, layer rules and architecture traits per model_type."""
    from . import profiles
    return profiles.read_json(profiles.ROOT / "model_families.json", "model_families.json")["model_types"]


def class_entry(model_type: str) -> dict | None:
    """What transformers' configuration class of ``model_type`` does (None: transformers does not know it)."""
    return schema()["model_types"].get(model_type)


@lru_cache(maxsize=1024)
def family(model_type: str) -> dict:
    """The family facts of ``model_type``, ``like`` chains resolved (the nearer entry wins)."""
    fam = families()
    entry, seen, chain = fam.get(model_type), set(), []
    while entry is not None and id(entry) not in seen:
        seen.add(id(entry))
        chain.append(entry)
        entry = fam.get(entry.get("like", ""))
    out: dict[str, Any] = {"traits": {}, "aliases": {}, "known": bool(chain)}
    for e in reversed(chain):
        out.update({k: v for k, v in e.items() if k not in ("traits", "aliases")})
        out["traits"] = {**out["traits"], **e.get("traits", {})}
        out["aliases"] = {**out["aliases"], **e.get("aliases", {})}
    return out


class Section(ConfigReader):
    """One config object read by canonical names, with its class's aliases and defaults.

    ``size("num_attention_heads", ...)`` tries the family's own names, the class's attribute_map name,
    the canonical name and the generic aliases, in that order; absent, it takes the class default (and
    notes it), then the caller's default, else it refuses naming the key.
    """

    def __init__(self, cfg: dict, where: str, model_type: str, notes: list[str]):
        super().__init__(cfg, where)
        self.model_type = model_type
        self.entry = class_entry(model_type)
        self.family = family(model_type)
        self.notes = notes

    @property
    def traits(self) -> dict[str, Any]:
        return self.family["traits"]

    def keys(self, name: str) -> tuple[str, ...]:
        own = tuple(self.family["aliases"].get(name, ()))
        mapped = (self.entry or {}).get("attribute_map", {}).get(name)
        out = own + ((mapped,) if mapped else ()) + (name,) + ALIASES.get(name, ())
        return tuple(dict.fromkeys(out))

    def given(self, name: str) -> bool:
        return self.has(*self.keys(name))

    def class_default(self, name: str) -> Any:
        """What the class gives when the config leaves ``name`` out (an explicit null is not left out)."""
        keys = self.keys(name)
        if self.entry is None or any(k in self.cfg for k in keys):
            return None
        defaults = self.entry["defaults"]
        return next((defaults[k] for k in keys if k in defaults), None)

    def size(self, name: str, what: str, *, high: int, low: int = 1, default: Any = ...) -> int:
        """A whole number: given, else the class default (noted), else ``default`` (``...``: required)."""
        keys = self.keys(name)
        if self.has(*keys):
            return self.int(what, *keys, high=high, low=low)
        d = self.class_default(name)
        if isinstance(d, int | float) and not isinstance(d, bool):
            self.notes.append(f"{self.field(name)} absent: {self.entry['class']} default {d}")
            return self.whole(name, d, what, low, high)
        return self.int(what, *keys, default=default, high=high, low=low)

    def switch(self, name: str, default: bool = False) -> bool:
        """true/false: given, else the class default, else ``default``."""
        key = self.found(*self.keys(name))
        if key is not None:
            return self.flag(key, default)
        d = self.class_default(name)
        return d if isinstance(d, bool) else default

    def value(self, name: str) -> Any:
        """The raw value under the first name given (validated by the caller), or the class default."""
        key = self.found(*self.keys(name))
        return self.cfg[key] if key is not None else self.class_default(name)

    def names(self, name: str) -> tuple[str, ...]:
        key = self.found(*self.keys(name))
        return self.texts(key) if key is not None else tuple(self.class_default(name) or ())

    def sub(self, key: str) -> Section | None:
        """A nested object (``linear_attn_config``) read with the same model_type."""
        r = self.section(key)
        return None if r is None else Section(r.cfg, r.where, self.model_type, self.notes)


@dataclass
class Opened:
    """A config.json taken apart: the language model, the vision tower (if any) and the outer object."""

    text: Section
    outer: Section
    vision: Section | None
    notes: list[str] = field(default_factory=list)

    @property
    def multimodal(self) -> bool:
        return self.text is not self.outer


def _model_type(cfg: dict, where: str) -> str:
    mt = ConfigReader(cfg, where).text("model_type")
    return mt.strip().lower()[:80]


def _sub_spec(entry: dict | None, key: str) -> dict:
    return ((entry or {}).get("sub_configs") or {}).get(key) or {}


def _text_key(raw: dict, entry: dict | None) -> str | None:
    """The sub-config holding the decoder: the class says (get_text_config), else a wrapper's usual keys."""
    if entry is not None:
        key = entry.get("text_key")
        if key or entry.get("sub_configs"):
            return key
    r = ConfigReader(raw)
    if r.has(*ALIASES["num_hidden_layers"], "num_hidden_layers"):
        return None
    return next((k for k in TEXT_KEYS if isinstance(raw.get(k), dict)), None)


def _sub_config(raw: dict, key: str, entry: dict | None, outer_mt: str) -> tuple[dict, str] | None:
    """(config dict, model_type) of sub-config ``key`` as transformers builds it: a class fixed by the
    outer class wins over the dict's model_type; absent, the class's default sub-config."""
    spec = _sub_spec(entry, key)
    sub = raw.get(key)
    if sub is not None and not isinstance(sub, dict):
        raise PlannerInputError(f"config.json:{key}", "must be an object", "write it as {...} or leave it out")
    if sub is None and not spec:
        return None
    if sub is None and spec.get("optional"):
        return None
    given_mt = _model_type(sub, f"config.json:{key}") if sub else ""
    mt = spec.get("model_type") or given_mt or spec.get("default_model_type") or f"{outer_mt}_{key[:-7]}"
    cfg = dict(sub) if sub is not None else dict(spec.get("defaults") or {})
    return cfg, mt


def open_config(raw: dict) -> Opened:
    """Take a config.json apart into its language model, vision tower and outer object."""
    notes: list[str] = []
    outer_mt = _model_type(raw, "config.json")
    entry = class_entry(outer_mt)
    outer = Section(raw, "config.json", outer_mt, notes)
    key = _text_key(raw, entry)
    text = outer
    if key and key not in raw and outer.has(*outer.keys("num_hidden_layers")):
        # a composite class, but the file is flat (Step-3.7): the top level is the language model
        mt = _sub_spec(entry, key).get("model_type") or _sub_spec(entry, key).get("default_model_type") or outer_mt
        text = Section(raw, "config.json", mt, notes)
        notes.append(f"{key} absent but the top level holds the language model: read as {mt}")
    elif key:
        nested = raw.get("thinker_config")
        if key not in raw and isinstance(nested, dict) and isinstance(nested.get(key), dict):
            # the checkpoint keeps its language model one level down (Qwen3-ASR's release: thinker_config.text_config,
            # where transformers' Qwen3ASRConfig expects text_config at the top): read it there, not the default
            raw = {**raw, key: nested[key]}
            notes.append(f"{key} read from thinker_config.{key}, where this checkpoint keeps its language model"
                         + ("; its audio encoder (thinker_config.audio_config) is not counted"
                            if isinstance(nested.get("audio_config"), dict) else ""))
        found = _sub_config(raw, key, entry, outer_mt)
        if found is not None:
            cfg, mt = found
            for k in INHERITED:
                if k in raw and k not in cfg:
                    cfg[k] = raw[k]
            text = Section(cfg, f"config.json:{key}", mt, notes)
            if key not in raw:
                notes.append(f"{key} absent: {entry['class'] if entry else outer_mt}'s default language model ({mt})")
    vision = None
    vfound = _sub_config(raw, "vision_config", entry, outer_mt) if key else None
    if vfound is None and isinstance(raw.get("vision_config"), dict):
        vfound = (raw["vision_config"], _model_type(raw["vision_config"], "config.json:vision_config"))
    if vfound is not None:
        vision = Section(vfound[0], "config.json:vision_config", vfound[1], notes)
    return Opened(text, outer, vision, notes)

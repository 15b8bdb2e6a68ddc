"""The planner's reading of a config checked against transformers' own objects (needs torch and transformers).

* ``hf_text_config(cfg)``: transformers' configuration object of the language model (``get_text_config``);
  ``config_differences(spec, cfg)`` lists where the planner's normalised fields (heads, KV heads, head_dim,
  widths, layer kinds, window, experts) disagree with it.
* ``meta_count(cfg)``: the parameters of the model transformers builds on the meta device (no memory used):
  the causal LM, or the whole image-text-to-text model when the config has a vision tower, plus the
  checkpoint tensors transformers keeps as buffers (DeepSeek's ``e_score_correction_bias``). Counted per
  layer and for the vision part, and cached on disk per config hash and transformers version under
  ``.cache/meta-params/`` (gitignored), so the test suite and ``inspect --verify`` build each model once.
* ``verify(spec, cfg)``: both counts side by side, with the layers and parts where they differ and which
  number to use (the meta count when the analytic inventory lacks a piece), each with its provenance.

The planner's core never imports this module (planner/ stays free of torch); the CLI's ``inspect --verify``
imports it lazily.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from planner import configschema
from planner.params import inventory, params_total
from planner.spec import ATTENTION_KINDS, CHUNKED, MLA_KINDS, SLIDING, ModelSpec

CACHE = Path(os.environ.get("KV_PLANNER_META_CACHE", Path(__file__).resolve().parent.parent / ".cache" / "meta-params"))
_LAYER = re.compile(r"(?:^|\.)(?:layers|h|blocks|layer)\.(\d+)\.")
BUFFERS_IN_CHECKPOINT = ("e_score_correction_bias",)  # buffers in transformers, tensors in the checkpoint


def _quiet():
    warnings.filterwarnings("ignore")
    import transformers
    transformers.logging.set_verbosity_error()
    return transformers


def build_config(cfg: dict) -> Any:
    """transformers' config object for ``cfg`` (a remote-code family with a transformers twin is built as the
    twin: families' ``build_as``); quantization left out: counts do not depend on the format."""
    transformers = _quiet()
    cfg = {k: v for k, v in cfg.items() if k != "quantization_config"}
    mt = str(cfg.get("model_type") or "")
    twin = configschema.family(mt).get("build_as")
    if twin:
        cfg["model_type"] = twin
    return transformers.AutoConfig.for_model(**cfg)


def hf_text_config(cfg: dict) -> Any:
    return build_config(cfg).get_text_config(decoder=True)


def _head_dim(t) -> int:
    hd = getattr(t, "head_dim", None)
    return hd if isinstance(hd, int) else t.hidden_size // t.num_attention_heads


_KIND = {"full_attention": "full", "sliding_attention": SLIDING, "chunked_attention": CHUNKED,
         "indexed_attention": "sparse_mla", "moe": "none", "mlp": "none", "attention": "full", "mamba": "state",
         "linear_attention": "state", "conv": "state"}  # conv: LFM2's short-convolution layers


def _kinds_of(spec: ModelSpec) -> list[str]:
    """The planner's kinds in transformers' coarser vocabulary (MLA is full attention there; states alike)."""
    out = []
    for k in spec.layer_kinds:
        if k in MLA_KINDS:
            out.append("sparse_mla" if k == "sparse_mla" else "full")
        else:
            out.append("state" if k in ("linear", "mamba") else k)
    return out


def config_differences(spec: ModelSpec, cfg: dict) -> list[str]:
    """Fields where the planner's normalised config differs from transformers' text config object."""
    t = hf_text_config(cfg)
    out = []

    def check(name, ours, theirs):
        if theirs is not None and ours != theirs:
            out.append(f"{name}: planner {ours!r}, transformers {theirs!r}")

    check("hidden_size", spec.hidden_size, t.hidden_size)
    check("num_hidden_layers", spec.num_layers, t.num_hidden_layers)
    check("vocab_size", spec.vocab_size, t.vocab_size)
    if getattr(t, "is_heterogeneous", False):  # per-layer shapes (Gemma 4's global layers): layer by layer
        out += _per_layer_differences(spec, t)
    else:
        check("num_attention_heads", spec.num_heads, t.num_attention_heads)
        if not spec.is_mla:
            check("num_key_value_heads", spec.num_kv_heads, getattr(t, "num_key_value_heads", None) or t.num_attention_heads)
            check("head_dim", spec.head_dim, _head_dim(t))
    types = getattr(t, "layer_types", None)
    if types:
        check("layer_types", _kinds_of(spec), [_KIND.get(x, x) for x in types])
    if SLIDING in spec.layer_kinds:
        check("sliding_window", spec.sliding_window, getattr(t, "sliding_window", None))
    if spec.is_moe:
        experts = next((getattr(t, k) for k in ("num_local_experts", "num_experts", "n_routed_experts")
                        if isinstance(getattr(t, k, None), int)), None)
        check("num_experts", spec.num_experts, experts)
        top_k = next((getattr(t, k) for k in ("num_experts_per_tok", "top_k_experts", "moe_topk")
                      if isinstance(getattr(t, k, None), int)), None)
        check("num_experts_per_tok", spec.experts_per_token, top_k)
    return out


def _per_layer_differences(spec: ModelSpec, t) -> list[str]:
    out = []
    for i, lc in enumerate(t.per_layer_config):
        kind = spec.layer_kinds[i]
        if kind not in ATTENTION_KINDS or kind in MLA_KINDS:
            continue
        a = spec.attn_shape(kind)
        theirs = (lc.num_attention_heads, lc.num_key_value_heads, _head_dim(lc))
        ours = (a["num_heads"], a["num_kv_heads"], a["head_dim"])
        if ours != theirs:
            out.append(f"layer {i} ({kind}) heads, KV heads, head_dim: planner {ours}, transformers {theirs}")
    return out


# ---- meta-device parameter counts ------------------------------------------------------------------
@dataclass
class MetaCount:
    total: int
    per_layer: dict[int, int] = field(default_factory=dict)
    vision: int = 0   # everything outside the language model: vision (and audio) towers, projectors
    outside: int = 0
    model_class: str = ""
    transformers_version: str = ""


def _key(cfg: dict, full: bool) -> str:
    import transformers
    text = json.dumps(cfg, sort_keys=True, default=str) + f"|full={full}|{transformers.__version__}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _build(cfg: dict, full: bool):
    import torch
    transformers = _quiet()
    conf = build_config(cfg)
    classes = ([transformers.AutoModelForImageTextToText] if full else []) + [transformers.AutoModelForCausalLM]
    if not full:
        classes.append(transformers.AutoModelForImageTextToText)
    err = None
    for cls in classes:
        try:
            with torch.device("meta"):
                return cls.from_config(conf)
        except (ValueError, KeyError) as e:  # this auto class does not map the config: try the next
            err = e
    raise err


def _decoder_ids(model) -> set[int]:
    """The language model's parameters (get_decoder) and the lm_head: everything else is a vision or audio
    tower or a projector."""
    try:
        dec = model.get_decoder()
    except (AttributeError, NotImplementedError):
        dec = None
    ids = {id(p) for p in (dec.parameters() if dec is not None else model.parameters())}
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    return ids | ({id(p) for p in head.parameters()} if head is not None else set())


def _count(model) -> MetaCount:
    import transformers
    per: dict[int, int] = {}
    towers = outside = total = 0
    text = _decoder_ids(model)
    named = list(model.named_parameters()) + [(n, b) for n, b in model.named_buffers()
                                               if n.endswith(BUFFERS_IN_CHECKPOINT)]
    for name, p in named:
        n = p.numel()
        total += n
        m = _LAYER.search(name)
        if id(p) not in text and not name.endswith(BUFFERS_IN_CHECKPOINT):
            towers += n
        elif m:
            per[int(m.group(1))] = per.get(int(m.group(1)), 0) + n
        else:
            outside += n
    return MetaCount(total, per, towers, outside, type(model).__name__, transformers.__version__)


def meta_count(cfg: dict, full: bool = False) -> MetaCount:
    """Parameters transformers builds from ``cfg`` on the meta device (``full``: with the vision tower),
    cached on disk per config hash."""
    path = CACHE / f"{_key(cfg, full)}.json"
    if path.is_file():
        d = json.loads(path.read_text())
        d["per_layer"] = {int(k): v for k, v in d["per_layer"].items()}
        return MetaCount(**d)
    count = _count(_build(cfg, full))
    CACHE.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=CACHE, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(asdict(count), f)
    os.replace(tmp, path)  # atomic: parallel test workers never read half a file
    return count


# ---- inspect --verify ----------------------------------------------------------------------------
def verify(spec: ModelSpec, cfg: dict) -> dict[str, Any]:
    """The analytic count against the meta-device build, where they differ, and which one to use."""
    try:
        meta = meta_count(cfg, full=bool(spec.vision_tensors))
    except Exception as e:  # noqa: BLE001 - any reason transformers cannot build it is the answer
        return {"params_analytic": params_total(spec), "params": params_total(spec),
                "params_source": "analytic (planner/params.py)",
                "meta_build": f"transformers cannot build this config: {type(e).__name__}: {str(e)[:200]}"}
    inv = inventory(spec)
    ours = inv.groupby("layer")["params"].sum().to_dict()
    layers = [f"layer {i}: planner {ours.get(i, 0):,}, transformers {meta.per_layer.get(i, 0):,}"
              for i in range(spec.num_layers) if ours.get(i, 0) != meta.per_layer.get(i, 0)]
    vision = int(inv.loc[inv["component"] == "vision", "params"].sum())
    parts = [f"{len(layers)} layers differ" if layers else "",
             f"vision/audio towers and projectors: planner {vision:,}, transformers {meta.vision:,}"
             if vision != meta.vision else ""]
    analytic = params_total(spec)
    same = analytic == meta.total
    return {"params_analytic": analytic, "params_meta": meta.total,
            "params": analytic if same else meta.total,
            "params_source": ("analytic = transformers meta build" if same else
                              f"transformers {meta.transformers_version} meta build of {meta.model_class} "
                              "(the analytic inventory lacks a piece: see params_differences)"),
            "params_differences": [p for p in parts if p] + layers[:8],
            "config_differences": _config_differences(spec, cfg)}


def _config_differences(spec: ModelSpec, cfg: dict) -> list[str]:
    try:
        return config_differences(spec, cfg)
    except Exception as e:  # noqa: BLE001
        return [f"transformers cannot read this config: {type(e).__name__}"]


__all__ = ["MetaCount", "config_differences", "hf_text_config", "meta_count", "verify"]

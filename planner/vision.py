"""The vision tower and projector of a vision-language model, as tensors, from its ``vision_config``.

A VLM serves its vision encoder from the same GPUs, so its weights count (vLLM loads them unless the
model is run text-only). Each tower family below follows its transformers modelling file (5.23) tensor
by tensor; a model_type's family is ``vision`` in profiles/model_families.json and its projector is the
outer family's ``projector``. A tower the planner does not know is left out and the spec says so.
Tensors are ``(role, rows, cols, count)``: ``cols`` 1 for vectors, ``count`` layers.

Tokens per image: what the config states (Gemma 3 ``mm_tokens_per_image``, Llava ``image_seq_length``,
Gemma 4 ``vision_soft_tokens_per_image``, Llama 4's fixed tiles); 0 where the count depends on the
image's resolution (Qwen-VL, Pixtral).
"""

from __future__ import annotations

from typing import Any

from .configschema import Opened, Section

Tensors = list[tuple[str, int, int, int]]
MAX_DIM = 1 << 16
MAX_DEPTH = 1024


def _dims(v: Section) -> dict[str, int]:
    return {"h": v.size("hidden_size", "vision width", high=MAX_DIM),
            "i": v.size("intermediate_size", "vision MLP width", high=1 << 20),
            "n": v.size("num_hidden_layers", "vision depth", high=MAX_DEPTH),
            "heads": v.size("num_attention_heads", "vision heads", high=MAX_DIM),
            "c": v.size("num_channels", "image channels", default=3, high=64),
            "p": v.size("patch_size", "patch size", high=1024)}


def _vit_layer(h: int, i: int, n: int, bias: bool = True, norm_bias: bool = True, gated: bool = False) -> Tensors:
    """One pre-norm ViT block: 2 norms, q/k/v/o, a (gated) MLP; ``count`` n."""
    b = int(bias)
    out = [("vision_norm", 2 * h * (2 if norm_bias else 1), 1, n), ("vision_attn", 4 * h, h, n),
           ("vision_mlp", (3 if gated else 2) * i, h, n)]
    if bias:
        out.append(("vision_bias", 4 * h * b + i + h, 1, n))
    return out


def _siglip(v: Section) -> Tensors:
    """SigLIP (Gemma 3): conv patches with bias, learned positions, LayerNorm blocks, post norm, optional head."""
    d = _dims(v)
    h, i = d["h"], d["i"]
    patches = (v.size("image_size", "image size", high=1 << 16) // d["p"]) ** 2
    out = [("vision_patch", h, d["c"] * d["p"] ** 2, 1), ("vision_bias", h, 1, 1), ("vision_pos", patches, h, 1),
           *_vit_layer(h, i, d["n"]), ("vision_norm", 2 * h, 1, 1)]
    if v.switch("vision_use_head", True):
        out += [("vision_pos", 1, h, 1), ("vision_attn", 4 * h, h, 1), ("vision_bias", 4 * h, 1, 1),
                ("vision_norm", 2 * h, 1, 1), ("vision_mlp", 2 * i, h, 1), ("vision_bias", i + h, 1, 1)]
    return out


def _clip(v: Section) -> Tensors:
    """CLIP (Llava): class token, conv patches without bias, positions for patches + 1, pre and post norms."""
    d = _dims(v)
    h = d["h"]
    patches = (v.size("image_size", "image size", high=1 << 16) // d["p"]) ** 2 + 1
    return [("vision_pos", 1, h, 1), ("vision_patch", h, d["c"] * d["p"] ** 2, 1), ("vision_pos", patches, h, 1),
            ("vision_norm", 2 * h, 1, 1), *_vit_layer(h, d["i"], d["n"]), ("vision_norm", 2 * h, 1, 1)]


def _pixtral(v: Section) -> Tensors:
    """Pixtral (Mistral 3): conv patches, RMSNorm, gated MLP, no biases, 2-D rotary positions."""
    d = _dims(v)
    h = d["h"]
    return [("vision_patch", h, d["c"] * d["p"] ** 2, 1), ("vision_norm", h, 1, 1),
            *_vit_layer(h, d["i"], d["n"], bias=False, norm_bias=False, gated=True)]


def _qwen_vl(v: Section) -> Tensors:
    """Qwen3-VL / Qwen3.5 vision: 3-D conv patches, learned positions, fused qkv, merger (+ deepstack mergers)."""
    d = _dims(v)
    h, s = d["h"], v.size("spatial_merge_size", "merge size", default=2, high=64)
    tp = v.size("temporal_patch_size", "temporal patch", default=2, high=64)
    out_h = v.size("out_hidden_size", "vision output width", high=MAX_DIM)
    merged = h * s * s
    pos = v.size("num_position_embeddings", "vision positions", high=1 << 20)
    merger = [("vision_mlp", merged, merged, 1), ("vision_mlp", out_h, merged, 1), ("vision_bias", merged + out_h, 1, 1)]
    deep = len(v.ints("deepstack_visual_indexes", "layer index", 0, MAX_DEPTH)) if v.has("deepstack_visual_indexes") \
        else len(v.class_default("deepstack_visual_indexes") or [])
    out = [("vision_patch", h, d["c"] * tp * d["p"] ** 2, 1), ("vision_bias", h, 1, 1), ("vision_pos", pos, h, 1),
           *_vit_layer(h, d["i"], d["n"]), ("vision_norm", 2 * h, 1, 1), *merger]
    for _ in range(deep):
        out += [("vision_norm", 2 * merged, 1, 1), *merger]
    return out


def _llama4(v: Section) -> Tensors:
    """Llama 4 vision: class token, linear patches, pre/post LayerNorms, biased blocks, pixel-shuffle adapter MLP."""
    d = _dims(v)
    h, i = d["h"], d["i"]
    patches = (v.size("image_size", "image size", high=1 << 16) // d["p"]) ** 2 + 1
    pin = v.size("projector_input_dim", "adapter width", high=1 << 20)
    pout = v.size("projector_output_dim", "adapter output", high=1 << 20)
    return [("vision_pos", 1, h, 1), ("vision_pos", patches, h, 1), ("vision_patch", h, d["c"] * d["p"] ** 2, 1),
            ("vision_norm", 4 * h, 1, 1), *_vit_layer(h, i, d["n"]), ("vision_mlp", pin, i, 1),
            ("vision_mlp", pout, pin, 1)]


def _gemma4(v: Section) -> Tensors:
    """Gemma 4 vision: linear patches, 2-D position table, q/k norms, gated MLP, 4 norms per block, no biases."""
    d = _dims(v)
    h, hd = d["h"], v.size("head_dim", "vision head dim", high=MAX_DIM)
    kv = v.size("num_key_value_heads", "vision KV heads", high=MAX_DIM)
    pos = v.size("position_embedding_size", "vision positions", high=1 << 20)
    heads = d["heads"]
    return [("vision_pos", 2 * pos, h, 1), ("vision_patch", h, 3 * d["p"] ** 2, 1),
            ("vision_attn", 2 * heads * hd, h, d["n"]), ("vision_attn", 2 * kv * hd, h, d["n"]),
            ("vision_norm", 2 * hd + 4 * h, 1, d["n"]), ("vision_mlp", 3 * d["i"], h, d["n"])]


TOWERS = {"siglip": _siglip, "clip": _clip, "pixtral": _pixtral, "qwen_vl": _qwen_vl, "llama4": _llama4,
          "gemma4": _gemma4}


def _projector(op: Opened, v: Section) -> Tensors:
    """The layers between the tower and the language model, per the outer family's ``projector``."""
    kind = op.outer.traits.get("projector", "")
    th, vh = op.text.size("hidden_size", "hidden size", high=1 << 18), v.size("hidden_size", "vision width", high=MAX_DIM)
    if kind == "gemma3":
        return [("vision_proj", vh, th, 1), ("vision_norm", vh, 1, 1)]
    if kind == "gemma4":
        return [("vision_proj", th, vh, 1)]
    if kind == "llava":
        bias = op.outer.switch("multimodal_projector_bias", True)
        return [("vision_proj", th, vh, 1), ("vision_proj", th, th, 1)] + ([("vision_bias", 2 * th, 1, 1)] if bias else [])
    if kind == "mistral3":
        s = op.outer.size("spatial_merge_size", "merge size", default=2, high=64)
        bias = op.outer.switch("multimodal_projector_bias", False)
        out = [("vision_norm", vh, 1, 1), ("vision_proj", vh, vh * s * s, 1), ("vision_proj", th, vh, 1),
               ("vision_proj", th, th, 1)]
        return out + ([("vision_bias", 2 * th, 1, 1)] if bias else [])
    if kind == "llama4":
        return [("vision_proj", th, v.size("vision_output_dim", "vision output", high=1 << 20), 1)]
    return []


def _tokens_per_image(op: Opened, v: Section) -> int:
    o = op.outer
    for key in ("mm_tokens_per_image", "image_seq_length", "vision_soft_tokens_per_image"):
        if o.has(key) or isinstance(o.class_default(key), int):
            return o.size(key, "tokens per image", low=0, high=1 << 20)
    if o.traits.get("projector") == "llama4":  # one tile: (image / patch)^2 patches, pixel-shuffled by ratio^2
        side = v.size("image_size", "image size", high=1 << 16) // v.size("patch_size", "patch size", high=1024)
        ratio = v.value("pixel_shuffle_ratio")
        return int(side * side * ratio * ratio) if isinstance(ratio, int | float) and 0 < ratio <= 1 else 0
    return 0


def from_config(op: Opened) -> dict[str, Any]:
    """ModelSpec fields of the vision part: its tensors and tokens per image (empty for a text model)."""
    v = op.vision
    if v is None:
        return {}
    tower = TOWERS.get(v.traits.get("vision", ""))
    if tower is None:
        op.notes.append(f"vision tower {v.model_type or '(no model_type)'} not counted: the planner has no "
                        "inventory for it (weights are the language model's only)")
        return {}
    tensors = tower(v) + _projector(op, v)
    for key in ("audio_config",):
        if isinstance(op.outer.cfg.get(key), dict):
            op.notes.append(f"{key}: the audio tower is not counted")
    return {"vision_tensors": tuple(tensors), "vision_tokens_per_image": _tokens_per_image(op, v)}

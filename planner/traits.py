"""A family's architecture traits (profiles/model_families.json ``traits``) as ModelSpec fields.

Traits are data: a fixed true/false or the config key that decides it (``qkv_bias: "attention_bias"``),
norms per layer, q/k norm widths, learned positions. Four old or odd layouts keep a small handler
here (Falcon's one ``bias`` flag and parallel norms, OPT's projections, StableLM's parallel residual,
Laguna's per-head gate); every other family is data only.
"""

from __future__ import annotations

from typing import Any

from .configschema import Section
from .spec import MAX_HIDDEN, MAX_POSITIONS, MAX_VOCAB


def trait_flag(t: Section, value: Any, default: bool = False) -> bool:
    """A trait is a fixed true/false, or the name of the config key that decides it."""
    if isinstance(value, str):
        return t.switch(value, default)
    return bool(value) if value is not None else default


def traits(t: Section, d: dict, kinds: tuple[str, ...]) -> dict[str, Any]:
    """Bias, norm, MLP and embedding details that change parameter counts, from the family's traits."""
    tr = t.traits
    qkv = trait_flag(t, tr.get("qkv_bias", "attention_bias"))
    qk = tr.get("qk_norm", "")
    if qk and tr.get("qk_norm_key") and not t.switch(tr["qk_norm_key"], False):
        qk = ""
    out = dict(q_bias=qkv, kv_bias=qkv, o_bias=trait_flag(t, tr.get("o_bias", "attention_bias")),
               qk_norm=qk in ("head", "full"), qk_norm_full=qk == "full",
               attn_output_gate=bool(tr.get("attn_output_gate")), attention_sinks=bool(tr.get("attention_sinks")),
               mlp_gated=trait_flag(t, tr.get("mlp_gated", True), True), mlp_bias=trait_flag(t, tr.get("mlp_bias", "mlp_bias")),
               norm_bias=bool(tr.get("norm_bias")), norms_per_layer=int(tr.get("norms_per_layer", 2)),
               final_norm=trait_flag(t, tr.get("final_norm", True), True), lm_head_bias=trait_flag(t, tr.get("lm_head_bias", False)),
               shared_expert_bias=trait_flag(t, tr.get("shared_expert_bias", False)),
               router_scale=bool(tr.get("router_scale")), moe_norms=int(tr.get("moe_norms", 0)),
               double_wide_shared_mlp=trait_flag(t, tr.get("double_wide_shared_mlp", False)))
    if tr.get("learned_positions"):
        out["learned_positions"] = t.size(tr["learned_positions"], "position count", high=MAX_POSITIONS) \
            + int(tr.get("position_offset", 0))
    if tr.get("per_layer_inputs") and t.size("hidden_size_per_layer_input", "per-layer input width", default=0,
                                              low=0, high=MAX_HIDDEN):
        out["per_layer_input_size"] = t.size("hidden_size_per_layer_input", "per-layer input width", low=0,
                                             high=MAX_HIDDEN)
        out["per_layer_vocab_size"] = t.size("vocab_size_per_layer_input", "per-layer input vocabulary",
                                             default=d["vocab_size"], high=MAX_VOCAB)
    handler = _HANDLERS.get(tr.get("handler", ""))
    if handler:
        handler(t, d, out)
    return out


def _falcon(t: Section, d: dict, out: dict) -> None:
    """Falcon: one ``bias`` flag for every linear; one norm for a parallel block, or num_ln_in_parallel_attn."""
    bias = t.switch("bias", False)
    if t.switch("new_decoder_architecture", False):
        norms = t.size("num_ln_in_parallel_attn", "norms per layer", default=2, high=2)
    else:
        norms = 1 if t.switch("parallel_attn", True) else 2
    out.update(q_bias=bias, kv_bias=bias, o_bias=bias, mlp_bias=bias, norms_per_layer=norms)
    if t.switch("alibi", False):
        t.notes.append("ALiBi positions: no rotary or learned position parameters")


def _opt(t: Section, d: dict, out: dict) -> None:
    """OPT: ``enable_bias``; post-norm without a final norm; 512-wide embeddings projected (OPT-350m)."""
    bias = t.switch("enable_bias", True)
    out.update(q_bias=bias, kv_bias=bias, o_bias=bias, mlp_bias=bias,
               final_norm=t.switch("do_layer_norm_before", True) and not t.switch("_remove_final_layer_norm", False))
    proj = t.size("word_embed_proj_dim", "embedding projection width", default=d["hidden_size"], high=MAX_HIDDEN)
    out["word_embed_proj_dim"] = proj if proj != d["hidden_size"] else 0


def _parallel_norm(t: Section, d: dict, out: dict) -> None:
    """StableLM: one norm per layer when ``use_parallel_residual``; q/k LayerNorms per head when qk_layernorm."""
    if t.switch("use_parallel_residual", False):
        out["norms_per_layer"] = 1
    out["qk_norm"] = t.switch("qk_layernorm", False)


def _laguna(t: Section, d: dict, out: dict) -> None:
    """Laguna: ``gating`` true or "per-head": one output gate per head; any other value: one per channel."""
    gating = t.value("gating")
    out["attn_gate_per_head"] = gating is True or gating == "per-head"
    out["attn_output_gate"] = bool(gating) and not out["attn_gate_per_head"]


_HANDLERS = {"falcon": _falcon, "opt": _opt, "parallel_norm": _parallel_norm, "laguna": _laguna}

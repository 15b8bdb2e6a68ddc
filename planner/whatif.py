"""What-if variants of a model's attention: MHA / GQA / MQA regroupings, MLA, no sliding window.

None of these is a checkpoint: regrouping a trained model's heads needs uptraining (Ainslie et al.
2023), and an MLA conversion needs training too. They answer "how would the KV cache, batch and
context change", and every variant says so in its name and assumptions.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .spec import ATTENTION_KINDS, CHUNKED, FULL, MLA, SLIDING, ModelSpec

AS_SHIPPED, NO_WINDOW, MLA_KIND = "as shipped", "all layers full", "MLA"


@dataclass(frozen=True)
class MlaLatent:
    """The cached sizes of multi-head latent attention: one ``kv_lora_rank`` latent and one
    ``qk_rope_head_dim`` rotary key per token per layer, shared by every head."""

    kv_lora_rank: int
    qk_rope_head_dim: int
    source: str


# The MLA what-if caches what DeepSeek-V3 caches. Source: its config.json (deepseek-ai/DeepSeek-V3,
# bundled as profiles/models/DeepSeek-V3): kv_lora_rank 512, qk_rope_head_dim 64; the same sizes as
# DeepSeek-V2 (arXiv:2405.04434, section 2.1.3: d_c = 4 d_h = 512, d_h^R = d_h / 2 = 64).
MLA_WHAT_IF = MlaLatent(512, 64, "DeepSeek-V3 config.json (kv_lora_rank 512, qk_rope_head_dim 64); "
                                 "DeepSeek-V2, arXiv:2405.04434 section 2.1.3")


def attention_variant(spec: ModelSpec, kind: str, latent: MlaLatent = MLA_WHAT_IF) -> ModelSpec:
    """``spec`` as shipped, with every windowed layer full (``NO_WINDOW``), as MLA (``MLA_KIND``,
    ``latent``'s sizes; an MLA model is returned as it is) or regrouped to ``int(kind)`` KV heads."""
    if kind == AS_SHIPPED:
        return spec
    if kind == NO_WINDOW:
        return replace(spec, layer_kinds=tuple(FULL if k in (SLIDING, CHUNKED) else k for k in spec.layer_kinds),
                       sliding_window=0, attn_overrides=(), name=f"{spec.name} [no sliding window what-if]")
    if kind == MLA_KIND:
        if spec.is_mla:
            return spec
        return replace(spec, layer_kinds=tuple(MLA if k in ATTENTION_KINDS else k for k in spec.layer_kinds),
                       attn_overrides=(), kv_lora_rank=latent.kv_lora_rank, qk_rope_head_dim=latent.qk_rope_head_dim,
                       qk_nope_head_dim=spec.head_dim, q_lora_rank=0, sliding_window=0,
                       name=f"{spec.name} [MLA what-if]",
                       assumptions=spec.assumptions + (f"what-if: MLA with {latent.source}",))
    return spec.with_kv_heads(int(kind))


def attention_variants(spec: ModelSpec) -> list[tuple[str, str]]:
    """(kind for ``attention_variant``, label) worth comparing for ``spec``: as shipped; for a non-MLA
    model MHA, a GQA what-if (8, 4 or 2 KV heads, when the model is not GQA already), MQA and MLA; no
    sliding window when the model has one."""
    heads, kvh = spec.num_heads, spec.num_kv_heads
    out = [(AS_SHIPPED, f"as shipped: {spec.attention_label}")]
    if not spec.is_mla:
        out.append((str(heads), f"MHA ({heads} KV heads)"))
        gqa = None if 1 < kvh < heads else next((d for d in (8, 4, 2) if heads % d == 0 and d < heads), None)
        if gqa:
            out.append((str(gqa), f"GQA ({gqa} KV heads)"))
        out.append(("1", "MQA (1 KV head)"))
        out.append((MLA_KIND, f"MLA what-if (latent {MLA_WHAT_IF.kv_lora_rank} + rope {MLA_WHAT_IF.qk_rope_head_dim})"))
    if spec.sliding_window:
        out.append((NO_WINDOW, "no sliding window (all full)"))
    return out


def cached_per_token_per_layer(spec: ModelSpec) -> str:
    """What one attention layer caches per token, in words."""
    if MLA in spec.layer_kinds:  # one latent per token shared by every head: no KV-head count applies
        return f"latent {spec.kv_lora_rank} + rope {spec.qk_rope_head_dim}"
    return f"K+V: 2 x {spec.num_kv_heads} heads x {spec.head_dim}"

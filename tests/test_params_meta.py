"""Parameter counts against the model transformers builds on the meta device (nanoGPT's check).

Every bundled config must match exactly: the causal LM, or for a vision-language model the whole
image-text-to-text model (vision tower and projector included), plus the checkpoint tensors transformers
keeps as buffers (DeepSeek's e_score_correction_bias). A remote-code family with a transformers twin is
built as the twin (Kimi-K2 as DeepSeek-V3). The meta builds are cached on disk per config hash
(profiler/metacount.py), so a rerun builds nothing. The tiny configs cover every layer kind.
"""

import json

import pytest

from planner import profiles
from planner.params import param_breakdown, params_active, params_total
from planner.spec import ModelSpec
from profiler.metacount import meta_count
from tiny_configs import TINY

# Bundled configs transformers cannot build as-is, with the reason (none today).
CANNOT_BUILD: dict[str, str] = {}


@pytest.mark.parametrize("name", sorted(TINY))
def test_tiny_param_count_matches_meta_device(name):
    spec = ModelSpec.from_hf_config(TINY[name], name)
    assert params_total(spec) == meta_count(TINY[name]).total


@pytest.mark.parametrize("name", profiles.model_names())
def test_bundled_param_count_matches_meta_device(name):
    if name in CANNOT_BUILD:
        pytest.skip(CANNOT_BUILD[name])
    cfg = json.loads((profiles.ROOT / "models" / name / "config.json").read_text())
    spec = profiles.load_model(name)
    meta = meta_count(cfg, full=bool(spec.vision_tensors))
    assert params_total(spec) == meta.total, (name, meta.model_class)


@pytest.mark.parametrize("name", [n for n in profiles.model_names() if n in
                                  ("gemma-3-4b-it", "Qwen3-VL-8B-Instruct", "Mistral-Small-3.1-24B-Instruct-2503",
                                   "Llama-4-Scout-17B-16E-Instruct", "gemma-4-26B-A4B", "Qwen3.5-27B")])
def test_vision_towers_match_on_their_own(name):
    """The vision part alone (tower + projector) equals transformers' non-language-model parameters."""
    cfg = json.loads((profiles.ROOT / "models" / name / "config.json").read_text())
    spec = profiles.load_model(name)
    assert spec.vision_tensors, name
    assert param_breakdown(spec)["vision"] == meta_count(cfg, full=True).vision


@pytest.mark.parametrize("name", sorted(TINY))
def test_breakdown_sums_to_total_and_active_at_most_total(name):
    spec = ModelSpec.from_hf_config(TINY[name], name)
    assert sum(param_breakdown(spec).values()) == params_total(spec)
    assert 0 < params_active(spec) <= params_total(spec)
    assert (params_active(spec) < params_total(spec)) == spec.is_moe


def test_vision_weights_are_held_but_not_read_per_token():
    """Gemma 3 4B: the SigLIP tower and projector count in the total, not in what one text token touches."""
    if "gemma-3-4b-it" not in profiles.model_names():
        pytest.skip("gemma-3-4b-it not bundled")
    spec = profiles.load_model("gemma-3-4b-it")
    vision = param_breakdown(spec)["vision"]
    # 27 SigLIP blocks of width 1152 (MLP 4304) + patches, positions, norms; projector 1152 x 2560 + norm
    assert vision == 419_816_304
    assert params_total(spec) - params_active(spec) == vision
    assert spec.vision_tokens_per_image == 256  # Gemma3Config.mm_tokens_per_image


@pytest.mark.parametrize("name", ["DeepSeek-V3", "DeepSeek-R1"])
def test_deepseek_v3_counts_the_router_correction_bias_transformers_keeps_as_a_buffer(name):
    # The one difference between the planner and transformers' parameters, asserted on its own: 61
    # layers, the first 3 dense (first_k_dense_replace), so 58 MoE layers, each with a 256-value
    # e_score_correction_bias (n_routed_experts): 58 x 256 = 14,848 values the checkpoint stores and the
    # planner counts, that transformers registers as buffers (profiler/metacount.py counts them back in).
    from profiler.metacount import _build
    cfg = json.loads((profiles.ROOT / "models" / name / "config.json").read_text())
    assert (cfg["num_hidden_layers"], cfg["first_k_dense_replace"], cfg["n_routed_experts"]) == (61, 3, 256)
    spec = profiles.load_model(name)
    model = _build(cfg, full=False)
    assert params_total(spec) - sum(p.numel() for p in model.parameters()) == 14_848
    buffers = [b.numel() for n, b in model.named_buffers() if n.endswith("e_score_correction_bias")]
    assert (len(buffers), sum(buffers)) == (58, 14_848)
    from planner.params import inventory
    inv = inventory(spec)
    bias = inv[(inv["component"] == "router") & (inv["role"] == "bias")]
    assert (len(bias), int(bias["params"].sum())) == (58, 14_848)


def test_qwen3_14b_counts_what_its_card_publishes():
    """By hand, from profiles/models/Qwen3-14B/config.json (hidden 5120, 40 layers, 40 q / 8 kv heads of 128,
    MLP 17408, vocab 151936, untied): per layer q and o 5120 x 5120 = 26,214,400 each, k and v 5120 x 1024 =
    5,242,880 each, MLP 3 x 5120 x 17408 = 267,386,880, q/k norms 2 x 128, two RMSNorms 2 x 5120:
    330,311,936; x 40 = 13,212,477,440 (the card's 13.2B non-embedding); embeddings and lm_head 2 x 151936 x
    5120 = 1,555,824,640; final norm 5120: 14,768,307,200 (the card's 14.8B)."""
    assert params_total(profiles.load_model("Qwen3-14B")) == 14_768_307_200

"""Parameter counts against the model transformers builds on the meta device (nanoGPT's check).

Every bundled config must build with the pinned transformers and match exactly; the tiny configs
cover every layer kind. Explained differences are in EXPECTED_DIFFERENCE with the arithmetic.
"""

import json

import pytest
import torch
import transformers

from planner import profiles
from planner.params import inventory, param_breakdown, params_active, params_total
from planner.spec import ModelSpec
from tiny_configs import TINY

# Known, explained differences (planner - transformers' parameters): DeepSeek-V3/R1 store a router
# e_score_correction_bias of n_routed_experts values in each MoE layer, which the checkpoint holds and
# the planner counts, but transformers registers as a buffer, not a parameter: 58 MoE layers
# (61 - first_k_dense_replace 3) x 256 experts = 14,848. (Both also ship a multi-token-prediction
# layer, num_nextn_predict_layers, that neither transformers nor the planner builds.)
EXPECTED_DIFFERENCE = {"DeepSeek-V3": 58 * 256, "DeepSeek-R1": 58 * 256}


def meta_model(cfg: dict):
    """The model transformers builds from ``cfg`` on the meta device (no memory, no weights)."""
    cfg = dict(cfg)
    if "text_config" in cfg and "num_hidden_layers" not in cfg:
        text = dict(cfg["text_config"])
        text.setdefault("model_type", cfg["model_type"] + "_text")
        cfg = text
    cfg.pop("quantization_config", None)  # build the unquantized model: counts are format-independent
    conf = transformers.AutoConfig.for_model(**cfg)
    with torch.device("meta"):
        return transformers.AutoModelForCausalLM.from_config(conf)


def meta_count(cfg: dict) -> int:
    return sum(p.numel() for p in meta_model(cfg).parameters())


@pytest.mark.parametrize("name", sorted(TINY))
def test_tiny_param_count_matches_meta_device(name):
    spec = ModelSpec.from_hf_config(TINY[name], name)
    assert params_total(spec) == meta_count(TINY[name])


@pytest.mark.parametrize("name", profiles.model_names())
def test_bundled_param_count_matches_meta_device(name):
    # Every bundled config must build with the pinned transformers: a config it cannot build fails
    # here (no skip), so a count that cannot be checked is never reported as checked.
    cfg = json.loads((profiles.ROOT / "models" / name / "config.json").read_text())
    spec = profiles.load_model(name)
    assert params_total(spec) - meta_count(cfg) == EXPECTED_DIFFERENCE.get(name, 0)


@pytest.mark.parametrize("name", ["DeepSeek-V3", "DeepSeek-R1"])
def test_deepseek_v3_counts_the_router_correction_bias_transformers_keeps_as_a_buffer(name):
    # The one known difference, asserted on its own: 61 layers, the first 3 dense
    # (first_k_dense_replace), so 58 MoE layers, each with a 256-value e_score_correction_bias
    # (n_routed_experts): 58 x 256 = 14,848 values the planner counts as parameters (the checkpoint
    # stores them) and transformers registers as buffers.
    cfg = json.loads((profiles.ROOT / "models" / name / "config.json").read_text())
    assert (cfg["num_hidden_layers"], cfg["first_k_dense_replace"], cfg["n_routed_experts"]) == (61, 3, 256)
    spec = profiles.load_model(name)
    model = meta_model(cfg)
    assert params_total(spec) - sum(p.numel() for p in model.parameters()) == 14_848
    buffers = [b.numel() for n, b in model.named_buffers() if n.endswith("e_score_correction_bias")]
    assert (len(buffers), sum(buffers)) == (58, 14_848)
    inv = inventory(spec)
    bias = inv[(inv["component"] == "router") & (inv["role"] == "bias")]
    assert (len(bias), int(bias["params"].sum())) == (58, 14_848)


@pytest.mark.parametrize("name", sorted(TINY))
def test_breakdown_sums_to_total_and_active_at_most_total(name):
    spec = ModelSpec.from_hf_config(TINY[name], name)
    assert sum(param_breakdown(spec).values()) == params_total(spec)
    assert 0 < params_active(spec) <= params_total(spec)
    assert (params_active(spec) < params_total(spec)) == spec.is_moe

"""Reading a config the way transformers' configuration classes do (planner/configschema.py, layerrules.py),
from profiles/config_schema.json without importing transformers."""

import json
import subprocess
import sys

import pytest

from planner import configschema, layerrules, profiles
from planner.configschema import Section, open_config
from planner.errors import PlannerInputError
from planner.spec import ModelSpec


def test_the_schema_records_its_transformers_version_and_800_types():
    s = configschema.schema()
    assert s["transformers_version"] == "5.23.0" and len(s["model_types"]) > 800
    gpt2 = configschema.class_entry("gpt2")
    assert gpt2["attribute_map"]["hidden_size"] == "n_embd" and gpt2["causal_lm"] == "GPT2LMHeadModel"


def test_names_come_from_the_class_attribute_map_then_the_generic_aliases():
    notes = []
    s = Section({"n_embd": 48, "n_layer": 3}, "config.json", "gpt2", notes)
    assert s.size("hidden_size", "hidden", high=10**6) == 48 and s.size("num_hidden_layers", "n", high=99) == 3
    # absent: GPT2Config's default (12 heads), noted
    assert s.size("num_attention_heads", "heads", high=99) == 12
    assert notes == ["config.json:num_attention_heads absent: GPT2Config default 12"]
    unknown = Section({"d_model": 32}, "config.json", "my_custom_lm", [])
    assert unknown.size("hidden_size", "hidden", high=10**6) == 32
    with pytest.raises(PlannerInputError, match="num_attention_heads: missing"):
        unknown.size("num_attention_heads", "heads", high=99)


def test_an_explicit_null_is_not_the_class_default():
    """DeepSeek-V2-Lite writes q_lora_rank: null (no query compression); DeepseekV2Config's default is 1536."""
    s = Section({"q_lora_rank": None}, "config.json", "deepseek_v2", [])
    assert s.size("q_lora_rank", "rank", default=0, low=0, high=10**6) == 0
    assert Section({}, "config.json", "deepseek_v2", []).size("q_lora_rank", "rank", default=0, low=0, high=10**6) == 1536


def test_sub_configs_as_transformers_builds_them():
    """Llava's text_config names only what differs from LlamaConfig; Gemma 3's vision tower is SigLIP's."""
    op = open_config({"model_type": "llava", "text_config": {"model_type": "llama", "vocab_size": 32064}})
    assert op.text.model_type == "llama" and op.text.size("hidden_size", "h", high=10**6) == 4096
    assert op.vision.model_type == "clip_vision_model"
    flat = open_config({"model_type": "step3p7", "num_hidden_layers": 3, "hidden_size": 64})
    assert flat.text.cfg["num_hidden_layers"] == 3 and "top level holds the language model" in flat.notes[0]


def test_layer_rules_match_transformers_code():
    """Values scripts/check_families.py compares with transformers' objects; here worked by hand."""
    qwen35 = Section({"full_attention_interval": 3}, "config.json", "qwen3_5_text", [])
    assert layerrules.layer_types(qwen35, 6) == ("linear_attention", "linear_attention", "full_attention") * 2
    nemo = Section({"hybrid_override_pattern": "M-*E"}, "config.json", "nemotron_h", [])
    assert layerrules.layer_types(nemo, 4) == ("linear_attention", "mlp", "full_attention", "moe")
    ds = Section({"first_k_dense_replace": 2, "moe_layer_freq": 1}, "config.json", "deepseek_v3", [])
    assert layerrules.moe_layers(ds, 4, ("full_attention",) * 4) == (False, False, True, True)
    maverick = Section({"interleave_moe_layer_step": 2}, "config.json", "llama4_text", [])
    assert layerrules.moe_layers(maverick, 4, ("full_attention",) * 4) == (False, True, False, True)
    legacy = Section({"layer_types": ["mamba", "attention"]}, "config.json", "granitemoehybrid", [])
    assert layerrules.layer_types(legacy, 2) == ("linear_attention", "full_attention")


@pytest.mark.parametrize("cfg, field, feature", [
    ({"model_type": "bert", "architectures": ["BertModel"]}, "architectures", "not a causal language model"),
    ({"model_type": "rwkv"}, "hidden_size", "RWKV time-mix"),
    ({"model_type": "mllama", "text_config": {"cross_attention_layers": [3, 8]}}, "cross_attention_layers",
     "cross-attention layers"),
    ({"model_type": "recurrent_gemma"}, "layer_types", "recurrent layers of recurrent_gemma"),
    ({"model_type": "deepseek_v4"}, "hc_mult", "hyper-connections"),  # the class default hc_mult 4
])
def test_what_is_not_modelled_is_refused_by_name(cfg, field, feature):
    with pytest.raises(PlannerInputError) as e:
        ModelSpec.from_hf_config(cfg)
    assert field in e.value.field and feature in e.value.problem


def test_reading_a_config_imports_no_transformers():
    code = ("import sys, json; from planner.spec import ModelSpec; "
            "ModelSpec.from_hf_config(json.load(open('profiles/models/gemma-4-26B-A4B/config.json'))); "
            "print([m for m in ('torch', 'transformers') if m in sys.modules])")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stderr


def test_the_families_file_names_a_source_for_every_entry():
    fam = json.loads((profiles.ROOT / "model_families.json").read_text())["model_types"]
    assert all(e.get("source") or e.get("like") for e in fam.values())

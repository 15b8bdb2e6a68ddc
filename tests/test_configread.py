"""configread: the JSON text's limits and the one validating reader every config value goes through."""

import json

import pytest

from planner import configread
from planner.configread import ConfigReader
from planner.errors import PlannerInputError
from planner.spec import MAX_LAYERS, ModelSpec
from tiny_configs import TINY


def test_depth_size_and_huge_numbers_are_refused_or_defused():
    assert configread.json_depth('{"a": [1, {"b": "[[[["}]}') == 3  # brackets inside strings do not count
    with pytest.raises(PlannerInputError, match="nested more than 64"):
        configread.loads("[" * 100_000 + "]" * 100_000)
    with pytest.raises(PlannerInputError, match="too large"):
        configread.loads(b" " * 2_000_001)
    with pytest.raises(PlannerInputError, match="UTF-8"):
        configread.loads(b"\xff\xfe{}")
    # a 5,000-digit literal is read as inf (Python's int() would refuse past 4,300 digits): a value out of range
    assert configread.loads('{"x": ' + "9" * 5000 + "}") == {"x": float("inf")}
    assert configread.loads('{"x": 123456789012345678}') == {"x": 123456789012345678}


@pytest.mark.parametrize("value, problem", [
    (True, "got true"), ("64", "the text '64'"), (1.5, "got 1.5"), (float("nan"), "got nan"),
    (float("inf"), "got inf"), ([], "got a list of 0"), ({}, "got an empty object"),
    (0, "0 is not a possible"), (-1, "-1 is not a possible"), (10**40, "about 10^40"), (2**63, "9,223,372"),
])
def test_a_whole_number_is_a_whole_number_in_range(value, problem):
    with pytest.raises(PlannerInputError) as e:
        ConfigReader({"n": value}).int("count", "n", high=100)
    assert e.value.field == "config.json:n" and problem in e.value.problem and e.value.fix


def test_the_reader_takes_integral_floats_aliases_and_defaults():
    r = ConfigReader({"n_embd": 64.0, "flag": 1, "q": {"bits": 4}})
    assert r.int("hidden", "hidden_size", "n_embd", high=100) == 64
    assert r.int("missing", "absent", default=7, high=10) == 7
    assert r.flag("flag", False) is True and r.flag("absent", True) is True
    assert r.section("q").int("bits", "bits", high=16) == 4
    with pytest.raises(PlannerInputError) as e:
        r.section("q").int("bits", "bits", high=3)
    assert e.value.field == "config.json:q.bits"
    with pytest.raises(PlannerInputError, match="true or false"):
        ConfigReader({"flag": "yes"}).flag("flag", False)


@pytest.mark.parametrize("key, value", [
    ("decoder_sparse_step", 0), ("sliding_window_pattern", 0), ("attn_layer_period", 0),
    ("full_attention_interval", 0), ("moe_layer_freq", 0), ("mlp_only_layers", [{}]),
    ("layer_types", [{"a": 1}, {"a": 1}]), ("architectures", 5), ("model_type", ["llama"]),
    ("num_hidden_layers", MAX_LAYERS + 1), ("tie_word_embeddings", "abc"),
])
def test_zero_periods_and_wrong_types_are_refused_by_name(key, value):
    cfgs = {"decoder_sparse_step": "qwen3-moe", "sliding_window_pattern": "gemma3-interleaved",
            "attn_layer_period": "jamba-hybrid", "full_attention_interval": "qwen3next-hybrid",
            "moe_layer_freq": "deepseek-mla", "mlp_only_layers": "qwen3-moe"}
    cfg = {**TINY[cfgs.get(key, "llama-gqa")], key: value}
    if key == "full_attention_interval":
        cfg.pop("layer_types")
    with pytest.raises(PlannerInputError) as e:
        ModelSpec.from_hf_config(cfg)
    assert key in e.value.field


def test_sizes_that_would_wrap_int64_are_refused():
    # 4096 layers x 3 x 262,144 hidden x (16,384 experts x 4,194,304 wide) ~ 2.2e24 parameters
    cfg = {**TINY["mixtral-moe"], "num_hidden_layers": 4096, "hidden_size": 1 << 18, "num_attention_heads": 4,
           "num_local_experts": 1 << 14, "intermediate_size": 1 << 22}
    with pytest.raises(PlannerInputError, match="parameters") as e:
        ModelSpec.from_hf_config(cfg)
    assert e.value.field == "config.json:num_experts"


def test_quantization_values_are_checked_and_text_survives():
    cfg = {**TINY["llama-gqa"], "quantization_config": {"quant_method": "gptq", "bits": float("nan")}}
    with pytest.raises(PlannerInputError) as e:
        ModelSpec.from_hf_config(cfg)
    assert e.value.field == "config.json:quantization_config.bits"
    odd = {**TINY["llama-gqa"], "quantization_config": {"quant_method": "[x", "modules": ["a"], "bits": 4}}
    assert ModelSpec.from_hf_config(odd).quant == {"quant_method": "[x", "modules": ["a"], "bits": 4}


def test_a_spec_built_by_hand_is_held_to_the_same_counts():
    s = ModelSpec.from_hf_config(TINY["llama-gqa"])
    from dataclasses import replace
    with pytest.raises(PlannerInputError, match="num_kv_heads"):
        replace(s, num_kv_heads=0)
    with pytest.raises(PlannerInputError, match="hidden_size"):
        replace(s, hidden_size=True)
    assert json.loads(json.dumps(s.quant)) == {}

"""A property-based fuzz of the config reader (scripts/fuzz_parser.py): 2,400 mutated copies of the bundled and
corpus configs, fixed by seed so CI runs the same cases every time. Each must answer with finite, non-negative
parameters and KV bytes, or refuse in one line naming a field: never a traceback."""

import pytest

from scripts import fuzz_parser as fz

SHARDS, PER_SHARD = 12, 200  # 2,400 cases, spread over the test workers


@pytest.mark.parametrize("shard", range(SHARDS))
def test_mutated_configs_answer_or_name_a_field(shard):
    cases = fz.cases(SHARDS * PER_SHARD)[shard * PER_SHARD:(shard + 1) * PER_SHARD]
    failures = [(label, problem) for label, cfg in cases if (problem := fz.check(cfg))]
    assert not failures, failures[:3]


@pytest.mark.parametrize("patch", [
    {"model_type": "bert"}, {"model_type": "recurrent_gemma"}, {"model_type": "qwen3_5_text", "layer_types": None},
    {"layer_types": ["hybrid", "hybrid"]}, {"hybrid_override_pattern": "MX"}, {"text_config": []},
    {"model_type": "nemotron_h", "hybrid_override_pattern": ""}, {"model_type": "llama4_text", "no_rope_layers": [2, 2]},
    {"model_type": "gemma4_text", "num_kv_shared_layers": 2}, {"model_type": "deepseek_v32", "kv_lora_rank": 8},
])
def test_hostile_family_switches_are_answered_or_refused_by_name(patch):
    from tiny_configs import TINY
    assert fz.check({**TINY["llama-gqa"], **patch}) == ""


def test_the_checker_catches_what_it_must():
    assert fz.check({"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4,
                     "vocab_size": 10, "intermediate_size": 8}) == ""
    assert len(fz.cases(2400)) == 2400 and len({label for label, _ in fz.cases(2400)}) > 2000

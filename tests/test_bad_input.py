"""Bad input gets one clear message naming the field (PlannerInputError), exit code 2 from the CLI,
never a traceback and never a NaN or negative number."""

import json
import subprocess
import sys

import pytest

from planner.errors import PlannerInputError
from planner.memory import Deployment
from planner.spec import ModelSpec
from tiny_configs import TINY

GOOD = TINY["llama-gqa"]


@pytest.mark.parametrize("mutate, field", [
    # a model_type transformers does not know has no class defaults to fall back on
    (lambda c: c.update(model_type="my_custom_lm") or c.pop("num_hidden_layers"), "num_hidden_layers"),
    (lambda c: c.update(model_type="my_custom_lm") or c.pop("num_attention_heads"), "num_attention_heads"),
    (lambda c: c.update(num_attention_heads=0), "num_attention_heads"),
    (lambda c: c.update(hidden_size=-64), "hidden_size"),
    (lambda c: c.update(num_key_value_heads=3), "num_key_value_heads"),  # 4 heads do not split into 3 groups
    (lambda c: c.update(num_key_value_heads=8), "num_key_value_heads"),  # more KV heads than heads
    (lambda c: c.update(hidden_size=65, head_dim=None), "num_attention_heads"),  # 65 not divisible by 4
    (lambda c: c.update(vocab_size="big"), "vocab_size"),
    (lambda c: c.update(num_hidden_layers=10**9), "num_hidden_layers"),
    (lambda c: c.update(layer_types=["full_attention"]), "layer_types"),
    (lambda c: c.update(layer_types=["warp_attention"] * 2), "layer_types"),
    (lambda c: c.update(architectures=["BertForMaskedLM"]), "architectures"),
])
def test_bad_configs_name_the_field(mutate, field):
    cfg = json.loads(json.dumps(GOOD))
    mutate(cfg)
    with pytest.raises(PlannerInputError) as e:
        ModelSpec.from_hf_config(cfg)
    assert field in str(e.value)


def test_a_key_left_out_takes_the_class_default_and_says_so():
    """transformers saves only what differs from its class defaults, so a left-out key means the default
    (LlamaConfig.num_hidden_layers = 32); the planner takes it and lists it among its assumptions."""
    cfg = {k: v for k, v in GOOD.items() if k != "num_hidden_layers"}
    spec = ModelSpec.from_hf_config(cfg)
    assert spec.num_layers == 32
    assert any("num_hidden_layers absent: LlamaConfig default 32" in a for a in spec.assumptions)


@pytest.mark.parametrize("text", ["", "{not json", "[1, 2]", "null", '"a string"'])
def test_malformed_json(text):
    with pytest.raises(PlannerInputError) as e:
        ModelSpec.from_json_text(text)
    assert "config.json" in str(e.value)


@pytest.mark.parametrize("kw, field", [
    ({"tp": 0}, "tp"), ({"tp": -2}, "tp"), ({"pp": 0}, "pp"), ({"gpu_memory_utilization": 1.5}, "gpu_memory_utilization"),
    ({"gpu_memory_utilization": 0}, "gpu_memory_utilization"), ({"engine": "tgi"}, "engine"),
    ({"kv_dtype": "fp6"}, "kv_dtype"), ({"max_num_seqs": 10**12}, "max_num_seqs"),
])
def test_bad_deployment(kw, field):
    with pytest.raises(PlannerInputError) as e:
        Deployment(**kw)
    assert field in str(e.value)


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "planner", *args], capture_output=True, text=True, timeout=120)


def test_cli_bad_input_exits_2_without_traceback(tmp_path):
    bad = tmp_path / "config.json"
    bad.write_text("{oops")
    for args in (["inspect", str(bad)], ["inspect", "no-such-model"], ["inspect", str(tmp_path), "--batch", "-1"]):
        r = run_cli(*args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr and r.stderr.startswith("error:")


def test_cli_inspect_path_and_batch_limits(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(GOOD))
    r = run_cli("inspect", str(tmp_path), "--json", "--batch", "2", "--context", "10")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    # 2 layers x 2 kv heads x (16+16) x 2 bytes = 256 B/token; 2 sequences x 10 tokens
    assert out["kv_bytes_per_token"] == 256 and out["kv_cache_bytes"] == 256 * 20
    r = run_cli("inspect", str(tmp_path), "--batch", str(10**12))
    assert r.returncode == 2 and "batch" in r.stderr

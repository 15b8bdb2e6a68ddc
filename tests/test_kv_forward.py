"""KV bytes against the cache tensors of a real forward pass on the CPU, for every layer kind."""

import pytest
import torch
import transformers

from planner import kv
from planner.spec import ModelSpec
from profiler.cache_bytes import cache_tensor_bytes
from tiny_configs import TINY


@pytest.mark.parametrize("name", sorted(TINY))
@pytest.mark.parametrize("length", [5, 20])  # 20 > the tiny sliding windows of 8
def test_transformers_cache_bytes_equal_prediction(name, length):
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(transformers.AutoConfig.for_model(**TINY[name])).eval()
    with torch.no_grad():
        out = model(input_ids=torch.randint(0, 100, (2, length)), use_cache=True)
    measured = cache_tensor_bytes(out.past_key_values)
    spec = ModelSpec.from_hf_config(TINY[name], name)
    groups = kv.layer_groups(spec, "fp32", "transformers", state_bytes=4)
    assert measured == kv.kv_cache_bytes(groups, 2, length, "transformers")

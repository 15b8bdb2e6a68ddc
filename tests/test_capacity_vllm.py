"""`capacity` against what vLLM itself prints at start-up.

vllm-project/vllm PR #10511 (sanity check posted 2024-12-13), `vllm serve meta-llama/Meta-Llama-3-8B`
on one H100 80GB HBM3 at the default gpu_memory_utilization 0.90:

    total_gpu_memory 79.22GiB; the current vLLM instance can use 71.29GiB; model weights take 14.96GiB;
    non_torch_memory 1.79GiB; PyTorch activation peak memory 1.26GiB; available_kv_cache_memory 53.29GiB
    (with -tp 2: model weights take 7.48GiB)

vLLM V1 then prints "GPU KV cache size: N tokens" with N = blocks x block_size and
"Maximum concurrency for L tokens per request: N / L" (PR #13596, vllm/v1/core/kv_cache_utils.py).
"""

import math

import pytest
from test_kv_known import LLAMA31_8B

from planner import api, profiles
from planner.spec import ModelSpec

# Meta-Llama-3-8B has the same shapes as Llama-3.1-8B (only rope scaling and max positions differ)
SPEC = ModelSpec.from_hf_config({**LLAMA31_8B, "max_position_embeddings": 8192, "rope_scaling": None}, "Meta-Llama-3-8B")
GIB = 2**30
pytestmark = pytest.mark.skipif("H100-SXM" not in profiles.gpus(), reason="needs the bundled H100-SXM profile")


def test_weights_and_usable_memory_match_vllms_log():
    c = api.capacity(SPEC, "H100-SXM", max_model_len=8192)
    assert c["total_memory_bytes_per_gpu"] / GIB == pytest.approx(79.22, abs=0.005)
    assert c["requested_memory_bytes_per_gpu"] / GIB == pytest.approx(71.29, abs=0.01)
    assert c["weight_bytes_per_gpu"] / GIB == pytest.approx(14.96, abs=0.005)
    assert api.capacity(SPEC, "H100-SXM", tp=2, max_model_len=8192)["weight_bytes_per_gpu"] / GIB == pytest.approx(
        7.48, abs=0.005)


def test_kv_budget_within_5_percent_of_vllms():
    # ours: 71.30 - 14.96 - 0.90 (activations at 8192 tokens) - 0.20 (non-torch, --enforce-eager figure)
    # = 55.24 GiB, against vLLM's 53.29 GiB (its non-torch memory was 1.79 GiB in that run): +3.7 %
    c = api.capacity(SPEC, "H100-SXM", max_model_len=8192)
    assert c["kv_budget_bytes_per_gpu"] / GIB == pytest.approx(53.29, rel=0.05)


def test_block_arithmetic_is_vllms():
    c = api.capacity(SPEC, "H100-SXM", max_model_len=8192)
    per_token = 32 * 2 * 8 * 128 * 2  # 128 KiB: layers x (K,V) x kv heads x head_dim x bf16
    assert c["kv_bytes_per_token_per_gpu"] == per_token
    blocks = math.floor(c["kv_budget_bytes_per_gpu"] / (16 * per_token))
    assert c["kv_cache_tokens"] == blocks * 16
    # "Maximum concurrency for 8,192 tokens per request: N / 8192 x"
    assert c["max_concurrency"] == pytest.approx(c["kv_cache_tokens"] / 8192)
    # at vLLM's own budget the same arithmetic gives its token count: 53.29 GiB -> 436,544 tokens
    assert math.floor(53.29 * GIB / (16 * per_token)) * 16 == 436_544


def test_fp8_kv_cache_doubles_the_tokens_tp_splits_kv_heads():
    bf16 = api.capacity(SPEC, "H100-SXM", max_model_len=8192)
    fp8 = api.capacity(SPEC, "H100-SXM", kv_dtype="fp8", max_model_len=8192)
    assert fp8["kv_bytes_per_token_per_gpu"] * 2 == bf16["kv_bytes_per_token_per_gpu"]
    assert fp8["kv_cache_tokens"] == pytest.approx(2 * bf16["kv_cache_tokens"], rel=1e-3)
    tp2 = api.capacity(SPEC, "H100-SXM", tp=2, max_model_len=8192)
    assert tp2["kv_bytes_per_token_per_gpu"] * 2 == bf16["kv_bytes_per_token_per_gpu"]


def test_a_model_that_does_not_fit_says_so():
    c = api.capacity(SPEC, "T4", max_model_len=8192)
    assert c["fits"] is False and c["kv_cache_tokens"] == 0 and "quantize" in c["reason"]

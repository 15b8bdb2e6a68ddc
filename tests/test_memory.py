"""The memory plan and its solvers, on an in-code H100 so the arithmetic is checkable by hand."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from synthetic import H100, RUNTIME, TABLE
from test_kv_known import LLAMA31_8B

from planner.memory import Deployment, MemoryModel, stage_layers, weight_bytes_per_gpu
from planner.spec import ModelSpec

SPEC = ModelSpec.from_hf_config(LLAMA31_8B, "llama-3.1-8b")


def mm(**kw):
    return MemoryModel.build(SPEC, H100, Deployment(**kw), TABLE, RUNTIME)


def test_weights_split_over_tp_norms_replicated():
    # 8,030,261,248 params x 2 bytes = 16,060,522,496 B; norms are 65 x 4096 = 266,240 params (replicated)
    assert weight_bytes_per_gpu(SPEC, TABLE, Deployment()) == 16_060_522_496
    norms = 2 * 266_240
    assert weight_bytes_per_gpu(SPEC, TABLE, Deployment(tp=2)) == (16_060_522_496 - norms) / 2 + norms


def test_pp_puts_embeddings_first_and_head_last():
    assert list(stage_layers(32, 3)) == [11, 11, 10]
    per_gpu = weight_bytes_per_gpu(SPEC, TABLE, Deployment(pp=2))
    # each stage: 16 layers x 218,112,000 x 2 B + one 128256 x 4096 x 2 B table (+ final norm on the last)
    assert per_gpu == 16 * 218_112_000 * 2 + 128_256 * 4096 * 2 + 4096 * 2


def test_quantized_weights_keep_embeddings_16bit():
    q = weight_bytes_per_gpu(SPEC, TABLE, Deployment(weights="q4"))
    # 6,979,584,000 layer params: matrices (6,979,584,000 - 32 x 8192 norms) at 4.5 bits, norms 16 bits
    layer_matrix = 6_979_584_000 - 32 * 8192
    expected = layer_matrix * 4.5 / 8 + (32 * 8192 + 4096) * 2 + 2 * 525_336_576 * 2
    assert q == pytest.approx(expected)


def test_plan_parts_add_up_and_capacity_is_measured_total_times_utilisation():
    p = mm().plan(np.array([1, 16]), 2048, 256)
    total = p["weights_bytes"] + p["kv_cache_bytes"] + p["activation_bytes"] + p["overhead_bytes"]
    np.testing.assert_allclose(total, p["total_bytes"])
    assert p["capacity_bytes"][0] == pytest.approx(81559 * 2**20 * 0.9)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 200_000), st.sampled_from(["paged", "transformers"]), st.sampled_from([1, 2, 4]))
def test_max_batch_is_the_boundary(prompt, engine, tp):
    m = mm(engine=engine, tp=tp)
    b = int(m.max_batch(prompt))
    if b > 0:
        assert m.plan(b, prompt)["fits"]
    assert not m.plan(b + 1, prompt)["fits"]


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 512), st.sampled_from(["paged", "transformers"]))
def test_max_context_is_the_boundary(batch, engine):
    m = mm(engine=engine)
    c = int(m.max_context(batch))
    if c > 0:
        assert m.plan(batch, c)["fits"]
    assert not m.plan(batch, c + 1)["fits"]


def test_vector_equals_scalar():
    m = mm()
    batches, prompts = np.array([1, 7, 64]), np.array([100, 3000, 9000])
    vec = m.plan(batches, prompts, 50)["total_bytes"]
    for i in range(3):
        assert vec[i] == m.plan(int(batches[i]), int(prompts[i]), 50)["total_bytes"]

"""The continuous-batching simulation against the mean-value model and queueing laws."""

import numpy as np
import pytest
from synthetic import H100, RUNTIME, TABLE
from test_kv_known import LLAMA31_8B

from planner.errors import PlannerInputError
from planner.memory import Deployment, MemoryModel
from planner.serving import Plan, evaluate
from planner.simulate import draw_lengths, simulate
from planner.spec import ModelSpec
from planner.timing import Efficiency, KernelFactor, build_timing

SPEC = ModelSpec.from_hf_config(LLAMA31_8B, "llama-3.1-8b")
EFF = Efficiency(memory=0.8, compute=0.7, step_overhead_s=2e-3, layer_overhead_s=3e-6)
DEP = Deployment()
MM = MemoryModel.build(SPEC, H100, DEP, TABLE, RUNTIME)
TM = build_timing(SPEC, H100, DEP, TABLE, EFF, KernelFactor())
CAP = float(MM.capacity_bytes - MM.weights_bytes - MM.activations(1, 8192) - MM.overhead)


def run(rate, n=600, prompt=1024, output=128, cap=CAP, **kw):
    return simulate(TM, rate, np.full(n, prompt), np.full(n, output), cap, **kw)


def test_light_load_equals_the_mean_value_model():
    # one request at a time: TTFT is a batch-1 prefill, TPOT a batch-1 decode step
    r = run(0.02, n=100)
    m = evaluate(Plan(MM, TM, "datasheet"), 1, 1024, 128)
    assert r.percentile("ttft", 50) == pytest.approx(float(m["ttft_s"]), rel=0.01)
    assert r.percentile("tpot", 50) == pytest.approx(float(m["tpot_s"]), rel=0.01)
    assert r.mean_queue == pytest.approx(0, abs=1e-3)


def test_littles_law_holds():
    r = run(10, n=2000)
    assert r.stable
    # L = lambda x W over the run (the time-average in the engine against the mean time spent in it)
    assert r.mean_running + r.mean_queue == pytest.approx(10 * r.e2e_s.mean(), rel=0.1)


def test_mean_value_model_cross_check_at_its_own_concurrency():
    # run the simulation at the arrival rate the mean-value model says batch b sustains (90 % of it):
    # the concurrency it settles at and its TPOT must be near the model's for that batch
    p = Plan(MM, TM, "datasheet")
    b = 32
    m = evaluate(p, b, 1024, 128)
    r = run(0.9 * float(m["requests_per_s"]), n=3000)
    assert r.stable
    assert r.mean_running == pytest.approx(0.9 * b, rel=0.35)
    assert r.percentile("tpot", 50) == pytest.approx(float(m["tpot_s"]), rel=0.25)


def test_latency_grows_with_load_and_overload_is_flagged():
    light, heavy = run(2), run(40)
    assert light.stable and light.percentile("ttft", 90) < heavy.percentile("ttft", 90)
    assert not run(200, n=3000).stable


def test_tight_kv_cache_preempts_and_still_finishes_everyone():
    per_token = 131072
    r = run(20, n=300, prompt=512, output=512, cap=per_token * 4000)  # room for ~4 requests at full length
    assert r.preemptions > 0
    assert r.completed == 300
    assert r.mean_running <= 8


def test_a_cache_too_small_for_one_prompt_is_an_input_error():
    with pytest.raises(PlannerInputError, match="KV cache"):
        run(1, n=10, prompt=4096, cap=131072 * 100)


def test_same_seed_same_answer_and_lengths_keep_their_mean():
    a, b = run(8, seed=3), run(8, seed=3)
    np.testing.assert_array_equal(a.ttft_s, b.ttft_s)
    rng = np.random.default_rng(0)
    for dist in ("fixed", "uniform", "exponential"):
        x = draw_lengths(500, dist, 20_000, rng)
        assert x.min() >= 1 and x.mean() == pytest.approx(500, rel=0.03)


def test_max_num_seqs_caps_concurrency():
    r = run(30, n=800, max_num_seqs=8)
    assert r.mean_running <= 8 + 1e-9


def test_closed_loop_keeps_the_concurrency_and_batches_prefills():
    one = simulate(TM, 0, np.full(50, 1024), np.full(50, 128), CAP, concurrency=1)
    m = evaluate(Plan(MM, TM, "datasheet"), 1, 1024, 128)
    assert one.percentile("ttft", 50) == pytest.approx(float(m["ttft_s"]), rel=0.01)
    c = 64
    r = simulate(TM, 0, np.full(1000, 1024), np.full(1000, 128), CAP, concurrency=c)
    assert r.mean_running + r.mean_queue == pytest.approx(c, rel=0.05)
    # with 64 in flight, new prompts wait for the step in progress and share steps: TTFT exceeds a lone prefill
    assert r.percentile("ttft", 50) > float(m["ttft_s"])


def test_sglang_admission_holds_back_a_share_of_every_running_request_s_remaining_output():
    # Llama-3.1-8B: 128 KiB of KV per token. A pool of 2,000 tokens, two clients of 100-token prompts and
    # 1,000-token outputs, one step's budget 8,192 tokens.
    # Incremental (vLLM): both prompts fit (200 tokens) and share the first pass: equal TTFTs.
    # SGLang (new_token_ratio): the first is admitted (nothing runs); the second needs its prompt + its
    # whole remaining output, 100 + 1,000 = 1,100 tokens, free after the first's charge of 100 + 1,000:
    # 2,000 - 1,100 = 900 < 1,100, so it waits. Next pass the first holds 101 cached tokens and
    # 0.7 x 999 = 699.3 reserved: 2,000 - 800.3 = 1,199.7 >= 1,100, so the second starts one pass later.
    from planner.scheduler import SchedulerProfile
    from planner.simulate import RATIO_DECAY, RATIO_INIT, RATIO_MIN

    per_token = 2 * 32 * 8 * 128 * 2  # K and V, 32 layers, 8 KV heads, head_dim 128, bf16 = 131,072 B
    cap = 2000 * per_token
    args = (TM, 0, np.full(2, 100), np.full(2, 1000), cap)
    vllm = SchedulerProfile("vllm", "0.11", 8192, 256)
    sglang = SchedulerProfile("sglang", "0.5", 8192, 256, reservation="new_token_ratio")
    a = simulate(*args, concurrency=2, profile=vllm, measure="all")
    b = simulate(*args, concurrency=2, profile=sglang, measure="all")
    assert a.ttft_s[0] == pytest.approx(a.ttft_s[1])
    assert b.ttft_s[0] == pytest.approx(a.ttft_s[0], rel=0.2)
    assert b.ttft_s[1] > b.ttft_s[0] * 1.05
    # the ratio: 0.7, falling to 0.7 x 0.14 = 0.098 over 600 decode steps
    assert (RATIO_INIT, RATIO_MIN, RATIO_DECAY) == pytest.approx((0.7, 0.098, (0.7 - 0.098) / 600))

"""Serving metrics (planner/serving.py): latency, throughput and cost against values derived by hand.

Llama-3.1-8B in bf16 on the in-code H100 ($3.00 per GPU-hour) with ideal efficiencies and
transformers' cache (no KV blocks), so each metric is a short formula of

  W   = 15,009,849,344 B  weights a forward pass reads (all but the input embedding table)
  KV  = 131,072 B         cache per token
  BW  = 3.35e12 B/s, PEAK = 989.4e12 FLOP/s

(tests/test_timing_known.py derives them). MEM_BOUND has a million times the FLOP/s, so every
phase takes bytes / BW.
"""

from dataclasses import replace

import numpy as np
import pytest
from synthetic import H100, RUNTIME, TABLE
from test_kv_known import LLAMA31_8B

from planner.memory import Deployment, MemoryModel
from planner.serving import Plan, evaluate
from planner.spec import ModelSpec
from planner.timing import Efficiency, KernelFactor, build_timing

SPEC = ModelSpec.from_hf_config(LLAMA31_8B, "llama-3.1-8b")
IDEAL = Efficiency(memory=1.0, compute=1.0, layer_overhead_s=0.0, allreduce_latency_s=0.0)  # no fixed costs
MEM_BOUND = replace(H100, peak_flops=tuple((d, f * 1e6) for d, f in H100.peak_flops))
W, KV, BW, PEAK = 15_009_849_344, 131_072, 3.35e12, 989.4e12


def plan(gpu=H100, **dep) -> Plan:
    d = Deployment(**{"engine": "transformers", **dep})
    return Plan(MemoryModel.build(SPEC, gpu, d, TABLE, RUNTIME), build_timing(SPEC, gpu, d, TABLE, IDEAL, KernelFactor()),
                "datasheet")


def test_one_request_alone_latency_and_cost_per_million_tokens():
    m = evaluate(plan(), 1, 8192, 256)
    # TTFT: the 8192-token prefill is compute-bound: 2 x 6,979,321,856 matmul params x 8192 tokens
    # + one lm_head row 2 x 525,336,576 + attention 524,288 FLOPs per key x 8192 x 8193 / 2 keys
    ttft = (2 * 6_979_321_856 * 8192 + 2 * 525_336_576 + 524_288 * 8192 * 8193 / 2) / PEAK
    assert float(m["ttft_s"]) == pytest.approx(ttft)
    assert m["prefill_bound"] == "compute" and m["decode_bound"] == "memory"
    # TPOT: 255 decode steps, memory-bound, linear in the context: the mean step reads W and the
    # KV of 8192 + 255 / 2 + 1 = 8320.5 tokens
    tpot = (W + 8320.5 * KV) / BW
    assert float(m["tpot_s"]) == pytest.approx(tpot)
    assert float(m["itl_s"]) == pytest.approx(tpot)
    assert float(m["prefill_interference_s"]) == 0.0  # alone: no other request's prefill in the way
    e2e = ttft + 255 * tpot
    assert float(m["e2e_latency_s"]) == pytest.approx(e2e)
    assert float(m["requests_per_s"]) == pytest.approx(1 / e2e)
    assert float(m["output_tokens_per_s"]) == pytest.approx(256 / e2e)
    assert float(m["input_tokens_per_s"]) == pytest.approx(8192 / e2e)
    assert float(m["tokens_per_s_per_user"]) == pytest.approx(1 / tpot)
    # $ per 1M output tokens: $3 / h over 256 / e2e tokens per second
    assert float(m["cost_usd_per_1m_output_tokens"]) == pytest.approx(3.0 * e2e / (256 * 3600) * 1e6)
    assert float(m["gpu_hours_per_1m_output_tokens"]) == pytest.approx(e2e / (256 * 3600) * 1e6)
    # $ per 1M input tokens: alone, the prefill's share of the GPU's time is TTFT / e2e, so an input
    # token costs $3 / h x TTFT / 8192 tokens
    assert float(m["prefill_share_of_gpu_time"]) == pytest.approx(ttft / e2e)
    assert float(m["cost_usd_per_1m_input_tokens"]) == pytest.approx(3.0 * ttft / (8192 * 3600) * 1e6)
    # $ per 1M tokens, input and output together: $3 / h over (8192 + 256) / e2e tokens per second
    assert float(m["cost_usd_per_1m_tokens"]) == pytest.approx(3.0 * e2e / (8448 * 3600) * 1e6)


def test_a_batch_shares_the_gpu_and_prefills_interfere_with_decoding():
    # Batch 4, 1000-token prompts, 101 output tokens, everything memory-bound.
    m = evaluate(plan(MEM_BOUND), 4, 1000, 101)
    # TTFT: the prompt's pass reads W, writes and re-reads its KV (2 x 1000 tokens) and the 3 other
    # sequences' KV at the mean context 1000 + 101 / 2 = 1050.5 (+1 for their new token)
    ttft = (W + 2 * 1000 * KV + 3 * 1051.5 * KV) / BW
    assert float(m["ttft_s"]) == pytest.approx(ttft)
    # the prefill's extra time over the 3 others' pure decode step (W + 3 x 1051.5 tokens): 2 x 1000 x
    # KV / BW; while one request decodes its 101 tokens the 3 others are replaced, 3 prefills per 101
    # steps: interference 3 / 101 x 2000 x KV / BW per step
    extra = 2 * 1000 * KV / BW
    interference = 3 / 101 * extra
    assert float(m["prefill_interference_s"]) == pytest.approx(interference)
    # TPOT: 100 steps of 4 sequences at contexts 1000..1100 (mean KV 1051 tokens each) + interference
    tpot = (W + 4 * 1051 * KV) / BW + interference
    assert float(m["tpot_s"]) == pytest.approx(tpot)
    e2e = ttft + 100 * tpot
    assert float(m["e2e_latency_s"]) == pytest.approx(e2e)
    # Little's law: 4 requests in flight for e2e seconds
    assert float(m["requests_per_s"]) == pytest.approx(4 / e2e)
    assert float(m["output_tokens_per_s"]) == pytest.approx(4 * 101 / e2e)
    assert float(m["output_tokens_per_s_per_gpu"]) == pytest.approx(4 * 101 / e2e)
    # GPU time per request is e2e / 4; of it the prefill's own work is the extra 2000 x KV / BW
    assert float(m["prefill_share_of_gpu_time"]) == pytest.approx(extra / (e2e / 4))
    # so an input token costs $3 / h x 2 x KV / BW, whatever the prompt length
    assert float(m["cost_usd_per_1m_input_tokens"]) == pytest.approx(3.0 * 2 * KV / BW / 3600 * 1e6)
    assert float(m["cost_usd_per_1m_output_tokens"]) == pytest.approx(3.0 / (4 * 101 / e2e * 3600) * 1e6)
    assert float(m["cost_usd_per_1m_tokens"]) == pytest.approx(3.0 / (4 * 1101 / e2e * 3600) * 1e6)
    # a memory-bound step with no fixed costs moves its bytes at exactly the bandwidth
    assert float(m["decode_achieved_bytes_per_s"]) == pytest.approx(BW)
    assert float(m["decode_step_bytes"]) == pytest.approx(W + 4 * 1051.5 * KV)
    assert float(m["prefill_bytes"]) == pytest.approx(W + 2 * 1000 * KV + 3 * 1051.5 * KV)
    assert float(m["decode_achieved_flops_per_s"]) == pytest.approx(float(m["decode_step_flops"]) / ((W + 4 * 1051.5 * KV) / BW))
    assert float(m["prefill_achieved_flops_per_s"]) == pytest.approx(float(m["prefill_flops"]) / ttft)


def test_two_requests_one_prefill_interferes_per_output_token():
    # Batch 2: the other request's pure decode step is a batch of 1 (W + 1 x 1051.5 tokens of KV); the
    # prefill adds 2 x 1000 x KV; one prefill per 101 decode steps: 1 / 101 x 2000 x KV / BW per step
    m = evaluate(plan(MEM_BOUND), 2, 1000, 101)
    assert float(m["ttft_s"]) == pytest.approx((W + 2 * 1000 * KV + 1051.5 * KV) / BW)
    assert float(m["prefill_interference_s"]) == pytest.approx(1 / 101 * 2 * 1000 * KV / BW)
    assert float(m["tpot_s"]) == pytest.approx((W + 2 * 1051 * KV) / BW + 1 / 101 * 2 * 1000 * KV / BW)


def test_replicas_of_tp_and_pp_gpus_cost_per_gpu():
    m = evaluate(plan(tp=2, pp=2), 1, 128, 16)
    assert float(m["gpus_per_replica"]) == 4
    assert float(m["usd_per_hour"]) == 12.0
    assert float(m["output_tokens_per_s_per_gpu"]) == pytest.approx(float(m["output_tokens_per_s"]) / 4)
    assert float(m["gpu_hours_per_1m_output_tokens"]) == pytest.approx(4 / (float(m["output_tokens_per_s"]) * 3600) * 1e6)
    p = plan(tp=2, pp=2)
    assert (p.gpus_per_replica, p.usd_per_hour) == (4, 12.0)


def test_no_output_tokens_cost_nothing_per_output_token_but_infinity():
    m = evaluate(plan(MEM_BOUND), 2, 1000, 0)
    assert float(m["output_tokens_per_s"]) == 0.0
    assert np.isinf(m["cost_usd_per_1m_output_tokens"]) and np.isinf(m["gpu_hours_per_1m_output_tokens"])
    assert float(m["e2e_latency_s"]) == pytest.approx(float(m["ttft_s"]))  # no decode steps
    # with no output steps to spread it over, the other request's prefill lands on one step:
    # (2 - 1) / max(0, 1) x 2 x 1000 x KV / BW
    assert float(m["prefill_interference_s"]) == pytest.approx(2 * 1000 * KV / BW)
    # the input still costs: $3 / h x 2 x KV / BW per token, as above
    assert float(m["cost_usd_per_1m_input_tokens"]) == pytest.approx(3.0 * 2 * KV / BW / 3600 * 1e6)


def test_memory_columns_at_the_final_and_at_the_average_length():
    # transformers: KV of 2 x (1000 + 600) tokens at the end, 2 x (1000 + 300) on average
    m = evaluate(plan(), 2, 1000, 600)
    assert float(m["kv_cache_bytes_per_gpu"]) == 2 * 1600 * KV
    assert float(m["weights_bytes_per_gpu"]) == 16_060_522_496
    # activations: 2 x 1000 prompt tokens x 102,400 B + 2 rows x 128,256 x 4 B of logits
    assert float(m["activation_bytes_per_gpu"]) == 2000 * 102_400 + 2 * 128_256 * 4
    assert float(m["overhead_bytes_per_gpu"]) == 0.5 * 2**30
    total = 16_060_522_496 + 2 * 1600 * KV + 2000 * 102_400 + 2 * 128_256 * 4 + 0.5 * 2**30
    assert float(m["memory_total_bytes_per_gpu"]) == pytest.approx(total)
    assert float(m["capacity_bytes_per_gpu"]) == 81_559 * 2**20
    assert float(m["headroom_bytes_per_gpu"]) == pytest.approx(81_559 * 2**20 - total)
    assert bool(m["fits"]) and bool(m["fits_avg_occupancy"])
    # 100 sequences of 1000 + 600 tokens need 100 x 1600 x 131,072 = 20.97 GB of KV... and 100 x 1000 x
    # 102,400 B = 10.24 GB of activations: 16.06 + 20.97 + 10.24 + 0.54 GB = 47.8 GB fit in 85.5 GB;
    # 150 sequences at 4000 + 4000: 150 x 8000 x KV = 157 GB do not, at the average 6000 tokens
    # (118 GB) neither; 40 sequences: 41.9 GB of KV at the end (+16.4 GB activations: 74.9 GB) fit
    big = evaluate(plan(), np.array([40, 150]), 4000, 4000)
    assert list(big["fits"]) == [True, False]
    assert list(big["fits_avg_occupancy"]) == [True, False]
    # 52 sequences: at the end 52 x 8000 x KV = 54.5 GB + 21.3 GB activations + 16.6 GB = 92.4 GB > 85.5;
    # on average (6000 tokens) 40.9 + 21.3 + 16.6 = 78.8 GB fit
    mid = evaluate(plan(), 52, 4000, 4000)
    assert not bool(mid["fits"]) and bool(mid["fits_avg_occupancy"])
    # 52 sequences of 4000 + 8000 tokens: on average 8000 tokens, 54.5 + 21.3 + 16.6 = 92.4 GB: no
    # (a third of the output, 6,666 tokens, would be 45.4 + 37.9 = 83.3 GB and fit)
    long = evaluate(plan(), 52, 4000, 8000)
    assert not bool(long["fits"]) and not bool(long["fits_avg_occupancy"])


def test_a_prefill_longer_than_its_share_of_the_batch_counts_whole():
    # Batch 4, 100,000-token prompts, 1 output token: the prefill's extra time over the 3 others'
    # decode step, 2 x 100,000 x KV / BW, is more than a quarter of the TTFT
    # (W + 2 x 100,000 x KV + 3 x 100,001.5 x KV) / BW: its share of the GPU time is capped at all of it
    m = evaluate(plan(MEM_BOUND), 4, 100_000, 1)
    ttft = (W + 2 * 100_000 * KV + 3 * 100_001.5 * KV) / BW
    assert float(m["ttft_s"]) == pytest.approx(ttft)
    assert float(m["prefill_share_of_gpu_time"]) == 1.0
    # so an input token costs $3 / h x e2e (= TTFT) / 400,000 input tokens
    assert float(m["cost_usd_per_1m_input_tokens"]) == pytest.approx(3.0 * ttft / (4 * 100_000 * 3600) * 1e6)


def test_costs_stay_finite_below_one_token_per_second():
    # One request of 100,000 + 2 tokens on the H100: a compute-bound TTFT of (2 x 6,979,321,856 x 100,000
    # + 2 x 525,336,576 + 524,288 x 100,000 x 100,001 / 2) / PEAK = 4.06 s, then one memory-bound step at
    # 100,001.5 tokens of KV: 2 output tokens in ~4.07 s, under 1 per second
    m = evaluate(plan(), 1, 100_000, 2)
    ttft = (2 * 6_979_321_856 * 100_000 + 2 * 525_336_576 + 524_288 * 100_000 * 100_001 / 2) / PEAK
    e2e = ttft + (W + 100_001.5 * KV) / BW
    assert float(m["e2e_latency_s"]) == pytest.approx(e2e)
    assert float(m["output_tokens_per_s"]) < 1
    assert float(m["cost_usd_per_1m_output_tokens"]) == pytest.approx(3.0 * e2e / (2 * 3600) * 1e6)
    assert float(m["gpu_hours_per_1m_output_tokens"]) == pytest.approx(e2e / (2 * 3600) * 1e6)
    # one prompt token and 2000 output tokens (memory-bound): under 1 input token per second
    m = evaluate(plan(MEM_BOUND), 1, 1, 2000)
    ttft = (W + 2 * KV) / BW
    e2e = ttft + 1999 * (W + (1 + 1999 / 2 + 1) * KV) / BW
    assert float(m["e2e_latency_s"]) == pytest.approx(e2e)
    assert float(m["input_tokens_per_s"]) < 1
    assert float(m["cost_usd_per_1m_input_tokens"]) == pytest.approx(3.0 * ttft / 3600 * 1e6)


def test_no_output_tokens_raise_no_numpy_warning():
    # output 0: no output throughput, so the per-output-token figures are infinite by choice, not by a
    # division numpy warns about (the CLI and dashboard would print "divide by zero encountered")
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = evaluate(plan(MEM_BOUND), np.array([1, 2]), 1000, 0)
    assert np.isinf(m["cost_usd_per_1m_output_tokens"]).all() and np.isinf(m["gpu_hours_per_1m_output_tokens"]).all()

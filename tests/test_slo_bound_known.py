"""Tier 1 of the SLO search (planner/slo_bound.py): the optimistic memory, latency and cost bounds, by hand.

Memory uses the published Llama-3.1-8B shape (tests/test_kv_known.py): 16,060,522,496 bytes of bf16
weights, 2 (K, V) x 8 KV heads x 128 dims x 2 bytes x 32 layers = 131,072 bytes of cache per token.
Latency and cost run on a fake timing model whose times are simple functions of the batch, so each
bound is a line of arithmetic; the module attributes ``optimistic_timing`` and ``memory_batch_ub`` are
the seams.
"""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
from synthetic import H100
from test_kv_known import LLAMA31_8B

from planner import kv, profiles, slo_bound
from planner.kv import KvGroup
from planner.memory import Deployment
from planner.spec import ModelSpec
from planner.timing import Efficiency, KernelFactor

SPEC = ModelSpec.from_hf_config(LLAMA31_8B, "Llama-3.1-8B")
WEIGHTS = 16_060_522_496     # bf16, TP 1 (tests/test_kv_known.py: 8,030,261,248 parameters x 2 bytes)
KV_TOKEN = 131_072           # bytes of bf16 cache per token, all 32 layers
GIB = 2**30


def gpu(memory: float, **kw):
    """The in-code H100 with ``memory`` bytes in all (no measured total to take its place)."""
    return replace(H100, memory_bytes=memory, nvml_total_memory_bytes=0.0, **kw)


# ------------------------------------------------------------------ small rules


def test_screen_optimism_is_read_from_the_kernel_profile(monkeypatch):
    monkeypatch.setattr(profiles, "kernels", lambda: {"slo_screen": {"optimism": {"value": "0.625"}}})
    assert slo_bound.screen_optimism() == 0.625 and isinstance(slo_bound.screen_optimism(), float)


def test_the_compute_dtype_a_format_runs_at():
    fp8_gpu = gpu(80e9, peak_flops=(("bf16", 1e15), ("fp8", 2e15)))
    int8_gpu = gpu(80e9, peak_flops=(("bf16", 1e15), ("int8", 2e15)))
    fmt = lambda dt: SimpleNamespace(compute_dtype=dt)  # noqa: E731
    # 16-bit formats compute on the fp16/bf16 tensor cores, named "fp16"
    assert slo_bound.compute_dtype(fmt("bf16"), H100) == "fp16" and slo_bound.compute_dtype(fmt("fp16"), H100) == "fp16"
    # fp8 and int8 where the GPU has them, else 16-bit
    assert slo_bound.compute_dtype(fmt("fp8"), fp8_gpu) == "fp8" and slo_bound.compute_dtype(fmt("fp8"), H100) == "fp16"
    assert slo_bound.compute_dtype(fmt("int8"), int8_gpu) == "int8" and slo_bound.compute_dtype(fmt("int8"), fp8_gpu) == "fp16"
    # anything else is kept (fp4 falls back to lower peaks when the timing model reads it)
    assert slo_bound.compute_dtype(fmt("fp4"), H100) == "fp4"


# ------------------------------------------------------------------ memory


def test_the_memory_bound_counts_whole_weights_and_requests_held_token_by_token():
    # prompt 1000 + half of 101 output tokens (50, whole) = 1,050 tokens x 131,072 = 137,625,600 bytes a request;
    # room for 10.5 of them above the weights: 10
    per_req = 1050 * KV_TOKEN
    g = gpu(WEIGHTS + 10.5 * per_req)
    b, w, r = slo_bound.memory_batch_ub(SPEC, g, Deployment(), 1000, 101)
    assert (b, w, r) == (10, WEIGHTS, per_req) and isinstance(b, int)
    assert slo_bound.memory_batch_ub(SPEC, gpu(WEIGHTS + 10 * per_req), Deployment(), 1000, 101)[0] == 10
    # fp8 KV: half the bytes a request, twice the room in requests
    assert slo_bound.memory_batch_ub(SPEC, g, Deployment(kv_dtype="fp8"), 1000, 101)[0] == 21
    # TP 2: each rank holds half the matrices ((16,060,522,496 - 532,480 of norms) / 2 + 532,480 = 8,030,527,488)
    # and 4 of the 8 KV heads
    b, w, r = slo_bound.memory_batch_ub(SPEC, gpu(8_030_527_488 + 3.5 * per_req / 2), Deployment(tp=2), 1000, 101)
    assert (b, w, r) == (3, 8_030_527_488, per_req / 2)
    # PP 2: 16 layers a stage (half the cache); the last stage (16 layers + lm_head + final norm) is the fullest:
    # (16 x 218,112,000 + 525,336,576 + 4,096) x 2 bytes = 8,030,265,344
    b, w, r = slo_bound.memory_batch_ub(SPEC, gpu(8_030_265_344 + 3.5 * per_req / 2), Deployment(pp=2), 1000, 101)
    assert (b, w, r) == (3, 8_030_265_344, per_req / 2)


def test_weights_that_fill_the_gpu_leave_no_batch():
    per_req = 1050 * KV_TOKEN
    assert slo_bound.memory_batch_ub(SPEC, gpu(WEIGHTS), Deployment(), 1000, 101) == (0, WEIGHTS, per_req)
    assert slo_bound.memory_batch_ub(SPEC, gpu(WEIGHTS - 1), Deployment(), 1000, 101)[0] == 0
    assert slo_bound.memory_batch_ub(SPEC, gpu(WEIGHTS + per_req - 1), Deployment(), 1000, 101)[0] == 0
    assert slo_bound.memory_batch_ub(SPEC, gpu(WEIGHTS + per_req), Deployment(), 1000, 101)[0] == 1


def test_the_memory_bound_caps_the_batch_at_2_to_the_30(monkeypatch):
    calls = []
    real = kv.layer_groups

    def spy(*a, **kw):
        calls.append((a, kw))
        return real(*a, **kw)

    monkeypatch.setattr(slo_bound.kvmod, "layer_groups", spy)
    monkeypatch.setattr(slo_bound.kvmod, "kv_cache_bytes", lambda g, b, ctx, engine: calls.append((b, ctx, engine)) or 1.0)
    assert slo_bound.memory_batch_ub(SPEC, gpu(WEIGHTS + 2.0**31), Deployment(kv_dtype="fp8", tp=2), 10, 10)[0] == 1 << 30
    calls.clear()
    assert slo_bound.memory_batch_ub(SPEC, gpu(8_030_527_488 + 5.5), Deployment(kv_dtype="fp8", tp=2), 10, 10)[0] == 5
    # the cache groups as the paged engine splits them (SSM states in the model dtype), held token by token
    assert calls == [((SPEC, "fp8", "paged", 2), {"state_bytes": 2.0}), (1, 15, "transformers")]
    # a model that caches nothing (every layer stateless): as many requests as the cap allows
    monkeypatch.setattr(slo_bound.kvmod, "kv_cache_bytes", lambda *a: 0.0)
    assert slo_bound.memory_batch_ub(SPEC, gpu(WEIGHTS + 1), Deployment(), 10, 10) == (1 << 30, WEIGHTS, 0.0)


# ------------------------------------------------------------------ the optimistic timing model


def test_on_a_gpu_with_operator_tables_the_bound_is_the_ideal_roofline_scaled_down(monkeypatch):
    monkeypatch.setattr(profiles, "kernels", lambda: {"slo_screen": {"optimism": {"value": 0.6}}})
    h100 = profiles.gpu("H100-SXM")
    eff = Efficiency(memory=0.5, eager_layer_overhead_s=1e-5)
    tm, k = slo_bound.optimistic_timing(SPEC, h100, Deployment(weights="fp8", kv_dtype="fp8", tp=2, pp=2), eff)
    assert k == 0.6
    assert tm.gpu == replace(h100, interconnect_bytes_per_s=0.0)  # no communication
    assert tm.eff == slo_bound.IDEAL and tm.kernel == KernelFactor()
    assert (tm.dep.weights, tm.dep.kv_dtype, tm.dep.engine, tm.dep.tp, tm.dep.pp) == ("fp8", "fp8", "transformers", 2, 2)
    # fp8 on a GPU with fp8 tensor cores; the fullest stage's 16 layers, 4 KV heads a rank, 1 byte each:
    # 2 x 4 x 128 x 1 = 1,024 bytes per token per layer
    assert tm.compute_dtype == "fp8"
    assert tm.kv_groups == (KvGroup("full", 16, 0, 1024.0, 0.0),)


def test_elsewhere_the_bound_is_the_plans_own_roofline_without_what_only_adds_time(monkeypatch):
    fams = []
    monkeypatch.setattr(profiles, "kernel_family",
                        lambda fam, fid: fams.append((fam, fid)) or {"compute_factor": 0.7, "memory_factor": 0.6})
    l4 = profiles.gpu("L4")
    eff = Efficiency(memory=0.5, compute=0.4, eager_layer_overhead_s=1e-5)
    tm, k = slo_bound.optimistic_timing(SPEC, l4, Deployment(weights="gptq-4bit-g128"), eff)
    assert k == 1.0 and tm.gpu == l4
    assert tm.eff == replace(eff, eager_layer_overhead_s=0.0)  # graphs assumed: no eager launches
    assert tm.kernel == KernelFactor(compute_factor=0.7, memory_factor=0.6)  # no dequantisation traffic
    assert fams == [("gptq", "gptq-4bit-g128")]
    assert tm.compute_dtype == "fp16" and tm.dep.engine == "transformers"
    assert tm.kv_groups == (KvGroup("full", 32, 0, 4096.0, 0.0),)
    # the candidate's own KV dtype and compute dtype: fp8 weights and KV on L4 (fp8 tensor cores), 2,048 bytes a token
    tm, _ = slo_bound.optimistic_timing(SPEC, l4, Deployment(weights="fp8", kv_dtype="fp8"), eff)
    assert (tm.compute_dtype, tm.dep.kv_dtype, tm.dep.weights) == ("fp8", "fp8", "fp8")
    assert tm.kv_groups == (KvGroup("full", 32, 0, 2048.0, 0.0),) and fams[-1] == ("fp8", "fp8")
    # a family without factors keeps the roofline's 1.0; a GPU with tables but another engine takes this path too
    monkeypatch.setattr(profiles, "kernel_family", lambda fam, fid: {})
    tm, k = slo_bound.optimistic_timing(SPEC, profiles.gpu("H100-SXM"), Deployment(engine="transformers"), eff)
    assert k == 1.0 and tm.kernel == KernelFactor() and tm.gpu == profiles.gpu("H100-SXM")


# ------------------------------------------------------------------ latency and the bound


class TM:
    """A timing model with prefill 0.1 s + 10 ms per decode sequence riding along, TPOT 10 ms x batch."""

    def __init__(self):
        self.calls = []

    def prefill(self, batch, prompt, decode_batch=0, decode_context=0):
        self.calls.append(("prefill", batch, prompt, np.asarray(decode_batch).tolist(), decode_context))
        return {"time_s": 0.1 + 0.01 * np.asarray(decode_batch)}

    def tpot(self, batch, prompt, output):
        self.calls.append(("tpot", np.asarray(batch).tolist(), prompt, output))
        return 0.01 * np.asarray(batch)


def test_latency_lower_bounds_at_each_batch():
    # k = 0.5, prompt 100, output 11, batches 1..3:
    # TTFT = 0.5 (0.1 + 0.01 (b - 1)) = 0.05, 0.055, 0.06; TPOT = 0.5 x 0.01 b = 0.005, 0.01, 0.015;
    # e2e = TTFT + 10 TPOT = 0.1, 0.155, 0.21
    tm = TM()
    lat = slo_bound.latency_lb(tm, 0.5, np.array([1.0, 2.0, 3.0]), 100, 11)
    np.testing.assert_allclose(lat["ttft"], [0.05, 0.055, 0.06], rtol=1e-12)
    np.testing.assert_allclose(lat["tpot"], [0.005, 0.01, 0.015], rtol=1e-12)
    np.testing.assert_allclose(lat["e2e"], [0.1, 0.155, 0.21], rtol=1e-12)
    # one prompt at a time, the others decoding at the average context 100 + 11 / 2 = 105.5
    assert tm.calls == [("prefill", 1, 100, [0.0, 1.0, 2.0], 105.5), ("tpot", [1.0, 2.0, 3.0], 100, 11)]
    # one output token: the end-to-end latency is the first token's
    one = slo_bound.latency_lb(TM(), 0.5, np.array([1.0]), 100, 1)
    np.testing.assert_allclose(one["e2e"], [0.05], rtol=1e-12)


@pytest.fixture
def fake_bound(monkeypatch):
    """memory_batch_ub -> ``st.mem``; optimistic_timing -> (TM(), 0.5). Records the calls."""
    st = SimpleNamespace(mem=(100, 20 * GIB, 0.25 * GIB), calls=[])
    monkeypatch.setattr(slo_bound, "memory_batch_ub",
                        lambda spec, g, dep, p, o: st.calls.append(("memory", spec, g.id, dep, p, o)) or st.mem)
    monkeypatch.setattr(slo_bound, "optimistic_timing",
                        lambda spec, g, dep, eff: st.calls.append(("timing", spec, g.id, dep, eff)) or (TM(), 0.5))
    return st


DEP2 = Deployment(tp=2)  # 2 GPUs a replica


def run_bound(targets, rate=40.0, max_batch=4):
    return slo_bound.bound(SPEC, H100, DEP2, "eff", rate, 100, 11, targets, max_batch)


def test_the_bound_on_throughput_replicas_and_cost(fake_bound):
    # the fake at k = 0.5: TTFT 0.045 + 0.005 b, TPOT 0.005 b, e2e 0.045 + 0.055 b for b = 1..4 (max_batch 4 of the
    # 100 memory holds): TPOT <= 0.015 s up to b = 3, e2e 0.21 s: 3 / 0.21 = 14.2857 requests/s a replica;
    # 40 requests/s need ceil(2.8) = 3 replicas of 2 GPUs at $3/h: $18/h
    b = run_bound([("tpot", 0.015)])
    assert b == pytest.approx({"batch_ub": 4, "gpus_per_replica": 2, "requests_per_s_ub": 3 / 0.21, "replicas_lb": 3,
                               "usd_per_hour_lb": 18.0}, rel=1e-12)
    assert fake_bound.calls == [("memory", SPEC, "H100-test", DEP2, 100, 11), ("timing", SPEC, "H100-test", DEP2, "eff")]
    # TTFT <= 0.0575 s: b <= 2, 2 / 0.155 = 12.9 a replica: ceil(40 / 12.9) = ceil(3.1) = 4
    b = run_bound([("ttft", 0.0575)])
    assert (b["requests_per_s_ub"], b["replicas_lb"], b["usd_per_hour_lb"]) == pytest.approx((2 / 0.155, 4, 24.0))
    # every target binds: TTFT b <= 2 and e2e 0.2 (b <= 2.8) -> b = 2; e2e alone -> b = 2 as well, 0.21 > 0.2
    assert run_bound([("ttft", 0.0575), ("e2e", 0.2)])["requests_per_s_ub"] == pytest.approx(2 / 0.155)
    assert run_bound([("e2e", 0.21)])["requests_per_s_ub"] == pytest.approx(3 / 0.21)  # met exactly at b = 3
    # a rate one replica covers: 1
    assert run_bound([("tpot", 0.015)], rate=1.0)["replicas_lb"] == 1
    # memory holds only 2: b = 1, 2 and the best is 2
    fake_bound.mem = (2, 20 * GIB, 0.25 * GIB)
    b = run_bound([("tpot", 1.0)])
    assert (b["batch_ub"], b["requests_per_s_ub"]) == (2, pytest.approx(2 / 0.155))
    # memory holds one: batch 1 alone, 1 / 0.1 = 10 requests/s
    fake_bound.mem = (1, 20 * GIB, 0.25 * GIB)
    b = run_bound([("tpot", 1.0)])
    assert (b["batch_ub"], b["requests_per_s_ub"], b["replicas_lb"]) == (1, pytest.approx(10.0), 4)


def test_the_bound_counts_every_gpu_of_a_replica(fake_bound):
    # TP 2 x PP 2 = 4 GPUs a replica: 3 replicas (TPOT <= 0.015 s, as above) x 4 x $3/h = $36/h
    b = slo_bound.bound(SPEC, H100, Deployment(tp=2, pp=2), "eff", 40.0, 100, 11, [("tpot", 0.015)], 4)
    assert (b["gpus_per_replica"], b["replicas_lb"], b["usd_per_hour_lb"]) == (4, 3, 36.0)


def test_only_batch_1_decides_a_latency_rejection(fake_bound):
    # TTFT 0.05 s at batch 1, 0.055 s at 2: a 0.052 s target passes at 1 only -> 1 / 0.1 = 10 requests/s
    b = run_bound([("ttft", 0.052)])
    assert "failed" not in b and b["requests_per_s_ub"] == pytest.approx(10.0)
    # TTFT met at batch 1 (missed at 2), TPOT missed: TPOT is the reason, and the only one named
    b = run_bound([("ttft", 0.0525), ("tpot", 0.004)])
    assert b["failed"] == "tpot" and b["reason"].startswith("latency at batch 1 (roofline lower bound): TPOT >= 0.005 s "
                                                            "> 0.004 s; more")
    # a target met exactly at batch 1 (0.5 x 0.1 = 0.05 s) is met
    b = run_bound([("ttft", 0.05), ("tpot", 0.004)])
    assert b["failed"] == "tpot" and "TTFT" not in b["reason"]


def test_the_bound_rejects_a_batch_of_one_that_misses_naming_the_first_target(fake_bound):
    # batch 1: TTFT 0.05 s, TPOT 0.005 s, e2e 0.1 s
    b = run_bound([("ttft", 0.04), ("tpot", 0.004), ("e2e", 1.0)])
    assert (b["failed"], b["batch_ub"], b["gpus_per_replica"]) == ("ttft", 4, 2) and "replicas_lb" not in b
    assert b["reason"] == ("latency at batch 1 (roofline lower bound): TTFT >= 0.05 s > 0.04 s, TPOT >= 0.005 s > "
                           "0.004 s; more replicas cannot help (a faster GPU, more TP or a smaller format can)")
    assert run_bound([("ttft", 1.0), ("tpot", 0.004), ("e2e", 0.09)])["failed"] == "tpot"
    b = run_bound([("ttft", 1.0), ("e2e", 0.09)])
    assert b["failed"] == "e2e" and b["reason"].startswith("latency at batch 1 (roofline lower bound): E2E >= 0.1 s > 0.09 s;")


def test_the_bound_rejects_what_cannot_hold_one_request(fake_bound):
    # the in-code H100's measured total, 81,559 MiB = 79.6 GiB
    fake_bound.mem = (0, 20 * GIB, 0.25 * GIB)
    b = run_bound([("tpot", 1.0)])
    assert b == {"batch_ub": 0, "gpus_per_replica": 2, "failed": "memory", "reason": (
        "memory: the weights alone take 20.0 GiB per GPU and one request of 100+11 tokens at least 0.25 GiB more; "
        "the GPU has 79.6 GiB (add TP or PP, quantize weights or KV)")}
    assert [c[0] for c in fake_bound.calls] == ["memory"]  # no timing model built

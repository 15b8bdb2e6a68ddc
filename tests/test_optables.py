"""The measured operator tables (planner/optables.py) against the rows they were cut from.

The figures below are rows of the carried CSVs (profiles/reference/aic_vllm024_h100_sxm_*), in ms.
"""

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from planner import api, oproof, optables, profiles
from planner.errors import PlannerInputError
from planner.memory import Deployment
from planner.optables import OpTables
from planner.spec import ModelSpec
from planner.timing import Efficiency, KernelFactor, build_timing
from tiny_configs import TINY

H100 = OpTables.load("H100-SXM")
GPUS = ("H100-SXM", "H200", "A100-SXM-80GB", "B200", "L40S")


def test_every_gpu_with_tables_loads_and_one_without_gives_none():
    for gpu in GPUS:
        t = OpTables.load(gpu)
        assert t is not None and "bf16" in t.dtypes("gemm") and "bf16" in t.dtypes("generation_attention")
    assert OpTables.load("T4") is None
    assert OpTables.load("MI300X") is None


def test_newest_version_by_default_and_an_older_one_on_request():
    assert {v for _, _, v, _ in H100.files} == {"0.24.0"}
    old = OpTables.load("H100-SXM", version="0.14")
    assert {v for _, _, v, _ in old.files} == {"0.14.0"}
    assert old.dtypes("gemm") == ("bf16",)  # the 0.14 slices carry bf16 only
    l40s = dict(((op, dt), v) for op, dt, v, _ in OpTables.load("L40S").files)
    assert l40s[("allreduce", "bf16")] == "0.22.0" and l40s[("gemm", "bf16")] == "0.24.0"


def test_a_grid_point_returns_its_measured_latency():
    # gemm_bf16 row "8192,4096,4096,0.34698"; generation_attention_bf16 row "8,1,4095,32,8,128,0.058283"
    # (batch 8, 4095 cached tokens, 32 heads, 8 KV heads, head_dim 128); mla_generation_module_bf16
    # row "bf16,16,16,1,4096,0.1408" (step 4096 counts the new token: 4095 cached)
    g = H100.gemm(8192, 4096, 4096)
    assert float(g.seconds) == pytest.approx(0.34698e-3, rel=1e-12) and bool(g.inside)
    a = H100.attention_decode(8, 4095, 32, 8, 128)
    assert float(a.seconds) == pytest.approx(0.058283e-3, rel=1e-12) and bool(a.inside)
    assert float(H100.mla_decode_s(16, 4095, 16)) == pytest.approx(0.1408e-3, rel=1e-12)
    # custom_allreduce row "2,1048576,vllm_graph,0.01238": 1,048,576 bf16 elements = 2 MiB
    assert float(H100.allreduce_s(2 * 1048576, 2)) == pytest.approx(0.01238e-3, rel=1e-12)


def test_a_block_scaled_fp8_gemm_is_never_slower_than_the_per_tensor_one():
    # H200 gemm rows at 1 x 512 x 7168: fp8_block "1,512,7168,0.059061", fp8 "1,512,7168,0.0099102", bf16
    # "1,512,7168,0.0064133": the block table's flat 59 us floor is the collector's, not the kernel's
    h200, b200 = OpTables.load("H200"), OpTables.load("B200")
    assert float(h200.gemm_s(1, 512, 7168, "fp8_block")) == pytest.approx(0.0099102e-3, rel=1e-12)
    # where the GEMM does work the lower of the two rows stands: H200 8192 x 7168 x 7168 fp8 0.67903 ms <
    # fp8_block 0.7155 ms; B200 fp8_block 0.35605 ms < fp8 0.36625 ms
    assert float(h200.gemm_s(8192, 7168, 7168, "fp8_block")) == pytest.approx(0.67903e-3, rel=1e-12)
    assert float(b200.gemm_s(8192, 7168, 7168, "fp8_block")) == pytest.approx(0.35605e-3, rel=1e-12)
    # B200's fp8_block floor was 0.26 ms a row (DeepSeek-R1's 58 shared experts alone came to 19.7 ms a decode
    # step); the fp8 table gives 1 x 512 x 7168 its faster larger row "10,512,7168,0.009672"
    assert float(b200.gemm_s(1, 512, 7168, "fp8_block")) == pytest.approx(0.009672e-3, rel=1e-12)


def test_a_faster_larger_measurement_lowers_a_smaller_one():
    # rows m=4352: 0.193 ms, m=4353: 0.19073 ms: the smaller GEMM could be padded to the larger one
    assert H100.gemm_s([4352, 4353], 4096, 4096) == pytest.approx([0.19073e-3, 0.19073e-3], rel=1e-12)


def test_a_midpoint_is_log_log_linear_between_its_neighbours():
    # m = 6000 between rows m=4353 (0.19073 ms) and m=8192 (0.34698 ms):
    # w = ln(6000/4353) / ln(8192/4353) = 0.507509; t = 0.19073^(1-w) x 0.34698^w = 0.258412 ms
    w = math.log(6000 / 4353) / math.log(8192 / 4353)
    expect = math.exp((1 - w) * math.log(0.19073e-3) + w * math.log(0.34698e-3))
    assert float(H100.gemm_s(6000, 4096, 4096)) == pytest.approx(expect, rel=1e-12)
    assert 0.19073e-3 < expect < 0.34698e-3


def test_heads_per_rank_not_measured_interpolate_between_measured_neighbours():
    # 28 heads / 4 KV heads at TP 4: 7 heads over 1 KV head; AIC ran 6 and 8 heads over 1
    six, seven, eight = H100.attention_decode_s(8, 4095, [6, 7, 8], 1, 128)
    assert min(six, eight) <= seven <= max(six, eight)
    assert bool(H100.attention_decode(8, 4095, 7, 1, 128).inside)
    # head_dim 96 lies between the measured 64 and 128
    lo, mid, hi = H100.attention_prefill_s(2, 2048, 16, 4, [64, 96, 128])
    assert min(lo, hi) <= mid <= max(lo, hi)


@settings(max_examples=25, deadline=None)
@given(gpu=st.sampled_from(GPUS), n=st.sampled_from([512, 1000, 4096, 14336, 28672]),
       k=st.sampled_from([1024, 3584, 4096, 8192]))
def test_monotone_in_m_over_and_beyond_the_grid(gpu, n, k):
    t = OpTables.load(gpu)
    m = np.unique(np.round(np.geomspace(1, 200_000, 300)))
    for dt in t.dtypes("gemm"):
        s = t.gemm_s(m, n, k, dt)
        assert np.all(np.diff(s) >= -1e-12 * s[1:]), dt


@settings(max_examples=25, deadline=None)
# heads 5 over 1 KV head at head_dim 64 interpolates between cells filled from other rows: monotone
# only because the filled grid is made monotone again (opgrid rule 2)
@example(gpu="H100-SXM", kv=1, group=5, head_dim=64, batch=1)
@example(gpu="A100-SXM-80GB", kv=8, group=3, head_dim=80, batch=100)
@given(gpu=st.sampled_from(GPUS), kv=st.sampled_from([1, 2, 4, 8]), group=st.integers(1, 8),
       head_dim=st.sampled_from([64, 80, 128]), batch=st.sampled_from([1, 3, 16, 100, 1024]))
def test_decode_attention_monotone_in_context_and_batch(gpu, kv, group, head_dim, batch):
    t = OpTables.load(gpu)
    ctx = np.geomspace(1, 500_000, 200)
    for dt in t.dtypes("generation_attention"):
        s = t.attention_decode_s(batch, ctx, kv * group, kv, head_dim, dt)
        assert np.all(np.diff(s) >= -1e-12 * s[1:])
        b = np.geomspace(1, 4096, 100)
        s = t.attention_decode_s(b, 3000, kv * group, kv, head_dim, dt)
        assert np.all(np.diff(s) >= -1e-12 * s[1:])


def test_extrapolation_keeps_the_edge_efficiency_and_never_beats_the_roofline():
    # m beyond the largest measured 32768: the efficiency at m=32768 times the roofline at m
    edge, far = H100.gemm([32768, 131072], 4096, 4096).seconds, H100.gemm([32768, 131072], 4096, 4096)
    assert not far.inside[1] and far.inside[0]
    assert far.seconds[1] / far.roofline_s[1] == pytest.approx(edge[0] / far.roofline_s[0])
    for est in (far, H100.attention_decode(4096, [1e5, 1e6], 64, 8, 128), H100.attention_prefill(256, 65536, 40, 8, 128),
                H100.moe([1e5, 1e6], 4096, 1536, 128, 8), H100.allreduce([1e10], 8), H100.gemm(1000, 200_000, 4096, "fp8"),
                H100.mla_decode(4096, 200_000, 128),
                # L40S row "32768,64,1024,0.027676": 3x faster than the GDDR roofline (the operands sit in
                # its 96 MB L2); the table keeps the row, extrapolation past it stops at the roofline
                OpTables.load("L40S").gemm([32768, 131072], 64, 1024)):
        out = ~est.inside
        assert out.any()
        assert np.all(est.seconds[out] >= est.roofline_s[out]) and np.all(est.seconds >= 0)


def test_zero_work_takes_zero_time_and_one_rank_needs_no_allreduce():
    assert float(H100.gemm_s(0, 4096, 4096)) == 0.0
    assert float(H100.allreduce_s(1e6, 1)) == 0.0


def test_a_scalar_call_equals_the_matching_element_of_the_vector_call():
    m = np.array([3, 77, 1500, 50_000])
    vec = H100.gemm_s(m, 5000, 3000, "fp8")
    assert [float(H100.gemm_s(x, 5000, 3000, "fp8")) for x in m] == pytest.approx(list(vec), rel=1e-12)


def test_dtype_aliases_and_bad_dtypes_name_the_field():
    assert float(H100.gemm_s(64, 4096, 4096, "fp16")) == float(H100.gemm_s(64, 4096, 4096, "bf16"))
    assert float(H100.gemm_s(64, 4096, 4096, "fp8-block")) == float(H100.gemm_s(64, 4096, 4096, "fp8_block"))
    with pytest.raises(PlannerInputError) as e:
        H100.gemm_s(64, 4096, 4096, "int3")
    assert e.value.field == "dtype" and "fp8_block" in str(e.value)
    with pytest.raises(PlannerInputError) as e:
        OpTables.load("A100-SXM-80GB").gemm_s(64, 4096, 4096, "fp8")
    assert e.value.field == "dtype"
    with pytest.raises(PlannerInputError) as e:
        H100.attention_decode_s(1, 100, 32, 8, 128, kv_dtype="int4")
    assert e.value.field == "kv_dtype"
    with pytest.raises(PlannerInputError) as e:
        H100.gemm_s(-1, 4096, 4096)
    assert e.value.field == "m"
    with pytest.raises(PlannerInputError) as e:
        OpTables.load("A100-SXM-80GB").moe_s(8, 4096, 1536, 128, 8)  # A100 has power-law routing only
    assert e.value.field == "distribution" and "power_law_1.01" in str(e.value)
    with pytest.raises(PlannerInputError) as e:
        OpTables.load("H100-SXM", engine="trtllm")  # TensorRT-LLM's plans take vLLM's tables (planner/opstep.py)
    assert e.value.field == "engine" and "sglang" in e.value.fix


def test_moe_measured_shape_is_inside_and_an_unmeasured_one_borrows_the_nearest():
    # Qwen3-235B-A22B's experts (hidden 4096, intermediate 1536, 128 experts, top 8) at TP 1:
    # moe_bf16 row num_tokens=16 balanced: 1.5845 ms
    m = H100.moe(16, 4096, 1536, 128, 8)
    assert bool(m.inside) and float(m.seconds) == pytest.approx(1.5845e-3, rel=1e-12)
    near = H100.moe([1, 64, 4096], 4096, 1536, 128, 8, tp=3)  # TP 3 was not run
    assert not near.inside.any() and "scaled from" in near.source
    assert np.all(near.seconds >= near.roofline_s)
    # the per-rank work shrinks with TP: TP 2 >= TP 3 (borrowed) at large token counts
    assert float(H100.moe_s(4096, 4096, 1536, 128, 8, tp=2)) >= float(near.seconds[2])


def test_experts_touched_is_the_timing_models_rule():
    spec = ModelSpec.from_hf_config(TINY["mixtral-moe"], "mixtral")
    t = build_timing(spec, profiles.gpu("H100-SXM"), Deployment(), profiles.formats(), Efficiency(), KernelFactor())
    tokens = np.array([1, 3, 17, 500])
    assert oproof.experts_touched(spec.num_experts, spec.experts_per_token, tokens) == pytest.approx(
        t.experts_touched(tokens))


def test_gemm_and_attention_rooflines_are_the_reference_counts():
    from planner import reference as ref
    gpu = profiles.gpu("H100-SXM")
    f, b = ref.gemm_counts(100, 4096, 4096)
    assert float(H100.gemm(100, 4096, 4096).roofline_s) == pytest.approx(
        max(f / gpu.flops("bf16"), b / gpu.memory_bandwidth_bytes_per_s))


def test_provenance_names_the_carried_file_and_the_source_commit():
    p = H100.provenance
    assert p["gemm fp8"].startswith("profiles/reference/aic_vllm024_h100_sxm_gemm_fp8.csv")
    assert "@095f58a" in p["gemm fp8"] and "h100_sxm/gemm/vllm/0.24.0/gemm_perf.parquet" in p["gemm fp8"]
    assert H100.gemm(1, 1024, 1024).source == p["gemm bf16"]
    for name in (f for _, _, _, f in H100.files):
        assert profiles.reference_table(profiles.reference_dir(), name) is not None


def test_the_leave_one_out_rebuild_matches_the_loaded_table():
    # benchmarks/bench_optables.py rebuilds grids with build_grid's parts: the same table, the same values
    d = H100.table("gemm", "bf16")
    g = optables.build_grid(H100.gpu, "gemm", "bf16", d)
    assert float(g(m=777, n=3000, k=5000)[0]) == float(H100.gemm_s(777, 3000, 5000))


@settings(max_examples=300, deadline=None)
@given(b=st.integers(0, 700), ctx=st.floats(0, 60_000), pt=st.sampled_from([0, 1, 17, 1024, 8192, 20_000, 70_000]),
       prefix=st.integers(0, 30_000), case=st.integers(0, 4))
@example(b=1, ctx=0.0, pt=0, prefix=0, case=0)  # one decode at an empty context: the grids' lower edge
@example(b=700, ctx=60_000.0, pt=70_000, prefix=30_000, case=1)  # beyond every grid
def test_one_pass_in_plain_floats_is_the_vectorised_pass_to_the_bit(b, ctx, pt, prefix, case):
    # TimingModel.step_time_s (what a simulation asks for each pass) against step()["time_s"]: on the measured
    # tables (OpCurves.step1) with vLLM's fitted costs, the eager launches (a pass above the largest graph), the
    # prefill the tables miss and the ranks' all-reduce spread (TP 2 and 8) all in play, and on the roofline (MI300X)
    from planner import api
    plans = _FAST_PLANS
    if not plans:
        plans.extend(api.build_plan(m, g, Deployment(**kw)).timing for m, g, kw in (
            ("Llama-3.1-70B", "H100-SXM", {"weights": "fp8", "kv_dtype": "fp8", "tp": 2}),
            ("gpt-oss-120b", "H200", {"tp": 8}),
            ("DeepSeek-V3", "H200", {"tp": 8}),
            ("Llama-3.1-70B", "MI300X", {"weights": "fp8-block", "kv_dtype": "fp8"})))
        assert [t.ops is not None for t in plans] == [True, True, True, False]
        assert plans[0].eff.allreduce_spread > 0 and plans[0].eff.eager_layer_overhead_s > 0
        assert plans[0].eff.prefill_token_layer_s > 0
        # eager launches that add to the GPU's work instead of overlapping it, at PP 2
        from dataclasses import replace
        plans.append(replace(plans[0], eff=replace(plans[0].eff, eager_overlaps=False), dep=replace(plans[0].dep, pp=2)))
    tm = plans[case]
    ctx = ctx if b else 0.0
    b = b if b or pt else 1
    assert tm.step_time_s(b, ctx, pt, pt + prefix if pt else 0) == float(tm.step(b, ctx, pt, pt + prefix if pt else 0)["time_s"])


_FAST_PLANS: list = []


_ROOFLINE_PLANS: list = []


@settings(max_examples=400, deadline=None)
@given(b=st.integers(0, 700), ctx=st.floats(0, 200_000), pt=st.sampled_from([0, 1, 17, 1024, 8192, 20_000, 70_000]),
       prefix=st.integers(0, 30_000), case=st.integers(0, 8))
@example(b=700, ctx=200_000.0, pt=70_000, prefix=30_000, case=2)  # every context past the sliding window
def test_one_roofline_pass_in_plain_floats_is_the_vectorised_pass_to_the_bit(b, ctx, pt, prefix, case):
    # the same on GPUs without measured tables (TimingModel._roofline_step1, kv.kv_cache_bytes1 and the layer
    # kinds' tokens_held1), over every rule a pass reads: dense and MoE weights (experts touched), block rounding,
    # sliding windows (gemma-2), chunked local layers (Llama 4), sparse MLA's top-k, linear-attention states, the
    # dequantization traffic of a 4-bit format, TP's all-reduces, PP, the transformers layout and a CPU offload
    from dataclasses import replace

    from planner import api
    plans = _ROOFLINE_PLANS
    if not plans:
        plans.extend(api.build_plan(m, g, Deployment(**kw)).timing for m, g, kw in (
            ("Llama-3.1-70B", "MI300X", {"weights": "fp8-block", "kv_dtype": "fp8"}),
            ("Qwen3-30B-A3B", "MI300X", {"tp": 2}),
            ("gemma-2-9b", "L4", {}),
            ("Llama-4-Scout-17B-16E-Instruct", "MI300X", {"tp": 4}),
            ("DeepSeek-V3.2", "MI355X", {"tp": 8, "pp": 2}),
            ("Llama-2-7b-hf", "A10G", {"weights": "bnb-nf4"}),
            ("Qwen3-Next-80B-A3B-Instruct", "MI300X", {"tp": 2}),
            ("gemma-3-1b-it", "T4", {"engine": "transformers", "weights": "fp16", "kv_dtype": "fp16"})))
        plans.append(replace(plans[0], cpu_layers=20, cpu_layer_bytes=20 * 0.9e9, host_bandwidth_bytes_per_s=60e9))
        assert not any(t.ops is not None for t in plans)
        kinds = {g.kind for t in plans for g in t.kv_groups}
        assert {"full", "sliding", "chunked", "sparse_mla", "linear"} <= kinds, kinds
        assert plans[5].kernel.dequant_bytes_per_weight > 0 and plans[1].moe_layers > 0
    tm = plans[case]
    ctx = ctx if b else 0.0
    b = b if b or pt else 1
    assert tm.step_time_s(b, ctx, pt, pt + prefix if pt else 0) == float(tm.step(b, ctx, pt, pt + prefix if pt else 0)["time_s"])


def test_nvfp4_gemm_table_on_blackwell_only():
    b200 = OpTables.load("B200")
    assert "nvfp4" in b200.dtypes("gemm") and "nvfp4" in b200.dtypes("moe")
    assert "nvfp4" not in OpTables.load("H100-SXM").dtypes("gemm")
    # rows of aic_vllm024_{b200_sxm,gb200}_gemm_nvfp4.csv.gz: m 8192, n 2048, k 8192 -> 0.105950 / 0.088875 ms
    for gpu, ms in (("B200", 0.105950), ("GB200", 0.088875)):
        assert OpTables.load(gpu).gemm(np.array([8192.0]), 2048, 8192, "nvfp4").seconds[0] == pytest.approx(ms * 1e-3)
    # the measured NVFP4 GEMM is slower than its datasheet roofline (9 PFLOP/s dense FP4), never faster
    e = b200.gemm(np.array([8192.0]), 28672, 8192, "nvfp4")
    assert e.seconds[0] >= e.roofline_s[0]
    # 2 x 8192 x 28672 x 8192 FLOPs = 3.85 PFLOP -> at least 0.428 ms at 9 PFLOP/s
    assert e.roofline_s[0] == pytest.approx(2 * 8192 * 28672 * 8192 / 9e15, rel=0.01)


@pytest.mark.parametrize("gpu", ["GB200", "RTX-PRO-6000-SE"])
def test_gb200_and_rtx_pro_6000_have_measured_tables(gpu):
    t = OpTables.load(gpu)
    assert t is not None
    assert {"bf16", "fp8", "nvfp4"} <= set(t.dtypes("gemm"))
    p = api.build_plan("Llama-3.1-8B", gpu, Deployment(weights="bf16", server="vllm"))
    assert p.timing.ops is not None


def test_per_tensor_fp8_weights_use_the_fp8_gemm_table():
    # ModelOpt FP8 checkpoints (per-tensor scales) run vLLM's CUTLASS scaled_mm, the kernel AIC's fp8 rows time
    p = api.build_plan("Llama-3.1-70B", "H200", Deployment(weights="fp8-tensor", kv_dtype="fp8", tp=2, server="trtllm"))
    assert p.timing.ops is not None
    q = api.build_plan("Llama-3.1-70B", "H200", Deployment(weights="fp8", kv_dtype="fp8", tp=2, server="trtllm"))
    # same kernel table, same weight bytes: the decode step of a batch is timed alike
    assert p.timing.step_time_s(64, 2048) == pytest.approx(q.timing.step_time_s(64, 2048), rel=0.02)


# ---- SGLang's own tables (profiles/reference/aic_sglang-0.5.9_*) ---------------------------------------
SGL_H200 = OpTables.load("H200", engine="sglang")


def test_sglang_tables_load_on_the_two_hopper_gpus_only():
    for gpu in ("H100-SXM", "H200"):
        t = OpTables.load(gpu, engine="sglang")
        assert t.engine == "sglang" and {v for _, _, v, _ in t.files} == {"0.5.9"}
        assert set(t.dtypes("gemm")) == {"bf16", "fp8", "fp8_block"} and t.dtypes("mla_bmm") == ("bf16", "fp8")
        assert not t.dtypes("mla_generation_module")  # SGLang's MLA is the kernel alone, composed below
    assert OpTables.load("B200", engine="sglang") is None and OpTables.load("A100-SXM-80GB", engine="sglang") is None
    # no SGLang release at or below 0.5.8 is carried; vLLM's file names still read as 0.24 / 0.14, not 0.2.4
    assert OpTables.load("H200", engine="sglang", version="0.5.8") is None
    assert OpTables.load("H200", engine="sglang", version="0.5.9.post1") is not None
    assert {v for _, _, v, _ in OpTables.load("H100-SXM", version="0.14").files} == {"0.14.0"}


def test_sglang_rows_are_its_own_not_vllms():
    # aic_sglang-0.5.9_h200_sxm_allreduce_bf16 row "2,128,sglang_graph,0.004191": 128 bf16 elements = 256 bytes
    assert float(SGL_H200.allreduce_s(256, 2)) == pytest.approx(0.004191e-3, rel=1e-12)
    # the eager backend's rows (a launch outside a CUDA graph: "2,128,sglang_eager,0.020526") are its own variant
    assert float(SGL_H200.allreduce_s(256, 2, cuda_graph=False)) > 4 * float(SGL_H200.allreduce_s(256, 2))
    assert "aic_sglang-0.5.9_h200_sxm_allreduce_bf16.csv" in SGL_H200.allreduce(256, 2).source
    assert "mla/sglang/0.5.9/generation_mla_perf.parquet" in SGL_H200.mla_decode(64, 1023, 16).source


def test_sglang_mla_decode_is_the_kernel_and_bmm_rows_plus_the_three_projections():
    # DeepSeek-V3 at TP 8 (16 heads a rank), 64 sequences with 1,023 cached tokens, fp8_block projections:
    # mla_generation_bf16 row "16,64,1,1023,0.038269"; mla_bmm_fp8 rows "mla_gen_pre,64,16,0.008992" and
    # "mla_gen_post,64,16,0.0094272" (the BMMs run fp8 with fp8 projections); projections of 64 tokens:
    # fused q_a + kv_a 7168 -> 1536 + 512 + 64 = 2112, q_b 1536 -> 16 x 192 = 3072, o 16 x 128 = 2048 -> 7168
    gemms = sum(float(SGL_H200.gemm_s(64, n, k, "fp8_block")) for n, k in ((2112, 7168), (3072, 1536), (7168, 2048)))
    rows = (0.038269 + 0.008992 + 0.0094272) * 1e-3
    d = SGL_H200.mla_decode(64, 1023, 16, "bf16", "fp8_block")
    assert float(d.seconds) == pytest.approx(rows + gemms, rel=1e-9)
    # bf16 projections take the bf16 BMM rows (aic-core sdk/models/deepseek.py: the BMMs follow kv_b's dtype)
    assert "aic_sglang-0.5.9_h200_sxm_mla_bmm_bf16" in SGL_H200.mla_decode(64, 1023, 16, "bf16", "bf16").source
    assert "aic_sglang-0.5.9_h200_sxm_mla_bmm_fp8" in d.source
    # its datasheet bound is the parts' bounds added; inside the measured grids only where every part is
    parts = [SGL_H200.gemm(64, n, k, "fp8_block") for n, k in ((2112, 7168), (3072, 1536), (7168, 2048))]
    m = profiles.load_model(oproof.MLA_MODEL)
    kernel = oproof.mla_attention(SGL_H200.gpu, "bf16", True, m)({"batch": 64, "length": 1023, "heads": 16})
    bmm = oproof.mla_bmm(SGL_H200.gpu, "fp8", m)({"tokens": 64, "heads": 16})
    assert float(d.roofline_s) == pytest.approx(sum(float(p.roofline_s) for p in parts) + float(kernel) + 2 * float(bmm),
                                                rel=1e-9)
    assert bool(d.inside) and not bool(SGL_H200.mla_decode(64, 1023, 256).inside)  # 256 heads a rank: never timed
    # no sequences, no call
    assert float(SGL_H200.mla_decode_s(0, 1023, 16)) == 0.0


def test_sglang_mla_prefill_adds_kv_b_and_the_causal_kernel():
    # mla_context_bf16 row "16,1,1024,0,0.049246": one 1,024-token prompt, 16 heads; projections of 1,024 tokens,
    # kv_b 512 -> 16 x (128 + 128) = 4096 on top of the decode path's three
    shapes = ((2112, 7168), (3072, 1536), (7168, 2048), (4096, 512))
    gemms = sum(float(SGL_H200.gemm_s(1024, n, k, "bf16")) for n, k in shapes)
    assert float(SGL_H200.mla_prefill_s(1, 1024, 16)) == pytest.approx(0.049246e-3 + gemms, rel=1e-9)


def test_an_sglang_plan_is_timed_on_sglangs_tables_and_falls_back_to_vllms_where_they_stop():
    def source(model, server, gpu="H200", **kw):
        weights = api.default_weights(profiles.load_model(model))
        return api.build_plan(model, gpu, Deployment(weights=weights, server=server, **kw)).timing.source
    assert "aic_sglang-0.5.9_h200_sxm" in source("DeepSeek-V3", "sglang", tp=8)
    assert "aic_sglang" not in source("DeepSeek-V3", "vllm", tp=8)
    assert "aic_sglang" not in source("Llama-3.1-8B", "trtllm")  # TensorRT-LLM: vLLM's tables, as before
    # gpt-oss's MXFP4 experts were not timed for SGLang: the plan takes vLLM's whole set and says why
    oss = source("gpt-oss-120b", "sglang")
    assert "(vllm's kernels: sglang's measured tables do not cover this plan (no measured moe table for " \
           "'w4a16_mxfp4'" in oss and "aic_sglang" not in oss
    # no SGLang tables on B200: vLLM's, said so; a vLLM or TensorRT-LLM plan never carries the marker
    b200 = source("Llama-3.1-8B", "sglang", gpu="B200")
    assert "aic_vllm024_b200" in b200 and "(vllm's kernels: sglang's no measured operator tables for B200)" in b200
    for server in ("vllm", "trtllm"):
        assert "kernels" not in source("gpt-oss-120b", server) and "kernels" not in source("Llama-3.1-8B", server)

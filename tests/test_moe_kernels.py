"""Which kernel runs a plan's experts: vLLM's MXFP4 experts on Triton (its default on Hopper) or on
Marlin (VLLM_MXFP4_USE_MARLIN=1, as InferenceX serves gpt-oss), and the mean-value prefill's passes."""

from __future__ import annotations

import pandas as pd
import pytest

from planner import api, commands, profiles
from planner import requestparams as rp
from planner import validate_e2e as v
from planner.errors import PlannerInputError
from planner.memory import Deployment
from planner.opstep import moe_dtype
from planner.optables import OpTables

H200 = OpTables.load("H200")
OSS = (2880, 2880, 128, 4)  # gpt-oss-120b's experts: hidden, intermediate, experts, top-k


def test_mxfp4_experts_take_the_marlin_table_only_when_asked():
    assert moe_dtype("mxfp4", "bf16", Deployment()) == "w4a16_mxfp4"
    assert moe_dtype("mxfp4", "bf16", Deployment(mxfp4_moe_backend="marlin")) == "w4a16_marlin"
    # not an MXFP4 checkpoint: the setting changes nothing
    assert moe_dtype("fp8", "fp8", Deployment(mxfp4_moe_backend="marlin")) == "fp8"


def test_the_marlin_setting_is_checked_and_is_vllm_s_alone():
    with pytest.raises(PlannerInputError) as e:
        Deployment(mxfp4_moe_backend="cutlass")
    assert e.value.field == "mxfp4_moe_backend" and "marlin" in e.value.fix
    with pytest.raises(PlannerInputError) as e:
        Deployment(server="sglang", mxfp4_moe_backend="marlin")
    assert e.value.field == "mxfp4_moe_backend" and "VLLM_MXFP4_USE_MARLIN" in e.value.problem


def test_marlin_on_gpt_oss_s_shape_is_borrowed_and_slower_at_a_prefill_chunk():
    # AIC timed gpt-oss's own shape only on the Triton kernel: 3.9425 ms at 8192 tokens, TP 1 (moe_w4a16_mxfp4,
    # power_law_1.01). Marlin's rows never pass 250 TFLOPS on H200 (Kimi-K2 int4 at 16384 tokens: 249.9); the
    # layer at 8192 tokens is 2 x 3 x 2880 x 2880 x 8192 x 4 = 1.631e12 FLOP, so >= 1.631e12 / 250e12 = 6.52 ms
    triton = H200.moe(8192, *OSS, tp=1, dtype="w4a16_mxfp4", distribution="power_law_1.01")
    assert bool(triton.inside) and float(triton.seconds) == pytest.approx(3.9425e-3, rel=1e-9)
    marlin = H200.moe(8192, *OSS, tp=1, dtype="w4a16_marlin", distribution="power_law_1.01")
    assert not bool(marlin.inside) and "scaled from the measured shape" in marlin.source
    assert float(marlin.seconds) >= 6.52e-3


def test_a_borrowed_moe_call_is_never_faster_than_the_fastest_measured_call():
    # the fastest Marlin call in the H200 file (power_law_1.01): Kimi-K2 at TP 8, one token, 0.040365 ms; gpt-oss's
    # 4 experts of 3 x 2880 x 360 at 0.5 byte are 6.2 MB (1.3 us at 4.8 TB/s), which the nearest shape's efficiency
    # alone would put at 11 us
    s = H200.moe_s([1, 2, 4], *OSS, tp=8, dtype="w4a16_marlin", distribution="power_law_1.01")
    assert (s >= 0.040365e-3 - 1e-12).all()


def test_a_marlin_plan_s_prompt_takes_longer_and_its_command_sets_the_variable():
    base = {"model": "gpt-oss-120b", "gpu": "H200", "batch": "4", "prompt": "8192", "output": "256", "tp": "2",
            "weights": "mxfp4", "simulate": "0"}
    auto = api.plan_request(rp.from_params(base))
    marlin = api.plan_request(rp.from_params(base | {"mxfp4_moe_backend": "marlin"}))
    assert marlin.latency.ttft_lower_bound_s > 1.3 * auto.latency.ttft_lower_bound_s
    req = rp.from_params({"model": "gpt-oss-120b", "gpu": "H200", "batch": "4", "prompt": "1024", "output": "128",
                          "weights": "mxfp4", "mxfp4_moe_backend": "marlin"})
    assert rp.to_params(req)["mxfp4_moe_backend"] == "marlin"
    assert rp.to_argv(req)[-2:] == ["--mxfp4-moe-backend", "marlin"]
    c = commands.commands("gpt-oss-120b", "H200", req.deployment, 1024, 128, 4)
    assert c.serve.argv[:4] == ("env", "VLLM_MXFP4_USE_MARLIN=1", "vllm", "serve")
    # a bf16 model: the variable would change nothing, so the command does not carry it
    dense = Deployment(mxfp4_moe_backend="marlin")
    assert commands.commands("Llama-3.1-8B", "H200", dense, 1024, 128, 4).serve.argv[0] == "vllm"


def _row(version):
    return pd.Series({"backend": "vllm", "batch_size": 16.0, "isl": 1024, "osl": 1024, "tp_size": 2.0, "pp_size": 1.0,
                      "weights": "bf16", "version": version})


def test_inferencex_serves_gpt_oss_on_marlin_from_the_v0_13_image_on():
    # SemiAnalysisAI/InferenceX @4e52ed4 (2026-01-02): "Update vLLM image from v0.11.2 to v0.13.0" and
    # "Add VLLM_MXFP4_USE_MARLIN=1 to H100 and H200 benchmark scripts"
    oss, llama = profiles.load_model("gpt-oss-120b"), profiles.load_model("Llama-3.1-70B")
    assert v.deployment(_row("0.18.0"), oss, "inferencex").mxfp4_moe_backend == "marlin"
    assert v.deployment(_row("0.13.0"), oss, "inferencex").mxfp4_moe_backend == "marlin"
    assert v.deployment(_row("0.11.2"), oss, "inferencex").mxfp4_moe_backend == "auto"
    assert v.deployment(_row(None), oss, "inferencex").mxfp4_moe_backend == "auto"  # measured 2025-11 / 12
    assert v.deployment(_row("0.18.0"), llama, "inferencex").mxfp4_moe_backend == "auto"


def test_a_prompt_one_token_past_the_budget_adds_a_small_pass_not_a_whole_one():
    # 8192 prompt tokens and one decode under vLLM's 8192-token budget: one pass of 8192 tokens (8191 prompt + the
    # decode), then one of 2 (the last prompt token + the decode); not two passes of 8192
    p = api.build_plan("gpt-oss-120b", "H200", Deployment(weights="mxfp4", tp=2, max_num_batched_tokens=8192))
    alone = float(p.timing.prefill(1, 8192)["time_s"])
    riding = float(p.timing.prefill(1, 8192, decode_batch=1, decode_context=8704)["time_s"])
    assert alone < riding < 1.1 * alone


def test_a_plan_whose_expert_shape_was_not_measured_says_whose_it_borrows():
    # gpt-oss-20b on Marlin (VLLM_MXFP4_USE_MARLIN=1): AIC timed Marlin only on Kimi-K2 / K3 shapes (7168 hidden,
    # 384 experts, top-8), so its experts borrow the nearest one's efficiency, Kimi-K2's at EP 16 (docs/validation.md:
    # not credible for 32 experts); the plan's step-time source says so. On the default Triton kernel AIC timed
    # gpt-oss's own shapes: nothing is borrowed, and a dense model has no experts to borrow for
    w = api.default_weights(profiles.load_model("gpt-oss-20b"))
    marlin = api.build_plan("gpt-oss-20b", "H200", Deployment(weights=w, mxfp4_moe_backend="marlin"))
    src = marlin.timing.source
    assert "expert shape was not measured" in src and "w4a16_marlin" in src
    assert "MoeShape(hidden=7168, intermediate=2048, experts=384, topk=8, tp=1, ep=16)" in src
    triton = api.build_plan("gpt-oss-20b", "H200", Deployment(weights=w))
    assert triton.timing.ops is not None and "not measured" not in triton.timing.source
    dense = api.build_plan("Llama-3.1-8B", "H200", Deployment())
    assert dense.timing.source.startswith("measured operator tables: ")


def test_the_headline_says_when_the_experts_time_is_borrowed():
    # the same plans through plan(): the latency's source (the CLI's "simulated:" line, the dashboard's caption)
    # carries the note for Marlin, not for the Triton kernel timed on gpt-oss's own shapes
    note = "the MoE experts' time is borrowed from another model's measured shape"
    marlin = api.plan("gpt-oss-20b", "H200", 8, 1024, 512, weights="mxfp4", mxfp4_moe_backend="marlin")
    assert note in marlin["latency_source"]
    triton = api.plan("gpt-oss-20b", "H200", 8, 1024, 512, weights="mxfp4")
    assert note not in triton["latency_source"]


def test_an_moe_plan_the_tables_do_not_cover_takes_their_median_over_the_roofline():
    # profiles/kernels.json moe_roofline_realism (scripts/moe_realism.py): decode factors 2.146 / 1.477 / 1.245 / 1.356
    # at 1 / 8 / 32 / 128 sequences, prefill 1.882 / 2.407 / 1.727 at 512 / 2,048 / 8,192 tokens
    r = profiles.kernels()["moe_roofline_realism"]
    assert r["decode"] == [2.146, 1.477, 1.245, 1.356] and r["prefill"] == [1.882, 2.407, 1.727]
    # Qwen3-30B-A3B on an MI300X: no measured tables, so the roofline, its kernels scaled
    p = api.build_plan("Qwen3-30B-A3B", "MI300X", Deployment(server="vllm"))
    t = p.timing
    assert t.ops is None and t.realism is not None and "moe_roofline_realism" in t.source
    fixed = t.eff.step_overhead_s + t.layers * t.eff.layer_overhead_s
    one = float(t.step(1, 1024)["time_s"])
    assert one == pytest.approx(t.roofline_kernels_s(1, 1024) * 2.146 + fixed, rel=1e-12)
    # 4 sequences: log-linear between 1 and 8, 2.146 + (1.477 - 2.146) x ln 4 / ln 8 = 2.146 - 0.669 x 2/3 = 1.700
    four = float(t.step(4, 1024)["time_s"])
    assert four == pytest.approx(t.roofline_kernels_s(4, 1024) * 1.700 + fixed, rel=1e-9)
    # a pass with a 2,048-token prefill chunk takes the prefill factor; beyond 8,192 tokens the last one
    assert float(t.step(0, 0, 2048, 2048)["time_s"]) == pytest.approx(
        t.roofline_kernels_s(0, 0, 2048, 2048) * 2.407 + fixed, rel=1e-12)
    assert float(t.step(0, 0, 16384, 16384)["time_s"]) == pytest.approx(
        t.roofline_kernels_s(0, 0, 16384, 16384) * 1.727 + fixed, rel=1e-12)
    # the simulation's plain-float pass is the same number
    assert t.step_time_s(4, 1024) == four
    # a dense model on the roofline, an MoE on the tables and HF transformers' generate keep the roofline as it is
    assert api.build_plan("Qwen3-32B", "MI300X", Deployment(server="vllm")).timing.realism is None
    assert api.build_plan("Qwen3-30B-A3B", "H100-SXM", Deployment(server="vllm")).timing.realism is None
    assert api.build_plan("Qwen3-30B-A3B", "MI300X", Deployment(engine="transformers")).timing.realism is None


def test_tensorrt_llm_runs_mxfp4_experts_with_mxfp8_activations_on_blackwell_only():
    # TensorRT-LLM examples/models/core/gpt_oss/README.md: Blackwell mxfp8 activations (CUTLASS / TRTLLM), Hopper bf16
    b200, h200 = OpTables.load("B200").dtypes("moe"), H200.dtypes("moe")
    assert "w4a8_mxfp4_mxfp8" in b200 and "w4a8_mxfp4_mxfp8" not in h200
    trt = Deployment(server="trtllm", weights="mxfp4")
    assert moe_dtype("mxfp4", "bf16", trt, b200) == "w4a8_mxfp4_mxfp8"
    assert moe_dtype("mxfp4", "bf16", trt, h200) == "w4a16_mxfp4"
    # vLLM's default on SM100 keeps bf16 activations (get_mxfp4_backend: SM100_FI_MXFP4_BF16)
    assert moe_dtype("mxfp4", "bf16", Deployment(weights="mxfp4"), b200) == "w4a16_mxfp4"
    # AIC timed the kernel on DeepSeek-like shapes only: gpt-oss's borrows one, and at an 8192-token pass it is
    # faster than the measured bf16-activation kernel on gpt-oss's own shape (3.2418 ms, power_law_1.01)
    B = OpTables.load("B200")
    bf16 = B.moe(8192, *OSS, tp=1, dtype="w4a16_mxfp4", distribution="power_law_1.01")
    assert bool(bf16.inside) and float(bf16.seconds) == pytest.approx(3.2418e-3, rel=1e-6)
    fp8 = B.moe(8192, *OSS, tp=1, dtype="w4a8_mxfp4_mxfp8", distribution="power_law_1.01")
    assert not bool(fp8.inside) and fp8.borrowed
    # 2 x 3 x 2880 x 2880 x 8192 x 4 = 1.631e12 FLOP: never above the 4.5 PFLOP/s fp8 peak -> >= 0.362 ms
    assert 0.362e-3 <= float(fp8.seconds) < float(bf16.seconds)

"""Timing formulas (planner/timing.py) against values derived by hand, on the in-code H100.

Every expected value is arithmetic on published shapes (Llama-3.1-8B, DeepSeek-V2-Lite) and the
datasheet figures of tests/synthetic.py, written out in the comments; none is computed by the
planner. Two helper GPUs make one side of the roofline vanish so the other can be checked exactly:
MEM_BOUND has a million times the FLOP/s (every phase takes bytes / bandwidth), COMPUTE_BOUND a
million times the bandwidth.

Shared figures (Llama-3.1-8B in bf16, tests/test_kv_known.py has the parameter count):
  W    = 15,009,849,344 B  weights a forward pass reads: all 16,060,522,496 B but the input
                            embedding table 128,256 x 4,096 x 2 = 1,050,673,152 B
  L    = 218,112,000       parameters per layer (q,k,v,o 41,943,040 + MLP 176,160,768 + norms 8,192)
  KV   = 131,072 B/token   32 layers x 8 KV heads x (128 + 128) x 2 B
"""

from dataclasses import replace

import numpy as np
import pytest
from synthetic import H100, TABLE
from test_kv_known import LLAMA31_8B

from planner.memory import Deployment
from planner.opstep import OpCurves
from planner.spec import ModelSpec
from planner.timing import Efficiency, KernelFactor, TimingModel, build_timing

SPEC = ModelSpec.from_hf_config(LLAMA31_8B, "llama-3.1-8b")
IDEAL = Efficiency(memory=1.0, compute=1.0, layer_overhead_s=0.0, allreduce_latency_s=0.0)  # no fixed costs
MEM_BOUND = replace(H100, peak_flops=tuple((d, f * 1e6) for d, f in H100.peak_flops))
COMPUTE_BOUND = replace(H100, memory_bandwidth_bytes_per_s=3.35e18)
W = 15_009_849_344
KV = 131_072
BW = 3.35e12
PEAK = 989.4e12
DSV2_LITE = {  # deepseek-ai/DeepSeek-V2-Lite config.json, shape fields
    "model_type": "deepseek_v2", "architectures": ["DeepseekV2ForCausalLM"], "vocab_size": 102400,
    "hidden_size": 2048, "intermediate_size": 10944, "num_hidden_layers": 27, "num_attention_heads": 16,
    "num_key_value_heads": 16, "kv_lora_rank": 512, "qk_rope_head_dim": 64, "qk_nope_head_dim": 128,
    "v_head_dim": 128, "q_lora_rank": None, "n_routed_experts": 64, "num_experts_per_tok": 6,
    "moe_intermediate_size": 1408, "n_shared_experts": 2, "first_k_dense_replace": 1}
MISTRAL_7B = {**LLAMA31_8B, "model_type": "mistral", "vocab_size": 32000, "sliding_window": 4096}


PLAIN = KernelFactor()


def timing(spec=SPEC, gpu=H100, eff=IDEAL, kernel=PLAIN, **dep) -> TimingModel:
    return build_timing(spec, gpu, Deployment(**dep), TABLE, eff, kernel)


def test_the_test_gpus_have_no_measured_operator_tables():
    # everything below checks the roofline: the in-code GPUs are not bundled, so no op tables apply
    t = timing()
    assert t.ops is None
    assert t.ops_note == "H100-test is not a bundled GPU: no measured operator tables"
    assert t.source == "roofline (datasheet efficiencies); H100-test is not a bundled GPU: no measured operator tables"
    assert replace(t, ops_note="").source == "roofline (datasheet efficiencies)"


def test_pipeline_latency_is_pp_times_the_fullest_stage():
    # PP=2: each stage holds 16 of the 32 layers: 16 x L x 2 B = 6,979,584,000 B, plus (charged to
    # the fullest stage) the final norm 8,192 B and the lm_head 1,050,673,152 B = 8,030,265,344 B.
    # KV of those 16 layers: 16 x 8 x 256 x 2 B = 65,536 B/token; 101 tokens -> 7 blocks = 112 tokens
    # -> 7,340,032 B. One stage's step: 8,037,605,376 B / 3.35 TB/s; a token passes both stages.
    t = timing(pp=2).decode_step(1, 100)
    assert float(t["bytes"]) == 8_030_265_344 + 7_340_032
    assert float(t["time_s"]) == pytest.approx(2 * (8_030_265_344 + 7_340_032) / BW)
    # PP=3: stages of 11, 11, 10 layers; the fullest (11): 11 x L x 2 B = 4,798,464,000 B + 1,050,681,344 B
    # head = 5,849,145,344 B; KV 11 x 4,096 B x 112 tokens = 5,046,272 B; three stages in turn
    t3 = timing(pp=3).decode_step(1, 100)
    assert float(t3["time_s"]) == pytest.approx(3 * (5_849_145_344 + 5_046_272) / BW)
    # the prefill passes the stages in turn too: 1000 tokens (one chunk, 63 blocks = 1,008 tokens)
    # on the memory-bound GPU: (8,030,265,344 + 2 x 1,008 x 65,536 B) per stage, written then re-read
    p = timing(gpu=MEM_BOUND, pp=2).prefill(1, 1000)
    assert float(p["time_s"]) == pytest.approx(2 * (8_030_265_344 + 2 * 1008 * 65_536) / BW)


def test_tpot_is_simpsons_rule_over_the_growing_context(monkeypatch):
    # With a step time of context^2 the mean over the output is exact under Simpson's rule: a request
    # of 3 output tokens decodes 2 steps after its first token, at contexts 0..2 around the prompt 0:
    # (0 + 4 x 1 + 4) / 6 = 4/3 (= the integral of c^2 over [0, 2] / 2); the plain mean of the three
    # points would be 5/3, the trapezoid 2, the midpoint 1.
    monkeypatch.setattr(TimingModel, "decode_step", lambda self, b, c: {"time_s": np.asarray(c, dtype=float) ** 2})
    t = timing()
    assert float(t.tpot(1, 0, 3)) == pytest.approx(4 / 3)
    # prompt 10, 5 output tokens: 4 steps at contexts 10, 12, 14: (100 + 4 x 144 + 196) / 6 = 145.333..
    assert float(t.tpot(1, 10, 5)) == pytest.approx((100 + 576 + 196) / 6)
    # one output token: no decode step, the context stays at the prompt: (25 + 100 + 25) / 6 = 25
    assert float(t.tpot(1, 5, 1)) == pytest.approx(25)
    assert float(t.tpot(1, 5, 0)) == pytest.approx(25)


def test_tpot_of_a_sliding_window_model_averages_the_capped_kv():
    # Mistral-7B (window 4096) on the memory-bound GPU in transformers' cache (no blocks): weights
    # 32 x L x 2 B = 13,959,168,000 + lm_head 32,000 x 4,096 x 2 = 262,144,000 + final norm 8,192
    # = 14,221,320,192 B. Prompt 3000, 2001 output tokens: steps at contexts 3000, 4000, 5000 read the
    # KV of 3001, 4001 and min(5001, 4095) = 4095 tokens: Simpson (3001 + 4 x 4001 + 4095) / 6 = 3850
    # tokens (the mean of the three would be 3699).
    t = timing(ModelSpec.from_hf_config(MISTRAL_7B, "mistral"), gpu=MEM_BOUND, engine="transformers")
    assert float(t.tpot(1, 3000, 2001)) == pytest.approx((14_221_320_192 + 3850 * KV) / BW)


def test_chunked_prefill_reads_the_weights_per_chunk_and_rereads_the_prompts_kv():
    # A 20,000-token prompt at max_num_batched_tokens 8192 runs in ceil(20000 / 8192) = 3 chunks, each
    # reading the weights W; its KV (1250 blocks of 16 = 20,000 tokens x 131,072 B = 2,621,440,000 B)
    # is written once and read back by the later chunks: 3 W + 2 x 2,621,440,000 B.
    t = timing(gpu=MEM_BOUND).prefill(1, 20_000)
    assert float(t["bytes"]) == 3 * W + 2 * 2_621_440_000
    assert float(t["time_s"]) == pytest.approx((3 * W + 2 * 2_621_440_000) / BW)
    assert t["bound"] == "memory"
    # transformers' generate runs the prompt in one pass: W + 2 x 20,000 x 131,072 B
    t1 = timing(gpu=MEM_BOUND, engine="transformers").prefill(1, 20_000)
    assert float(t1["bytes"]) == W + 2 * 20_000 * KV
    # a smaller chunk budget: 20,000 / 4096 -> 5 chunks
    t5 = timing(gpu=MEM_BOUND, max_num_batched_tokens=4096).prefill(1, 20_000)
    assert float(t5["bytes"]) == 5 * W + 2 * 2_621_440_000


def test_prefill_with_decode_sequences_riding_in_the_chunk():
    # 3 decode sequences at context 999 ride with a 1000-token prompt (transformers cache, one pass):
    # bytes W + 2 x 1000 x KV (the prompt) + 3 x 1000 x KV (the riders read their context + 1);
    # FLOPs: 1003 tokens x 2 x 6,979,321,856 body params + 4 sampled rows x 2 x 525,336,576 (lm_head)
    # + attention 32 layers x 2 x 32 heads x 256 = 524,288 per key: the prompt sees 1000 x 1001 / 2
    # keys, each rider 1000.
    t = timing(gpu=MEM_BOUND, engine="transformers").prefill(1, 1000, decode_batch=3, decode_context=999)
    assert float(t["bytes"]) == W + 2 * 1000 * KV + 3 * 1000 * KV
    body = 2 * 6_979_321_856
    assert float(t["flops"]) == pytest.approx(1003 * body + 4 * 2 * 525_336_576 + 524_288 * (1000 * 1001 / 2 + 3 * 1000),
                                          rel=1e-12)
    # paged, 8190 prompt tokens + 3 riders = 8193 > 8192: two chunks, each reading W
    tp = timing(gpu=MEM_BOUND).prefill(1, 8190, decode_batch=3, decode_context=999)
    # prompt KV 512 blocks = 8192 tokens; riders 3 x 63 blocks = 3 x 1008 tokens
    assert float(tp["bytes"]) == 2 * W + 2 * 8192 * KV + 3 * 1008 * KV


def test_a_mixed_step_reads_every_decode_sequences_kv_and_the_chunks_prefix():
    # 4 sequences decode at context 1000 (each reads 1001 tokens of KV) while a 512-token chunk is
    # appended to a prompt that then holds 2048 tokens (it reads and writes 2048 tokens of KV):
    # W + (4 x 1001 + 2048) x 131,072 B; FLOPs 516 tokens x 2 x 6,979,321,856 + 5 sampled rows x
    # 2 x 525,336,576 + attention 524,288 x (4 x 1001 + keys of queries 1537..2048 = sum_{i=1537}^{2048} i
    # = (2048 x 2049 - 1536 x 1537) / 2 = 917,760)
    t = timing(gpu=MEM_BOUND, engine="transformers").step(4, 1000, prefill_tokens=512, prefill_context=2048)
    assert float(t["kv_read_bytes"]) == (4 * 1001 + 2048) * KV
    assert float(t["bytes"]) == W + (4 * 1001 + 2048) * KV
    assert float(t["flops"]) == pytest.approx(516 * 2 * 6_979_321_856 + 5 * 2 * 525_336_576
                                              + 524_288 * (4 * 1001 + 917_760))
    assert float(t["time_s"]) == pytest.approx((W + (4 * 1001 + 2048) * KV) / BW)
    # a prefill chunk whose context is left at 0 holds at least its own tokens
    alone = timing(gpu=MEM_BOUND, engine="transformers").step(0, 0, prefill_tokens=512)
    assert float(alone["kv_read_bytes"]) == 512 * KV


def test_mla_attention_flops_use_the_absorbed_latent():
    # DeepSeek-V2-Lite: 16 heads; vLLM's MLA absorbs the up-projections, so a query scores against
    # kv_lora_rank + rope = 512 + 64 dims and sums values over the 512-dim latent:
    # 2 FLOPs x 16 heads x (2 x 512 + 64) = 34,816 FLOPs per query per key per layer (not the
    # 2 x 16 x (qk 192 + v 128) = 10,240 of the unabsorbed heads), in all 27 layers.
    spec = ModelSpec.from_hf_config(DSV2_LITE, "dsv2-lite")
    t = timing(spec)
    assert t.attn_groups == (("mla", 27, 0, 34_816.0),)
    # a 1000-token prefill sees 1000 x 1001 / 2 = 500,500 keys: 27 x 34,816 x 500,500 FLOPs
    assert float(t.attention_flops(1000, 1000)) == pytest.approx(27 * 34_816 * 500_500)
    # a decode token at context 4096 sees 4096 keys
    assert float(t.attention_flops(4096, 1)) == pytest.approx(27 * 34_816 * 4096)
    # TP=2 splits the heads: 8 per rank
    assert timing(spec, tp=2).attn_groups == (("mla", 27, 0, 17_408.0),)


def test_gqa_attention_flops_and_the_sliding_window_cap():
    # Llama-3.1-8B: 2 x 32 heads x (128 + 128) = 16,384 FLOPs per query per key per layer, 32 layers
    assert timing().attn_groups == (("full", 32, 0, 16_384.0),)
    # Mistral (window 4096): a prefill of 10,000 tokens: query i sees min(i, 4096) keys:
    # 4096 x 4097 / 2 + (10,000 - 4096) x 4096 = 8,390,656 + 24,182,784 = 32,573,440 keys
    m = timing(ModelSpec.from_hf_config(MISTRAL_7B, "mistral"))
    assert m.attn_groups == (("sliding", 32, 4096, 16_384.0),)
    assert float(m.attention_flops(10_000, 10_000)) == pytest.approx(32 * 16_384 * 32_573_440)
    # a 100-token chunk after 9,900 tokens: every query sees the full window, 100 x 4096 keys
    assert float(m.attention_flops(10_000, 100)) == pytest.approx(32 * 16_384 * 409_600)
    # a chunk ending inside the window: queries 901..1000 see 901..1000 keys: 95,050
    assert float(m.attention_flops(1000, 100)) == pytest.approx(32 * 16_384 * 95_050)
    # a chunk straddling the window edge: queries 4001..4200 see 4001..4096, then 4096 each:
    # (4001 + 4096) x 96 / 2 + 104 x 4096 = 388,656 + 425,984 = 814,640 keys
    assert float(m.attention_flops(4200, 200)) == pytest.approx(32 * 16_384 * 814_640)


def test_long_prefill_attention_runs_at_its_own_efficiency():
    # The 8192-token prefill of tests/test_serving.py: matmul FLOPs 2 x 6,979,321,856 x 8192 + one
    # lm_head row 2 x 525,336,576 at compute 0.5; attention 524,288 x 8192 x 8193 / 2 at 0.25
    eff = replace(IDEAL, compute=0.5, attention_compute=0.25)
    t = timing(engine="transformers", eff=eff, gpu=COMPUTE_BOUND).prefill(1, 8192)
    mm = 2 * 6_979_321_856 * 8192 + 2 * 525_336_576
    attn = 524_288 * 8192 * 8193 / 2
    assert float(t["compute_s"]) == pytest.approx(mm / (PEAK * 0.5) + attn / (PEAK * 0.25))
    assert float(t["time_s"]) == pytest.approx(mm / (PEAK * 0.5) + attn / (PEAK * 0.25))
    assert t["bound"] == "compute"
    # attention_compute 0 means "the GEMM efficiency": everything at 0.5
    t0 = timing(engine="transformers", eff=replace(eff, attention_compute=0.0), gpu=COMPUTE_BOUND).prefill(1, 8192)
    assert float(t0["time_s"]) == pytest.approx((mm + attn) / (PEAK * 0.5))
    # a kernel family's factors scale both sides: compute 0.5 x 0.8, memory 1.0 x 0.5
    k = KernelFactor(compute_factor=0.8, memory_factor=0.5)
    tk = timing(engine="transformers", eff=replace(eff, attention_compute=0.0), gpu=COMPUTE_BOUND, kernel=k)
    pk = tk.prefill(1, 8192)
    assert float(pk["compute_s"]) == pytest.approx(mm / (PEAK * 0.4) + attn / (PEAK * 0.5))
    assert float(pk["memory_s"]) == pytest.approx(float(pk["bytes"]) / (3.35e18 * 0.5))


def test_fixed_costs_per_pass_and_per_layer():
    # 2 ms per forward pass + 3 us per layer x 32 layers = 2.096 ms on top of the roofline
    eff = replace(IDEAL, step_overhead_s=2e-3, layer_overhead_s=3e-6)
    d = timing(gpu=MEM_BOUND, engine="transformers", eff=eff).decode_step(1, 99)
    assert float(d["time_s"]) == pytest.approx((W + 100 * KV) / BW + 2e-3 + 32 * 3e-6)
    # a paged prefill pays them once per chunk: 20,000 tokens in 3 chunks
    p = timing(gpu=MEM_BOUND, eff=eff).prefill(1, 20_000)
    assert float(p["time_s"]) == pytest.approx((3 * W + 2 * 2_621_440_000) / BW + 3 * (2e-3 + 32 * 3e-6))


def test_tensor_parallel_allreduce_with_latency():
    # TP=4, 8 tokens: message 8 x 4096 x 2 B = 65,536 B; ring moves 2 x 3/4 of it over 450 GB/s
    # = 2.18453e-7 s, plus 10 us latency; two all-reduces in each of 32 layers
    t = timing(tp=4, eff=replace(IDEAL, allreduce_latency_s=10e-6))
    assert float(t.comm_s(8)) == pytest.approx(2 * 32 * (2 * 3 / 4 * 65_536 / 450e9 + 10e-6))
    # without an interconnect figure no time is charged (a single-GPU profile)
    assert float(timing(tp=4, gpu=replace(H100, interconnect_bytes_per_s=0.0)).comm_s(8)) == 0.0
    # the decode step adds it: batch 8 at context 99 (100 tokens -> 7 blocks = 112 tokens), TP=4 splits
    # the weights 4 ways (norms, 65 x 4096 x 2 B = 532,480 B, replicated) and the KV heads 2 per rank
    d = timing(tp=4, gpu=MEM_BOUND, eff=replace(IDEAL, allreduce_latency_s=10e-6)).decode_step(8, 99)
    weights = (W - 532_480) / 4 + 532_480
    kv = 8 * 112 * KV / 4
    assert float(d["time_s"]) == pytest.approx((weights + kv) / BW + 2 * 32 * (2 * 3 / 4 * 65_536 / 450e9 + 10e-6))


def test_moe_experts_touched_and_expert_bytes():
    # tiny Mixtral: 4 experts, 2 per token: 1 - (1 - 2/4)^T of them per layer: T=1 -> 2, T=2 -> 3, T=3 -> 3.5
    from tiny_configs import TINY
    spec = ModelSpec.from_hf_config(TINY["mixtral-moe"], "mixtral")
    t = timing(spec)
    np.testing.assert_allclose(t.experts_touched(np.array([1, 2, 3])), [2.0, 3.0, 3.5])
    # one expert: gate, up, down of 96 x 64 each = 18,432 params x 2 B = 36,864 B; 2 MoE layers
    assert t.expert_bytes_per_expert == 36_864
    assert t.moe_layers == 2
    # a dense model touches no experts
    assert float(timing().experts_touched(5)) == 0.0
    # decode at batch 2 reads 3 experts per layer: dense part + 2 layers x 3 x 36,864 B
    dense = t.dense_weight_bytes
    assert float(t.weight_read_bytes(2)) == pytest.approx(dense + 2 * 3 * 36_864)


def test_dequantized_weights_add_traffic_from_the_kernels_minimum_tokens():
    # A kernel that dequantizes to 16 bit from 16 tokens per step on moves 2 extra bytes per layer
    # matmul weight: 6,979,321,856 x 2 B; below 16 tokens it reads the packed weights only
    k = KernelFactor(dequant_bytes_per_weight=2.0, dequant_min_tokens=16)
    t = timing(kernel=k)
    assert t.matmul_weights == 6_979_321_856
    np.testing.assert_allclose(t.weight_read_bytes(np.array([15, 16])), [W, W + 2 * 6_979_321_856])
    # per TP rank at TP=2
    assert timing(kernel=k, tp=2).matmul_weights == 6_979_321_856 / 2


def test_fp8_weights_compute_in_fp8_only_where_the_gpu_has_it():
    fp8 = {"bits_per_weight": 8, "source": "e4m3"}
    table = TABLE.from_dict({"storage_types": {"bf16": {"bits_per_weight": 16, "source": "bf16"}, "fp8": fp8},
                             "formats": {"fp8": {"family": "fp8", "roles": {"default": "fp8", "embed": "bf16",
                                                                            "lm_head": "bf16"},
                                                 "compute_dtype": "fp8"}}})
    with_fp8 = replace(H100, peak_flops=H100.peak_flops + (("fp8", 1978.9e12),))
    assert build_timing(SPEC, with_fp8, Deployment(weights="fp8"), table, IDEAL, KernelFactor()).compute_dtype == "fp8"
    assert build_timing(SPEC, with_fp8, Deployment(weights="fp8"), table, IDEAL, KernelFactor()).peak_flops == 1978.9e12
    # an A100-like GPU without fp8 runs the fp8 weights as W8A16 at its 16-bit peak
    assert build_timing(SPEC, H100, Deployment(weights="fp8"), table, IDEAL, KernelFactor()).compute_dtype == "fp16"


def test_tied_embeddings_are_read_as_the_lm_head():
    # Llama-3.1-8B with tied embeddings: no separate lm_head, but the table (1,050,673,152 B) is
    # still read every step as the output projection: the same W
    tied = ModelSpec.from_hf_config({**LLAMA31_8B, "tie_word_embeddings": True}, "tied")
    t = timing(tied)
    assert t.dense_weight_bytes == W
    assert t.lm_head_flops == 2 * 128_256 * 4096


def test_gguf_offload_moves_whole_layers_to_the_host():
    # tiny Mixtral, 1 of 2 layers on the GPU. Per layer: q, o 64 x 64 and k, v 32 x 64 = 12,288
    # params, router 4 x 64 = 256, norms 2 x 64 = 128 -> 12,672 x 2 B = 25,344 B dense; 4 experts
    # of 36,864 B = 147,456 B. The CPU layer's 172,800 B are read from host memory every pass at
    # 100 GB/s; the GPU no longer reads its 25,344 B dense part.
    from tiny_configs import TINY
    spec = ModelSpec.from_hf_config(TINY["mixtral-moe"], "mixtral")
    full = build_timing(spec, H100, Deployment(), TABLE, IDEAL, KernelFactor(), host_bandwidth_bytes_per_s=100e9)
    half = build_timing(spec, H100, Deployment(), TABLE, IDEAL, KernelFactor(), gpu_layers=1,
                        host_bandwidth_bytes_per_s=100e9)
    assert (half.cpu_layers, full.cpu_layers) == (1, 0)
    assert half.cpu_layer_bytes == 172_800
    assert full.dense_weight_bytes - half.dense_weight_bytes == 25_344
    assert half.ops is None and half.ops_note == ""
    assert float(half._cpu_s(7)) == pytest.approx(172_800 / 100e9)
    assert full._cpu_s(7) == 0.0
    # gpu_layers equal to the layer count is no offload
    assert build_timing(spec, H100, Deployment(), TABLE, IDEAL, KernelFactor(), gpu_layers=2).cpu_layers == 0
    # tiny Llama (dense), 1 of 2 layers on the host: q, o 4,096 + k, v 2,048 + MLP 3 x 96 x 64 = 18,432
    # + norms 128 = 30,848 params x 2 B = 61,696 B per layer. A paged prefill of 48 tokens in chunks
    # of 16 makes 3 passes, each reading that layer from the host instead of from HBM:
    # 3 x (61,696 / 100e9 - 61,696 / 3.35e12) s more than with every layer on the GPU.
    tiny = ModelSpec.from_hf_config(TINY["llama-gqa"], "tiny")
    dep = Deployment(max_num_batched_tokens=16)
    h = build_timing(tiny, MEM_BOUND, dep, TABLE, IDEAL, KernelFactor(), gpu_layers=1, host_bandwidth_bytes_per_s=100e9)
    f = build_timing(tiny, MEM_BOUND, dep, TABLE, IDEAL, KernelFactor(), host_bandwidth_bytes_per_s=100e9)
    assert h.cpu_layer_bytes == 61_696
    dt = float(h.prefill(1, 48)["time_s"]) - float(f.prefill(1, 48)["time_s"])
    assert dt == pytest.approx(3 * (61_696 / 100e9 - 61_696 / BW))
    dd = float(h.decode_step(2, 10)["time_s"]) - float(f.decode_step(2, 10)["time_s"])
    assert dd == pytest.approx(61_696 / 100e9 - 61_696 / BW)


def _curves(T=1e-6, A=1e-12, L=5e-5, D=2e-9):
    """Operator curves with grids at powers of two, so every evaluation below is at a grid point:
    token ops T x tokens, a whole prefill's attention A x context^2, the lm_head L per sampled row,
    decode attention D x batch x context."""
    g = 2.0 ** np.arange(0, 21)
    return OpCurves(tokens=g, token_ops_s=T * g, batch=g[:10], context=g, decode_attn_s=D * np.outer(g[:10], g),
                    prefill_attn_s=A * g * g, rows=g[:10], lm_head_s=L * g[:10], source="test curves")


def test_prefill_from_measured_operators_counts_each_chunk_and_the_attention_once():
    # 16,384 prompt tokens at 8192 per chunk: 2 passes of 8192 tokens of token ops (2 x 8192 T),
    # the whole prompt's causal attention once (A x 16384^2), one sampled row (L); 5 ms per pass
    T, A, L = 1e-6, 1e-12, 5e-5
    t = replace(timing(eff=replace(IDEAL, step_overhead_s=5e-3)), ops=_curves(T, A, L))
    assert t.source == "test curves"
    p = t.prefill(1, 16_384)
    assert float(p["time_s"]) == pytest.approx(2 * 8192 * T + A * 16_384**2 + L + 2 * 5e-3)
    # a decode step of 4 sequences at context 1023: token ops 4 T, attention 2e-9 x 4 x 1024, 4 rows
    d = t.decode_step(4, 1023)
    assert float(d["time_s"]) == pytest.approx(4 * T + 2e-9 * 4 * 1024 + 4 * L + 5e-3)
    # PP=2 doubles both
    t2 = replace(timing(pp=2, eff=replace(IDEAL, step_overhead_s=5e-3)), ops=_curves(T, A, L))
    assert float(t2.prefill(1, 16_384)["time_s"]) == pytest.approx(2 * (2 * 8192 * T + A * 16_384**2 + L + 2 * 5e-3))


def test_a_pass_larger_than_every_cuda_graph_waits_for_the_cpu_launches():
    # graphs up to 512 tokens; beyond, the CPU launches 32 layers x 100 us = 3.2 ms per pass, longer
    # than the GPU's 1024 T = 1.024 ms; a 256-token pass (0.256 ms) stays on its graph
    T = 1e-6
    eff = replace(IDEAL, eager_layer_overhead_s=100e-6, graph_max_tokens=512)
    t = replace(timing(eff=eff), ops=_curves(T=T, A=0.0, L=0.0))
    assert float(t.step(0, 0, prefill_tokens=1024)["time_s"]) == pytest.approx(32 * 100e-6)
    assert float(t.step(0, 0, prefill_tokens=256)["time_s"]) == pytest.approx(256 * T)
    # a 16,384-token prefill: 2 eager passes of 8192 tokens (8.192 ms of GPU work each > 3.2 ms)
    assert float(t.prefill(1, 16_384)["time_s"]) == pytest.approx(2 * 8192 * T)
    # a 4096-token prompt in chunks of 1024: 4 passes, each 3.2 ms of launches > 1.024 ms of GPU
    t4 = replace(timing(eff=eff, max_num_batched_tokens=1024), ops=_curves(T=T, A=0.0, L=0.0))
    assert float(t4.prefill(1, 4096)["time_s"]) == pytest.approx(4 * 32 * 100e-6)


def test_pipeline_stages_hold_their_share_of_each_attention_kind():
    # tiny Gemma-2: 2 sliding (window 8) and 2 full layers; PP=2 puts 2 layers on the fullest stage:
    # round(2 x 1/2) = 1 of each kind. 4 heads x (16 + 16) x 2 = 256 FLOPs per query per key.
    from tiny_configs import TINY
    spec = ModelSpec.from_hf_config(TINY["gemma2-interleaved"], "gemma2")
    assert timing(spec).attn_groups == (("sliding", 2, 8, 256.0), ("full", 2, 0, 256.0))
    t = timing(spec, pp=2)
    assert t.attn_groups == (("sliding", 1, 8, 256.0), ("full", 1, 0, 256.0))
    assert [(g.kind, g.layers) for g in t.kv_groups] == [("sliding", 1), ("full", 1)]
    assert t.layers == 2
    # PP=4: one layer per stage; round(2 x 1/4) = 0 of each kind would drop a kind: at least 1 each
    t4 = timing(spec, pp=4)
    assert t4.attn_groups == (("sliding", 1, 8, 256.0), ("full", 1, 0, 256.0))
    assert [g.layers for g in t4.kv_groups] == [1, 1]
    # chunked attention (Llama-4 style) is capped by its window like a sliding layer
    chunked = ModelSpec.from_hf_config({**TINY["llama-gqa"], "layer_types": ["chunked_attention", "full_attention"],
                                        "attention_chunk_size": 8}, "chunked")
    tc = timing(chunked)
    assert tc.attn_groups == (("chunked", 1, 8, 256.0), ("full", 1, 0, 256.0))
    # a 20-token prefill: the chunked layer's queries see 1..8 then 8 keys: 36 + 12 x 8 = 132 keys;
    # the full layer's 20 x 21 / 2 = 210
    assert float(tc.attention_flops(20, 20)) == pytest.approx(256 * (132 + 210))
    # linear-attention layers have no attention FLOPs: Qwen3-Next (tiny) keeps its one full layer
    nxt = timing(ModelSpec.from_hf_config(TINY["qwen3next-hybrid"], "next"))
    assert nxt.attn_groups == (("full", 1, 0, 256.0),)


def test_other_efficiencies_give_other_times():
    t = timing(engine="transformers", gpu=MEM_BOUND)
    half = t.with_efficiency(replace(IDEAL, memory=0.5))
    assert half.eff.memory == 0.5 and half.spec is t.spec
    assert float(half.decode_step(1, 99)["time_s"]) == pytest.approx(2 * (W + 100 * KV) / BW)
    # transformers has no measured operators: no tables to look up, no note
    assert (t.ops, t.ops_note) == (None, "")


def test_measured_operator_prefill_with_decode_riders():
    # 8192 prompt tokens + 4 decode sequences at context 1023 under an 8192-token budget: every pass carries
    # the 4 decodes and up to 8188 prompt tokens, ceil(8192 / 8188) = 2 passes: 8192 tokens, then 4 + 4 = 8
    # (8192 T + 8 T, not two full passes), the prompt's attention once (A x 8192^2) and its one row (L), and
    # in each pass the riders' attention (2e-9 x 4 x 1024) and their 4 rows (4 L); 5 ms per pass
    T, A, L, D = 1e-6, 1e-12, 5e-5, 2e-9
    t = replace(timing(eff=replace(IDEAL, step_overhead_s=5e-3)), ops=_curves(T, A, L, D))
    p = t.prefill(1, 8192, decode_batch=4, decode_context=1023)
    expected = 8192 * T + 8 * T + A * 8192**2 + L + 2 * (D * 4 * 1024 + 4 * L) + 2 * 5e-3
    assert float(p["time_s"]) == pytest.approx(expected)


def test_decode_and_single_token_steps_count_their_flops_exactly():
    # decode: 4 sequences at context 999 (1000 keys each): 4 x 2 x 6,979,321,856 + 4 rows x 2 x 525,336,576
    # + 4 x 524,288 x 1000; no prefill chunk, so no extra sampled row and no extra KV
    t = timing(engine="transformers")
    d = t.decode_step(4, 999)
    body, lm = 2 * 6_979_321_856, 2 * 525_336_576
    assert float(d["flops"]) == pytest.approx(4 * body + 4 * lm + 4 * 524_288 * 1000, rel=1e-12)
    assert float(d["kv_read_bytes"]) == 4 * 1000 * KV
    assert float(d["memory_s"]) == pytest.approx((W + 4 * 1000 * KV) / BW)
    assert float(d["compute_s"]) == pytest.approx((4 * body + 4 * lm + 4 * 524_288 * 1000) / PEAK)
    # a one-token prefill chunk is a prefill: its KV (1 token) is read, its row sampled, its key seen
    s = t.step(0, 0, prefill_tokens=1)
    assert float(s["flops"]) == pytest.approx(body + lm + 524_288, rel=1e-12)
    assert float(s["kv_read_bytes"]) == KV


def test_paged_steps_round_every_read_to_blocks_and_cap_windows_at_the_chunk_budget():
    # paged mixed step: 4 sequences at context 1000 read ceil(1001 / 16) = 63 blocks = 1008 tokens each;
    # a chunk appended up to 2050 tokens reads ceil(2050 / 16) = 129 blocks = 2064 tokens
    t = timing(gpu=MEM_BOUND)
    s = t.step(4, 1000, prefill_tokens=512, prefill_context=2050)
    assert float(s["kv_read_bytes"]) == (4 * 1008 + 2064) * KV
    # transformers' cache holds exactly the tokens: (4 x 1001 + 2050) x KV; the chunk's 512 queries see
    # keys 1539..2050: (2050 x 2051 - 1538 x 1539) / 2 = 918,784
    tr = timing(gpu=MEM_BOUND, engine="transformers").step(4, 1000, prefill_tokens=512, prefill_context=2050)
    assert float(tr["kv_read_bytes"]) == (4 * 1001 + 2050) * KV
    assert float(tr["flops"]) == pytest.approx(516 * 2 * 6_979_321_856 + 5 * 2 * 525_336_576
                                               + 524_288 * (4 * 1001 + 918_784), rel=1e-12)
    # Mistral (window 4096) with max_num_batched_tokens 2050: a sequence holds at most 4095 + 2050 = 6145
    # tokens -> 385 blocks + 1 = 6,176 tokens of KV per layer, whether decoding, prefilling or riding along
    m = timing(ModelSpec.from_hf_config(MISTRAL_7B, "mistral"), gpu=MEM_BOUND, max_num_batched_tokens=2050)
    assert float(m.decode_step(1, 32_767)["kv_read_bytes"]) == 6_176 * KV
    assert float(m.step(0, 0, prefill_tokens=2050, prefill_context=32_768)["kv_read_bytes"]) == 6_176 * KV
    wm = 14_221_320_192  # Mistral's weights read per pass (test_tpot_of_a_sliding_window_model...)
    # a 2000-token prompt (125 blocks + 1 = 2,016 tokens, written and re-read) with one rider at context
    # 32,767 (6,176 tokens): ceil(2001 / 2050) = 1 pass
    p = m.prefill(1, 2000, decode_batch=1, decode_context=32_767)
    assert float(p["bytes"]) == wm + 2 * 2_016 * KV + 6_176 * KV


def test_prefill_riders_default_to_an_empty_context_and_pay_the_tp_allreduce():
    # riders without a context: 2 sequences at context 0 read 1 token of KV each
    t = timing(gpu=MEM_BOUND, engine="transformers")
    assert float(t.prefill(1, 1000, decode_batch=2)["bytes"]) == W + 2 * 1000 * KV + 2 * KV
    # TP=2: the all-reduce carries the prompt's and the riders' tokens: 2 x 32 layers x
    # (2 x 1/2 x 1003 x 8,192 B / 450 GB/s + 10 us)
    eff = replace(IDEAL, allreduce_latency_s=10e-6)
    t2 = timing(gpu=MEM_BOUND, engine="transformers", tp=2, eff=eff)
    p = t2.prefill(1, 1000, decode_batch=3, decode_context=999)
    weights = (W - 532_480) / 2 + 532_480
    comm = 2 * 32 * (1003 * 8192 / 450e9 + 10e-6)
    assert float(p["time_s"]) == pytest.approx((weights + (2 * 1000 + 3 * 1000) * KV / 2) / BW + comm)
    # a kernel that dequantizes from 8190 tokens per pass on: the 8190-token prompt with 3 riders runs in
    # 2 passes of 8192 tokens, both dequantizing (2 B per matmul weight, 6,979,321,856 of them)
    k = KernelFactor(dequant_bytes_per_weight=2.0, dequant_min_tokens=8190)
    pk = timing(gpu=MEM_BOUND, kernel=k).prefill(1, 8190, decode_batch=3, decode_context=999)
    assert float(pk["bytes"]) == 2 * (W + 2 * 6_979_321_856) + 2 * 8192 * KV + 3 * 1008 * KV


def test_pipeline_and_tensor_parallel_scale_the_per_token_work():
    # PP=2: the fullest stage multiplies half the layer weights: 2 x 6,979,321,856 / 2 FLOPs per token;
    # its matmul weights 6,979,321,856 / 2
    t = timing(pp=2)
    assert t.flops_per_token == 6_979_321_856
    assert t.matmul_weights == 6_979_321_856 / 2
    assert t.lm_head_flops == 2 * 525_336_576  # the head is on the last stage, whole
    # TP=2 splits both the body and the head
    t2 = timing(tp=2)
    assert (t2.flops_per_token, t2.lm_head_flops) == (6_979_321_856, 525_336_576)
    # tiny Mixtral, PP=2: one of its two MoE layers on the fullest stage
    from tiny_configs import TINY
    assert timing(ModelSpec.from_hf_config(TINY["mixtral-moe"], "m"), pp=2).moe_layers == 1
    # a one-layer MoE: one expert of its single MoE layer is 3 x 96 x 64 x 2 B = 36,864 B
    one = timing(ModelSpec.from_hf_config({**TINY["mixtral-moe"], "num_hidden_layers": 1}, "m1"))
    assert (one.moe_layers, one.expert_bytes_per_expert) == (1, 36_864)
    # no offload: nothing is read from the host
    assert (t.cpu_layers, t.cpu_layer_bytes) == (0, 0.0)


def test_learned_positions_are_gathered_not_read():
    # tiny GPT-2 (tied): a decode pass reads its 2 layers (2 x 49,984 params), the final norm (128) and
    # the tied token table as the head (128 x 64 = 8,192), not the 256 x 64 position table:
    # (99,968 + 128 + 8,192) x 2 B = 216,576 B
    from tiny_configs import TINY
    assert timing(ModelSpec.from_hf_config(TINY["gpt2-mha"], "gpt2")).dense_weight_bytes == 216_576


def test_compute_dtype_of_each_weight_family():
    # 16-bit weights use the GPU's 16-bit peak (named fp16 for the lookup); int8 weights on a GPU without
    # int8 tensor cores run as W8A16 at the 16-bit peak too; with them, at the int8 peak
    st = {"h": {"bits_per_weight": 16}, "q8": {"bits_per_weight": 8}, "bf16": {"bits_per_weight": 16}}
    table = TABLE.from_dict({"storage_types": st, "formats": {
        "bf": {"family": "float", "roles": {"default": "h"}, "compute_dtype": "bf16"},
        "f16": {"family": "float", "roles": {"default": "h"}, "compute_dtype": "fp16"},
        "w8a8": {"family": "int8", "roles": {"default": "q8", "embed": "h"}, "compute_dtype": "int8"}}})
    bf16_only = replace(H100, peak_flops=(("bf16", 989.4e12),))
    with_int8 = replace(H100, peak_flops=H100.peak_flops + (("int8", 1978.9e12),))

    def dtype(fmt, gpu=H100):
        return build_timing(SPEC, gpu, Deployment(weights=fmt), table, IDEAL, KernelFactor()).compute_dtype
    assert (dtype("bf"), dtype("f16"), dtype("w8a8"), dtype("w8a8", with_int8)) == ("fp16", "fp16", "fp16", "int8")
    assert build_timing(SPEC, bf16_only, Deployment(weights="bf"), table, IDEAL, KernelFactor()).peak_flops == 989.4e12


def test_measured_operator_steps_take_the_chunks_share_of_a_prefill_and_the_graph_edge():
    # a 512-token chunk that ends at 2048 tokens does 512 x (2048 - 256) / (2048^2 / 2) = 0.4375 of a
    # whole 2048-token prefill's attention; token ops 512 T; one sampled row
    T, A, L = 1e-6, 1e-12, 5e-5
    t = replace(timing(), ops=_curves(T, A, L))
    s = t.step(0, 0, prefill_tokens=512, prefill_context=2048)
    assert float(s["time_s"]) == pytest.approx(512 * T + 0.4375 * A * 2048**2 + L)
    # a pass of exactly the largest graph's size (512 tokens) still runs on the graph
    eff = replace(IDEAL, eager_layer_overhead_s=100e-6, graph_max_tokens=512)
    g = replace(timing(eff=eff), ops=_curves(T=T, A=0.0, L=0.0))
    assert float(g.step(0, 0, prefill_tokens=512)["time_s"]) == pytest.approx(512 * T)
    assert float(g.step(0, 0, prefill_tokens=513)["time_s"]) == pytest.approx(32 * 100e-6)


def test_a_bundled_gpu_with_operator_tables_uses_them():
    from planner import profiles
    t = build_timing(SPEC, profiles.gpu("H100-SXM"), Deployment(), profiles.formats(), IDEAL, KernelFactor())
    assert t.ops is not None and t.ops_note == ""
    assert t.source.startswith("measured operator tables: ")
    # the step is the tables' time (plus no overhead here), not the roofline's
    assert float(t.decode_step(8, 1000)["time_s"]) == pytest.approx(float(t.ops.step_s(8, 1000)))


def test_a_mixed_steps_prefill_attention_runs_at_the_attention_efficiency():
    # The mixed step of test_a_mixed_step_reads_every_decode_sequences_kv_and_the_chunks_prefix on the
    # compute-bound GPU, GEMMs at 0.5 and prefill attention at 0.25: the chunk's attention (524,288 x
    # 917,760 FLOPs) at 0.25; the matmuls and the decode sequences' attention (524,288 x 4 x 1001) at 0.5
    eff = replace(IDEAL, compute=0.5, attention_compute=0.25)
    t = timing(engine="transformers", eff=eff, gpu=COMPUTE_BOUND).step(4, 1000, prefill_tokens=512, prefill_context=2048)
    gemm = 516 * 2 * 6_979_321_856 + 5 * 2 * 525_336_576 + 524_288 * 4 * 1001
    attn = 524_288 * 917_760
    assert float(t["compute_s"]) == pytest.approx(gemm / (PEAK * 0.5) + attn / (PEAK * 0.25), rel=1e-12)
    assert float(t["time_s"]) == pytest.approx(gemm / (PEAK * 0.5) + attn / (PEAK * 0.25), rel=1e-12)


def test_a_long_sliding_window_prompt_writes_only_the_window_it_keeps():
    # Mistral (window 4096) at max_num_batched_tokens 2048: an 8000-token prompt runs in ceil(8000 / 2048)
    # = 4 passes (4 x 14,221,320,192 B of weights) and keeps 4095 + 2048 = 6,143 tokens -> 384 blocks + 1
    # = 6,160 tokens of KV, written and re-read: 2 x 6,160 x 131,072 B
    m = timing(ModelSpec.from_hf_config(MISTRAL_7B, "mistral"), gpu=MEM_BOUND, max_num_batched_tokens=2048)
    assert float(m.prefill(1, 8000)["bytes"]) == 4 * 14_221_320_192 + 2 * 6_160 * KV


def test_a_dense_model_has_no_expert_traffic_and_its_zero_terms_are_vectors():
    t = timing()
    assert (t.expert_bytes_per_expert, t.moe_layers) == (0.0, 0)
    # vectorised: integer token counts in, one float per count out, all zero (no experts; TP=1 has
    # no all-reduce)
    for z in (t.experts_touched(np.array([1, 2, 3])), t.comm_s(np.array([1, 2, 3]))):
        assert z.shape == (3,) and z.dtype == np.float64 and not z.any()
    # TP=2 on a GPU without an interconnect figure: no all-reduce time either
    t2 = timing(gpu=replace(H100, interconnect_bytes_per_s=0.0), tp=2)
    z = t2.comm_s(np.array([1, 2, 3]))
    assert z.shape == (3,) and z.dtype == np.float64 and not z.any()

"""Memory formulas (planner/memory.py, planner/kv.py) against values derived by hand.

Llama-3.1-8B in bf16 on the in-code H100 of tests/synthetic.py (capacity 81,559 MiB x 0.9 =
76,968,728,985.6 B under a paged engine; runtime: 0.2 GiB non-torch, 0.5 GiB CUDA context,
0.5 GiB NCCL). Each expected value is the arithmetic in its comment.
"""

from dataclasses import replace

import numpy as np
import pytest
from synthetic import H100, RUNTIME, TABLE
from test_kv_known import LLAMA31_8B

from planner import kv
from planner.errors import PlannerInputError
from planner.memory import (
    Deployment,
    MemoryModel,
    activation_bytes_per_token,
    activation_peak_bytes,
    check_parallelism,
    overhead_bytes,
    stage_layers,
    weight_bytes_per_gpu,
)
from planner.spec import ModelSpec
from tiny_configs import TINY

SPEC = ModelSpec.from_hf_config(LLAMA31_8B, "llama-3.1-8b")
GIB = 2**30
CAPACITY = 81_559 * 2**20 * 0.9  # 76,968,728,985.6 B


def mm(spec=SPEC, rt=RUNTIME, **kw) -> MemoryModel:
    return MemoryModel.build(spec, H100, Deployment(**kw), TABLE, rt)


def test_nccl_buffers_only_with_more_than_one_gpu():
    # paged: 0.2 GiB non-torch + 0 CUDA graphs, + 0.5 GiB of NCCL buffers once TP x PP > 1
    assert overhead_bytes(Deployment(), RUNTIME) == pytest.approx(0.2 * GIB)
    assert overhead_bytes(Deployment(tp=2), RUNTIME) == pytest.approx(0.7 * GIB)
    assert overhead_bytes(Deployment(pp=2), RUNTIME) == pytest.approx(0.7 * GIB)
    assert overhead_bytes(Deployment(tp=2, pp=2), RUNTIME) == pytest.approx(0.7 * GIB)
    # transformers: the 0.5 GiB CUDA context, + 0.5 GiB NCCL
    assert overhead_bytes(Deployment(engine="transformers"), RUNTIME) == pytest.approx(0.5 * GIB)
    assert overhead_bytes(Deployment(engine="transformers", tp=2), RUNTIME) == pytest.approx(1.0 * GIB)
    # a CUDA-graph pool reserved up front counts under the paged engine only
    rt = replace(RUNTIME, paged_cudagraph_bytes=0.25 * GIB)
    assert overhead_bytes(Deployment(), rt) == pytest.approx(0.45 * GIB)
    assert overhead_bytes(Deployment(engine="transformers"), rt) == pytest.approx(0.5 * GIB)
    assert mm(tp=2).overhead == pytest.approx(0.7 * GIB)


def test_kv_projections_replicate_when_tp_exceeds_the_kv_heads():
    # TP=16 over 8 KV heads: each rank keeps one KV head, so the K and V projections split 8 ways,
    # not 16. K, V: 32 layers x 2 x 1024 x 4096 x 2 B = 536,870,912 B; norms 65 x 4096 x 2 B = 532,480 B
    # replicated; the other matrices 16,060,522,496 - 532,480 - 536,870,912 = 15,523,119,104 B split 16 ways:
    # 970,194,944 + 67,108,864 + 532,480 = 1,037,836,288 B
    assert weight_bytes_per_gpu(SPEC, TABLE, Deployment(tp=16)) == 1_037_836_288
    # TP=8 = the KV heads: everything splits 8 ways, (16,060,522,496 - 532,480) / 8 + 532,480
    assert weight_bytes_per_gpu(SPEC, TABLE, Deployment(tp=8)) == (16_060_522_496 - 532_480) / 8 + 532_480
    # tiny Llama (2 KV heads of 16, hidden 64, 2 layers) at TP=4: K, V 2 layers x 2 x 32 x 64 x 2 B
    # = 16,384 B split 2 ways; q, o 2 x 2 x 64 x 64 x 2 B = 32,768 B, MLP 2 x 3 x 96 x 64 x 2 B = 73,728 B,
    # embed and lm_head 2 x 128 x 64 x 2 B = 32,768 B split 4 ways; norms 5 x 64 x 2 B = 640 B
    tiny = ModelSpec.from_hf_config(TINY["llama-gqa"], "tiny")
    assert weight_bytes_per_gpu(tiny, TABLE, Deployment(tp=4)) == 16_384 / 2 + (32_768 + 73_728 + 32_768) / 4 + 640


def test_the_kv_cache_holds_one_head_per_rank_when_tp_exceeds_the_kv_heads():
    # TP=16, 8 KV heads: 1 head x 256 x 2 B x 32 layers = 16,384 B per token per rank (not 8,192)
    assert kv.kv_bytes_per_token(kv.layer_groups(SPEC, "bf16", "paged", tp=16)) == 16_384
    assert mm(tp=16).groups[0].bytes_per_token == 512


def test_the_logits_buffer():
    # paged (vLLM's profile run): 256 sequences x the full 128,256 vocabulary x 4 B (fp32) =
    # 131,334,144 B, on every TP rank (logits are gathered before sampling); plus max_num_batched_tokens
    # 8192 x 102,400 B/token (see the next test) = 838,860,800 B
    assert float(activation_peak_bytes(SPEC, Deployment(), 1, 100, RUNTIME)) == 838_860_800 + 131_334_144
    # TP=2: 8192 x 59,392 B/token = 486,539,264 B; the logits stay 131,334,144 B
    assert float(activation_peak_bytes(SPEC, Deployment(tp=2), 1, 100, RUNTIME)) == 486_539_264 + 131_334_144
    # max_num_seqs 64: 64 x 128,256 x 4 = 32,833,536 B
    assert float(activation_peak_bytes(SPEC, Deployment(max_num_seqs=64), 1, 100, RUNTIME)) == 838_860_800 + 32_833_536
    # transformers: the whole prompt of every sequence at once (4 x 100 tokens x 102,400 B =
    # 40,960,000 B) and fp32 logits of the last position, one row per sequence over this rank's
    # vocabulary: 4 x 128,256 x 4 = 2,052,096 B; at TP=2 4 x 64,128 x 4 = 1,026,048 B
    tr = Deployment(engine="transformers")
    assert float(activation_peak_bytes(SPEC, tr, 4, 100, RUNTIME)) == 40_960_000 + 2_052_096
    assert float(activation_peak_bytes(SPEC, replace(tr, tp=2), 4, 100, RUNTIME)) == 400 * 59_392 + 1_026_048


def test_activation_bytes_per_token():
    # Llama-3.1-8B: widest moment = the MLP's gate, up and product, 3 x 14,336 = 43,008 values (the
    # attention's q, k, v and output are 32 x 256 + 2 x 8 x 128 = 10,240), + 2 x 4096 residual and
    # normed copy: 2 B x (43,008 + 8,192) = 102,400 B; TP=2 halves the MLP: 2 x (21,504 + 8,192) = 59,392 B
    assert activation_bytes_per_token(SPEC, Deployment()) == 102_400
    assert activation_bytes_per_token(SPEC, Deployment(tp=2)) == 59_392
    assert activation_bytes_per_token(SPEC, Deployment(), act_bytes=4.0) == 204_800
    # tiny Llama with a wide attention (hidden 64, 4 heads of 64 = 256 q and o, 2 KV heads of 64):
    # attention 4 x (64 + 64) + 2 x 2 x 64 = 768 values > MLP 3 x 96 = 288: 2 x (768 + 128) = 1,792 B
    wide = ModelSpec.from_hf_config({**TINY["llama-gqa"], "head_dim": 64}, "wide")
    assert activation_bytes_per_token(wide, Deployment()) == 1_792
    # tiny Mixtral: k=2 experts x 3 x 96 = 576 > dense 288 > attention 4 x 32 + 2 x 2 x 16 = 192:
    # 2 x (576 + 128) = 1,408 B
    assert activation_bytes_per_token(ModelSpec.from_hf_config(TINY["mixtral-moe"], "m"), Deployment()) == 1_408
    # a shared expert adds its own 3 x 32: Qwen3-Next-like with 64-wide experts: 3 x 2 x 64 + 3 x 32 = 480
    # > 288: 2 x (480 + 128) = 1,216 B; at TP=2 the experts halve, the residual stays: 2 x (240 + 128) = 736 B
    nxt = ModelSpec.from_hf_config({**TINY["qwen3next-hybrid"], "moe_intermediate_size": 64}, "next")
    assert activation_bytes_per_token(nxt, Deployment()) == 1_216
    assert activation_bytes_per_token(nxt, Deployment(tp=2)) == 736


def test_paged_activation_peak_with_and_without_the_full_budget_profile():
    # vLLM's profile run always takes max_num_batched_tokens (8192) tokens; an engine that profiled
    # only the tokens in flight would take min(2 x 1000, 8192) = 2000 of them, x 102,400 B, x 1.5
    rt = replace(RUNTIME, paged_profiles_full_budget=False, activation_factor=1.5)
    assert float(activation_peak_bytes(SPEC, Deployment(), 2, 1000, rt)) == 2000 * 102_400 * 1.5 + 131_334_144
    assert float(activation_peak_bytes(SPEC, Deployment(), 20, 1000, rt)) == 8192 * 102_400 * 1.5 + 131_334_144
    assert float(activation_peak_bytes(SPEC, Deployment(), 2, 1000, RUNTIME)) == 838_860_800 + 131_334_144


def test_plan_kv_budget_max_batch_and_max_context_by_hand():
    m = mm()
    assert m.capacity_bytes == pytest.approx(CAPACITY)
    # room for KV: 76,968,728,985.6 - 16,060,522,496 weights - 214,748,364.8 non-torch
    # - 970,194,944 activations = 59,723,263,180.8 B
    room = 59_723_263_180.8
    assert m.kv_budget_bytes() == pytest.approx(room)
    assert replace(m, engine_kv_budget_bytes=1e9).kv_budget_bytes() == 1e9
    # 4000 + 96 tokens = 256 blocks of 16 = 4096 tokens x 131,072 B = 536,870,912 B per sequence:
    # floor(59,723,263,180.8 / 536,870,912) = 111 sequences
    assert int(m.max_batch(4000, 96)) == 111
    p = m.plan(111, 4000, 96)
    assert float(p["kv_cache_bytes"]) == 111 * 536_870_912
    assert float(p["total_bytes"]) == pytest.approx(16_060_522_496 + 111 * 536_870_912 + 970_194_944 + 0.2 * GIB)
    assert float(p["headroom_bytes"]) == pytest.approx(room - 111 * 536_870_912)
    assert bool(p["fits"]) and not bool(m.plan(112, 4000, 96)["fits"])
    # one sequence: whole blocks of 16 x 131,072 B = 2,097,152 B; floor(room / 2,097,152) = 28,478 blocks
    # = 455,648 tokens
    assert int(m.max_context(1)) == 455_648
    np.testing.assert_array_equal(m.max_batch(np.array([4000, 8096]), 96), [111, 55])  # 8192 tokens: 1 GiB each
    # a transformers engine may use the whole memory: 85,520,809,984 - 16,060,522,496 - 0.5 GiB context
    # - activations 1 x 4096 x 102,400 + 128,256 x 4 = 419,430,400 + 513,024, at 131,072 B per token
    t = mm(engine="transformers")
    assert t.capacity_bytes == 81_559 * 2**20
    one = t.plan(1, 4096)
    assert float(one["total_bytes"]) == pytest.approx(16_060_522_496 + 4096 * 131_072 + 419_943_424 + 0.5 * GIB)


def test_max_batch_is_zero_when_nothing_fits_and_the_cap_when_everything_does():
    # 70 GB of weights on an 80 GB card at utilization 0.9: no room for one 4096-token sequence
    m = replace(mm(), weights_bytes=76e9)
    assert int(m.max_batch(4096)) == 0
    assert int(m.max_context(1)) == 0
    # with no KV cache a paged plan's memory does not grow with the batch or the context (its
    # activations are the fixed max_num_batched_tokens profile): the solvers' caps, 2^20 and 2^24
    free = replace(mm(), groups=())
    assert int(free.max_batch(4096)) == 1 << 20
    assert int(free.max_context(1)) == 1 << 24


def test_the_paged_solver_finds_batches_past_the_activation_estimate():
    # transformers activations grow with the batch (4096 tokens x 102,400 B = 419,430,400 B per
    # sequence + 513,024 B of logits) on top of 536,870,912 B of KV: per sequence 956,814,336 B.
    # Room: 85,520,809,984 - 16,060,522,496 - 536,870,912 = 68,923,416,576 B -> floor(72.03) = 72
    t = mm(engine="transformers")
    assert int(t.max_batch(4096)) == 72


def test_pipeline_stages_and_the_fullest_one():
    assert list(stage_layers(10, 4)) == [3, 3, 2, 2]
    assert list(stage_layers(32, 1)) == [32]
    # PP=4, 8 layers per stage: stage 0 holds the embedding table (1,050,673,152 B), the last the final
    # norm and lm_head (8,192 + 1,050,673,152 B): the last is the fullest
    per_stage_layers = 8 * 218_112_000 * 2
    assert weight_bytes_per_gpu(SPEC, TABLE, Deployment(pp=4)) == per_stage_layers + 8_192 + 1_050_673_152
    # with tied embeddings there is no lm_head: the first stage (8 layers + the table) is the fullest
    tied = ModelSpec.from_hf_config({**LLAMA31_8B, "tie_word_embeddings": True}, "tied")
    assert weight_bytes_per_gpu(tied, TABLE, Deployment(pp=4)) == per_stage_layers + 1_050_673_152
    # PP caches only the stage's layers: 8 of 32 layers -> a quarter of the KV per token
    assert mm(pp=4).groups[0].bytes_per_token == 4_096 / 4


def test_parallelism_rules_name_the_fix():
    with pytest.raises(PlannerInputError, match=r"32 attention heads do not split over 3 GPUs.*\[1, 2, 4, 8, 16, 32\]"):
        check_parallelism(SPEC, Deployment(tp=3))
    odd = ModelSpec.from_hf_config({**LLAMA31_8B, "num_attention_heads": 24, "num_key_value_heads": 6, "head_dim": 128}, "odd")
    with pytest.raises(PlannerInputError, match="6 KV heads and TP=4: neither divides the other"):
        check_parallelism(odd, Deployment(tp=4))
    check_parallelism(odd, Deployment(tp=2))    # 2 divides 6
    check_parallelism(SPEC, Deployment(tp=16))  # 16 is a multiple of 8
    with pytest.raises(PlannerInputError, match="33 pipeline stages for 32 layers"):
        check_parallelism(SPEC, Deployment(pp=33))
    check_parallelism(SPEC, Deployment(pp=32))
    with pytest.raises(PlannerInputError, match="do not split"):
        mm(tp=3)


def test_deployment_defaults_and_limits():
    d = Deployment()
    assert (d.mnbt, d.seqs, d.util) == (8192, 256, 0.9)
    d = Deployment(max_num_batched_tokens=2048, max_num_seqs=32, gpu_memory_utilization=0.5)
    assert (d.mnbt, d.seqs, d.util) == (2048, 32, 0.5)
    assert mm(gpu_memory_utilization=0.5).capacity_bytes == 81_559 * 2**20 * 0.5
    for kw, field in ((dict(tp=0), "tp"), (dict(pp=2000), "pp"), (dict(gpu_memory_utilization=1.5), "gpu_memory_utilization"),
                      (dict(block_size=0), "block_size"), (dict(max_num_batched_tokens=0), "max_num_batched_tokens"),
                      (dict(max_num_seqs=0), "max_num_seqs"), (dict(engine="tgi"), "engine"),
                      (dict(server="tgi"), "server"), (dict(kv_dtype="int3"), "kv_dtype")):
        with pytest.raises(PlannerInputError) as e:
            Deployment(**kw)
        assert e.value.field == field
    with pytest.raises(PlannerInputError, match="unknown engine 'tgi'.*transformers, paged"):
        Deployment(engine="tgi")
    with pytest.raises(PlannerInputError, match="unknown serving engine 'tgi'.*vllm, sglang, trtllm"):
        Deployment(server="tgi")
    Deployment(server="sglang", max_num_seqs=1 << 20, max_num_batched_tokens=1 << 24, tp=1024, pp=1024, block_size=4096)


def test_learned_positions_and_projections_sit_on_the_first_stage():
    # tiny GPT-2, PP=2 (tied embeddings, no lm_head): a layer is 4 x 64 x 64 attention + 256 biases
    # + 2 x 256 x 64 MLP + 320 biases + 256 norm values = 49,984 params. Stage 0: layer 0 + token table
    # 128 x 64 + positions 256 x 64 = 74,560 params x 2 B = 149,120 B; stage 1: layer 1 + final norm
    # 128 = 50,112 params
    gpt2 = ModelSpec.from_hf_config(TINY["gpt2-mha"], "gpt2")
    assert weight_bytes_per_gpu(gpt2, TABLE, Deployment(pp=2)) == 149_120
    # tiny OPT-350m-style: a layer is 29,344 params; stage 0 adds the 128 x 32 table, 258 x 64 positions
    # and the two 64 x 32 projections: 29,344 + 4,096 + 16,512 + 4,096 = 54,048 params = 108,096 B
    opt = ModelSpec.from_hf_config(TINY["opt-proj"], "opt")
    assert weight_bytes_per_gpu(opt, TABLE, Deployment(pp=2)) == 108_096


def test_pp_stages_keep_their_share_of_the_ssm_state():
    # Qwen3-Next (tiny), PP=2: the fullest stage has 2 of 4 layers, so each group's bytes are halved
    # (3 linear layers' 3,072 B per sequence, transformers, -> 1,536 B per layer-equivalent)
    nxt = ModelSpec.from_hf_config(TINY["qwen3next-hybrid"], "next")
    g = mm(nxt, engine="transformers", pp=2).groups
    assert [(x.kind, x.layers, x.bytes_per_seq, x.bytes_per_token) for x in g] == [
        ("linear", 3, 1_536.0, 0.0), ("full", 1, 0.0, 64.0)]


def test_the_solver_grows_past_the_first_estimate_when_activations_saturate():
    # An engine that profiles only the tokens in flight: activations min(100 b, 8192) x 102,400 B. The
    # first estimate charges 100 x 102,400 B per sequence on top of its KV (100 tokens -> 7 blocks = 112
    # tokens x 131,072 B = 14,680,064 B); past b = 82 the activations stop at 8192 tokens, so the room
    # 76,968,728,985.6 - 16,060,522,496 - 214,748,364.8 - 131,334,144 logits - 838,860,800 activations
    # = 59,723,263,180.8 B holds floor(59,723,263,180.8 / 14,680,064) = 4,068 sequences
    m = mm(rt=replace(RUNTIME, paged_profiles_full_budget=False))
    assert int(m.max_batch(100)) == 4_068
    assert bool(m.plan(4_068, 100)["fits"]) and not bool(m.plan(4_069, 100)["fits"])
    # vectorised: 4,000-token prompts saturate from batch 3 on; 250 blocks = 4,000 tokens x 131,072 B
    # = 524,288,000 B each: floor(59,723,263,180.8 / 524,288,000) = 113
    np.testing.assert_array_equal(m.max_batch(np.array([100, 4000])), [4_068, 113])


def test_tp_hints_list_every_degree_that_splits_the_heads():
    wide = ModelSpec.from_hf_config({**LLAMA31_8B, "num_attention_heads": 64, "head_dim": 64}, "wide")
    with pytest.raises(PlannerInputError, match=r"64 attention heads do not split over 3 GPUs") as e:
        check_parallelism(wide, Deployment(tp=3))
    assert e.value.fix == "use a TP degree in [1, 2, 4, 8, 16, 32, 64]"
    assert e.value.field == "tp"
    with pytest.raises(PlannerInputError) as e:
        check_parallelism(SPEC, Deployment(pp=33))
    assert (e.value.field, e.value.fix) == ("pp", "use at most one stage per layer")


def test_deployment_upper_limits():
    for kw, field in ((dict(tp=1025), "tp"), (dict(pp=1025), "pp"), (dict(block_size=4097), "block_size"),
                      (dict(max_num_batched_tokens=(1 << 24) + 1), "max_num_batched_tokens"),
                      (dict(max_num_seqs=(1 << 20) + 1), "max_num_seqs"), (dict(gpu_memory_utilization=0.0),
                                                                            "gpu_memory_utilization")):
        with pytest.raises(PlannerInputError) as e:
            Deployment(**kw)
        assert e.value.field == field, kw
    Deployment(gpu_memory_utilization=1.0)


def test_a_transformers_engine_kv_room_uses_the_whole_memory():
    # 85,520,809,984 B - 16,060,522,496 weights - one chunk's activations (8192 x 102,400 + one row of
    # logits 128,256 x 4 = 839,373,824 B) - 0.5 GiB context = 68,084,042,752 B
    assert mm(engine="transformers").kv_budget_bytes() == 68_084_042_752


@pytest.fixture
def plan_calls(monkeypatch):
    """Counts MemoryModel.plan calls (each a memory plan of every batch in a vector)."""
    calls = []
    original = MemoryModel.plan

    def counted(self, *a, **k):
        calls.append(a)
        return original(self, *a, **k)
    monkeypatch.setattr(MemoryModel, "plan", counted)
    return calls


def test_max_batch_confirms_an_exact_estimate_with_two_plans(plan_calls):
    # When every sequence adds the same bytes (paged: the activations are the fixed profile run), the
    # closed form floor(room / bytes per sequence) is the answer: one plan shows one more does not fit,
    # one that the answer does. 4000 + 96 tokens: 111 (test_plan_kv_budget_max_batch_and_max_context_by_hand)
    m = mm()
    assert int(m.max_batch(4000, 96)) == 111
    assert len(plan_calls) == 2
    # nothing fits (70 GB of weights): 0, again in two plans
    plan_calls.clear()
    assert int(replace(m, weights_bytes=76e9).max_batch(4096)) == 0
    assert len(plan_calls) == 2
    # transformers: activations grow linearly with the batch, also exact: 72 (test_the_paged_solver...)
    plan_calls.clear()
    assert int(mm(engine="transformers").max_batch(4096)) == 72
    assert len(plan_calls) == 2


def test_max_batch_stops_at_its_cap(plan_calls):
    # tiny Llama: 16 tokens of KV (one block) x 2 layers x 128 B = 4 KiB per sequence: 80 GB would hold
    # ~19 million, the solver stops at 2^20, after one plan at the cap and one to confirm it
    tiny = ModelSpec.from_hf_config(TINY["llama-gqa"], "tiny")
    assert int(mm(tiny).max_batch(10)) == 1 << 20
    assert len(plan_calls) == 2


def test_solvers_return_whole_numbers():
    m = mm()
    assert m.max_batch(4000, 96).dtype == np.int64
    assert m.max_context(1).dtype == np.int64
    np.testing.assert_array_equal(m.max_context(np.array([1, 2])), [455_648, 227_824])  # 28,478 blocks, halved


def test_the_kv_head_rule_names_tp_and_its_fix():
    # 24 heads, 6 KV heads, TP=4: 4 splits the heads but neither 4 | 6 nor 6 | 4
    odd = ModelSpec.from_hf_config({**LLAMA31_8B, "num_attention_heads": 24, "num_key_value_heads": 6, "head_dim": 128}, "odd")
    with pytest.raises(PlannerInputError) as e:
        check_parallelism(odd, Deployment(tp=4))
    assert e.value.field == "tp"
    assert e.value.problem == "6 KV heads and TP=4: neither divides the other"
    assert e.value.fix == "use a TP degree that divides the KV heads or a multiple of them"


MISTRAL_7B = {**LLAMA31_8B, "model_type": "mistral", "vocab_size": 32000, "sliding_window": 4096}


def test_the_memory_plan_caps_a_sliding_window_cache():
    # Mistral-7B: 32 sliding layers (window 4096) x 8 KV heads x 256 x 2 B = 131,072 B per token. A paged
    # engine keeps window - 1 + max_num_batched_tokens tokens, rounded up to blocks of 16, + 1 block:
    # 4095 + 8192 = 12,287 -> 768 blocks + 1 = 12,304 tokens, whatever the context beyond it
    mistral = ModelSpec.from_hf_config(MISTRAL_7B, "mistral")
    m = mm(mistral)
    assert float(m.kv_bytes(1, 32_768)) == 12_304 * 131_072
    assert float(m.plan(2, 32_000, 768)["kv_cache_bytes"]) == 2 * 12_304 * 131_072
    # max_num_batched_tokens 2048: 4095 + 2048 = 6,143 -> 384 blocks + 1 = 6,160 tokens
    assert float(mm(mistral, max_num_batched_tokens=2048).kv_bytes(1, 32_768)) == 6_160 * 131_072
    # transformers keeps exactly the last window - 1 = 4,095 tokens, or the context when shorter
    t = mm(mistral, engine="transformers")
    assert float(t.kv_bytes(1, 32_768)) == 4_095 * 131_072
    assert float(t.kv_bytes(1, 1_000)) == 1_000 * 131_072


def test_a_transformers_cache_is_not_rounded_to_blocks():
    # 1000 tokens: exactly 1000 x 131,072 B (a paged engine holds 63 blocks = 1,008 tokens)
    assert float(mm(engine="transformers").kv_bytes(1, 1000)) == 1000 * 131_072
    assert float(mm().kv_bytes(1, 1000)) == 1008 * 131_072


def test_every_plan_entry_has_the_batchs_shape():
    p = mm().plan(np.array([1, 2, 3]), 1000)
    for k, v in p.items():
        assert np.shape(v) == (3,), k
    # weights and overhead do not change with the batch; KV does: 1, 2, 3 x 1,008 x 131,072 B
    np.testing.assert_array_equal(p["weights_bytes"], [16_060_522_496] * 3)
    np.testing.assert_array_equal(p["kv_cache_bytes"], [132_120_576, 264_241_152, 396_361_728])


def test_max_batch_takes_logarithmically_many_plans(plan_calls):
    # The saturating case of test_the_solver_grows_past_the_first_estimate_when_activations_saturate,
    # now with 96 output tokens: 196 tokens -> 13 blocks = 208 tokens x 131,072 B = 27,262,976 B per
    # sequence, activations saturated (b x 100 >= 8192 from b = 82 on):
    # floor(59,723,263,180.8 / 27,262,976) = floor(2,190.6) = 2,190 sequences. The first estimate also
    # charges 100 x 102,400 B of activations per sequence, so the solver doubles its step upward, then
    # bisects the last step: at most 2 x 21 + 2 plans for any answer up to 2^20, never a walk one by one.
    m = mm(rt=replace(RUNTIME, paged_profiles_full_budget=False))
    assert int(m.max_batch(100, 96)) == 2_190
    assert 10 < len(plan_calls) <= 44
    assert bool(m.plan(2_190, 100, 96)["fits"]) and not bool(m.plan(2_191, 100, 96)["fits"])


class _ConvexActivations(MemoryModel):
    """Activations of b^2 x 2^18 B (a quarter MiB): faster than linear, so the solver's first
    estimate (the slope from 0 to 1 sequence) overshoots and it must step back down."""

    def activations(self, batch, prompt):
        return np.asarray(batch, dtype=float) ** 2 * 2**18 + 0 * np.asarray(prompt, dtype=float)


def test_max_batch_never_reports_a_batch_that_does_not_fit():
    # No weights or overhead; 16 + 16 tokens = 2 blocks = 32 x 131,072 B = 4 MiB of KV per sequence.
    # In MiB a batch b needs 4 b + b^2 / 4. Capacity 180 MiB: b = 20 needs 80 + 100 = 180 exactly (and
    # fits: the plan allows total == capacity); b = 21 needs 84 + 110.25. The first estimate
    # floor(180 / 4.25) = 42 does not fit, and the solver must come down to 20.
    base = mm()
    m = _ConvexActivations(**{**base.__dict__, "weights_bytes": 0.0, "overhead": 0.0,
                              "capacity_bytes": 180 * 2**20})
    assert float(m.plan(20, 16, 16)["total_bytes"]) == 180 * 2**20
    assert bool(m.plan(20, 16, 16)["fits"])
    assert int(m.max_batch(16, 16)) == 20
    # capacity 8.5 MiB: one sequence needs 4.25, two 9: the estimate floor(8.5 / 4.25) = 2 comes down to 1
    one = replace(m, capacity_bytes=8.5 * 2**20)
    assert int(one.max_batch(16, 16)) == 1
    # 4 MiB: not even one (4.25 MiB)
    assert int(replace(m, capacity_bytes=4 * 2**20).max_batch(16, 16)) == 0
    # vectorised: the 16 + 16 request overshoots (42 -> 20) while a 704 + 16 one does not: 720 tokens = 45
    # blocks = 90 MiB of KV, one sequence 90.25 MiB, two 181 MiB > 180: the estimate floor(180 / 90.25) = 1
    # is already the answer and must stay so while the other element steps down
    np.testing.assert_array_equal(m.max_batch(np.array([16, 704]), 16), [20, 1])

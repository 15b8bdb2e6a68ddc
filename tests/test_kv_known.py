"""KV-cache and parameter values derived by hand, and properties that must hold for any model."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner import kv
from planner.errors import PlannerInputError
from planner.params import params_total
from planner.spec import ModelSpec

LLAMA31_8B = {  # the published config's shape fields (meta-llama/Llama-3.1-8B config.json)
    "model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": 128256, "hidden_size": 4096,
    "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
    "max_position_embeddings": 131072, "tie_word_embeddings": False,
}


def test_llama31_8b_by_hand():
    spec = ModelSpec.from_hf_config(LLAMA31_8B, "llama")
    # embed 128256*4096 = 525,336,576 (x2 with the untied lm_head = 1,050,673,152)
    # per layer: q 4096*4096 + k,v 2*1024*4096 + o 4096*4096 = 41,943,040; mlp 3*4096*14336 = 176,160,768;
    #            norms 2*4096 = 8,192 -> 218,112,000 x 32 = 6,979,584,000; final norm 4,096
    assert params_total(spec) == 1_050_673_152 + 6_979_584_000 + 4_096  # 8,030,261,248
    g = kv.layer_groups(spec, "bf16", "transformers")
    # seed formula with GQA: 2 (K,V) x 32 layers x 8 kv heads x 128 head_dim x 2 bytes = 131,072 B/token
    assert kv.kv_bytes_per_token(g) == 131_072
    # 8 sequences x 4096 tokens x 128 KiB = 4 GiB
    assert kv.kv_cache_bytes(g, 8, 4096, "transformers") == 4 * 2**30


def test_paged_rounds_to_blocks_and_fp8_halves():
    spec = ModelSpec.from_hf_config(LLAMA31_8B, "llama")
    g = kv.layer_groups(spec, "fp8", "paged")
    # 1000 tokens -> ceil(1000/16) = 63 blocks = 1008 tokens x 65,536 B (fp8) per token
    assert kv.kv_cache_bytes(g, 1, 1000, "paged") == 1008 * 65_536


def test_sliding_window_caps_transformers_and_paged():
    cfg = {**LLAMA31_8B, "model_type": "mistral", "sliding_window": 4096, "vocab_size": 32000,
           "intermediate_size": 14336}
    spec = ModelSpec.from_hf_config(cfg, "mistral")
    g = kv.layer_groups(spec, "bf16", "transformers")
    # transformers keeps sliding_window - 1 = 4095 tokens per layer once the window is full
    assert kv.kv_cache_bytes(g, 1, 32768, "transformers") == 4095 * 131_072
    gp = kv.layer_groups(spec, "bf16", "paged")
    # paged: min(32768, 4095 + 2048) = 6143 tokens -> ceil(6143/16) = 384 blocks + 1 = 385 blocks = 6160 tokens
    assert kv.kv_cache_bytes(gp, 1, 32768, "paged", max_num_batched_tokens=2048) == 6160 * 131_072


def test_tp_splits_kv_heads_and_replicates_below_one_per_rank():
    spec = ModelSpec.from_hf_config(LLAMA31_8B, "llama")
    one = kv.kv_bytes_per_token(kv.layer_groups(spec, "bf16", "paged", tp=1))
    assert kv.kv_bytes_per_token(kv.layer_groups(spec, "bf16", "paged", tp=4)) == one / 4
    # 8 KV heads over 16 ranks: each rank still holds one head (vLLM replicates)
    assert kv.kv_bytes_per_token(kv.layer_groups(spec, "bf16", "paged", tp=16)) == one / 8


def test_mla_caches_the_latent_only():
    cfg = {"model_type": "deepseek_v2", "architectures": ["DeepseekV2ForCausalLM"], "vocab_size": 102400,
           "hidden_size": 2048, "intermediate_size": 10944, "num_hidden_layers": 27, "num_attention_heads": 16,
           "num_key_value_heads": 16, "kv_lora_rank": 512, "qk_rope_head_dim": 64, "qk_nope_head_dim": 128,
           "v_head_dim": 128, "q_lora_rank": None, "n_routed_experts": 64, "num_experts_per_tok": 6,
           "moe_intermediate_size": 1408, "n_shared_experts": 2, "first_k_dense_replace": 1}
    spec = ModelSpec.from_hf_config(cfg, "dsv2-lite")
    # (512 latent + 64 rope) x 2 bytes x 27 layers = 31,104 B/token; the same on every TP rank
    for tp in (1, 2, 8):
        assert kv.kv_bytes_per_token(kv.layer_groups(spec, "bf16", "paged", tp=tp)) == 31_104


@st.composite
def gqa_specs(draw):
    kv_heads = draw(st.sampled_from([1, 2, 4, 8]))
    group = draw(st.sampled_from([1, 2, 4]))
    cfg = {**LLAMA31_8B, "num_hidden_layers": draw(st.integers(1, 40)), "num_attention_heads": kv_heads * group,
           "num_key_value_heads": kv_heads, "head_dim": draw(st.sampled_from([64, 128])),
           "sliding_window": draw(st.sampled_from([None, 512, 4096])), "model_type": "mistral"}
    return ModelSpec.from_hf_config(cfg, "prop")


@settings(max_examples=60, deadline=None)
@given(gqa_specs(), st.sampled_from(kv.ENGINES), st.sampled_from(list(kv.KV_DTYPES)),
       st.integers(1, 64), st.integers(1, 20000), st.integers(1, 64), st.integers(1, 20000))
def test_kv_monotone_in_batch_and_length(spec, engine, dtype, b1, c1, db, dc):
    g = kv.layer_groups(spec, dtype, engine)
    base = kv.kv_cache_bytes(g, b1, c1, engine)
    assert kv.kv_cache_bytes(g, b1 + db, c1, engine) >= base
    assert kv.kv_cache_bytes(g, b1, c1 + dc, engine) >= base
    assert base > 0 and np.isfinite(base)


@settings(max_examples=40, deadline=None)
@given(gqa_specs(), st.sampled_from(kv.ENGINES), st.integers(1, 32768))
def test_mqa_le_gqa_le_mha(spec, engine, ctx):
    def bytes_for(s):
        return kv.kv_cache_bytes(kv.layer_groups(s, "bf16", engine), 4, ctx, engine)
    mqa, mha = spec.with_kv_heads(1), spec.with_kv_heads(spec.num_heads)
    assert bytes_for(mqa) <= bytes_for(spec) <= bytes_for(mha)


@settings(max_examples=30, deadline=None)
@given(gqa_specs(), st.sampled_from(kv.ENGINES), st.lists(st.integers(1, 50000), min_size=1, max_size=8),
       st.integers(1, 128))
def test_vector_call_equals_scalar_calls(spec, engine, contexts, batch):
    g = kv.layer_groups(spec, "bf16", engine)
    vec = kv.kv_cache_bytes(g, batch, np.array(contexts), engine)
    for i, c in enumerate(contexts):
        assert vec[i] == kv.kv_cache_bytes(g, batch, c, engine)


def test_kv_dtype_names_and_aliases():
    # the names engines and configs use for the cache dtype, each to its storage
    for name, expected in (("bf16", "bf16"), ("BF16", "bf16"), ("bfloat16", "bf16"), ("torch.bfloat16", None),
                           ("auto", "bf16"), ("float16", "fp16"), ("half", "fp16"), ("fp16", "fp16"),
                           ("float32", "fp32"), ("fp8", "fp8"), ("fp8_e4m3", "fp8"), ("fp8_e5m2", "fp8"),
                           ("FP8_E4M3", "fp8"), ("int8", "int8"), ("int4", "int4")):
        if expected is None:
            with pytest.raises(PlannerInputError):
                kv.kv_dtype(name)
            continue
        assert kv.kv_dtype(name).name == expected, name
    with pytest.raises(PlannerInputError, match="unknown KV dtype 'int3'.*fp32, fp16, bf16, fp8, int8, int4") as e:
        kv.kv_dtype("int3")
    assert e.value.field == "kv_dtype"
    # bits per element: int8 / int4 carry an fp16 scale and zero per group of 64: + 32 / 64 bits
    assert [kv.KV_DTYPES[n].bits for n in ("fp32", "fp16", "bf16", "fp8", "int8", "int4")] == [32, 16, 16, 8, 8.5, 4.5]


def test_ssm_state_per_sequence_by_hand():
    from tiny_configs import TINY
    # Qwen3-Next gated DeltaNet (tiny): conv over 2 x 2 key heads x 16 + 4 value heads x 16 = 128 channels;
    # transformers keeps all 4 kernel columns, vLLM 3; recurrent state 4 value heads x 16 x 16 = 1,024:
    # (128 x 4 + 1,024) x 2 B = 3,072 B and (128 x 3 + 1,024) x 2 B = 2,816 B per layer per sequence
    nxt = ModelSpec.from_hf_config(TINY["qwen3next-hybrid"], "next")
    assert kv.layer_groups(nxt, "bf16", "transformers")[0] == kv.KvGroup("linear", 3, 0, 0.0, 3_072.0)
    assert kv.layer_groups(nxt, "bf16", "paged")[0] == kv.KvGroup("linear", 3, 0, 0.0, 2_816.0)
    assert kv.layer_groups(nxt, "bf16", "paged", tp=2)[0].bytes_per_seq == 1_408.0  # split over TP ranks
    assert kv.layer_groups(nxt, "bf16", "paged", state_bytes=4.0)[0].bytes_per_seq == 5_632.0  # fp32 states
    # Jamba's Mamba-1 (tiny): d_inner 2 x 64 = 128, d_conv 4, d_state 8: 128 x 4 + 128 x 8 = 1,536 elements
    # (transformers), 128 x 3 + 1,024 = 1,408 (vLLM)
    jamba = ModelSpec.from_hf_config(TINY["jamba-hybrid"], "jamba")
    assert [g.bytes_per_seq for g in kv.layer_groups(jamba, "bf16", "transformers")] == [3_072.0, 0.0]
    assert [g.bytes_per_seq for g in kv.layer_groups(jamba, "bf16", "paged")] == [2_816.0, 0.0]
    # Granite-4.0-H's Mamba-2 (tiny): conv over d_inner 128 + 2 x 1 group x 16 states = 160 channels, state
    # 8 heads x 16 x 16 = 2,048: (160 x 4 + 2,048) x 2 = 5,376 B, (160 x 3 + 2,048) x 2 = 5,056 B
    granite = ModelSpec.from_hf_config(TINY["granite-hybrid"], "granite")
    assert [g.bytes_per_seq for g in kv.layer_groups(granite, "bf16", "transformers")] == [5_376.0, 0.0]
    assert [g.bytes_per_seq for g in kv.layer_groups(granite, "bf16", "paged")] == [5_056.0, 0.0]
    # two groups: conv over 128 + 2 x 2 x 16 = 192 channels: (192 x 4 + 2,048) x 2 B = 5,632 B
    g2 = ModelSpec.from_hf_config({**TINY["granite-hybrid"], "mamba_n_groups": 2}, "granite2")
    assert kv.layer_groups(g2, "bf16", "transformers")[0].bytes_per_seq == 5_632.0
    # a sequence of 100 tokens in Qwen3-Next (transformers): 3 linear layers x 3,072 B + 1 full-attention
    # layer x 100 tokens x 2 KV heads x (16 + 16) x 2 B = 9,216 + 12,800 B; 2 sequences: 44,032 B
    g = kv.layer_groups(nxt, "bf16", "transformers")
    assert kv.kv_state_bytes_per_seq(g) == 9_216
    assert kv.kv_bytes_per_token(g) == 128
    assert kv.kv_cache_bytes(g, 2, 100, "transformers") == 44_032
    assert float(kv.tokens_held(g[0], 100, "paged")) == 0.0  # a state holds no tokens
    # ... at every context of a vector: the state groups alone cost 3 x 3,072 B per sequence at each
    held = kv.tokens_held(g[0], np.array([10, 100, 1000]), "paged")
    assert held.shape == (3,) and not held.any()
    states = kv.kv_cache_bytes(g[:1], 1, np.array([10, 100, 1000]), "transformers")
    assert states.shape == (3,) and list(states) == [9_216] * 3


def test_paged_blocks_windows_and_defaults():
    cfg = {**LLAMA31_8B, "model_type": "mistral", "sliding_window": 4096, "vocab_size": 32000}
    gp = kv.layer_groups(ModelSpec.from_hf_config(cfg, "mistral"), "bf16", "paged")
    # window 4096, max_num_batched_tokens 2050: min(32768, 4095 + 2050) = 6145 tokens -> ceil(6145 / 16)
    # = 385 blocks + 1 = 386 blocks = 6,176 tokens
    assert kv.kv_cache_bytes(gp, 1, 32768, "paged", max_num_batched_tokens=2050) == 6_176 * 131_072
    # defaults: blocks of 16, max_num_batched_tokens 8192: min(20000, 4095 + 8192) = 12,287 -> 768 + 1 blocks
    assert kv.kv_cache_bytes(gp, 1, 20_000) == 769 * 16 * 131_072
    assert float(kv.tokens_held(gp[0], 20_000, "paged")) == 769 * 16
    # a short context inside the window: ceil(100 / 16) = 7 blocks + 1 = 128 tokens
    assert kv.kv_cache_bytes(gp, 1, 100, "paged") == 128 * 131_072
    # blocks of 32 for a full-attention model: ceil(100 / 32) = 4 blocks = 128 tokens
    g = kv.layer_groups(ModelSpec.from_hf_config(LLAMA31_8B, "llama"), "bf16", "paged")
    assert kv.kv_cache_bytes(g, 3, 100, "paged", block_size=32) == 3 * 128 * 131_072
    assert kv.kv_cache_bytes(g, 3, 100) == 3 * 112 * 131_072  # default engine paged, blocks of 16
    assert float(kv.tokens_held(g[0], 100, "paged", block_size=64)) == 128


def test_interleaved_sliding_and_full_layers():
    from tiny_configs import TINY
    # Gemma-2 (tiny): 2 sliding layers (window 8) and 2 full ones, 2 KV heads x (16 + 16) x 2 B = 128 B
    # per token each. transformers at 100 tokens: sliding layers keep 7, full ones 100:
    # 2 x 7 x 128 + 2 x 100 x 128 = 27,392 B. Paged: sliding min(100, 7 + 8192) -> 7 + 1 blocks = 128
    # tokens, full 7 blocks = 112 tokens: 2 x 128 x 128 + 2 x 112 x 128 = 61,440 B
    spec = ModelSpec.from_hf_config(TINY["gemma2-interleaved"], "gemma2")
    t = kv.layer_groups(spec, "bf16", "transformers")
    assert t == (kv.KvGroup("sliding", 2, 8, 128.0, 0.0), kv.KvGroup("full", 2, 0, 128.0, 0.0))
    assert kv.kv_cache_bytes(t, 1, 100, "transformers") == 27_392
    assert kv.kv_cache_bytes(t, 1, 5, "transformers") == 4 * 5 * 128  # inside the window: every token
    assert kv.kv_cache_bytes(kv.layer_groups(spec, "bf16", "paged"), 1, 100, "paged") == 61_440
    assert kv.describe(t) == [
        {"kind": "sliding", "layers": 2, "window": 8, "bytes_per_token_per_layer": 128.0, "state_bytes_per_seq_per_layer": 0.0},
        {"kind": "full", "layers": 2, "window": None, "bytes_per_token_per_layer": 128.0, "state_bytes_per_seq_per_layer": 0.0}]
    # the defaults: a bf16 cache in the paged layout on one rank
    assert kv.layer_groups(spec) == kv.layer_groups(spec, "bf16", "paged", 1, 2.0)
    with pytest.raises(PlannerInputError, match="unknown engine 'tgi'.*transformers, paged") as e:
        kv.layer_groups(spec, "bf16", "tgi")
    assert e.value.field == "engine"
    # fp8 halves the bytes per token; int4 stores 4.5 bits: 2 x 32 x 4.5 / 8 = 36 B
    assert kv.layer_groups(spec, "fp8", "paged")[0].bytes_per_token == 64.0
    assert kv.layer_groups(spec, "int4", "paged")[0].bytes_per_token == 36.0


def test_each_group_kind_rounds_by_its_own_rule():
    # One layer, 100,000 tokens of context, vLLM's 16-token blocks and 8,192-token budget:
    # full: ceil(100,000 / 16) x 16 = 100,000; sliding window 8,192: min(100,000, 8,191 + 8,192) = 16,383 -> 16,384
    # in blocks, + one block = 16,400; chunked 8,192 (ChunkedLocalAttentionSpec): min(100,000, 8,192 + 8,192) =
    # 16,384, no extra block; a windowed group of another kind (full with a window) rounds like a sliding one
    g = lambda kind, window: kv.KvGroup(kind, 1, window, 1.0, 0.0)  # noqa: E731
    held = {name: float(kv.tokens_held(grp, 100_000, "paged", 16, 8192)) for name, grp in (
        ("full", g("full", 0)), ("sliding", g("sliding", 8192)), ("chunked", g("chunked", 8192)),
        ("full+window", g("full", 8192)))}
    assert held == {"full": 100_000, "sliding": 16_400, "chunked": 16_384, "full+window": 16_400}
    # transformers keeps window - 1 tokens for both local kinds: 8,191
    assert float(kv.tokens_held(g("chunked", 8192), 100_000, "transformers")) == 8191
    assert float(kv.tokens_held(g("sliding", 8192), 100_000, "transformers")) == 8191
    # a group that caches nothing per token (a state-only group) holds no tokens, as a vector
    np.testing.assert_array_equal(kv.tokens_held(kv.KvGroup("mamba", 1, 0, 0.0, 4096.0), [10, 20], "paged"), [0, 0])


def test_kv_shared_layers_attend_but_cache_nothing_of_their_own():
    # Gemma 4 E2B (tests/data/hub-configs): 35 layers, the last 20 reuse the KV of earlier ones
    # (num_kv_shared_layers). Every layer still attends (35 specs, the last a full layer of head_dim 512);
    # only the 15 own layers cache: 12 sliding (1 KV head x 256 x K,V x 2 B = 1,024 B/token) and 3 full
    # (1 x 512 x 2 x 2 = 2,048 B/token)
    import json
    from pathlib import Path
    cfg = json.loads((Path(__file__).parent / "data" / "hub-configs" / "google--gemma-4-E2B-it.json").read_text())
    spec = ModelSpec.from_hf_config(cfg, "e2b")
    specs = kv.layer_specs_all(spec)
    assert len(specs) == 35 and sum(spec.kv_shared(i) for i in range(35)) == 20
    assert (type(specs[-1]).__name__, specs[-1].head_dim, type(specs[0]).__name__, specs[0].head_dim) == (
        "FullAttention", 512, "SlidingWindow", 256)
    assert [(g.kind, g.layers, g.window, g.bytes_per_token) for g in kv.layer_groups(spec, "bf16", "paged")] == [
        ("sliding", 12, 512, 1024.0), ("full", 3, 0, 2048.0)]


def test_the_textbook_formula_by_hand():
    # Llama-3.1-8B, 1 x 4,096 tokens: 2 x 32 x 8 x 128 x 4,096 x 1 x 2 B = 536,870,912 B in bf16;
    # int4 with its group scales, 0.5625 B per element: 150,994,944 B
    spec = ModelSpec.from_hf_config(LLAMA31_8B, "llama")
    assert kv.seed_kv_bytes(spec, "bf16", 1, 4096) == {"bytes": 536_870_912, "bytes_per_element": 2, "layers": 32,
                                                       "kv_heads": 8, "head_dim": 128}
    assert kv.seed_kv_bytes(spec, "int4", 1, 4096)["bytes"] == 150_994_944
    assert kv.seed_kv_bytes(spec, "fp8", 2, 4096)["bytes"] == 536_870_912  # half the bytes, twice the batch


def test_defaults_of_the_group_helpers():
    # attention_groups counts every layer (frac 1): Llama-3.1-8B has 32 full layers; kv_cache_bytes defaults
    # to vLLM's paged layout: 100 tokens take 7 blocks of 16 = 112 tokens x 131,072 B/token (32 layers x 8 KV
    # heads x 128 x K,V x 2 B) = 14,680,064 B
    spec = ModelSpec.from_hf_config(LLAMA31_8B, "llama")
    assert [(k, n, w) for k, n, w, _ in kv.attention_groups(spec, 1)] == [("full", 32, 0)]
    groups = kv.layer_groups(spec)
    assert float(kv.kv_cache_bytes(groups, 1, 100)) == 112 * 131_072 == 14_680_064


def test_a_group_without_tokens_and_plain_lists():
    # a group that caches no tokens (a linear-attention state) holds 0 tokens at every context, as floats
    lin = kv.KvGroup("linear", 3, 0, 0.0, 1000.0)
    held = kv.tokens_held(lin, [1, 100], "paged")
    assert held.tolist() == [0.0, 0.0] and held.dtype == np.float64
    # its bytes are the state alone: 3 layers x 1,000 B per sequence, times the batch
    assert kv.kv_cache_bytes((lin,), [1, 2], [5, 9000]).tolist() == [3000.0, 6000.0]
    # batch and context as plain lists, element by element: Llama-3.1-8B in transformers, 131,072 B a token
    groups = kv.layer_groups(ModelSpec.from_hf_config(LLAMA31_8B, "llama"), "bf16", "transformers")
    assert kv.kv_cache_bytes(groups, [1, 2], [10, 20], "transformers").tolist() == [10 * 131_072, 2 * 20 * 131_072]
    assert kv.kv_cache_bytes((), [1, 2], 10).tolist() == [0.0, 0.0]  # nothing cached at all


def test_the_sparse_mla_indexer_key_follows_the_engine_and_dtype():
    # DeepSeek-V3.2, 61 layers: latent 512 + rope 64 = 576 elements a token, plus the indexer's 128-element key:
    # vLLM stores that key in fp8 with one 4 B scale per 128 (132 B) whatever the KV dtype; transformers keeps it
    # in the KV dtype: bf16 576 x 2 + 132 = 1,284 (vLLM), 576 x 2 + 128 x 2 = 1,408 (transformers);
    # fp8 in transformers: 576 + 128 = 704
    from planner import profiles
    spec = profiles.load_model("DeepSeek-V3.2")
    got = {(d, e): [(g.kind, g.layers, g.bytes_per_token) for g in kv.layer_groups(spec, d, e)]
           for d, e in (("bf16", "paged"), ("bf16", "transformers"), ("fp8", "transformers"))}
    assert got == {("bf16", "paged"): [("sparse_mla", 61, 1284.0)], ("bf16", "transformers"): [("sparse_mla", 61, 1408.0)],
                   ("fp8", "transformers"): [("sparse_mla", 61, 704.0)]}

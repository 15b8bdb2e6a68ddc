"""The layer-cache classes (planner/layerkinds.py) with hand-derived values, and kv.py as their thin wrapper."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner import kv, layerkinds
from planner.layerkinds import (
    ChunkedLocal,
    CrossAttention,
    FullAttention,
    LinearAttention,
    MambaState,
    MLAttention,
    SlidingWindow,
    SparseMLA,
)
from planner.spec import ModelSpec
from tiny_configs import TINY


def test_bytes_per_token_of_each_attention_kind():
    # Llama-3.1-8B layer: 8 KV heads x (128 + 128) x 2 bytes = 4,096 B; TP 4: 2 heads per rank -> 1,024 B
    full = FullAttention(32, 8, 128, 128)
    assert full.bytes_per_token(2) == 4096 and full.bytes_per_token(2, tp=4) == 1024
    assert full.bytes_per_token(2, tp=16) == 512  # 8 heads on 16 ranks: one replicated head each
    # DeepSeek-V3: latent 512 + rope 64 = 576 elements, the same on every rank: 1,152 B in bf16
    mla = MLAttention(128, 1, 192, 128, 512, 64)
    assert mla.bytes_per_token(2) == mla.bytes_per_token(2, tp=8) == 1152
    # DeepSeek-V3.2 adds its indexer key: vLLM fp8 128 + one fp32 scale per 128 = 132 B; transformers 128 x 2
    dsa = SparseMLA(128, 1, 192, 128, 512, 64, index_head_dim=128, index_n_heads=64, index_topk=2048)
    assert dsa.bytes_per_token(2, engine="paged") == 1152 + 132
    assert dsa.bytes_per_token(2, engine="transformers") == 1152 + 256
    assert SparseMLA(128, 1, 192, 128, 512, 64, 128, 64, 2048, own_indexer=False).bytes_per_token(2) == 1152


def test_the_rounding_rules_of_the_docstring():
    """Block size 4, 4 tokens batched per step (planner/layerkinds.py module docstring)."""
    full = FullAttention(1, 1, 1, 1)
    assert full.tokens_held(6, "paged", 4, 4) == 8          # [ABCD] [EF..]
    assert full.tokens_held(6, "transformers", 4, 4) == 6
    sliding = SlidingWindow(1, 1, 1, 1, sliding_window=4)
    assert sliding.tokens_held(10, "paged", 4, 4) == 12     # min(10, 4 - 1 + 4) = 7 -> 2 blocks + 1
    assert sliding.tokens_held(10, "transformers", 4, 4) == 3  # the last window - 1
    chunked = ChunkedLocal(1, 1, 1, 1, attention_chunk_size=4)
    assert chunked.tokens_held(10, "paged", 4, 4) == 8      # min(10, 4 + 4) = 8 -> 2 blocks
    assert chunked.tokens_held(10, "transformers", 4, 4) == 3


def test_recurrent_states_per_sequence():
    # Qwen3-Next Gated DeltaNet: 16 k-heads x 128, 32 v-heads x 128, kernel 4.
    # conv channels 2 x 2048 + 4096 = 8192; state 32 x 128 x 128 = 524,288 elements
    gdn = LinearAttention(8192, 4, 32 * 128 * 128)
    assert gdn.state_bytes(2, engine="paged") == (8192 * 3 + 524_288) * 2          # vLLM keeps kernel - 1 columns
    assert gdn.state_bytes(2, engine="transformers") == (8192 * 4 + 524_288) * 2   # transformers keeps kernel
    assert gdn.state_bytes(2, tp=2, engine="paged") == gdn.state_bytes(2, engine="paged") / 2
    assert gdn.bytes_per_token(2) == 0 and float(gdn.tokens_held(10_000, "paged", 16, 8192)) == 0
    # Nemotron-H-8B Mamba-2: 128 heads x 64 = 8192 inner, 8 groups x 128 state: conv 8192 + 2048 = 10,240
    mamba = MambaState(10_240, 4, 128 * 64 * 128)
    assert mamba.state_bytes(2, engine="paged") == (10_240 * 3 + 1_048_576) * 2


def test_cross_attention_holds_the_encoder_tokens_not_the_text():
    cross = CrossAttention(32, 8, 128, 128, encoder_tokens=6404)  # Llama 3.2 Vision: 4 tiles x 1601 tokens
    assert cross.bytes_per_token(2) == 0
    assert cross.state_bytes(2, elem_bytes=2) == 6404 * 4096


def test_attention_flops_per_key():
    # Llama-3.1-8B, TP 1: 2 x 32 heads x (128 + 128) = 16,384 FLOPs per query per key; 4 keys -> 65,536
    assert FullAttention(32, 8, 128, 128).attention_flops_per_token(4) == 65_536
    # a sliding layer of 2 reads at most 2 keys
    assert SlidingWindow(32, 8, 128, 128, sliding_window=2).attention_flops_per_token(4) == 32_768
    # MLA absorbed: 2 x 128 x (2 x 512 + 64) per key
    assert MLAttention(128, 1, 192, 128, 512, 64).attention_flops_per_token(1) == 2 * 128 * 1088
    dsa = SparseMLA(128, 1, 192, 128, 512, 64, 128, 64, index_topk=2)
    # 3 keys: attention over top-2, the indexer over all 3 (2 x 64 heads x 128)
    assert dsa.attention_flops_per_token(3) == 2 * 128 * 1088 * 2 + 2 * 64 * 128 * 3
    assert dsa.attention_window == 2 and dsa.window == 0  # it reads 2 keys but keeps every token


@pytest.mark.parametrize("name", sorted(TINY))
def test_kv_groups_are_the_layer_specs_grouped(name):
    spec = ModelSpec.from_hf_config(TINY[name], name)
    specs = [s for s in layerkinds.layer_specs(spec) if s is not None]
    groups = kv.layer_groups(spec, "fp16", "paged")
    assert sum(g.layers for g in groups) == len(specs)
    assert kv.kv_bytes_per_token(groups) == sum(s.bytes_per_token(2) for s in specs)
    for g in groups:  # the wrapper's rounding is the class's
        cls = {"sliding": SlidingWindow, "chunked": ChunkedLocal}.get(g.kind)
        probe = cls(1, 1, 1, 1, g.window) if cls else FullAttention(1, 1, 1, 1)
        if g.bytes_per_token:
            assert np.array_equal(kv.tokens_held(g, [1, 100, 9000], "paged"),
                                  probe.tokens_held(np.array([1, 100, 9000]), "paged", 16, 8192))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(kv_heads=st.sampled_from([1, 2, 4, 8]), context=st.integers(1, 200_000), window=st.integers(1, 9000))
def test_mqa_le_gqa_le_mha_and_windows_never_hold_more(kv_heads, context, window):
    full = [FullAttention(8, h, 64, 64) for h in (1, kv_heads, 8)]
    b = [f.bytes_per_token(2) for f in full]
    assert b[0] <= b[1] <= b[2]
    held = FullAttention(8, 8, 64, 64).tokens_held(context, "paged", 16, 8192)
    assert SlidingWindow(8, 8, 64, 64, window).tokens_held(context, "paged", 16, 8192) <= held + 16
    assert ChunkedLocal(8, 8, 64, 64, window).tokens_held(context, "paged", 16, 8192) <= held

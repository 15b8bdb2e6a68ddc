"""One frozen spec per kind of layer cache: what it holds per token and per sequence, and its attention FLOPs.

After vLLM's ``vllm/v1/kv_cache_interface.py`` (FullAttentionSpec, SlidingWindowSpec, ChunkedLocalAttentionSpec,
MLAAttentionSpec, MambaSpec, CrossAttentionSpec) and transformers' ``cache_utils.py`` (DynamicLayer,
DynamicSlidingWindowLayer, DynamicIndexedLayer, LinearAttentionLayer). ``layer_specs(spec)`` gives one object
per layer (``None`` for a layer that caches nothing: Nemotron-H's MLP blocks, Gemma 4's KV-sharing layers);
planner/kv.py groups them into KvGroups.

Units: ``elem_bytes`` is the size of one cached element (the KV dtype), ``state_bytes`` of one recurrent-state
element (the model dtype); bytes are per layer, per sequence, on one tensor-parallel rank.

Tokens held by one sequence of ``context`` tokens (``tokens_held``), with vLLM's block rounding:

* full: every token, rounded up to whole blocks. Block size 4, 6 tokens: two blocks [ABCD] [EF..] = 8 slots.
* sliding window w: transformers keeps the last w - 1; vLLM at most w - 1 + max_num_batched_tokens, rounded
  up, plus one block for the window's ragged start. Block 4, w 4, 4 batched, 10 tokens: min(10, 7) = 7 ->
  2 blocks + 1 = 12 slots.
* chunked local (Llama 4), chunk c: transformers keeps c - 1 (a sliding layer of c); vLLM at most
  c + max_num_batched_tokens, rounded up. Block 4, c 4, 4 batched, 10 tokens: min(10, 8) = 8 -> 8 slots.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .spec import CHUNKED, CROSS, FULL, LINEAR, MAMBA, MLA, SLIDING, SPARSE_MLA, ModelSpec

# vLLM's DeepSeek-V3.2 indexer cache: fp8 keys with one fp32 scale per 128 (DeepseekV32IndexerCache:
# head_size = index_head_dim + index_head_dim // 128 * 4, uint8), whatever the KV dtype
INDEXER_QUANT_BLOCK = 128
INDEXER_SCALE_BYTES = 4


def _blocks(tokens, block_size: int):
    return np.ceil(np.asarray(tokens, dtype=np.float64) / block_size) * block_size


def _blocks1(tokens: float, block_size: int) -> float:
    """``_blocks`` of one float."""
    return float(math.ceil(tokens / block_size) * block_size)


@dataclass(frozen=True)
class LayerCache:
    """A layer whose cache grows with every token (the attention kinds)."""

    kind = FULL
    num_heads: int
    num_kv_heads: int
    head_dim: int
    v_head_dim: int

    @property
    def window(self) -> int:
        """Tokens the layer keeps looking back over (0: all of them)."""
        return 0

    @property
    def attention_window(self) -> int:
        """Keys one query reads at most (0: all cached ones): the window, or sparse attention's top-k."""
        return self.window

    def kv_heads_per_rank(self, tp: int) -> int:
        """vLLM: max(1, kv_heads // tp): heads split across ranks, replicated when kv_heads < tp."""
        return max(1, self.num_kv_heads // tp)

    def bytes_per_token(self, elem_bytes: float, tp: int = 1, engine: str = "paged") -> float:
        """Cached bytes per token: K (head_dim) and V (v_head_dim) of each KV head on the rank."""
        return self.kv_heads_per_rank(tp) * (self.head_dim + self.v_head_dim) * elem_bytes

    def state_bytes(self, state_bytes: float, tp: int = 1, engine: str = "paged", elem_bytes: float = 2.0) -> float:
        """Fixed bytes per sequence (recurrent states, encoder K/V)."""
        return 0.0

    def visible(self, context):
        """Keys one new query token attends to: the context, or its last ``window`` tokens."""
        ctx = np.asarray(context, dtype=np.float64)
        return np.minimum(ctx, self.window) if self.window else ctx

    def attention_flops_per_token(self, context, tp: int = 1):
        """FLOPs of one query token against ``context`` keys on one rank: scores (head_dim) and values (v_head_dim),
        a multiply and an add each."""
        return 2.0 * self.num_heads / tp * (self.head_dim + self.v_head_dim) * self.visible(context)

    def tokens_held(self, context, engine: str, block_size: int, max_num_batched_tokens: int):
        """Tokens one sequence holds in this layer. transformers keeps every token, or window - 1 of a local
        layer (DynamicSlidingWindowLayer; cache_utils treats a chunked layer as a sliding layer of the chunk
        size); a paged engine rounds by the kind's rule (``_paged_tokens``)."""
        ctx = np.asarray(context, dtype=np.float64)
        if engine == "transformers":
            return np.minimum(ctx, self.window - 1) if self.window else ctx
        return self._paged_tokens(ctx, block_size, max_num_batched_tokens)

    def _paged_tokens(self, ctx, block_size: int, max_num_batched_tokens: int):
        return _blocks(ctx, block_size)

    def tokens_held1(self, ctx: float, engine: str, block_size: int, max_num_batched_tokens: int) -> float:
        """``tokens_held`` of one context in plain floats, equal to it to the bit (a simulation asks at every
        pass, where numpy's per-call overhead on one value is most of the cost)."""
        if engine == "transformers":
            return min(ctx, float(self.window - 1)) if self.window else ctx
        return self._paged_tokens1(ctx, block_size, max_num_batched_tokens)

    def _paged_tokens1(self, ctx: float, block_size: int, max_num_batched_tokens: int) -> float:
        return _blocks1(ctx, block_size)


@dataclass(frozen=True)
class FullAttention(LayerCache):
    kind = FULL


@dataclass(frozen=True)
class SlidingWindow(LayerCache):
    kind = SLIDING
    sliding_window: int = 1

    @property
    def window(self) -> int:
        return self.sliding_window

    def _paged_tokens(self, ctx, block_size: int, max_num_batched_tokens: int):
        need = np.minimum(ctx, self.sliding_window - 1 + max_num_batched_tokens)
        return _blocks(need, block_size) + block_size

    def _paged_tokens1(self, ctx: float, block_size: int, max_num_batched_tokens: int) -> float:
        return _blocks1(min(ctx, float(self.sliding_window - 1 + max_num_batched_tokens)), block_size) + block_size


@dataclass(frozen=True)
class ChunkedLocal(LayerCache):
    """Llama 4's local layers: attention within chunks of ``attention_chunk_size`` tokens."""

    kind = CHUNKED
    attention_chunk_size: int = 1

    @property
    def window(self) -> int:
        return self.attention_chunk_size

    def _paged_tokens(self, ctx, block_size: int, max_num_batched_tokens: int):
        # vLLM ChunkedLocalAttentionSpec.max_admission_blocks_per_request: min(chunk + batched, max_model_len)
        return _blocks(np.minimum(ctx, self.attention_chunk_size + max_num_batched_tokens), block_size)

    def _paged_tokens1(self, ctx: float, block_size: int, max_num_batched_tokens: int) -> float:
        return _blocks1(min(ctx, float(self.attention_chunk_size + max_num_batched_tokens)), block_size)


@dataclass(frozen=True)
class MLAttention(LayerCache):
    """DeepSeek MLA: one compressed latent plus the shared rope key per token, the same on every TP rank
    (vLLM MLAAttentionSpec; transformers 5.23 DeepseekV3Attention caches the same latent)."""

    kind = MLA
    kv_lora_rank: int = 0
    qk_rope_head_dim: int = 0

    def bytes_per_token(self, elem_bytes: float, tp: int = 1, engine: str = "paged") -> float:
        return (self.kv_lora_rank + self.qk_rope_head_dim) * elem_bytes

    def attention_flops_per_token(self, context, tp: int = 1):
        """vLLM's decode absorbs the up-projections: scores over latent + rope, values over the latent."""
        dims = 2 * self.kv_lora_rank + self.qk_rope_head_dim
        return 2.0 * self.num_heads / tp * dims * self.visible(context)


@dataclass(frozen=True)
class SparseMLA(MLAttention):
    """MLA with DeepSeek Sparse Attention (DeepSeek-V3.2, GLM-5): a lightning indexer scores every cached
    token with its own key cache (``index_head_dim`` per token), then attention reads the ``index_topk`` best."""

    kind = SPARSE_MLA
    index_head_dim: int = 0
    index_n_heads: int = 0
    index_topk: int = 0
    own_indexer: bool = True

    def indexer_bytes_per_token(self, elem_bytes: float, engine: str) -> float:
        if not self.own_indexer:
            return 0.0
        if engine == "transformers":  # DynamicIndexedLayer: [batch, seq, index_head_dim] in the model dtype
            return self.index_head_dim * elem_bytes
        return self.index_head_dim + self.index_head_dim // INDEXER_QUANT_BLOCK * INDEXER_SCALE_BYTES

    def bytes_per_token(self, elem_bytes: float, tp: int = 1, engine: str = "paged") -> float:
        return super().bytes_per_token(elem_bytes, tp, engine) + self.indexer_bytes_per_token(elem_bytes, engine)

    @property
    def attention_window(self) -> int:
        return self.index_topk

    def visible(self, context):
        return np.minimum(np.asarray(context, dtype=np.float64), self.index_topk)

    def attention_flops_per_token(self, context, tp: int = 1):
        """Top-k attention plus the indexer's scores over every cached token."""
        scores = 2.0 * self.index_n_heads * self.index_head_dim * np.asarray(context, dtype=np.float64)
        return super().attention_flops_per_token(context, tp) + scores * self.own_indexer


@dataclass(frozen=True)
class CrossAttention(LayerCache):
    """Cross-attention to encoder (image) tokens: K/V of ``encoder_tokens`` per sequence, nothing per
    generated token (vLLM CrossAttentionSpec)."""

    kind = CROSS
    encoder_tokens: int = 0

    def bytes_per_token(self, elem_bytes: float, tp: int = 1, engine: str = "paged") -> float:
        return 0.0

    def state_bytes(self, state_bytes: float, tp: int = 1, engine: str = "paged", elem_bytes: float = 2.0) -> float:
        """The encoder tokens' K and V, held for the whole request (in the KV dtype)."""
        return self.encoder_tokens * super().bytes_per_token(elem_bytes, tp)

    def visible(self, context):
        return np.full_like(np.asarray(context, dtype=np.float64), self.encoder_tokens)


@dataclass(frozen=True)
class RecurrentState:
    """A fixed state per sequence, whatever its length (linear attention, Mamba)."""

    kind = LINEAR
    conv_dim: int
    conv_kernel: int
    state_elems: int  # the recurrent state's elements

    window = 0

    def bytes_per_token(self, elem_bytes: float, tp: int = 1, engine: str = "paged") -> float:
        return 0.0

    def state_bytes(self, state_bytes: float, tp: int = 1, engine: str = "paged", elem_bytes: float = 2.0) -> float:
        """transformers keeps conv_kernel conv columns, vLLM conv_kernel - 1; split over TP ranks."""
        keep = self.conv_kernel - (engine != "transformers")
        return (self.conv_dim * keep + self.state_elems) * state_bytes / tp

    def attention_flops_per_token(self, context, tp: int = 1):
        return np.zeros_like(np.asarray(context, dtype=np.float64))

    def tokens_held(self, context, engine: str, block_size: int, max_num_batched_tokens: int):
        return np.zeros_like(np.asarray(context, dtype=np.float64))


@dataclass(frozen=True)
class LinearAttention(RecurrentState):
    """Gated DeltaNet (Qwen3-Next, Qwen3.5) and Kimi Delta Attention: a d_k x d_v state per value head."""

    kind = LINEAR


@dataclass(frozen=True)
class MambaState(RecurrentState):
    """Mamba-1 (Jamba: d_inner x d_state) and Mamba-2 (heads x head_dim x d_state) SSM states."""

    kind = MAMBA


def _linear(spec: ModelSpec) -> LinearAttention:
    d = spec.ssm_dims
    if d.get("shortconv"):  # LFM2: the conv's inputs only, no recurrent state (transformers 5.23 Lfm2HybridConvCache:
        # hidden x conv_L_cache; vLLM mamba_utils.MambaStateShapeCalculator.short_conv_state_shape: (conv_kernel - 1,
        # hidden / TP)), which LinearAttention's rule keeps (conv_kernel less one outside transformers, split by TP)
        return LinearAttention(d["conv_dim"], d["conv_kernel"], 0)
    conv = 2 * d["num_k_heads"] * d["k_head_dim"] + d["num_v_heads"] * d["v_head_dim"]
    return LinearAttention(conv, d["conv_kernel"], d["num_v_heads"] * d["k_head_dim"] * d["v_head_dim"])


def _mamba(spec: ModelSpec) -> MambaState:
    d = spec.ssm_dims
    if d["version"] == 1:
        return MambaState(d["d_inner"], d["d_conv"], d["d_inner"] * d["d_state"])
    conv = d["d_inner"] + 2 * d["n_groups"] * d["d_state"]
    return MambaState(conv, d["d_conv"], d["n_heads"] * d["head_dim"] * d["d_state"])


def _attention(spec: ModelSpec, i: int) -> LayerCache:
    kind = spec.layer_kinds[i]
    a = spec.attn_shape(kind)
    shape = (a["num_heads"], a["num_kv_heads"], a["head_dim"], a["v_head_dim"])
    if kind in (MLA, SPARSE_MLA):
        mla = (spec.num_heads, 1, spec.head_dim, spec.v_head_dim, spec.kv_lora_rank, spec.qk_rope_head_dim)
        if kind == MLA:
            return MLAttention(*mla)
        ix = dict(spec.indexer)
        return SparseMLA(*mla, ix["head_dim"], ix["n_heads"], ix["topk"], spec.has_indexer(i))
    if kind == SLIDING:
        return SlidingWindow(*shape, spec.sliding_window)
    if kind == CHUNKED:
        return ChunkedLocal(*shape, spec.attention_chunk_size)
    if kind == CROSS:
        return CrossAttention(*shape, spec.vision_tokens_per_image)
    return FullAttention(*shape)


def layer_spec(spec: ModelSpec, i: int) -> LayerCache | RecurrentState | None:
    """Layer i's cache spec; None when it caches nothing (an MLP-only block, a KV-sharing layer)."""
    kind = spec.layer_kinds[i]
    if kind == LINEAR:
        return _linear(spec)
    if kind == MAMBA:
        return _mamba(spec)
    if kind not in (FULL, SLIDING, CHUNKED, MLA, SPARSE_MLA, CROSS) or spec.kv_shared(i):
        return None
    return _attention(spec, i)


def layer_specs(spec: ModelSpec) -> tuple[LayerCache | RecurrentState | None, ...]:
    return tuple(layer_spec(spec, i) for i in range(spec.num_layers))
